package c2s

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/internal/connlimit"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// In-band registration (XEP-0077 §3.1.1, "Registration with a Server"): an
// unauthenticated client on a TLS stream asks for the fields, creates an
// account, and then authenticates as usual. It lives here and not in a
// module because it happens before the stream has an address to route
// from; what an authenticated user does with the namespace (password
// change, removal) is modules/register.

// Namespaces of XEP-0077.
const (
	nsRegister        = "jabber:iq:register"
	nsRegisterFeature = "http://jabber.org/features/iq-register"
)

// maxRegisterRequests bounds the registration IQs one unauthenticated stream
// may send; past it the stream is closed, as after too many SASL failures.
const maxRegisterRequests = 10

// isRegisterIQ tells whether e is an IQ with a jabber:iq:register query.
func isRegisterIQ(e *router.Element) bool {
	if e.Name.Space != "" || e.Name.Local != "iq" {
		return false
	}
	p := e.FirstChild()
	return p != nil && p.Name.Space == nsRegister && p.Name.Local == "query"
}

// register answers a registration IQ sent after TLS and before SASL. It
// returns an error only when the stream must end.
func (c *conn) register(ctx context.Context, e *router.Element) error {
	c.registerRequests++
	if c.registerRequests > maxRegisterRequests {
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
		// Only this host's own accounts can be registered here.
		return c.writeElement(st.ErrorReply(stanza.Cancel, stanza.ServiceUnavailable, "").Element)
	}
	if cond := checkStanza(st); cond != "" {
		return c.writeElement(st.ErrorReply(router.DefaultErrorType(cond), cond, "").Element)
	}
	if !c.srv.opts.Config.Registration.Enabled {
		// §3.1: a host without in-band registration answers
		// service-unavailable.
		return c.writeElement(st.ErrorReply(stanza.Cancel, stanza.ServiceUnavailable, "").Element)
	}
	if typ == "get" {
		q := router.NewElement(nsRegister, "query").Append(
			router.NewElement(nsRegister, "instructions").AppendText("Choose a username and password to register with "+c.host+"."),
			router.NewElement(nsRegister, "username"),
			router.NewElement(nsRegister, "password"),
		)
		return c.writeElement(st.Reply(q).Element)
	}
	return c.writeElement(c.createAccount(ctx, st).Element)
}

// createAccount handles a registration set and returns the answer.
func (c *conn) createAccount(ctx context.Context, iq *router.Stanza) *router.Stanza {
	q := iq.FirstChild()
	if q.Child(nsRegister, "remove") != nil {
		// §3.2: removal needs an account, and so authentication.
		return iq.ErrorReply(stanza.Wait, stanza.UnexpectedRequest, "authenticate first to remove an account")
	}
	if c.registered {
		// §3.1.1: one account per stream, then authenticate.
		return iq.ErrorReply(stanza.Modify, stanza.NotAcceptable, "an account was already registered on this stream")
	}
	var username, password string
	if u := q.Child(nsRegister, "username"); u != nil {
		username = strings.TrimSpace(u.Text())
	}
	if p := q.Child(nsRegister, "password"); p != nil {
		password = p.Text()
	}
	if username == "" || password == "" {
		// §3.1: missing fields, empty password included.
		return iq.ErrorReply(stanza.Modify, stanza.NotAcceptable, "a username and a non-empty password are required")
	}
	acct, err := jid.New(username, c.host, "")
	if err != nil || acct.Localpart() == "" {
		return iq.ErrorReply(stanza.Modify, stanza.NotAcceptable, "invalid username")
	}
	// Checked before the expensive key derivation, so that asking for
	// taken names costs the server nothing.
	if taken, err := c.accountExists(ctx, acct); err != nil || taken {
		return c.registrationError(iq, acct, err)
	}
	if !c.srv.registrations.reserve(c.ip) {
		c.log.Warn("c2s registration throttled", slog.String("ip", c.ip))
		// A local policy, and one that passes with time: policy-violation
		// of type wait (RFC 6120 §8.3.3.12, §8.3.2), with the reason.
		return iq.ErrorReply(stanza.Wait, stanza.PolicyViolation, "too many accounts registered from your address; try again later")
	}
	users := admin.Users{Config: c.srv.opts.Config, Users: c.srv.opts.Users}
	if _, err := users.Add(ctx, acct.String(), password); err != nil {
		c.srv.registrations.release(c.ip)
		// Add reports a name taken meanwhile only as text; look again.
		taken, lookErr := c.accountExists(ctx, acct)
		if lookErr == nil && !taken {
			lookErr = err
		}
		return c.registrationError(iq, acct, lookErr)
	}
	c.registered = true
	c.log.Info("c2s account registered in band", slog.String("user", acct.String()), slog.String("ip", c.ip))
	return iq.Reply()
}

// accountExists looks acct up.
func (c *conn) accountExists(ctx context.Context, acct jid.JID) (bool, error) {
	_, err := c.srv.opts.Users.Get(ctx, acct.Domainpart(), acct.Localpart())
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// registrationError answers a registration that failed: internal error if
// err is set, else the name is taken (§3.1 conflict).
func (c *conn) registrationError(iq *router.Stanza, acct jid.JID, err error) *router.Stanza {
	if err != nil {
		c.log.Error("c2s register", slog.String("user", acct.String()), slog.Any("err", err))
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	return iq.ErrorReply(stanza.Cancel, stanza.Conflict, "")
}

// maxTracked bounds the addresses registrationLimit tracks before it
// prunes expired ones.
const maxTracked = 10000

// registrationLimit counts the accounts created from each IP address (IPv6
// per /64, like Throttle) over a sliding window (registration.per_ip
// within registration.window).
type registrationLimit struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	created map[string][]time.Time // oldest first, at most max
}

func newRegistrationLimit(max int, window time.Duration) *registrationLimit {
	return &registrationLimit{max: max, window: window, now: time.Now, created: map[string][]time.Time{}}
}

// reserve counts one account for ip, unless ip has used up its allowance.
// A reservation is taken before the account is created, so that parallel
// connections from one address cannot all pass.
func (l *registrationLimit) reserve(ip string) bool {
	ip = connlimit.Block(ip).String()
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.created) >= maxTracked {
		for k, times := range l.created {
			if now.Sub(times[len(times)-1]) > l.window {
				delete(l.created, k)
			}
		}
	}
	times := l.created[ip]
	for len(times) > 0 && now.Sub(times[0]) > l.window {
		times = times[1:]
	}
	if len(times) >= l.max {
		l.created[ip] = times
		return false
	}
	l.created[ip] = append(times, now)
	return true
}

// release gives back the latest reservation of ip, whose account could not
// be created.
func (l *registrationLimit) release(ip string) {
	ip = connlimit.Block(ip).String()
	l.mu.Lock()
	defer l.mu.Unlock()
	times := l.created[ip]
	switch len(times) {
	case 0:
	case 1:
		delete(l.created, ip)
	default:
		l.created[ip] = times[:len(times)-1]
	}
}
