package sqlstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
)

// openDB opens the database of cfg, applying pending migrations, or fails
// t. The caller closes it.
func openDB(t *testing.T, cfg config.Storage) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestOpenConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  config.Storage
	}{
		{"none", config.Storage{}},
		{"both", config.Storage{SQLite: filepath.Join(dir, "x.db"), Postgres: "postgres://127.0.0.1/x"}},
		{"query in sqlite path", config.Storage{SQLite: filepath.Join(dir, "x.db?mode=ro")}},
		{"sqlite URI", config.Storage{SQLite: "file:" + filepath.Join(dir, "x.db")}},
		{"sqlite in memory", config.Storage{SQLite: ":memory:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := sqlstore.Open(context.Background(), tt.cfg)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
}

// TestSQLiteFile checks that Open creates the directories of a new SQLite
// file, keeps the file, which holds SCRAM keys, private, and puts it in WAL
// mode, so that the CLI can write while the server runs.
func TestSQLiteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "sub", "xmppd.db")
	db := openDB(t, config.Storage{SQLite: path})
	defer db.Close()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("%s has mode %v, want no access for group and others", path, perm)
	}
	header, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Bytes 18 and 19 of the header are 2 in WAL mode (sqlite.org/fileformat.html).
	if len(header) < 20 || header[18] != 2 || header[19] != 2 {
		t.Errorf("%s is not in WAL mode", path)
	}
}

func TestMigrateIdempotent(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		db, err := sqlstore.Connect(ctx, b.Config(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		applied, err := db.Migrate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if applied == 0 {
			t.Error("first Migrate applied nothing")
		}
		for range 2 {
			applied, err = db.Migrate(ctx)
			if err != nil || applied != 0 {
				t.Errorf("Migrate again = %d, %v; want 0, nil", applied, err)
			}
		}
	})
}

// TestConcurrentOpen starts several servers on one new database at once:
// each migration must be applied once, and every Open succeed.
func TestConcurrentOpen(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		cfg := b.Config(t)
		const servers = 4
		dbs := make([]*sqlstore.DB, servers)
		applied := make([]int, servers)
		errs := make([]error, servers)
		var wg sync.WaitGroup
		for i := range servers {
			wg.Go(func() {
				dbs[i], errs[i] = sqlstore.Connect(ctx, cfg)
				if errs[i] == nil {
					applied[i], errs[i] = dbs[i].Migrate(ctx)
				}
			})
		}
		wg.Wait()
		total := 0
		for i := range servers {
			if dbs[i] != nil {
				defer dbs[i].Close()
			}
			if errs[i] != nil {
				t.Errorf("server %d: %v", i, errs[i])
			}
			total += applied[i]
		}
		// As many as a database of its own needs.
		alone, err := sqlstore.Connect(ctx, b.Config(t))
		if err != nil {
			t.Fatal(err)
		}
		defer alone.Close()
		want, err := alone.Migrate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if total != want {
			t.Errorf("servers applied %d migrations in all, want %d", total, want)
		}
	})
}

// TestReopen checks that data is in the database, not in the DB value.
func TestReopen(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		cfg := b.Config(t)
		db := openDB(t, cfg)
		alice := storage.User{Domain: "example.org", Local: "alice", Credentials: []storage.Credential{sha1Cred}}
		if err := db.Users().Create(ctx, alice); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}

		db = openDB(t, cfg)
		defer db.Close()
		got, err := db.Users().Get(ctx, "example.org", "alice")
		if err != nil {
			t.Fatal(err)
		}
		checkCredentials(t, got.Credentials, alice.Credentials)
		if err := db.Users().Create(ctx, alice); !errors.Is(err, storage.ErrExists) {
			t.Errorf("Create after reopen: err = %v, want ErrExists", err)
		}
	})
}
