package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

// TestIsolated checks that every Open gives a database of its own, which
// is what lets tests run in parallel.
func TestIsolated(t *testing.T) {
	Run(t, func(t *testing.T, b Backend) {
		ctx := context.Background()
		one, other := Open(t, b).Users(), Open(t, b).Users()
		if err := one.Create(ctx, storage.User{Domain: "example.org", Local: "alice"}); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Get(ctx, "example.org", "alice"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("account created in one database: Get in another: err = %v, want ErrNotFound", err)
		}
	})
}

func TestWithDatabase(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "postgres://postgres@127.0.0.1:5432/fresh?sslmode=disable"},
		{"postgresql://u:p%40ss@db.example/", "postgresql://u:p%40ss@db.example/fresh"},
		{"postgres://localhost", "postgres://localhost/fresh"},
		{"host=127.0.0.1 dbname=test sslmode=disable", "host=127.0.0.1 dbname=test sslmode=disable dbname=fresh"},
	}
	for _, tt := range tests {
		got, err := withDatabase(tt.dsn, "fresh")
		if err != nil || got != tt.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tt.dsn, got, err, tt.want)
		}
	}
}
