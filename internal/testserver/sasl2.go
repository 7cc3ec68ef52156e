package testserver

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/xmppd/xmppd/c2s/sasl"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/server"
	"github.com/xmppd/xmppd/storage"
)

// nsSASL2 is XEP-0388's namespace.
const nsSASL2 = "urn:xmpp:sasl:2"

// SASL2 says how Raw.AuthSASL2 authenticates (XEP-0388).
type SASL2 struct {
	// Mechanism is PLAIN, a SCRAM mechanism or HT-SHA-256-NONE, -ENDP or
	// -EXPR (FAST, XEP-0484); with any other, Secret is sent as the
	// initial response.
	Mechanism string
	// SCRAM sets the channel binding of a SCRAM mechanism.
	SCRAM SCRAM
	// Secret is the password, or for HT the FAST token.
	Secret string
	// HTBindingData, if not nil, is the channel binding data an HT
	// mechanism hashes instead of the connection's, as a man in the
	// middle who sees another connection would.
	HTBindingData []byte
	// Authzid is PLAIN's authorization identity.
	Authzid string
	// AgentID, Software and Device make the <user-agent/>, which is left
	// out when all are empty.
	AgentID, Software, Device string
	// Inline is XML put in <authenticate/> after the user agent: Bind 2's
	// <bind/>, XEP-0198's <resume/>, FAST's <request-token/> and <fast/>.
	Inline string
	// NoInitial sends no initial response: SCRAM then begins with the
	// server's empty challenge.
	NoInitial bool
}

// SASL2Result is how AuthSASL2 ended.
type SASL2Result struct {
	// Condition and Text are the <failure/>'s; "" after success.
	Condition, Text string
	// Failure is the whole <failure/>, for its application-specific
	// condition; nil after success.
	Failure *router.Element
	// Success is the <success/>, and Features the stream features that
	// followed it; nil after a failure.
	Success, Features *router.Element
}

// HTProof is HMAC-SHA-256(token, label || cbData): the HT-SHA-256
// initiator ("Initiator") and responder ("Responder") messages of
// draft-schmaus-kitten-sasl-ht, cbData being nil for -NONE.
func HTProof(token, label string, cbData []byte) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(label))
	m.Write(cbData)
	return m.Sum(nil)
}

// htBindingTypes are the channel binding types of the HT mechanisms
// (draft-schmaus-kitten-sasl-ht §"Channel binding").
var htBindingTypes = map[string]string{
	"HT-SHA-256-ENDP": "tls-server-end-point",
	"HT-SHA-256-EXPR": "tls-exporter",
	"HT-SHA-256-UNIQ": "tls-unique",
}

// htBindingData is the channel binding data an HT mechanism hashes on c:
// o.HTBindingData if set, else the connection's as the client sees it,
// nil for -NONE.
func (c *Raw) htBindingData(o SASL2) ([]byte, error) {
	typ, ok := htBindingTypes[o.Mechanism]
	if !ok || o.HTBindingData != nil {
		return o.HTBindingData, nil
	}
	if c.TLS == nil {
		return nil, errors.New("ht: channel binding needs TLS")
	}
	cs := c.TLS.ConnectionState()
	return ClientBinding(&cs, typ)
}

// AuthSASL2 authenticates with SASL2 as a client written from XEP-0388 and
// the mechanisms' RFCs, apart from the server's code: <authenticate/> with
// the initial response and the inline requests of o, the challenges of
// SCRAM, and the check of the server's additional data. It returns the
// failure, or the success and the features that follow it (no stream
// restart).
func (c *Raw) AuthSASL2(local string, o SASL2) (*SASL2Result, error) {
	var initial string
	var sc *scramClient
	var verify func([]byte) error
	switch {
	case o.Mechanism == "PLAIN":
		initial = o.Authzid + "\x00" + local + "\x00" + o.Secret
	case strings.HasPrefix(o.Mechanism, "HT-"):
		cbData, err := c.htBindingData(o)
		if err != nil {
			return nil, err
		}
		initial = local + "\x00" + string(HTProof(o.Secret, "Initiator", cbData))
		verify = func(data []byte) error {
			if !hmac.Equal(data, HTProof(o.Secret, "Responder", cbData)) {
				return fmt.Errorf("ht: wrong responder message %x", data)
			}
			return nil
		}
	case !strings.HasPrefix(o.Mechanism, "SCRAM-"):
		// A mechanism nobody offers: Secret is the initial response.
		initial = o.Secret
	default:
		so := o.SCRAM
		so.Mechanism = o.Mechanism
		var err error
		if sc, err = c.newSCRAMClient(local, so); err != nil {
			return nil, err
		}
		initial, verify = sc.first(), sc.verify
	}
	var b strings.Builder
	b.WriteString(`<authenticate xmlns='` + nsSASL2 + `' mechanism='` + o.Mechanism + `'>`)
	if !o.NoInitial {
		b.WriteString(`<initial-response>` + base64.StdEncoding.EncodeToString([]byte(initial)) + `</initial-response>`)
	}
	if o.AgentID != "" || o.Software != "" || o.Device != "" {
		b.WriteString(`<user-agent`)
		if o.AgentID != "" {
			b.WriteString(` id='` + o.AgentID + `'`)
		}
		b.WriteString(`><software>` + o.Software + `</software><device>` + o.Device + `</device></user-agent>`)
	}
	b.WriteString(o.Inline + `</authenticate>`)
	if err := c.Send(b.String()); err != nil {
		return nil, err
	}
	for {
		e, err := c.Next()
		if err != nil {
			return nil, err
		}
		if e.Name.Space != nsSASL2 {
			return nil, fmt.Errorf("sasl2: unexpected %s", e)
		}
		switch e.Name.Local {
		case "challenge":
			if sc == nil {
				return nil, fmt.Errorf("sasl2: challenge for %s", o.Mechanism)
			}
			var resp string
			if o.NoInitial && strings.TrimSpace(e.Text()) == "" {
				resp, o.NoInitial = base64.StdEncoding.EncodeToString([]byte(initial)), false
			} else if resp, err = sc.final(e.Text(), o.Secret); err != nil {
				return nil, err
			}
			if err := c.Send(`<response xmlns='` + nsSASL2 + `'>` + resp + `</response>`); err != nil {
				return nil, err
			}
		case "failure":
			return sasl2Failure(e)
		case "success":
			if verify != nil {
				ad := e.Child(nsSASL2, "additional-data")
				if ad == nil {
					return nil, errors.New("sasl2: success without additional data")
				}
				data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(ad.Text()))
				if err != nil {
					return nil, fmt.Errorf("sasl2: additional data: %w", err)
				}
				if err := verify(data); err != nil {
					return nil, err
				}
			}
			f, err := c.Next()
			if err != nil {
				return nil, fmt.Errorf("sasl2: features after success: %w", err)
			}
			if f.Name.Local != "features" {
				return nil, fmt.Errorf("sasl2: %s after success, want features", f)
			}
			c.Features = f
			return &SASL2Result{Success: e, Features: f}, nil
		default:
			return nil, fmt.Errorf("sasl2: unexpected %s", e)
		}
	}
}

// sasl2Failure reads a SASL2 <failure/>: an RFC 6120 condition and a text.
func sasl2Failure(e *router.Element) (*SASL2Result, error) {
	res := &SASL2Result{Failure: e}
	if t := e.Child(nsSASL2, "text"); t != nil {
		res.Text = t.Text()
	}
	for _, ch := range e.Elements() {
		if ch.Name.Space == nsSASL {
			res.Condition = ch.Name.Local
			return res, nil
		}
	}
	return nil, fmt.Errorf("sasl2: failure without an RFC 6120 condition: %s", e)
}

// IssueFastToken keeps t, with a new random id, as a FAST token (XEP-0484)
// of the server and returns the token a client logs in with, derived as
// the server derives it: for tokens in a state no login makes (expired,
// due for rotation).
func (s *Server) IssueFastToken(t storage.FastToken) string {
	s.t.Helper()
	key, err := server.LoadFastKey(s.Config)
	if err != nil {
		s.t.Fatal(err)
	}
	t.ID = make([]byte, sasl.TokenIDSize)
	rand.Read(t.ID)
	if err := s.Store.FastTokens().Issue(context.Background(), t); err != nil {
		s.t.Fatalf("issue fast token: %v", err)
	}
	return sasl.FastToken(key, t)
}
