package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
)

// archiveBase is the stamp of the first message of the test archives.
var archiveBase = time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)

// archived returns the message number i of a test archive, archived i
// minutes after archiveBase, with the id archiveID(i).
func archived(i int, with, text string) storage.ArchivedMessage {
	id := archiveID(i)
	body := ""
	if text != "" {
		body = "<body>" + text + "</body>"
	}
	return storage.ArchivedMessage{
		ID:     id,
		Stamp:  archiveBase.Add(time.Duration(i) * time.Minute),
		With:   jid.MustParse(with),
		Stanza: []byte(`<message id="` + id + `">` + body + `</message>`),
		Text:   text,
	}
}

// appendArchived appends msgs to owner's archive in one batch.
func appendArchived(t *testing.T, a storage.Archives, owner jid.JID, msgs ...storage.ArchivedMessage) {
	t.Helper()
	entries := make([]storage.ArchiveEntry, len(msgs))
	for i, m := range msgs {
		entries[i] = storage.ArchiveEntry{Owner: owner, ArchivedMessage: m}
	}
	if err := a.Append(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
}

// pageIDs returns the IDs of a page's messages.
func pageIDs(p storage.ArchivePage) []string {
	var ids []string
	for _, m := range p.Messages {
		ids = append(ids, m.ID)
	}
	return ids
}

// archiveID is the id of message i of a test archive: in the form of
// storage.NewArchiveID, carrying the message's stamp, with i for its
// random half so that tests can name it.
func archiveID(i int) string {
	return fmt.Sprintf("%016x%016x", archiveBase.Add(time.Duration(i)*time.Minute).UnixMicro(), i)
}

// ids returns archiveID(n) for each n.
func ids(ns ...int) []string {
	var list []string
	for _, n := range ns {
		list = append(list, archiveID(n))
	}
	return list
}

// TestArchiveQuery checks every filter and RSM edge of Query against one
// archive of eight messages, beside another owner's archive with the same
// IDs and an empty archive.
func TestArchiveQuery(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		a := db.Archives()
		ctx := context.Background()
		owners := newAccounts(t, db, "alice@example.org", "bob@example.org", "dave@example.org")
		alice, bob, dave := owners[0], owners[1], owners[2]
		msgs := []storage.ArchivedMessage{
			archived(1, "bob@example.org/phone", "hello bob"),
			archived(2, "bob@example.org/laptop", "Hello again!"),
			archived(3, "carol@example.org", "lunch today"),
			archived(4, "example.net", "server notice"),
			archived(5, "bob@example.org", "see you at lunch"),
			archived(6, "carol@example.org/x", "HELLO carol"),
			archived(7, "bob@example.org/phone", ""),
			archived(8, "example.net/res", "other"),
		}
		appendArchived(t, a, alice, msgs...)
		// Bob's archive reuses the IDs, with other texts and parties.
		appendArchived(t, a, bob, archived(1, "alice@example.org", "hello alice"), archived(9, "bob@example.org", "hello"))

		stamp := func(i int) time.Time { return msgs[i-1].Stamp }
		all := ids(1, 2, 3, 4, 5, 6, 7, 8)
		tests := []struct {
			name     string
			owner    jid.JID
			q        storage.ArchiveQuery
			want     []string
			count    int
			complete bool
			err      error
		}{
			{name: "all", q: storage.ArchiveQuery{Max: 50}, want: all, count: 8, complete: true},
			{name: "empty archive", owner: dave, q: storage.ArchiveQuery{Max: 50}, count: 0, complete: true},
			{name: "empty archive last page", owner: dave, q: storage.ArchiveQuery{Max: 50, LastPage: true}, complete: true},
			{name: "empty archive count only", owner: dave, q: storage.ArchiveQuery{}, complete: true},
			{name: "archive without an account", owner: jid.MustParse("room@muc.example.org"), q: storage.ArchiveQuery{Max: 5}, complete: true},
			{name: "with bare", q: storage.ArchiveQuery{Max: 50, With: jid.MustParse("bob@example.org")},
				want: ids(1, 2, 5, 7), count: 4, complete: true},
			{name: "with full", q: storage.ArchiveQuery{Max: 50, With: jid.MustParse("bob@example.org/phone")},
				want: ids(1, 7), count: 2, complete: true},
			{name: "with full, no such resource", q: storage.ArchiveQuery{Max: 50, With: jid.MustParse("bob@example.org/tv")},
				complete: true},
			{name: "with domain", q: storage.ArchiveQuery{Max: 50, With: jid.MustParse("example.net")},
				want: ids(4), count: 1, complete: true},
			{name: "with domain and resource", q: storage.ArchiveQuery{Max: 50, With: jid.MustParse("example.net/res")},
				want: ids(8), count: 1, complete: true},
			{name: "start and end inclusive", q: storage.ArchiveQuery{Max: 50, Start: stamp(3), End: stamp(5)},
				want: ids(3, 4, 5), count: 3, complete: true},
			{name: "start only", q: storage.ArchiveQuery{Max: 50, Start: stamp(7)}, want: ids(7, 8), count: 2, complete: true},
			{name: "end only", q: storage.ArchiveQuery{Max: 50, End: stamp(1)}, want: ids(1), count: 1, complete: true},
			{name: "end before start", q: storage.ArchiveQuery{Max: 50, Start: stamp(5), End: stamp(4)}, complete: true},
			{name: "after-id", q: storage.ArchiveQuery{Max: 50, AfterID: archiveID(6)}, want: ids(7, 8), count: 2, complete: true},
			{name: "before-id", q: storage.ArchiveQuery{Max: 50, BeforeID: archiveID(3)}, want: ids(1, 2), count: 2, complete: true},
			{name: "after-id and before-id", q: storage.ArchiveQuery{Max: 50, AfterID: archiveID(2), BeforeID: archiveID(5)},
				want: ids(3, 4), count: 2, complete: true},
			{name: "unknown after-id", q: storage.ArchiveQuery{Max: 50, AfterID: "nope"}, err: storage.ErrNotFound},
			{name: "unknown after-id carrying a stamp in the archive", q: storage.ArchiveQuery{Max: 50, AfterID: storage.NewArchiveID(stamp(3))}, err: storage.ErrNotFound},
			{name: "unknown after-id carrying a stamp in no archive", q: storage.ArchiveQuery{Max: 50, AfterID: storage.NewArchiveID(time.Now())}, err: storage.ErrNotFound},
			{name: "unknown before-id", q: storage.ArchiveQuery{Max: 50, BeforeID: "nope"}, err: storage.ErrNotFound},
			{name: "after-id of another archive", q: storage.ArchiveQuery{Max: 50, AfterID: archiveID(9)}, err: storage.ErrNotFound},
			{name: "ids", q: storage.ArchiveQuery{Max: 50, IDs: []string{archiveID(6), "nope", archiveID(3), archiveID(9), storage.NewArchiveID(stamp(4))}},
				want: ids(3, 6), count: 2, complete: true},
			{name: "count limit reached", q: storage.ArchiveQuery{Max: 2, CountLimit: 7}, want: ids(1, 2), count: -1},
			{name: "count limit not reached", q: storage.ArchiveQuery{Max: 2, CountLimit: 8}, want: ids(1, 2), count: 8},
			{name: "count limit, filtered", q: storage.ArchiveQuery{Max: 2, CountLimit: 4, With: jid.MustParse("bob@example.org")},
				want: ids(1, 2), count: 4},
			{name: "text", q: storage.ArchiveQuery{Max: 50, Text: "hello"}, want: ids(1, 2, 6), count: 3, complete: true},
			{name: "text, all words", q: storage.ArchiveQuery{Max: 50, Text: "hello  carol"}, want: ids(6), count: 1, complete: true},
			{name: "text, any case", q: storage.ArchiveQuery{Max: 50, Text: "LUNCH"}, want: ids(3, 5), count: 2, complete: true},
			{name: "text, punctuation", q: storage.ArchiveQuery{Max: 50, Text: "again"}, want: ids(2), count: 1, complete: true},
			{name: "text, no operators", q: storage.ArchiveQuery{Max: 50, Text: `hello OR "lunch*`}, complete: true},
			{name: "text, no match", q: storage.ArchiveQuery{Max: 50, Text: "nothing"}, complete: true},
			{name: "text, blank", q: storage.ArchiveQuery{Max: 50, Text: "  "}, want: all, count: 8, complete: true},
			{name: "text and with", q: storage.ArchiveQuery{Max: 50, Text: "hello", With: jid.MustParse("bob@example.org")},
				want: ids(1, 2), count: 2, complete: true},

			{name: "first page", q: storage.ArchiveQuery{Max: 3}, want: ids(1, 2, 3), count: 8},
			{name: "page after", q: storage.ArchiveQuery{Max: 3, After: archiveID(3)}, want: ids(4, 5, 6), count: 8},
			{name: "page after, to the end", q: storage.ArchiveQuery{Max: 3, After: archiveID(6)}, want: ids(7, 8), count: 8, complete: true},
			{name: "page after, exactly to the end", q: storage.ArchiveQuery{Max: 2, After: archiveID(6)}, want: ids(7, 8), count: 8, complete: true},
			{name: "page after the last", q: storage.ArchiveQuery{Max: 3, After: archiveID(8)}, count: 8, complete: true},
			{name: "page after unknown", q: storage.ArchiveQuery{Max: 3, After: "nope"}, err: storage.ErrNotFound},
			{name: "last page", q: storage.ArchiveQuery{Max: 3, LastPage: true}, want: ids(6, 7, 8), count: 8},
			{name: "last page, all of it", q: storage.ArchiveQuery{Max: 8, LastPage: true}, want: all, count: 8, complete: true},
			{name: "page before", q: storage.ArchiveQuery{Max: 2, Before: archiveID(4), LastPage: true}, want: ids(2, 3), count: 8},
			{name: "page before, without LastPage", q: storage.ArchiveQuery{Max: 2, Before: archiveID(4)}, want: ids(2, 3), count: 8},
			{name: "page before, to the start", q: storage.ArchiveQuery{Max: 5, Before: archiveID(3)}, want: ids(1, 2), count: 8, complete: true},
			{name: "page before the first", q: storage.ArchiveQuery{Max: 5, Before: archiveID(1)}, count: 8, complete: true},
			{name: "page before unknown", q: storage.ArchiveQuery{Max: 5, Before: "nope"}, err: storage.ErrNotFound},
			{name: "count only", q: storage.ArchiveQuery{}, count: 8},
			{name: "count only, filtered", q: storage.ArchiveQuery{With: jid.MustParse("bob@example.org")}, count: 4},
			{name: "count only, after", q: storage.ArchiveQuery{After: archiveID(8)}, count: 8, complete: true},
			{name: "count only, unknown after", q: storage.ArchiveQuery{After: "nope"}, err: storage.ErrNotFound},
			{name: "with, last page", q: storage.ArchiveQuery{Max: 2, LastPage: true, With: jid.MustParse("bob@example.org")},
				want: ids(5, 7), count: 4},
			{name: "with, page after", q: storage.ArchiveQuery{Max: 1, After: archiveID(2), With: jid.MustParse("bob@example.org")},
				want: ids(5), count: 4},
			{name: "with, page after a message it does not match", q: storage.ArchiveQuery{Max: 5, After: archiveID(3), With: jid.MustParse("bob@example.org")},
				want: ids(5, 7), count: 4, complete: true},
			{name: "start, page before", q: storage.ArchiveQuery{Max: 2, Before: archiveID(6), Start: stamp(3)},
				want: ids(4, 5), count: 6},
			{name: "after-id, last page", q: storage.ArchiveQuery{Max: 2, LastPage: true, AfterID: archiveID(5)},
				want: ids(7, 8), count: 3},
			{name: "bob's", owner: bob, q: storage.ArchiveQuery{Max: 50}, want: ids(1, 9), count: 2, complete: true},
			{name: "bob's text", owner: bob, q: storage.ArchiveQuery{Max: 50, Text: "alice"}, want: ids(1), count: 1, complete: true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				owner := tt.owner
				if owner.Equal(jid.JID{}) {
					owner = alice
				}
				page, err := a.Query(ctx, owner, tt.q)
				if tt.err != nil || err != nil {
					if !errors.Is(err, tt.err) || tt.err == nil {
						t.Fatalf("err = %v, want %v", err, tt.err)
					}
					return
				}
				if got := pageIDs(page); !slices.Equal(got, tt.want) {
					t.Errorf("ids = %v, want %v", got, tt.want)
				}
				if page.Count != tt.count || page.Complete != tt.complete {
					t.Errorf("count, complete = %d, %v; want %d, %v",
						page.Count, page.Complete, tt.count, tt.complete)
				}
			})
		}

		t.Run("messages round-trip", func(t *testing.T) {
			page, err := a.Query(ctx, alice, storage.ArchiveQuery{Max: 50})
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range page.Messages {
				w := msgs[i]
				if m.ID != w.ID || !m.Stamp.Equal(w.Stamp) || m.Stamp.Location() != time.UTC ||
					!m.With.Equal(w.With) || string(m.Stanza) != string(w.Stanza) || m.Text != w.Text {
					t.Errorf("message %d = %+v, want %+v", i, m, w)
				}
			}
		})
	})
}

// TestArchivePaging pages forwards and backwards through a few hundred
// messages, appending more between pages: every message is seen once, in
// order.
func TestArchivePaging(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		a := db.Archives()
		ctx := context.Background()
		owner := newAccounts(t, db, "alice@example.org")[0]
		withs := []string{"bob@example.org/a", "carol@example.org", "bob@example.org/b"}
		next := 0
		add := func(n int) {
			var batch []storage.ArchivedMessage
			for range n {
				next++
				batch = append(batch, archived(next, withs[next%len(withs)], fmt.Sprintf("word%d common", next%5)))
			}
			appendArchived(t, a, owner, batch...)
		}
		add(300)

		for _, q := range []struct {
			name string
			q    storage.ArchiveQuery
		}{
			{"all", storage.ArchiveQuery{}},
			{"with", storage.ArchiveQuery{With: jid.MustParse("bob@example.org")}},
			{"text", storage.ArchiveQuery{Text: "word3"}},
		} {
			t.Run(q.name+" forwards", func(t *testing.T) {
				var seen []string
				after := ""
				for pages := 0; ; pages++ {
					if pages > 1000 {
						t.Fatal("paging does not end")
					}
					query := q.q
					query.Max, query.After = 7, after
					page, err := a.Query(ctx, owner, query)
					if err != nil {
						t.Fatal(err)
					}
					seen = append(seen, pageIDs(page)...)
					if page.Complete {
						if page.Count != len(seen) {
							t.Errorf("count %d at the end, saw %d", page.Count, len(seen))
						}
						break
					}
					after = seen[len(seen)-1]
					if pages < 20 {
						add(2) // after the page: still to be seen
					}
				}
				want := allMatching(t, a, owner, q.q)
				if !slices.Equal(seen, want) {
					t.Errorf("paged through %d messages, want the %d matching, in order:\n%v\n%v", len(seen), len(want), seen, want)
				}
			})
			t.Run(q.name+" backwards", func(t *testing.T) {
				want := allMatching(t, a, owner, q.q)
				var seen []string
				before := ""
				for pages := 0; ; pages++ {
					if pages > 1000 {
						t.Fatal("paging does not end")
					}
					query := q.q
					query.Max, query.Before, query.LastPage = 7, before, true
					page, err := a.Query(ctx, owner, query)
					if err != nil {
						t.Fatal(err)
					}
					got := pageIDs(page)
					seen = append(got, seen...)
					if page.Complete {
						break
					}
					before = seen[0]
					add(2) // after the first page: not in this result
				}
				if !slices.Equal(seen, want) {
					t.Errorf("paged back through %d messages, want the %d matching, in order:\n%v\n%v", len(seen), len(want), seen, want)
				}
			})
		}
	})
}

// allMatching returns the IDs of every message q matches, in one page.
func allMatching(t *testing.T, a storage.Archives, owner jid.JID, q storage.ArchiveQuery) []string {
	t.Helper()
	q.Max = 1000000
	page, err := a.Query(context.Background(), owner, q)
	if err != nil {
		t.Fatal(err)
	}
	if !page.Complete || page.Count != len(page.Messages) {
		t.Fatalf("one page of all: complete %v, count %d, %d messages", page.Complete, page.Count, len(page.Messages))
	}
	return pageIDs(page)
}

// TestArchiveAppend checks that a batch is stored whole or not at all, and
// that an ID is its archive's only.
func TestArchiveAppend(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		a := db.Archives()
		ctx := context.Background()
		owners := newAccounts(t, db, "alice@example.org", "bob@example.org")
		alice, bob := owners[0], owners[1]
		appendArchived(t, a, alice, archived(1, "bob@example.org", "one"))
		steps := []struct {
			name    string
			entries []storage.ArchiveEntry
			fails   bool
			alice   []string
			bob     []string
		}{
			{"empty batch", nil, false, ids(1), nil},
			{"two owners", []storage.ArchiveEntry{
				{Owner: bob, ArchivedMessage: archived(1, "alice@example.org", "one")},
				{Owner: alice, ArchivedMessage: archived(2, "bob@example.org", "two")},
			}, false, ids(1, 2), ids(1)},
			{"an id not carrying its stamp: nothing stored", []storage.ArchiveEntry{
				{Owner: alice, ArchivedMessage: archived(3, "bob@example.org", "three")},
				{Owner: bob, ArchivedMessage: misstamped(3)},
			}, true, ids(1, 2), ids(1)},
			{"a bad entry after the first statement of a long batch: nothing stored", func() []storage.ArchiveEntry {
				var entries []storage.ArchiveEntry
				for i := 10; i < 260; i++ {
					entries = append(entries, storage.ArchiveEntry{Owner: alice, ArchivedMessage: archived(i, "bob@example.org", "three")})
				}
				return append(entries, storage.ArchiveEntry{Owner: alice, ArchivedMessage: misstamped(5)})
			}(), true, ids(1, 2), ids(1)},
			{"an id of another form is taken as given", []storage.ArchiveEntry{
				{Owner: bob, ArchivedMessage: func() storage.ArchivedMessage { m := archived(6, "alice@example.org", ""); m.ID = "legacy-6"; return m }()},
			}, false, ids(1, 2), append(ids(1), "legacy-6")},
			{"a resource in the owner is ignored", []storage.ArchiveEntry{
				{Owner: jid.MustParse("alice@example.org/phone"), ArchivedMessage: archived(4, "bob@example.org", "")},
			}, false, ids(1, 2, 4), append(ids(1), "legacy-6")},
		}
		for _, step := range steps {
			t.Run(step.name, func(t *testing.T) {
				if err := a.Append(ctx, step.entries); (err != nil) != step.fails {
					t.Fatalf("err = %v, want an error: %v", err, step.fails)
				}
				if got := allMatching(t, a, alice, storage.ArchiveQuery{}); !slices.Equal(got, step.alice) {
					t.Errorf("alice's = %v, want %v", got, step.alice)
				}
				if got := allMatching(t, a, bob, storage.ArchiveQuery{}); !slices.Equal(got, step.bob) {
					t.Errorf("bob's = %v, want %v", got, step.bob)
				}
				// The failed batch left nothing in the full-text index.
				if got := allMatching(t, a, alice, storage.ArchiveQuery{Text: "three"}); got != nil {
					t.Errorf("text three = %v, want none", got)
				}
			})
		}
	})
}

// misstamped is message i of a test archive with an id that carries a
// stamp other than its own.
func misstamped(i int) storage.ArchivedMessage {
	m := archived(i, "alice@example.org", "three")
	m.ID = archiveID(i + 1)
	return m
}

// TestArchivePurgeExpire checks Purge of one archive and Expire across
// archives, oldest first, and that the full-text index follows.
func TestArchivePurgeExpire(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		a := db.Archives()
		ctx := context.Background()
		owners := newAccounts(t, db, "alice@example.org", "bob@example.org")
		alice, bob := owners[0], owners[1]
		room := jid.MustParse("room@muc.example.org")
		// Interleaved stamps: alice has odd minutes, bob even, the room 3
		// then 1, so that the oldest by stamp is not the oldest by insertion.
		for i := 1; i <= 8; i++ {
			owner := alice
			if i%2 == 0 {
				owner = bob
			}
			appendArchived(t, a, owner, archived(i, "carol@example.org", "text"))
		}
		appendArchived(t, a, room, archived(3, "room@muc.example.org/x", "text"), archived(1, "room@muc.example.org/y", "text"))

		check := func(t *testing.T, owner jid.JID, want []string) {
			t.Helper()
			if got := allMatching(t, a, owner, storage.ArchiveQuery{}); !slices.Equal(got, want) {
				t.Errorf("%s: %v, want %v", owner, got, want)
			}
			if got := allMatching(t, a, owner, storage.ArchiveQuery{Text: "text"}); !slices.Equal(got, want) {
				t.Errorf("%s by text: %v, want %v", owner, got, want)
			}
		}
		steps := []struct {
			name              string
			do                func() (int64, error)
			n                 int64
			alice, bob, rooms []string
		}{
			{"purge before a time", func() (int64, error) { return a.Purge(ctx, alice, archiveBase.Add(5*time.Minute)) },
				2, ids(5, 7), ids(2, 4, 6, 8), ids(1, 3)},
			{"purge nothing", func() (int64, error) { return a.Purge(ctx, alice, archiveBase) },
				0, ids(5, 7), ids(2, 4, 6, 8), ids(1, 3)},
			{"expire oldest first, across archives", func() (int64, error) { return a.Expire(ctx, archiveBase.Add(time.Hour), 2) },
				2, ids(5, 7), ids(4, 6, 8), ids(3)},
			{"expire only before the time", func() (int64, error) { return a.Expire(ctx, archiveBase.Add(6*time.Minute), 100) },
				3, ids(7), ids(6, 8), nil},
			{"expire nothing", func() (int64, error) { return a.Expire(ctx, archiveBase.Add(6*time.Minute), 100) },
				0, ids(7), ids(6, 8), nil},
			{"expire with no limit", func() (int64, error) { return a.Expire(ctx, archiveBase.Add(time.Hour), 0) },
				0, ids(7), ids(6, 8), nil},
			{"purge all", func() (int64, error) { return a.Purge(ctx, bob, time.Time{}) },
				2, ids(7), nil, nil},
		}
		for _, step := range steps {
			t.Run(step.name, func(t *testing.T) {
				n, err := step.do()
				if err != nil || n != step.n {
					t.Fatalf("= %d, %v; want %d", n, err, step.n)
				}
				check(t, alice, step.alice)
				check(t, bob, step.bob)
				check(t, room, step.rooms)
			})
		}
	})
}

// TestArchiveStatsBounds checks Stats of one archive and of all, and Bounds.
func TestArchiveStatsBounds(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		a := db.Archives()
		ctx := context.Background()
		owners := newAccounts(t, db, "alice@example.org", "bob@example.org", "dave@example.org")
		alice, bob, dave := owners[0], owners[1], owners[2]
		room := jid.MustParse("room@muc.example.org")
		m := []storage.ArchivedMessage{archived(1, "bob@example.org", "a"), archived(2, "bob@example.org", ""), archived(3, "x.example", "ccc")}
		appendArchived(t, a, alice, m[0], m[1], m[2])
		appendArchived(t, a, room, m[1])
		size := func(ms ...storage.ArchivedMessage) (n int64) {
			for _, m := range ms {
				n += int64(len(m.Stanza))
			}
			return n
		}
		bounds := func(first, last storage.ArchivedMessage) storage.ArchiveBounds {
			return storage.ArchiveBounds{FirstID: first.ID, LastID: last.ID, FirstStamp: first.Stamp, LastStamp: last.Stamp}
		}
		aliceStats := storage.ArchiveStats{Owner: alice, Messages: 3, Bytes: size(m...), ArchiveBounds: bounds(m[0], m[2])}
		roomStats := storage.ArchiveStats{Owner: room, Messages: 1, Bytes: size(m[1]), ArchiveBounds: bounds(m[1], m[1])}
		tests := []struct {
			name  string
			owner jid.JID
			want  []storage.ArchiveStats
		}{
			{"one", alice, []storage.ArchiveStats{aliceStats}},
			{"one, with a resource", jid.MustParse("alice@example.org/r"), []storage.ArchiveStats{aliceStats}},
			{"a room", room, []storage.ArchiveStats{roomStats}},
			{"empty", bob, []storage.ArchiveStats{}},
			{"all, by owner", jid.JID{}, []storage.ArchiveStats{aliceStats, roomStats}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := a.Stats(ctx, tt.owner)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.EqualFunc(got, tt.want, equalStats) {
					t.Errorf("= %+v,\nwant %+v", got, tt.want)
				}
			})
		}
		for _, tt := range []struct {
			owner jid.JID
			want  storage.ArchiveBounds
		}{{alice, bounds(m[0], m[2])}, {room, bounds(m[1], m[1])}, {dave, storage.ArchiveBounds{}}} {
			got, err := a.Bounds(ctx, tt.owner)
			if err != nil || !equalBounds(got, tt.want) {
				t.Errorf("Bounds(%s) = %+v, %v; want %+v", tt.owner, got, err, tt.want)
			}
		}
	})
}

func equalStats(a, b storage.ArchiveStats) bool {
	return a.Owner.Equal(b.Owner) && a.Messages == b.Messages && a.Bytes == b.Bytes && equalBounds(a.ArchiveBounds, b.ArchiveBounds)
}

func equalBounds(a, b storage.ArchiveBounds) bool {
	return a.FirstID == b.FirstID && a.LastID == b.LastID && a.FirstStamp.Equal(b.FirstStamp) && a.LastStamp.Equal(b.LastStamp)
}

// TestArchivePrefs checks the preferences step by step.
func TestArchivePrefs(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		a := db.Archives()
		ctx := context.Background()
		owners := newAccounts(t, db, "alice@example.org", "bob@example.org")
		alice, bob := owners[0], owners[1]
		js := func(s ...string) []jid.JID {
			var list []jid.JID
			for _, x := range s {
				list = append(list, jid.MustParse(x))
			}
			return list
		}
		prefs := storage.ArchivePrefs{Default: storage.ArchiveRoster,
			Always: js("carol@example.org", "bob@example.org"), Never: js("eve@example.org/r", "bob@example.org")}
		steps := []struct {
			name    string
			do      func() error
			wantErr error
			owner   jid.JID
			want    *storage.ArchivePrefs // nil: ErrNotFound
		}{
			{"none set", func() error { return nil }, nil, alice, nil},
			{"set", func() error { return a.SetPrefs(ctx, alice, prefs) }, nil, alice, &storage.ArchivePrefs{
				Default: storage.ArchiveRoster, Always: js("bob@example.org", "carol@example.org"),
				Never: js("bob@example.org", "eve@example.org/r")}}, // full JIDs kept as given
			{"bob's unset", func() error { return nil }, nil, bob, nil},
			{"replace", func() error {
				return a.SetPrefs(ctx, alice, storage.ArchivePrefs{Default: storage.ArchiveNever, Always: js("x@example.org", "x@example.org/y")})
			}, nil, alice, &storage.ArchivePrefs{Default: storage.ArchiveNever, Always: js("x@example.org", "x@example.org/y")}},
			{"no account", func() error {
				return a.SetPrefs(ctx, jid.MustParse("nobody@example.org"), prefs)
			}, storage.ErrNotFound, jid.MustParse("nobody@example.org"), nil},
			{"account deleted", func() error { return db.Users().Delete(ctx, "example.org", "alice") }, nil, alice, nil},
		}
		for _, step := range steps {
			t.Run(step.name, func(t *testing.T) {
				if err := step.do(); !errors.Is(err, step.wantErr) || (err != nil) != (step.wantErr != nil) {
					t.Fatalf("err = %v, want %v", err, step.wantErr)
				}
				got, err := a.Prefs(ctx, step.owner)
				if step.want == nil {
					if !errors.Is(err, storage.ErrNotFound) {
						t.Fatalf("Prefs = %+v, %v; want ErrNotFound", got, err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got.Default != step.want.Default || !slices.EqualFunc(got.Always, step.want.Always, jid.JID.Equal) ||
					!slices.EqualFunc(got.Never, step.want.Never, jid.JID.Equal) {
					t.Errorf("Prefs = %+v, want %+v", got, *step.want)
				}
			})
		}
	})
}

// TestArchiveDeleteReopen checks that deleting an account deletes its
// archive and nobody else's, and that reopening the database keeps them.
func TestArchiveDeleteReopen(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		cfg := b.Config(t)
		db, err := sqlstore.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		owners := newAccounts(t, db, "alice@example.org", "bob@example.org")
		alice, bob := owners[0], owners[1]
		appendArchived(t, db.Archives(), alice, archived(1, "bob@example.org", "hi"), archived(2, "bob@example.org", "hi"))
		appendArchived(t, db.Archives(), bob, archived(1, "alice@example.org", "hi"))
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db, err = sqlstore.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		a := db.Archives()
		if got := allMatching(t, a, alice, storage.ArchiveQuery{Text: "hi"}); !slices.Equal(got, ids(1, 2)) {
			t.Errorf("after reopening, alice's = %v, want %v", got, ids(1, 2))
		}
		if err := db.Users().Delete(ctx, "example.org", "alice"); err != nil {
			t.Fatal(err)
		}
		if got := allMatching(t, a, alice, storage.ArchiveQuery{}); got != nil {
			t.Errorf("after deletion, alice's = %v, want none", got)
		}
		if got := allMatching(t, a, alice, storage.ArchiveQuery{Text: "hi"}); got != nil {
			t.Errorf("after deletion, alice's by text = %v, want none", got)
		}
		if got := allMatching(t, a, bob, storage.ArchiveQuery{Text: "hi"}); !slices.Equal(got, ids(1)) {
			t.Errorf("after alice's deletion, bob's = %v, want %v", got, ids(1))
		}
		// An account of the same name starts with an empty archive.
		newAccounts(t, db, "alice@example.org")
		if got := allMatching(t, a, alice, storage.ArchiveQuery{}); got != nil {
			t.Errorf("new alice's = %v, want none", got)
		}
	})
}

// TestArchiveLegacyIDs: messages whose ids do not carry their stamp (as
// before migration 0006, or as another tool wrote them) are found by id
// all the same, by reading the archive.
func TestArchiveLegacyIDs(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		a := db.Archives()
		ctx := context.Background()
		alice := newAccounts(t, db, "alice@example.org")[0]
		var msgs []storage.ArchivedMessage
		for i := 1; i <= 5; i++ {
			m := archived(i, "bob@example.org", "")
			if i%2 == 1 {
				m.ID = fmt.Sprintf("OLD%d", i) // not 32 characters, like the 26 of the old ids
			}
			msgs = append(msgs, m)
		}
		appendArchived(t, a, alice, msgs...)
		all := []string{"OLD1", archiveID(2), "OLD3", archiveID(4), "OLD5"}
		for _, tt := range []struct {
			name string
			q    storage.ArchiveQuery
			want []string
		}{
			{"after-id", storage.ArchiveQuery{AfterID: "OLD3"}, all[3:]},
			{"before-id", storage.ArchiveQuery{BeforeID: "OLD3"}, all[:2]},
			{"page after", storage.ArchiveQuery{After: "OLD1", Max: 2}, all[1:3]},
			{"page before", storage.ArchiveQuery{Before: "OLD5", Max: 2}, all[2:4]},
			{"ids of both forms", storage.ArchiveQuery{IDs: []string{"OLD5", archiveID(2), "OLD9"}}, []string{archiveID(2), "OLD5"}},
			{"ids of the old form", storage.ArchiveQuery{IDs: []string{"OLD3", "OLD1"}}, []string{"OLD1", "OLD3"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				q := tt.q
				if q.Max == 0 {
					q.Max = 50
				}
				page, err := a.Query(ctx, alice, q)
				if err != nil {
					t.Fatal(err)
				}
				if got := pageIDs(page); !slices.Equal(got, tt.want) {
					t.Errorf("= %v, want %v", got, tt.want)
				}
			})
		}
		if _, err := a.Query(ctx, alice, storage.ArchiveQuery{AfterID: "OLD7", Max: 5}); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("unknown id of the old form: %v, want ErrNotFound", err)
		}
	})
}

// TestArchivePagingLarge pages forwards and backwards through an archive
// of 100,000 messages, 250 at a time as the module allows, while messages
// arrive between pages, as issue 10 asks: no message is seen twice, none
// is missed, and the order is the archive's. New messages get later stamps
// than every message before them, as the module's writer gives them.
func TestArchivePagingLarge(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		a := db.Archives()
		ctx := context.Background()
		owners := newAccounts(t, db, "alice@example.org", "bob@example.org")
		alice, bob := owners[0], owners[1]
		const size, batch = 100000, 5000
		next := 0
		add := func(owner jid.JID, n int) {
			entries := make([]storage.ArchiveEntry, 0, n)
			for range n {
				next++
				stamp := archiveBase.Add(time.Duration(next) * time.Millisecond)
				entries = append(entries, storage.ArchiveEntry{Owner: owner, ArchivedMessage: storage.ArchivedMessage{
					ID: storage.NewArchiveID(stamp), Stamp: stamp, With: jid.MustParse(fmt.Sprintf("c%d@example.org/r", next%3)),
					Stanza: []byte(`<message><body>x</body></message>`), Text: "x",
				}})
			}
			if err := a.Append(ctx, entries); err != nil {
				t.Fatal(err)
			}
		}
		for range size / batch {
			add(alice, batch)
		}
		add(bob, 100) // another archive, interleaved with what arrives

		for _, tt := range []struct {
			name string
			q    storage.ArchiveQuery
		}{
			{"all", storage.ArchiveQuery{}},
			{"with", storage.ArchiveQuery{With: jid.MustParse("c1@example.org")}},
		} {
			t.Run(tt.name+" forwards", func(t *testing.T) {
				var seen []string
				after := ""
				for pages := 0; ; pages++ {
					if pages > 2000 {
						t.Fatal("paging does not end")
					}
					q := tt.q
					q.Max, q.After, q.CountLimit = 250, after, 10000
					page, err := a.Query(ctx, alice, q)
					if err != nil {
						t.Fatal(err)
					}
					seen = append(seen, pageIDs(page)...)
					if page.Complete {
						break
					}
					after = seen[len(seen)-1]
					add(alice, 3) // after the page: still to be seen
					add(bob, 1)
				}
				checkPaged(t, seen, allMatching(t, a, alice, tt.q))
			})
			t.Run(tt.name+" backwards", func(t *testing.T) {
				want := allMatching(t, a, alice, tt.q)
				var seen []string
				before := ""
				for pages := 0; ; pages++ {
					if pages > 2000 {
						t.Fatal("paging does not end")
					}
					q := tt.q
					q.Max, q.Before, q.LastPage, q.CountLimit = 250, before, true, 10000
					page, err := a.Query(ctx, alice, q)
					if err != nil {
						t.Fatal(err)
					}
					seen = append(pageIDs(page), seen...)
					if page.Complete {
						break
					}
					before = seen[0]
					add(alice, 3) // after the first page: not in this walk
				}
				checkPaged(t, seen, want)
			})
		}
	})
}

// checkPaged fails unless a walk through pages saw exactly want, in order.
func checkPaged(t *testing.T, seen, want []string) {
	t.Helper()
	if len(seen) != len(want) {
		t.Fatalf("paged through %d messages, want the %d matching", len(seen), len(want))
	}
	for i := range seen {
		if seen[i] != want[i] {
			t.Fatalf("message %d of the walk is %s, want %s", i, seen[i], want[i])
		}
	}
}

// TestArchivePurgeBatches: a purge of more messages than one transaction
// deletes goes on until it has deleted them all, and only them.
func TestArchivePurgeBatches(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		a := db.Archives()
		ctx := context.Background()
		alice := newAccounts(t, db, "alice@example.org")[0]
		const n = 12001 // more than two batches of 5000
		entries := make([]storage.ArchiveEntry, 0, n)
		for i := range n {
			stamp := archiveBase.Add(time.Duration(i) * time.Second)
			entries = append(entries, storage.ArchiveEntry{Owner: alice, ArchivedMessage: storage.ArchivedMessage{
				ID: storage.NewArchiveID(stamp), Stamp: stamp, With: jid.MustParse("bob@example.org"), Stanza: []byte(`<message/>`),
			}})
		}
		if err := a.Append(ctx, entries); err != nil {
			t.Fatal(err)
		}
		cut := archiveBase.Add(11000 * time.Second)
		if got, err := a.Purge(ctx, alice, cut); err != nil || got != 11000 {
			t.Fatalf("Purge before message 11000 = %d, %v; want 11000", got, err)
		}
		page, err := a.Query(ctx, alice, storage.ArchiveQuery{Max: 1})
		if err != nil || page.Count != n-11000 || len(page.Messages) != 1 || !page.Messages[0].Stamp.Equal(cut) {
			t.Fatalf("after the purge: count %d, first %+v, %v; want %d from message 11000", page.Count, page.Messages, err, n-11000)
		}
		if got, err := a.Purge(ctx, alice, time.Time{}); err != nil || got != n-11000 {
			t.Fatalf("Purge of all = %d, %v; want %d", got, err, n-11000)
		}
	})
}

// TestArchiveReplace checks Replace, the tombstone of a retracted message:
// the stanza and text change, the id, stamp, other party and place in the
// archive do not; full-text search finds the new text and no longer the
// old; an id the owner's archive does not hold (another's, an unknown one,
// an old-form one) is ErrNotFound and changes nothing.
func TestArchiveReplace(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		a := db.Archives()
		ctx := context.Background()
		room, other := jid.MustParse("room@conference.example.org"), jid.MustParse("other@conference.example.org")
		appendArchived(t, a, room, archived(1, "room@conference.example.org/alice", "secret plans"),
			archived(2, "room@conference.example.org/bob", "hello"))
		old := archived(3, "room@conference.example.org/bob", "secret")
		old.ID = "OLD3"
		appendArchived(t, a, room, old)
		appendArchived(t, a, other, archived(4, "other@conference.example.org/carol", "secret"))

		tomb := []byte(`<message id="x"><retracted xmlns="urn:xmpp:message-retract:1"/></message>`)
		if err := a.Replace(ctx, room, archiveID(1), tomb, "tombstone"); err != nil {
			t.Fatal(err)
		}
		page, err := a.Query(ctx, room, storage.ArchiveQuery{Max: 50})
		if err != nil {
			t.Fatal(err)
		}
		if got := pageIDs(page); !slices.Equal(got, []string{archiveID(1), archiveID(2), "OLD3"}) {
			t.Fatalf("archive after Replace: %v", got)
		}
		m, want := page.Messages[0], archived(1, "room@conference.example.org/alice", "")
		if string(m.Stanza) != string(tomb) || !m.Stamp.Equal(want.Stamp) || !m.With.Equal(want.With) {
			t.Errorf("replaced message: %+v", m)
		}
		for _, tt := range []struct {
			words string
			want  []string
		}{{"plans", nil}, {"tombstone", ids(1)}, {"secret", []string{"OLD3"}}} {
			p, err := a.Query(ctx, room, storage.ArchiveQuery{Max: 50, Text: tt.words})
			if err != nil {
				t.Fatal(err)
			}
			if got := pageIDs(p); !slices.Equal(got, tt.want) {
				t.Errorf("text %q: %v, want %v", tt.words, got, tt.want)
			}
		}
		if err := a.Replace(ctx, room, "OLD3", tomb, ""); err != nil {
			t.Errorf("an id of the old form: %v", err)
		}
		for _, id := range []string{archiveID(4), archiveID(9), "OLD9"} {
			if err := a.Replace(ctx, room, id, tomb, ""); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Replace %s: %v, want ErrNotFound", id, err)
			}
		}
		p, err := a.Query(ctx, other, storage.ArchiveQuery{Max: 50, Text: "secret"})
		if err != nil || len(p.Messages) != 1 || string(p.Messages[0].Stanza) == string(tomb) {
			t.Errorf("another archive changed: %+v %v", p, err)
		}
	})
}
