package loadtest

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
)

// scram is the client side of one SCRAM exchange (RFC 5802), without
// channel binding. It is the generator's own rather than mellium's so that
// the salted password, the PBKDF2 of thousands of iterations, is derived
// once per account and salt and then taken from saltedKeys: a login storm
// must measure the server's work, not the generator's.
type scram struct {
	newHash  func() hash.Hash
	user     string
	password string
	nonce    string
	// clientFirstBare, serverFirst and serverSignature carry the exchange
	// from one step to the next.
	clientFirstBare, serverFirst string
	serverSignature              []byte
}

// saltedKeys caches SaltedPassword by mechanism, password, salt and
// iteration count.
var saltedKeys sync.Map

// newSCRAM starts an exchange for mechanism (SCRAM-SHA-1 or SCRAM-SHA-256).
func newSCRAM(mechanism, user, password string) (*scram, error) {
	s := &scram{user: user, password: password, nonce: rand.Text()}
	switch mechanism {
	case "SCRAM-SHA-1":
		s.newHash = sha1.New
	case "SCRAM-SHA-256":
		s.newHash = sha256.New
	default:
		return nil, fmt.Errorf("scram: unknown mechanism %s", mechanism)
	}
	return s, nil
}

// first is the client-first-message.
func (s *scram) first() []byte {
	name := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s.user)
	s.clientFirstBare = "n=" + name + ",r=" + s.nonce
	return []byte("n,," + s.clientFirstBare)
}

// final answers the server-first-message with the client-final-message.
func (s *scram) final(serverFirst []byte) ([]byte, error) {
	s.serverFirst = string(serverFirst)
	var nonce, salt64, iters string
	for _, f := range strings.Split(s.serverFirst, ",") {
		switch {
		case strings.HasPrefix(f, "r="):
			nonce = f[2:]
		case strings.HasPrefix(f, "s="):
			salt64 = f[2:]
		case strings.HasPrefix(f, "i="):
			iters = f[2:]
		}
	}
	if !strings.HasPrefix(nonce, s.nonce) || len(nonce) == len(s.nonce) {
		return nil, errors.New("scram: server nonce does not extend ours")
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil {
		return nil, fmt.Errorf("scram: salt: %w", err)
	}
	n, err := strconv.Atoi(iters)
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("scram: iteration count %q", iters)
	}
	size := s.newHash().Size()
	key := fmt.Sprintf("%d\x00%s\x00%s\x00%d", size, s.password, salt64, n)
	salted, ok := saltedKeys.Load(key)
	if !ok {
		b, err := pbkdf2.Key(s.newHash, s.password, salt, n, size)
		if err != nil {
			return nil, fmt.Errorf("scram: %w", err)
		}
		salted, _ = saltedKeys.LoadOrStore(key, b)
	}
	sp := salted.([]byte)
	clientKey := s.hmac(sp, "Client Key")
	h := s.newHash()
	h.Write(clientKey)
	storedKey := h.Sum(nil)
	withoutProof := "c=biws,r=" + nonce
	authMessage := s.clientFirstBare + "," + s.serverFirst + "," + withoutProof
	sig := s.hmac(storedKey, authMessage)
	proof := make([]byte, len(clientKey))
	subtle.XORBytes(proof, clientKey, sig)
	s.serverSignature = s.hmac(s.hmac(sp, "Server Key"), authMessage)
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// verify checks the server-final-message: a server that does not know the
// account's keys must not pass for one that does.
func (s *scram) verify(serverFinal []byte) error {
	v, ok := strings.CutPrefix(string(serverFinal), "v=")
	if !ok {
		return fmt.Errorf("scram: server final %q", serverFinal)
	}
	sig, err := base64.StdEncoding.DecodeString(v)
	if err != nil || !hmac.Equal(sig, s.serverSignature) {
		return errors.New("scram: wrong server signature")
	}
	return nil
}

func (s *scram) hmac(key []byte, msg string) []byte {
	m := hmac.New(s.newHash, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
