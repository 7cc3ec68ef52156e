package c2s

import (
	"context"

	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/router"
)

// PreAuthIQHandler answers the IQs that a client sends on a TLS stream
// before it authenticates, in one payload namespace, and may offer a stream
// feature for them. In-band registration (XEP-0077 §3.1.1, implemented by
// modules/register) is the one there is: it happens before SASL, when the
// stream has no address to route from, so it cannot go through the router,
// and c2s offers this seam instead of knowing the protocol.
//
// Its methods use router and standard types only, so that a module can
// implement it without importing c2s; the server's wiring hands c2s the
// running modules that do (Options.PreAuth).
type PreAuthIQHandler interface {
	// PreAuthNamespace is the namespace of the IQ payloads handled.
	PreAuthNamespace() string
	// PreAuthFeature returns the stream feature to offer to a client of
	// host after TLS and before SASL, or nil for none.
	PreAuthFeature(host string) *router.Element
	// PreAuthStream is called at a connection's first IQ for the handler,
	// with the served domain the client asked for and its IP address. The
	// function it returns answers that IQ and every later one on the
	// connection, from the connection's reading goroutine only, so it can
	// keep per-connection state (such as "an account was registered
	// here") without locking. The IQ has no 'from', a 'to' of host or
	// none, an ID, and one payload; the answer is written back at once.
	PreAuthStream(host, ip string) func(ctx context.Context, iq *router.Stanza) *router.Stanza
}

// nsRegister is XEP-0077's namespace. c2s does not implement in-band
// registration (modules/register does, through PreAuthIQHandler), but a
// client that asks to register on a server without the module gets the
// XEP's service-unavailable (§3.1.1) rather than a closed stream.
const nsRegister = "jabber:iq:register"

// maxPreAuthRequests bounds the IQs one unauthenticated stream may send;
// past it the stream is closed, as after too many SASL failures.
const maxPreAuthRequests = 10

// preAuthHandler returns the handler of e, an element sent after TLS and
// before SASL, or nil if e is no IQ that one handles. A registration IQ
// that no handler takes gets unavailable.
func (c *conn) preAuthHandler(e *router.Element) PreAuthIQHandler {
	if e.Name.Space != "" || e.Name.Local != "iq" {
		return nil
	}
	p := e.FirstChild()
	if p == nil || p.Name.Local != "query" {
		return nil
	}
	for _, h := range c.srv.opts.PreAuth {
		if h.PreAuthNamespace() == p.Name.Space {
			return h
		}
	}
	if p.Name.Space == nsRegister {
		return unavailable{}
	}
	return nil
}

// unavailable answers every IQ with service-unavailable and offers no
// feature: registration on a server without the register module.
type unavailable struct{}

func (unavailable) PreAuthNamespace() string              { return nsRegister }
func (unavailable) PreAuthFeature(string) *router.Element { return nil }

func (unavailable) PreAuthStream(string, string) func(context.Context, *router.Stanza) *router.Stanza {
	return func(_ context.Context, iq *router.Stanza) *router.Stanza {
		return iq.ErrorReply(stanza.Cancel, stanza.ServiceUnavailable, "")
	}
}

// preAuthIQ answers an IQ sent after TLS and before SASL through its
// handler. It returns an error only when the stream must end.
func (c *conn) preAuthIQ(ctx context.Context, h PreAuthIQHandler, e *router.Element) error {
	c.preAuthRequests++
	if c.preAuthRequests > maxPreAuthRequests {
		return stream.PolicyViolation
	}
	typ := e.Get("type")
	if typ != "get" && typ != "set" {
		// Nothing was asked of this client, so it has nothing to answer.
		return stream.NotAuthorized
	}
	// The client has no address yet: whatever 'from' it wrote is dropped.
	e.SetAttr("from", "")
	st, err := router.NewStanza(e)
	if err != nil {
		return c.writeElement(st.ErrorReply(stanza.Modify, stanza.JIDMalformed, "").Element)
	}
	if st.To.Domainpart() != "" && st.To.String() != c.host {
		// Only this host can be asked anything here.
		return c.writeElement(st.ErrorReply(stanza.Cancel, stanza.ServiceUnavailable, "").Element)
	}
	if cond := checkStanza(st); cond != "" {
		return c.writeElement(st.ErrorReply(router.DefaultErrorType(cond), cond, "").Element)
	}
	ns := h.PreAuthNamespace()
	answer, ok := c.preAuth[ns]
	if !ok {
		if c.preAuth == nil {
			c.preAuth = make(map[string]func(context.Context, *router.Stanza) *router.Stanza, 1)
		}
		answer = h.PreAuthStream(c.host, c.ip)
		c.preAuth[ns] = answer
	}
	return c.writeElement(answer(ctx, st).Element)
}
