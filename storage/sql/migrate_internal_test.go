package sqlstore

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// TestMigrationFiles checks the embedded migrations: well named, and free
// of types neither dialect knows.
func TestMigrationFiles(t *testing.T) {
	for _, d := range []dialect{sqlite, postgres} {
		migrations, err := loadMigrations(migrationFiles, d.driver)
		if err != nil {
			t.Fatal(err)
		}
		if len(migrations) == 0 {
			t.Fatal("no migrations embedded")
		}
		for _, m := range migrations {
			if _, err := rewriteTypes(d, m.sql); err != nil {
				t.Errorf("%s for %s: %v", m.name, d.driver, err)
			}
		}
	}
}

func TestLoadMigrations(t *testing.T) {
	file := func(text string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(text)} }
	tests := []struct {
		name     string
		files    fstest.MapFS
		versions []int
		names    []string // for sqlite, when set
		err      string
	}{
		{
			name: "one file per dialect",
			files: fstest.MapFS{
				"migrations/0001_a.sql":          file(""),
				"migrations/0002_b.postgres.sql": file(""),
				"migrations/0002_b.sqlite.sql":   file(""),
				"migrations/0003_c.sql":          file(""),
			},
			versions: []int{1, 2, 3},
			names:    []string{"0001_a.sql", "0002_b.sqlite.sql", "0003_c.sql"},
		},
		{
			name:  "a dialect missing",
			files: fstest.MapFS{"migrations/0002_b.postgres.sql": file("")},
			err:   "needs one for each",
		},
		{
			name:  "unknown dialect",
			files: fstest.MapFS{"migrations/0002_b.mysql.sql": file("")},
			err:   "unknown dialect",
		},
		{
			name: "shared and dialect file of one version",
			files: fstest.MapFS{
				"migrations/0002_a.sql":          file(""),
				"migrations/0002_b.postgres.sql": file(""),
				"migrations/0002_b.sqlite.sql":   file(""),
			},
			err: "same version",
		},
		{
			name: "ordered by number, not by name",
			files: fstest.MapFS{
				"migrations/10_later.sql":    file("B"),
				"migrations/0002_second.sql": file("A"),
				"migrations/README.md":       file("not a migration"),
			},
			versions: []int{2, 10},
		},
		{
			name:  "no number",
			files: fstest.MapFS{"migrations/users.sql": file("")},
			err:   "NNNN_what.sql",
		},
		{
			name:  "version zero",
			files: fstest.MapFS{"migrations/0000_nothing.sql": file("")},
			err:   "NNNN_what.sql",
		},
		{
			name: "same version twice",
			files: fstest.MapFS{
				"migrations/0003_a.sql": file(""),
				"migrations/3_b.sql":    file(""),
			},
			err: "same version",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			migrations, err := loadMigrations(tt.files, sqlite.driver)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var versions []int
			var names []string
			for _, m := range migrations {
				versions = append(versions, m.version)
				names = append(names, m.name)
			}
			if !slices.Equal(versions, tt.versions) {
				t.Errorf("versions = %v, want %v", versions, tt.versions)
			}
			if tt.names != nil && !slices.Equal(names, tt.names) {
				t.Errorf("names = %v, want %v", names, tt.names)
			}
		})
	}
}

func TestRewriteTypes(t *testing.T) {
	tests := []struct {
		d    dialect
		in   string
		want string
		err  string
	}{
		{d: sqlite, in: "a {{TEXT}}, b {{BLOB}}", want: "a TEXT, b BLOB"},
		{d: postgres, in: "a {{TEXT}}, b {{BLOB}}", want: `a TEXT COLLATE "C", b BYTEA`},
		{d: postgres, in: "a {{TIMESTAMP}}", err: "{{TIMESTAMP}}"},
	}
	for _, tt := range tests {
		got, err := rewriteTypes(tt.d, tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: rewriteTypes(%q) err = %v, want one containing %q", tt.d.driver, tt.in, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("%s: rewriteTypes(%q) = %q, %v; want %q", tt.d.driver, tt.in, got, err, tt.want)
		}
	}
}
