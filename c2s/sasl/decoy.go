package sasl

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"sync"

	"golang.org/x/text/secure/precis"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/credential"
)

// Decoy makes stand-in credentials for accounts that do not exist. A server
// that refused an unknown user at once, or offered a fresh random salt each
// time, would tell an attacker which accounts exist; with a decoy the
// conversation runs to the end, offers the same salt and iteration count
// every time for a given name, and fails with the same ErrNotAuthorized as a
// wrong password.
type Decoy struct {
	// Secret keys the decoy salts. Give a stable secret (from configuration)
	// so that a restart does not change the salts of missing accounts while
	// those of real accounts stay put. Nil uses a random per-process secret.
	Secret []byte
	// Iterations should be the count that real credentials use, so that the
	// decoy's i= looks like theirs. Zero means credential.DefaultIterations.
	Iterations int
}

// processSecret backs decoys that were given no Secret.
var processSecret = sync.OnceValue(func() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
})

// Credential returns the decoy credential of username for a SCRAM family
// (any other name is treated as SCRAM-SHA-256). No password matches it in
// practice: its keys are pseudo-random. The name is normalised with PRECIS
// UsernameCaseMapped, as XMPP local parts are (RFC 7622 §3.2), so that
// "Bob" and "bob" get the same decoy just as "Alice" and "alice" find the
// same real account.
func (d Decoy) Credential(mechanism, username string) storage.Credential {
	f, _, ok := familyOf(mechanism)
	if !ok {
		f, _, _ = familyOf(SHA256)
	}
	if norm, err := precis.UsernameCaseMapped.String(username); err == nil {
		username = norm
	}
	secret := d.Secret
	if secret == nil {
		secret = processSecret()
	}
	// Hashing first gives HKDF a full-length key whatever the configured
	// secret looks like (FIPS 140-only mode refuses short ones).
	key := sha256.Sum256(secret)
	iterations := d.Iterations
	if iterations <= 0 {
		iterations = credential.DefaultIterations
	}
	derive := func(purpose string, n int) []byte {
		info := "xmppd scram decoy\x00" + purpose + "\x00" + f.Name + "\x00" + username
		out, err := hkdf.Key(sha256.New, key[:], nil, info, n)
		if err != nil { // only for lengths beyond 255 hashes, never asked for
			panic("scram: decoy: " + err.Error())
		}
		return out
	}
	return storage.Credential{
		Mechanism:  f.Name,
		Salt:       derive("salt", credential.SaltLen),
		Iterations: iterations,
		StoredKey:  derive("stored-key", f.Size),
		ServerKey:  derive("server-key", f.Size),
	}
}
