package turn

import (
	"context"
	"strconv"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
)

// NS is XEP-0215's namespace.
const NS = "urn:xmpp:extdisco:2"

const (
	targetServer = router.ToServer
	iqGet        = stanza.GetIQ
)

// service is one entry of a services or credentials answer.
type service struct {
	typ, host, transport string
	port                 int
	// secret signs TURN REST credentials; username and password are
	// static ones; neither: no credentials (STUN).
	secret             []byte
	username, password string
}

// services lists the built-in relay's services (STUN and TURN over UDP and
// TCP) and the external ones of the configuration.
func (t *Turn) services() []service {
	var out []service
	if t.server != nil {
		out = append(out,
			service{typ: "stun", host: t.host, port: t.port, transport: "udp"},
			service{typ: "turn", host: t.host, port: t.port, transport: "udp", secret: t.secret},
			service{typ: "turn", host: t.host, port: t.port, transport: "tcp", secret: t.secret},
		)
		if t.tlsPort != 0 {
			out = append(out, service{typ: "turns", host: t.host, port: t.tlsPort, transport: "tcp", secret: t.secret})
		}
	}
	for _, e := range t.opts.External {
		s := service{typ: e.Type, host: e.Host, port: e.Port, transport: e.Transport, username: e.Username, password: e.Password}
		if e.Secret != "" {
			s.secret = []byte(e.Secret)
		}
		out = append(out, s)
	}
	return out
}

// element renders s for user, with fresh credentials where it needs
// them.
func (t *Turn) element(s service, user string, now time.Time) *router.Element {
	e := router.NewElement(NS, "service", "type", s.typ, "host", s.host, "port", strconv.Itoa(s.port))
	if s.transport != "" {
		e.SetAttr("transport", s.transport)
	}
	switch {
	case s.secret != nil:
		expires := now.Add(t.opts.CredentialLifetime).Truncate(time.Second)
		name, pass := Credentials(s.secret, user, expires)
		e.SetAttr("restricted", "1")
		e.SetAttr("username", name)
		e.SetAttr("password", pass)
		e.SetAttr("expires", expires.UTC().Format(time.RFC3339))
	case s.username != "":
		e.SetAttr("restricted", "1")
		e.SetAttr("username", s.username)
		e.SetAttr("password", s.password)
	}
	return e
}

// extdisco answers <services/> (optionally of one type) and
// <credentials/> (for a host and type, optionally a port) from the
// server's local accounts; others get forbidden, as the XEP allows, since
// the credentials open the relay.
func (t *Turn) extdisco(_ context.Context, iq *router.Stanza) *router.Stanza {
	if iq.From.Localpart() == "" || !t.h.Router().ServesUsers(iq.From.Domainpart()) {
		return iq.ErrorReply(stanza.Auth, stanza.Forbidden, "only this server's accounts may use its services")
	}
	q := iq.FirstChild()
	user := iq.From.Bare().String()
	now := time.Now()
	switch q.Name.Local {
	case "services":
		out := router.NewElement(NS, "services")
		typ := q.Get("type")
		if typ != "" {
			out.SetAttr("type", typ)
		}
		for _, s := range t.services() {
			if typ == "" || s.typ == typ {
				out.Append(t.element(s, user, now))
			}
		}
		return iq.Reply(out)
	case "credentials":
		want := q.Child(NS, "service")
		if want == nil || want.Get("host") == "" || want.Get("type") == "" {
			return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "credentials need a service with host and type")
		}
		out := router.NewElement(NS, "credentials")
		for _, s := range t.services() {
			if s.host != want.Get("host") || s.typ != want.Get("type") || (want.Get("port") != "" && want.Get("port") != strconv.Itoa(s.port)) {
				continue
			}
			if s.secret == nil && s.username == "" {
				continue
			}
			out.Append(t.element(s, user, now))
		}
		if len(out.Elements()) == 0 {
			return iq.ErrorReply(stanza.Cancel, stanza.ItemNotFound, "no such service with credentials")
		}
		return iq.Reply(out)
	}
	return iq.ErrorReply(stanza.Cancel, stanza.FeatureNotImplemented, "")
}
