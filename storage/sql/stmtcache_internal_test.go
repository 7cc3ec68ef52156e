package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// openCaching opens a SQLite database on one connection of the caching
// driver, so that every query of a test meets the same cache.
func openCaching(t *testing.T) (*sql.DB, *cachingConn) {
	t.Helper()
	db, err := sql.Open(cachingSQLite, filepath.Join(t.TempDir(), "cache.db")+sqliteParams)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := db.ExecContext(ctx, `INSERT INTO t (k, v) VALUES ($1, $2)`, i, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	var cc *cachingConn
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Raw(func(dc any) error { cc = dc.(*cachingConn); return nil }); err != nil {
		t.Fatal(err)
	}
	c.Close()
	return db, cc
}

// valuesOf returns a function that reads a query's one column and returns
// its values joined, failing t on an error.
func valuesOf(t *testing.T) func(*sql.Rows, error) string {
	return func(rows *sql.Rows, err error) string {
		t.Helper()
		return values(t, rows, err)
	}
}

func values(t *testing.T, rows *sql.Rows, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, ",")
}

// TestStmtCacheNested runs a cached query again while its first rows are
// still being read, in one transaction and so on one connection: the
// second run must not reset the first one's statement.
func TestStmtCacheNested(t *testing.T) {
	db, cc := openCaching(t)
	ctx := context.Background()
	vals := valuesOf(t)
	const q = `SELECT v FROM t WHERE k >= $1 ORDER BY k`
	if got := vals(db.QueryContext(ctx, q, 0)); got != "v0,v1,v2" {
		t.Fatalf("first run: %q", got)
	}
	if _, ok := cc.stmts[q]; !ok {
		t.Fatalf("query not cached: %v", cc.stmts)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	outer, err := tx.QueryContext(ctx, q, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for outer.Next() {
		var v string
		if err := outer.Scan(&v); err != nil {
			t.Fatal(err)
		}
		inner := vals(tx.QueryContext(ctx, q, 2))
		got = append(got, v+"/"+inner)
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	outer.Close()
	if want := "v0/v2,v1/v2,v2/v2"; strings.Join(got, ",") != want {
		t.Fatalf("nested runs = %q, want %q", strings.Join(got, ","), want)
	}
	if cc.stmts[q].busy {
		t.Error("statement still busy after its rows were closed")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestStmtCacheBound fills the cache past its bound: the queries beyond it
// still run (uncached), and errors are the driver's.
func TestStmtCacheBound(t *testing.T) {
	db, cc := openCaching(t)
	ctx := context.Background()
	vals := valuesOf(t)
	for i := range stmtCacheSize + 10 {
		q := fmt.Sprintf(`SELECT v FROM t WHERE k = $1 AND %d = %d`, i, i)
		if got := vals(db.QueryContext(ctx, q, 1)); got != "v1" {
			t.Fatalf("query %d: %q", i, got)
		}
	}
	if len(cc.stmts) > stmtCacheSize {
		t.Errorf("%d statements cached, bound %d", len(cc.stmts), stmtCacheSize)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO nosuchtable VALUES ($1)`, 1); err == nil || !strings.Contains(err.Error(), "nosuchtable") {
		t.Errorf("exec on a missing table: %v", err)
	}
	// A script of several statements runs whole.
	if _, err := db.ExecContext(ctx, `UPDATE t SET v = 'a' WHERE k = 0; UPDATE t SET v = 'b' WHERE k = 1`); err != nil {
		t.Fatal(err)
	}
	if got := vals(db.QueryContext(ctx, `SELECT v FROM t WHERE k < $1 ORDER BY k`, 2)); got != "a,b" {
		t.Errorf("after the script: %q", got)
	}
}
