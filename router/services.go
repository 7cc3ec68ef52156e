package router

import (
	"context"
	"fmt"
	"sort"
	"sync/atomic"

	"mellium.im/xmpp/stanza"
)

// ServiceHandler receives a stanza addressed to a service address or to any
// JID under it (room@conference.example.org, room@conference.example.org/nick)
// and reports whether it handled it. What it leaves unhandled gets the
// router's default answer: service-unavailable for IQ requests and messages,
// nothing for presence and for IQ responses (RFC 6120 §8.3.1).
type ServiceHandler func(ctx context.Context, st *Stanza) (handled bool)

// services holds the service addresses and their owners, read by routing
// without a lock like the other hooks.
type services struct {
	byDomain atomic.Pointer[map[string]entry[ServiceHandler]]
}

// AddService makes owner the owner of the service address domain
// (conference.example.org, a component's domain): from now on every stanza to
// domain or to a JID under it goes to h, and s2s accepts streams to it. h
// may be nil for a service that only answers the IQs registered for it
// with HandleServiceIQ. A domain has one owner, and a served user domain is
// never a service address.
func (r *Router) AddService(owner, domain string, h ServiceHandler) (Registration, error) {
	if domain == "" {
		return nil, fmt.Errorf("router: service of %s: empty address", owner)
	}
	if r.domains[domain] {
		return nil, fmt.Errorf("router: service %s of %s: a served user domain", domain, owner)
	}
	reg, holder, taken := registerUnique(&r.hooks, &r.services.byDomain, domain, owner, h)
	if taken {
		return nil, fmt.Errorf("router: service %s already owned by %s", domain, holder)
	}
	return reg, nil
}

// HandleServiceIQ registers h for IQ requests of type typ ("get" or "set")
// with a payload in namespace ns, addressed to the service address domain
// itself (not to a JID under it, which only the service's handler sees):
// the way a service answers its own disco#info, say. It runs before the
// service's handler. One handler per key, as for HandleIQ.
func (r *Router) HandleServiceIQ(owner, domain, typ, ns string, h IQHandler) (Registration, error) {
	return r.addIQ(owner, iqKey{typ: typ, ns: ns, addr: domain}, h)
}

// IsService tells whether domain is a service address.
func (r *Router) IsService(domain string) bool {
	_, ok := loadMap(&r.services.byDomain)[domain]
	return ok
}

// IsLocal tells whether this server answers for domain at all: a served
// user domain or a service address. Federation accepts streams to, and
// sends stanzas from, exactly these.
func (r *Router) IsLocal(domain string) bool {
	return r.domains[domain] || r.IsService(domain)
}

// Services returns the service addresses, sorted.
func (r *Router) Services() []string {
	m := loadMap(&r.services.byDomain)
	out := make([]string, 0, len(m))
	for d := range m {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// toService hands st to the owner of its service address and reports
// whether there was one.
func (r *Router) toService(ctx context.Context, st *Stanza) bool {
	e, ok := loadMap(&r.services.byDomain)[st.To.Domainpart()]
	if !ok {
		return false
	}
	if st.Kind() == KindIQ && !st.IsIQRequest() && r.requests.answered(st) {
		// The answer to a request the service sent with SendIQ.
		return true
	}
	if st.IsIQRequest() && st.To.Localpart() == "" && st.To.Resourcepart() == "" {
		if p := st.FirstChild(); p != nil {
			if ie, ok := loadMap(&r.hooks.iq)[iqKey{typ: st.Type(), ns: p.Name.Space, addr: st.To.Domainpart()}]; ok {
				r.runIQ(ctx, ie, st)
				return true
			}
		}
	}
	handled := false
	if e.h != nil && r.guard(e.owner, st, func() { handled = e.h(ctx, st) }) {
		r.crashed(ctx, st)
		return true
	}
	if handled {
		return true
	}
	switch {
	case st.IsIQRequest():
		r.Bounce(ctx, st, stanza.ServiceUnavailable, "")
	case st.Kind() == KindMessage && st.Type() != "headline":
		r.Bounce(ctx, st, stanza.ServiceUnavailable, "")
	}
	return true
}
