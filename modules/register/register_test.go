package register_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/register"
	"github.com/xmppd/xmppd/storage"
)

const ns = "jabber:iq:register"

// start starts a server with the register module and, for the removal
// test, modules that store data. Registration stays disabled, as by
// default: what this module does must work without it.
func start(t *testing.T, b storetest.Backend) *testserver.Server {
	t.Helper()
	s := testserver.StartOn(t, b, func(c *config.Config) {
		testserver.EnableModules(c, "register", "vcard", "private")
	})
	if register.DefaultOptions().AllowRegistration {
		t.Fatal("registration enabled by default")
	}
	return s
}

// canLogin tells whether local can log in with password, failing the test
// if the login fails for another reason than a refused password.
func canLogin(t *testing.T, s *testserver.Server, local, password string) bool {
	t.Helper()
	c, err := s.Dial(local, password, testserver.LoginOptions{})
	if err == nil {
		c.Close()
		return true
	}
	var le *testserver.LoginError
	if !errors.As(err, &le) || le.SASLFailure != "not-authorized" {
		t.Fatalf("login %s: %v, want success or not-authorized", local, err)
	}
	return false
}

func TestRegistered(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b)
		s.AddUser("alice", "old")
		alice := s.Login("alice", "old", testserver.LoginOptions{})
		for _, to := range []string{"", " to='localhost'"} {
			e := alice.MustRequest(t, `<iq type='get' id='r1'`+to+`><query xmlns='jabber:iq:register'/></iq>`)
			testserver.WantResult(t, e)
			q := e.Child(ns, "query")
			if q == nil || q.Child(ns, "registered") == nil || q.Child(ns, "username") == nil || q.Child(ns, "username").Text() != "alice" {
				t.Fatalf("got %s, want <registered/> and username alice (XEP-0077 §3.1)", e)
			}
		}
		e := alice.MustRequest(t, `<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
		if !testserver.HasFeature(e, ns) {
			t.Errorf("server features lack %s: %s", ns, e)
		}
	})
}

func TestChangePassword(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b)
		s.AddUser("alice", "old")
		s.AddUser("bob", "bobs")
		alice := s.Login("alice", "old", testserver.LoginOptions{})

		for _, tc := range []struct {
			name, query, cond, typ string
		}{
			{"empty password", `<username>alice</username><password/>`, "bad-request", "modify"},
			{"no username", `<password>new</password>`, "bad-request", "modify"},
			{"no password", `<username>alice</username>`, "bad-request", "modify"},
			{"another account", `<username>bob</username><password>new</password>`, "forbidden", "auth"},
			{"another account's JID", `<username>bob@localhost</username><password>new</password>`, "forbidden", "auth"},
			{"remove with more", `<remove/><username>alice</username>`, "bad-request", "modify"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := alice.MustRequest(t, `<iq type='set' id='c1'><query xmlns='jabber:iq:register'>`+tc.query+`</query></iq>`)
				testserver.WantIQError(t, e, tc.cond, tc.typ)
			})
		}
		if !canLogin(t, s, "alice", "old") || !canLogin(t, s, "bob", "bobs") {
			t.Fatal("a refused change changed a password")
		}

		testserver.WantResult(t, alice.MustRequest(t, `<iq type='set' id='c2' to='localhost'><query xmlns='jabber:iq:register'><username>alice</username><password>new</password></query></iq>`))
		if canLogin(t, s, "alice", "old") {
			t.Error("old password still works")
		}
		if !canLogin(t, s, "alice", "new") {
			t.Error("new password does not work")
		}
		// The bare JID as username, as in the XEP's data form example.
		testserver.WantResult(t, alice.MustRequest(t, `<iq type='set' id='c3'><query xmlns='jabber:iq:register'><username>alice@localhost</username><password>newer</password></query></iq>`))
		if !canLogin(t, s, "alice", "newer") {
			t.Error("newer password does not work")
		}
		// The session that changed the password goes on.
		alice.MustSync(t)
	})
}

func TestRemove(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b)
		s.AddUser("alice", "pw")
		s.AddUser("bob", "pw")
		ctx := context.Background()
		aliceJID := jid.MustParse("alice@localhost")
		first := s.Login("alice", "pw", testserver.LoginOptions{Resource: "one"})
		second := s.Login("alice", "pw", testserver.LoginOptions{Resource: "two"})
		bob := s.Login("bob", "pw", testserver.LoginOptions{})

		testserver.WantResult(t, first.MustRequest(t, `<iq type='set' id='v'><vCard xmlns='vcard-temp'><FN>Alice</FN></vCard></iq>`))
		testserver.WantResult(t, first.MustRequest(t, `<iq type='set' id='p'><query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'/></query></iq>`))
		if _, err := s.Store.Rosters().Put(ctx, aliceJID, storage.RosterItem{Contact: jid.MustParse("bob@localhost"), Subscription: storage.SubBoth}); err != nil {
			t.Fatal(err)
		}
		archiveBoth(t, s.Store, aliceJID, jid.MustParse("bob@localhost"))

		e := first.MustRequest(t, `<iq type='set' id='unreg1'><query xmlns='jabber:iq:register'><remove/></query></iq>`)
		testserver.WantResult(t, e)
		// XEP-0077 §3.2: every session of the account ends with
		// not-authorized, the one that asked after its result.
		for _, c := range []*testserver.Client{first, second} {
			cond, err := c.WaitClosed()
			if err != nil || cond != "not-authorized" {
				t.Errorf("%s: stream error %q, %v; want not-authorized", c.LocalAddr(), cond, err)
			}
		}

		if _, err := s.Store.Users().Get(ctx, "localhost", "alice"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("account: %v, want not found", err)
		}
		if _, err := s.Store.VCards().Get(ctx, aliceJID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("vCard: %v, want not found", err)
		}
		if _, err := s.Store.PrivateXML().Get(ctx, aliceJID, "exodus:prefs"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("private XML: %v, want not found", err)
		}
		if items, _, err := s.Store.Rosters().Get(ctx, aliceJID); err != nil || len(items) != 0 {
			t.Errorf("roster: %v, %v; want empty", items, err)
		}
		if page, err := s.Store.Archives().Query(ctx, aliceJID, storage.ArchiveQuery{Max: 10}); err != nil || page.Count != 0 {
			t.Errorf("archive: %d messages, %v; want none", page.Count, err)
		}
		if _, err := s.Store.Archives().Prefs(ctx, aliceJID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("archiving preferences: %v, want not found", err)
		}
		if page, err := s.Store.Archives().Query(ctx, jid.MustParse("bob@localhost"), storage.ArchiveQuery{Max: 10}); err != nil || page.Count != 1 {
			t.Errorf("bob's archive: %d messages, %v; want his copy kept", page.Count, err)
		}
		if canLogin(t, s, "alice", "pw") {
			t.Error("removed account can log in")
		}
		// Others are not affected.
		bob.MustSync(t)
		// The name is free again.
		s.AddUser("alice", "again")
	})
}

// TestNotOffered checks that only a local account's registration with its
// own domain is handled.
func TestNotOffered(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) {
		testserver.EnableModules(c, "register")
		c.Hosts = append(c.Hosts, config.Host{Domain: "other.localhost"})
	})
	s.AddUser("alice", "pw")
	alice := s.Login("alice", "pw", testserver.LoginOptions{})
	for _, typ := range []string{"get", "set"} {
		e := alice.MustRequest(t, `<iq type='`+typ+`' id='o1' to='other.localhost'><query xmlns='jabber:iq:register'><username>alice</username><password>x</password></query></iq>`)
		testserver.WantIQError(t, e, "service-unavailable", "cancel")
	}
}

// archiveBoth archives a message between two accounts in both their
// archives (XEP-0313), as the mam module does, and sets the first one's
// archiving preferences.
func archiveBoth(t *testing.T, store storage.Store, from, to jid.JID) {
	t.Helper()
	ctx := context.Background()
	stanza := []byte("<message xmlns='jabber:client' type='chat'><body>hi</body></message>")
	now := time.Now().UTC().Truncate(time.Microsecond)
	err := store.Archives().Append(ctx, []storage.ArchiveEntry{
		{Owner: from, ArchivedMessage: storage.ArchivedMessage{ID: "out1", Stamp: now, With: to, Stanza: stanza, Text: "hi"}},
		{Owner: to, ArchivedMessage: storage.ArchivedMessage{ID: "in1", Stamp: now, With: from, Stanza: stanza, Text: "hi"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Archives().SetPrefs(ctx, from, storage.ArchivePrefs{Default: storage.ArchiveNever, Always: []jid.JID{to}}); err != nil {
		t.Fatal(err)
	}
}
