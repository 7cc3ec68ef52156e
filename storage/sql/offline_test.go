package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
)

func TestOffline(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		queue := db.Offline()
		ctx := context.Background()
		owners := newAccounts(t, db, "alice@example.org", "bob@example.org")
		alice, bob := owners[0], owners[1]
		before := time.Now().Truncate(time.Microsecond)
		var stanzas [][]byte
		for i := range 4 {
			stanza := fmt.Appendf(nil, `<message to="alice@example.org"><body>%d</body></message>`, i)
			if err := queue.Push(ctx, alice, stanza, 0); err != nil {
				t.Fatal(err)
			}
			stanzas = append(stanzas, stanza)
		}
		if err := queue.Push(ctx, bob, []byte("<message>bob</message>"), 0); err != nil {
			t.Fatal(err)
		}
		list, err := queue.List(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		checkMessages(t, list, stanzas)
		for i, m := range list {
			if i > 0 && m.ID <= list[i-1].ID {
				t.Errorf("IDs %d then %d: want increasing", list[i-1].ID, m.ID)
			}
			if m.Stored.Before(before) || m.Stored.After(time.Now()) || m.Stored.Location() != time.UTC {
				t.Errorf("message %d stored at %v, want the time of Push (after %v) in UTC", m.ID, m.Stored, before)
			}
		}
		bobs, err := queue.List(ctx, bob)
		if err != nil || len(bobs) != 1 {
			t.Fatalf("List of bob = %v, %v; want one message", bobs, err)
		}

		// Deleting: unknown IDs and Bob's are ignored, and so many IDs that
		// they take several statements.
		ids := []int64{list[0].ID, bobs[0].ID, list[2].ID}
		for id := range int64(1200) {
			ids = append(ids, list[3].ID+1000+id)
		}
		if err := queue.Delete(ctx, alice, ids); err != nil {
			t.Fatal(err)
		}
		got, err := queue.List(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		checkMessages(t, got, [][]byte{stanzas[1], stanzas[3]})
		if n, err := queue.Count(ctx, alice); err != nil || n != 2 {
			t.Errorf("Count = %d, %v; want 2", n, err)
		}
		if n, err := queue.Count(ctx, bob); err != nil || n != 1 {
			t.Errorf("Count of bob = %d, %v; want 1 (Delete for alice took his)", n, err)
		}
		if err := queue.Delete(ctx, alice, nil); err != nil {
			t.Errorf("Delete of no IDs: %v", err)
		}

		// Deleting the newest message does not free its ID.
		if err := queue.Delete(ctx, alice, []int64{list[3].ID}); err != nil {
			t.Fatal(err)
		}
		if err := queue.Push(ctx, alice, []byte("<message>later</message>"), 0); err != nil {
			t.Fatal(err)
		}
		got, err = queue.List(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		checkMessages(t, got, [][]byte{stanzas[1], []byte("<message>later</message>")})
		if len(got) == 2 && got[1].ID <= list[3].ID {
			t.Errorf("ID %d after deleting ID %d: want a new, greater ID", got[1].ID, list[3].ID)
		}
	})
}

func TestOfflineLimit(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		queue := db.Offline()
		ctx := context.Background()
		alice := newAccounts(t, db, "alice@example.org")[0]
		steps := []struct {
			limit   int
			wantErr error
		}{
			{3, nil}, {3, nil}, {3, nil},
			{3, storage.ErrLimit},
			{4, nil},
			{4, storage.ErrLimit},
			{1, storage.ErrLimit},
			{0, nil},
			{-1, nil},
		}
		want := 0
		for i, step := range steps {
			err := queue.Push(ctx, alice, []byte("<message/>"), step.limit)
			if !errors.Is(err, step.wantErr) || (step.wantErr == nil && err != nil) {
				t.Errorf("push %d with limit %d: err = %v, want %v", i, step.limit, err, step.wantErr)
			}
			if err == nil {
				want++
			}
			if n, err := queue.Count(ctx, alice); err != nil || n != want {
				t.Errorf("after push %d: Count = %d, %v; want %d", i, n, err, want)
			}
		}
	})
}

// TestOfflineConcurrentLimit checks that the database, not a count before
// the insert, keeps a full queue full: concurrent pushes to a queue with
// room for a few store exactly that many.
func TestOfflineConcurrentLimit(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		queue := db.Offline()
		ctx := context.Background()
		alice := newAccounts(t, db, "alice@example.org")[0]
		const pushers, limit = 8, 5
		errs := make([]error, pushers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range pushers {
			wg.Go(func() {
				<-start
				errs[i] = queue.Push(ctx, alice, fmt.Appendf(nil, "<message>%d</message>", i), limit)
			})
		}
		close(start)
		wg.Wait()
		stored := 0
		for _, err := range errs {
			switch {
			case err == nil:
				stored++
			case !errors.Is(err, storage.ErrLimit):
				t.Errorf("Push: err = %v, want nil or ErrLimit", err)
			}
		}
		if stored != limit {
			t.Errorf("%d of %d concurrent pushes succeeded, want %d", stored, pushers, limit)
		}
		if n, err := queue.Count(ctx, alice); err != nil || n != limit {
			t.Errorf("Count = %d, %v; want %d", n, err, limit)
		}
	})
}

// checkMessages compares the stanzas of messages.
func checkMessages(t *testing.T, got []storage.OfflineMessage, want [][]byte) {
	t.Helper()
	var stanzas [][]byte
	for _, m := range got {
		stanzas = append(stanzas, m.Stanza)
	}
	if !slices.EqualFunc(stanzas, want, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Errorf("messages = %q, want %q", stanzas, want)
	}
}
