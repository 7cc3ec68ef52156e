package sqlstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
)

// TestUploads checks the upload slots and files of XEP-0363 on both
// backends: the usage Reserve hands its check and a refused check, a
// duplicate ID, one claim at a time, release and completion, expiry, a
// reopened database, and deletion with the account.
func TestUploads(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		cfg := b.Config(t)
		db, err := sqlstore.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		owners := newAccounts(t, db, "alice@example.org", "bob@example.org")
		alice, bob := owners[0], owners[1]
		up := db.Uploads()
		t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		slot := func(id string, owner jid.JID, size int64, at time.Time) storage.Upload {
			return storage.Upload{ID: id, Owner: owner, Name: "très cool.jpg", Size: size, ContentType: "image/jpeg", Created: at}
		}
		var seen storage.UploadUsage
		record := func(u storage.UploadUsage) error { seen = u; return nil }
		errFull := errors.New("full")

		if err := up.Reserve(ctx, slot("a1", alice, 10, t0), t0, record); err != nil {
			t.Fatal(err)
		}
		if err := up.Reserve(ctx, slot("a2", alice, 20, t0.Add(time.Hour)), t0, record); err != nil {
			t.Fatal(err)
		}
		if want := (storage.UploadUsage{Files: 1, Bytes: 10, Oldest: t0, RecentFiles: 1, RecentBytes: 10, RecentOldest: t0}); seen != want {
			t.Errorf("usage before the second = %+v, want %+v", seen, want)
		}
		if err := up.Reserve(ctx, slot("a3", alice, 5, t0.Add(2*time.Hour)), t0.Add(30*time.Minute), record); err != nil {
			t.Fatal(err)
		}
		if want := (storage.UploadUsage{Files: 2, Bytes: 30, Oldest: t0, RecentFiles: 1, RecentBytes: 20, RecentOldest: t0.Add(time.Hour)}); seen != want {
			t.Errorf("usage since 30 min = %+v, want %+v", seen, want)
		}
		if err := up.Reserve(ctx, slot("b1", bob, 1, t0), t0, record); err != nil {
			t.Fatal(err)
		}
		if want := (storage.UploadUsage{}); seen != want {
			t.Errorf("bob's usage = %+v, want none (alice's are hers)", seen)
		}
		if err := up.Reserve(ctx, slot("a4", alice, 1, t0), t0, func(storage.UploadUsage) error { return errFull }); !errors.Is(err, errFull) {
			t.Errorf("refused check: %v, want it", err)
		}
		if _, err := up.Get(ctx, "a4"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("refused slot stored: %v", err)
		}
		if err := up.Reserve(ctx, slot("a1", bob, 1, t0), t0, record); !errors.Is(err, storage.ErrExists) {
			t.Errorf("duplicate id: %v, want ErrExists", err)
		}
		if err := up.Reserve(ctx, slot("x1", jid.MustParse("nobody@example.org"), 1, t0), t0, record); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("no account: %v, want ErrNotFound", err)
		}

		got, err := up.Get(ctx, "a1")
		if err != nil {
			t.Fatal(err)
		}
		if want := slot("a1", alice, 10, t0); got.ID != want.ID || !got.Owner.Equal(want.Owner) || got.Name != want.Name ||
			got.Size != want.Size || got.ContentType != want.ContentType || !got.Created.Equal(want.Created) || !got.Uploaded.IsZero() {
			t.Errorf("Get = %+v, want %+v", got, want)
		}
		if _, err := up.Get(ctx, "zz"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get absent: %v", err)
		}

		// One PUT at a time, once.
		steps := []struct {
			name string
			do   func() error
			want error
		}{
			{"claim", func() error { return up.Claim(ctx, "a1") }, nil},
			{"claim again", func() error { return up.Claim(ctx, "a1") }, storage.ErrExists},
			{"release", func() error { return up.Release(ctx, "a1") }, nil},
			{"claim after release", func() error { return up.Claim(ctx, "a1") }, nil},
			{"complete", func() error { return up.Complete(ctx, "a1", t0.Add(time.Minute)) }, nil},
			{"complete again", func() error { return up.Complete(ctx, "a1", t0.Add(time.Minute)) }, storage.ErrNotFound},
			{"claim uploaded", func() error { return up.Claim(ctx, "a1") }, storage.ErrExists},
			{"release uploaded", func() error { return up.Release(ctx, "a1") }, nil},
			{"claim absent", func() error { return up.Claim(ctx, "zz") }, storage.ErrNotFound},
			{"complete unclaimed", func() error { return up.Complete(ctx, "a2", t0) }, storage.ErrNotFound},
		}
		for _, s := range steps {
			if err := s.do(); !errors.Is(err, s.want) || (s.want == nil && err != nil) {
				t.Errorf("%s: %v, want %v", s.name, err, s.want)
			}
		}
		got, err = up.Get(ctx, "a1")
		if err != nil || !got.Uploaded.Equal(t0.Add(time.Minute)) {
			t.Errorf("uploaded a1 = %+v, %v", got, err)
		}

		ids := func(list []storage.Upload, err error) []string {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, u := range list {
				out = append(out, u.ID)
			}
			return out
		}
		for _, c := range []struct {
			name              string
			uploaded, pending time.Time
			want              []string
		}{
			{"nothing yet", t0, t0, nil},
			{"pending only", time.Time{}, t0.Add(90 * time.Minute), []string{"b1", "a2"}},
			{"uploaded only", t0.Add(2 * time.Minute), t0, []string{"a1"}},
			{"both", t0.Add(2 * time.Minute), t0.Add(3 * time.Hour), []string{"a1", "b1", "a2", "a3"}},
		} {
			if got := ids(up.Expired(ctx, c.uploaded, c.pending, 10)); !slices.Equal(got, c.want) {
				t.Errorf("Expired %s = %q, want %q", c.name, got, c.want)
			}
		}
		if got := ids(up.Expired(ctx, t0.Add(2*time.Minute), t0.Add(3*time.Hour), 2)); !slices.Equal(got, []string{"a1", "b1"}) {
			t.Errorf("Expired with limit 2 = %q", got)
		}
		if err := up.Delete(ctx, "a3"); err != nil {
			t.Fatal(err)
		}
		if err := up.Delete(ctx, "a3"); err != nil {
			t.Errorf("delete absent: %v", err)
		}

		db.Close()
		db, err = sqlstore.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		up = db.Uploads()
		if got, err := up.Get(ctx, "a1"); err != nil || got.Uploaded.IsZero() {
			t.Errorf("after reopening: %+v, %v", got, err)
		}
		if err := db.Users().Delete(ctx, "example.org", "alice"); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"a1", "a2"} {
			if _, err := up.Get(ctx, id); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s after deleting alice: %v", id, err)
			}
		}
		if _, err := up.Get(ctx, "b1"); err != nil {
			t.Errorf("bob's after deleting alice: %v", err)
		}
	})
}
