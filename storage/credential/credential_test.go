package credential

import (
	"bytes"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

// Two salts of the length NewCredentials uses.
var (
	salt1 = []byte("0123456789abcdef")
	salt2 = []byte("fedcba9876543210")
)

func mustDerive(t testing.TB, family, password string, salt []byte, iterations int) storage.Credential {
	t.Helper()
	c, err := Derive(family, password, salt, iterations)
	if err != nil {
		t.Fatalf("Derive(%s): %v", family, err)
	}
	return c
}

func TestDeriveErrors(t *testing.T) {
	salt := []byte("0123456789abcdef")
	tests := []struct {
		name       string
		mech       string
		password   string
		salt       []byte
		iterations int
	}{
		{"empty password", SHA256, "", salt, 4096},
		{"password of only a NUL", SHA256, "\x00", salt, 4096},
		{"PLUS name", SHA256 + "-PLUS", "pencil", salt, 4096},
		{"unknown mechanism", "SCRAM-SHA-512", "pencil", salt, 4096},
		{"PLAIN", "PLAIN", "pencil", salt, 4096},
		{"empty salt", SHA1, "pencil", nil, 4096},
		{"zero iterations", SHA1, "pencil", salt, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := Derive(tt.mech, tt.password, tt.salt, tt.iterations); err == nil {
				t.Errorf("Derive succeeded: %+v", c)
			}
		})
	}
}

func TestDerivePreparesPassword(t *testing.T) {
	salt := []byte("0123456789abcdef")
	// OpaqueString composes to NFC and maps non-ASCII spaces to U+0020,
	// so these spellings must all give the same keys.
	same := []string{"caf\u00e9 au lait", "cafe\u0301 au lait", "caf\u00e9\u00a0au lait"}
	want := mustDerive(t, SHA256, same[0], salt, 4096)
	for _, pw := range same[1:] {
		got := mustDerive(t, SHA256, pw, salt, 4096)
		if !bytes.Equal(got.StoredKey, want.StoredKey) || !bytes.Equal(got.ServerKey, want.ServerKey) {
			t.Errorf("Derive(%q) differs from Derive(%q)", pw, same[0])
		}
	}
	if other := mustDerive(t, SHA256, "Caf\u00e9 au lait", salt, 4096); bytes.Equal(other.StoredKey, want.StoredKey) {
		t.Error("passwords are case-folded; OpaqueString must keep case")
	}
}

func TestDeriveKeepsNoAlias(t *testing.T) {
	salt := []byte("0123456789abcdef")
	c := mustDerive(t, SHA1, "pencil", salt, 4096)
	salt[0] = 'X'
	if c.Salt[0] != '0' {
		t.Error("credential shares its salt with the caller")
	}
}

func TestNewCredentials(t *testing.T) {
	creds, err := NewCredentials("pencil", MinIterations)
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != 2 || creds[0].Mechanism != SHA1 || creds[1].Mechanism != SHA256 {
		t.Fatalf("got mechanisms %v, want [%s %s]", mechanisms(creds), SHA1, SHA256)
	}
	if bytes.Equal(creds[0].Salt, creds[1].Salt) {
		t.Error("both mechanisms got the same salt")
	}
	for _, c := range creds {
		if len(c.Salt) < 16 {
			t.Errorf("%s: salt of %d bytes, want at least 16", c.Mechanism, len(c.Salt))
		}
		if c.Iterations != MinIterations {
			t.Errorf("%s: %d iterations, want %d", c.Mechanism, c.Iterations, MinIterations)
		}
		if !VerifyPlain(c, "pencil") {
			t.Errorf("%s: VerifyPlain rejects the password", c.Mechanism)
		}
	}
	again, err := NewCredentials("pencil", MinIterations)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again[1].Salt, creds[1].Salt) {
		t.Error("salts repeat between calls")
	}

	for _, tc := range []struct {
		password   string
		iterations int
	}{{"", DefaultIterations}, {"pencil", MinIterations - 1}} {
		if _, err := NewCredentials(tc.password, tc.iterations); err == nil {
			t.Errorf("NewCredentials(%q, %d) succeeded", tc.password, tc.iterations)
		}
	}
}

func mechanisms(creds []storage.Credential) []string {
	var names []string
	for _, c := range creds {
		names = append(names, c.Mechanism)
	}
	return names
}

func TestVerifyPlain(t *testing.T) {
	sha1Cred := mustDerive(t, SHA1, "pencil", salt1, 4096)
	sha256Cred := mustDerive(t, SHA256, "pencil", salt2, 4096)
	unicode := mustDerive(t, SHA256, "caf\u00e9", salt2, 4096)
	wrongMech := sha256Cred
	wrongMech.Mechanism = SHA1
	plusMech := sha256Cred
	plusMech.Mechanism = SHA256 + "-PLUS"
	noSalt := sha256Cred
	noSalt.Salt = nil
	tests := []struct {
		name     string
		cred     storage.Credential
		password string
		want     bool
	}{
		{"SHA-1 right", sha1Cred, "pencil", true},
		{"SHA-256 right", sha256Cred, "pencil", true},
		{"SHA-1 wrong", sha1Cred, "pencil ", false},
		{"SHA-256 wrong", sha256Cred, "Pencil", false},
		{"empty", sha256Cred, "", false},
		{"unprepareable", sha256Cred, "pen\x00cil", false},
		{"other normalisation form", unicode, "cafe\u0301", true},
		{"mechanism swapped", wrongMech, "pencil", false},
		{"PLUS mechanism stored", plusMech, "pencil", false},
		{"damaged credential", noSalt, "pencil", false},
		{"zero credential", storage.Credential{}, "pencil", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifyPlain(tt.cred, tt.password); got != tt.want {
				t.Errorf("VerifyPlain = %v, want %v", got, tt.want)
			}
		})
	}
}
