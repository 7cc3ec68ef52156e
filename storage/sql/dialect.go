package sqlstore

import "strings"

// dialect is what differs between PostgreSQL and SQLite. Everything else,
// the schema and every query, is the same text for both: placeholders are
// $1, $2, … (SQLite reads them as numbered parameters) and conflicts are
// handled with ON CONFLICT, which both support.
type dialect struct {
	// driver is the database/sql driver name.
	driver string
	// types replaces the {{…}} placeholders of the migrations:
	//
	//	{{TEXT}}  text compared and sorted bytewise (JIDs arrive normalised,
	//	          and List must sort the same on both databases)
	//	{{BLOB}}  binary data
	types *strings.Replacer
	// lockMigrations runs first in each migration transaction so that
	// processes starting at once apply every migration once. Empty when the
	// transaction already excludes other writers from its BEGIN.
	lockMigrations string
	// forUpdate ends a SELECT of a row that must not change or disappear
	// before the transaction ends. Empty when the transaction already holds
	// the write lock of the whole database.
	forUpdate string
}

var sqlite = dialect{
	driver: "sqlite",
	types: strings.NewReplacer(
		"{{TEXT}}", "TEXT",
		"{{BLOB}}", "BLOB",
	),
	// Transactions are BEGIN IMMEDIATE (see sqliteParams).
	lockMigrations: "",
	forUpdate:      "",
}

// migrationLockKey identifies xmppd's migrations among the advisory locks of
// a PostgreSQL database; any constant would do ("xmppd" in ASCII).
const migrationLockKey = "517232160868"

var postgres = dialect{
	driver: "postgres",
	types: strings.NewReplacer(
		// Without COLLATE "C", PostgreSQL sorts by the database's locale.
		"{{TEXT}}", `TEXT COLLATE "C"`,
		"{{BLOB}}", "BYTEA",
	),
	lockMigrations: "SELECT pg_advisory_xact_lock(" + migrationLockKey + ")",
	forUpdate:      " FOR UPDATE",
}
