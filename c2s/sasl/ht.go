package sasl

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"slices"

	"github.com/xmppd/xmppd/storage"
)

// The Hashed Token mechanisms (draft-schmaus-kitten-sasl-ht-09), which
// FAST (XEP-0484) logs in with: the client sends authcid NUL
// HMAC(token, "Initiator" || cb-data) and the server answers
// HMAC(token, "Responder" || cb-data), one round trip, where cb-data is
// the channel binding data the mechanism names (none for -NONE). Mixing
// in tls-exporter ties the proof to this very TLS connection, and
// tls-server-end-point to our certificate, so that a proof seen by a man
// in the middle does not log in elsewhere.
const (
	HTNone     = "HT-SHA-256-NONE"
	HTEndpoint = "HT-SHA-256-ENDP"
	HTExporter = "HT-SHA-256-EXPR"
)

// htMechanisms are the HT mechanisms we know, strongest first, with the
// channel binding type each mixes in.
var htMechanisms = []struct{ name, binding string }{
	{HTExporter, TLSExporter},
	{HTEndpoint, TLSServerEndPoint},
	{HTNone, ""},
}

// HTBindingType returns the channel binding type of the HT mechanism
// mech, "" for -NONE; ok is false if mech is no HT mechanism we know.
func HTBindingType(mech string) (cbType string, ok bool) {
	for _, m := range htMechanisms {
		if m.name == mech {
			return m.binding, true
		}
	}
	return "", false
}

// HTOffered lists the HT mechanisms a connection with channel binding cb
// can check, strongest first: -EXPR where cb gives tls-exporter, -ENDP
// where it gives tls-server-end-point (the same test that decides which
// binding types SCRAM -PLUS takes), and -NONE always.
func HTOffered(cb ChannelBinding) []string {
	types := cb.Types()
	var out []string
	for _, m := range htMechanisms {
		if m.binding == "" || slices.Contains(types, m.binding) {
			out = append(out, m.name)
		}
	}
	return out
}

// HTMessages returns the HT-SHA-256 messages of token over the channel
// binding data cbData (nil for -NONE): the initiator's hashed token,
// which the client sends after its authcid, and the responder's, which
// the server sends as additional data of <success/>.
func HTMessages(token, cbData []byte) (initiator, responder []byte) {
	return htHash(token, "Initiator", cbData), htHash(token, "Responder", cbData)
}

func htHash(token []byte, label string, cbData []byte) []byte {
	m := hmac.New(sha256.New, token)
	m.Write([]byte(label))
	m.Write(cbData)
	return m.Sum(nil)
}

// TokenIDSize is the size of the random id a FAST token is derived from:
// 128 bits, so that ids never collide and cannot be guessed.
const TokenIDSize = 16

// tokenLabel keeps the token's MAC apart from anything else keyed with
// the same secret.
const tokenLabel = "xmppd FAST token v1"

// FastToken returns the secret FAST token the server hands out for t:
// base64url(ID || HMAC-SHA-256(key, label, account, agent, mechanism,
// ID)). Only t's ID, account, agent and mechanism are stored; the token
// is derived again from them to check a login, so that the database alone,
// without key, lets nobody log in, and a token is valid for its account,
// installation and mechanism only.
func FastToken(key []byte, t storage.FastToken) string {
	m := hmac.New(sha256.New, key)
	for _, part := range []string{tokenLabel, t.Domain, t.Local, t.Agent, t.Mechanism} {
		// NUL cannot occur in a JID part, a UUID or a mechanism name, so
		// the parts cannot run into each other.
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	m.Write(t.ID)
	raw := append(append([]byte(nil), t.ID...), m.Sum(nil)...)
	return base64.RawURLEncoding.EncodeToString(raw)
}
