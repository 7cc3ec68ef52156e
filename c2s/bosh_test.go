package c2s_test

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// attrOf is an attribute of e by its local name, in any namespace
// (xmpp:version is urn:xmpp:xbosh's).
func attrOf(e *router.Element, local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// TestBOSHLoginAndChat creates a BOSH session over HTTP and over HTTPS
// (HTTP/2), checks the session creation response (XEP-0124 §7.1,
// XEP-0206 §5), logs in with SCRAM and a restart, binds, and chats with a
// TCP client; the client's terminate ends the session.
func TestBOSHLoginAndChat(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"http", false}, {"https", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := testserver.Start(t, nil)
			s.AddUser("alice", "secret")
			s.AddUser("bob", "secret")
			c, err := s.DialBOSH(testserver.BOSHOptions{TLS: tc.tls})
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			cr := c.BOSH().Created
			for attr, want := range map[string]string{"wait": "60", "hold": "1", "requests": "2", "inactivity": "60", "ver": "1.11", "from": "localhost", "version": "1.0", "restartlogic": "true"} {
				if got := attrOf(cr, attr); got != want {
					t.Errorf("creation response %s=%q, want %q (%s)", attr, got, want, cr)
				}
			}
			if cr.Get("sid") == "" {
				t.Errorf("creation response has no sid: %s", cr)
			}
			if c.Features.Name.Local != "features" || c.Features.Child("urn:ietf:params:xml:ns:xmpp-tls", "starttls") != nil {
				t.Fatalf("features %s: want stream features without STARTTLS", c.Features)
			}
			if cond, err := c.AuthSCRAM("alice", "secret", testserver.SCRAM{Mechanism: "SCRAM-SHA-256"}); err != nil || cond != "" {
				t.Fatalf("scram: %q %v", cond, err)
			}
			if c.Features.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind") == nil {
				t.Fatalf("features after the restart %s have no bind", c.Features)
			}
			full, err := c.Bind("web")
			if err != nil || full != "alice@localhost/web" {
				t.Fatalf("bind: %q %v", full, err)
			}
			bob := s.Login("bob", "secret", testserver.LoginOptions{})
			bob.MustSend(t, `<message type="chat" id="m1" to="alice@localhost/web"><body>hi from tcp</body></message>`)
			m := nextElement(t, c, "message m1", isMessage("m1"))
			if m.Get("from") != bob.LocalAddr().String() || m.Child("", "body").Text() != "hi from tcp" {
				t.Errorf("got %s", m)
			}
			c.Send(`<message xmlns="jabber:client" type="chat" id="m2" to="` + bob.LocalAddr().String() + `"><body>hi from bosh</body></message>`)
			got := bob.MustNext(t, "message m2", isMessage("m2"))
			if got.Get("from") != "alice@localhost/web" {
				t.Errorf("from = %q, want the BOSH session's full JID", got.Get("from"))
			}
			if n := s.C2S.Stats().Sessions["bosh"]; n != 1 {
				t.Errorf("bosh sessions = %d, want 1", n)
			}
			// A terminate with a stanza in it: the stanza is delivered first.
			c.BOSH().Post(c.BOSH().Body(c.BOSH().NextRID(), `type="terminate"`, `<message type="chat" id="m3" to="`+bob.LocalAddr().String()+`"><body>bye</body></message>`))
			bob.MustNext(t, "message m3", isMessage("m3"))
			if _, err := c.Next(); err == nil || !strings.Contains(err.Error(), "stream closed") {
				t.Errorf("after terminate: %v, want the end of the stream", err)
			}
		})
	}
}
