package router

// Hibernator is implemented by sessions that can outlive their connection
// (XEP-0198 resumption): a hibernating session stays bound and takes
// stanzas into its queue, but nobody reads them until it is resumed. What
// must reach a user now, push notifications (XEP-0357), asks it; a session
// that does not implement it never hibernates.
type Hibernator interface {
	// Hibernating tells whether the session has no connection now.
	Hibernating() bool
}

// Hibernating tells whether s is a Hibernator that hibernates.
func Hibernating(s Session) bool {
	h, ok := s.(Hibernator)
	return ok && h.Hibernating()
}
