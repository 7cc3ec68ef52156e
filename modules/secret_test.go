package modules_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/xmppd/xmppd/modules"
)

// TestSecret checks that a generated secret is kept, private, and used
// again; and that a configured one wins.
func TestSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	a, err := modules.LoadSecret("", path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := modules.LoadSecret("", path)
	if err != nil || string(a) != string(b) || len(a) < 32 {
		t.Errorf("second load: %q %v, want %q", b, err, a)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("secret file: %v %v", info, err)
	}
	if c, _ := modules.LoadSecret("configured", path); string(c) != "configured" {
		t.Errorf("configured secret: %q", c)
	}
	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := modules.LoadSecret("", path); err == nil {
		t.Error("a short secret was accepted")
	}
}
