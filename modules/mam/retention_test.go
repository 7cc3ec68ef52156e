package mam

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
)

// retentionArchive fills two accounts' archives on a fresh store of b:
// old messages archived two hours before now, spread over both, and newer
// ones half an hour before now. It returns the archives and the IDs of the
// newer messages, which an expire_after of one hour keeps.
func retentionArchive(t *testing.T, b storetest.Backend, now time.Time, old, newer int) (storage.Archives, []string) {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t, b)
	owners := []jid.JID{jid.MustParse("alice@example.org"), jid.MustParse("bob@example.org")}
	for _, o := range owners {
		u := storage.User{Local: o.Localpart(), Domain: o.Domain().String(), Created: now}
		if err := db.Users().Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	var entries []storage.ArchiveEntry
	var kept []string
	add := func(i int, stamp time.Time) string {
		id := fmt.Sprintf("m%03d", i)
		owner := owners[i%len(owners)]
		entries = append(entries, storage.ArchiveEntry{Owner: owner, ArchivedMessage: storage.ArchivedMessage{
			ID:     id,
			Stamp:  stamp.UTC().Truncate(time.Microsecond),
			With:   jid.MustParse("carol@example.net/phone"),
			Stanza: []byte(fmt.Sprintf("<message xmlns='jabber:client' type='chat'><body>%d</body></message>", i)),
			Text:   fmt.Sprint(i),
		}})
		return id
	}
	for i := range old {
		add(i, now.Add(-2*time.Hour+time.Duration(i)*time.Second))
	}
	for i := old; i < old+newer; i++ {
		kept = append(kept, add(i, now.Add(-30*time.Minute+time.Duration(i)*time.Second)))
	}
	if err := db.Archives().Append(ctx, entries); err != nil {
		t.Fatal(err)
	}
	return db.Archives(), kept
}

// archivedIDs returns the IDs left in every archive, sorted.
func archivedIDs(t *testing.T, a storage.Archives) []string {
	t.Helper()
	ctx := context.Background()
	stats, err := a.Stats(ctx, jid.JID{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range stats {
		page, err := a.Query(ctx, s.Owner, storage.ArchiveQuery{Max: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			ids = append(ids, m.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

func TestRetentionPass(t *testing.T) {
	tests := []struct {
		name        string
		old, newer  int
		batch       int
		wantBatches int // calls of Expire: the last one deletes fewer than batch
	}{
		{"several batches, the last short", 10, 4, 3, 4},
		{"several full batches, then an empty one", 10, 4, 5, 3},
		{"one batch", 10, 4, 100, 1},
		{"nothing expired", 0, 4, 3, 1},
		{"everything expired", 7, 0, 2, 4},
	}
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				now := time.Now()
				a, kept := retentionArchive(t, b, now, tt.old, tt.newer)
				r := retentionJob{archives: a, log: slog.New(slog.DiscardHandler), opts: config.Archive{
					ExpireAfter: config.Period(time.Hour), ExpireBatch: tt.batch, ExpireEvery: time.Hour,
				}}
				deleted, batches, err := r.pass(context.Background(), now)
				if err != nil {
					t.Fatal(err)
				}
				if deleted != int64(tt.old) || batches != tt.wantBatches {
					t.Errorf("pass deleted %d in %d batches, want %d in %d", deleted, batches, tt.old, tt.wantBatches)
				}
				if got := archivedIDs(t, a); !slices.Equal(got, kept) {
					t.Errorf("left %v, want %v", got, kept)
				}
			})
		}
	})
}

// TestRetentionPassStopped checks that a pass stopped between batches
// ends with the context's error, having deleted only what it had.
func TestRetentionPassStopped(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		now := time.Now()
		a, _ := retentionArchive(t, b, now, 6, 2)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := retentionJob{archives: a, log: slog.New(slog.DiscardHandler), opts: config.Archive{
			ExpireAfter: config.Period(time.Hour), ExpireBatch: 2, ExpireEvery: time.Hour,
		}}
		deleted, _, err := r.pass(ctx, now)
		if err == nil {
			t.Fatalf("pass with a cancelled context deleted %d and succeeded", deleted)
		}
		if left := len(archivedIDs(t, a)); int64(left) != 8-deleted || deleted > 2 {
			t.Errorf("deleted %d, %d left of 8; want at most one batch of 2 deleted", deleted, left)
		}
	})
}

// recordHandler hands each log record to a channel, for a test to wait on
// what a goroutine logs.
type recordHandler chan slog.Record

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	h <- r.Clone()
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

// TestStartRetention checks that the job runs a pass at once, deleting
// only the expired messages in batches, and that stop ends it.
func TestStartRetention(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		a, kept := retentionArchive(t, b, time.Now(), 9, 3)
		records := make(recordHandler, 16)
		o := config.Archive{ExpireAfter: config.Period(time.Hour), ExpireBatch: 2, ExpireEvery: time.Hour}
		stop := startRetention(context.Background(), a, o, slog.New(records))
		r := <-records
		stop()
		stop() // a second stop is harmless
		attrs := map[string]string{}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		if r.Message != "mam: expired archived messages" || r.Level != slog.LevelInfo ||
			attrs["deleted"] != "9" || attrs["batches"] != "5" || attrs["expire_after"] != "1h0m0s" {
			t.Errorf("logged %s %q %v; want info, 9 deleted in 5 batches", r.Level, r.Message, attrs)
		}
		if got := archivedIDs(t, a); !slices.Equal(got, kept) {
			t.Errorf("left %v, want %v", got, kept)
		}
	})
}
