package mam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
		w := newWriter(store, slog.New(slog.DiscardHandler), 16, 8)
		owner := jid.MustParse("alice@localhost")
		const writers, each = 20, 10
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for g := range writers {
			wg.Go(func() {
				for i := range each {
					id := fmt.Sprintf("w%d-%d", g, i)
					e := storage.ArchiveEntry{Owner: owner, ArchivedMessage: storage.ArchivedMessage{
						ID: id, Stamp: time.Now().UTC().Truncate(time.Microsecond), With: jid.MustParse("bob@localhost"),
						Stanza: []byte(`<message id="` + id + `"><body>x</body></message>`), Text: "x",
					}}
					if err := w.append(context.Background(), []storage.ArchiveEntry{e}); err != nil {
						errs <- err
						return
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

// TestWriterFailures: a batch the store refuses fails every write in it
// and no other; each write's result says whether it is in the archive; and
// the writer goes on after a failure.
func TestWriterFailures(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		store := storetest.Open(t, b).Archives()
		w := newWriter(store, slog.New(slog.DiscardHandler), 64, 64)
		defer w.stop()
		owner := jid.MustParse("alice@localhost")
		entry := func(id string) []storage.ArchiveEntry {
			return []storage.ArchiveEntry{{Owner: owner, ArchivedMessage: storage.ArchivedMessage{
				ID: id, Stamp: time.Now().UTC().Truncate(time.Microsecond), With: jid.MustParse("bob@localhost"),
				Stanza: []byte(`<message/>`),
			}}}
		}
		if err := w.append(context.Background(), entry("dup")); err != nil {
			t.Fatal(err)
		}
		// Writes gathered while one commits: some reuse the id "dup",
		// which the archive holds already.
		var wg sync.WaitGroup
		results := make([]error, 30)
		for i := range results {
			wg.Go(func() {
				id := fmt.Sprintf("ok%d", i)
				if i%10 == 0 {
					id = "dup"
				}
				results[i] = w.append(context.Background(), entry(id))
			})
		}
		wg.Wait()
		stored := 1 // "dup"
		for i, err := range results {
			if i%10 == 0 && err == nil {
				t.Errorf("write %d of a duplicate id succeeded", i)
			}
			if err == nil {
				stored++
			}
			p, qerr := store.Query(context.Background(), owner, storage.ArchiveQuery{IDs: []string{fmt.Sprintf("ok%d", i)}, Max: 1})
			if i%10 != 0 && (qerr != nil || (p.Count == 1) != (err == nil)) {
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
