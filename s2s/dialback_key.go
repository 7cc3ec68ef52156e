package s2s

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// DialbackKey computes the Server Dialback key that we, as the
// Originating (and Authoritative) Server, send in <db:result/> and later
// check in <db:verify/> (XEP-0220), by the algorithm XEP-0185 §2
// recommends (its §3 works an example):
//
//	HMAC-SHA256(hex(SHA256(secret)), receiving + " " + originating + " " + streamID)
//
// in lower-case hex. The HMAC key is the hex text of the secret's hash,
// not its 32 bytes, exactly as the XEP's worked example does; the
// separating spaces keep "a.b c" and "a b.c" apart. Because the key
// depends only on the secret and the three values, any node that knows
// the secret can verify it without shared state: that is why
// dialback_secret must be the same on every node of one domain.
func DialbackKey(secret, receiving, originating, streamID string) string {
	return hex.EncodeToString(dialbackMAC(secret, receiving, originating, streamID))
}

// VerifyDialbackKey says whether key is the dialback key for these
// values. It compares in constant time, so that timing does not reveal
// how much of a guessed key was right, and it accepts upper-case hex and
// the white space around an element's text that XEP-0220's examples show.
func VerifyDialbackKey(secret, receiving, originating, streamID, key string) bool {
	got, err := hex.DecodeString(strings.TrimSpace(key))
	if err != nil {
		return false
	}
	return hmac.Equal(got, dialbackMAC(secret, receiving, originating, streamID))
}

func dialbackMAC(secret, receiving, originating, streamID string) []byte {
	hashed := sha256.Sum256([]byte(secret))
	mac := hmac.New(sha256.New, []byte(hex.EncodeToString(hashed[:])))
	mac.Write([]byte(receiving + " " + originating + " " + streamID))
	return mac.Sum(nil)
}
