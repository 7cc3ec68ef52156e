package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// migrationFiles are the schema changes, in files named NNNN_what.sql.
// A migration is never edited once released: a change is a new file. The
// SQL runs on both dialects, with the {{…}} types described at dialect.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one schema change.
type migration struct {
	version int
	name    string // the file name, for errors
	sql     string
}

// createMigrationsTable records which migrations a database has had.
const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	applied_at BIGINT NOT NULL
)`

// Migrate applies the migrations the database has not had yet, each in its
// own transaction, and says how many it applied. It is safe to run from
// several processes at once: each migration is applied by one of them.
func (db *DB) Migrate(ctx context.Context) (applied int, err error) {
	migrations, err := loadMigrations(migrationFiles)
	if err != nil {
		return 0, fmt.Errorf("storage: migrate: %w", err)
	}
	for _, m := range migrations {
		done, err := db.apply(ctx, m)
		if err != nil {
			return applied, fmt.Errorf("storage: migrate %s: %w", m.name, err)
		}
		if done {
			applied++
		}
	}
	return applied, nil
}

// apply applies m unless the database has had it, and says whether it did.
func (db *DB) apply(ctx context.Context, m migration) (applied bool, err error) {
	schema, err := rewriteTypes(db.dialect, m.sql)
	if err != nil {
		return false, err
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		if db.dialect.lockMigrations != "" {
			if _, err := tx.ExecContext(ctx, db.dialect.lockMigrations); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
			return err
		}
		var n int
		err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, m.version).Scan(&n)
		if err != nil || n > 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, schema); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`,
			m.version, time.Now().UnixMicro())
		applied = true
		return err
	})
	if err != nil {
		return false, err
	}
	return applied, nil
}

// rewriteTypes replaces the {{…}} types in a migration by the dialect's.
func rewriteTypes(d dialect, schema string) (string, error) {
	out := d.types.Replace(schema)
	if _, rest, found := strings.Cut(out, "{{"); found {
		name, _, _ := strings.Cut(rest, "}}")
		return "", fmt.Errorf("unknown type {{%s}}", name)
	}
	return out, nil
}

// loadMigrations reads the migrations in fsys, ordered by version.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var migrations []migration
	for _, name := range names {
		base := path.Base(name)
		number, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(number)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("%s: name must be NNNN_what.sql", name)
		}
		text, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		migrations = append(migrations, migration{version: version, name: base, sql: string(text)})
	}
	slices.SortFunc(migrations, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(migrations); i++ {
		if migrations[i].version == migrations[i-1].version {
			return nil, fmt.Errorf("%s and %s have the same version", migrations[i-1].name, migrations[i].name)
		}
	}
	return migrations, nil
}
