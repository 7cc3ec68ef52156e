package c2s_test

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"hash"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// ssdpHash computes the XEP-0474 hash of the mechanisms and channel
// bindings advertised in features, from the XEP's definition and apart
// from the server's code: sort each list by octets, join with U+001E,
// separate the lists with U+001F (only when XEP-0440's list was sent), hash
// with the SCRAM mechanism's hash, base64.
func ssdpHash(features *router.Element, mechanisms []string, h func() hash.Hash) string {
	mechs := append([]string(nil), mechanisms...)
	sort.Strings(mechs)
	s := strings.Join(mechs, "\x1e")
	if features.Child("urn:xmpp:sasl-cb:0", "sasl-channel-binding") != nil {
		types := bindingTypes(features)
		sort.Strings(types)
		s += "\x1f" + strings.Join(types, "\x1e")
	}
	d := h()
	d.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(d.Sum(nil))
}

// serverFirstAttr returns attribute k of a SCRAM server-first message.
func serverFirstAttr(msg string, k byte) (string, bool) {
	for _, f := range strings.Split(msg, ",") {
		if len(f) >= 2 && f[0] == k && f[1] == '=' {
			return f[2:], true
		}
	}
	return "", false
}

// TestDowngradeProtection checks XEP-0474's h= in the SCRAM server-first
// message of SASL against an independent computation from the features the
// client saw, on TLS 1.3 and 1.2 (different binding lists) and with PLAIN
// off (a different mechanism list); the login still succeeds.
func TestDowngradeProtection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		plain  bool
		tlsMax uint16
	}{
		{"tls13", true, tls.VersionTLS13},
		{"tls12", true, tls.VersionTLS12},
		{"tls13-noplain", false, tls.VersionTLS13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testserver.Start(t, func(c *config.Config) { c.Auth.AllowPlain = tc.plain })
			s.AddUser("alice", "pw")
			for _, m := range []struct {
				mech string
				h    func() hash.Hash
			}{{"SCRAM-SHA-1", sha1.New}, {"SCRAM-SHA-256", sha256.New}, {"SCRAM-SHA-256-PLUS", sha256.New}} {
				cfg := s.TLSConfig()
				cfg.MaxVersion = tc.tlsMax
				c, err := s.DialRawStartTLS(cfg)
				if err != nil {
					t.Fatal(err)
				}
				before := c.Features
				if !tc.plain && slices.Contains(mechanismList(before), "PLAIN") {
					t.Fatalf("PLAIN offered although off: %v", mechanismList(before))
				}
				cond, err := c.AuthSCRAM("alice", "pw", testserver.SCRAM{Mechanism: m.mech, Binding: "tls-exporter"})
				if err != nil || cond != "" {
					t.Fatalf("%s: auth: condition %q, error %v", m.mech, cond, err)
				}
				got, ok := serverFirstAttr(c.LastServerFirst, 'h')
				if want := ssdpHash(before, mechanismList(before), m.h); !ok || got != want {
					t.Errorf("%s: h=%q (present %v) in %q, want %q", m.mech, got, ok, c.LastServerFirst, want)
				}
			}
		})
	}
}
