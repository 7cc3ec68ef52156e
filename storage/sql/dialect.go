package sqlstore

import (
	"errors"
	"strings"

	"github.com/lib/pq"
	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is what differs between PostgreSQL and SQLite. Everything else,
// the schema and every query, is the same text for both: placeholders are
// $1, $2, … (SQLite reads them as numbered parameters) and conflicts are
// handled with ON CONFLICT, which both support.
type dialect struct {
	// driver names the dialect: the database/sql driver's name, which
	// also marks the migrations for one dialect only.
	driver string
	// open is the driver connections are opened with: driver, or a
	// wrapper of it (stmtcache.go).
	open string
	// types replaces the {{…}} placeholders of the migrations:
	//
	//	{{TEXT}}  text compared and sorted bytewise (JIDs arrive normalised,
	//	          and List must sort the same on both databases)
	//	{{BLOB}}  binary data
	//	{{ID}}    a column that is the table's primary key and numbers its
	//	          rows in the order they were inserted, never reusing a number
	types *strings.Replacer
	// lockMigrations runs first in each migration transaction so that
	// processes starting at once apply every migration once. Empty when the
	// transaction already excludes other writers from its BEGIN.
	lockMigrations string
	// forUpdate ends a SELECT of a row that must not change or disappear
	// before the transaction ends. Empty when the transaction already holds
	// the write lock of the whole database.
	forUpdate string
	// archiveText is the condition of an archive query that keeps the
	// messages whose body has the words of its one "?" parameter, which
	// textQuery makes of the words asked for (migration 0005).
	archiveText string
	textQuery   func(words []string) string
}

var sqlite = dialect{
	driver: "sqlite",
	open:   cachingSQLite,
	types: strings.NewReplacer(
		"{{TEXT}}", "TEXT",
		"{{BLOB}}", "BLOB",
		// AUTOINCREMENT: without it SQLite reuses the number of the
		// last row once that row is deleted.
		"{{ID}}", "INTEGER PRIMARY KEY AUTOINCREMENT",
	),
	// Transactions are BEGIN IMMEDIATE (see sqliteParams).
	lockMigrations: "",
	forUpdate:      "",
	// FTS5's rowid is archive_messages.seq.
	archiveText: "seq IN (SELECT rowid FROM archive_text WHERE archive_text MATCH ?)",
	textQuery:   fts5Query,
}

// fts5Query makes an FTS5 query that matches every word as a string, so
// that nothing a user types is read as FTS5 syntax (AND, NEAR, *, ":").
func fts5Query(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = `"` + strings.ReplaceAll(w, `"`, `""`) + `"`
	}
	return strings.Join(quoted, " ")
}

// migrationLockKey identifies xmppd's migrations among the advisory locks of
// a PostgreSQL database; any constant would do ("xmppd" in ASCII).
const migrationLockKey = "517232160868"

var postgres = dialect{
	driver: "postgres",
	open:   "postgres",
	types: strings.NewReplacer(
		// Without COLLATE "C", PostgreSQL sorts by the database's locale.
		"{{TEXT}}", `TEXT COLLATE "C"`,
		"{{BLOB}}", "BYTEA",
		"{{ID}}", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
	),
	lockMigrations: "SELECT pg_advisory_xact_lock(" + migrationLockKey + ")",
	forUpdate:      " FOR UPDATE",
	// plainto_tsquery ANDs the words and reads no operators in them.
	archiveText: "body_tsv @@ plainto_tsquery('simple', ?)",
	textQuery:   func(words []string) string { return strings.Join(words, " ") },
}

// pqForeignKeyViolation is PostgreSQL's SQLSTATE for foreign_key_violation.
const pqForeignKeyViolation = "23503"

// isForeignKeyViolation reports whether err says that a row refers to one
// that does not exist, in either dialect: for per-account data, that the
// account does not exist.
func isForeignKeyViolation(err error) bool {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		return pqErr.Code == pqForeignKeyViolation
	}
	var sqliteErr *sqlitedriver.Error
	return errors.As(err, &sqliteErr) && sqliteErr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
