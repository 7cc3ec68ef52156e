package modules

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// LoadSecret returns a module's secret (an HMAC key: upload URLs, TURN
// credentials): the configured one, or else the one kept in path (under
// data_dir), generated there with 256 random bits on first use so that a
// development server needs no setting and a restart keeps URLs and
// credentials valid. Processes that start at once agree on one file.
func LoadSecret(configured, path string) ([]byte, error) {
	if configured != "" {
		return []byte(configured), nil
	}
	b, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(b)); len(s) >= 32 {
			return []byte(s), nil
		}
		return nil, fmt.Errorf("secret in %s is too short: delete it to have a new one made", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read secret %s: %w", path, err)
	}
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand)
	s := hex.EncodeToString(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadSecret("", path) // another process made it first
	}
	if err != nil {
		return nil, fmt.Errorf("create secret %s: %w", path, err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write secret %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write secret %s: %w", path, err)
	}
	return []byte(s), nil
}
