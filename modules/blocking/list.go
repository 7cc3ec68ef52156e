package blocking

import (
	"mellium.im/xmpp/jid"
)

// list is one account's blocked JIDs. It is never changed once built: a
// change replaces it, so the filter reads it without holding a lock.
type list struct {
	// set holds the string forms of the normalised blocked JIDs.
	set map[string]struct{}
}

// newList builds a list of the given (normalised) JIDs.
func newList(items []jid.JID) *list {
	l := &list{set: make(map[string]struct{}, len(items))}
	for _, j := range items {
		l.set[j.String()] = struct{}{}
	}
	return l
}

// empty tells whether nothing is blocked, which is the common case and
// costs the filter nothing more than this check.
func (l *list) empty() bool { return l == nil || len(l.set) == 0 }

// blocks tells whether j is blocked, matching as XEP-0191 §6 (and XEP-0016)
// order it: an item user@domain/resource blocks only that full JID,
// user@domain any of its resources, domain/resource only that JID, and
// domain the domain itself and every JID at it. Looking up j's full, bare
// and domain forms finds exactly those items: a domain/resource item never
// equals one of the forms of a JID that has a localpart.
func (l *list) blocks(j jid.JID) bool {
	if l.empty() || j.Domainpart() == "" {
		return false
	}
	if l.has(j.String()) {
		return true
	}
	bare := j.Bare()
	if !bare.Equal(j) && l.has(bare.String()) {
		return true
	}
	domain := j.Domain()
	return !domain.Equal(bare) && l.has(domain.String())
}

func (l *list) has(s string) bool {
	_, ok := l.set[s]
	return ok
}
