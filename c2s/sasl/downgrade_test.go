package sasl

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

// TestDowngradeHash checks the XEP-0474 hash against the XEP's own example
// and against a computation written here from the XEP's definition.
func TestDowngradeHash(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	sum1 := func(s string) string { h := sha1.Sum([]byte(s)); return b64(h[:]) }
	sum256 := func(s string) string { h := sha256.Sum256([]byte(s)); return b64(h[:]) }
	tests := []struct {
		name  string
		offer Offer
		mech  string
		want  string
	}{
		// XEP-0474 §Example: "h" of the SCRAM-SHA-1-PLUS challenge.
		{"xep example", Offer{Mechanisms: []string{"SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"},
			ChannelBindings: []string{"tls-exporter", "tls-server-end-point"}},
			"SCRAM-SHA-1-PLUS", "G6k/rBLDqgOhRRaCuuatSDFkJ08="},
		// Unsorted input is sorted by octets: "-PLUS" sorts after the
		// bare name, "tls-e" before "tls-s" before "tls-u".
		{"sorted", Offer{Mechanisms: []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"},
			ChannelBindings: []string{"tls-unique", "tls-exporter", "tls-server-end-point"}},
			"SCRAM-SHA-256",
			sum256("PLAIN\x1eSCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1eSCRAM-SHA-256\x1eSCRAM-SHA-256-PLUS\x1ftls-exporter\x1etls-server-end-point\x1etls-unique")},
		// No XEP-0440 list: no %x1F.
		{"no bindings", Offer{Mechanisms: []string{"SCRAM-SHA-256", "SCRAM-SHA-1"}}, "SCRAM-SHA-1",
			sum1("SCRAM-SHA-1\x1eSCRAM-SHA-256")},
	}
	for _, tt := range tests {
		got, ok := tt.offer.DowngradeHash(tt.mech)
		if !ok || got != tt.want {
			t.Errorf("%s: DowngradeHash(%s) = %q, %v; want %q", tt.name, tt.mech, got, ok, tt.want)
		}
	}
	if _, ok := (Offer{Mechanisms: []string{"PLAIN"}}).DowngradeHash("PLAIN"); ok {
		t.Error("DowngradeHash(PLAIN) ok; PLAIN has no SCRAM hash")
	}
}

// TestServerFirstDowngradeAttribute checks that the server-first message
// carries h= exactly when an Offer is set.
func TestServerFirstDowngradeAttribute(t *testing.T) {
	cred := mustDerive(t, SHA1, "pencil", rfc5802Salt, 4096)
	lookup := func(string) (storage.Credential, error) { return cred, nil }
	offer := &Offer{Mechanisms: []string{"SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"},
		ChannelBindings: []string{"tls-exporter", "tls-server-end-point"}}
	for _, withOffer := range []bool{false, true} {
		srv, err := NewServer(SHA1, lookup, nil)
		if err != nil {
			t.Fatal(err)
		}
		if withOffer {
			srv.Offer = offer
		}
		out, _, err := srv.Step([]byte("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"))
		if err != nil {
			t.Fatal(err)
		}
		_, h, found := strings.Cut(string(out), ",h=")
		if found != withOffer || (withOffer && h != "G6k/rBLDqgOhRRaCuuatSDFkJ08=") {
			t.Errorf("offer %v: server-first %q", withOffer, out)
		}
	}
}
