package upload

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
)

// What a signature allows.
const (
	opPut = "PUT"
	opGet = "GET"
)

// sign is the HMAC-SHA256, under the module's secret, of what a URL allows:
// the operation, the slot, its name and its expiry (Unix seconds, 0 for
// none). A field cannot run into the next: each ends in a NUL, which none
// holds.
func (u *Upload) sign(op, id, name string, expires int64) string {
	m := hmac.New(sha256.New, u.secret)
	for _, f := range []string{op, id, name, strconv.FormatInt(expires, 10)} {
		m.Write([]byte(f))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verify checks sig in constant time.
func (u *Upload) verify(sig, op, id, name string, expires int64) bool {
	return hmac.Equal([]byte(sig), []byte(u.sign(op, id, name, expires)))
}
