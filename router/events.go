package router

import (
	"context"
	"sync/atomic"

	"mellium.im/xmpp/jid"
)

// SessionHandler hears about a session: that it became available, or that
// it ended.
type SessionHandler func(ctx context.Context, s Session)

// sessionHooks holds the handlers of session events, read without a lock.
type sessionHooks struct {
	available atomic.Pointer[[]entry[SessionHandler]]
	ended     atomic.Pointer[[]entry[SessionHandler]]
}

func (r *Router) addSessionHandler(list *atomic.Pointer[[]entry[SessionHandler]], owner string, priority int, h SessionHandler) Registration {
	return register(&r.hooks, list, listAdder(owner, priority, h), without[SessionHandler])
}

// OnSessionAvailable registers h for sessions that sent their initial
// available presence (offline messages are delivered then, XEP-0160).
func (r *Router) OnSessionAvailable(owner string, priority int, h SessionHandler) Registration {
	return r.addSessionHandler(&r.sessionEvents.available, owner, priority, h)
}

// OnSessionEnd registers h for sessions that ended, after they were removed
// from the registry (unavailable presence is broadcast then, RFC 6121
// §4.5.2).
func (r *Router) OnSessionEnd(owner string, priority int, h SessionHandler) Registration {
	return r.addSessionHandler(&r.sessionEvents.ended, owner, priority, h)
}

// SessionAvailable runs the OnSessionAvailable handlers; the module that
// tracks presence calls it for a session's initial presence.
func (r *Router) SessionAvailable(ctx context.Context, s Session) {
	r.runSession(ctx, &r.sessionEvents.available, s)
}

// SessionEnded runs the OnSessionEnd handlers; the listener that owned the
// session calls it once the session is unbound.
func (r *Router) SessionEnded(ctx context.Context, s Session) {
	r.runSession(ctx, &r.sessionEvents.ended, s)
}

func (r *Router) runSession(ctx context.Context, list *atomic.Pointer[[]entry[SessionHandler]], s Session) {
	p := list.Load()
	if p == nil {
		return
	}
	for _, e := range *p {
		r.guardSession(e.owner, func() { e.h(ctx, s) })
	}
}

// StreamFeatureFunc builds a stream feature for a client authenticated on
// domain, or returns nil for none. It is called at every negotiation, so a
// feature that changes while the server runs (XEP-0115 caps, whose ver
// follows the disco features) is always current; it should be cheap.
type StreamFeatureFunc func(domain string) *Element

// streamFeatures holds what modules add to the client stream features
// after authentication (e.g. XEP-0237 roster versioning).
type streamFeatures struct {
	list atomic.Pointer[[]entry[StreamFeatureFunc]]
}

// AddStreamFeature advertises e in the stream features offered to
// authenticated clients, for as long as the registration lasts.
func (r *Router) AddStreamFeature(e *Element) Registration {
	return r.AddStreamFeatureFunc("", func(string) *Element { return e.Copy() })
}

// AddStreamFeatureFunc advertises what f builds in the stream features
// offered to authenticated clients, for as long as the registration lasts.
// A panic in f is logged with owner and the feature left out.
func (r *Router) AddStreamFeatureFunc(owner string, f StreamFeatureFunc) Registration {
	return register(&r.hooks, &r.features.list, listAdder(owner, PriorityDefault, f), without[StreamFeatureFunc])
}

// StreamFeatures returns the module stream features for a client
// authenticated on domain, each a new element the caller may change.
func (r *Router) StreamFeatures(domain string) []*Element {
	p := r.features.list.Load()
	if p == nil {
		return nil
	}
	out := make([]*Element, 0, len(*p))
	for _, f := range *p {
		var e *Element
		r.guardSession(f.owner, func() { e = f.h(domain) })
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}

// AccountExists tells whether a local account exists.
func (r *Router) AccountExists(ctx context.Context, bare jid.JID) (bool, error) {
	if !r.ServesUsers(bare.Domainpart()) || bare.Localpart() == "" {
		return false, nil
	}
	return r.accounts.Exists(ctx, bare.Bare())
}
