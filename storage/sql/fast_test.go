package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
)

// TestFastTokens checks FAST token storage (XEP-0484) step by step on
// both backends: a new token replaces an unused one, the used one stays
// until the newer is used, counts must grow, another agent's and another
// account's tokens are apart, revocation, a password change and deleting
// the account drop them.
func TestFastTokens(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		db, err := sqlstore.Open(ctx, b.Config(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		newAccounts(t, db, "alice@example.org", "bob@example.org")
		ft := db.FastTokens()
		now := time.Now().UTC().Truncate(time.Second)
		tok := func(local, agent, v string, expires time.Duration) storage.FastToken {
			return storage.FastToken{Domain: "example.org", Local: local, Agent: agent, Mechanism: "HT-SHA-256-NONE",
				ID: []byte(v), Expires: now.Add(expires)}
		}
		use := func(v string, count int64) func() error {
			return func() error { return ft.Use(ctx, "example.org", "alice", "a1", []byte(v), count) }
		}
		steps := []struct {
			name    string
			do      func() error
			wantErr error
			want    []string // alice's a1 tokens: id, used, count
		}{
			{"none", func() error { return nil }, nil, nil},
			{"issue", func() error { return ft.Issue(ctx, tok("alice", "a1", "t1", time.Hour)) }, nil, []string{"t1 false 0"}},
			{"issue replaces unused", func() error { return ft.Issue(ctx, tok("alice", "a1", "t2", 2*time.Hour)) }, nil, []string{"t2 false 0"}},
			{"use", use("t2", 0), nil, []string{"t2 true 0"}},
			{"rotate keeps used", func() error { return ft.Issue(ctx, tok("alice", "a1", "t3", 3*time.Hour)) }, nil,
				[]string{"t3 false 0", "t2 true 0"}},
			{"old one still works", use("t2", 5), nil, []string{"t3 false 0", "t2 true 5"}},
			{"count replayed", use("t2", 5), storage.ErrReplay, []string{"t3 false 0", "t2 true 5"}},
			{"count lower", use("t2", 4), storage.ErrReplay, []string{"t3 false 0", "t2 true 5"}},
			{"new one used drops older", use("t3", 1), nil, []string{"t3 true 1"}},
			{"gone", use("t2", 9), storage.ErrNotFound, []string{"t3 true 1"}},
			{"other agent and account", func() error {
				if err := ft.Issue(ctx, tok("alice", "a2", "x", time.Hour)); err != nil {
					return err
				}
				return ft.Issue(ctx, tok("bob", "a1", "y", time.Hour))
			}, nil, []string{"t3 true 1"}},
			{"no account", func() error { return ft.Issue(ctx, tok("nobody", "a1", "z", time.Hour)) }, storage.ErrNotFound, []string{"t3 true 1"}},
			{"revoke", func() error { return ft.Revoke(ctx, "example.org", "alice", "a1") }, nil, nil},
		}
		for _, step := range steps {
			t.Run(step.name, func(t *testing.T) {
				if err := step.do(); !errors.Is(err, step.wantErr) || (err != nil) != (step.wantErr != nil) {
					t.Fatalf("err = %v, want %v", err, step.wantErr)
				}
				checkTokens(t, ft, "alice", "a1", step.want)
			})
		}
		checkTokens(t, ft, "alice", "a2", []string{"x false 0"})
		checkTokens(t, ft, "bob", "a1", []string{"y false 0"})
		got, _ := ft.Tokens(ctx, "example.org", "bob", "a1")
		if len(got) != 1 || !bytes.Equal(got[0].ID, []byte("y")) || !got[0].Expires.Equal(now.Add(time.Hour)) || got[0].Mechanism != "HT-SHA-256-NONE" {
			t.Errorf("bob's token read back as %+v", got)
		}
		if err := db.Users().SetCredentials(ctx, "example.org", "alice", nil); err != nil {
			t.Fatal(err)
		}
		checkTokens(t, ft, "alice", "a2", nil)
		if err := db.Users().Delete(ctx, "example.org", "bob"); err != nil {
			t.Fatal(err)
		}
		checkTokens(t, ft, "bob", "a1", nil)
	})
}

func checkTokens(t *testing.T, ft storage.FastTokens, local, agent string, want []string) {
	t.Helper()
	list, err := ft.Tokens(context.Background(), "example.org", local, agent)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range list {
		got = append(got, fmt.Sprintf("%s %v %d", tk.ID, tk.Used, tk.Count))
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s's %s tokens %q, want %q", local, agent, got, want)
	}
}

// TestSecrets checks that a server secret is made once and then the same
// for every caller, also after reopening, and apart per name.
func TestSecrets(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		cfg := b.Config(t)
		db, err := sqlstore.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		a, err := db.Secrets().Secret(ctx, "a")
		if err != nil || len(a) != 32 {
			t.Fatalf("secret a: %x, %v", a, err)
		}
		other, _ := db.Secrets().Secret(ctx, "b")
		if bytes.Equal(a, other) {
			t.Error("two names gave one secret")
		}
		db.Close()
		db, err = sqlstore.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if again, err := db.Secrets().Secret(ctx, "a"); err != nil || !bytes.Equal(again, a) {
			t.Errorf("secret a after reopening: %x, %v; want %x", again, err, a)
		}
	})
}
