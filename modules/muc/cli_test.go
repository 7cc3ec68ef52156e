package muc_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	admincmd "github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/muc"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// keepOpen is the running server's store for the operator's commands,
// whose Close must not close it under the server.
type keepOpen struct{ storage.Store }

func (keepOpen) Close() error { return nil }

// operator runs a room command of the admin registry, as `xmppd room`
// does, against the store and services of the running server s.
func operator(t *testing.T, s *testserver.Server, path string, raw map[string][]string) string {
	t.Helper()
	env := &admincmd.Env{
		OpenStore:    func(context.Context, config.Storage) (storage.Store, error) { return keepOpen{s.Store}, nil },
		RoomServices: func(*config.Config) (admincmd.RoomServices, error) { return muc.Services(s.Config) },
	}
	c, ok := admincmd.Lookup(path)
	if !ok {
		t.Fatalf("no command %q", path)
	}
	in, err := c.Parse(env, raw)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	res, err := c.Exec(context.Background(), env, in)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return res.Text
}

// TestCLIRoom: a room `xmppd room create` stores while the server runs
// works at once, found by the first stanza for it (a disco#info, then
// joins), and is the room an owner would have made and configured the same
// way through XEP-0045: the same stored configuration, the same disco#info
// and configuration form. Its affiliations are the operator's.
func TestCLIRoom(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, map[string]any{"default_history": 7}, "alice", "bob", "carol")
		alice, bob, carol := online(t, s, "alice"), online(t, s, "bob"), online(t, s, "carol")
		// The room made through the protocol, to compare with.
		alice.create("xmpp", "alice")
		testserver.WantResult(t, alice.configure("xmpp", "muc#roomconfig_persistentroom", "1", "muc#roomconfig_roomname", "Team",
			"muc#roomconfig_membersonly", "1"))
		// Empty, as the CLI's room is.
		alice.send(`<presence type='unavailable' to='` + occ("xmpp", "alice") + `'/>`)
		alice.MustNext(t, "exit", unavailableFrom(occ("xmpp", "alice")))

		if got := operator(t, s, "room create", map[string][]string{"room": {room("cli")}, "name": {"Team"}, "members-only": {"true"}}); !strings.HasPrefix(got, "created "+room("cli")) {
			t.Fatalf("room create: %q", got)
		}
		ctx := context.Background()
		made, err := s.Store.Rooms().Room(ctx, jid.MustParse(room("xmpp")))
		if err != nil {
			t.Fatal(err)
		}
		created, err := s.Store.Rooms().Room(ctx, jid.MustParse(room("cli")))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(created.Config, made.Config) || created.Config.HistoryLength != 7 {
			t.Errorf("configuration of the CLI's room\n%+v\nwant that of the configured room\n%+v", created.Config, made.Config)
		}
		if len(created.Secret) != len(made.Secret) || created.Creator != "" {
			t.Errorf("CLI room: secret of %d bytes, creator %q; want %d bytes and none", len(created.Secret), created.Creator, len(made.Secret))
		}

		// Not in memory yet: an IQ finds it in the store.
		info := bob.iq(room("cli"), "get", `<query xmlns='`+nsInfo+`'/>`)
		testserver.WantResult(t, info)
		if want := alice.iq(room("xmpp"), "get", `<query xmlns='`+nsInfo+`'/>`); discoView(info) != discoView(want) {
			t.Errorf("disco#info of the CLI's room\n%s\nwant as the configured room's\n%s", info, want)
		}
		// Members-only, and nobody is a member yet.
		wantError(t, bob.join("cli", "bob", ""), "registration-required", "auth")

		operator(t, s, "room affiliation", map[string][]string{"room": {room("cli")}, "jid": {"alice@localhost"}, "affiliation": {"owner"}})
		operator(t, s, "room affiliation", map[string][]string{"room": {room("cli")}, "jid": {"bob@localhost"}, "affiliation": {"member"}})
		// Loaded before the affiliations: as documented, the running server
		// sees them after a restart. A room loaded only now sees them.
		operator(t, s, "room create", map[string][]string{"room": {room("fresh")}, "name": {"Team"}, "members-only": {"true"}})
		operator(t, s, "room affiliation", map[string][]string{"room": {room("fresh")}, "jid": {"alice@localhost"}, "affiliation": {"owner"}})
		operator(t, s, "room affiliation", map[string][]string{"room": {room("fresh")}, "jid": {"bob@localhost"}, "affiliation": {"member"}})

		self := alice.enter("fresh", "alice")
		wantItem(t, self, "owner", "moderator")
		if hasStatus(self, 201) {
			t.Errorf("entering the CLI's room created a room: %s", self)
		}
		wantItem(t, bob.enter("fresh", "bob"), "member", "participant")
		alice.MustNext(t, "bob's presence", presenceFrom(occ("fresh", "bob")))
		wantError(t, carol.join("fresh", "carol", ""), "registration-required", "auth")
		alice.send(`<message type='groupchat' to='` + room("fresh") + `'><body>hello</body></message>`)
		bob.MustNext(t, "alice's message", groupchatFrom(occ("fresh", "alice"), "hello"))

		form := alice.iq(room("fresh"), "get", `<query xmlns='`+muc.NSOwner+`'/>`)
		testserver.WantResult(t, form)
		if want := alice.iq(room("xmpp"), "get", `<query xmlns='`+muc.NSOwner+`'/>`); formView(form) != formView(want) {
			t.Errorf("configuration form of the CLI's room\n%s\nwant as the configured room's\n%s", form, want)
		}

		// A room loaded before the command keeps what it had until a
		// restart, as the command's help says.
		wantError(t, bob.join("cli", "bob", ""), "registration-required", "auth")
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		s2 := testserver.StartOn(t, b, func(c *config.Config) {
			testserver.EnableModules(c, "muc", "roster", "carbons")
			c.Storage, c.DataDir = s.Config.Storage, s.Config.DataDir
		})
		wantItem(t, online(t, s2, "bob").enter("cli", "bob"), "member", "participant")
	})
}

// discoView is a room's disco#info answer without what differs between
// two rooms of the same configuration: its address and id.
func discoView(e *router.Element) string {
	q := e.Child(nsInfo, "query")
	if q == nil {
		return e.String()
	}
	return q.String()
}

// formView is the configuration form without its title, which names the
// room.
func formView(e *router.Element) string {
	q := e.Child(muc.NSOwner, "query")
	if q == nil {
		return e.String()
	}
	x := q.Child("jabber:x:data", "x").Copy()
	kept := x.Children[:0]
	for _, n := range x.Children {
		if el, ok := n.(*router.Element); ok && el.Name.Local == "title" {
			continue
		}
		kept = append(kept, n)
	}
	x.Children = kept
	return x.String()
}
