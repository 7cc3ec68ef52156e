// Package sqlstore implements every storage interface over database/sql, for
// PostgreSQL (github.com/lib/pq, for production) and SQLite
// (modernc.org/sqlite, pure Go, the embedded default so that `xmppd serve`
// needs no setup). The two dialects share one schema and one set of queries;
// what differs between them is kept in dialect.go.
//
// The directory is storage/sql but the package is named sqlstore, so that
// files here and callers can import database/sql without renaming either.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/lib/pq"             // registers the "postgres" driver
	sqlitedriver "modernc.org/sqlite" // registers the "sqlite" driver too
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/storage"
)

// sqliteParams are set on every SQLite connection. WAL and a busy timeout
// let the CLI write (add a user, migrate) while the server runs; foreign
// keys are off by default in SQLite and the schema relies on them for
// cascading deletes; immediate transactions take the write lock at BEGIN,
// so a transaction never fails half-way because another writer got there
// first (every transaction in this package writes); temporary storage in
// memory keeps the statement journal of a multi-row INSERT (which SQLite
// writes so that a failed statement can be undone alone) out of a file:
// those writes were a fifth of the CPU of archiving.
const sqliteParams = "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)&_txlock=immediate"

// sqliteBusyWait is how long connecting waits for other connections that
// hold SQLite's lock, as busy_timeout in sqliteParams does for statements.
const sqliteBusyWait = 5 * time.Second

// DB is an open database holding everything xmppd keeps. It is safe for
// concurrent use.
type DB struct {
	sql     *sql.DB
	dialect dialect
	// stmts are the statements prepared once for the database (and by
	// database/sql once per connection), by their text: see prepared.
	stmts sync.Map
	// obs times operations for the metrics endpoint (observe.go).
	obs observer
}

var _ storage.Store = (*DB)(nil)

// Open connects to the database cfg selects and brings its schema up to
// date, so that the server can use it right away.
func Open(ctx context.Context, cfg config.Storage) (*DB, error) {
	db, err := Connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Connect connects to the database cfg selects without migrating it, for
// `xmppd db migrate`, which reports what Migrate applied. Everything else
// should use Open.
func Connect(ctx context.Context, cfg config.Storage) (*DB, error) {
	switch {
	case cfg.SQLite != "" && cfg.Postgres != "":
		return nil, errors.New("storage: both sqlite and postgres are set; choose one")
	case cfg.SQLite != "":
		return connectSQLite(ctx, cfg.SQLite)
	case cfg.Postgres != "":
		return connectPostgres(ctx, cfg.Postgres)
	default:
		return nil, errors.New("storage: neither sqlite nor postgres is set")
	}
}

func connectSQLite(ctx context.Context, path string) (*DB, error) {
	// The driver reads everything after a '?' as its own parameters and
	// takes "file:" names as URIs; and each pooled connection would have an
	// in-memory database of its own.
	if strings.Contains(path, "?") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("storage: open sqlite %s: want the path of a file, without '?' or 'file:'", path)
	}
	if err := createPrivateFile(path); err != nil {
		return nil, fmt.Errorf("storage: open sqlite %s: %w", path, err)
	}
	db, err := connect(ctx, sqlite, path+sqliteParams)
	if err != nil {
		return nil, fmt.Errorf("storage: open sqlite %s: %w", path, err)
	}
	// SQLite has one writer at a time: more connections only wait on its
	// lock, each waiting one holding an OS thread. When 2000 clients left
	// at once, an unbounded pool took 11 s and 1,800 threads to record
	// their logouts; four connections took 1.7 s and 11 threads
	// (docs/PERFORMANCE.md). WAL still lets readers run beside the writer.
	db.sql.SetMaxOpenConns(sqliteMaxConns)
	return db, nil
}

// sqliteMaxConns bounds the SQLite connection pool.
const sqliteMaxConns = 4

func connectPostgres(ctx context.Context, dsn string) (*DB, error) {
	db, err := connect(ctx, postgres, dsn)
	if err != nil {
		// Not the DSN: it may hold a password.
		return nil, fmt.Errorf("storage: open postgres: %w", err)
	}
	// database/sql keeps 2 idle connections by default: under a burst
	// (100 clients sending their first messages, each loading a roster
	// and a blocklist) every query beyond them opened a connection, a
	// new PostgreSQL backend process, and closed it after, which made
	// the p99 of chat latency 1.7 s (docs/PERFORMANCE.md). A bounded pool
	// that stays open serves bursts at the speed of the queries, and
	// leaves most of PostgreSQL's default 100 connections to others.
	db.sql.SetMaxOpenConns(postgresMaxConns)
	db.sql.SetMaxIdleConns(postgresMaxConns)
	db.sql.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// postgresMaxConns bounds the PostgreSQL connection pool.
const postgresMaxConns = 16

// createPrivateFile creates the SQLite file and its directory, readable by
// the owner only, unless it exists. The file holds SCRAM keys, which allow
// offline guessing of passwords; SQLite gives its -wal and -shm files the
// main file's permissions.
func createPrivateFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

func connect(ctx context.Context, d dialect, dsn string) (*DB, error) {
	db, err := sql.Open(d.open, dsn)
	if err != nil {
		return nil, err
	}
	if err := ping(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return &DB{sql: db, dialect: d}, nil
}

// ping checks that db answers, retrying while SQLite says it is busy.
// Switching a new SQLite file to WAL needs its exclusive lock, and SQLite
// reports busy at once rather than wait with busy_timeout, so processes that
// open a new file at the same moment may be told so. Once one of them has
// switched the file, the switch is a no-op for every connection after.
func ping(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(sqliteBusyWait)
	for {
		err := db.PingContext(ctx)
		if !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY, of any extended kind.
func isBusy(err error) bool {
	var e *sqlitedriver.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// Users returns the accounts and their credentials.
func (db *DB) Users() storage.Users { return users{db} }

// Rosters returns the rosters and their versions.
func (db *DB) Rosters() storage.Rosters { return rosters{db} }

// SubscriptionRequests returns the unanswered subscription requests.
func (db *DB) SubscriptionRequests() storage.SubscriptionRequests { return subscriptionRequests{db} }

// Offline returns the offline message queues.
func (db *DB) Offline() storage.Offline { return offline{db} }

// Blocklists returns the blocklists.
func (db *DB) Blocklists() storage.Blocklists { return blocklists{db} }

// VCards returns the vCards.
func (db *DB) VCards() storage.VCards { return vcards{db} }

// PrivateXML returns the private XML storage.
func (db *DB) PrivateXML() storage.PrivateXML { return privateXML{db} }

// LastActivity returns the last logouts.
func (db *DB) LastActivity() storage.LastActivity { return lastActivity{db} }

// PushRegistrations returns the accounts' push registrations (XEP-0357).
func (db *DB) PushRegistrations() storage.PushRegistrations { return pushRegistrations{db} }

// Close closes the database's connections.
func (db *DB) Close() error {
	if err := db.sql.Close(); err != nil {
		return fmt.Errorf("storage: close %s: %w", db.dialect.driver, err)
	}
	return nil
}

// prepared returns query as a statement prepared on the database, made
// once: a statement run on every commit of a hot path is then parsed and
// planned once per connection, not each time.
func (db *DB) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := db.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := db.sql.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if old, loaded := db.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return old.(*sql.Stmt), nil
	}
	return st, nil
}

// inTx runs fn in a transaction and commits it if fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	defer db.observe(OpWrite, time.Now())
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
