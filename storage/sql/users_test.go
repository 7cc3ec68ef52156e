package sqlstore_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
)

var (
	sha1Cred = storage.Credential{
		Mechanism: "SCRAM-SHA-1", Salt: []byte("salt-1"), Iterations: 4096,
		StoredKey: []byte{0, 1, 2, 0xff}, ServerKey: []byte{3, 4, 5},
	}
	sha256Cred = storage.Credential{
		Mechanism: "SCRAM-SHA-256", Salt: []byte("salt-256"), Iterations: 8192,
		StoredKey: []byte{0xfe, 0, 7}, ServerKey: []byte{9, 8, 7, 0},
	}
)

func TestCreateGet(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		users := storetest.Open(t, b).Users()
		ctx := context.Background()
		created := time.Date(2024, 2, 29, 12, 30, 45, 123456789, time.UTC)
		want := storage.User{
			Domain: "example.org", Local: "alice", Created: created,
			// Out of order: Get returns them sorted by mechanism.
			Credentials: []storage.Credential{sha256Cred, sha1Cred},
		}
		if err := users.Create(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := users.Get(ctx, "example.org", "alice")
		if err != nil {
			t.Fatal(err)
		}
		want.Created = created.Truncate(time.Microsecond)
		want.Credentials = []storage.Credential{sha1Cred, sha256Cred}
		checkUser(t, got, want)
	})
}

func TestCreateWithoutTimeOrCredentials(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		users := storetest.Open(t, b).Users()
		ctx := context.Background()
		before := time.Now().Truncate(time.Microsecond)
		if err := users.Create(ctx, storage.User{Domain: "example.org", Local: "bob"}); err != nil {
			t.Fatal(err)
		}
		got, err := users.Get(ctx, "example.org", "bob")
		if err != nil {
			t.Fatal(err)
		}
		if got.Created.Before(before) || got.Created.After(time.Now()) {
			t.Errorf("Created = %v, want the time of Create (after %v)", got.Created, before)
		}
		if len(got.Credentials) != 0 {
			t.Errorf("Credentials = %v, want none", got.Credentials)
		}
	})
}

func TestCreateExisting(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		users := storetest.Open(t, b).Users()
		ctx := context.Background()
		alice := storage.User{Domain: "example.org", Local: "alice", Credentials: []storage.Credential{sha1Cred}}
		if err := users.Create(ctx, alice); err != nil {
			t.Fatal(err)
		}
		again := alice
		again.Credentials = []storage.Credential{sha256Cred}
		err := users.Create(ctx, again)
		if !errors.Is(err, storage.ErrExists) {
			t.Fatalf("second Create: err = %v, want ErrExists", err)
		}
		if !strings.Contains(err.Error(), "alice@example.org") {
			t.Errorf("error %q does not name the account", err)
		}
		// The failed Create left the account as it was.
		got, err := users.Get(ctx, "example.org", "alice")
		if err != nil {
			t.Fatal(err)
		}
		checkUser(t, got, storage.User{Domain: "example.org", Local: "alice", Created: got.Created,
			Credentials: []storage.Credential{sha1Cred}})
	})
}

// TestCreateAtomic checks that an account whose credentials cannot be
// stored is not created either.
func TestCreateAtomic(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		users := storetest.Open(t, b).Users()
		ctx := context.Background()
		twice := storage.User{Domain: "example.org", Local: "alice",
			Credentials: []storage.Credential{sha1Cred, sha1Cred}}
		if err := users.Create(ctx, twice); err == nil {
			t.Fatal("Create with one mechanism twice succeeded")
		}
		if _, err := users.Get(ctx, "example.org", "alice"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get after failed Create: err = %v, want ErrNotFound", err)
		}
	})
}

func TestNotFound(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		users := storetest.Open(t, b).Users()
		ctx := context.Background()
		// Same local part on another domain, same domain another local part.
		for _, u := range []storage.User{{Domain: "example.com", Local: "alice"}, {Domain: "example.org", Local: "bob"}} {
			if err := users.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			name string
			call func() error
		}{
			{"Get", func() error { _, err := users.Get(ctx, "example.org", "alice"); return err }},
			{"SetCredentials", func() error {
				return users.SetCredentials(ctx, "example.org", "alice", []storage.Credential{sha1Cred})
			}},
			{"Delete", func() error { return users.Delete(ctx, "example.org", "alice") }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.call()
				if !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound", err)
				}
				if !strings.Contains(err.Error(), "alice@example.org") {
					t.Errorf("error %q does not name the account", err)
				}
			})
		}
	})
}

func TestSetCredentials(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		users := storetest.Open(t, b).Users()
		ctx := context.Background()
		if err := users.Create(ctx, storage.User{Domain: "example.org", Local: "alice",
			Credentials: []storage.Credential{sha1Cred}}); err != nil {
			t.Fatal(err)
		}
		rotated := sha1Cred
		rotated.Salt, rotated.Iterations = []byte("new salt"), 10000
		tests := []struct {
			name string
			set  []storage.Credential
		}{
			{"add", []storage.Credential{sha1Cred, sha256Cred}},
			{"replace and drop", []storage.Credential{rotated}},
			{"clear", nil},
			{"set again", []storage.Credential{sha256Cred}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := users.SetCredentials(ctx, "example.org", "alice", tt.set); err != nil {
					t.Fatal(err)
				}
				got, err := users.Get(ctx, "example.org", "alice")
				if err != nil {
					t.Fatal(err)
				}
				checkCredentials(t, got.Credentials, tt.set)
			})
		}
	})
}

// TestDeleteCascades checks that the database removes an account's
// credentials with it: an account created again under the same name must
// not inherit them.
func TestDeleteCascades(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		users := storetest.Open(t, b).Users()
		ctx := context.Background()
		alice := storage.User{Domain: "example.org", Local: "alice",
			Credentials: []storage.Credential{sha1Cred, sha256Cred}}
		if err := users.Create(ctx, alice); err != nil {
			t.Fatal(err)
		}
		if err := users.Delete(ctx, "example.org", "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := users.Get(ctx, "example.org", "alice"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
		}
		if err := users.Create(ctx, storage.User{Domain: "example.org", Local: "alice"}); err != nil {
			t.Fatal(err)
		}
		got, err := users.Get(ctx, "example.org", "alice")
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Credentials) != 0 {
			t.Errorf("credentials survived Delete: %v", got.Credentials)
		}
	})
}

func TestList(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		users := storetest.Open(t, b).Users()
		ctx := context.Background()
		// Bytewise order: upper case before lower case before non-ASCII,
		// whatever the database's locale says.
		accounts := []string{"émile@b.example", "alice@b.example", "Zoe@b.example", "bob@a.example", "carol@c.example"}
		for _, jid := range accounts {
			local, domain, _ := strings.Cut(jid, "@")
			u := storage.User{Domain: domain, Local: local, Credentials: []storage.Credential{sha1Cred}}
			if err := users.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			domain string
			want   []string
		}{
			{"", []string{"bob@a.example", "Zoe@b.example", "alice@b.example", "émile@b.example", "carol@c.example"}},
			{"b.example", []string{"Zoe@b.example", "alice@b.example", "émile@b.example"}},
			{"a.example", []string{"bob@a.example"}},
			{"nobody.example", nil},
		}
		for _, tt := range tests {
			t.Run("domain="+tt.domain, func(t *testing.T) {
				list, err := users.List(ctx, tt.domain)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, u := range list {
					got = append(got, u.Local+"@"+u.Domain)
					if u.Credentials != nil {
						t.Errorf("%s@%s: List filled Credentials", u.Local, u.Domain)
					}
					if u.Created.IsZero() {
						t.Errorf("%s@%s: List left Created zero", u.Local, u.Domain)
					}
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("List(%q) = %q, want %q", tt.domain, got, tt.want)
				}
			})
		}
	})
}

// TestConcurrentCreate checks that the database, not a lookup before the
// insert, decides a race: exactly one Create of an account succeeds.
func TestConcurrentCreate(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		users := storetest.Open(t, b).Users()
		ctx := context.Background()
		const racers = 8
		errs := make([]error, racers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			wg.Go(func() {
				<-start
				errs[i] = users.Create(ctx, storage.User{Domain: "example.org", Local: "alice",
					Credentials: []storage.Credential{sha1Cred, sha256Cred}})
			})
		}
		close(start)
		wg.Wait()
		created := 0
		for _, err := range errs {
			switch {
			case err == nil:
				created++
			case !errors.Is(err, storage.ErrExists):
				t.Errorf("Create: err = %v, want nil or ErrExists", err)
			}
		}
		if created != 1 {
			t.Errorf("%d of %d concurrent Creates succeeded, want 1", created, racers)
		}
		got, err := users.Get(ctx, "example.org", "alice")
		if err != nil {
			t.Fatal(err)
		}
		checkCredentials(t, got.Credentials, []storage.Credential{sha1Cred, sha256Cred})
	})
}

func checkUser(t *testing.T, got, want storage.User) {
	t.Helper()
	if got.Domain != want.Domain || got.Local != want.Local || !got.Created.Equal(want.Created) {
		t.Errorf("got %s@%s created %v, want %s@%s created %v",
			got.Local, got.Domain, got.Created, want.Local, want.Domain, want.Created)
	}
	checkCredentials(t, got.Credentials, want.Credentials)
}

// checkCredentials compares credentials in mechanism order.
func checkCredentials(t *testing.T, got, want []storage.Credential) {
	t.Helper()
	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b storage.Credential) int { return strings.Compare(a.Mechanism, b.Mechanism) })
	equal := slices.EqualFunc(got, want, func(a, b storage.Credential) bool {
		return a.Mechanism == b.Mechanism && a.Iterations == b.Iterations &&
			string(a.Salt) == string(b.Salt) && string(a.StoredKey) == string(b.StoredKey) &&
			string(a.ServerKey) == string(b.ServerKey)
	})
	if !equal {
		t.Errorf("credentials = %+v, want %+v", got, want)
	}
}
