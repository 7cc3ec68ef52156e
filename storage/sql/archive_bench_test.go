package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
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
	stamp := archiveBase.Add(time.Duration(i) * time.Second)
	id := fmt.Sprintf("%016x%016x", stamp.UnixMicro(), i) // the form of storage.NewArchiveID
	return storage.ArchivedMessage{
		ID:     id,
		Stamp:  stamp,
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

// vacuum does what autovacuum does to a table after a bulk load, so that
// PostgreSQL's plans and index-only scans (COUNT) are those of a database
// in service: without it, each count visits every row of the table.
func vacuum(b *testing.B, dsn string) {
	b.Helper()
	conn, err := sql.Open("postgres", dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Exec("VACUUM ANALYZE archive_messages"); err != nil {
		b.Fatal(err)
	}
	b.Logf("VACUUM ANALYZE in %v", time.Since(start))
}

// BenchmarkArchiveQuery measures a 50-message page, with its count as the
// module asks for it (up to 10,000), in one archive of 10^4 messages (10^5
// and 10^6 with XMPPD_BENCH_ARCHIVE=1) beside another owner's: the last
// page, the last page with one of ten parties, the last page of a word in
// one message of ten, a page in the middle, and the exact count alone
// (max 0).
func BenchmarkArchiveQuery(b *testing.B) {
	queries := []struct {
		name string
		q    storage.ArchiveQuery
	}{
		{"last", storage.ArchiveQuery{Max: 50, LastPage: true, CountLimit: 10000}},
		{"with", storage.ArchiveQuery{Max: 50, LastPage: true, With: jid.MustParse("contact3@example.org"), CountLimit: 10000}},
		{"text", storage.ArchiveQuery{Max: 50, LastPage: true, Text: "rare", CountLimit: 10000}},
		{"middle", storage.ArchiveQuery{Max: 50, CountLimit: 10000}},
		{"count", storage.ArchiveQuery{}},
	}
	for _, backend := range storetest.Backends(b) {
		for _, n := range benchArchiveSizes() {
			b.Run(fmt.Sprintf("%s/n=%d", backend.Name, n), func(b *testing.B) {
				cfg := backend.Config(b)
				db, err := sqlstore.Open(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { db.Close() })
				a := db.Archives()
				owner := jid.MustParse("alice@example.org")
				start := time.Now()
				loadBenchArchive(b, a, owner, 0, n)
				loadBenchArchive(b, a, jid.MustParse("bob@example.org"), 0, 1e4)
				b.Logf("loaded %d messages in %v", n+1e4, time.Since(start))
				if cfg.Postgres != "" {
					vacuum(b, cfg.Postgres)
				}
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
							if want := min(q.q.Max, 50); len(page.Messages) != want {
								b.Fatalf("%d messages, want %d", len(page.Messages), want)
							}
						}
					})
				}
			})
		}
	}
}
