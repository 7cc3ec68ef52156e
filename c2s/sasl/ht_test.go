package sasl

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"slices"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

// TestHTOffered checks which HT mechanisms a connection offers: the
// channel-binding ones exactly where its binding has their type.
func TestHTOffered(t *testing.T) {
	for _, tt := range []struct {
		name   string
		noLeaf bool
		want   []string
	}{
		{"TLS 1.3", false, []string{HTExporter, HTEndpoint, HTNone}},
		{"TLS 1.3 without certificate", true, []string{HTExporter, HTNone}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, server, leaf := tlsPair(t, tls.VersionTLS13)
			if tt.noLeaf {
				leaf = nil
			}
			if got := HTOffered(TLSBinding(&server, leaf)); !slices.Equal(got, tt.want) {
				t.Errorf("HTOffered = %v, want %v", got, tt.want)
			}
		})
	}
	if got := HTOffered(nil); !slices.Equal(got, []string{HTNone}) {
		t.Errorf("HTOffered(nil) = %v, want only %s", got, HTNone)
	}
}

// TestHTMessages checks the HT messages against the draft's definition,
// computed here from crypto/hmac.
func TestHTMessages(t *testing.T) {
	token, cb := []byte("WXZzciBwYmFmdmZnZiBqdmd1IGp2eXFhcmZm"), []byte{1, 2, 3}
	mac := func(msg string) []byte {
		m := hmac.New(sha256.New, token)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	i, r := HTMessages(token, cb)
	if !bytes.Equal(i, mac("Initiator\x01\x02\x03")) || !bytes.Equal(r, mac("Responder\x01\x02\x03")) {
		t.Errorf("messages over cb-data: %x %x", i, r)
	}
	i, r = HTMessages(token, nil)
	if !bytes.Equal(i, mac("Initiator")) || !bytes.Equal(r, mac("Responder")) {
		t.Errorf("messages without cb-data: %x %x", i, r)
	}
}

// TestFastToken checks that a token is its id and a MAC, the same for the
// same inputs, and different for another key, account, agent or
// mechanism.
func TestFastToken(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	base := storage.FastToken{Domain: "example.org", Local: "alice", Agent: "a1", Mechanism: HTNone, ID: []byte("0123456789abcdef")}
	tok := FastToken(key, base)
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != TokenIDSize+sha256.Size || !bytes.Equal(raw[:TokenIDSize], base.ID) {
		t.Fatalf("token %q: want base64url of the id and a SHA-256 MAC (%v)", tok, err)
	}
	if again := FastToken(key, base); again != tok {
		t.Errorf("same inputs, tokens %q and %q", tok, again)
	}
	for name, change := range map[string]func(*storage.FastToken, *[]byte){
		"key":       func(_ *storage.FastToken, k *[]byte) { *k = []byte("another key, 32 bytes long......") },
		"domain":    func(t *storage.FastToken, _ *[]byte) { t.Domain = "example.com" },
		"local":     func(t *storage.FastToken, _ *[]byte) { t.Local = "bob" },
		"agent":     func(t *storage.FastToken, _ *[]byte) { t.Agent = "a2" },
		"mechanism": func(t *storage.FastToken, _ *[]byte) { t.Mechanism = HTExporter },
		"id":        func(t *storage.FastToken, _ *[]byte) { t.ID = []byte("fedcba9876543210") },
		"parts run together": func(t *storage.FastToken, _ *[]byte) {
			t.Domain, t.Local = "example.orgalice", ""
		},
	} {
		ft, k := base, key
		change(&ft, &k)
		if FastToken(k, ft) == tok {
			t.Errorf("another %s gives the same token", name)
		}
	}
}
