package sqlstore_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
)

// TestRooms checks the persistent rooms of XEP-0045 on both backends: a
// room and its configuration round trip and are replaced, rooms listed by
// service, affiliations set, changed and removed in one call, a reopened
// database, and deletion with the affiliations.
func TestRooms(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		cfg := b.Config(t)
		db, err := sqlstore.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		st := db.Rooms()
		t0 := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
		coven := storage.Room{
			JID: jid.MustParse("coven@conference.example.org"),
			Config: storage.RoomConfig{Name: "A Dark Cave", Description: "witches", Persistent: true, Public: true,
				MembersOnly: true, PasswordProtected: true, Password: "cauldron", Whois: "anyone", MaxUsers: 30,
				HistoryLength: 20, Archive: true, AllowPM: "participants", Language: "en"},
			Subject: "Spells", SubjectBy: "firstwitch", SubjectAt: t0, Secret: []byte{1, 2, 3}, Creator: "alice@example.org", Created: t0,
		}
		other := storage.Room{JID: jid.MustParse("lobby@conference.example.net"), Config: storage.RoomConfig{Persistent: true}, Created: t0}
		if _, err := st.Room(ctx, coven.JID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("absent room: %v, want ErrNotFound", err)
		}
		if err := st.SetAffiliations(ctx, coven.JID, []storage.RoomAffiliation{{JID: jid.MustParse("a@example.org"), Affiliation: "owner"}}); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("affiliations of an absent room: %v, want ErrNotFound", err)
		}
		for _, r := range []storage.Room{coven, other} {
			if err := st.PutRoom(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.Room(ctx, coven.JID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Config, coven.Config) || got.Subject != "Spells" || got.SubjectBy != "firstwitch" ||
			!got.SubjectAt.Equal(t0) || !got.Created.Equal(t0) || string(got.Secret) != "\x01\x02\x03" || got.Creator != "alice@example.org" {
			t.Errorf("Room = %+v, want %+v", got, coven)
		}
		coven.Config.Name, coven.Subject = "Renamed", ""
		if err := st.PutRoom(ctx, coven); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.Room(ctx, coven.JID); got.Config.Name != "Renamed" || got.Subject != "" {
			t.Errorf("replaced room = %+v", got)
		}
		for _, c := range []struct {
			service string
			want    []string
		}{
			{"", []string{"lobby@conference.example.net", "coven@conference.example.org"}},
			{"conference.example.org", []string{"coven@conference.example.org"}},
			{"conference.example.com", nil},
		} {
			list, err := st.ListRooms(ctx, c.service)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, r := range list {
				names = append(names, r.JID.String())
			}
			if !reflect.DeepEqual(names, c.want) {
				t.Errorf("ListRooms(%q) = %v, want %v", c.service, names, c.want)
			}
		}

		alice, bob, carol := jid.MustParse("alice@example.org"), jid.MustParse("bob@example.org"), jid.MustParse("carol@example.net")
		if err := st.SetAffiliations(ctx, coven.JID, []storage.RoomAffiliation{
			{JID: alice, Affiliation: "owner"}, {JID: bob, Affiliation: "member", Nick: "bobby"}, {JID: carol, Affiliation: "outcast", Reason: "spam"},
		}); err != nil {
			t.Fatal(err)
		}
		if err := st.SetAffiliations(ctx, coven.JID, []storage.RoomAffiliation{
			{JID: bob, Affiliation: "admin", Nick: "bobby"}, {JID: carol, Affiliation: "none"},
		}); err != nil {
			t.Fatal(err)
		}
		// Reopen: what was written is on disk.
		db.Close()
		db, err = sqlstore.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		st = db.Rooms()
		affs, err := st.Affiliations(ctx, coven.JID)
		if err != nil {
			t.Fatal(err)
		}
		want := []storage.RoomAffiliation{{JID: alice, Affiliation: "owner"}, {JID: bob, Affiliation: "admin", Nick: "bobby"}}
		if len(affs) != len(want) {
			t.Fatalf("Affiliations = %+v, want %+v", affs, want)
		}
		for i := range want {
			if !affs[i].JID.Equal(want[i].JID) || affs[i].Affiliation != want[i].Affiliation || affs[i].Nick != want[i].Nick {
				t.Errorf("affiliation %d = %+v, want %+v", i, affs[i], want[i])
			}
		}
		if err := st.DeleteRoom(ctx, coven.JID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Room(ctx, coven.JID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("deleted room: %v", err)
		}
		if affs, err := st.Affiliations(ctx, coven.JID); err != nil || len(affs) != 0 {
			t.Errorf("affiliations of a deleted room: %v, %v", affs, err)
		}
		if err := st.DeleteRoom(ctx, coven.JID); err != nil {
			t.Errorf("deleting again: %v", err)
		}
	})
}
