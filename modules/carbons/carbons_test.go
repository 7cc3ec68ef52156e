package carbons_test

import (
	"fmt"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/carbons"
	"github.com/xmppd/xmppd/router"
)

// These tests drive a real server with real clients (mellium) on every
// storage backend: alice has three resources, phone and laptop with
// carbons enabled and desk without, and bob writes to her.

const pw = "password"

func login(t *testing.T, s *testserver.Server, user, resource, presence string) *testserver.Client {
	t.Helper()
	c := s.Login(user, pw, testserver.LoginOptions{Resource: resource})
	if presence != "" {
		c.MustSend(t, presence)
		c.MustSync(t)
	}
	return c
}

func enable(t *testing.T, c *testserver.Client, verb string) {
	t.Helper()
	testserver.WantResult(t, c.MustRequest(t, `<iq type="set" id="`+verb+`"><`+verb+` xmlns="urn:xmpp:carbons:2"/></iq>`))
}

// carbon matches a carbon (dir "sent" or "received") of the message id,
// checking the wrapper's addresses against account and the resource it
// was delivered to.
func carbon(dir, id string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		return e.Name.Local == "message" && forwarded(e, dir) != nil && forwarded(e, dir).Get("id") == id
	}
}

// anyCarbon matches every carbon.
func anyCarbon(e *router.Element) bool {
	return e.Name.Local == "message" && (forwarded(e, "sent") != nil || forwarded(e, "received") != nil)
}

// forwarded returns the message inside a carbon e of direction dir, or nil.
func forwarded(e *router.Element, dir string) *router.Element {
	w := e.Child(carbons.NS, dir)
	if w == nil {
		return nil
	}
	f := w.Child(carbons.NSForward, "forwarded")
	if f == nil {
		return nil
	}
	if m := f.Child("", "message"); m != nil {
		return m
	}
	return f.Child(router.NSClient, "message")
}

func byID(id string) func(*router.Element) bool {
	return func(e *router.Element) bool { return e.Name.Local == "message" && e.Get("id") == id }
}

// wantCarbon waits for the carbon of id on c and checks its wrapper.
func wantCarbon(t *testing.T, c *testserver.Client, dir, id, typ string) *router.Element {
	t.Helper()
	e := c.MustNext(t, dir+" carbon of "+id, carbon(dir, id))
	// mellium empties a 'from' that is the client's own bare JID (RFC
	// 6120 §8.1.2.1), which a forged carbon's would not be.
	if got, want := e.Get("from"), c.LocalAddr().Bare().String(); got != want && got != "" {
		t.Errorf("carbon from %q, want %q: %s", got, want, e)
	}
	if got, want := e.Get("to"), c.LocalAddr().String(); got != want {
		t.Errorf("carbon to %q, want %q: %s", got, want, e)
	}
	if got := e.Get("type"); got != typ {
		t.Errorf("carbon type %q, want the original's %q: %s", got, typ, e)
	}
	return forwarded(e, dir)
}

// checkCarbon checks that c gets the carbon (dir) of the message id, which
// went from one JID to another, if want, else that it gets none.
func checkCarbon(t *testing.T, c *testserver.Client, dir, id, typ string, want bool, from, to string) {
	t.Helper()
	if !want {
		c.ExpectNone(t, "a "+dir+" carbon", carbon(dir, id))
		return
	}
	m := wantCarbon(t, c, dir, id, typ)
	if m.Get("from") != from || m.Get("to") != to {
		t.Errorf("forwarded message changed: %s", m)
	}
}

type account struct {
	phone, laptop, desk *testserver.Client
}

// setup starts a server with alice (phone and laptop with carbons, desk
// without, all available at priority 0) and bob.
func setup(t *testing.T, b storetest.Backend) (*testserver.Server, account, *testserver.Client) {
	t.Helper()
	s := testserver.StartOn(t, b, func(c *config.Config) { testserver.EnableModules(c, "carbons") })
	s.AddUser("alice", pw)
	s.AddUser("bob", pw)
	a := account{
		phone:  login(t, s, "alice", "phone", `<presence/>`),
		laptop: login(t, s, "alice", "laptop", `<presence/>`),
		desk:   login(t, s, "alice", "desk", `<presence/>`),
	}
	enable(t, a.phone, "enable")
	enable(t, a.laptop, "enable")
	bob := login(t, s, "bob", "x", `<presence/>`)
	return s, a, bob
}

// TestEligibility sends each kind of message to alice/phone and from it,
// and checks which of them laptop gets a carbon of (§6.1), that desk,
// without carbons, never gets one, and that the addressee and the sender
// get none.
func TestEligibility(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		_, alice, bob := setup(t, b)
		tests := []struct {
			name           string
			typ            string
			payload        string
			received, sent bool
		}{
			{"chat", "chat", `<body>hi</body>`, true, true},
			{"chat state only", "chat", `<composing xmlns="http://jabber.org/protocol/chatstates"/>`, true, true},
			{"normal with body", "normal", `<body>hi</body>`, true, true},
			{"no type, with body", "", `<body>hi</body>`, true, true},
			{"normal without body", "", `<x xmlns="urn:example:other"/>`, false, false},
			{"receipt", "", `<received xmlns="urn:xmpp:receipts" id="m0"/>`, true, true},
			{"displayed marker", "", `<displayed xmlns="urn:xmpp:chat-markers:0" id="m0"/>`, true, true},
			{"direct invitation", "", `<x xmlns="jabber:x:conference" jid="room@conference.example"/>`, true, true},
			{"mediated invitation", "", `<x xmlns="http://jabber.org/protocol/muc#user"><invite from="bob@localhost"/></x>`, true, true},
			{"muc private message", "chat", `<body>psst</body><x xmlns="http://jabber.org/protocol/muc#user"/>`, false, true},
			{"headline", "headline", `<body>news</body>`, false, false},
			{"groupchat", "groupchat", `<body>all</body>`, false, false},
			{"private", "chat", `<body>hi</body><private xmlns="urn:xmpp:carbons:2"/><no-copy xmlns="urn:xmpp:hints"/>`, false, false},
			{"private alone", "chat", `<body>hi</body><private xmlns="urn:xmpp:carbons:2"/>`, false, false},
			{"no-copy hint", "chat", `<body>hi</body><no-copy xmlns="urn:xmpp:hints"/>`, false, false},
			// Errors that answer nothing that was exchanged; see
			// TestErrors for those that do.
			{"unsolicited error echoing a body", "error", `<body>hi</body><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error>`, false, false},
			{"bare error", "error", `<error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error>`, false, false},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				typ := ""
				if tt.typ != "" {
					typ = ` type="` + tt.typ + `"`
				}
				in, out := fmt.Sprintf("in%d", i), fmt.Sprintf("out%d", i)
				bob.MustSend(t, `<message to="alice@localhost/phone" id="`+in+`"`+typ+`>`+tt.payload+`</message>`)
				bob.MustSync(t)
				alice.phone.MustNext(t, "the message", byID(in))
				alice.phone.MustSend(t, `<message to="bob@localhost/x" id="`+out+`"`+typ+`>`+tt.payload+`</message>`)
				alice.phone.MustSync(t)
				bob.MustNext(t, "the message", byID(out))

				checkCarbon(t, alice.laptop, "received", in, tt.typ, tt.received, "bob@localhost/x", "alice@localhost/phone")
				checkCarbon(t, alice.laptop, "sent", out, tt.typ, tt.sent, "alice@localhost/phone", "bob@localhost/x")
				alice.phone.ExpectNone(t, "a carbon of its own message", anyCarbon)
				alice.desk.ExpectNone(t, "a carbon without enabling", anyCarbon)
				bob.ExpectNone(t, "a carbon", anyCarbon)
				alice.desk.Drain(t)
			})
		}
	})
}

// TestBareJID checks §5 for messages that RFC 6121 routes by the bare JID:
// the resources that get the original get no carbon, the enabled ones
// that do not get it get one, and a message to a full JID that is not
// bound counts as one to the bare JID.
func TestBareJID(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		_, alice, bob := setup(t, b)
		bob.MustSend(t, `<message to="alice@localhost" id="b1" type="chat"><body>to all</body></message>`)
		bob.MustSync(t)
		for _, c := range []*testserver.Client{alice.phone, alice.laptop, alice.desk} {
			c.MustNext(t, "the original", byID("b1"))
			c.ExpectNone(t, "a carbon of what it got", anyCarbon)
		}

		// phone alone has the highest priority: it gets the original,
		// laptop a carbon, desk (carbons off) nothing.
		alice.phone.MustSend(t, `<presence><priority>5</priority></presence>`)
		alice.phone.MustSync(t)
		for i, to := range []string{"alice@localhost", "alice@localhost/gone"} {
			id := fmt.Sprintf("b%d", i+2)
			bob.MustSend(t, `<message to="`+to+`" id="`+id+`" type="chat"><body>to the best</body></message>`)
			bob.MustSync(t)
			alice.phone.MustNext(t, "the original", byID(id))
			alice.phone.ExpectNone(t, "a carbon", anyCarbon)
			m := wantCarbon(t, alice.laptop, "received", id, "chat")
			if m.Get("to") != to {
				t.Errorf("forwarded message readdressed: %s", m)
			}
			alice.laptop.ExpectNone(t, "the original", byID(id))
			alice.desk.ExpectNone(t, "anything", byID(id))
			alice.desk.ExpectNone(t, "a carbon", anyCarbon)
		}
	})
}

// TestBounce checks that the error a server answers an eligible message
// with reaches the sender's other resources as a received carbon (§6.1),
// after the sent carbon of the message.
func TestBounce(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		_, alice, _ := setup(t, b)
		alice.phone.MustSend(t, `<message to="nobody@localhost" id="lost" type="chat"><body>anyone?</body></message>`)
		alice.phone.MustSync(t)
		alice.phone.MustNext(t, "the error", byID("lost"))
		wantCarbon(t, alice.laptop, "sent", "lost", "chat")
		m := wantCarbon(t, alice.laptop, "received", "lost", "error")
		if m.Get("type") != "error" || m.Get("from") != "nobody@localhost" {
			t.Errorf("forwarded %s, want the error from nobody@localhost", m)
		}
	})
}

// TestErrors checks the error rule of §6.1 both ways: an error is copied
// when it answers a message that was copied, and not when it answers one
// that was not (a groupchat message, whose error from a room echoes the
// body) or nothing.
func TestErrors(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		_, alice, bob := setup(t, b)
		const cond = `<error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error>`
		exchange := func(from, to *testserver.Client, typ, id string) {
			t.Helper()
			from.MustSend(t, `<message to="`+to.LocalAddr().String()+`" id="`+id+`" type="`+typ+`"><body>`+id+`</body></message>`)
			from.MustSync(t)
			to.MustNext(t, "the message", byID(id))
			to.MustSend(t, `<message to="`+from.LocalAddr().String()+`" id="`+id+`" type="error"><body>`+id+`</body>`+cond+`</message>`)
			to.MustSync(t)
			from.MustNext(t, "the error", byID(id))
		}

		exchange(bob, alice.phone, "chat", "in")
		wantCarbon(t, alice.laptop, "received", "in", "chat")
		wantCarbon(t, alice.laptop, "sent", "in", "error")

		exchange(alice.phone, bob, "chat", "out")
		wantCarbon(t, alice.laptop, "sent", "out", "chat")
		wantCarbon(t, alice.laptop, "received", "out", "error")

		exchange(alice.phone, bob, "groupchat", "room")
		alice.laptop.ExpectNone(t, "a carbon of a groupchat message or its error", carbon("received", "room"))

		bob.MustSend(t, `<message to="alice@localhost/phone" id="in" type="error">`+cond+`</message>`) // answers alice's error, not a message
		bob.MustSend(t, `<message to="alice@localhost/phone" id="none" type="error">`+cond+`</message>`)
		bob.MustSync(t)
		alice.phone.MustNext(t, "the error", byID("none"))
		alice.laptop.ExpectNone(t, "a carbon of an error that answers nothing", anyCarbon)
	})
}

// TestEnableDisable checks the protocol (§3–§5, §9.1): discovery, repeated
// requests, the errors, and that disabling stops the copies while the
// other resource keeps getting them.
func TestEnableDisable(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		_, alice, bob := setup(t, b)
		res := alice.desk.MustRequest(t, `<iq type="get" id="disco" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
		if !testserver.HasFeature(res, carbons.NS) {
			t.Errorf("server disco#info lacks %s: %s", carbons.NS, res)
		}
		for _, tc := range []struct{ name, iq, cond, typ string }{
			{"another user's", `<iq type="set" id="e1" to="bob@localhost"><enable xmlns="urn:xmpp:carbons:2"/></iq>`, "not-allowed", "cancel"},
			{"unknown element", `<iq type="set" id="e2"><toggle xmlns="urn:xmpp:carbons:2"/></iq>`, "bad-request", "modify"},
			{"get", `<iq type="get" id="e3"><enable xmlns="urn:xmpp:carbons:2"/></iq>`, "service-unavailable", "cancel"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				testserver.WantIQError(t, alice.desk.MustRequest(t, tc.iq), tc.cond, tc.typ)
			})
		}
		enable(t, alice.laptop, "enable") // again: a result
		enable(t, alice.laptop, "disable")
		enable(t, alice.laptop, "disable") // again: a result
		enable(t, alice.desk, "enable")
		bob.MustSend(t, `<message to="alice@localhost/phone" id="d1" type="chat"><body>hi</body></message>`)
		bob.MustSync(t)
		wantCarbon(t, alice.desk, "received", "d1", "chat")
		alice.laptop.ExpectNone(t, "a carbon after disabling", anyCarbon)
		alice.phone.MustSend(t, `<message to="bob@localhost/x" id="d2" type="chat"><body>hi</body></message>`)
		alice.phone.MustSync(t)
		wantCarbon(t, alice.desk, "sent", "d2", "chat")
		alice.laptop.ExpectNone(t, "a carbon after disabling", anyCarbon)
	})
}

// TestForged checks §11: a carbon wrapper that another user sends is never
// delivered, to any of alice's resources, whether it claims she received
// or sent a message.
func TestForged(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		_, alice, bob := setup(t, b)
		for _, tc := range []struct{ to, dir string }{
			{"alice@localhost/phone", "received"},
			{"alice@localhost", "sent"},
			{"alice@localhost/gone", "received"},
		} {
			bob.MustSend(t, forgery(tc.to, tc.dir))
		}
		bob.MustSync(t)
		for _, c := range []*testserver.Client{alice.phone, alice.laptop, alice.desk} {
			c.ExpectNone(t, "a forged carbon", anyCarbon)
			c.ExpectNone(t, "the forgery", byID("forged"))
		}
	})
}

// forgery is a carbon that claims alice got a message from eve, sent to
// alice by someone else.
func forgery(to, dir string) string {
	return `<message to="` + to + `" id="forged" type="chat"><` + dir + ` xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0">` +
		`<message xmlns="jabber:client" from="eve@evil.example/x" to="alice@localhost/phone" type="chat" id="fake"><body>trust me</body></message>` +
		`</forwarded></` + dir + `></message>`
}

// TestSessionEnd checks that carbons end with the session that enabled
// them and that the next session starts disabled and may enable them
// again: copies stop when the last enabled session goes and come back.
func TestSessionEnd(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s, alice, bob := setup(t, b)
		enable(t, alice.phone, "disable")
		alice.laptop.Close()
		laptop := login(t, s, "alice", "laptop", `<presence/>`)
		bob.MustSend(t, `<message to="alice@localhost/phone" id="s1" type="chat"><body>hi</body></message>`)
		bob.MustSync(t)
		alice.phone.MustNext(t, "the message", byID("s1"))
		laptop.ExpectNone(t, "a carbon before enabling", anyCarbon)
		enable(t, laptop, "enable")
		bob.MustSend(t, `<message to="alice@localhost/phone" id="s2" type="chat"><body>hi</body></message>`)
		bob.MustSync(t)
		wantCarbon(t, laptop, "received", "s2", "chat")
	})
}
