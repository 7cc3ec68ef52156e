package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
)

// envBenchArchive, set to 1, adds archives of 10^5 and 10^6 messages to
// the archive benchmarks, whose fixtures take minutes to load.
const envBenchArchive = "XMPPD_BENCH_ARCHIVE"

// benchArchiveSizes are the archive sizes the query benchmarks run at.
func benchArchiveSizes() []int {
	if os.Getenv(envBenchArchive) == "1" {
		return []int{1e4, 1e5, 1e6}
	}
	return []int{1e4}
}

// benchMessage is message i of a benchmark archive: ten parties, and a
// body in which "rare" is in one message of ten.
func benchMessage(i int) storage.ArchivedMessage {
	text := fmt.Sprintf("message %d about topic%d", i, i%100)
	if i%10 == 0 {
		text += " rare"
	}
	id := fmt.Sprintf("b%08d", i)
	return storage.ArchivedMessage{
		ID:     id,
		Stamp:  archiveBase.Add(time.Duration(i) * time.Second),
		With:   jid.MustParse(fmt.Sprintf("contact%d@example.org/res", i%10)),
		Stanza: []byte(`<message id="` + id + `" type="chat"><body>` + text + `</body></message>`),
		Text:   text,
	}
}

// loadBenchArchive fills owner's archive with n messages, from first on,
// in batches of 5000.
func loadBenchArchive(b *testing.B, a storage.Archives, owner jid.JID, first, n int) {
	b.Helper()
	const batch = 5000
	for start := first; start < first+n; start += batch {
		var entries []storage.ArchiveEntry
		for i := start; i < min(start+batch, first+n); i++ {
			entries = append(entries, storage.ArchiveEntry{Owner: owner, ArchivedMessage: benchMessage(i)})
		}
		if err := a.Append(context.Background(), entries); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkArchiveAppend measures the cost of archiving one message, in
// batches of 1 and of 32, into an archive of 10^4 messages.
func BenchmarkArchiveAppend(b *testing.B) {
	for _, backend := range storetest.Backends(b) {
		for _, batch := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/batch=%d", backend.Name, batch), func(b *testing.B) {
				db := storetest.Open(b, backend)
				a := db.Archives()
				owner := jid.MustParse("alice@example.org")
				loadBenchArchive(b, a, owner, 0, 1e4)
				next := int(1e4)
				b.ResetTimer()
				for b.Loop() {
					entries := make([]storage.ArchiveEntry, batch)
					for i := range entries {
						entries[i] = storage.ArchiveEntry{Owner: owner, ArchivedMessage: benchMessage(next)}
						next++
					}
					if err := a.Append(context.Background(), entries); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch)/1e3, "µs/msg")
			})
		}
	}
}

// BenchmarkArchiveQuery measures a 50-message page, with its count, in one
// archive of 10^4 messages (10^5 and 10^6 with XMPPD_BENCH_ARCHIVE=1)
// beside another owner's: the last page, the last page with one of ten
// parties, the last page of a word in one message of ten, and a page in
// the middle.
func BenchmarkArchiveQuery(b *testing.B) {
	queries := []struct {
		name string
		q    storage.ArchiveQuery
	}{
		{"last", storage.ArchiveQuery{Max: 50, LastPage: true}},
		{"with", storage.ArchiveQuery{Max: 50, LastPage: true, With: jid.MustParse("contact3@example.org")}},
		{"text", storage.ArchiveQuery{Max: 50, LastPage: true, Text: "rare"}},
		{"middle", storage.ArchiveQuery{Max: 50}},
	}
	for _, backend := range storetest.Backends(b) {
		for _, n := range benchArchiveSizes() {
			b.Run(fmt.Sprintf("%s/n=%d", backend.Name, n), func(b *testing.B) {
				db := storetest.Open(b, backend)
				a := db.Archives()
				owner := jid.MustParse("alice@example.org")
				start := time.Now()
				loadBenchArchive(b, a, owner, 0, n)
				loadBenchArchive(b, a, jid.MustParse("bob@example.org"), 0, 1e4)
				b.Logf("loaded %d messages in %v", n+1e4, time.Since(start))
				for _, q := range queries {
					if q.name == "middle" {
						q.q.After = benchMessage(n / 2).ID
					}
					b.Run(q.name, func(b *testing.B) {
						for b.Loop() {
							page, err := a.Query(context.Background(), owner, q.q)
							if err != nil {
								b.Fatal(err)
							}
							if len(page.Messages) != 50 {
								b.Fatalf("%d messages, want 50", len(page.Messages))
							}
						}
					})
				}
			})
		}
	}
}
