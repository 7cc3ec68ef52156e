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

// archived returns the message number i of a test archive: id m<i>,
// archived i minutes after archiveBase.
func archived(i int, with, text string) storage.ArchivedMessage {
	id := fmt.Sprintf("m%02d", i)
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

// ids returns m<n> for each n.
func ids(ns ...int) []string {
	var list []string
	for _, n := range ns {
		list = append(list, fmt.Sprintf("m%02d", n))
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
			index    int
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
			{name: "after-id", q: storage.ArchiveQuery{Max: 50, AfterID: "m06"}, want: ids(7, 8), count: 2, complete: true},
			{name: "before-id", q: storage.ArchiveQuery{Max: 50, BeforeID: "m03"}, want: ids(1, 2), count: 2, complete: true},
			{name: "after-id and before-id", q: storage.ArchiveQuery{Max: 50, AfterID: "m02", BeforeID: "m05"},
				want: ids(3, 4), count: 2, complete: true},
			{name: "unknown after-id", q: storage.ArchiveQuery{Max: 50, AfterID: "nope"}, err: storage.ErrNotFound},
			{name: "unknown before-id", q: storage.ArchiveQuery{Max: 50, BeforeID: "nope"}, err: storage.ErrNotFound},
			{name: "after-id of another archive", q: storage.ArchiveQuery{Max: 50, AfterID: "m09"}, err: storage.ErrNotFound},
			{name: "ids", q: storage.ArchiveQuery{Max: 50, IDs: []string{"m06", "nope", "m03", "m09"}},
				want: ids(3, 6), count: 2, complete: true},
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
			{name: "page after", q: storage.ArchiveQuery{Max: 3, After: "m03"}, want: ids(4, 5, 6), count: 8, index: 3},
			{name: "page after, to the end", q: storage.ArchiveQuery{Max: 3, After: "m06"}, want: ids(7, 8), count: 8, index: 6, complete: true},
			{name: "page after, exactly to the end", q: storage.ArchiveQuery{Max: 2, After: "m06"}, want: ids(7, 8), count: 8, index: 6, complete: true},
			{name: "page after the last", q: storage.ArchiveQuery{Max: 3, After: "m08"}, count: 8, complete: true},
			{name: "page after unknown", q: storage.ArchiveQuery{Max: 3, After: "nope"}, err: storage.ErrNotFound},
			{name: "last page", q: storage.ArchiveQuery{Max: 3, LastPage: true}, want: ids(6, 7, 8), count: 8, index: 5},
			{name: "last page, all of it", q: storage.ArchiveQuery{Max: 8, LastPage: true}, want: all, count: 8, complete: true},
			{name: "page before", q: storage.ArchiveQuery{Max: 2, Before: "m04", LastPage: true}, want: ids(2, 3), count: 8, index: 1},
			{name: "page before, without LastPage", q: storage.ArchiveQuery{Max: 2, Before: "m04"}, want: ids(2, 3), count: 8, index: 1},
			{name: "page before, to the start", q: storage.ArchiveQuery{Max: 5, Before: "m03"}, want: ids(1, 2), count: 8, complete: true},
			{name: "page before the first", q: storage.ArchiveQuery{Max: 5, Before: "m01"}, count: 8, complete: true},
			{name: "page before unknown", q: storage.ArchiveQuery{Max: 5, Before: "nope"}, err: storage.ErrNotFound},
			{name: "count only", q: storage.ArchiveQuery{}, count: 8},
			{name: "count only, filtered", q: storage.ArchiveQuery{With: jid.MustParse("bob@example.org")}, count: 4},
			{name: "count only, after", q: storage.ArchiveQuery{After: "m08"}, count: 8, complete: true},
			{name: "count only, unknown after", q: storage.ArchiveQuery{After: "nope"}, err: storage.ErrNotFound},
			{name: "with, last page", q: storage.ArchiveQuery{Max: 2, LastPage: true, With: jid.MustParse("bob@example.org")},
				want: ids(5, 7), count: 4, index: 2},
			{name: "with, page after", q: storage.ArchiveQuery{Max: 1, After: "m02", With: jid.MustParse("bob@example.org")},
				want: ids(5), count: 4, index: 2},
			{name: "with, page after a message it does not match", q: storage.ArchiveQuery{Max: 5, After: "m03", With: jid.MustParse("bob@example.org")},
				want: ids(5, 7), count: 4, index: 2, complete: true},
			{name: "start, page before", q: storage.ArchiveQuery{Max: 2, Before: "m06", Start: stamp(3)},
				want: ids(4, 5), count: 6, index: 1},
			{name: "after-id, last page", q: storage.ArchiveQuery{Max: 2, LastPage: true, AfterID: "m05"},
				want: ids(7, 8), count: 3, index: 1},
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
				if page.Count != tt.count || page.Index != tt.index || page.Complete != tt.complete {
					t.Errorf("count, index, complete = %d, %d, %v; want %d, %d, %v",
						page.Count, page.Index, page.Complete, tt.count, tt.index, tt.complete)
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
// order, and each page's Index is its first message's position.
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
					if len(page.Messages) > 0 && page.Index != len(seen) {
						t.Fatalf("page %d: index %d, want %d", pages, page.Index, len(seen))
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
					if len(got) > 0 && page.Index != len(want)-len(seen)-len(got) {
						t.Fatalf("page %d: index %d, want %d", pages, page.Index, len(want)-len(seen)-len(got))
					}
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
	q.Max = 100000
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
// that an ID is unique in its archive only.
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
			wantErr error
			alice   []string
			bob     []string
		}{
			{"empty batch", nil, nil, ids(1), nil},
			{"two owners", []storage.ArchiveEntry{
				{Owner: bob, ArchivedMessage: archived(1, "alice@example.org", "one")},
				{Owner: alice, ArchivedMessage: archived(2, "bob@example.org", "two")},
			}, nil, ids(1, 2), ids(1)},
			{"an id twice: nothing stored", []storage.ArchiveEntry{
				{Owner: alice, ArchivedMessage: archived(3, "bob@example.org", "three")},
				{Owner: bob, ArchivedMessage: archived(3, "alice@example.org", "three")},
				{Owner: alice, ArchivedMessage: archived(1, "bob@example.org", "again")},
			}, storage.ErrExists, ids(1, 2), ids(1)},
			{"a duplicate after the first statement of a long batch: nothing stored", func() []storage.ArchiveEntry {
				var entries []storage.ArchiveEntry
				for i := 10; i < 260; i++ {
					entries = append(entries, storage.ArchiveEntry{Owner: alice, ArchivedMessage: archived(i, "bob@example.org", "three")})
				}
				return append(entries, storage.ArchiveEntry{Owner: alice, ArchivedMessage: archived(2, "bob@example.org", "")})
			}(), storage.ErrExists, ids(1, 2), ids(1)},
			{"a resource in the owner is ignored", []storage.ArchiveEntry{
				{Owner: jid.MustParse("alice@example.org/phone"), ArchivedMessage: archived(4, "bob@example.org", "")},
			}, nil, ids(1, 2, 4), ids(1)},
		}
		for _, step := range steps {
			t.Run(step.name, func(t *testing.T) {
				err := a.Append(ctx, step.entries)
				if !errors.Is(err, step.wantErr) || (err != nil) != (step.wantErr != nil) {
					t.Fatalf("err = %v, want %v", err, step.wantErr)
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
				2, ids(5, 7), ids(2, 4, 6, 8), ids(3, 1)},
			{"purge nothing", func() (int64, error) { return a.Purge(ctx, alice, archiveBase) },
				0, ids(5, 7), ids(2, 4, 6, 8), ids(3, 1)},
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
