package sasl

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/credential"
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
	c, err := credential.Derive(mech, password, salt, iterations)
	if err != nil {
		t.Fatalf("Derive(%s): %v", mech, err)
	}
	return c
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
	if bob.Mechanism != SHA256 || bob.Iterations != 4096 || len(bob.Salt) != credential.SaltLen ||
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
	if c := (Decoy{}).Credential(SHA1, "bob"); c.Iterations != credential.DefaultIterations {
		t.Errorf("zero Decoy uses %d iterations, want %d", c.Iterations, credential.DefaultIterations)
	}
}

// TestDecoyMatchesNoPassword checks that a PLAIN login to a missing account
// fails even with the password a real account might have.
func TestDecoyMatchesNoPassword(t *testing.T) {
	for _, mech := range []string{SHA1, SHA256} {
		if credential.VerifyPlain(Decoy{Iterations: 4096}.Credential(mech, "user"), "pencil") {
			t.Errorf("%s: a decoy credential accepts a password", mech)
		}
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
