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
// SQL runs on both dialects, with the {{…}} types described at dialect,
// except in a migration made of files NNNN_what.<driver>.sql, one per
// dialect (dialects), each run only on its own.
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
	migrations, err := loadMigrations(migrationFiles, db.dialect.driver)
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

// dialects are the drivers a migration file may be named for.
var dialects = []string{sqlite.driver, postgres.driver}

// loadMigrations reads the migrations in fsys that run on driver, ordered
// by version. A version is either one file for every dialect or one file
// per dialect, so that no dialect misses a change.
func loadMigrations(fsys fs.FS, driver string) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var migrations []migration
	// perDialect counts the dialect-specific files of each version.
	perDialect := map[int][]string{}
	for _, name := range names {
		base := path.Base(name)
		number, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(number)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("%s: name must be NNNN_what.sql or NNNN_what.<dialect>.sql", name)
		}
		only := fileDialect(base)
		if only != "" {
			if !slices.Contains(dialects, only) {
				return nil, fmt.Errorf("%s: unknown dialect %q (want one of %v)", name, only, dialects)
			}
			if slices.Contains(perDialect[version], only) {
				return nil, fmt.Errorf("%s: version %d has two files for %s", name, version, only)
			}
			perDialect[version] = append(perDialect[version], only)
			if only != driver {
				continue
			}
		}
		text, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		migrations = append(migrations, migration{version: version, name: base, sql: string(text)})
	}
	for version, have := range perDialect {
		if len(have) != len(dialects) {
			return nil, fmt.Errorf("version %d has files for %v only; it needs one for each of %v", version, have, dialects)
		}
	}
	slices.SortFunc(migrations, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(migrations); i++ {
		if migrations[i].version == migrations[i-1].version {
			return nil, fmt.Errorf("%s and %s have the same version", migrations[i-1].name, migrations[i].name)
		}
	}
	return migrations, nil
}

// fileDialect returns the dialect a migration file is named for, "" for a
// file that runs on every dialect: the "postgres" of 0005_x.postgres.sql.
func fileDialect(base string) string {
	stem := strings.TrimSuffix(base, ".sql")
	if i := strings.LastIndexByte(stem, '.'); i >= 0 {
		return stem[i+1:]
	}
	return ""
}
