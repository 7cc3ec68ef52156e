package c2s

import (
	"context"
	"encoding/base64"
	"log/slog"
	"regexp"
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// SASL2 (XEP-0388): the same mechanisms and server code as SASL (sasl.go),
// in another profile, which authenticates without a stream restart and
// carries requests for what follows authentication inline: Bind 2
// (bind2.go), stream management resumption, FAST tokens (fast.go). The
// features of the authenticated stream follow <success/> at once.

// nsSASL2 is the namespace of XEP-0388.
const nsSASL2 = "urn:xmpp:sasl:2"

// UserAgent is what a SASL2 client says about itself in <user-agent/>
// (XEP-0388 §"Initiation"): a stable id of the installation, which Bind 2
// derives a stable resource from and FAST binds its tokens to, and text
// for the user about the software and the device. Servers must not show it
// to other entities: it is for the account's owner and the operator.
type UserAgent struct {
	// ID is the installation's UUID, "" when the client sent none.
	ID string
	// Software and Device are the client's descriptions, possibly "".
	Software, Device string
}

// maxAgentText bounds what is kept of <software/> and <device/>: they are
// kept as long as the session, for the user and the logs.
const maxAgentText = 128

// uuidPattern is the XEP's schema type Uuid.
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// sasl2Request is a parsed <authenticate/>.
type sasl2Request struct {
	exchange exchangeRequest
	agent    UserAgent
	// The inline requests, nil when absent.
	bind   *router.Element // Bind 2 <bind/>
	resume *router.Element // XEP-0198 <resume/>
	fast   fastRequest     // XEP-0484 <fast/> and <request-token/>
}

// sasl2Step offers SASL2 beside SASL after TLS and handles <authenticate/>.
var sasl2Step = Step{
	Name:   "sasl2",
	Stages: AfterTLS,
	Features: func(n *Negotiation) []*router.Element {
		if f := n.c.sasl2Feature(); f != nil {
			return []*router.Element{f}
		}
		return nil
	},
	Match: func(_ *Negotiation, e *router.Element) bool {
		return e.Name.Space == nsSASL2 && e.Name.Local == "authenticate"
	},
	Handle: func(ctx context.Context, n *Negotiation, e *router.Element) (Outcome, error) {
		// §"Multiple Authentication" and §"Security Considerations" ask
		// what RFC 6120 does: a stream error once authenticated, and
		// nothing before TLS.
		if ok, err := n.c.mayAuthenticate(saslV2); !ok {
			return Continue, err
		}
		return n.c.authenticate2(ctx, e)
	},
}

// sasl2Feature is the <authentication/> feature: the mechanisms of SASL
// and what can be negotiated inline. The XEP-0440 channel-binding list is
// the SASL step's, a feature of its own beside this one. Nil when no
// mechanism is offered (the XEP forbids the feature then).
func (c *conn) sasl2Feature() *router.Element {
	mechs := c.mechanisms()
	if len(mechs) == 0 {
		return nil
	}
	f := mechanismsElement(nsSASL2, "authentication", mechs)
	inline := router.NewElement(nsSASL2, "inline")
	inline.Append(c.bind2Feature(), router.NewElement(nsSM, "sm"))
	if fast := c.fastFeature(); fast != nil {
		inline.Append(fast)
	}
	return f.Append(inline)
}

// parseAuthenticate reads <authenticate/>; a failure is the client's
// mistake, answered before any mechanism runs.
func (c *conn) parseAuthenticate(e *router.Element) (sasl2Request, failure) {
	var req sasl2Request
	req.exchange.mech = e.Get("mechanism")
	if req.exchange.mech == "" {
		return req, failure{cond: "invalid-mechanism", text: "authenticate needs a mechanism attribute"}
	}
	for _, ch := range e.Elements() {
		switch {
		case ch.Name.Space == nsSASL2 && ch.Name.Local == "initial-response":
			req.exchange.initial, req.exchange.hasInitial = ch.Text(), true
		case ch.Name.Space == nsSASL2 && ch.Name.Local == "user-agent":
			ua, ok := parseUserAgent(ch)
			if !ok {
				return req, failure{cond: "malformed-request", text: "the user-agent id must be a UUID"}
			}
			req.agent = ua
		case ch.Name.Space == nsBind2 && ch.Name.Local == "bind":
			req.bind = ch
		case ch.Name.Space == nsSM && ch.Name.Local == "resume":
			req.resume = ch
		case ch.Name.Space == nsFAST && c.srv.fastOn():
			if f := c.parseFAST(&req, ch); f.cond != "" {
				return req, f
			}
		}
		// Other inline requests are of features we did not offer: the
		// XEP has them ignored.
	}
	var f failure
	if c.srv.fastOn() {
		f = checkFAST(&req)
	}
	req.exchange.fast = req.fast
	return req, f
}

// parseUserAgent reads <user-agent/>; ok is false for an id that is not
// a UUID.
func parseUserAgent(e *router.Element) (UserAgent, bool) {
	ua := UserAgent{ID: e.Get("id")}
	if ua.ID != "" && !uuidPattern.MatchString(ua.ID) {
		return UserAgent{}, false
	}
	ua.ID = strings.ToLower(ua.ID)
	if s := e.Child(nsSASL2, "software"); s != nil {
		ua.Software = agentText(s.Text())
	}
	if d := e.Child(nsSASL2, "device"); d != nil {
		ua.Device = agentText(d.Text())
	}
	return ua, true
}

// agentText trims a description to maxAgentText bytes of valid UTF-8.
func agentText(s string) string {
	s = strings.TrimSpace(s)
	for len(s) > maxAgentText {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// authenticate2 runs a SASL2 <authenticate/>: the exchange, then, on
// success only, the inline requests, whose results go in <success/>, which
// the features of the authenticated stream follow. bound is returned when
// a session was bound or resumed inline. The stream counts as
// authenticated only once <success/> is sent: an inline bind that is
// refused fails the whole request, and leaves the stream as it was
// (XEP-0388 §"Completing Authentication").
func (c *conn) authenticate2(ctx context.Context, e *router.Element) (Outcome, error) {
	req, f := c.parseAuthenticate(e)
	if f.cond != "" {
		return Continue, c.saslFailure(saslV2, f)
	}
	res, err := c.exchange(ctx, saslV2, req.exchange)
	if err != nil {
		return Continue, err
	}
	if res.f.cond != "" {
		return Continue, c.saslFailure(saslV2, res.f)
	}
	// Who the inline requests are for; loggedIn when <success/> goes out.
	c.user, c.agent = res.user, req.agent
	s := &sasl2Success{c: c, el: router.NewElement(nsSASL2, "success"), mech: req.exchange.mech, fast: req.fast, used: res.token}
	if res.data != nil {
		s.el.Append(router.NewElement(nsSASL2, "additional-data").AppendText(base64.StdEncoding.EncodeToString(res.data)))
	}
	out, err := c.sasl2Inline(ctx, req, s)
	if err == nil && !s.sent {
		// Refused inline: not authenticated after all.
		c.user, c.agent = "", UserAgent{}
	}
	return out, err
}

// sasl2Success is the <success/> being built, sent once with the features
// of the authenticated stream.
type sasl2Success struct {
	c  *conn
	el *router.Element
	// mech is the mechanism that authenticated; fast and used are the
	// FAST request and the token that authenticated, if any, for the
	// <token/> that send adds.
	mech string
	fast fastRequest
	used *storage.FastToken
	// extra are the inline results, after the authorization identifier.
	extra []*router.Element
	// sent says send has run: the stream is authenticated.
	sent bool
}

// send marks the connection authenticated and writes <success/> with the
// authorization identifier id (the bare JID, or the full JID once a
// session is bound), the inline results and the FAST token, then the
// stream features, in one write: nothing of a session's writer may come
// between them. bound says a session was bound or resumed inline, which
// the connection does not carry yet.
func (s *sasl2Success) send(ctx context.Context, id string, bound bool) error {
	c := s.c
	s.sent = true
	c.loggedIn(saslV2, c.user, s.mech)
	if c.agent.ID != "" || c.agent.Software != "" {
		c.log.Info("c2s sasl2 user agent", slog.String("id", c.agent.ID),
			slog.String("software", c.agent.Software), slog.String("device", c.agent.Device))
	}
	if token := c.fastInline(ctx, s.fast, s.used); token != nil {
		s.extra = append(s.extra, token)
	}
	s.el.Append(router.NewElement(nsSASL2, "authorization-identifier").AppendText(id))
	s.el.Append(s.extra...)
	buf := s.el.AppendXML(nil, router.NSClient)
	stage := c.stage()
	if bound {
		stage = AfterBind
	}
	return c.write(c.featuresAt(stage).AppendXML(buf, router.NSClient))
}

// sasl2Inline handles the inline requests of an authenticated
// <authenticate/>: resumption first, and binding only if there was none
// or it failed (XEP-0386 §"Performing the bind").
func (c *conn) sasl2Inline(ctx context.Context, req sasl2Request, s *sasl2Success) (Outcome, error) {
	bare, _ := jid.New(c.user, c.host, "")
	if req.resume != nil {
		out, err := c.resumeInline(ctx, req.resume, s)
		if err != nil || out == bound {
			return out, err
		}
	}
	if req.bind != nil {
		return c.bind2(ctx, req.bind, s)
	}
	return Continue, s.send(ctx, bare.String(), false)
}
