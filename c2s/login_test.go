package c2s_test

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// TestLogin logs in with every SASL mechanism the server offers, over
// STARTTLS and direct TLS, on TLS 1.3 and 1.2, on every storage backend.
// mellium's -PLUS mechanisms bind to tls-exporter on TLS 1.3 and to
// tls-unique on TLS 1.2 (mellium.im/sasl v0.3.2 getGS2Header), so both of
// those bindings are checked here; TestChannelBinding checks each type
// explicitly.
func TestLogin(t *testing.T) {
	mechanisms := []sasl.Mechanism{sasl.ScramSha1, sasl.ScramSha256, sasl.ScramSha1Plus, sasl.ScramSha256Plus, sasl.Plain}
	versions := []uint16{tls.VersionTLS13, tls.VersionTLS12}
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		s.AddUser("alice", "correct horse battery staple")
		for _, direct := range []bool{false, true} {
			for _, v := range versions {
				for _, m := range mechanisms {
					transport := "starttls"
					if direct {
						transport = "directtls"
					}
					t.Run(fmt.Sprintf("%s/%s/%s", transport, tls.VersionName(v), m.Name), func(t *testing.T) {
						cfg := s.TLSConfig()
						cfg.MaxVersion = v
						c, err := s.Dial("alice", "correct horse battery staple", testserver.LoginOptions{
							Mechanism: m, DirectTLS: direct, TLS: cfg,
						})
						if err != nil {
							t.Fatalf("login: %v", err)
						}
						defer c.Close()
						cs := c.ConnectionState()
						if cs.Version != v {
							t.Errorf("TLS version %s, want %s", tls.VersionName(cs.Version), tls.VersionName(v))
						}
						if direct && cs.NegotiatedProtocol != "xmpp-client" {
							t.Errorf("ALPN protocol %q, want xmpp-client", cs.NegotiatedProtocol)
						}
						if got := c.LocalAddr(); got.Bare().String() != "alice@localhost" || got.Resourcepart() == "" {
							t.Errorf("bound JID %s, want alice@localhost/<something>", got)
						}
						// The session works: the server answers a ping.
						if err := c.Sync(); err != nil {
							t.Fatal(err)
						}
					})
				}
			}
		}
	})
}

// TestChannelBinding runs SCRAM-*-PLUS with each channel binding type the
// server offers, written independently of mellium, and checks that the
// features advertise exactly the types the TLS version supports, that data
// that do not match the connection fail (a man in the middle), and that a
// client claiming the server cannot bind ("y") is refused as a downgrade.
func TestChannelBinding(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) { c.Limits.LoginFailures = 1000 })
	s.AddUser("alice", "pw")
	for _, tc := range []struct {
		version uint16
		types   []string
	}{
		{tls.VersionTLS13, []string{"tls-exporter", "tls-server-end-point"}},
		{tls.VersionTLS12, []string{"tls-exporter", "tls-server-end-point", "tls-unique"}},
	} {
		t.Run(tls.VersionName(tc.version), func(t *testing.T) {
			cfg := s.TLSConfig()
			cfg.MaxVersion = tc.version
			open := func(t *testing.T) *testserver.Raw {
				t.Helper()
				c, err := s.DialRawStartTLS(cfg)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			c := open(t)
			if got := bindingTypes(c.Features); !slices.Equal(got, tc.types) {
				t.Errorf("advertised channel binding types %v, want %v", got, tc.types)
			}
			if got, want := mechanismList(c.Features), []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}; !slices.Equal(got, want) {
				t.Errorf("mechanisms %v, want %v", got, want)
			}
			for _, typ := range tc.types {
				for _, mech := range []string{"SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"} {
					t.Run(typ+"/"+mech, func(t *testing.T) {
						c := open(t)
						cond, err := c.AuthSCRAM("alice", "pw", testserver.SCRAM{Mechanism: mech, Binding: typ})
						if err != nil || cond != "" {
							t.Fatalf("auth: condition %q, error %v", cond, err)
						}
						if _, err := c.Bind(""); err != nil {
							t.Fatal(err)
						}
					})
					t.Run(typ+"/"+mech+"/wrong-data", func(t *testing.T) {
						c := open(t)
						cs := c.TLS.ConnectionState()
						data, err := testserver.ClientBinding(&cs, typ)
						if err != nil {
							t.Fatal(err)
						}
						data[0] ^= 0xff
						cond, err := c.AuthSCRAM("alice", "pw", testserver.SCRAM{Mechanism: mech, Binding: typ, BindingData: data})
						if err != nil || cond != "not-authorized" {
							t.Fatalf("auth with forged binding: condition %q, error %v; want not-authorized", cond, err)
						}
					})
				}
			}
			if tc.version == tls.VersionTLS13 {
				// tls-unique is undefined for TLS 1.3 (RFC 8446 §C.5): no data
				// the client could send is accepted.
				t.Run("tls-unique", func(t *testing.T) {
					c := open(t)
					cond, err := c.AuthSCRAM("alice", "pw", testserver.SCRAM{Mechanism: "SCRAM-SHA-256-PLUS", Binding: "tls-unique", BindingData: make([]byte, 12)})
					if err != nil || cond != "not-authorized" {
						t.Fatalf("tls-unique on TLS 1.3: condition %q, error %v; want not-authorized", cond, err)
					}
				})
			}
			t.Run("downgrade", func(t *testing.T) {
				c := open(t)
				cond, err := c.AuthSCRAM("alice", "pw", testserver.SCRAM{Mechanism: "SCRAM-SHA-256", GS2Flag: "y"})
				if err != nil || cond != "not-authorized" {
					t.Fatalf("auth with y flag although -PLUS was offered: condition %q, error %v; want not-authorized", cond, err)
				}
			})
			t.Run("no binding", func(t *testing.T) {
				c := open(t)
				cond, err := c.AuthSCRAM("alice", "pw", testserver.SCRAM{Mechanism: "SCRAM-SHA-1"})
				if err != nil || cond != "" {
					t.Fatalf("auth: condition %q, error %v", cond, err)
				}
			})
		})
	}
}

// bindingTypes lists the XEP-0440 channel binding types in features.
func bindingTypes(features *router.Element) []string {
	var out []string
	if cb := features.Child("urn:xmpp:sasl-cb:0", "sasl-channel-binding"); cb != nil {
		for _, e := range cb.Elements() {
			out = append(out, e.Get("type"))
		}
	}
	return out
}

// mechanismList lists the SASL mechanisms in features.
func mechanismList(features *router.Element) []string {
	var out []string
	if m := features.Child("urn:ietf:params:xml:ns:xmpp-sasl", "mechanisms"); m != nil {
		for _, e := range m.Elements() {
			out = append(out, strings.TrimSpace(e.Text()))
		}
	}
	return out
}

// TestLoginFailure checks that a wrong password and an unknown user fail
// alike, with not-authorized, for every mechanism and storage backend.
func TestLoginFailure(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, func(c *config.Config) { c.Limits.LoginFailures = 1000 })
		s.AddUser("alice", "right")
		for _, m := range []sasl.Mechanism{sasl.ScramSha1, sasl.ScramSha256, sasl.ScramSha1Plus, sasl.ScramSha256Plus, sasl.Plain} {
			for _, tc := range []struct{ name, user, password string }{
				{"wrong password", "alice", "wrong"},
				{"unknown user", "nobody", "right"},
			} {
				t.Run(m.Name+"/"+tc.name, func(t *testing.T) {
					c, err := s.Dial(tc.user, tc.password, testserver.LoginOptions{Mechanism: m})
					if err == nil {
						c.Close()
						t.Fatal("login succeeded")
					}
					if le, ok := err.(*testserver.LoginError); !ok || le.SASLFailure != "not-authorized" {
						t.Fatalf("login error %v; want SASL not-authorized", err)
					}
				})
			}
		}
	})
}

// TestNoAuthBeforeTLS checks on a plain TCP connection that the server offers
// only STARTTLS, refuses SASL (PLAIN above all) with encryption-required, and
// ends the stream with not-authorized on a stanza before authentication.
func TestNoAuthBeforeTLS(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	c, err := s.DialRaw()
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Open(testserver.Header)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name.Space != router.NSStream || f.Name.Local != "features" {
		t.Fatalf("got %s, want stream features", f)
	}
	els := f.Elements()
	if len(els) != 1 || els[0].Name.Local != "starttls" || els[0].Name.Space != "urn:ietf:params:xml:ns:xmpp-tls" ||
		els[0].Child("urn:ietf:params:xml:ns:xmpp-tls", "required") == nil {
		t.Errorf("features before TLS: %s; want only <starttls><required/></starttls>", f)
	}
	if m := mechanismList(f); len(m) != 0 {
		t.Errorf("mechanisms offered before TLS: %v", m)
	}
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256"} {
		if err := c.Send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='` + mech + `'>AGFsaWNlAHB3</auth>`); err != nil {
			t.Fatal(err)
		}
		e, err := c.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.Name.Local != "failure" || e.Child("urn:ietf:params:xml:ns:xmpp-sasl", "encryption-required") == nil {
			t.Errorf("%s before TLS: got %s, want <failure><encryption-required/></failure>", mech, e)
		}
	}
	if err := c.Send(`<message to='alice@localhost'><body>hi</body></message>`); err != nil {
		t.Fatal(err)
	}
	cond, err := c.WaitStreamError(rawWait)
	if err != nil || cond != "not-authorized" {
		t.Fatalf("stanza before auth: stream error %q (%v), want not-authorized", cond, err)
	}
}

// TestStanzaBeforeBind checks that after TLS and SASL but before binding a
// stanza ends the stream with not-authorized: it has no address yet.
func TestStanzaBeforeBind(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	c, err := s.DialRawStartTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cond, err := c.AuthPlain("alice", "pw"); err != nil || cond != "" {
		t.Fatalf("auth: %q %v", cond, err)
	}
	if err := c.Send(`<message to='alice@localhost'><body>hi</body></message>`); err != nil {
		t.Fatal(err)
	}
	cond, err := c.WaitStreamError(rawWait)
	if err != nil || cond != "not-authorized" {
		t.Fatalf("stanza before bind: stream error %q (%v), want not-authorized", cond, err)
	}
}

// TestLoginThrottle checks that after limits.login_failures failed logins
// from one address, even the right password fails with
// temporary-auth-failure while the window lasts.
func TestLoginThrottle(t *testing.T) {
	const failures = 3
	s := testserver.Start(t, func(c *config.Config) {
		c.Limits.LoginFailures = failures
		c.Limits.LoginWindow = 24 * time.Hour // never passes during the test
	})
	s.AddUser("alice", "right")
	// A success before the limit is reached does not reset the count.
	for i := range failures {
		if i == 1 {
			c := s.Login("alice", "right", testserver.LoginOptions{})
			c.Close()
		}
		m := sasl.ScramSha256
		if i%2 == 1 {
			m = sasl.Plain
		}
		_, err := s.Dial("alice", "wrong", testserver.LoginOptions{Mechanism: m})
		if le, ok := err.(*testserver.LoginError); !ok || le.SASLFailure != "not-authorized" {
			t.Fatalf("failure %d: %v; want not-authorized", i+1, err)
		}
	}
	for _, m := range []sasl.Mechanism{sasl.ScramSha256, sasl.Plain} {
		c, err := s.Dial("alice", "right", testserver.LoginOptions{Mechanism: m})
		if err == nil {
			c.Close()
			t.Fatalf("%s: login with the right password succeeded while throttled", m.Name)
		}
		if le, ok := err.(*testserver.LoginError); !ok || le.SASLFailure != "temporary-auth-failure" {
			t.Fatalf("%s: %v; want temporary-auth-failure", m.Name, err)
		}
	}
	// Hand-written SCRAM, too: the throttle is checked before any work.
	c, err := s.DialRawStartTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cond, err := c.AuthSCRAM("alice", "right", testserver.SCRAM{Mechanism: "SCRAM-SHA-1"}); err != nil || cond != "temporary-auth-failure" {
		t.Fatalf("raw SCRAM while throttled: %q %v; want temporary-auth-failure", cond, err)
	}
}

// TestLoginThrottlePerAccount checks that guessing alice's password from
// 127.0.0.1 until the throttle refuses it does not lock out bob, a
// colleague behind the same address, whatever mechanism he uses, while alice
// herself stays throttled even with the right password.
func TestLoginThrottlePerAccount(t *testing.T) {
	const failures = 3
	s := testserver.Start(t, func(c *config.Config) {
		c.Limits.LoginFailures = failures
		c.Limits.LoginWindow = 24 * time.Hour // never passes during the test
	})
	s.AddUser("alice", "right")
	s.AddUser("bob", "bobs")
	for i := range failures {
		m := sasl.ScramSha256
		if i%2 == 1 {
			m = sasl.Plain
		}
		_, err := s.Dial("alice", "guess", testserver.LoginOptions{Mechanism: m})
		if le, ok := err.(*testserver.LoginError); !ok || le.SASLFailure != "not-authorized" {
			t.Fatalf("guess %d: %v; want not-authorized", i+1, err)
		}
	}
	for _, m := range []sasl.Mechanism{sasl.ScramSha256, sasl.Plain} {
		_, err := s.Dial("alice", "right", testserver.LoginOptions{Mechanism: m})
		if le, ok := err.(*testserver.LoginError); !ok || le.SASLFailure != "temporary-auth-failure" {
			t.Fatalf("alice, %s, during the attack: %v; want temporary-auth-failure", m.Name, err)
		}
	}
	for _, m := range []sasl.Mechanism{sasl.ScramSha256, sasl.ScramSha1Plus, sasl.Plain} {
		c, err := s.Dial("bob", "bobs", testserver.LoginOptions{Mechanism: m})
		if err != nil {
			t.Fatalf("bob, %s, during the attack on alice: %v", m.Name, err)
		}
		if err := c.Sync(); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}

// TestLoginThrottlePerAddress checks the higher per-address ceiling: one
// wrong guess at each of many names blocks the address for every account,
// although no single name reached limits.login_failures. Unknown names are
// used, so the test also shows that the answer does not depend on whether
// the account exists.
func TestLoginThrottlePerAddress(t *testing.T) {
	const perIP = 6
	s := testserver.Start(t, func(c *config.Config) {
		c.Limits.LoginFailures = 3
		c.Limits.LoginFailuresPerIP = perIP
		c.Limits.LoginWindow = 24 * time.Hour // never passes during the test
	})
	s.AddUser("bob", "bobs")
	for i := range perIP {
		m := sasl.ScramSha256
		if i%2 == 1 {
			m = sasl.Plain
		}
		name := fmt.Sprintf("user%d", i)
		_, err := s.Dial(name, "guess", testserver.LoginOptions{Mechanism: m})
		if le, ok := err.(*testserver.LoginError); !ok || le.SASLFailure != "not-authorized" {
			t.Fatalf("guess at %s: %v; want not-authorized", name, err)
		}
		if i == 3 {
			// More failures than limits.login_failures, but spread over
			// names: nobody is blocked yet.
			c, err := s.Dial("bob", "bobs", testserver.LoginOptions{})
			if err != nil {
				t.Fatalf("bob after %d guesses at other names: %v", i+1, err)
			}
			c.Close()
		}
	}
	for _, m := range []sasl.Mechanism{sasl.ScramSha256, sasl.Plain} {
		_, err := s.Dial("bob", "bobs", testserver.LoginOptions{Mechanism: m})
		if le, ok := err.(*testserver.LoginError); !ok || le.SASLFailure != "temporary-auth-failure" {
			t.Fatalf("bob, %s, after the spraying: %v; want temporary-auth-failure", m.Name, err)
		}
	}
}
