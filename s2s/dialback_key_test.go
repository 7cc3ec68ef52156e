package s2s

import (
	"strings"
	"testing"
)

// The vectors are the worked examples of the XEPs, so an interoperable
// peer (Prosody, ejabberd) computing the recommended key agrees with us.
var dialbackVectors = []struct {
	source                                 string
	secret, receiving, originating, stream string
	key                                    string
}{{
	source: "XEP-0185 §3",
	secret: "s3cr3tf0rd14lb4ck", receiving: "xmpp.example.com", originating: "example.org", stream: "D60000229F",
	key: "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643",
}, {
	source: "XEP-0220 §2.1.1",
	secret: "s3cr3tf0rd14lb4ck", receiving: "montague.example", originating: "capulet.example", stream: "D60000229F",
	key: "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3",
}, {
	source: "XEP-0220 §2.2.2",
	secret: "d14lb4ck43v3r", receiving: "capulet.example", originating: "montague.example", stream: "417GAF25",
	key: "225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d",
}}

func TestDialbackKey(t *testing.T) {
	for _, v := range dialbackVectors {
		if got := DialbackKey(v.secret, v.receiving, v.originating, v.stream); got != v.key {
			t.Errorf("%s: DialbackKey = %s, want %s", v.source, got, v.key)
		}
	}
}

func TestVerifyDialbackKey(t *testing.T) {
	v := dialbackVectors[0]
	tests := []struct {
		name                                   string
		secret, receiving, originating, stream string
		key                                    string
		want                                   bool
	}{
		{name: "the XEP's key", key: v.key, want: true},
		{name: "upper-case hex", key: strings.ToUpper(v.key), want: true},
		{name: "element text with white space", key: "\n    " + v.key + "\n", want: true},
		{name: "other secret", secret: "other", key: v.key},
		{name: "receiving and originating swapped", receiving: v.originating, originating: v.receiving, key: v.key},
		{name: "other stream ID", stream: "D60000229G", key: v.key},
		{name: "one digit changed", key: v.key[:63] + "4"},
		{name: "truncated", key: v.key[:62]},
		{name: "longer", key: v.key + "00"},
		{name: "not hex", key: strings.Repeat("zz", 32)},
		{name: "empty", key: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret, receiving, originating, stream := orDefault(tt.secret, v.secret), orDefault(tt.receiving, v.receiving), orDefault(tt.originating, v.originating), orDefault(tt.stream, v.stream)
			if got := VerifyDialbackKey(secret, receiving, originating, stream, tt.key); got != tt.want {
				t.Errorf("VerifyDialbackKey(%q, %q, %q, %q, %q) = %v, want %v", secret, receiving, originating, stream, tt.key, got, tt.want)
			}
		})
	}
}

// The space separator keeps different splits of the same characters
// apart (XEP-0185 §2, note 5).
func TestDialbackKeySeparator(t *testing.T) {
	a := DialbackKey("s", "example.in", "form.example.org", "id")
	b := DialbackKey("s", "example.info", "rm.example.org", "id")
	if a == b {
		t.Error("keys for different domain pairs are equal")
	}
}

func orDefault(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
