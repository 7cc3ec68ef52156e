package c2s

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"sync"
	"sync/atomic"

	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/router"
)

// Stage is how far a connection's negotiation has come; it decides which
// steps are offered (RFC 6120 §4.3: the features depend on the stream's
// state).
type Stage uint8

// The stages, in order.
const (
	BeforeTLS Stage = 1 << iota // the stream is open, unencrypted
	AfterTLS                    // encrypted, not authenticated
	AfterAuth                   // authenticated, no resource bound yet
	AfterBind                   // a session is bound (see HandleElement)
)

// Outcome is what a step's Handle did to the stream.
type Outcome int

const (
	// Continue reads the next element of the same stream.
	Continue Outcome = iota
	// Restart expects a new stream header from the client (after TLS and
	// SASL success, RFC 6120 §5.4.3.3, §6.4.6).
	Restart
	// bound ends negotiation: a session is bound to the connection.
	// Resource binding and stream management resumption (sm.go) yield it,
	// both setting the connection's session themselves; Bind 2 will get a
	// way to hand its session over.
	bound
)

// Step is one part of stream negotiation: STARTTLS, SASL, in-band
// registration, resource binding, and later stream management, SASL2 or
// Bind 2. A step is registered with Server.AddStep instead of being a case
// of a switch, so that a new one is added without editing the others.
type Step struct {
	// Name identifies the step in logs.
	Name string
	// Stages are the stages (or-ed) in which the step is offered: its
	// Features are computed only then.
	Stages Stage
	// Features returns the stream feature elements the step offers on
	// this connection now (nil for none). It is called at every stream
	// (re)start, so it may depend on the connection (TLS, channel
	// binding, configuration).
	Features func(n *Negotiation) []*router.Element
	// Match tells whether the step handles e, a top-level element received
	// during negotiation. It is asked in every stage before binding, not
	// only in Stages, so that a step can refuse its own element out of
	// order with the RFC's answer (a second <starttls/> is a
	// policy-violation, an <auth/> before TLS gets encryption-required).
	// The first step that matches handles the element; an element no step
	// matches closes the stream with not-authorized.
	Match func(n *Negotiation, e *router.Element) bool
	// Handle handles e. An error ends the stream (a stream.Error is sent).
	Handle func(ctx context.Context, n *Negotiation, e *router.Element) (Outcome, error)
}

// Negotiation is one connection's negotiation as a step sees it.
type Negotiation struct{ c *conn }

// Stage is where the connection's negotiation stands.
func (n *Negotiation) Stage() Stage { return n.c.stage() }

// Host is the served domain the client asked for in its stream header.
func (n *Negotiation) Host() string { return n.c.host }

// TLSState is the connection's TLS state (nil before TLS).
func (n *Negotiation) TLSState() *tls.ConnectionState { return n.c.TLSState() }

// RemoteAddr is the client's network address.
func (n *Negotiation) RemoteAddr() net.Addr { return n.c.RemoteAddr() }

// Write sends one element to the client.
func (n *Negotiation) Write(e *router.Element) error { return n.c.writeElement(e) }

// State holds the steps' per-connection state (a request count, say),
// kept with a router.SessionKey as a module keeps session state: it goes
// with the connection.
func (n *Negotiation) State() *router.SessionState { return &n.c.stepState }

// Next reads the client's next element, for steps of several rounds.
func (n *Negotiation) Next() (*router.Element, error) { return n.c.next() }

func (c *conn) stage() Stage {
	switch {
	case !c.secure():
		return BeforeTLS
	case !c.authed:
		return AfterTLS
	case c.sess == nil:
		return AfterAuth
	}
	return AfterBind
}

// ElementHandler handles a namespaced top-level element that a bound client
// sent and that is not a stanza (XEP-0198's <r/> and <a/>, XEP-0352's
// <active/>). An error ends the stream with it.
type ElementHandler func(ctx context.Context, s *Session, e *router.Element) error

// negotiation holds a server's steps and post-bind element handlers. Both
// are read on every use without a lock (copy on write).
type negotiation struct {
	mu       sync.Mutex // serialises changes
	steps    atomic.Pointer[[]*Step]
	elements atomic.Pointer[map[elementName]elementEntry]
	seq      int // numbers the element registrations
}

// elementEntry is one registration of HandleElement; seq tells it from a
// later registration of the same name, so that removing a replaced one
// leaves its replacement alone.
type elementEntry struct {
	h   ElementHandler
	seq int
}

type elementName struct{ space, local string }

// removal is the router.Registration of a step or an element handler.
type removal func()

func (r removal) Remove() { r() }

// AddStep adds a negotiation step after those added before (which decides
// the order of the stream features); the standard steps (STARTTLS, SASL,
// in-band registration, bind, legacy session) are added by New. Removing
// the registration withdraws the step from later streams.
func (s *Server) AddStep(step Step) router.Registration {
	n := &s.negotiation
	p := &step
	n.mu.Lock()
	defer n.mu.Unlock()
	var old []*Step
	if cur := n.steps.Load(); cur != nil {
		old = *cur
	}
	steps := append(slices.Clip(old), p)
	n.steps.Store(&steps)
	return removal(func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		steps := slices.DeleteFunc(slices.Clone(*n.steps.Load()), func(x *Step) bool { return x == p })
		n.steps.Store(&steps)
	})
}

// HandleElement makes h the owner of the top-level element {space}local
// sent by bound clients, which otherwise closes the stream with
// unsupported-stanza-type. One owner per name: a later registration
// replaces an earlier one; removing the replaced one then changes nothing,
// and removing the current one leaves the name without an owner.
func (s *Server) HandleElement(space, local string, h ElementHandler) router.Registration {
	n := &s.negotiation
	key := elementName{space, local}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seq++
	mine := elementEntry{h: h, seq: n.seq}
	m := map[elementName]elementEntry{}
	if cur := n.elements.Load(); cur != nil {
		for k, v := range *cur {
			m[k] = v
		}
	}
	m[key] = mine
	n.elements.Store(&m)
	return removal(func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if (*n.elements.Load())[key].seq != mine.seq {
			return // replaced: the newer owner stays
		}
		m := map[elementName]elementEntry{}
		for k, v := range *n.elements.Load() {
			if k != key {
				m[k] = v
			}
		}
		n.elements.Store(&m)
	})
}

// elementHandler returns the owner of a post-bind element, or nil.
func (s *Server) elementHandler(space, local string) ElementHandler {
	m := s.negotiation.elements.Load()
	if m == nil {
		return nil
	}
	return (*m)[elementName{space, local}].h
}

func (s *Server) steps() []*Step {
	if p := s.negotiation.steps.Load(); p != nil {
		return *p
	}
	return nil
}

// addStandardSteps adds the steps of RFC 6120 and the pre-authentication
// IQs (preauth.go), in the order of their features.
func (s *Server) addStandardSteps() {
	s.AddStep(startTLSStep)
	s.AddStep(saslStep)
	s.AddStep(sasl2Step)
	s.AddStep(preAuthStep)
	s.AddStep(bindStep)
	s.AddStep(sessionStep)
	s.AddStep(moduleFeaturesStep)
	s.AddStep(smStep)
	s.AddStep(csiStep)
}

// features lists what the client may negotiate next (RFC 6120 §4.3.2).
func (c *conn) features() *router.Element { return c.featuresAt(c.stage()) }

// featuresAt lists the features of stage: SASL2 sends those of the stage
// its inline requests reach before the connection is there.
func (c *conn) featuresAt(stage Stage) *router.Element {
	f := router.NewElement(router.NSStream, "features")
	n := &Negotiation{c}
	for _, st := range c.srv.steps() {
		if st.Stages&stage != 0 && st.Features != nil {
			f.Append(st.Features(n)...)
		}
	}
	return f
}

// negotiateStream handles elements on one stream until it must restart
// (after TLS or SASL) or a resource is bound.
func (c *conn) negotiateStream(ctx context.Context) error {
	n := &Negotiation{c}
	for {
		e, err := c.next()
		if err != nil {
			return err
		}
		var step *Step
		for _, st := range c.srv.steps() {
			if st.Match != nil && st.Match(n, e) {
				step = st
				break
			}
		}
		if step == nil {
			return stream.NotAuthorized
		}
		out, err := step.Handle(ctx, n, e)
		if err != nil || out != Continue {
			return err
		}
	}
}

// The standard steps.
var (
	startTLSStep = Step{
		Name:   "starttls",
		Stages: BeforeTLS,
		Features: func(*Negotiation) []*router.Element {
			return []*router.Element{router.NewElement(nsTLS, "starttls").Append(router.NewElement(nsTLS, "required"))}
		},
		Match: func(_ *Negotiation, e *router.Element) bool {
			return e.Name.Space == nsTLS && e.Name.Local == "starttls"
		},
		Handle: func(ctx context.Context, n *Negotiation, _ *router.Element) (Outcome, error) {
			c := n.c
			if c.secure() {
				// Again, or on a transport that has its own TLS
				// (a WebSocket): nothing to start.
				return Continue, stream.PolicyViolation
			}
			if err := c.writeElement(router.NewElement(nsTLS, "proceed")); err != nil {
				return Continue, err
			}
			return Restart, c.handshake(ctx)
		},
	}

	saslStep = Step{
		Name:   "sasl",
		Stages: AfterTLS,
		Features: func(n *Negotiation) []*router.Element {
			c := n.c
			mechs := mechanismsElement(nsSASL, "mechanisms", c.mechanisms())
			f := []*router.Element{mechs}
			if types := c.binding().Types(); len(types) > 0 {
				cb := router.NewElement(nsSASLCB, "sasl-channel-binding")
				for _, t := range types {
					cb.Append(router.NewElement(nsSASLCB, "channel-binding", "type", t))
				}
				f = append(f, cb)
			}
			return f
		},
		Match: func(_ *Negotiation, e *router.Element) bool {
			return e.Name.Space == nsSASL && e.Name.Local == "auth"
		},
		Handle: func(ctx context.Context, n *Negotiation, e *router.Element) (Outcome, error) {
			c := n.c
			if ok, err := c.mayAuthenticate(saslV1); !ok {
				return Continue, err
			}
			restart, err := c.authenticate(ctx, e)
			if restart {
				return Restart, err
			}
			return Continue, err
		},
	}

	// preAuthStep answers the IQs a client may send after TLS and before
	// SASL through the handlers the server was given (preauth.go; in-band
	// registration, XEP-0077 §3.1.1, from modules/register), and offers
	// their stream features.
	preAuthStep = Step{
		Name:   "preauth",
		Stages: AfterTLS,
		Features: func(n *Negotiation) []*router.Element {
			var f []*router.Element
			for _, h := range n.c.srv.opts.PreAuth {
				if e := h.PreAuthFeature(n.c.host); e != nil {
					f = append(f, e)
				}
			}
			return f
		},
		Match: func(n *Negotiation, e *router.Element) bool {
			return n.c.secure() && !n.c.authed && n.c.preAuthHandler(e) != nil
		},
		Handle: func(ctx context.Context, n *Negotiation, e *router.Element) (Outcome, error) {
			return Continue, n.c.preAuthIQ(ctx, n.c.preAuthHandler(e), e)
		},
	}

	// bindStep is resource binding (RFC 6120 §7), which ends negotiation.
	bindStep = Step{
		Name:   "bind",
		Stages: AfterAuth,
		Features: func(*Negotiation) []*router.Element {
			return []*router.Element{router.NewElement(nsBind, "bind")}
		},
		Match: func(n *Negotiation, e *router.Element) bool {
			return n.c.authed && e.Name.Space == "" && e.Name.Local == "iq"
		},
		Handle: func(ctx context.Context, n *Negotiation, e *router.Element) (Outcome, error) {
			st, _ := router.NewStanza(e)
			payload := e.FirstChild()
			if e.Get("type") == "set" && payload != nil && payload.Name.Space == nsBind && payload.Name.Local == "bind" {
				ok, err := n.c.bind(ctx, st, payload)
				if ok {
					return bound, err
				}
				return Continue, err
			}
			// Anything else before binding has no sender address yet.
			return Continue, stream.NotAuthorized
		},
	}

	// sessionStep advertises the RFC 3921 session, optional (RFC 6121
	// does without it); its IQ, sent after binding, is a no-op answered
	// by Session.local.
	sessionStep = Step{
		Name:   "session",
		Stages: AfterAuth,
		Features: func(*Negotiation) []*router.Element {
			return []*router.Element{router.NewElement(nsSession, "session").Append(router.NewElement(nsSession, "optional"))}
		},
	}

	// moduleFeaturesStep advertises what modules add with
	// router.AddStreamFeature (XEP-0237 roster versioning) and
	// router.AddStreamFeatureFunc (XEP-0115 caps).
	moduleFeaturesStep = Step{
		Name:   "module-features",
		Stages: AfterAuth,
		Features: func(n *Negotiation) []*router.Element {
			return n.c.srv.opts.Router.StreamFeatures(n.Host())
		},
	}
)
