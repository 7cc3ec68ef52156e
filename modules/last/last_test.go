package last_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

const pw = "secret"

const ns = "jabber:iq:last"

// wantLast checks that e is a result and returns its seconds and text.
func wantLast(t *testing.T, e *router.Element) (int64, string) {
	t.Helper()
	testserver.WantResult(t, e)
	q := e.Child(ns, "query")
	if q == nil {
		t.Fatalf("result without query: %s", e)
	}
	secs, err := strconv.ParseInt(q.Get("seconds"), 10, 64)
	if err != nil {
		t.Fatalf("seconds %q: %v", q.Get("seconds"), err)
	}
	return secs, q.Text()
}

func query(to string) string {
	if to != "" {
		to = ` to='` + to + `'`
	}
	return `<iq type='get' id='last-` + router.NewID() + `'` + to + `><query xmlns='jabber:iq:last'/></iq>`
}

// subscribe puts contact in owner's roster with the subscription given.
func subscribe(t *testing.T, s *testserver.Server, owner, contact, sub string) {
	t.Helper()
	_, err := s.Store.Rosters().Put(context.Background(), jid.MustParse(owner), storage.RosterItem{
		Contact: jid.MustParse(contact), Subscription: sub,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLast(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, func(c *config.Config) { testserver.EnableModules(c, "last") })
		for _, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
			s.AddUser(u, pw)
		}
		// dave never logs in in this test, so that the last activity
		// set here is not replaced by a presence module recording a
		// logout.
		logout := time.Now().Add(-100 * time.Second)
		if err := s.Store.LastActivity().Set(context.Background(), jid.MustParse("dave@localhost"), logout, "Heading Home"); err != nil {
			t.Fatal(err)
		}
		subscribe(t, s, "alice@localhost", "bob@localhost", storage.SubFrom)
		subscribe(t, s, "dave@localhost", "bob@localhost", storage.SubBoth)
		subscribe(t, s, "erin@localhost", "bob@localhost", storage.SubFrom)
		subscribe(t, s, "dave@localhost", "carol@localhost", storage.SubTo) // carol does not see dave
		alice := s.Login("alice", pw, testserver.LoginOptions{})
		bob := s.Login("bob", pw, testserver.LoginOptions{})
		carol := s.Login("carol", pw, testserver.LoginOptions{})

		t.Run("server uptime", func(t *testing.T) {
			secs, text := wantLast(t, bob.MustRequest(t, query("localhost")))
			if secs < 0 || secs > 600 || text != "" {
				t.Errorf("uptime %d s, text %q", secs, text)
			}
		})

		t.Run("online contact is 0", func(t *testing.T) {
			// XEP-0012 §3: a connected resource makes it 0.
			secs, text := wantLast(t, bob.MustRequest(t, query("alice@localhost")))
			if secs != 0 || text != "" {
				t.Errorf("got %d %q, want 0 and no text", secs, text)
			}
		})

		t.Run("offline contact", func(t *testing.T) {
			secs, text := wantLast(t, bob.MustRequest(t, query("dave@localhost")))
			if secs < 100 || secs > 160 || text != "Heading Home" {
				t.Errorf("got %d %q, want about 100 s and the status", secs, text)
			}
		})

		t.Run("own account", func(t *testing.T) {
			for _, to := range []string{"", "alice@localhost"} {
				if secs, _ := wantLast(t, alice.MustRequest(t, query(to))); secs != 0 {
					t.Errorf("to %q: %d, want 0 (online)", to, secs)
				}
			}
		})

		t.Run("not subscribed is forbidden", func(t *testing.T) {
			// carol is in no roster of alice; dave has her as 'to' only.
			testserver.WantIQError(t, carol.MustRequest(t, query("alice@localhost")), "forbidden", "auth")
			testserver.WantIQError(t, carol.MustRequest(t, query("dave@localhost")), "forbidden", "auth")
			// alice is not in bob's... nor in dave's roster.
			testserver.WantIQError(t, alice.MustRequest(t, query("dave@localhost")), "forbidden", "auth")
		})

		t.Run("never logged out", func(t *testing.T) {
			testserver.WantIQError(t, bob.MustRequest(t, query("erin@localhost")), "item-not-found", "cancel")
		})

		t.Run("unknown account", func(t *testing.T) {
			testserver.WantIQError(t, bob.MustRequest(t, query("nobody@localhost")), "service-unavailable", "cancel")
		})

		t.Run("full JID", func(t *testing.T) {
			full := alice.LocalAddr().String()
			// XEP-0012 §4: not passed on to the client when the sender
			// may not see the account's presence.
			testserver.WantIQError(t, carol.MustRequest(t, query(full)), "forbidden", "auth")
			// A contact's query reaches the client, which answers it
			// (the test client answers every request with an empty
			// result).
			e := bob.MustRequest(t, query(full))
			if e.Get("type") != "result" || e.Get("from") != full {
				t.Fatalf("answer %s, want alice's client's result", e)
			}
			alice.MustNext(t, "bob's query", func(e *router.Element) bool {
				return e.Name.Local == "iq" && e.Child(ns, "query") != nil && e.Get("from") == bob.LocalAddr().String()
			})
			// carol's query never reached alice: it would have come
			// before the answer to a ping alice sends now.
			alice.ExpectNone(t, "carol's query", func(e *router.Element) bool {
				return e.Child(ns, "query") != nil && e.Get("from") == carol.LocalAddr().String()
			})
		})

		t.Run("disco advertises jabber:iq:last", func(t *testing.T) {
			e := bob.MustRequest(t, `<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
			if !testserver.HasFeature(e, ns) {
				t.Errorf("server features lack %s: %s", ns, e)
			}
		})
	})
}

// TestLastAfterLogout: the status of the unavailable presence a user last
// sent is what a contact's query tells once the user is offline (XEP-0012
// §3, RFC 6121 §4.5.2), with the seconds since; a later connection that is
// dropped without a word records a logout without one.
func TestLastAfterLogout(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, func(c *config.Config) { testserver.EnableModules(c, "roster", "last") })
		s.AddUser("alice", pw)
		s.AddUser("bob", pw)
		subscribe(t, s, "alice@localhost", "bob@localhost", storage.SubBoth)
		subscribe(t, s, "bob@localhost", "alice@localhost", storage.SubBoth)
		bob := s.Login("bob", pw, testserver.LoginOptions{})
		offline := func() bool { return len(s.Router.Sessions().Sessions(jid.MustParse("alice@localhost"))) == 0 }

		alice := s.Login("alice", pw, testserver.LoginOptions{})
		alice.MustSend(t, `<presence/>`)
		alice.MustSend(t, `<presence type='unavailable'><status>Goodbye</status></presence>`)
		alice.Close()
		eventually(t, "alice offline", offline)
		// The logout is recorded after the session has left the
		// registry, in the account's presence order.
		eventually(t, "alice's logout recorded", func() bool {
			_, _, err := s.Store.LastActivity().Get(context.Background(), jid.MustParse("alice@localhost"))
			return err == nil
		})
		secs, text := wantLast(t, bob.MustRequest(t, query("alice@localhost")))
		if secs < 0 || secs > 600 || text != "Goodbye" {
			t.Errorf("got %d %q, want a few seconds and Goodbye", secs, text)
		}
	})
}

// eventually polls cond until it holds, for what the server does after a
// connection ends; the bound only limits a failure.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBlockingRunsBeforeLast checks the order of the two filters: a query
// to a full JID from someone the account blocked gets the blocking answer
// (XEP-0191 §3.5: service-unavailable, as if the account were not there),
// not last's forbidden, which would tell the blocked user that the
// account exists and refuses him.
func TestBlockingRunsBeforeLast(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) { testserver.EnableModules(c, "blocking", "last") })
	for _, u := range []string{"alice", "carol"} {
		s.AddUser(u, pw)
	}
	alice := s.Login("alice", pw, testserver.LoginOptions{})
	carol := s.Login("carol", pw, testserver.LoginOptions{})
	testserver.WantResult(t, alice.MustRequest(t, `<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='carol@localhost'/></block></iq>`))
	testserver.WantIQError(t, carol.MustRequest(t, query(alice.LocalAddr().String())), "service-unavailable", "cancel")
}
