// Package storetest gives tests a fresh, empty store on every database xmppd
// supports, so that one test body checks both SQLite and PostgreSQL: the
// storage tests use it, and so do the integration tests of the server.
//
// SQLite is always tested, in a temporary directory. PostgreSQL is tested
// when the environment variable XMPPD_TEST_POSTGRES holds a DSN, e.g.
//
//	XMPPD_TEST_POSTGRES='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go test ./...
//
// The DSN's user must be allowed to create databases: each test gets its own
// database, dropped when the test ends, so tests may run in parallel. Where
// the server can, that database sorts text by the en-US locale, so that a
// query relying on the database's default collation fails its test.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/xmppd/xmppd/config"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
)

// EnvPostgres names the environment variable with the DSN of a PostgreSQL
// server to test against; unset or empty, PostgreSQL is not tested.
const EnvPostgres = "XMPPD_TEST_POSTGRES"

// Backend is one kind of database to test against.
type Backend struct {
	// Name is "sqlite" or "postgres", short enough for a subtest name.
	Name string
	// postgres is the DSN from EnvPostgres, for the postgres backend.
	postgres string
}

// Backends returns the backends to test against: SQLite, and PostgreSQL
// when EnvPostgres is set. A set but unreachable PostgreSQL fails the test
// rather than skipping it, so that a broken setup is not taken for success.
func Backends(t testing.TB) []Backend {
	t.Helper()
	backends := []Backend{{Name: "sqlite"}}
	dsn := os.Getenv(EnvPostgres)
	if dsn == "" {
		return backends
	}
	db, err := sql.Open("postgres", dsn)
	if err == nil {
		err = db.Ping()
		db.Close()
	}
	if err != nil {
		t.Fatalf("storetest: %s is set but PostgreSQL is unreachable: %v", EnvPostgres, err)
	}
	return append(backends, Backend{Name: "postgres", postgres: dsn})
}

// Run runs f as a subtest named after each backend.
func Run(t *testing.T, f func(t *testing.T, b Backend)) {
	t.Helper()
	for _, b := range Backends(t) {
		t.Run(b.Name, func(t *testing.T) { f(t, b) })
	}
}

// Config creates a new, empty database of b and returns its configuration.
// The database is removed when t ends; close what uses it first (t.Cleanup
// functions registered later run earlier, so Open's Close does).
func (b Backend) Config(t testing.TB) config.Storage {
	t.Helper()
	if b.postgres == "" {
		return config.Storage{SQLite: filepath.Join(t.TempDir(), "xmppd.db")}
	}
	return config.Storage{Postgres: newPostgresDatabase(t, b.postgres)}
}

// Open returns a migrated store on a new, empty database of b, closed and
// removed when t ends.
func Open(t testing.TB, b Backend) *sqlstore.DB {
	t.Helper()
	cfg := b.Config(t)
	db, err := sqlstore.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

// newPostgresDatabase creates a database on the server of dsn, drops it when
// t ends, and returns a DSN for it.
func newPostgresDatabase(t testing.TB, dsn string) string {
	t.Helper()
	name := "xmppd_test_" + strings.ToLower(rand.Text()[:16])
	admin, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A linguistic collation, as production databases often have, so that
	// a query relying on the default order fails here, not in production.
	// ICU locales need PostgreSQL 15 built with ICU; else the default will do.
	create := "CREATE DATABASE " + pq.QuoteIdentifier(name)
	if _, err := admin.ExecContext(ctx, create+" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"); err != nil {
		if _, err := admin.ExecContext(ctx, create); err != nil {
			admin.Close()
			t.Fatalf("storetest: create database %s: %v", name, err)
		}
	}
	t.Cleanup(func() {
		defer admin.Close()
		// FORCE ends connections a failed test left open (PostgreSQL 13+).
		_, err := admin.Exec("DROP DATABASE IF EXISTS " + pq.QuoteIdentifier(name) + " WITH (FORCE)")
		if err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
	})
	withName, err := withDatabase(dsn, name)
	if err != nil {
		t.Fatal(err)
	}
	return withName
}

// withDatabase returns dsn with its database name replaced, for both forms
// lib/pq accepts: a URL, or key=value pairs (where the last key wins).
func withDatabase(dsn, name string) (string, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " dbname=" + name, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("storetest: %s: %w", EnvPostgres, err)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}
