package c2s_test

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
)

// TestSlixmppSequence replays what Debian 12's slixmpp 1.8.3 does with its
// default settings on TLS 1.3: SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS with
// tls-unique (undefined there), then SCRAM-SHA-256 and SCRAM-SHA-1 with the
// GS2 "y" flag (refused as a downgrade), then PLAIN. None of the refusals is
// a wrong password, so the stream stays open, PLAIN succeeds, and the
// throttle (one failure allowed here) has counted nothing.
func TestSlixmppSequence(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) {
		c.Limits.LoginFailures = 1
		c.Limits.LoginWindow = 24 * time.Hour // never passes during the test
	})
	s.AddUser("alice", "pw")
	cfg := s.TLSConfig()
	cfg.MaxVersion = tls.VersionTLS13
	for attempt := range 2 {
		c, err := s.DialRawStartTLS(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			o    testserver.SCRAM
			text string
		}{
			{testserver.SCRAM{Mechanism: "SCRAM-SHA-256-PLUS", Binding: "tls-unique", BindingData: make([]byte, 12)},
				"channel binding type tls-unique is not supported on this connection; supported: tls-exporter, tls-server-end-point"},
			{testserver.SCRAM{Mechanism: "SCRAM-SHA-1-PLUS", Binding: "tls-unique", BindingData: make([]byte, 12)},
				"channel binding type tls-unique is not supported"},
			{testserver.SCRAM{Mechanism: "SCRAM-SHA-256", GS2Flag: "y"}, "downgrade"},
			{testserver.SCRAM{Mechanism: "SCRAM-SHA-1", GS2Flag: "y"}, "downgrade"},
		} {
			cond, err := c.AuthSCRAM("alice", "pw", step.o)
			if err != nil || cond != "not-authorized" {
				t.Fatalf("attempt %d, %s %+v: condition %q, error %v; want not-authorized", attempt, step.o.Mechanism, step.o, cond, err)
			}
			if !strings.Contains(c.LastFailureText, step.text) {
				t.Errorf("attempt %d, %s: failure text %q, want it to contain %q", attempt, step.o.Mechanism, c.LastFailureText, step.text)
			}
		}
		if cond, err := c.AuthPlain("alice", "pw"); err != nil || cond != "" {
			t.Fatalf("attempt %d, PLAIN after the refusals: condition %q, error %v", attempt, cond, err)
		}
		if _, err := c.Bind(""); err != nil {
			t.Fatal(err)
		}
		c.Conn.Close()
	}
}

// TestSASLFailureBound checks that failures that are not wrong credentials
// are still bounded: one per offered mechanism and one more, then the
// stream ends with policy-violation.
func TestSASLFailureBound(t *testing.T) {
	s := testserver.Start(t, nil)
	for _, tc := range []struct{ name, auth string }{
		{"unknown mechanism", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-NONE'>=</auth>`},
		{"bad base64", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!!</auth>`},
		{"malformed PLAIN", `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>YWxpY2U=</auth>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := s.DialRawStartTLS(nil)
			if err != nil {
				t.Fatal(err)
			}
			const offered = 5 // SCRAM-SHA-256-PLUS, SCRAM-SHA-1-PLUS, SCRAM-SHA-256, SCRAM-SHA-1, PLAIN
			for i := range offered + 1 {
				if err := c.Send(tc.auth); err != nil {
					t.Fatal(err)
				}
				e, err := c.Next()
				if err != nil {
					t.Fatal(err)
				}
				if e.Name.Local != "failure" {
					t.Fatalf("attempt %d: got %s, want a SASL failure", i+1, e)
				}
				if e.Child("urn:ietf:params:xml:ns:xmpp-sasl", "text") == nil {
					t.Errorf("attempt %d: failure without <text/>: %s", i+1, e)
				}
			}
			cond, err := c.WaitStreamError(rawWait)
			if err != nil || cond != "policy-violation" {
				t.Fatalf("after %d bad attempts: stream error %q (%v), want policy-violation", offered+1, cond, err)
			}
		})
	}
}
