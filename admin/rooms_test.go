package admin_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
)

// testRoomConfig is what the services of roomEnv give a new room; the
// muc module's own defaults are checked against a room it made in
// modules/muc (TestCLIRoom).
var testRoomConfig = storage.RoomConfig{Public: true, Whois: "moderators", HistoryLength: 7, AllowPM: "anyone"}

// roomEnv is an Env on db whose group chat services are those given.
func roomEnv(db storage.Store, services ...string) *admin.Env {
	return &admin.Env{
		OpenStore: func(context.Context, config.Storage) (storage.Store, error) { return keepOpen{db}, nil },
		RoomServices: func(*config.Config) (admin.RoomServices, error) {
			return admin.RoomServices{Addresses: services, NewRoom: func(j jid.JID, now time.Time) storage.Room {
				return storage.Room{JID: j, Config: testRoomConfig, Secret: []byte("0123456789abcdef0123456789abcdef"), Created: now}
			}}, nil
		},
	}
}

// run parses raw for the command at path and runs it, as a front end does.
func run(t *testing.T, env *admin.Env, path string, raw map[string][]string) (admin.Result, error) {
	t.Helper()
	c, ok := admin.Lookup(path)
	if !ok {
		t.Fatalf("no command %q", path)
	}
	in, err := c.Parse(env, raw)
	if err != nil {
		return admin.Result{}, err
	}
	return c.Exec(context.Background(), env, in)
}

// TestRoomCommands runs room list, create, affiliation and destroy one
// after the other on each backend: what they print, what they store, and
// the errors that name the problem.
func TestRoomCommands(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		ctx := context.Background()
		env := roomEnv(db, "conference.localhost", "conference.example.org")
		lounge := jid.MustParse("lounge@conference.localhost")
		// The lounge's archive, which destroy takes with it, and another
		// room's, which it leaves.
		for _, owner := range []string{lounge.String(), "team@conference.example.org"} {
			if err := db.Archives().Append(ctx, []storage.ArchiveEntry{{Owner: jid.MustParse(owner), ArchivedMessage: storage.ArchivedMessage{
				ID: "m-" + owner, Stamp: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), With: jid.MustParse("alice@localhost"),
				Stanza: []byte("<message xmlns='jabber:client' type='groupchat'><body>hi</body></message>"), Text: "hi"}}}); err != nil {
				t.Fatal(err)
			}
		}
		const (
			loungeLine = "lounge@conference.localhost\tpersistent\topen"
			teamLine   = "team@conference.example.org\tpersistent\tmembers-only"
		)
		type raw = map[string][]string
		aff := func(room, who, affiliation string) raw {
			return raw{"room": {room}, "jid": {who}, "affiliation": {affiliation}}
		}
		steps := []struct {
			path     string
			raw      raw
			wantText string
			wantErr  string
		}{
			{path: "room list"},
			{path: "room create", raw: raw{"room": {"Lounge@Conference.LocalHost"}, "name": {"The Lounge"}},
				wantText: "created lounge@conference.localhost (persistent, no owner yet)\n"},
			{path: "room create", raw: raw{"room": {"lounge@conference.localhost"}}, wantErr: "room lounge@conference.localhost already exists"},
			{path: "room create", raw: raw{"room": {"team@conference.example.org"}, "members-only": {"true"}, "persistent": {"true"}},
				wantText: "created team@conference.example.org (persistent, no owner yet)\n"},
			{path: "room create", raw: raw{"room": {"temp@conference.localhost"}, "persistent": {"false"}}, wantErr: "persistent rooms only"},
			{path: "room create", raw: raw{"room": {"x@conference.example.com"}},
				wantErr: `"conference.example.com" is not a multi-user chat service of this server (services: conference.localhost, conference.example.org)`},
			{path: "room create", raw: raw{"room": {"x@localhost"}}, wantErr: `"localhost" is not a multi-user chat service`},
			{path: "room create", raw: raw{"room": {"conference.localhost"}}, wantErr: `invalid room "conference.localhost": want room@service`},
			{path: "room create", raw: raw{"room": {"x@conference.localhost/nick"}}, wantErr: "without /nick"},
			{path: "room list", wantText: loungeLine + "\taffiliations=0\tname=\"The Lounge\"\n" + teamLine + "\taffiliations=0\n"},
			{path: "room list", raw: raw{"service": {"conference.example.org"}}, wantText: teamLine + "\taffiliations=0\n"},
			{path: "room list", raw: raw{"service": {"conference.example.com"}}, wantErr: `"conference.example.com" is not a multi-user chat service`},
			{path: "room affiliation", raw: aff("lounge@conference.localhost", "Alice@LocalHost", "owner"), wantText: "alice@localhost is now owner of lounge@conference.localhost\n"},
			{path: "room affiliation", raw: aff("lounge@conference.localhost", "bob@example.net", "member"), wantText: "bob@example.net is now member of lounge@conference.localhost\n"},
			{path: "room affiliation", raw: aff("lounge@conference.localhost", "spam.example", "outcast"), wantText: "spam.example is now outcast of lounge@conference.localhost\n"},
			{path: "room affiliation", raw: aff("lounge@conference.localhost", "bob@example.net", "king"), wantErr: `invalid affiliation "king": want one of owner, admin, member, outcast, none`},
			{path: "room affiliation", raw: aff("lounge@conference.localhost", "bob@example.net/phone", "member"), wantErr: `invalid JID "bob@example.net/phone": rosters and room affiliations hold bare JIDs`},
			{path: "room affiliation", raw: aff("gone@conference.localhost", "bob@example.net", "member"), wantErr: "room gone@conference.localhost does not exist"},
			{path: "room affiliation", raw: aff("x@conference.example.com", "bob@example.net", "member"), wantErr: `"conference.example.com" is not a multi-user chat service`},
			{path: "room affiliation", raw: aff("lounge@conference.localhost", "alice@localhost", "admin"), wantErr: "alice@localhost is the last owner of room lounge@conference.localhost: make another owner first"},
			{path: "room affiliation", raw: aff("lounge@conference.localhost", "alice@localhost", "none"), wantErr: "is the last owner"},
			{path: "room affiliation", raw: aff("lounge@conference.localhost", "bob@example.net", "owner"), wantText: "bob@example.net is now owner of lounge@conference.localhost\n"},
			{path: "room affiliation", raw: aff("lounge@conference.localhost", "alice@localhost", "none"), wantText: "alice@localhost has no affiliation with lounge@conference.localhost now\n"},
			{path: "room affiliation", raw: aff("lounge@conference.localhost", "carol@localhost", "none"), wantText: "carol@localhost has no affiliation with lounge@conference.localhost now\n"},
			{path: "room list", raw: raw{"service": {"conference.localhost"}}, wantText: loungeLine + "\taffiliations=2\tname=\"The Lounge\"\n"},
			{path: "room destroy", raw: raw{"room": {"lounge@conference.localhost"}},
				wantText: "destroyed lounge@conference.localhost, its affiliations and its archive\n"},
			{path: "room destroy", raw: raw{"room": {"lounge@conference.localhost"}}, wantErr: "room lounge@conference.localhost does not exist"},
			{path: "room destroy", raw: raw{"room": {"lounge@conference.example.com"}}, wantErr: `"conference.example.com" is not a multi-user chat service`},
			{path: "room list", wantText: teamLine + "\taffiliations=0\n"},
		}
		for _, s := range steps {
			res, err := run(t, env, s.path, s.raw)
			switch {
			case s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr) || strings.Contains(err.Error(), "\n")):
				t.Errorf("%s %v: error %v, want one line with %q", s.path, s.raw, err, s.wantErr)
			case s.wantErr == "" && err != nil:
				t.Errorf("%s %v: %v", s.path, s.raw, err)
			case res.Text != s.wantText:
				t.Errorf("%s %v: text\n%q\nwant\n%q", s.path, s.raw, res.Text, s.wantText)
			}
		}
		team, err := db.Rooms().Room(ctx, jid.MustParse("team@conference.example.org"))
		if err != nil {
			t.Fatal(err)
		}
		want := testRoomConfig
		want.Persistent, want.MembersOnly = true, true
		if !reflect.DeepEqual(team.Config, want) || team.Creator != "" || string(team.Secret) != "0123456789abcdef0123456789abcdef" || team.Created.IsZero() {
			t.Errorf("stored room %+v: want the service's new room, persistent and members-only, with no creator", team)
		}
		if _, err := db.Rooms().Room(ctx, lounge); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("destroyed room: %v, want not found", err)
		}
		if affs, err := db.Rooms().Affiliations(ctx, lounge); err != nil || len(affs) != 0 {
			t.Errorf("affiliations of the destroyed room: %v, %v", affs, err)
		}
		stats, err := db.Archives().Stats(ctx, jid.JID{})
		if err != nil || len(stats) != 1 || stats[0].Owner.String() != "team@conference.example.org" {
			t.Errorf("archives after destroy: %+v, %v; want the team's only", stats, err)
		}
	})
}

// TestRoomAffiliationKeepsNick: changing an affiliation keeps the nick
// its holder registered with the room (muc#register), as the room's own
// admin requests do; removing it removes the registration too.
func TestRoomAffiliationKeepsNick(t *testing.T) {
	db := storetest.Open(t, storetest.Backend{Name: "sqlite"})
	ctx := context.Background()
	env := roomEnv(db, "conference.localhost")
	room := jid.MustParse("club@conference.localhost")
	if _, err := run(t, env, "room create", map[string][]string{"room": {room.String()}}); err != nil {
		t.Fatal(err)
	}
	bob := jid.MustParse("bob@localhost")
	if err := db.Rooms().SetAffiliations(ctx, room, []storage.RoomAffiliation{{JID: bob, Affiliation: "member", Nick: "Bobby"}}); err != nil {
		t.Fatal(err)
	}
	res, err := run(t, env, "room affiliation", map[string][]string{"room": {room.String()}, "jid": {"bob@localhost"}, "affiliation": {"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	want := storage.RoomAffiliation{JID: bob, Affiliation: "admin", Nick: "Bobby"}
	if got, ok := res.Value.(storage.RoomAffiliation); !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("value %#v, want %#v", res.Value, want)
	}
	if affs, err := db.Rooms().Affiliations(ctx, room); err != nil || len(affs) != 1 || !reflect.DeepEqual(affs[0], want) {
		t.Errorf("stored %+v, %v; want %+v", affs, err, want)
	}
	if _, err := run(t, env, "room affiliation", map[string][]string{"room": {room.String()}, "jid": {"bob@localhost"}, "affiliation": {"none"}}); err != nil {
		t.Fatal(err)
	}
	if affs, err := db.Rooms().Affiliations(ctx, room); err != nil || len(affs) != 0 {
		t.Errorf("after none: %+v, %v", affs, err)
	}
	list, err := run(t, env, "room list", nil)
	if got, ok := list.Value.([]admin.RoomListing); err != nil || !ok || len(got) != 1 || !got[0].Room.JID.Equal(room) || !got[0].Room.Config.Persistent {
		t.Errorf("room list value %#v, %v", list.Value, err)
	}
}

// TestRoomCommandsWithoutService: with the muc module off there is no
// service, and every room command says so rather than acting on the
// database.
func TestRoomCommandsWithoutService(t *testing.T) {
	db := storetest.Open(t, storetest.Backend{Name: "sqlite"})
	env := roomEnv(db)
	room := map[string][]string{"room": {"lounge@conference.localhost"}}
	for _, tt := range []struct {
		path string
		raw  map[string][]string
	}{
		{"room list", nil},
		{"room list", map[string][]string{"service": {"conference.localhost"}}},
		{"room create", room},
		{"room destroy", room},
		{"room affiliation", map[string][]string{"room": room["room"], "jid": {"alice@localhost"}, "affiliation": {"owner"}}},
	} {
		_, err := run(t, env, tt.path, tt.raw)
		if err == nil || !strings.Contains(err.Error(), "the muc module is not enabled") {
			t.Errorf("%s %v: error %v, want the muc module named", tt.path, tt.raw, err)
		}
	}
}
