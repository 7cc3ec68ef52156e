package sqlstore

import (
	"sync/atomic"
	"time"
)

// Operations an Observer is told about. Transactions cover every write
// (each store's writes run in one) and the multi-statement reads; the
// named operations are the ones on the paths users wait on: the archive
// write before a message is delivered, an archive page, the account read
// of every login.
const (
	OpWrite         = "write"          // a read-write transaction, commit included
	OpRead          = "read"           // a read-only transaction
	OpArchiveAppend = "archive_append" // storage.Archives.Append, one batch
	OpArchiveQuery  = "archive_query"  // storage.Archives.Query, one page
	OpUserGet       = "user_get"       // storage.Users.Get, on every login
)

// Observer is told how long each operation took, whether it succeeded or
// not, so that the metrics endpoint can keep latency histograms without
// this package knowing about metrics. It is called on the goroutine that
// ran the operation and must be cheap and safe for concurrent use.
type Observer func(op string, d time.Duration)

// observer is the DB's Observer, if any; a pointer so that setting it
// races with nothing and an unset one costs a load.
type observer struct{ fn atomic.Pointer[Observer] }

// SetObserver makes o the observer of every later operation (nil: none).
func (db *DB) SetObserver(o Observer) {
	if o == nil {
		db.obs.fn.Store(nil)
		return
	}
	db.obs.fn.Store(&o)
}

// observe reports the operation op that began at start, if someone listens.
func (db *DB) observe(op string, start time.Time) {
	if fn := db.obs.fn.Load(); fn != nil {
		(*fn)(op, time.Since(start))
	}
}
