package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"

	sqlitedriver "modernc.org/sqlite"
)

// cachingSQLite is the driver name under which SQLite connections keep
// their prepared statements. database/sql's Query and Exec on a
// connection hand the driver the query text, and modernc.org/sqlite
// parses and plans it anew each time: for a login, which runs some twenty
// small queries, SQLite's parser was 7 % of the whole process's CPU
// (BenchmarkC2SLogin, docs/PERFORMANCE.md). A *sql.Stmt per query would
// avoid that too, but each call site would have to hold one, and a
// statement used inside a transaction is prepared again for it; the
// cache below serves every query of the package, in or out of a
// transaction, with no change to the call sites.
const cachingSQLite = "sqlite+stmtcache"

func init() { sql.Register(cachingSQLite, stmtCacheDriver{&sqlitedriver.Driver{}}) }

// stmtCacheSize bounds the statements one connection keeps. The package
// has fewer distinct query texts than this on its common paths; texts
// built at run time (IN lists of varying length, archive queries with
// their filters) past the bound are run without the cache.
const stmtCacheSize = 128

// stmtCacheDriver opens connections of the wrapped driver that cache
// their statements.
type stmtCacheDriver struct{ d driver.Driver }

func (d stmtCacheDriver) Open(name string) (driver.Conn, error) {
	c, err := d.d.Open(name)
	if err != nil {
		return nil, err
	}
	return newCachingConn(c)
}

// cachingConn is one SQLite connection with its prepared statements by
// query text. database/sql uses a connection from one goroutine at a time,
// so the map needs no lock; a statement whose rows are still open (a query
// run while another's results are being read, on the same connection in a
// transaction) is busy, and a query that needs it then runs uncached.
type cachingConn struct {
	c     conn
	stmts map[string]*cachedStmt
}

// conn is what cachingConn needs of the wrapped connection: what
// modernc.org/sqlite's connections implement.
type conn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// cachedStmt is a prepared statement and whether rows of it are open.
type cachedStmt struct {
	s    stmt
	busy bool
}

// stmt is what a cached statement must implement.
type stmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

var (
	_ conn = (*cachingConn)(nil)

	errNotCacheable = errors.New("sqlite driver: connection without context methods")
)

func newCachingConn(c driver.Conn) (*cachingConn, error) {
	cc, ok := c.(conn)
	if !ok {
		c.Close()
		return nil, errNotCacheable
	}
	return &cachingConn{c: cc, stmts: map[string]*cachedStmt{}}, nil
}

// statement returns the cached statement for query, preparing it on first
// use, or nil when the query is to run uncached (busy, cache full, or a
// text that does not prepare as one statement).
func (c *cachingConn) statement(ctx context.Context, query string) *cachedStmt {
	if cs, ok := c.stmts[query]; ok {
		if cs.busy {
			return nil
		}
		return cs
	}
	if len(c.stmts) >= stmtCacheSize {
		return nil
	}
	ds, err := c.c.PrepareContext(ctx, query)
	if err != nil {
		// Run uncached: the same call reports the error, with the
		// driver's own wording.
		return nil
	}
	s, ok := ds.(stmt)
	if !ok {
		ds.Close()
		return nil
	}
	cs := &cachedStmt{s: s}
	c.stmts[query] = cs
	return cs
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if cs := c.statement(ctx, query); cs != nil {
		return cs.s.ExecContext(ctx, args)
	}
	return c.c.ExecContext(ctx, query, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs := c.statement(ctx, query)
	if cs == nil {
		return c.c.QueryContext(ctx, query, args)
	}
	rows, err := cs.s.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	cs.busy = true
	return &cachedRows{Rows: rows, s: cs}, nil
}

// Close closes the cached statements, then the connection.
func (c *cachingConn) Close() error {
	var errs []error
	for q, cs := range c.stmts {
		errs = append(errs, cs.s.Close())
		delete(c.stmts, q)
	}
	errs = append(errs, c.c.Close())
	return errors.Join(errs...)
}

func (c *cachingConn) Prepare(query string) (driver.Stmt, error) { return c.c.Prepare(query) }

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.c.PrepareContext(ctx, query)
}

// Begin is driver.Conn's; database/sql calls BeginTx.
func (c *cachingConn) Begin() (driver.Tx, error) { return c.c.Begin() } //nolint:staticcheck // required by driver.Conn

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.c.BeginTx(ctx, opts)
}

func (c *cachingConn) Ping(ctx context.Context) error { return c.c.Ping(ctx) }

func (c *cachingConn) ResetSession(ctx context.Context) error { return c.c.ResetSession(ctx) }

func (c *cachingConn) IsValid() bool { return c.c.IsValid() }

// cachedRows are the rows of a cached statement, which is free again once
// they are closed (the driver resets the statement then).
type cachedRows struct {
	driver.Rows
	s *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.s.busy = false
	return err
}
