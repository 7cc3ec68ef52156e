package sasl

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/credential"
)

// Lookup returns the stored credential of an authentication identity (the
// decoded n= of the client-first message) for the mechanism's family. The
// server passes the name as the client sent it: normalise it as a local part
// before looking it up. Return an error wrapping storage.ErrNotFound when
// there is no such account, or no credential for this family, or the name
// does not normalise: the server then carries on with a decoy so that the
// client cannot tell. Any other error fails with ErrTemporary.
type Lookup func(authcid string) (storage.Credential, error)

// Server is the server side of one SCRAM conversation: make one per <auth/>
// and feed it each client message in turn. It is not safe for concurrent use.
//
// The conversation has two steps. Step(client-first) returns server-first,
// to be sent in a <challenge/>; Step(client-final) returns server-final
// ("v=..."), to be sent in <success/>, and done. If the <auth/> carried no
// initial response, send an empty <challenge/> first: the client's answer is
// the client-first message.
type Server struct {
	// PlusOffered says whether -PLUS mechanisms were offered on this
	// connection. Set it before the first Step. It decides the "y" flag: a
	// client that supports channel binding but believes we do not is being
	// shown a mechanism list with -PLUS removed, a downgrade that RFC 5802
	// §6 says must fail.
	PlusOffered bool

	// Decoy answers for accounts that do not exist; see Decoy.
	Decoy Decoy

	// Offer, if not nil, is what the stream features advertised: its
	// XEP-0474 hash goes into the server-first message as the "h"
	// attribute, which the client proof then signs. Set it before the
	// first Step.
	Offer *Offer

	fam    credential.Family
	plus   bool
	lookup Lookup
	cb     ChannelBinding
	// newNonce makes our half of the nonce; tests replace it to replay the
	// RFC examples.
	newNonce func() string

	state       state
	gs2Header   string // as received, e.g. "p=tls-exporter,,"
	cbType      string
	cbData      []byte
	nonce       string // client's and ours
	clientFirst string // client-first-message-bare
	serverFirst string
	cred        storage.Credential
	decoy       bool
	authcid     string
	authzid     string
}

type state int

const (
	awaitFirst state = iota
	awaitFinal
	succeeded
	failed
)

// NewServer starts a conversation for mech, one of SHA1, SHA1Plus, SHA256
// and SHA256Plus. cb is the connection's channel binding (TLSBinding), nil
// without TLS; -PLUS mechanisms need it. The error wraps ErrInvalidMechanism.
func NewServer(mech string, lookup Lookup, cb ChannelBinding) (*Server, error) {
	f, plus, ok := familyOf(mech)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrInvalidMechanism, mech)
	}
	if lookup == nil {
		return nil, errors.New("scram: new server: nil lookup")
	}
	return &Server{fam: f, plus: plus, lookup: lookup, cb: cb, newNonce: rand.Text}, nil
}

// Step takes the client's next message and returns the answer. done is true
// once the client has proven its identity; out is then the server-final
// message. After an error the conversation is over and Step keeps failing;
// Condition names the failure to send.
func (s *Server) Step(in []byte) (out []byte, done bool, err error) {
	switch s.state {
	case awaitFirst:
		out, err = s.first(in)
		s.state = awaitFinal
	case awaitFinal:
		out, err = s.final(in)
		s.state = succeeded
	default:
		err = fmt.Errorf("%w: message after the conversation ended", ErrMalformed)
	}
	if err != nil {
		s.state = failed
		return nil, false, err
	}
	return out, s.state == succeeded, nil
}

// Username is the authentication identity (authcid) as the client sent it,
// once Step has reported done; empty before. Normalise it as a local part
// before building the JID.
func (s *Server) Username() string {
	if s.state != succeeded {
		return ""
	}
	return s.authcid
}

// Authzid is the authorization identity the client asked for, once Step has
// reported done; empty if none. The caller decides whether Username may act
// as it, and otherwise answers <invalid-authzid/> instead of <success/>.
func (s *Server) Authzid() string {
	if s.state != succeeded {
		return ""
	}
	return s.authzid
}

// ChannelBindingType names the channel binding the client proved, once Step
// has reported done; empty without -PLUS. Worth logging: it shows how many
// clients would break if a binding type were withdrawn.
func (s *Server) ChannelBindingType() string {
	if s.state != succeeded {
		return ""
	}
	return s.cbType
}

// first handles client-first-message (RFC 5802 §7):
//
//	gs2-cbind-flag "," [authzid] "," [reserved-mext ","] username "," nonce ["," extensions]
func (s *Server) first(in []byte) ([]byte, error) {
	msg, err := checkMessage(in)
	if err != nil {
		return nil, err
	}
	flag, rest, ok1 := strings.Cut(msg, ",")
	authz, bare, ok2 := strings.Cut(rest, ",")
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: client-first: no GS2 header", ErrMalformed)
	}
	s.gs2Header = msg[:len(msg)-len(bare)]
	if err := s.parseAuthzid(authz); err != nil {
		return nil, err
	}
	if err := s.parseBare(bare); err != nil {
		return nil, err
	}
	if err := s.bindChannel(flag); err != nil {
		return nil, err
	}
	if err := s.loadCredential(); err != nil {
		return nil, err
	}
	s.nonce += s.newNonce()
	s.serverFirst = "r=" + s.nonce +
		",s=" + base64.StdEncoding.EncodeToString(s.cred.Salt) +
		",i=" + strconv.Itoa(s.cred.Iterations)
	if s.Offer != nil {
		if h, ok := s.Offer.DowngradeHash(s.fam.Name); ok {
			s.serverFirst += ",h=" + h
		}
	}
	return []byte(s.serverFirst), nil
}

func (s *Server) parseAuthzid(authz string) error {
	if authz == "" {
		return nil
	}
	value, ok := strings.CutPrefix(authz, "a=")
	if !ok {
		return fmt.Errorf("%w: client-first: bad GS2 header field %q", ErrMalformed, authz)
	}
	name, err := decodeSaslname(value)
	if err != nil {
		return fmt.Errorf("%w: client-first: %w", ErrInvalidAuthzid, err)
	}
	s.authzid = name
	return nil
}

// parseBare reads client-first-message-bare, which is kept verbatim for the
// AuthMessage.
func (s *Server) parseBare(bare string) error {
	s.clientFirst = bare
	attrs := strings.Split(bare, ",")
	if strings.HasPrefix(attrs[0], "m=") {
		return fmt.Errorf("%w: client-first: unsupported mandatory extension", ErrMalformed)
	}
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return fmt.Errorf("%w: client-first: want n= and r=", ErrMalformed)
	}
	name, err := decodeSaslname(attrs[0][2:])
	if err != nil {
		return fmt.Errorf("%w: client-first: username: %w", ErrMalformed, err)
	}
	s.authcid = name
	if s.nonce = attrs[1][2:]; !validNonce(s.nonce) {
		return fmt.Errorf("%w: client-first: bad nonce", ErrMalformed)
	}
	return checkExtensions(attrs[2:])
}

// bindChannel applies RFC 5802 §6 to the GS2 channel binding flag and
// fetches the binding data the client must have used.
func (s *Server) bindChannel(flag string) error {
	switch {
	case flag == "n" || flag == "y":
		if s.plus {
			return fmt.Errorf("%w: %q flag under a -PLUS mechanism", ErrChannelBinding, flag)
		}
		if flag == "y" && s.PlusOffered {
			return fmt.Errorf("%w: client saw no -PLUS mechanism although we offered one (downgrade?)", ErrChannelBinding)
		}
		return nil
	case strings.HasPrefix(flag, "p="):
		s.cbType = flag[2:]
		if !validBindingName(s.cbType) {
			return fmt.Errorf("%w: client-first: bad channel binding name", ErrMalformed)
		}
		if !s.plus {
			return fmt.Errorf("%w: channel binding %q without a -PLUS mechanism", ErrChannelBinding, s.cbType)
		}
		if s.cb == nil {
			return fmt.Errorf("%w: %q asked for without TLS", ErrChannelBinding, s.cbType)
		}
		data, err := s.cb(s.cbType)
		if err == nil && len(data) == 0 {
			err = fmt.Errorf("%w: %q gave no data", ErrUnsupportedBinding, s.cbType)
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrChannelBinding, err)
		}
		s.cbData = data
		return nil
	}
	return fmt.Errorf("%w: client-first: bad channel binding flag", ErrMalformed)
}

// loadCredential fetches the account's keys, or a decoy's for a missing
// account so that the rest of the conversation looks and costs the same.
func (s *Server) loadCredential() error {
	cred, err := s.lookup(s.authcid)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		s.cred, s.decoy = s.Decoy.Credential(s.fam.Name, s.authcid), true
		return nil
	case err != nil:
		return fmt.Errorf("%w: look up %q: %w", ErrTemporary, s.authcid, err)
	case cred.Mechanism != s.fam.Name:
		return fmt.Errorf("%w: look up %q: got a %s credential for %s", ErrTemporary, s.authcid, cred.Mechanism, s.fam.Name)
	case len(cred.Salt) == 0 || cred.Iterations < 1 ||
		len(cred.StoredKey) != s.fam.Size || len(cred.ServerKey) != s.fam.Size:
		return fmt.Errorf("%w: look up %q: damaged %s credential", ErrTemporary, s.authcid, cred.Mechanism)
	}
	s.cred = cred
	return nil
}

// final handles client-final-message (RFC 5802 §7):
//
//	channel-binding "," nonce ["," extensions] "," proof
func (s *Server) final(in []byte) ([]byte, error) {
	msg, err := checkMessage(in)
	if err != nil {
		return nil, err
	}
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, fmt.Errorf("%w: client-final: no proof", ErrMalformed)
	}
	withoutProof := msg[:i]
	proof, err := base64.StdEncoding.Strict().DecodeString(msg[i+3:])
	if err != nil || len(proof) != s.fam.Size {
		return nil, fmt.Errorf("%w: client-final: bad proof", ErrMalformed)
	}
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, fmt.Errorf("%w: client-final: want c= and r=", ErrMalformed)
	}
	cbind, err := base64.StdEncoding.Strict().DecodeString(attrs[0][2:])
	if err != nil {
		return nil, fmt.Errorf("%w: client-final: bad c=", ErrMalformed)
	}
	if err := checkExtensions(attrs[2:]); err != nil {
		return nil, err
	}
	if attrs[1][2:] != s.nonce {
		return nil, fmt.Errorf("%w: client-final: nonce differs from ours", ErrNotAuthorized)
	}
	if !hmac.Equal(cbind, append([]byte(s.gs2Header), s.cbData...)) {
		return nil, fmt.Errorf("%w: client-final: c= does not match the GS2 header and our binding data", ErrChannelBinding)
	}
	return s.verify(withoutProof, proof)
}

// verify checks the ClientProof against StoredKey and, if it holds, signs
// the exchange with ServerKey (RFC 5802 §3).
func (s *Server) verify(finalWithoutProof string, proof []byte) ([]byte, error) {
	authMessage := []byte(s.clientFirst + "," + s.serverFirst + "," + finalWithoutProof)
	clientKey := s.fam.HMAC(s.cred.StoredKey, authMessage)
	subtle.XORBytes(clientKey, clientKey, proof)
	if !hmac.Equal(s.fam.Hash(clientKey), s.cred.StoredKey) || s.decoy {
		return nil, fmt.Errorf("%w: wrong proof for %q", ErrNotAuthorized, s.authcid)
	}
	signature := s.fam.HMAC(s.cred.ServerKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(signature)), nil
}
