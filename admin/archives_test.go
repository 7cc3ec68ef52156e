package admin_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
)

// TestParseTime checks the dates and times that a Time argument (archive
// purge --before) takes, and that a bad one is named in the error.
func TestParseTime(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "2024-05-01", want: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2024-05-01T12:30:00Z", want: time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)},
		{in: "2024-05-01T12:30:00+02:00", want: time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC)},
		{in: "2024-05-01T12:30:00.123456Z", want: time.Date(2024, 5, 1, 12, 30, 0, 123456000, time.UTC)},
		{in: "2024-13-01", wantErr: true},
		{in: "2024-05-01T12:30:00", wantErr: true}, // XEP-0082 DateTime needs its zone
		{in: "2024-05-01 12:30:00Z", wantErr: true},
		{in: "yesterday", wantErr: true},
		{in: "0001-01-01", wantErr: true}, // the zero time would mean "not given": the whole archive
		{in: "1969-12-31T23:59:59Z", wantErr: true},
		{in: "1970-01-01", want: time.Unix(0, 0).UTC()},
	}
	purge, _ := admin.Lookup("archive purge")
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			in, err := purge.Parse(&admin.Env{}, map[string][]string{"jid": {"alice@localhost"}, "before": {tt.in}})
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), `invalid before "`+tt.in+`"`) {
					t.Errorf("error %v, want one naming before %q", err, tt.in)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := in.Time("before"); !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("Time(before) = %v, want %v", got, tt.want)
			}
		})
	}
}

// archiveFixture makes alice and bob, and archives messages for them:
// alice's at 10:00, 11:00 and 12:00 of 2024-05-01 and 12:00 of 2024-05-02
// (a1…a4), bob's one at 12:00 of 2024-05-01 (b1). Carol has an account
// and no archive.
func archiveFixture(t *testing.T, db storage.Store) {
	t.Helper()
	ctx := context.Background()
	for _, local := range []string{"alice", "bob", "carol"} {
		if err := db.Users().Create(ctx, storage.User{Local: local, Domain: "localhost", Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	msg := func(owner, id string, at time.Time) storage.ArchiveEntry {
		return storage.ArchiveEntry{Owner: jid.MustParse(owner), ArchivedMessage: storage.ArchivedMessage{
			ID: id, Stamp: at, With: jid.MustParse("zoe@example.com/x"),
			// 60 bytes each, so that the byte counts are easy to check.
			Stanza: []byte(fmt.Sprintf("<message xmlns='jabber:client'><body>%s</body>%4s</message>", id, "")),
			Text:   id,
		}}
	}
	entries := []storage.ArchiveEntry{
		msg("alice@localhost", "a1", day.Add(10*time.Hour)),
		msg("alice@localhost", "a2", day.Add(11*time.Hour)),
		msg("alice@localhost", "a3", day.Add(12*time.Hour)),
		msg("alice@localhost", "a4", day.Add(36*time.Hour)),
		msg("bob@localhost", "b1", day.Add(12*time.Hour)),
	}
	for _, e := range entries {
		if len(e.Stanza) != 60 {
			t.Fatalf("fixture stanza is %d bytes, want 60", len(e.Stanza))
		}
	}
	if err := db.Archives().Append(ctx, entries); err != nil {
		t.Fatal(err)
	}
}

// TestArchiveCommands runs archive stats and archive purge as a front end
// would, on each backend: what they print, what they delete, and the
// errors that name the problem.
func TestArchiveCommands(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		archiveFixture(t, db)
		env := &admin.Env{OpenStore: func(context.Context, config.Storage) (storage.Store, error) { return keepOpen{db}, nil }}
		const (
			aliceAll = "alice@localhost\tmessages=4\tbytes=240\tfirst=a1 2024-05-01T10:00:00Z\tlast=a4 2024-05-02T12:00:00Z\n"
			bobAll   = "bob@localhost\tmessages=1\tbytes=60\tfirst=b1 2024-05-01T12:00:00Z\tlast=b1 2024-05-01T12:00:00Z\n"
		)
		steps := []struct {
			path     string
			raw      map[string][]string
			wantText string
			wantErr  string
		}{
			{path: "archive stats", wantText: aliceAll + bobAll},
			{path: "archive stats", raw: map[string][]string{"jid": {"Alice@LocalHost"}}, wantText: aliceAll},
			{path: "archive stats", raw: map[string][]string{"jid": {"carol@localhost"}}, wantText: "carol@localhost\tmessages=0\tbytes=0\n"},
			{path: "archive stats", raw: map[string][]string{"jid": {"zoe@localhost"}}, wantErr: "user zoe@localhost does not exist"},
			{path: "archive stats", raw: map[string][]string{"jid": {"alice@example.com"}}, wantErr: `domain "example.com" is not served`},
			{path: "archive stats", raw: map[string][]string{"jid": {"not a jid@@"}}, wantErr: `invalid JID "not a jid@@"`},
			{path: "archive purge", raw: map[string][]string{"jid": {"zoe@localhost"}, "before": {"2024-05-01"}}, wantErr: "user zoe@localhost does not exist"},
			{path: "archive purge", raw: map[string][]string{"jid": {"alice@localhost"}, "before": {"May 1st"}}, wantErr: `invalid before "May 1st"`},
			{path: "archive purge", raw: map[string][]string{"jid": {"alice@localhost"}}, wantErr: "deletes every message of alice@localhost: add --yes"},
			{path: "archive purge", raw: map[string][]string{"jid": {"alice@localhost"}, "yes": {"false"}}, wantErr: "add --yes"},
			{
				path: "archive purge", raw: map[string][]string{"jid": {"alice@localhost"}, "before": {"2024-05-01"}},
				wantText: "deleted 0 message(s) archived before 2024-05-01T00:00:00Z from the archive of alice@localhost\n",
			},
			{
				// Exclusive: a3, archived at 12:00:00, stays.
				path: "archive purge", raw: map[string][]string{"jid": {"alice@localhost"}, "before": {"2024-05-01T14:00:00+02:00"}},
				wantText: "deleted 2 message(s) archived before 2024-05-01T12:00:00Z from the archive of alice@localhost\n",
			},
			{path: "archive stats", raw: map[string][]string{"jid": {"alice@localhost"}},
				wantText: "alice@localhost\tmessages=2\tbytes=120\tfirst=a3 2024-05-01T12:00:00Z\tlast=a4 2024-05-02T12:00:00Z\n"},
			{path: "archive stats", raw: map[string][]string{"jid": {"bob@localhost"}}, wantText: bobAll},
			{path: "archive purge", raw: map[string][]string{"jid": {"alice@localhost"}, "yes": {"true"}},
				wantText: "deleted 2 message(s), the whole archive of alice@localhost\n"},
			{path: "archive stats", wantText: bobAll},
		}
		for _, s := range steps {
			c, ok := admin.Lookup(s.path)
			if !ok {
				t.Fatalf("no command %q", s.path)
			}
			in, err := c.Parse(env, s.raw)
			var res admin.Result
			if err == nil {
				res, err = c.Exec(context.Background(), env, in)
			}
			switch {
			case s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr) || strings.Contains(err.Error(), "\n")):
				t.Errorf("%s %v: error %v, want one line with %q", s.path, s.raw, err, s.wantErr)
			case s.wantErr == "" && err != nil:
				t.Errorf("%s %v: %v", s.path, s.raw, err)
			case res.Text != s.wantText:
				t.Errorf("%s %v: text\n%q\nwant\n%q", s.path, s.raw, res.Text, s.wantText)
			}
		}
		// The values for front ends that render them themselves.
		stats, _ := admin.Lookup("archive stats")
		in, _ := stats.Parse(env, map[string][]string{"jid": {"bob@localhost"}})
		res, err := stats.Exec(context.Background(), env, in)
		if got, ok := res.Value.([]storage.ArchiveStats); err != nil || !ok || len(got) != 1 || got[0].Messages != 1 || got[0].LastID != "b1" {
			t.Errorf("archive stats value %#v, %v", res.Value, err)
		}
		purge, _ := admin.Lookup("archive purge")
		in, _ = purge.Parse(env, map[string][]string{"jid": {"bob@localhost"}, "yes": {"true"}})
		res, err = purge.Exec(context.Background(), env, in)
		if got, ok := res.Value.(int64); err != nil || !ok || got != 1 {
			t.Errorf("archive purge value %#v, %v; want int64 1", res.Value, err)
		}
	})
}
