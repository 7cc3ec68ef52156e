package register

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/internal/connlimit"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// Registration with a server (XEP-0077 §3.1.1): an unauthenticated client
// on a TLS stream asks for the fields, creates an account, and then
// authenticates as usual. It happens before the stream has an address to
// route from, so c2s hands these IQs to the module through its
// PreAuthIQHandler seam (c2s/preauth.go), which the methods below
// implement with router types only; the server's wiring connects them.

// NSFeature is the stream feature of XEP-0077 §8.
const NSFeature = "http://jabber.org/features/iq-register"

// PreAuthNamespace is the namespace of the IQs c2s hands to PreAuthStream.
func (r *Register) PreAuthNamespace() string { return NS }

// PreAuthFeature offers registration in the stream features before SASL,
// when it is allowed.
func (r *Register) PreAuthFeature(string) *router.Element {
	if !r.opts.AllowRegistration {
		return nil
	}
	return router.NewElement(NSFeature, "register")
}

// PreAuthStream returns what answers the registration IQs of one
// unauthenticated connection from ip to host.
func (r *Register) PreAuthStream(host, ip string) func(context.Context, *router.Stanza) *router.Stanza {
	s := &signup{r: r, host: host, ip: ip}
	return s.answer
}

// signup is the registration state of one unauthenticated connection.
type signup struct {
	r        *Register
	host, ip string
	// registered is set once an account was created on the stream.
	registered bool
}

// answer answers a registration get or set.
func (s *signup) answer(ctx context.Context, iq *router.Stanza) *router.Stanza {
	if !s.r.opts.AllowRegistration {
		// §3.1: a host without in-band registration answers
		// service-unavailable.
		return iq.ErrorReply(stanza.Cancel, stanza.ServiceUnavailable, "")
	}
	if iq.Type() == "get" {
		q := router.NewElement(NS, "query").Append(
			router.NewElement(NS, "instructions").AppendText("Choose a username and password to register with "+s.host+"."),
			router.NewElement(NS, "username"),
			router.NewElement(NS, "password"),
		)
		return iq.Reply(q)
	}
	return s.createAccount(ctx, iq)
}

// createAccount handles a registration set and returns the answer.
func (s *signup) createAccount(ctx context.Context, iq *router.Stanza) *router.Stanza {
	q := iq.FirstChild()
	if q.Child(NS, "remove") != nil {
		// §3.2: removal needs an account, and so authentication.
		return iq.ErrorReply(stanza.Wait, stanza.UnexpectedRequest, "authenticate first to remove an account")
	}
	if s.registered {
		// §3.1.1: one account per stream, then authenticate.
		return iq.ErrorReply(stanza.Modify, stanza.NotAcceptable, "an account was already registered on this stream")
	}
	var username, password string
	if u := q.Child(NS, "username"); u != nil {
		username = strings.TrimSpace(u.Text())
	}
	if p := q.Child(NS, "password"); p != nil {
		password = p.Text()
	}
	if username == "" || password == "" {
		// §3.1: missing fields, empty password included.
		return iq.ErrorReply(stanza.Modify, stanza.NotAcceptable, "a username and a non-empty password are required")
	}
	acct, err := jid.New(username, s.host, "")
	if err != nil || acct.Localpart() == "" {
		return iq.ErrorReply(stanza.Modify, stanza.NotAcceptable, "invalid username")
	}
	// Checked before the expensive key derivation, so that asking for
	// taken names costs the server nothing.
	if taken, err := s.r.accountExists(ctx, acct); err != nil || taken {
		return s.r.registrationError(iq, acct, err)
	}
	log := s.r.h.Logger()
	if !s.r.limit.reserve(s.ip) {
		log.Warn("registration throttled", "ip", s.ip)
		// A local policy, and one that passes with time: policy-violation
		// of type wait (RFC 6120 §8.3.3.12, §8.3.2), with the reason.
		return iq.ErrorReply(stanza.Wait, stanza.PolicyViolation, "too many accounts registered from your address; try again later")
	}
	if _, err := s.r.users().Add(ctx, acct.String(), password); err != nil {
		s.r.limit.release(s.ip)
		// Add reports a name taken meanwhile only as text; look again.
		taken, lookErr := s.r.accountExists(ctx, acct)
		if lookErr == nil && !taken {
			lookErr = err
		}
		return s.r.registrationError(iq, acct, lookErr)
	}
	s.registered = true
	log.Info("account registered in band", "user", acct.String(), "ip", s.ip)
	return iq.Reply()
}

// accountExists looks acct up.
func (r *Register) accountExists(ctx context.Context, acct jid.JID) (bool, error) {
	_, err := r.h.Store().Users().Get(ctx, acct.Domainpart(), acct.Localpart())
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// registrationError answers a registration that failed: internal error if
// err is set, else the name is taken (§3.1 conflict).
func (r *Register) registrationError(iq *router.Stanza, acct jid.JID, err error) *router.Stanza {
	if err != nil {
		r.h.Logger().Error("register: create account", "user", acct.String(), "err", err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	return iq.ErrorReply(stanza.Cancel, stanza.Conflict, "")
}

// maxTracked bounds the addresses registrationLimit tracks before it
// prunes expired ones.
const maxTracked = 10000

// registrationLimit counts the accounts created from each IP address (IPv6
// per /64, like c2s's login throttle) over a sliding window (per_ip within
// window).
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
