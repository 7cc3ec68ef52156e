package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
)

// withStore opens the database of st, runs fn on it and closes it, as a
// server would have used it between two commands.
func withStore(t *testing.T, st config.Storage, fn func(db storage.Store)) {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	fn(db)
}

// TestArchiveCLI runs `xmppd archive stats` and `xmppd archive purge` as
// an operator would, and checks that `xmppd user del` takes the account's
// archive and archiving preferences with it and leaves others' alone.
func TestArchiveCLI(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		t.Parallel()
		st := b.Config(t)
		cfg := writeConfig(t, st)
		c := func(args ...string) []string { return append([]string{"-c", cfg}, args...) }
		for _, u := range []string{"alice@localhost", "bob@example.org"} {
			xmppd(t, "", "pw\n", c("user", "add", u, "--password-stdin")...).check(t, "created "+u+"\n", "")
		}
		alice, bob := jid.MustParse("alice@localhost"), jid.MustParse("bob@example.org")
		day := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
		withStore(t, st, func(db storage.Store) {
			ctx := context.Background()
			var entries []storage.ArchiveEntry
			for i, at := range []time.Duration{9 * time.Hour, 10 * time.Hour, 34 * time.Hour} {
				stanza := "<message xmlns='jabber:client'><body>hi</body></message>" // 56 bytes
				entries = append(entries,
					storage.ArchiveEntry{Owner: alice, ArchivedMessage: storage.ArchivedMessage{
						ID: "a" + string(rune('1'+i)), Stamp: day.Add(at), With: bob, Stanza: []byte(stanza), Text: "hi"}},
					storage.ArchiveEntry{Owner: bob, ArchivedMessage: storage.ArchivedMessage{
						ID: "b" + string(rune('1'+i)), Stamp: day.Add(at), With: alice, Stanza: []byte(stanza), Text: "hi"}})
			}
			if err := db.Archives().Append(ctx, entries); err != nil {
				t.Fatal(err)
			}
			for _, o := range []jid.JID{alice, bob} {
				if err := db.Archives().SetPrefs(ctx, o, storage.ArchivePrefs{Default: storage.ArchiveRoster, Never: []jid.JID{jid.MustParse("spam@example.com")}}); err != nil {
					t.Fatal(err)
				}
			}
		})
		const bobStats = "bob@example.org\tmessages=3\tbytes=168\tfirst=b1 2024-05-01T09:00:00Z\tlast=b3 2024-05-02T10:00:00Z\n"
		steps := []struct {
			name             string
			args             []string
			wantOut, wantErr string
		}{
			{name: "stats of all", args: c("archive", "stats"),
				wantOut: bobStats + "alice@localhost\tmessages=3\tbytes=168\tfirst=a1 2024-05-01T09:00:00Z\tlast=a3 2024-05-02T10:00:00Z\n"},
			{name: "stats of one", args: c("archive", "stats", "Bob@Example.org"), wantOut: bobStats},
			{name: "stats of two", args: c("archive", "stats", "alice@localhost", "bob@example.org"), wantErr: "accepts at most 1 arg(s)"},
			{name: "stats of a missing account", args: c("archive", "stats", "carol@localhost"), wantErr: "user carol@localhost does not exist"},
			{name: "stats of a bad JID", args: c("archive", "stats", "@@"), wantErr: `invalid JID "@@"`},
			{name: "purge without --before or --yes", args: c("archive", "purge", "alice@localhost"), wantErr: "add --yes"},
			{name: "purge with a bad date", args: c("archive", "purge", "alice@localhost", "--before", "2024-05-32"), wantErr: `invalid before "2024-05-32"`},
			{name: "purge of a missing account", args: c("archive", "purge", "carol@localhost", "--before", "2024-05-02"), wantErr: "user carol@localhost does not exist"},
			{name: "purge on an unserved domain", args: c("archive", "purge", "carol@example.com", "--yes"), wantErr: `domain "example.com" is not served`},
			{name: "purge without JID", args: c("archive", "purge", "--yes"), wantErr: "accepts 1 arg(s)"},
			{name: "purge before a date", args: c("archive", "purge", "alice@localhost", "--before", "2024-05-02"),
				wantOut: "deleted 2 message(s) archived before 2024-05-02T00:00:00Z from the archive of alice@localhost\n"},
			{name: "stats after purge", args: c("archive", "stats", "alice@localhost"),
				wantOut: "alice@localhost\tmessages=1\tbytes=56\tfirst=a3 2024-05-02T10:00:00Z\tlast=a3 2024-05-02T10:00:00Z\n"},
			{name: "the other archive is untouched", args: c("archive", "stats", "bob@example.org"), wantOut: bobStats},
			{name: "purge before a time", args: c("archive", "purge", "bob@example.org", "--before", "2024-05-01T10:00:00.000001Z"),
				wantOut: "deleted 2 message(s) archived before 2024-05-01T10:00:00.000001Z from the archive of bob@example.org\n"},
			{name: "purge everything", args: c("archive", "purge", "alice@localhost", "--yes"),
				wantOut: "deleted 1 message(s), the whole archive of alice@localhost\n"},
			{name: "stats of an emptied archive", args: c("archive", "stats", "alice@localhost"), wantOut: "alice@localhost\tmessages=0\tbytes=0\n"},
			{name: "delete an account", args: c("user", "del", "bob@example.org"), wantOut: "deleted bob@example.org\n"},
			{name: "its archive went with it", args: c("archive", "stats", "bob@example.org"), wantErr: "user bob@example.org does not exist"},
		}
		for _, s := range steps {
			t.Run(s.name, func(t *testing.T) {
				xmppd(t, "", "", s.args...).check(t, s.wantOut, s.wantErr)
			})
		}
		withStore(t, st, func(db storage.Store) {
			ctx := context.Background()
			if stats, err := db.Archives().Stats(ctx, jid.JID{}); err != nil || len(stats) > 1 || len(stats) == 1 && stats[0].Owner.String() != "alice@localhost" {
				t.Errorf("archives after user del: %+v, %v; want none of bob's", stats, err)
			}
			if _, err := db.Archives().Prefs(ctx, bob); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("bob's preferences after user del: %v, want not found", err)
			}
			if p, err := db.Archives().Prefs(ctx, alice); err != nil || p.Default != storage.ArchiveRoster {
				t.Errorf("alice's preferences: %+v, %v; want them kept", p, err)
			}
			// A new account of the same name starts with nothing.
			if err := db.Users().Create(ctx, storage.User{Local: "bob", Domain: "example.org", Created: time.Now()}); err != nil {
				t.Fatal(err)
			}
			page, err := db.Archives().Query(ctx, bob, storage.ArchiveQuery{Max: 10})
			if err != nil || len(page.Messages) != 0 || page.Count != 0 {
				t.Errorf("archive of the new bob: %+v, %v; want empty", page, err)
			}
			if _, err := db.Archives().Prefs(ctx, bob); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("preferences of the new bob: %v, want not found", err)
			}
		})
	})
}
