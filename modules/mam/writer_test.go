package mam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
)

// TestWriter: many writers at once each return only once their entries
// are committed, a batch holds at most the batch size, and a stopped
// writer commits what was queued and refuses what comes after.
func TestWriter(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		store := storetest.Open(t, b).Archives()
		w := newWriter(store, slog.New(slog.DiscardHandler), 16, 8, time.Now, time.Time{})
		owner := jid.MustParse("alice@localhost")
		const writers, each = 20, 10
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for g := range writers {
			wg.Go(func() {
				for i := range each {
					e := []storage.ArchiveEntry{{Owner: owner, ArchivedMessage: storage.ArchivedMessage{
						With:   jid.MustParse("bob@localhost"),
						Stanza: []byte(fmt.Sprintf(`<message id="w%d-%d"><body>x</body></message>`, g, i)), Text: "x",
					}}}
					if err := w.append(context.Background(), e); err != nil {
						errs <- err
						return
					}
					id := e[0].ID
					if st, ok := storage.ArchiveIDStamp(id); !ok || !st.Equal(e[0].Stamp) {
						errs <- fmt.Errorf("id %q does not carry the stamp %s", id, e[0].Stamp)
					}
					// Committed means readable now.
					p, err := store.Query(context.Background(), owner, storage.ArchiveQuery{IDs: []string{id}})
					if err != nil || p.Count != 1 {
						errs <- fmt.Errorf("%s not readable after append returned: %d, %v", id, p.Count, err)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		p, err := store.Query(context.Background(), owner, storage.ArchiveQuery{})
		if err != nil || p.Count != writers*each {
			t.Errorf("archive holds %d messages (%v), want %d", p.Count, err, writers*each)
		}
		w.stop()
		w.stop() // twice is harmless
		err = w.append(context.Background(), []storage.ArchiveEntry{{Owner: owner}})
		if !errors.Is(err, errStopped) {
			t.Errorf("append after stop: %v, want errStopped", err)
		}
	})
}

// failingArchives is a real archive store whose Append refuses every batch
// holding an entry whose text is "fail": the writer's handling of a failed
// commit cannot be tested otherwise, since no entry it makes is invalid.
type failingArchives struct{ storage.Archives }

func (f failingArchives) Append(ctx context.Context, entries []storage.ArchiveEntry) error {
	for _, e := range entries {
		if e.Text == "fail" {
			return errors.New("refused")
		}
	}
	return f.Archives.Append(ctx, entries)
}

// TestWriterFailures: a batch the store refuses fails every write in it
// and no other; each write's result says whether it is in the archive; and
// the writer goes on after a failure.
func TestWriterFailures(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		store := storetest.Open(t, b).Archives()
		w := newWriter(failingArchives{store}, slog.New(slog.DiscardHandler), 64, 64, time.Now, time.Time{})
		defer w.stop()
		owner := jid.MustParse("alice@localhost")
		entry := func(text string) []storage.ArchiveEntry {
			return []storage.ArchiveEntry{{Owner: owner, ArchivedMessage: storage.ArchivedMessage{
				With: jid.MustParse("bob@localhost"), Stanza: []byte(`<message/>`), Text: text,
			}}}
		}
		if err := w.append(context.Background(), entry("first")); err != nil {
			t.Fatal(err)
		}
		// Writes gathered while one commits: some the store refuses.
		var wg sync.WaitGroup
		results := make([]error, 30)
		written := make([][]storage.ArchiveEntry, len(results))
		for i := range results {
			wg.Go(func() {
				text := fmt.Sprintf("ok%d", i)
				if i%10 == 0 {
					text = "fail"
				}
				written[i] = entry(text)
				results[i] = w.append(context.Background(), written[i])
			})
		}
		wg.Wait()
		stored := 1 // "first"
		for i, err := range results {
			if i%10 == 0 && err == nil {
				t.Errorf("write %d, refused by the store, succeeded", i)
			}
			if err == nil {
				stored++
			}
			p, qerr := store.Query(context.Background(), owner, storage.ArchiveQuery{IDs: []string{written[i][0].ID}, Max: 1})
			if qerr != nil || (p.Count == 1) != (err == nil) {
				t.Errorf("write %d: result %v, but %d in the archive (%v)", i, err, p.Count, qerr)
			}
		}
		if err := w.append(context.Background(), entry("after")); err != nil {
			t.Errorf("a write after the failures: %v", err)
		}
		p, err := store.Query(context.Background(), owner, storage.ArchiveQuery{})
		if err != nil || p.Count != stored+1 {
			t.Errorf("archive holds %d messages (%v), want %d", p.Count, err, stored+1)
		}
	})
}

// TestWriterStamps: stamps rise strictly in the order writes are taken,
// though the clock stands still or steps back, and each id carries its
// entry's stamp; the entries of one write share their stamp.
func TestWriterStamps(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		store := storetest.Open(t, b).Archives()
		base := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
		clock := []time.Time{base, base, base.Add(-time.Hour), base.Add(time.Second), base.Add(time.Second)}
		var mu sync.Mutex
		now := func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			t := clock[0]
			if len(clock) > 1 {
				clock = clock[1:]
			}
			return t
		}
		w := newWriter(store, slog.New(slog.DiscardHandler), 8, 8, now, time.Time{})
		defer w.stop()
		alice, bob := jid.MustParse("alice@localhost"), jid.MustParse("bob@localhost")
		want := []time.Time{base, base.Add(time.Microsecond), base.Add(2 * time.Microsecond), base.Add(time.Second), base.Add(time.Second + time.Microsecond)}
		var ids []string
		for i, stamp := range want {
			e := []storage.ArchiveEntry{
				{Owner: alice, ArchivedMessage: storage.ArchivedMessage{With: bob, Stanza: []byte(`<message/>`)}},
				{Owner: bob, ArchivedMessage: storage.ArchivedMessage{With: alice, Stanza: []byte(`<message/>`)}},
			}
			if err := w.append(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			for _, x := range e {
				if !x.Stamp.Equal(stamp) {
					t.Errorf("write %d: stamp %s, want %s", i, x.Stamp, stamp)
				}
				if st, ok := storage.ArchiveIDStamp(x.ID); !ok || !st.Equal(stamp) {
					t.Errorf("write %d: id %s carries %s, %v", i, x.ID, st, ok)
				}
			}
			if e[0].ID == e[1].ID {
				t.Errorf("write %d: both archives got id %s", i, e[0].ID)
			}
			ids = append(ids, e[0].ID)
		}
		p, err := store.Query(context.Background(), alice, storage.ArchiveQuery{Max: 10})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range p.Messages {
			got = append(got, m.ID)
		}
		if !slices.Equal(got, ids) {
			t.Errorf("archive order %v, want the order of the writes %v", got, ids)
		}

		// A restart with the clock an hour behind: the next writer starts
		// after the latest stamp stored, and paging forwards from the last
		// message seen finds the new one.
		w.stop()
		last, err := store.LastStamp(context.Background())
		if err != nil || !last.Equal(want[len(want)-1]) {
			t.Fatalf("LastStamp = %s, %v; want %s", last, err, want[len(want)-1])
		}
		w2 := newWriter(store, slog.New(slog.DiscardHandler), 8, 8, func() time.Time { return base.Add(-time.Hour) }, last)
		defer w2.stop()
		e := []storage.ArchiveEntry{{Owner: alice, ArchivedMessage: storage.ArchivedMessage{With: bob, Stanza: []byte(`<message/>`)}}}
		if err := w2.append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		if !e[0].Stamp.After(last) {
			t.Errorf("after the restart: stamp %s, not after %s", e[0].Stamp, last)
		}
		p, err = store.Query(context.Background(), alice, storage.ArchiveQuery{After: ids[len(ids)-1], Max: 10})
		if err != nil || len(p.Messages) != 1 || p.Messages[0].ID != e[0].ID {
			t.Errorf("paging after the last message before the restart: %+v, %v; want %s", p.Messages, err, e[0].ID)
		}
	})
}
