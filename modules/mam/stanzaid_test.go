package mam_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// forged are stanza-ids a sender adds to make a client believe the
// server archived its message under an id of the sender's choosing.
const forged = `<stanza-id xmlns="urn:xmpp:sid:0" by="bob@localhost" id="forged-bob"/>` +
	`<stanza-id xmlns="urn:xmpp:sid:0" by="localhost" id="forged-domain"/>` +
	`<stanza-id xmlns="urn:xmpp:sid:0" by="alice@localhost" id="forged-alice"/>` +
	`<stanza-id xmlns="urn:xmpp:sid:0" by="LocalHost" id="forged-upper"/>` +
	`<stanza-id xmlns="urn:xmpp:sid:0" by="bob@localhost./x" id="forged-dot"/>` +
	`<stanza-id xmlns="urn:xmpp:sid:0" by="room@conference.example" id="room-1"/>` +
	`<origin-id xmlns="urn:xmpp:sid:0" id="origin-1"/>`

// TestStripStanzaIDs: stanza-ids that claim this server's archives are
// removed from what a local user sends, archived or not; those of others
// and the origin-id are kept.
func TestStripStanzaIDs(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob")
		alice := online(t, s, "alice", "phone")
		bob := online(t, s, "bob", "phone")
		for _, c := range []struct {
			id, payload string
			archived    bool
		}{
			{"s1", `<body>hi</body>`, true},
			{"s2", `<body>hi</body><no-store xmlns="urn:xmpp:hints"/>`, false},
			{"s3", `<composing xmlns="http://jabber.org/protocol/chatstates"/>`, false},
		} {
			alice.MustSend(t, `<message to="bob@localhost" id="`+c.id+`" type="chat">`+c.payload+forged+`</message>`)
			m := bob.MustNext(t, "the message", byID(c.id))
			ids := stanzaIDs(m)
			if ids["room@conference.example"] != "room-1" {
				t.Errorf("%s: a stanza-id not ours was removed: %s", c.id, m)
			}
			if o := m.Child("urn:xmpp:sid:0", "origin-id"); o == nil || o.Get("id") != "origin-1" {
				t.Errorf("%s: the origin-id was lost: %s", c.id, m)
			}
			if ids["localhost"] != "" || ids["alice@localhost"] != "" || ids["LocalHost"] != "" || ids["bob@localhost./x"] != "" {
				t.Errorf("%s: forged stanza-ids kept: %v", c.id, ids)
			}
			switch bid := ids["bob@localhost"]; {
			case c.archived && (bid == "" || bid == "forged-bob" || bid == "DUPLICATE"):
				t.Errorf("%s: stanza-id by bob %q, want the server's own", c.id, bid)
			case !c.archived && bid != "":
				t.Errorf("%s: not archived but has a stanza-id by bob %q", c.id, bid)
			}
		}
		p := query(t, bob, q{})
		if len(p.results) != 1 {
			t.Fatalf("bob's archive holds %v, want s1 only", p.ids())
		}
		// The archived copy is the message as routed: the room's stanza-id
		// kept, the forged ones stripped, and none of bob's archive (its id
		// is the result's).
		if ids := stanzaIDs(forwarded(p.results[0])); len(ids) != 1 || ids["room@conference.example"] != "room-1" {
			t.Errorf("bob's archived copy has stanza-ids %v, want only the room's", ids)
		}
	})
}

// TestFederation: a remote domain's forged stanza-ids for a local account
// are stripped; a message to a remote user is archived for the local
// sender only and leaves without a stanza-id of ours.
func TestFederation(t *testing.T) {
	servers := testserver.StartFederation(t, func(c *config.Config) {
		testserver.EnableModules(c, "mam")
		if c.Hosts[0].Domain == "b.test" {
			// The remote server does not strip what it relays.
			c.Modules = slices.DeleteFunc(c.Modules, func(id string) bool { return id == "mam" })
		}
	}, "a.test", "b.test")
	a, b := servers[0], servers[1]
	a.AddUser("alice", pw)
	b.AddUser("mallory", pw)
	alice := online(t, a, "alice", "phone")
	mallory := online(t, b, "mallory", "x")

	mallory.MustSend(t, `<message to="alice@a.test" id="f1" type="chat"><body>from afar</body>`+
		`<stanza-id xmlns="urn:xmpp:sid:0" by="alice@a.test" id="forged"/><stanza-id xmlns="urn:xmpp:sid:0" by="a.test" id="forged-domain"/></message>`)
	m := alice.MustNext(t, "the remote message", byID("f1"))
	ids := stanzaIDs(m)
	if len(ids) != 1 || ids["alice@a.test"] == "" || ids["alice@a.test"] == "forged" || ids["alice@a.test"] == "DUPLICATE" {
		t.Errorf("delivered with stanza-ids %v, want only the server's by alice@a.test", ids)
	}
	p := query(t, alice, q{})
	if !slices.Equal(p.ids(), []string{ids["alice@a.test"]}) {
		t.Errorf("alice's archive holds %v, want [%s]", p.ids(), ids["alice@a.test"])
	}
	if f := forwarded(p.results[0]); f.Get("from") != "mallory@b.test/x" {
		t.Errorf("archived from %s", f)
	}

	alice.MustSend(t, `<message to="mallory@b.test/x" id="f2" type="chat"><body>back</body></message>`)
	back := mallory.MustNext(t, "the answer", byID("f2"))
	if ids := stanzaIDs(back); len(ids) != 0 {
		t.Errorf("our stanza-ids went out over s2s: %v", ids)
	}
	p = query(t, alice, q{fields: map[string][]string{"with": {"mallory@b.test"}}})
	if len(p.results) != 2 || forwarded(p.results[1]).Get("to") != "mallory@b.test/x" {
		t.Errorf("alice's archive with mallory holds %v", p.ids())
	}
}

// TestOfflineAndArchive: a message to an offline account is archived and
// stored offline with the same stanza-id, delivered once at login, and the
// archive returns it under that id.
func TestOfflineAndArchive(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob")
		alice := online(t, s, "alice", "phone")
		send(t, alice, "bob@localhost", "o1", "while you were out")

		bob := s.Login("bob", pw, testserver.LoginOptions{Resource: "phone"})
		bob.MustSend(t, `<presence/>`)
		m := bob.MustNext(t, "the offline message", byID("o1"))
		sid := stanzaIDs(m)["bob@localhost"]
		if sid == "" || sid == "DUPLICATE" {
			t.Fatalf("offline message delivered with stanza-ids %v", stanzaIDs(m))
		}
		bob.ExpectNone(t, "the offline message again", byID("o1"))
		p := query(t, bob, q{})
		if !slices.Equal(p.ids(), []string{sid}) {
			t.Errorf("bob's archive holds %v, want [%s]", p.ids(), sid)
		}
		bob.Close()
		bob = online(t, s, "bob", "phone")
		bob.ExpectNone(t, "the offline message at the next login", byID("o1"))
	})
}

// TestRestart: the archive and the preferences are in the database, not
// in the process.
func TestRestart(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		dataDir, store := t.TempDir(), b.Config(t)
		same := func(c *config.Config) { c.DataDir, c.Storage = dataDir, store }
		first := start(t, b, same, "alice", "bob")
		alice := online(t, first, "alice", "phone")
		send(t, alice, "bob@localhost", "r1", "before the restart")
		prefs(t, alice.MustRequest(t, setPrefs("always", "", jids("carol@localhost"))))
		before := query(t, alice, q{}).ids()
		alice.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := first.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}

		second := start(t, b, same)
		alice = online(t, second, "alice", "phone")
		p := query(t, alice, q{})
		if !slices.Equal(p.ids(), before) || len(before) != 1 || forwarded(p.results[0]).Child("", "body").Text() != "before the restart" {
			t.Errorf("after the restart the archive holds %v, before %v", p.ids(), before)
		}
		if _, _, never := prefs(t, alice.MustRequest(t, `<iq type="get" id="gp"><prefs xmlns="urn:xmpp:mam:2"/></iq>`)); !slices.Equal(never, []string{"carol@localhost"}) {
			t.Errorf("preferences lost: never %v", never)
		}
		send(t, alice, "bob@localhost", "r2", "after")
		if p := query(t, alice, q{}); len(p.results) != 2 || p.ids()[0] != before[0] {
			t.Errorf("after a new message the archive holds %v", p.ids())
		}
	})
}

var _ = router.NSClient
