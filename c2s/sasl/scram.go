// Package sasl is the server side of the SASL mechanisms xmppd offers:
// SCRAM (RFC 5802, RFC 7677) with channel binding (the -PLUS variants, RFC
// 5056, RFC 5929, RFC 9266), and the password check behind SASL PLAIN
// (RFC 4616).
//
// It works from stored keys only (storage.Credential): the server never
// holds a password, so a leaked database cannot be replayed as logins, and a
// PLAIN login is checked by deriving the same keys from the password it
// carries. We write this ourselves because mellium.im/sasl's server cannot
// take stored keys through xmpp.SASLServer and panics on -PLUS (see
// MELLIUM-NOTES.md).
//
// Errors wrap one of the sentinel errors below so that the stream layer can
// answer with the right RFC 6120 §6.5 condition; Condition does the mapping.
package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"strings"

	"golang.org/x/text/secure/precis"

	"github.com/xmppd/xmppd/storage"
)

// Mechanism names as offered in <mechanisms/>. Credentials are stored under
// the family name (without -PLUS): both variants use the same keys and differ
// only in whether the TLS channel is bound into the proof.
const (
	SHA1       = "SCRAM-SHA-1"
	SHA1Plus   = "SCRAM-SHA-1-PLUS"
	SHA256     = "SCRAM-SHA-256"
	SHA256Plus = "SCRAM-SHA-256-PLUS"
)

// MinIterations is the lowest PBKDF2 iteration count NewCredentials accepts:
// RFC 7677 §4 asks for at least 4096, and fewer makes a stolen database cheap
// to brute-force.
const MinIterations = 4096

// DefaultIterations is a sensible count for new credentials when the
// configuration names none: above RFC 7677's floor, yet a phone still logs in
// without a noticeable pause.
const DefaultIterations = 10000

// saltLen is the length of fresh salts, 128 bits so that no two accounts
// (or two mechanisms of one account) share a salt by chance.
const saltLen = 16

// A family is one SCRAM hash function: what a mechanism name means once the
// -PLUS suffix is set aside.
type family struct {
	name    string
	newHash func() hash.Hash
	size    int
}

var families = []family{
	{name: SHA1, newHash: sha1.New, size: sha1.Size},
	{name: SHA256, newHash: sha256.New, size: sha256.Size},
}

// familyOf splits a mechanism name into its hash family and whether it is
// the channel-binding (-PLUS) variant.
func familyOf(mechanism string) (f family, plus bool, ok bool) {
	name, plus := strings.CutSuffix(mechanism, "-PLUS")
	for _, f := range families {
		if f.name == name {
			return f, plus, true
		}
	}
	return family{}, false, false
}

// Derive computes the stored form of password for one SCRAM family
// (SCRAM-SHA-1 or SCRAM-SHA-256), with the given salt and iteration count.
// It is what account creation and password changes store, and what
// VerifyPlain recomputes. The password is first prepared with the PRECIS
// OpaqueString profile (RFC 8265 §4.2, successor of RFC 7613 and SASLprep),
// so that equivalent Unicode spellings of one password give the same keys.
func Derive(mechanism, password string, salt []byte, iterations int) (storage.Credential, error) {
	f, plus, ok := familyOf(mechanism)
	if !ok || plus {
		return storage.Credential{}, fmt.Errorf("scram: derive: %q is not a SCRAM family name", mechanism)
	}
	switch {
	case len(salt) == 0:
		return storage.Credential{}, errors.New("scram: derive: empty salt")
	case iterations < 1:
		return storage.Credential{}, fmt.Errorf("scram: derive: iteration count %d is below 1", iterations)
	}
	prepared, err := preparePassword(password)
	if err != nil {
		return storage.Credential{}, fmt.Errorf("scram: derive: %w", err)
	}
	storedKey, serverKey, err := f.keys(prepared, salt, iterations)
	if err != nil {
		return storage.Credential{}, fmt.Errorf("scram: derive: %w", err)
	}
	return storage.Credential{
		Mechanism:  f.name,
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  storedKey,
		ServerKey:  serverKey,
	}, nil
}

// NewCredentials makes what an account stores for a new password: one
// credential per supported family (SCRAM-SHA-1, then SCRAM-SHA-256), each with
// its own random salt, so that clients limited to SHA-1 can still log in and a
// break of one hash does not help against the other.
func NewCredentials(password string, iterations int) ([]storage.Credential, error) {
	if iterations < MinIterations {
		return nil, fmt.Errorf("scram: new credentials: %d iterations is below the minimum of %d", iterations, MinIterations)
	}
	creds := make([]storage.Credential, 0, len(families))
	for _, f := range families {
		salt := make([]byte, saltLen)
		rand.Read(salt) // never fails since Go 1.24: it crashes the program instead
		c, err := Derive(f.name, password, salt, iterations)
		if err != nil {
			return nil, fmt.Errorf("scram: new credentials: %w", err)
		}
		creds = append(creds, c)
	}
	return creds, nil
}

// VerifyPlain reports whether password (from a SASL PLAIN login) matches the
// stored credential. It derives the StoredKey again and compares in constant
// time, so the server checks PLAIN without ever storing a password. For an
// account that does not exist, check against Decoy.Credential so that the
// answer takes as long as for one that does.
func VerifyPlain(cred storage.Credential, password string) bool {
	f, plus, ok := familyOf(cred.Mechanism)
	if !ok || plus || len(cred.Salt) == 0 || cred.Iterations < 1 {
		return false
	}
	prepared, err := preparePassword(password)
	if err != nil {
		return false
	}
	storedKey, _, err := f.keys(prepared, cred.Salt, cred.Iterations)
	if err != nil {
		return false
	}
	return hmac.Equal(storedKey, cred.StoredKey)
}

// ParsePlain splits a SASL PLAIN message (RFC 4616 §2:
// [authzid] NUL authcid NUL passwd) so that PLAIN fails with the same
// error sentinels as SCRAM.
func ParsePlain(msg []byte) (authzid, authcid, password string, err error) {
	parts := strings.Split(string(msg), "\x00")
	if len(parts) != 3 {
		return "", "", "", fmt.Errorf("%w: plain: want 3 NUL-separated fields, got %d", ErrMalformed, len(parts))
	}
	if !validUTF8(parts[0]) {
		return "", "", "", fmt.Errorf("%w: plain: authzid is not UTF-8", ErrInvalidAuthzid)
	}
	if parts[1] == "" || parts[2] == "" || !validUTF8(parts[1]) || !validUTF8(parts[2]) {
		return "", "", "", fmt.Errorf("%w: plain: empty or non-UTF-8 authcid or password", ErrMalformed)
	}
	return parts[0], parts[1], parts[2], nil
}

// preparePassword applies OpaqueString (RFC 8265 §4.2), the successor of
// SASLprep that RFC 5802 asks for. precis already refuses an empty result;
// the explicit check keeps the error readable.
func preparePassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("empty password")
	}
	prepared, err := precis.OpaqueString.String(password)
	if err != nil {
		return "", fmt.Errorf("prepare password: %w", err)
	}
	return prepared, nil
}

// keys computes StoredKey and ServerKey from a prepared password
// (RFC 5802 §3).
func (f family) keys(prepared string, salt []byte, iterations int) (storedKey, serverKey []byte, err error) {
	salted, err := pbkdf2.Key(f.newHash, prepared, salt, iterations, f.size)
	if err != nil {
		return nil, nil, err
	}
	clientKey := f.hmac(salted, []byte("Client Key"))
	return f.hash(clientKey), f.hmac(salted, []byte("Server Key")), nil
}

func (f family) hmac(key, msg []byte) []byte {
	m := hmac.New(f.newHash, key)
	m.Write(msg)
	return m.Sum(nil)
}

func (f family) hash(msg []byte) []byte {
	h := f.newHash()
	h.Write(msg)
	return h.Sum(nil)
}
