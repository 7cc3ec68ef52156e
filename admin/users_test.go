package admin_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/credential"
)

// testConfig serves localhost and example.org.
func testConfig() *config.Config {
	cfg := config.Default()
	cfg.Hosts = []config.Host{{Domain: "localhost"}, {Domain: "example.org"}}
	return cfg
}

func TestParseAccount(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string // substring of the error
	}{
		{in: "alice@localhost", want: "alice@localhost"},
		{in: "Alice@LocalHost", want: "alice@localhost"},
		{in: "ALICE@EXAMPLE.ORG", want: "alice@example.org"},
		{in: "alice@localhost.", want: "alice@localhost"},     // RFC 7622 §3.2: the final dot goes
		{in: "\uff41lice@localhost", want: "alice@localhost"}, // fullwidth a, width-mapped
		{in: "Ωmega@localhost", want: "ωmega@localhost"},
		{in: "", wantErr: "invalid"},
		{in: "localhost", wantErr: "want user@domain"},
		{in: "alice@localhost/res", wantErr: "want user@domain"},
		{in: "@localhost", wantErr: "invalid JID"},
		{in: "alice@", wantErr: "invalid JID"},
		{in: "not a jid@@", wantErr: "invalid JID"},
		{in: "a b@localhost", wantErr: "invalid JID"},
		{in: "alice@example.com", wantErr: `domain "example.com" is not served`},
		{in: "alice@conference.localhost", wantErr: `domain "conference.localhost" is not served`},
	}
	u := admin.Users{Config: testConfig()}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			j, err := u.ParseAccount(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseAccount(%q) = %v, %v; want an error with %q", tt.in, j, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q is not one line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if j.String() != tt.want {
				t.Errorf("ParseAccount(%q) = %s, want %s", tt.in, j, tt.want)
			}
		})
	}
}

// verify reports whether password is accepted for the account by every
// stored credential, and checks that all of them agree.
func verify(t *testing.T, users storage.Users, domain, local, password string) bool {
	t.Helper()
	u, err := users.Get(context.Background(), domain, local)
	if err != nil {
		t.Fatalf("get %s@%s: %v", local, domain, err)
	}
	if len(u.Credentials) == 0 {
		t.Fatalf("%s@%s has no credentials", local, domain)
	}
	ok := credential.VerifyPlain(u.Credentials[0], password)
	for _, c := range u.Credentials[1:] {
		if credential.VerifyPlain(c, password) != ok {
			t.Errorf("%s credentials disagree with %s", c.Mechanism, u.Credentials[0].Mechanism)
		}
	}
	return ok
}

func TestUsers(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		db := storetest.Open(t, b)
		cfg := testConfig()
		cfg.Auth.ScramIterations = 5000
		u := admin.Users{Config: cfg, Users: db.Users()}

		j, err := u.Add(ctx, "Alice@LocalHost", "secret one")
		if err != nil {
			t.Fatal(err)
		}
		if j.String() != "alice@localhost" {
			t.Errorf("Add returned %s, want the normalised alice@localhost", j)
		}
		stored, err := db.Users().Get(ctx, "localhost", "alice")
		if err != nil {
			t.Fatalf("the account is not stored under its normal form: %v", err)
		}
		var mechs []string
		for _, c := range stored.Credentials {
			mechs = append(mechs, c.Mechanism)
			if c.Iterations != 5000 {
				t.Errorf("%s: %d iterations, want the configured 5000", c.Mechanism, c.Iterations)
			}
		}
		slices.Sort(mechs)
		if want := []string{credential.SHA1, credential.SHA256}; !slices.Equal(mechs, want) {
			t.Errorf("credentials for %q, want %q", mechs, want)
		}
		if !verify(t, db.Users(), "localhost", "alice", "secret one") {
			t.Error("the password does not verify")
		}
		if verify(t, db.Users(), "localhost", "alice", "secret two") {
			t.Error("a wrong password verifies")
		}

		// Errors, each of which leaves the store as it was.
		failures := []struct {
			name    string
			do      func() error
			wantErr string
		}{
			{"add again", func() error { _, err := u.Add(ctx, "alice@localhost", "x"); return err }, "user alice@localhost already exists"},
			{"add again, other spelling", func() error { _, err := u.Add(ctx, "ALICE@localhost", "x"); return err }, "user alice@localhost already exists"},
			{"add with empty password", func() error { _, err := u.Add(ctx, "bob@localhost", ""); return err }, "empty password"},
			{"add with a password PRECIS refuses", func() error { _, err := u.Add(ctx, "bob@localhost", "bell\a"); return err }, "credentials"},
			{"add on an unserved domain", func() error { _, err := u.Add(ctx, "bob@example.com", "x"); return err }, `"example.com" is not served`},
			{"add a full JID", func() error { _, err := u.Add(ctx, "bob@localhost/r", "x"); return err }, "want user@domain"},
			{"set password of a missing user", func() error { _, err := u.SetPassword(ctx, "bob@localhost", "x"); return err }, "user bob@localhost does not exist"},
			{"set an empty password", func() error { _, err := u.SetPassword(ctx, "alice@localhost", ""); return err }, "empty password"},
			{"delete a missing user", func() error { _, err := u.Delete(ctx, "bob@localhost"); return err }, "user bob@localhost does not exist"},
			{"delete on an unserved domain", func() error { _, err := u.Delete(ctx, "alice@example.com"); return err }, "not served"},
		}
		for _, f := range failures {
			err := f.do()
			if err == nil || !strings.Contains(err.Error(), f.wantErr) {
				t.Errorf("%s: err = %v, want %q", f.name, err, f.wantErr)
			}
		}
		if _, err := db.Users().Get(ctx, "localhost", "bob"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("bob exists after failed operations: %v", err)
		}
		if !verify(t, db.Users(), "localhost", "alice", "secret one") {
			t.Error("failed operations changed alice's password")
		}

		// Change the password.
		if j, err := u.SetPassword(ctx, "ALICE@localhost", "secret two"); err != nil || j.String() != "alice@localhost" {
			t.Fatalf("SetPassword = %s, %v", j, err)
		}
		if verify(t, db.Users(), "localhost", "alice", "secret one") {
			t.Error("the old password still verifies")
		}
		if !verify(t, db.Users(), "localhost", "alice", "secret two") {
			t.Error("the new password does not verify")
		}

		// List, sorted by domain then local part.
		for _, a := range []string{"zoe@localhost", "bob@localhost", "carol@example.org"} {
			if _, err := u.Add(ctx, a, "pw"); err != nil {
				t.Fatal(err)
			}
		}
		lists := []struct {
			domain  string
			want    []string
			wantErr string
		}{
			{domain: "", want: []string{"carol@example.org", "alice@localhost", "bob@localhost", "zoe@localhost"}},
			{domain: "localhost", want: []string{"alice@localhost", "bob@localhost", "zoe@localhost"}},
			{domain: "LocalHost", want: []string{"alice@localhost", "bob@localhost", "zoe@localhost"}},
			{domain: "example.org", want: []string{"carol@example.org"}},
			{domain: "example.com", wantErr: `"example.com" is not served`},
			{domain: "alice@localhost", wantErr: "invalid domain"},
			{domain: "localhost/r", wantErr: "invalid domain"},
		}
		for _, l := range lists {
			got, err := u.List(ctx, l.domain)
			if l.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), l.wantErr) {
					t.Errorf("List(%q) = %v, %v; want an error with %q", l.domain, got, err, l.wantErr)
				}
				continue
			}
			if err != nil {
				t.Errorf("List(%q): %v", l.domain, err)
				continue
			}
			var s []string
			for _, j := range got {
				s = append(s, j.String())
			}
			if !slices.Equal(s, l.want) {
				t.Errorf("List(%q) = %q, want %q", l.domain, s, l.want)
			}
		}

		// Delete.
		if j, err := u.Delete(ctx, "Zoe@LOCALHOST"); err != nil || j.String() != "zoe@localhost" {
			t.Fatalf("Delete = %s, %v", j, err)
		}
		if _, err := db.Users().Get(ctx, "localhost", "zoe"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("zoe still exists: %v", err)
		}
		if _, err := u.Delete(ctx, "zoe@localhost"); err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("deleting twice: %v", err)
		}
		// The name is free again.
		if _, err := u.Add(ctx, "zoe@localhost", "new"); err != nil {
			t.Errorf("add after delete: %v", err)
		}
	})
}
