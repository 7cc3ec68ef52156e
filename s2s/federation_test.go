package s2s_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// The test federation: alice@a.test and bob@b.test, on two servers that
// reach each other by static routes on loopback.
const (
	domainA  = "a.test"
	domainB  = "b.test"
	password = "secret"
)

// wait bounds what a test waits for the servers to do in the background:
// generous, because it only bounds a failure.
const wait = 30 * time.Second

// login creates the account local on s, logs it in and makes it
// available, so that messages to its bare JID reach it (RFC 6121 §8.5.2).
func login(t *testing.T, s *testserver.Server, local string) *testserver.Client {
	t.Helper()
	s.AddUser(local, password)
	c := s.Login(local, password, testserver.LoginOptions{})
	c.MustSend(t, `<presence/>`)
	c.MustSync(t)
	return c
}

// isMessage matches a message by id, and by type unless typ is "".
func isMessage(id, typ string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		return e.Name.Local == "message" && e.Get("id") == id && (typ == "" || e.Get("type") == typ)
	}
}

// bounced waits for the error that answers the stanza id and returns its
// condition.
func bounced(t *testing.T, c *testserver.Client, kind, id string) string {
	t.Helper()
	e := c.MustNext(t, "the error for "+id, func(e *router.Element) bool {
		return e.Name.Local == kind && e.Get("id") == id && e.Get("type") == "error"
	})
	cond, _ := testserver.ErrorCondition(e)
	return cond
}

// streams waits until the s2s streams of s match every pattern (each a
// substring of one line of Streams()) and returns them. Streams are
// described as "out LOCAL→REMOTE ready (METHOD)" and "in ADDR
// REMOTE→LOCAL (METHOD)" or "in ADDR REMOTE (METHOD)".
func streams(t *testing.T, s *testserver.Server, patterns ...string) []string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := s.S2S.Streams()
		missing := ""
		for _, p := range patterns {
			if !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, p) }) {
				missing = p
				break
			}
		}
		if missing == "" {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no s2s stream like %q in %q", s.Domain(), missing, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noStreams waits until no s2s stream of s matches pattern.
func noStreams(t *testing.T, s *testserver.Server, pattern string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := s.S2S.Streams()
		if !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, pattern) }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: s2s streams like %q still open: %q", s.Domain(), pattern, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMessages sends messages between the domains, to full and bare JIDs,
// in both directions.
func TestMessages(t *testing.T) {
	servers := testserver.StartFederation(t, nil, domainA, domainB)
	alice, bob := login(t, servers[0], "alice"), login(t, servers[1], "bob")
	tests := []struct {
		name     string
		from, to *testserver.Client
		bare     bool
	}{
		{name: "a to b, full JID", from: alice, to: bob},
		{name: "a to b, bare JID", from: alice, to: bob, bare: true},
		{name: "b to a, full JID", from: bob, to: alice},
		{name: "b to a, bare JID", from: bob, to: alice, bare: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to := tt.to.LocalAddr()
			if tt.bare {
				to = to.Bare()
			}
			id := "m" + string(rune('0'+i))
			tt.from.MustSend(t, `<message to="`+to.String()+`" type="chat" id="`+id+`"><body>hello `+tt.name+`</body></message>`)
			m := tt.to.MustNext(t, "the message", isMessage(id, "chat"))
			if got, want := m.Get("from"), tt.from.LocalAddr().String(); got != want {
				t.Errorf("from %q, want %q", got, want)
			}
			if b := m.Child("", "body"); b == nil || b.Text() != "hello "+tt.name {
				t.Errorf("body lost: %s", m)
			}
		})
	}
}

// TestIQ sends IQ requests across: to the remote server itself, to a
// remote client, and to a remote resource that is not there, which the
// remote server answers with service-unavailable (RFC 6121 §8.5.3.2.1).
func TestIQ(t *testing.T) {
	servers := testserver.StartFederation(t, nil, domainA, domainB)
	alice, bob := login(t, servers[0], "alice"), login(t, servers[1], "bob")
	tests := []struct {
		name      string
		from      *testserver.Client
		to        string
		payload   string
		wantChild string // in the result's payload; "" for none
		wantCond  string // "" for a result
	}{
		{name: "disco#info to b.test", from: alice, to: domainB, payload: `<query xmlns="http://jabber.org/protocol/disco#info"/>`, wantChild: "identity"},
		{name: "disco#info to a.test", from: bob, to: domainA, payload: `<query xmlns="http://jabber.org/protocol/disco#info"/>`, wantChild: "identity"},
		{name: "version of b.test", from: alice, to: domainB, payload: `<query xmlns="jabber:iq:version"/>`, wantChild: "name"},
		{name: "version of a.test", from: bob, to: domainA, payload: `<query xmlns="jabber:iq:version"/>`, wantChild: "name"},
		{name: "ping to bob's client", from: alice, to: bob.LocalAddr().String(), payload: `<ping xmlns="urn:xmpp:ping"/>`},
		{name: "ping to alice's client", from: bob, to: alice.LocalAddr().String(), payload: `<ping xmlns="urn:xmpp:ping"/>`},
		{name: "to an absent resource at b", from: alice, to: "bob@b.test/nowhere", payload: `<query xmlns="jabber:iq:version"/>`, wantCond: "service-unavailable"},
		{name: "to an absent resource at a", from: bob, to: "alice@a.test/nowhere", payload: `<query xmlns="jabber:iq:version"/>`, wantCond: "service-unavailable"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "iq" + string(rune('a'+i))
			e := tt.from.MustRequest(t, `<iq type="get" id="`+id+`" to="`+tt.to+`">`+tt.payload+`</iq>`)
			if got := e.Get("from"); got != tt.to {
				t.Errorf("answer from %q, want %q", got, tt.to)
			}
			if tt.wantCond != "" {
				testserver.WantIQError(t, e, tt.wantCond, "cancel")
				return
			}
			testserver.WantResult(t, e)
			if tt.wantChild != "" {
				q := e.FirstChild()
				if q == nil || slices.IndexFunc(q.Elements(), func(c *router.Element) bool { return c.Name.Local == tt.wantChild }) < 0 {
					t.Errorf("no <%s/> in %s", tt.wantChild, e)
				}
			}
		})
	}
}

// TestDialbackBothWays checks that servers whose certificates the other
// does not trust (the self-signed ones test servers generate)
// authenticate by dialback in each direction, and by nothing else.
func TestDialbackBothWays(t *testing.T) {
	servers := testserver.StartFederation(t, nil, domainA, domainB)
	a, b := servers[0], servers[1]
	alice, bob := login(t, a, "alice"), login(t, b, "bob")
	alice.MustSend(t, `<message to="bob@b.test" type="chat" id="m1"><body>1</body></message>`)
	bob.MustNext(t, "alice's message", isMessage("m1", "chat"))
	bob.MustSend(t, `<message to="alice@a.test" type="chat" id="m2"><body>2</body></message>`)
	alice.MustNext(t, "bob's message", isMessage("m2", "chat"))

	for _, s := range []struct {
		srv           *testserver.Server
		local, remote string
	}{{a, domainA, domainB}, {b, domainB, domainA}} {
		got := streams(t, s.srv,
			"out "+s.local+"→"+s.remote+" ready (dialback)",
			s.remote+"→"+s.local+" (dialback)")
		for _, l := range got {
			if strings.Contains(l, "SASL EXTERNAL") {
				t.Errorf("%s: unexpected SASL EXTERNAL stream: %s", s.local, l)
			}
		}
	}
}

// caFederation starts a.test and b.test with certificates from one test
// CA; each trusts the CA if its domain is in trusting, and each has a
// certificate from the CA if its domain is in issued (else a self-signed
// one). policy is s2s.auth on both.
func caFederation(t *testing.T, trusting, issued []string, policy string) (a, b *testserver.Server) {
	t.Helper()
	ca := testserver.NewCA(t)
	files := map[string][2]string{}
	for _, d := range issued {
		cert, key := ca.Issue(d)
		files[d] = [2]string{cert, key}
	}
	servers := testserver.StartFederation(t, func(c *config.Config) {
		d := c.Hosts[0].Domain
		if f, ok := files[d]; ok {
			c.Hosts[0].Cert, c.Hosts[0].Key = f[0], f[1]
		}
		if slices.Contains(trusting, d) {
			c.S2S.CAFile = ca.File
		}
		c.S2S.Auth = policy
	}, domainA, domainB)
	for _, s := range servers {
		// The clients of a server with a CA certificate must trust it.
		s.Roots.AppendCertsFromPEM(ca.PEM)
	}
	return servers[0], servers[1]
}

// TestSASLExternal checks that servers with certificates the other trusts
// authenticate with SASL EXTERNAL in both directions (RFC 6120 §6.4,
// XEP-0178), and that a server that requires a valid certificate sends
// nothing to, and accepts nothing from, a peer without one: the stanza
// bounces with remote-server-not-found.
func TestSASLExternal(t *testing.T) {
	both := []string{domainA, domainB}
	t.Run("both trusted", func(t *testing.T) {
		a, b := caFederation(t, both, both, config.S2SAuthAllowDialback)
		alice, bob := login(t, a, "alice"), login(t, b, "bob")
		alice.MustSend(t, `<message to="bob@b.test" type="chat" id="m1"><body>1</body></message>`)
		bob.MustNext(t, "alice's message", isMessage("m1", "chat"))
		bob.MustSend(t, `<message to="alice@a.test" type="chat" id="m2"><body>2</body></message>`)
		alice.MustNext(t, "bob's message", isMessage("m2", "chat"))
		streams(t, a, "out a.test→b.test ready (SASL EXTERNAL)", " b.test (SASL EXTERNAL)")
		streams(t, b, "out b.test→a.test ready (SASL EXTERNAL)", " a.test (SASL EXTERNAL)")
		for _, s := range []*testserver.Server{a, b} {
			for _, l := range s.S2S.Streams() {
				if strings.Contains(l, "dialback") {
					t.Errorf("%s: unexpected dialback stream: %s", s.Domain(), l)
				}
			}
		}
	})
	t.Run("require_cert, peer untrusted", func(t *testing.T) {
		// a.test requires certificates and has one b.test cannot check
		// (b.test trusts no CA) but b.test has only a self-signed one.
		a, b := caFederation(t, both, []string{domainA}, config.S2SAuthRequireCert)
		alice, bob := login(t, a, "alice"), login(t, b, "bob")
		tests := []struct {
			name     string
			from, to *testserver.Client
			toJID    string
		}{
			{name: "a.test does not send to b.test", from: alice, to: bob, toJID: "bob@b.test"},
			{name: "a.test accepts nothing from b.test", from: bob, to: alice, toJID: "alice@a.test"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tt.from.MustSend(t, `<message to="`+tt.toJID+`" type="chat" id="r1"><body>no</body></message>`)
				if cond := bounced(t, tt.from, "message", "r1"); cond != "remote-server-not-found" {
					t.Errorf("bounced with %s, want remote-server-not-found", cond)
				}
				tt.to.ExpectNone(t, "the message", isMessage("r1", ""))
			})
		}
		for _, s := range []*testserver.Server{a, b} {
			for _, l := range s.S2S.Streams() {
				if strings.Contains(l, "ready") || strings.Contains(l, "(") {
					t.Errorf("%s: unexpected authenticated stream: %s", s.Domain(), l)
				}
			}
		}
	})
}
