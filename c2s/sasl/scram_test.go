package sasl

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

// The RFC examples: user "user", password "pencil", 4096 iterations.
var (
	rfc5802Salt = mustBase64("QSXCR+Q6sek8bf92")
	rfc7677Salt = mustBase64("W22ZaJ0SNY7soEsUEjb6gQ==")
)

func mustBase64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func mustDerive(t testing.TB, mech, password string, salt []byte, iterations int) storage.Credential {
	t.Helper()
	c, err := Derive(mech, password, salt, iterations)
	if err != nil {
		t.Fatalf("Derive(%s): %v", mech, err)
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
		{"PLUS name", SHA256Plus, "pencil", salt, 4096},
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
	sha1Cred := mustDerive(t, SHA1, "pencil", rfc5802Salt, 4096)
	sha256Cred := mustDerive(t, SHA256, "pencil", rfc7677Salt, 4096)
	unicode := mustDerive(t, SHA256, "caf\u00e9", rfc7677Salt, 4096)
	wrongMech := sha256Cred
	wrongMech.Mechanism = SHA1
	plusMech := sha256Cred
	plusMech.Mechanism = SHA256Plus
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
		{"decoy", Decoy{Iterations: 4096}.Credential(SHA256, "user"), "pencil", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifyPlain(tt.cred, tt.password); got != tt.want {
				t.Errorf("VerifyPlain = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParsePlain(t *testing.T) {
	tests := []struct {
		in                         string
		authzid, authcid, password string
		err                        error
	}{
		{in: "\x00tim\x00tanstaaftanstaaf", authcid: "tim", password: "tanstaaftanstaaf"},
		{in: "Ursel\x00Kurt\x00xipj3plmq", authzid: "Ursel", authcid: "Kurt", password: "xipj3plmq"},
		{in: "\x00\x00pw", err: ErrMalformed},
		{in: "\x00tim\x00", err: ErrMalformed},
		{in: "tim\x00pw", err: ErrMalformed},
		{in: "\x00tim\x00pw\x00", err: ErrMalformed},
		{in: "", err: ErrMalformed},
		{in: "\x00tim\x00\xffpw", err: ErrMalformed},
		{in: "\xff\x00tim\x00pw", err: ErrInvalidAuthzid},
	}
	for _, tt := range tests {
		authzid, authcid, password, err := ParsePlain([]byte(tt.in))
		if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
			t.Errorf("ParsePlain(%q) error = %v, want %v", tt.in, err, tt.err)
			continue
		}
		if authzid != tt.authzid || authcid != tt.authcid || password != tt.password {
			t.Errorf("ParsePlain(%q) = %q, %q, %q; want %q, %q, %q",
				tt.in, authzid, authcid, password, tt.authzid, tt.authcid, tt.password)
		}
	}
}

func TestDecoyCredential(t *testing.T) {
	d := Decoy{Secret: []byte("configured secret"), Iterations: 4096}
	bob := d.Credential(SHA256, "bob")
	if bob.Mechanism != SHA256 || bob.Iterations != 4096 || len(bob.Salt) != saltLen ||
		len(bob.StoredKey) != 32 || len(bob.ServerKey) != 32 {
		t.Fatalf("decoy does not look like a real credential: %+v", bob)
	}
	if sha1 := d.Credential(SHA1, "bob"); len(sha1.StoredKey) != 20 || bytes.Equal(sha1.Salt, bob.Salt) {
		t.Errorf("SHA-1 decoy: %+v", sha1)
	}
	tests := []struct {
		name     string
		other    storage.Credential
		sameSalt bool
	}{
		{"same name again", d.Credential(SHA256, "bob"), true},
		{"other case", d.Credential(SHA256, "Bob"), true},
		{"PLUS name", d.Credential(SHA256Plus, "bob"), true},
		{"other name", d.Credential(SHA256, "rob"), false},
		{"other secret", Decoy{Secret: []byte("another"), Iterations: 4096}.Credential(SHA256, "bob"), false},
	}
	for _, tt := range tests {
		if got := bytes.Equal(tt.other.Salt, bob.Salt); got != tt.sameSalt {
			t.Errorf("%s: same salt = %v, want %v", tt.name, got, tt.sameSalt)
		}
	}
	if c := (Decoy{}).Credential(SHA1, "bob"); c.Iterations != DefaultIterations {
		t.Errorf("zero Decoy uses %d iterations, want %d", c.Iterations, DefaultIterations)
	}
}

func TestCondition(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{ErrMalformed, "malformed-request"},
		{ErrNotAuthorized, "not-authorized"},
		{ErrChannelBinding, "not-authorized"},
		{ErrInvalidAuthzid, "invalid-authzid"},
		{ErrInvalidMechanism, "invalid-mechanism"},
		{ErrTemporary, "temporary-auth-failure"},
		{errors.New("database on fire"), "temporary-auth-failure"},
	}
	for _, tt := range tests {
		if got := Condition(tt.err); got != tt.want {
			t.Errorf("Condition(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
