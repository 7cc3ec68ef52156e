package c2s_test

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"hash"
	"slices"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

const (
	nsSASL2 = "urn:xmpp:sasl:2"
	nsBind2 = "urn:xmpp:bind:0"
	// agentA and agentB are user-agent ids of two installations.
	agentA = "d4565fa7-4d72-4749-b3d3-740edbf87770"
	agentB = "8e2b1c4a-2f0d-4c53-9a8e-6f1d2c3b4a5e"
)

// sasl2Mechanisms lists the mechanisms of the SASL2 feature.
func sasl2Mechanisms(features *router.Element) []string {
	var out []string
	if a := features.Child(nsSASL2, "authentication"); a != nil {
		for _, e := range a.Elements() {
			if e.Name.Local == "mechanism" {
				out = append(out, strings.TrimSpace(e.Text()))
			}
		}
	}
	return out
}

// dialSASL2 connects and negotiates STARTTLS; the connection then stands
// before authentication, with SASL and SASL2 offered.
func dialSASL2(t *testing.T, s *testserver.Server) *testserver.Raw {
	t.Helper()
	c, err := s.DialRawStartTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mustSASL2 authenticates and fails t unless it succeeds.
func mustSASL2(t *testing.T, c *testserver.Raw, local string, o testserver.SASL2) *testserver.SASL2Result {
	t.Helper()
	res, err := c.AuthSASL2(local, o)
	if err != nil {
		t.Fatalf("sasl2 %s: %v", o.Mechanism, err)
	}
	if res.Condition != "" {
		t.Fatalf("sasl2 %s: failure %s (%s)", o.Mechanism, res.Condition, res.Text)
	}
	return res
}

// authzid is the <authorization-identifier/> of a <success/>.
func authzid(succ *router.Element) string {
	if a := succ.Child(nsSASL2, "authorization-identifier"); a != nil {
		return a.Text()
	}
	return ""
}

// sessionOf returns the c2s session bound to full.
func sessionOf(t *testing.T, s *testserver.Server, full string) *c2s.Session {
	t.Helper()
	j, err := jid.Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	sess, _ := s.Router.Sessions().Lookup(j).(*c2s.Session)
	if sess == nil {
		t.Fatalf("no c2s session bound to %s", full)
	}
	return sess
}

// TestSASL2Mechanisms logs in with every mechanism over SASL2 (XEP-0388):
// the feature offers what SASL offers, with the Bind 2 and stream
// management inline features; <success/> carries the bare JID and SCRAM's
// server signature (which the client checks), and is followed at once,
// without a stream restart, by the features of an authenticated stream,
// where resource binding works as after SASL; the user agent is recorded
// on the session. SCRAM's XEP-0474 h= is checked against a computation of
// the test's own from the SASL2 mechanism list. A SASL client on the same
// server still logs in.
func TestSASL2Mechanisms(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	for _, tc := range []struct {
		name   string
		o      testserver.SASL2
		h      func() hash.Hash
		tlsMax uint16
	}{
		{name: "plain", o: testserver.SASL2{Mechanism: "PLAIN"}},
		{name: "scram-sha-1", o: testserver.SASL2{Mechanism: "SCRAM-SHA-1"}, h: sha1.New},
		{name: "scram-sha-256", o: testserver.SASL2{Mechanism: "SCRAM-SHA-256"}, h: sha256.New},
		{name: "scram-sha-256-no-initial", o: testserver.SASL2{Mechanism: "SCRAM-SHA-256", NoInitial: true}, h: sha256.New},
		{name: "scram-sha-256-plus-exporter", o: testserver.SASL2{Mechanism: "SCRAM-SHA-256-PLUS",
			SCRAM: testserver.SCRAM{Binding: "tls-exporter"}}, h: sha256.New},
		{name: "scram-sha-1-plus-endpoint", o: testserver.SASL2{Mechanism: "SCRAM-SHA-1-PLUS",
			SCRAM: testserver.SCRAM{Binding: "tls-server-end-point"}}, h: sha1.New},
		{name: "scram-sha-256-plus-unique-tls12", o: testserver.SASL2{Mechanism: "SCRAM-SHA-256-PLUS",
			SCRAM: testserver.SCRAM{Binding: "tls-unique"}}, h: sha256.New, tlsMax: tls.VersionTLS12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := s.TLSConfig()
			if tc.tlsMax != 0 {
				cfg.MaxVersion = tc.tlsMax
			}
			c, err := s.DialRawStartTLS(cfg)
			if err != nil {
				t.Fatal(err)
			}
			before := c.Features
			if got, want := sasl2Mechanisms(before), mechanismList(before); !slices.Equal(got, want) {
				t.Fatalf("SASL2 mechanisms %v, SASL's %v", got, want)
			}
			inline := before.Child(nsSASL2, "authentication").Child(nsSASL2, "inline")
			if inline == nil || inline.Child(nsBind2, "bind") == nil || inline.Child(nsSM, "sm") == nil {
				t.Fatalf("inline features %s, want Bind 2 and stream management", inline)
			}
			o := tc.o
			o.Secret, o.AgentID, o.Software, o.Device = "pw", agentA, "TestClient 1.0", "Kiva's Phone"
			res := mustSASL2(t, c, "alice", o)
			if got := authzid(res.Success); got != "alice@localhost" {
				t.Errorf("authorization-identifier %q, want alice@localhost", got)
			}
			if tc.h != nil {
				got, ok := serverFirstAttr(c.LastServerFirst, 'h')
				if want := ssdpHash(before, sasl2Mechanisms(before), tc.h); !ok || got != want {
					t.Errorf("h=%q (present %v) in %q, want %q", got, ok, c.LastServerFirst, want)
				}
			}
			if res.Features.Child(nsSASL2, "authentication") != nil || res.Features.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind") == nil {
				t.Fatalf("features after success: %s, want resource binding and no more authentication", res.Features)
			}
			full, err := c.Bind("desk")
			if err != nil || full != "alice@localhost/desk" {
				t.Fatalf("bind after SASL2: %q %v", full, err)
			}
			ua := sessionOf(t, s, full).UserAgent()
			if want := (c2s.UserAgent{ID: agentA, Software: "TestClient 1.0", Device: "Kiva's Phone"}); ua != want {
				t.Errorf("user agent %+v, want %+v", ua, want)
			}
			c.Conn.Close()
		})
	}
	t.Run("sasl", func(t *testing.T) {
		c := s.LoginRaw("alice", "pw", "old")
		if ua := sessionOf(t, s, "alice@localhost/old").UserAgent(); ua != (c2s.UserAgent{}) {
			t.Errorf("a SASL session has user agent %+v", ua)
		}
		c.Conn.Close()
	})
	t.Run("before-tls", func(t *testing.T) {
		c, err := s.DialRaw()
		if err != nil {
			t.Fatal(err)
		}
		f, err := c.Open(testserver.Header)
		if err != nil {
			t.Fatal(err)
		}
		if f.Child(nsSASL2, "authentication") != nil {
			t.Errorf("SASL2 offered before TLS: %s", f)
		}
	})
}

// TestSASL2Failures checks the <failure/>s of SASL2: the RFC 6120
// condition and a text, the stream still open for another attempt, and
// nothing of the inline requests done (no session bound).
func TestSASL2Failures(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	bind := `<bind xmlns="urn:xmpp:bind:0"><tag>T</tag></bind>`
	for _, tc := range []struct {
		name string
		o    testserver.SASL2
		cond string
	}{
		{"wrong password", testserver.SASL2{Mechanism: "SCRAM-SHA-256", Secret: "wrong", Inline: bind}, "not-authorized"},
		{"wrong plain password", testserver.SASL2{Mechanism: "PLAIN", Secret: "wrong", Inline: bind}, "not-authorized"},
		{"unknown mechanism", testserver.SASL2{Mechanism: "X-UNKNOWN", Secret: "pw", Inline: bind}, "invalid-mechanism"},
		{"plus without binding", testserver.SASL2{Mechanism: "SCRAM-SHA-256-PLUS", Secret: "pw",
			SCRAM: testserver.SCRAM{Binding: "tls-exporter", BindingData: make([]byte, 32)}, Inline: bind}, "not-authorized"},
		{"other authzid", testserver.SASL2{Mechanism: "PLAIN", Secret: "pw", Authzid: "bob@localhost", Inline: bind}, "invalid-authzid"},
		{"agent id not a uuid", testserver.SASL2{Mechanism: "PLAIN", Secret: "pw", AgentID: "phone-1", Inline: bind}, "malformed-request"},
		{"bad base64", testserver.SASL2{Mechanism: "PLAIN", Secret: "pw", NoInitial: true,
			Inline: `<initial-response>%%%</initial-response>` + bind}, "incorrect-encoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialSASL2(t, s)
			res, err := c.AuthSASL2("alice", tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if res.Condition != tc.cond || res.Text == "" && tc.cond != "not-authorized" {
				t.Errorf("failure %q (%q), want %q with a text", res.Condition, res.Text, tc.cond)
			}
			if n := len(s.Router.Sessions().Sessions(mustJID(t, "alice@localhost"))); n != 0 {
				t.Errorf("%d sessions bound after a failure", n)
			}
			res = mustSASL2(t, c, "alice", testserver.SASL2{Mechanism: "PLAIN", Secret: "pw"})
			if authzid(res.Success) != "alice@localhost" {
				t.Errorf("second attempt: %s", res.Success)
			}
			c.Conn.Close()
		})
	}
	t.Run("abort", func(t *testing.T) {
		c := dialSASL2(t, s)
		if err := c.Send(`<authenticate xmlns="urn:xmpp:sasl:2" mechanism="SCRAM-SHA-256"/>`); err != nil {
			t.Fatal(err)
		}
		if e, err := c.Next(); err != nil || e.Name.Local != "challenge" {
			t.Fatalf("want an empty challenge, got %v %v", e, err)
		}
		if err := c.Send(`<abort xmlns="urn:xmpp:sasl:2"/>`); err != nil {
			t.Fatal(err)
		}
		e, err := c.Next()
		if err != nil || e.Name.Local != "failure" || e.Child("urn:ietf:params:xml:ns:xmpp-sasl", "aborted") == nil {
			t.Fatalf("after abort: %v %v", e, err)
		}
	})
	t.Run("second authenticate", func(t *testing.T) {
		c := dialSASL2(t, s)
		mustSASL2(t, c, "alice", testserver.SASL2{Mechanism: "PLAIN", Secret: "pw"})
		if err := c.Send(`<authenticate xmlns="urn:xmpp:sasl:2" mechanism="PLAIN"/>`); err != nil {
			t.Fatal(err)
		}
		if cond, err := c.WaitStreamError(rawWait); err != nil || cond != "policy-violation" {
			t.Fatalf("second authenticate: stream error %q, %v; want policy-violation", cond, err)
		}
	})
}
