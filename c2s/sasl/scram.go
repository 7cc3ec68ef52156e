// Package sasl is the server side of the SASL mechanisms xmppd offers:
// SCRAM (RFC 5802, RFC 7677) with channel binding (the -PLUS variants, RFC
// 5056, RFC 5929, RFC 9266), and the parsing of SASL PLAIN (RFC 4616).
//
// It works from stored keys only (storage.Credential, derived and checked by
// storage/credential): the server never holds a password, so a leaked
// database cannot be replayed as logins. We write this ourselves because
// mellium.im/sasl's server cannot take stored keys through xmpp.SASLServer
// and panics on -PLUS (see MELLIUM-NOTES.md).
//
// Errors wrap one of the sentinel errors below so that the stream layer can
// answer with the right RFC 6120 §6.5 condition; Condition does the mapping.
package sasl

import (
	"fmt"
	"strings"

	"github.com/xmppd/xmppd/storage/credential"
)

// Mechanism names as offered in <mechanisms/>. Credentials are stored under
// the family name (without -PLUS, credential.SHA1 and credential.SHA256):
// both variants use the same keys and differ only in whether the TLS channel
// is bound into the proof.
const (
	SHA1       = credential.SHA1
	SHA1Plus   = credential.SHA1 + "-PLUS"
	SHA256     = credential.SHA256
	SHA256Plus = credential.SHA256 + "-PLUS"
)

// familyOf splits a mechanism name into its hash family and whether it is
// the channel-binding (-PLUS) variant.
func familyOf(mechanism string) (f credential.Family, plus bool, ok bool) {
	name, plus := strings.CutSuffix(mechanism, "-PLUS")
	f, ok = credential.Lookup(name)
	return f, plus && ok, ok
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
