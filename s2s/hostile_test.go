package s2s_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// Domains that hand-driven peers claim. b.test routes each to a fake
// Authoritative Server that vouches for the keys the test registers.
var evilDomains = []string{"evil.test", "evil2.test", "evil3.test"}

// authority is a fake Authoritative Server for the evil domains: it
// answers <db:verify/> valid only for a key registered for the stream id
// and the domain pair (XEP-0220 §2.2.2), as a real one would.
type authority struct {
	*fakeServer
	mu   sync.Mutex
	keys map[[3]string]string // {receiving, originating, stream id} → key
}

func (a *authority) register(receiving, originating, id, key string) {
	a.mu.Lock()
	a.keys[[3]string{receiving, originating, id}] = key
	a.mu.Unlock()
}

func (a *authority) check(v *router.Element) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	key, ok := a.keys[[3]string{v.Get("from"), v.Get("to"), v.Get("id")}]
	return ok && key == strings.TrimSpace(v.Text())
}

// transport is how a hand-driven peer reaches b.test: over TLS after
// STARTTLS, or in plaintext, which b.test allows for the evil domains.
type transport struct {
	name string
	tls  bool
}

var transports = []transport{{"starttls", true}, {"plaintext", false}}

// hostileSetup starts b.test with bob logged in and an authority for the
// evil domains.
func hostileSetup(t *testing.T, tr transport) (b *testserver.Server, bob *testserver.Client, auth *authority) {
	t.Helper()
	auth = &authority{keys: map[[3]string]string{}}
	f := &fakeServer{domain: "evil.test", verify: auth.check}
	if tr.tls {
		f.tlsConfig = selfSignedTLS(t, "evil.test")
	}
	auth.fakeServer = startFake(t, f)
	b = testserver.StartFederation(t, func(c *config.Config) {
		for _, d := range evilDomains {
			c.S2S.Routes[d] = auth.addr()
		}
		if !tr.tls {
			c.S2S.PlaintextDomains = evilDomains
		}
	}, domainB)[0]
	bob = login(t, b, "bob")
	return b, bob, auth
}

// connect opens a hand-driven stream from the evil domains to b.test,
// with TLS if tr says so, not yet authenticated.
func connect(t *testing.T, b *testserver.Server, tr transport) *rawS2S {
	t.Helper()
	c := dialS2S(t, b.Addr(config.ListenerS2SStartTLS).String())
	c.open("evil.test", domainB)
	if tr.tls {
		c.startTLS("evil.test", domainB)
	}
	if c.features.Child(nsDialbackFea, "dialback") == nil {
		t.Fatalf("dialback not offered: %s", c.features)
	}
	return c
}

// authenticate runs dialback for originating on c with a key the
// authority vouches for, and checks that b.test accepts it.
func authenticate(t *testing.T, c *rawS2S, auth *authority, originating string) {
	t.Helper()
	key := router.NewID() + router.NewID()
	auth.register(domainB, originating, c.id, key)
	if r := c.dialback(originating, domainB, key); r.Get("type") != "valid" {
		t.Fatalf("dialback for %s: %s, want valid", originating, r)
	}
}

// TestInboundAddressing checks what b.test does with stanzas on an
// inbound stream from a peer that authenticated evil.test by dialback:
// it delivers those from evil.test, and closes the stream with the stream
// error RFC 6120 §4.9.3 names for the others, delivering nothing.
func TestInboundAddressing(t *testing.T) {
	tests := []struct {
		name string
		// auth says whether the peer authenticates first.
		auth   bool
		stanza string
		// want is the stream error, or "" when the stanza is delivered.
		want string
	}{
		{name: "from the authenticated domain", auth: true, stanza: `<message from="mallory@evil.test/x" to="bob@b.test" type="chat" id="s1"><body>hi</body></message>`},
		{name: "spoofed from", auth: true, stanza: `<message from="x@a.test" to="bob@b.test" type="chat" id="s1"><body>I am alice's friend</body></message>`, want: "invalid-from"},
		{name: "spoofed from a served domain", auth: true, stanza: `<message from="admin@b.test" to="bob@b.test" type="chat" id="s1"><body>reset your password</body></message>`, want: "invalid-from"},
		{name: "to a domain not served", auth: true, stanza: `<message from="mallory@evil.test" to="carol@c.test" type="chat" id="s1"><body>hi</body></message>`, want: "host-unknown"},
		{name: "without from", auth: true, stanza: `<message to="bob@b.test" type="chat" id="s1"><body>hi</body></message>`, want: "improper-addressing"},
		{name: "without to", auth: true, stanza: `<message from="mallory@evil.test" type="chat" id="s1"><body>hi</body></message>`, want: "improper-addressing"},
		{name: "before authentication", stanza: `<message from="mallory@evil.test" to="bob@b.test" type="chat" id="s1"><body>hi</body></message>`, want: "not-authorized"},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			b, bob, auth := hostileSetup(t, tr)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					c := connect(t, b, tr)
					if tt.auth {
						authenticate(t, c, auth, "evil.test")
					}
					c.send(tt.stanza)
					if tt.want == "" {
						m := bob.MustNext(t, "the message", isMessage("s1", "chat"))
						if m.Get("from") != "mallory@evil.test/x" {
							t.Errorf("delivered from %q", m.Get("from"))
						}
						return
					}
					if got := c.streamError(); got != tt.want {
						t.Errorf("stream error %s, want %s", got, tt.want)
					}
					bob.ExpectNone(t, "the rejected message", isMessage("s1", ""))
				})
			}
			t.Run("the verification request is prefixed", func(t *testing.T) {
				// XEP-0220 §2: dialback elements carry the db: prefix.
				if got := auth.received(); !strings.Contains(got, "<db:verify ") {
					t.Errorf("no <db:verify/> with the db: prefix in what the authority got: %s", got)
				}
			})
		})
	}
}

// TestDialbackRefused checks the answers to dialback requests that must
// fail: a key the Authoritative Server does not vouch for is answered
// invalid and, as the stream has no other domain pair, the stream is
// closed (XEP-0220 §2.2.1); a request for a domain b.test does not serve
// gets the item-not-found dialback error (§2.5).
func TestDialbackRefused(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			b, bob, _ := hostileSetup(t, tr)
			t.Run("wrong key", func(t *testing.T) {
				c := connect(t, b, tr)
				r := c.dialback("evil.test", domainB, "0123456789abcdef")
				if r.Get("type") != "invalid" {
					t.Errorf("answer %s, want type invalid", r)
				}
				c.closed()
			})
			t.Run("target not served", func(t *testing.T) {
				c := connect(t, b, tr)
				r := c.dialback("evil.test", "c.test", "0123456789abcdef")
				if cond, _ := testserver.ErrorCondition(r); r.Get("type") != "error" || cond != "item-not-found" {
					t.Errorf("answer %s, want an item-not-found error", r)
				}
				c.send(`<message from="mallory@evil.test" to="bob@b.test" type="chat" id="s1"><body>hi</body></message>`)
				if got := c.streamError(); got != "not-authorized" {
					t.Errorf("stream error %s, want not-authorized", got)
				}
			})
			bob.ExpectNone(t, "a message", isMessage("s1", ""))
		})
	}
}

// TestMultiplexing authenticates two originating domains on one inbound
// stream (XEP-0220 §2.6.1): stanzas from both are accepted, a key refused
// for a third domain leaves the stream and its pairs alone (§2.2.1: a
// forbidden dialback error rather than the invalid result that closes
// it), and a stanza from the third domain closes the stream with
// invalid-from.
func TestMultiplexing(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			b, bob, auth := hostileSetup(t, tr)
			c := connect(t, b, tr)
			authenticate(t, c, auth, "evil.test")
			authenticate(t, c, auth, "evil2.test")
			r := c.dialback("evil3.test", domainB, "0123456789abcdef")
			if cond, _ := testserver.ErrorCondition(r); r.Get("type") != "error" || cond != "forbidden" {
				t.Errorf("refused key on a multiplexed stream: %s, want a forbidden error", r)
			}
			for i, from := range []string{"x@evil.test", "y@evil2.test"} {
				id := "mux" + string(rune('1'+i))
				c.send(`<message from="` + from + `" to="bob@b.test" type="chat" id="` + id + `"><body>hi</body></message>`)
				if m := bob.MustNext(t, "the message from "+from, isMessage(id, "chat")); m.Get("from") != from {
					t.Errorf("delivered from %q, want %q", m.Get("from"), from)
				}
			}
			c.send(`<message from="z@evil3.test" to="bob@b.test" type="chat" id="mux3"><body>hi</body></message>`)
			if got := c.streamError(); got != "invalid-from" {
				t.Errorf("stream error %s, want invalid-from", got)
			}
			bob.ExpectNone(t, "the message from evil3.test", isMessage("mux3", ""))
			noStreams(t, b, "evil")
		})
	}
}

// TestPlaintextExemption opens a plaintext stream as a domain exempt from
// TLS (s2s.plaintext_domains) and asks to authenticate another domain on
// it by dialback: b.test refuses that pair with the policy-violation
// dialback error (XEP-0220 §2.5), though the key is good, and takes no
// stanza from the other domain; the exempt domain itself keeps the
// stream and may still authenticate on it.
func TestPlaintextExemption(t *testing.T) {
	const exempt, victim = "exempt.test", "victim.test"
	auth := &authority{keys: map[[3]string]string{}}
	// The authority offers TLS, so that b.test can check keys for
	// victim.test with it, as it could with victim.test's real server.
	auth.fakeServer = startFake(t, &fakeServer{domain: exempt, verify: auth.check, tlsConfig: selfSignedTLS(t, exempt)})
	b := testserver.StartFederation(t, func(c *config.Config) {
		c.S2S.Routes[exempt] = auth.addr()
		c.S2S.Routes[victim] = auth.addr()
		c.S2S.PlaintextDomains = []string{exempt}
	}, domainB)[0]
	bob := login(t, b, "bob")

	c := dialS2S(t, b.Addr(config.ListenerS2SStartTLS).String())
	c.open(exempt, domainB)
	if st := c.features.Child(nsTLS, "starttls"); st == nil || st.Child(nsTLS, "required") != nil {
		t.Fatalf("features %s: want STARTTLS offered, not required, to %s", c.features, exempt)
	}
	key := router.NewID() + router.NewID()
	auth.register(domainB, victim, c.id, key)
	r := c.dialback(victim, domainB, key)
	if cond, _ := testserver.ErrorCondition(r); r.Get("type") != "error" || cond != "policy-violation" {
		t.Errorf("dialback for %s without TLS: %s, want a policy-violation error", victim, r)
	}
	authenticate(t, c, auth, exempt)
	c.send(`<message from="x@` + exempt + `" to="bob@b.test" type="chat" id="p1"><body>hi</body></message>`)
	bob.MustNext(t, "the message from "+exempt, isMessage("p1", "chat"))
	c.send(`<message from="x@` + victim + `" to="bob@b.test" type="chat" id="p2"><body>hi</body></message>`)
	if got := c.streamError(); got != "invalid-from" {
		t.Errorf("stream error %s, want invalid-from", got)
	}
	bob.ExpectNone(t, "the message from "+victim, isMessage("p2", ""))
}
