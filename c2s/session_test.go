package c2s_test

import (
	"errors"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// TestBindConflict checks RFC 6120 §7.7.2.2: a second login with the same
// full JID replaces the first, which gets a conflict stream error and is
// closed, and the new session works.
func TestBindConflict(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	old := s.Login("alice", "pw", testserver.LoginOptions{Resource: "phone"})
	if got := old.LocalAddr().String(); got != "alice@localhost/phone" {
		t.Fatalf("bound %s, want the requested resource alice@localhost/phone", got)
	}
	old.MustSync(t)
	// Another resource of the same account is not in conflict.
	other := s.Login("alice", "pw", testserver.LoginOptions{Resource: "laptop"})
	// The new session comes over direct TLS: the transport does not matter.
	repl := s.Login("alice", "pw", testserver.LoginOptions{Resource: "phone", DirectTLS: true})
	if got := repl.LocalAddr().String(); got != "alice@localhost/phone" {
		t.Fatalf("second login bound %s, want alice@localhost/phone", got)
	}
	cond, err := old.WaitClosed()
	if err != nil {
		t.Fatalf("replaced session: %v", err)
	}
	if cond != "conflict" {
		t.Errorf("replaced session got stream error %q, want conflict", cond)
	}
	bob := s.Login("bob", "pw", testserver.LoginOptions{})
	chat(t, bob, repl)
	chat(t, repl, bob)
	chat(t, bob, other)
	other.MustSync(t)
}

// TestMaxSessions checks limits.max_sessions_per_user: binding one resource
// more is refused with resource-constraint, while rebinding an existing
// resource still replaces it.
func TestMaxSessions(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) { c.Limits.MaxSessionsPerUser = 2 })
	s.AddUser("alice", "pw")
	first := s.Login("alice", "pw", testserver.LoginOptions{Resource: "one"})
	second := s.Login("alice", "pw", testserver.LoginOptions{})
	for _, o := range []testserver.LoginOptions{{}, {Resource: "three"}} {
		c, err := s.Dial("alice", "pw", o)
		if err == nil {
			c.Close()
			t.Fatalf("third session (resource %q) bound", o.Resource)
		}
		var le *testserver.LoginError
		if !errors.As(err, &le) || le.StanzaError != "resource-constraint" {
			t.Fatalf("third session (resource %q): %v; want resource-constraint", o.Resource, err)
		}
	}
	// The refused binds left the two sessions alone.
	first.MustSync(t)
	second.MustSync(t)
	// Replacing a resource is not one session more.
	s.Login("alice", "pw", testserver.LoginOptions{Resource: "one"})
	if cond, err := first.WaitClosed(); err != nil || cond != "conflict" {
		t.Fatalf("replaced session: %q %v; want conflict", cond, err)
	}
}

// TestChat sends messages between two users, to a full JID and to the bare
// JID once the receiver is available.
func TestChat(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	alice := s.Login("alice", "pw", testserver.LoginOptions{})
	bob := s.Login("bob", "pw", testserver.LoginOptions{Resource: "desk"})

	// To a full JID: delivered whether or not the resource is available.
	alice.MustSend(t, `<message type="chat" id="full" to="bob@localhost/desk"><body>hello, full JID</body></message>`)
	m := bob.MustNext(t, "message full", isMessage("full"))
	checkMessage(t, m, alice.LocalAddr().String(), "bob@localhost/desk", "hello, full JID")

	// To the bare JID once bob is available. The server handles a
	// connection's stanzas in order, so after the round trip bob's
	// presence has been processed.
	bob.MustSend(t, `<presence/>`)
	bob.MustSync(t)
	alice.MustSend(t, `<message type="chat" id="bare" to="bob@localhost"><body>hello, bare JID</body></message>`)
	m = bob.MustNext(t, "message bare", isMessage("bare"))
	checkMessage(t, m, alice.LocalAddr().String(), "bob@localhost", "hello, bare JID")

	// And back, to the full JID the message came from.
	bob.MustSend(t, `<message type="chat" id="back" to="`+m.Get("from")+`"><body>hi alice</body></message>`)
	checkMessage(t, alice.MustNext(t, "message back", isMessage("back")), "bob@localhost/desk", alice.LocalAddr().String(), "hi alice")
}

func checkMessage(t *testing.T, m *router.Element, from, to, body string) {
	t.Helper()
	if m.Get("from") != from || m.Get("to") != to || m.Get("type") != "chat" {
		t.Errorf("message from %q to %q type %q; want from %q to %q type chat", m.Get("from"), m.Get("to"), m.Get("type"), from, to)
	}
	if b := m.Child("", "body"); b == nil || b.Text() != body {
		t.Errorf("message %s; want body %q", m, body)
	}
}

// TestDeliveryErrors checks the errors RFC 6120 and RFC 6121 prescribe for
// stanzas that cannot be delivered: each comes back to the sender with the
// request's id, from the address it was sent to.
func TestDeliveryErrors(t *testing.T) {
	// No offline storage: with it, messages to offline users are stored.
	s := testserver.Start(t, func(c *config.Config) { c.Modules = []string{"disco", "ping", "version", "time", "roster"} })
	s.AddUser("alice", "pw")
	s.AddUser("carol", "pw") // never logs in
	s.AddUser("dave", "pw")  // logs in, never sends presence
	alice := s.Login("alice", "pw", testserver.LoginOptions{})
	dave := s.Login("dave", "pw", testserver.LoginOptions{Resource: "r"})
	dave.MustSync(t)
	for _, tc := range []struct {
		name, stanza  string
		from          string // the error's from; "" means none expected
		cond, errType string
	}{
		{"message to offline user", `<message type="chat" id="e1" to="carol@localhost"><body>x</body></message>`,
			"carol@localhost", "service-unavailable", "cancel"},
		{"message to offline user's full JID", `<message type="chat" id="e2" to="carol@localhost/gone"><body>x</body></message>`,
			"carol@localhost/gone", "service-unavailable", "cancel"},
		{"message to user with no available resource", `<message type="chat" id="e3" to="dave@localhost"><body>x</body></message>`,
			"dave@localhost", "service-unavailable", "cancel"},
		{"message to unknown user", `<message type="chat" id="e4" to="nobody@localhost"><body>x</body></message>`,
			"nobody@localhost", "service-unavailable", "cancel"},
		{"normal message to unknown user", `<message id="e5" to="nobody@localhost"><body>x</body></message>`,
			"nobody@localhost", "service-unavailable", "cancel"},
		{"iq to unavailable full JID", `<iq type="get" id="e6" to="carol@localhost/gone"><query xmlns="jabber:iq:version"/></iq>`,
			"carol@localhost/gone", "service-unavailable", "cancel"},
		{"iq to unknown user's full JID", `<iq type="get" id="e7" to="nobody@localhost/x"><query xmlns="jabber:iq:version"/></iq>`,
			"nobody@localhost/x", "service-unavailable", "cancel"},
		{"message to remote domain", `<message type="chat" id="e8" to="someone@remote.example"><body>x</body></message>`,
			"someone@remote.example", "remote-server-not-found", "cancel"},
		{"iq to remote domain", `<iq type="get" id="e9" to="remote.example"><ping xmlns="urn:xmpp:ping"/></iq>`,
			"remote.example", "remote-server-not-found", "cancel"},
		{"invalid to", `<message type="chat" id="e10" to="a@b@c"><body>x</body></message>`,
			"", "jid-malformed", "modify"},
		{"invalid to on iq", `<iq type="get" id="e11" to="@localhost"><ping xmlns="urn:xmpp:ping"/></iq>`,
			"", "jid-malformed", "modify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := router.ParseElement([]byte(tc.stanza), router.NSClient)
			if err != nil {
				t.Fatal(err)
			}
			alice.MustSend(t, tc.stanza)
			e := alice.MustNext(t, "the answer", func(e *router.Element) bool {
				return e.Name.Local == req.Name.Local && e.Get("id") == req.Get("id")
			})
			if e.Get("type") != "error" {
				t.Fatalf("got %s; want an error", e)
			}
			cond, typ := testserver.ErrorCondition(e)
			if cond != tc.cond || typ != tc.errType {
				t.Errorf("error %q type %q; want %q type %q in %s", cond, typ, tc.cond, tc.errType, e)
			}
			if e.Get("to") != alice.LocalAddr().String() {
				t.Errorf("error to %q; want %q", e.Get("to"), alice.LocalAddr())
			}
			if tc.from != "" && e.Get("from") != tc.from {
				t.Errorf("error from %q; want %q", e.Get("from"), tc.from)
			}
		})
	}
	// Nothing of it reached dave.
	dave.ExpectNone(t, "a message while not available", isMessage(""))
}

// TestSpoofedFrom checks RFC 6120 §8.1.2.1: whatever 'from' a client
// writes, the receiver sees the sender's full JID.
func TestSpoofedFrom(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	s.AddUser("carol", "pw")
	alice := s.Login("alice", "pw", testserver.LoginOptions{})
	bob := s.Login("bob", "pw", testserver.LoginOptions{Resource: "x"})
	carol := s.Login("carol", "pw", testserver.LoginOptions{})
	for i, from := range []string{"bob@localhost/x", "bob@localhost", "localhost", "alice@localhost", "alice@localhost/other", "nobody@remote.example/r"} {
		id := "spoof-" + string(rune('a'+i))
		alice.MustSend(t, `<message type="chat" id="`+id+`" from="`+from+`" to="`+carol.LocalAddr().String()+`"><body>from me</body></message>`)
		m := carol.MustNext(t, "message "+id, isMessage(id))
		if got := m.Get("from"); got != alice.LocalAddr().String() {
			t.Errorf("sent with from=%q: carol sees from %q; want %q", from, got, alice.LocalAddr())
		}
	}
	// An IQ with a spoofed from is answered to the real sender, and the
	// server's answer does not go to the spoofed address.
	e := alice.MustRequest(t, `<iq type="get" id="spoof-iq" from="bob@localhost/x" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`)
	if e.Get("type") != "result" {
		t.Errorf("ping with spoofed from: %s", e)
	}
	bob.ExpectNone(t, "what alice sent with bob's address as from", func(e *router.Element) bool {
		return e.Get("id") == "spoof-iq" || e.Name.Local == "message"
	})
}
