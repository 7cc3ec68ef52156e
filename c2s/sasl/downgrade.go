package sasl

import (
	"encoding/base64"
	"slices"
	"strings"
)

// Offer is what the stream features advertised on a connection: the SASL
// mechanisms (of the profile the client authenticates with, SASL or SASL2)
// and the XEP-0440 channel-binding types. The SCRAM server signs it into
// the server-first message (XEP-0474) so that a man in the middle who
// strips -PLUS mechanisms or binding types from the features is caught by
// the client, even on a first connection and without pinning.
type Offer struct {
	// Mechanisms are the advertised SASL mechanisms.
	Mechanisms []string
	// ChannelBindings are the types of the <sasl-channel-binding/>
	// feature; nil when that feature was not sent.
	ChannelBindings []string
}

// DowngradeHash is the XEP-0474 (0.5.0) §"Server Sends Downgrade Protection
// Hash" value for mechanism's SCRAM hash: the mechanisms sorted (i;octet)
// and joined by %x1E, then, if channel bindings were advertised, %x1F and
// the binding types sorted and joined by %x1E; hashed with the SCRAM
// mechanism's own hash and encoded in base64. ok is false for a mechanism
// that is not SCRAM.
func (o Offer) DowngradeHash(mechanism string) (h string, ok bool) {
	f, _, ok := familyOf(mechanism)
	if !ok {
		return "", false
	}
	return base64.StdEncoding.EncodeToString(f.Hash([]byte(o.ssdpInput()))), true
}

// ssdpInput is the string S of XEP-0474 that is hashed.
func (o Offer) ssdpInput() string {
	// slices.Sort on strings compares bytes: the i;octet collation.
	mechs := slices.Sorted(slices.Values(o.Mechanisms))
	s := strings.Join(mechs, "\x1e")
	if o.ChannelBindings != nil {
		s += "\x1f" + strings.Join(slices.Sorted(slices.Values(o.ChannelBindings)), "\x1e")
	}
	return s
}
