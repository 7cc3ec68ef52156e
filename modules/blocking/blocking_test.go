package blocking_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/blocking"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// These tests drive a real server with real clients (mellium) on every
// storage backend.

const pw = "password"

// enable adds the blocking module to the configuration.
func enable(c *config.Config) { testserver.EnableModules(c, "blocking") }

func start(t *testing.T, b storetest.Backend, users ...string) *testserver.Server {
	t.Helper()
	s := testserver.StartOn(t, b, enable)
	for _, u := range users {
		s.AddUser(u, pw)
	}
	return s
}

func login(s *testserver.Server, user, resource string) *testserver.Client {
	return s.Login(user, pw, testserver.LoginOptions{Resource: resource})
}

// available sends initial presence and waits until the server has it.
func available(t *testing.T, c *testserver.Client, presence string) {
	t.Helper()
	c.MustSend(t, presence)
	c.MustSync(t)
}

// wantResult fails the test unless iq is answered with a result.
func wantResult(t *testing.T, c *testserver.Client, iq string) *router.Element {
	t.Helper()
	res := c.MustRequest(t, iq)
	if res.Get("type") != "result" {
		t.Fatalf("%s: got %s", iq, res)
	}
	return res
}

// stanza matches stanzas of a kind from a JID (its bare form matching any
// resource); typ "*" matches every type.
func stanza(kind, from, typ string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		if e.Name.Local != kind || (typ != "*" && e.Get("type") != typ) {
			return false
		}
		f := e.Get("from")
		return f == from || (!strings.Contains(from, "/") && strings.HasPrefix(f, from+"/"))
	}
}

// byID matches the stanza with the given id.
func byID(id string) func(*router.Element) bool {
	return func(e *router.Element) bool { return e.Get("id") == id }
}

// push matches a blocking push (an IQ set from the server).
func push(cmd string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		return e.Name.Local == "iq" && e.Get("type") == "set" && e.Child(blocking.NS, cmd) != nil
	}
}

func items(e *router.Element) []string {
	var out []string
	if p := e.Child(blocking.NS, ""); p != nil {
		for _, it := range p.Elements() {
			out = append(out, it.Get("jid"))
		}
	}
	return out
}

// blockedError checks that e is the XEP-0191 §3.3 error for an outbound
// stanza to a blocked JID.
func blockedError(t *testing.T, e *router.Element) {
	t.Helper()
	cond, typ := testserver.ErrorCondition(e)
	errEl := e.Child("", "error")
	if cond != "not-acceptable" || typ != "cancel" || errEl == nil || errEl.Child(blocking.NSErrors, "blocked") == nil {
		t.Errorf("got %s, want a cancel not-acceptable error with <blocked/>", e)
	}
}

func wantCondition(t *testing.T, e *router.Element, want string) {
	t.Helper()
	if cond, _ := testserver.ErrorCondition(e); e.Get("type") != "error" || cond != want {
		t.Errorf("got %s, want a %s error", e, want)
	}
}

// TestCommand checks the protocol of XEP-0191 §3.1–3.5: discovery, the
// list, block and unblock with their pushes to exactly the resources that
// asked for the list, and the errors.
func TestCommand(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, "alice", "bob")
		one, two, three := login(s, "alice", "one"), login(s, "alice", "two"), login(s, "alice", "three")

		res := wantResult(t, one, `<iq type="get" id="disco" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
		if !testserver.HasFeature(res, blocking.NS) {
			t.Errorf("server disco#info lacks %s: %s", blocking.NS, res)
		}
		res = wantResult(t, one, `<iq type="get" id="disco2" to="alice@localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
		if !testserver.HasFeature(res, blocking.NS) {
			t.Errorf("account disco#info lacks %s: %s", blocking.NS, res)
		}

		for _, c := range []*testserver.Client{one, two} {
			res := wantResult(t, c, `<iq type="get" id="list0"><blocklist xmlns="urn:xmpp:blocking"/></iq>`)
			if bl := res.Child(blocking.NS, "blocklist"); bl == nil || len(bl.Elements()) != 0 {
				t.Errorf("empty list: got %s", res)
			}
		}

		for _, tc := range []struct{ name, iq, cond string }{
			{"block nothing", `<iq type="set" id="e1"><block xmlns="urn:xmpp:blocking"/></iq>`, "bad-request"},
			{"item without jid", `<iq type="set" id="e2"><block xmlns="urn:xmpp:blocking"><item/></block></iq>`, "bad-request"},
			{"malformed jid", `<iq type="set" id="e3"><block xmlns="urn:xmpp:blocking"><item jid="a@b@c"/></block></iq>`, "jid-malformed"},
			{"malformed jid in unblock", `<iq type="set" id="e4"><unblock xmlns="urn:xmpp:blocking"><item jid="@x"/></unblock></iq>`, "jid-malformed"},
			{"someone else's list", `<iq type="get" id="e5" to="bob@localhost"><blocklist xmlns="urn:xmpp:blocking"/></iq>`, "service-unavailable"},
			{"block for someone else", `<iq type="set" id="e6" to="bob@localhost"><block xmlns="urn:xmpp:blocking"><item jid="x@y"/></block></iq>`, "service-unavailable"},
			{"set blocklist", `<iq type="set" id="e7"><blocklist xmlns="urn:xmpp:blocking"/></iq>`, "bad-request"},
			{"get block", `<iq type="get" id="e8"><block xmlns="urn:xmpp:blocking"><item jid="x@y"/></block></iq>`, "bad-request"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCondition(t, one.MustRequest(t, tc.iq), tc.cond)
			})
		}

		// Block: a result, then a push to each resource that asked for the
		// list, the sender included, and to no other.
		wantResult(t, one, `<iq type="set" id="b1"><block xmlns="urn:xmpp:blocking"><item jid="bob@localhost"/><item jid="Montague.NET"/></block></iq>`)
		for _, c := range []*testserver.Client{one, two} {
			p := c.MustNext(t, "block push", push("block"))
			if got := items(p); !slices.Equal(got, []string{"bob@localhost", "montague.net"}) {
				t.Errorf("block push items %v", got)
			}
			if to := p.Get("to"); to != c.LocalAddr().String() {
				t.Errorf("block push to %q, want %s", to, c.LocalAddr())
			}
		}
		three.ExpectNone(t, "push to a resource that never asked for the list", push("block"))

		res = wantResult(t, three, `<iq type="get" id="list1"><blocklist xmlns="urn:xmpp:blocking"/></iq>`)
		if got := items(res); !slices.Equal(got, []string{"bob@localhost", "montague.net"}) {
			t.Errorf("blocklist %v, want [bob@localhost montague.net]", got)
		}

		wantResult(t, two, `<iq type="set" id="u1"><unblock xmlns="urn:xmpp:blocking"><item jid="montague.net"/></unblock></iq>`)
		for _, c := range []*testserver.Client{one, two, three} {
			if got := items(c.MustNext(t, "unblock push", push("unblock"))); !slices.Equal(got, []string{"montague.net"}) {
				t.Errorf("unblock push items %v", got)
			}
		}
		wantResult(t, one, `<iq type="set" id="u2"><unblock xmlns="urn:xmpp:blocking"/></iq>`)
		for _, c := range []*testserver.Client{one, two, three} {
			if got := items(c.MustNext(t, "unblock-all push", push("unblock"))); len(got) != 0 {
				t.Errorf("unblock-all push has items %v", got)
			}
		}
		res = wantResult(t, one, `<iq type="get" id="list2"><blocklist xmlns="urn:xmpp:blocking"/></iq>`)
		if got := items(res); len(got) != 0 {
			t.Errorf("blocklist after unblock all: %v", got)
		}
	})
}

// TestEnforcement checks what a block does to stanzas both ways (XEP-0191
// §3.3) and that unblocking restores them (§3.4).
func TestEnforcement(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, "alice", "bob")
		alice, bob := login(s, "alice", "home"), login(s, "bob", "work")
		available(t, alice, `<presence/>`)
		available(t, bob, `<presence/>`)
		alice.Drain(t)
		bob.Drain(t)

		// Before: messages flow.
		bob.MustSend(t, `<message type="chat" id="m0" to="alice@localhost"><body>before</body></message>`)
		alice.MustNext(t, "message before the block", byID("m0"))

		wantResult(t, alice, `<iq type="set" id="b1"><block xmlns="urn:xmpp:blocking"><item jid="bob@localhost"/></block></iq>`)

		// Inbound message: the sender is told the user is unavailable;
		// the user gets nothing.
		bob.MustSend(t, `<message type="chat" id="m1" to="alice@localhost"><body>can you hear me?</body></message>`)
		wantCondition(t, bob.MustNext(t, "error for m1", byID("m1")), "service-unavailable")
		alice.ExpectNone(t, "message from a blocked JID", stanza("message", "bob@localhost", "*"))

		// Outbound message: the user gets the blocked error, the contact
		// nothing.
		alice.MustSend(t, `<message type="chat" id="m2" to="bob@localhost"><body>hello?</body></message>`)
		blockedError(t, alice.MustNext(t, "error for m2", byID("m2")))
		bob.ExpectNone(t, "message to a blocked JID", stanza("message", "alice@localhost", "*"))

		// Presence both ways: dropped, no error to anybody.
		bob.MustSend(t, `<presence id="p1" to="alice@localhost"><status>hi</status></presence>`)
		alice.MustSend(t, `<presence id="p2" to="bob@localhost"><status>hi</status></presence>`)
		bob.MustSync(t)
		alice.MustSync(t)
		alice.ExpectNone(t, "presence from a blocked JID or an error", func(e *router.Element) bool {
			return stanza("presence", "bob@localhost", "*")(e) || byID("p2")(e)
		})
		bob.ExpectNone(t, "presence from the blocking user or an error", func(e *router.Element) bool {
			return stanza("presence", "alice@localhost", "*")(e) || byID("p1")(e)
		})

		// IQ requests from the blocked JID get service-unavailable.
		res := bob.MustRequest(t, `<iq type="get" id="q1" to="`+alice.LocalAddr().String()+`"><query xmlns="jabber:iq:version"/></iq>`)
		wantCondition(t, res, "service-unavailable")
		alice.ExpectNone(t, "IQ from a blocked JID", stanza("iq", "bob@localhost", "*"))

		// Unblock: everything flows again.
		wantResult(t, alice, `<iq type="set" id="u1"><unblock xmlns="urn:xmpp:blocking"><item jid="bob@localhost"/></unblock></iq>`)
		bob.MustSend(t, `<message type="chat" id="m3" to="alice@localhost"><body>again</body></message>`)
		alice.MustNext(t, "message after unblock", byID("m3"))
		alice.MustSend(t, `<message type="chat" id="m4" to="bob@localhost"><body>yes</body></message>`)
		bob.MustNext(t, "reply after unblock", byID("m4"))
		bob.MustSend(t, `<presence id="p3" to="alice@localhost"/>`)
		alice.MustNext(t, "presence after unblock", byID("p3"))
	})
}

// TestPresenceOnBlock checks XEP-0191 §3.3 and §3.4: a contact subscribed
// to the user's presence gets unavailable presence on block and the user's
// current presence on unblock.
func TestPresenceOnBlock(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, "alice", "bob")
		ctx := context.Background()
		aliceJID, bobJID := jid.MustParse("alice@localhost"), jid.MustParse("bob@localhost")
		if _, err := s.Store.Rosters().Put(ctx, aliceJID, storage.RosterItem{Contact: bobJID, Subscription: storage.SubBoth}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Store.Rosters().Put(ctx, bobJID, storage.RosterItem{Contact: aliceJID, Subscription: storage.SubBoth}); err != nil {
			t.Fatal(err)
		}
		bob := login(s, "bob", "work")
		available(t, bob, `<presence/>`)
		alice := login(s, "alice", "home")
		available(t, alice, `<presence><show>away</show><status>out for lunch</status></presence>`)
		alice.MustSync(t)
		// Whatever presence the presence module broadcast and probed.
		bob.Drain(t)
		alice.Drain(t)

		from := alice.LocalAddr().String()
		wantResult(t, alice, `<iq type="set" id="b1"><block xmlns="urn:xmpp:blocking"><item jid="bob@localhost"/></block></iq>`)
		bob.MustNext(t, "unavailable presence on block", stanza("presence", from, "unavailable"))

		// While the block lasts, neither one's broadcasts reach the other
		// (the presence module sends them to subscribed contacts).
		available(t, alice, `<presence><status>back</status></presence>`)
		available(t, bob, `<presence><status>busy</status></presence>`)
		bob.ExpectNone(t, "the blocking user's broadcast", stanza("presence", "alice@localhost", "*"))
		alice.ExpectNone(t, "the blocked contact's broadcast", stanza("presence", "bob@localhost", "*"))

		wantResult(t, alice, `<iq type="set" id="u1"><unblock xmlns="urn:xmpp:blocking"/></iq>`)
		p := bob.MustNext(t, "current presence on unblock", stanza("presence", from, ""))
		if st := p.Child("", "status"); st == nil || st.Text() != "back" {
			t.Errorf("presence on unblock %s, want the user's current one", p)
		}
	})
}

// TestRestart checks that the blocklist is kept across a restart of the
// server on the same database (XEP-0191 §3.3: the block "applies across
// sessions").
func TestRestart(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		first := start(t, b, "alice", "bob")
		db := first.Config.Storage
		alice := login(first, "alice", "home")
		wantResult(t, alice, `<iq type="set" id="b1"><block xmlns="urn:xmpp:blocking"><item jid="bob@localhost"/></block></iq>`)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := first.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}

		second := testserver.StartOn(t, b, func(c *config.Config) {
			enable(c)
			c.Storage = db
		})
		alice = login(second, "alice", "home")
		available(t, alice, `<presence/>`)
		res := wantResult(t, alice, `<iq type="get" id="l1"><blocklist xmlns="urn:xmpp:blocking"/></iq>`)
		if got := items(res); !slices.Equal(got, []string{"bob@localhost"}) {
			t.Errorf("blocklist after restart %v, want [bob@localhost]", got)
		}
		bob := login(second, "bob", "work")
		bob.MustSend(t, `<message type="chat" id="m1" to="alice@localhost"><body>still there?</body></message>`)
		wantCondition(t, bob.MustNext(t, "error for m1", byID("m1")), "service-unavailable")
		alice.ExpectNone(t, "message from a blocked JID after restart", stanza("message", "bob@localhost", "*"))
	})
}

// TestBlockedBeforeLogin checks that what a JID sent while the user was
// offline is not delivered at login once the user has blocked it.
func TestBlockedBeforeLogin(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, func(c *config.Config) {
			testserver.EnableModules(c, "blocking", "offline")
		})
		for _, u := range []string{"alice", "bob", "carol"} {
			s.AddUser(u, pw)
		}
		bob, carol := login(s, "bob", "work"), login(s, "carol", "home")
		bob.MustSend(t, `<message type="chat" id="m1" to="alice@localhost"><body>from bob</body></message>`)
		carol.MustSend(t, `<message type="chat" id="m2" to="alice@localhost"><body>from carol</body></message>`)
		bob.MustSync(t)
		carol.MustSync(t)

		// Bound but not yet available: nothing is delivered before the
		// block.
		alice := login(s, "alice", "home")
		wantResult(t, alice, `<iq type="set" id="b1"><block xmlns="urn:xmpp:blocking"><item jid="bob@localhost"/></block></iq>`)
		available(t, alice, `<presence/>`)
		alice.MustNext(t, "carol's offline message", byID("m2"))
		alice.ExpectNone(t, "the blocked JID's offline message", byID("m1"))
	})
}
