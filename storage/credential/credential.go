// Package credential derives and checks the keys that accounts store.
// Credentials are stored only as SCRAM-derived keys (RFC 5802 §3: salt,
// iteration count, StoredKey, ServerKey, one set per hash family), never as
// passwords, so that a leaked database cannot be replayed as logins. Account
// creation and password changes (admin) derive them here; the SASL server
// (c2s/sasl) checks SCRAM proofs against them with the same hash families,
// and a PLAIN login is checked by deriving the keys again (VerifyPlain).
//
// The package lives under storage because it defines what storage holds:
// both admin and c2s use it, and neither may import the other.
package credential

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/text/secure/precis"

	"github.com/xmppd/xmppd/storage"
)

// Family names, as stored in storage.Credential.Mechanism. They are the
// SCRAM mechanism names without -PLUS: both variants of a mechanism use the
// same keys and differ only in whether the TLS channel is bound into the
// proof.
const (
	SHA1   = "SCRAM-SHA-1"
	SHA256 = "SCRAM-SHA-256"
)

// MinIterations is the lowest PBKDF2 iteration count NewCredentials accepts:
// RFC 7677 §4 asks for at least 4096, and fewer makes a stolen database cheap
// to brute-force.
const MinIterations = 4096

// DefaultIterations is a sensible count for new credentials when the
// configuration names none: above RFC 7677's floor, yet a phone still logs in
// without a noticeable pause.
const DefaultIterations = 10000

// SaltLen is the length of fresh salts, 128 bits so that no two accounts
// (or two mechanisms of one account) share a salt by chance. Stand-in
// credentials (the SASL server's decoys) use it too, to look like real ones.
const SaltLen = 16

// A Family is one SCRAM hash function: what a mechanism name means once the
// -PLUS suffix is set aside. The SASL server computes its proofs with the
// same HMAC and Hash as Derive, so that the two can never disagree.
type Family struct {
	// Name is the family name (SHA1 or SHA256).
	Name string
	// New makes the hash function.
	New func() hash.Hash
	// Size is the hash's output length, and so the length of StoredKey and
	// ServerKey.
	Size int
}

// families are the supported families, in the order NewCredentials stores
// them.
var families = []Family{
	{Name: SHA1, New: sha1.New, Size: sha1.Size},
	{Name: SHA256, New: sha256.New, Size: sha256.Size},
}

// Lookup returns the family of a family name (SHA1 or SHA256); ok is false
// for any other name, including the -PLUS mechanism names.
func Lookup(name string) (f Family, ok bool) {
	for _, f := range families {
		if f.Name == name {
			return f, true
		}
	}
	return Family{}, false
}

// HMAC is HMAC(key, msg) with the family's hash (RFC 5802 §2.2).
func (f Family) HMAC(key, msg []byte) []byte {
	m := hmac.New(f.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// Hash is H(msg) with the family's hash (RFC 5802 §2.2).
func (f Family) Hash(msg []byte) []byte {
	h := f.New()
	h.Write(msg)
	return h.Sum(nil)
}

// keys computes StoredKey and ServerKey from a prepared password
// (RFC 5802 §3).
func (f Family) keys(prepared string, salt []byte, iterations int) (storedKey, serverKey []byte, err error) {
	salted, err := pbkdf2.Key(f.New, prepared, salt, iterations, f.Size)
	if err != nil {
		return nil, nil, err
	}
	clientKey := f.HMAC(salted, []byte("Client Key"))
	return f.Hash(clientKey), f.HMAC(salted, []byte("Server Key")), nil
}

// Derive computes the stored form of password for one SCRAM family
// (SHA1 or SHA256), with the given salt and iteration count. It is what
// account creation and password changes store, and what VerifyPlain
// recomputes. The password is first prepared with the PRECIS OpaqueString
// profile (RFC 8265 §4.2), so that equivalent Unicode spellings of one
// password give the same keys.
func Derive(family, password string, salt []byte, iterations int) (storage.Credential, error) {
	f, ok := Lookup(family)
	if !ok {
		return storage.Credential{}, fmt.Errorf("scram: derive: %q is not a SCRAM family name", family)
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
		Mechanism:  f.Name,
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
		salt := make([]byte, SaltLen)
		rand.Read(salt) // never fails since Go 1.24: it crashes the program instead
		c, err := Derive(f.Name, password, salt, iterations)
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
// account that does not exist, check against a decoy credential (c2s/sasl's
// Decoy) so that the answer takes as long as for one that does.
func VerifyPlain(cred storage.Credential, password string) bool {
	f, ok := Lookup(cred.Mechanism)
	if !ok || len(cred.Salt) == 0 || cred.Iterations < 1 {
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

// preparePassword applies the PRECIS OpaqueString profile (RFC 8265 §4.2),
// the successor of RFC 7613 and of the SASLprep that RFC 5802 asks for.
// precis already refuses an empty result; the explicit check keeps the error
// readable.
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
