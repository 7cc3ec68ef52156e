package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
)

// TestUserDelRemovesUploads checks that `xmppd user del`, a process in
// which no module runs, removes the account's uploaded files (XEP-0363,
// modules/upload keeps them in data_dir/upload/HASH) and leaves another
// account's.
func TestUserDelRemovesUploads(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, storetest.Backend{Name: "sqlite"}.Config(t))
	dir := func(account string) string {
		sum := sha256.Sum256([]byte(account))
		return filepath.Join(filepath.Dir(cfg), "data", "upload", hex.EncodeToString(sum[:16]))
	}
	for _, a := range []string{"alice@localhost", "bob@localhost"} {
		xmppd(t, "", "pw\n", "-c", cfg, "user", "add", a, "--password-stdin").check(t, "created "+a+"\n", "")
		if err := os.MkdirAll(dir(a), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir(a), "AAAAAAAAAAAAAAAAAAAAAA"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	xmppd(t, "", "", "-c", cfg, "user", "del", "alice@localhost").check(t, "deleted alice@localhost\n", "")
	if _, err := os.Stat(dir("alice@localhost")); !os.IsNotExist(err) {
		t.Errorf("alice's files after user del: %v", err)
	}
	if _, err := os.Stat(dir("bob@localhost")); err != nil {
		t.Errorf("bob's files: %v", err)
	}
}
