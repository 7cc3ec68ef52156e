package offline_test

import (
	"bufio"
	"context"
	"os"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/offline"
	"github.com/xmppd/xmppd/router"
)

// These tests drive a real server with real clients (mellium) on every
// storage backend.

const pw = "password"

var aliceJID = jid.MustParse("alice@localhost")

func start(t *testing.T, b storetest.Backend, mutate func(*config.Config)) *testserver.Server {
	t.Helper()
	s := testserver.StartOn(t, b, func(c *config.Config) {
		testserver.EnableModules(c, "offline")
		if mutate != nil {
			mutate(c)
		}
	})
	s.AddUser("alice", pw)
	s.AddUser("bob", pw)
	return s
}

func login(s *testserver.Server, user string) *testserver.Client {
	return s.Login(user, pw, testserver.LoginOptions{})
}

func count(t *testing.T, s *testserver.Server) int {
	t.Helper()
	n, err := s.Store.Offline().Count(context.Background(), aliceJID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func fromBob(e *router.Element) bool {
	return e.Name.Local == "message" && strings.HasPrefix(e.Get("from"), "bob@localhost/")
}

// TestStore checks that a message to an offline user is stored with a
// delay and no error to the sender, that a headline is neither stored nor
// answered (XEP-0160 §3), and that the server advertises msgoffline (§4).
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil)
		bob := login(s, "bob")

		res := bob.MustRequest(t, `<iq type="get" id="disco" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
		if !testserver.HasFeature(res, offline.Feature) {
			t.Errorf("disco#info lacks %s: %s", offline.Feature, res)
		}

		bob.MustSend(t, `<message type="chat" id="m1" to="alice@localhost"><body>are you there?</body></message>`)
		bob.MustSend(t, `<message type="headline" id="h1" to="alice@localhost"><body>news</body></message>`)
		bob.MustSync(t)
		bob.ExpectNone(t, "an answer to a stored message or a headline", func(e *router.Element) bool {
			return e.Get("id") == "m1" || e.Get("id") == "h1"
		})
		msgs, err := s.Store.Offline().List(context.Background(), aliceJID)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 1 {
			t.Fatalf("%d messages stored, want 1 (not the headline)", len(msgs))
		}
		stored := string(msgs[0].Stanza)
		for _, want := range []string{`id="m1"`, `<body>are you there?</body>`, `<delay xmlns="urn:xmpp:delay" from="localhost" stamp="`} {
			if !strings.Contains(stored, want) {
				t.Errorf("stored message %s lacks %s", stored, want)
			}
		}
	})
}

// TestQueueFull checks that with the queue full the sender gets
// service-unavailable (XEP-0160 §2 step 3).
func TestQueueFull(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, func(c *config.Config) { c.SetModuleOptions("offline", offline.Options{MaxMessages: 2}) })
		bob := login(s, "bob")
		for _, id := range []string{"m1", "m2", "m3"} {
			bob.MustSend(t, `<message type="chat" id="`+id+`" to="alice@localhost"><body>`+id+`</body></message>`)
		}
		e := bob.MustNext(t, "an error", func(e *router.Element) bool { return e.Get("type") == "error" })
		if cond, _ := testserver.ErrorCondition(e); e.Get("id") != "m3" || cond != "service-unavailable" {
			t.Errorf("got %s, want service-unavailable for m3", e)
		}
		if n := count(t, s); n != 2 {
			t.Errorf("%d messages stored, want 2", n)
		}
	})
}

// presenceActive tells whether the presence module, which reports
// sessions becoming available, is built; while it is work in progress
// behind a build tag, no real client ever triggers delivery.
func presenceActive(t *testing.T) bool {
	t.Helper()
	f, err := os.Open("../roster/presence.go")
	if err != nil {
		return true // moved or renamed: assume it is live and let the test say
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "package ") {
			break
		}
		if strings.HasPrefix(line, "//go:build") && strings.Contains(line, "xmppd_wip") {
			return false
		}
	}
	return true
}

// TestDeliverAtLogin checks XEP-0160 §2 with real clients: the messages
// come, in order and with a delay, after the user's available presence,
// and not again at the next login.
func TestDeliverAtLogin(t *testing.T) {
	if !presenceActive(t) {
		t.Skip("modules/roster/presence.go is behind the xmppd_wip build tag: nothing calls Router.SessionAvailable for real clients yet (delivery is covered by TestDeliverOnAvailable with fake sessions)")
	}
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil)
		bob := login(s, "bob")
		bob.MustSend(t, `<message type="chat" id="m1" to="alice@localhost"><body>one</body></message>`)
		bob.MustSend(t, `<message id="m2" to="alice@localhost"><body>two</body></message>`)
		bob.MustSync(t)
		if n := count(t, s); n != 2 {
			t.Fatalf("%d messages stored, want 2", n)
		}

		alice := login(s, "alice")
		alice.MustSend(t, `<presence><priority>1</priority></presence>`)
		for _, id := range []string{"m1", "m2"} {
			e := alice.MustNext(t, id, fromBob)
			d := e.Child(offline.NSDelay, "delay")
			if e.Get("id") != id || d == nil || d.Get("from") != "localhost" || d.Get("stamp") == "" {
				t.Errorf("got %s, want %s with a delay from localhost", e, id)
			}
		}
		alice.MustSync(t)
		if n := count(t, s); n != 0 {
			t.Errorf("%d messages left after delivery", n)
		}
		alice.Close()

		again := login(s, "alice")
		again.MustSend(t, `<presence/>`)
		again.MustSync(t)
		again.ExpectNone(t, "a message delivered twice", fromBob)
	})
}
