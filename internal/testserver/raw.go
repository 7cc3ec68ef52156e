package testserver

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/xmppd/xmppd/router"
)

// Header is the stream header a well-behaved client opens with.
const Header = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='` + Domain + `' version='1.0'>`

// Raw is a client connection driven by hand, byte for byte, for what a
// client library would not send: input before TLS, broken XML, bad stream
// headers, SCRAM with a chosen channel binding, silence. What the server
// sends is read with router.Reader, one top-level element at a time.
type Raw struct {
	s    *Server
	Conn net.Conn  // the current transport: TCP, or TLS over it
	TLS  *tls.Conn // nil before TLS
	r    *router.Reader
	// StreamHeader and Features are what the server sent last on opening a
	// stream.
	StreamHeader string
	Features     *router.Element
	// LastFailureText is the <text/> of the last SASL <failure/> that
	// AuthPlain or AuthSCRAM saw, "" if it had none.
	LastFailureText string
	// LastServerFirst is the SCRAM server-first message AuthSCRAM last
	// received, for checks of its attributes (XEP-0474's h=).
	LastServerFirst string

	// ws is the WebSocket of a connection made by DialWebSocket (nil on
	// TCP), whose messages are the elements (websocket.go).
	ws        *websocket.Conn
	lastFrame string
	// bosh is the BOSH client of a session made by DialBOSH (bosh.go).
	bosh *BOSHClient
}

// reopen is the header a stream is restarted with after SASL.
func (c *Raw) reopen() string {
	if c.ws != nil {
		return WSOpen
	}
	if c.bosh != nil {
		return "" // a restart request (XEP-0206 §5)
	}
	return Header
}

// rawTimeout bounds each read of a Raw connection.
const rawTimeout = 10 * time.Second

// DialRaw connects to the STARTTLS listener and sends nothing yet. The
// connection is closed when the test ends.
func (s *Server) DialRaw() (*Raw, error) {
	nc, err := net.Dial("tcp", s.StartTLSAddr())
	if err != nil {
		return nil, err
	}
	s.t.Cleanup(func() { nc.Close() })
	return &Raw{s: s, Conn: nc}, nil
}

// DialRawStartTLS connects to the STARTTLS listener, opens a stream and
// negotiates STARTTLS with cfg (nil means TLSConfig()): the connection
// then stands where a client does before SASL. It is closed when the test
// ends.
func (s *Server) DialRawStartTLS(cfg *tls.Config) (*Raw, error) {
	c, err := s.DialRaw()
	if err != nil {
		return nil, err
	}
	if _, err := c.Open(Header); err != nil {
		return nil, err
	}
	if err := c.StartTLS(cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// DialRawTLS connects to the direct TLS listener (ALPN xmpp-client) and
// completes the TLS handshake. cfg nil means TLSConfig().
func (s *Server) DialRawTLS(cfg *tls.Config) (*Raw, error) {
	if cfg == nil {
		cfg = s.TLSConfig()
	}
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"xmpp-client"}
	tc, err := tls.Dial("tcp", s.DirectTLSAddr(), cfg)
	if err != nil {
		return nil, err
	}
	s.t.Cleanup(func() { tc.Close() })
	return &Raw{s: s, Conn: tc, TLS: tc}, nil
}

// LoginRaw connects, negotiates STARTTLS, authenticates with PLAIN and binds
// resource (the server picks one if it is ""), failing the test on error.
func (s *Server) LoginRaw(local, password, resource string) *Raw {
	s.t.Helper()
	c, err := s.DialRaw()
	if err == nil {
		err = c.Login(local, password, resource)
	}
	if err != nil {
		s.t.Fatalf("raw login %s: %v", local, err)
	}
	return c
}

// Login negotiates STARTTLS, PLAIN and binding on a fresh connection.
func (c *Raw) Login(local, password, resource string) error {
	if _, err := c.Open(Header); err != nil {
		return err
	}
	if err := c.StartTLS(nil); err != nil {
		return err
	}
	if cond, err := c.AuthPlain(local, password); err != nil || cond != "" {
		return fmt.Errorf("auth: %q %v", cond, err)
	}
	_, err := c.Bind(resource)
	return err
}

// Send writes s as it is.
func (c *Raw) Send(s string) error {
	if c.bosh != nil {
		return c.boshSend(s)
	}
	if c.ws != nil {
		return c.wsSend(s)
	}
	c.Conn.SetWriteDeadline(time.Now().Add(rawTimeout))
	_, err := io.WriteString(c.Conn, s)
	return err
}

// Open sends a stream header and reads the server's header and the element
// after it: the stream features, or a stream error.
func (c *Raw) Open(header string) (*router.Element, error) {
	if c.bosh != nil {
		return c.boshRestart()
	}
	if err := c.Send(header); err != nil {
		return nil, err
	}
	if c.ws != nil {
		return c.wsOpen()
	}
	c.r = router.NewReader(deadlineReader{c.Conn}, router.NSClient, 0, 0)
	h, err := c.r.Header()
	if err != nil {
		return nil, fmt.Errorf("read stream header: %w", err)
	}
	var b strings.Builder
	for _, a := range h.Attr {
		fmt.Fprintf(&b, " %s=%q", a.Name.Local, a.Value)
	}
	c.StreamHeader = b.String()
	e, err := c.Next()
	if err != nil {
		return nil, err
	}
	c.Features = e
	return e, nil
}

// deadlineReader gives every read of the server's stream a deadline, so a
// test never hangs on a server that says nothing.
type deadlineReader struct{ c net.Conn }

func (r deadlineReader) Read(p []byte) (int, error) {
	r.c.SetReadDeadline(time.Now().Add(rawTimeout))
	return r.c.Read(p)
}

// Next reads the next top-level element the server sent.
func (c *Raw) Next() (*router.Element, error) {
	if c.bosh != nil {
		return c.boshNext()
	}
	if c.ws != nil {
		return c.wsNext()
	}
	if c.r == nil {
		return nil, errors.New("raw: no stream open")
	}
	return c.r.Next()
}

// Request sends an IQ given as text, which must have an id, and returns the
// answer with that id, skipping other elements.
func (c *Raw) Request(iq string) (*router.Element, error) {
	req, err := router.ParseElement([]byte(iq), router.NSClient)
	if err != nil {
		return nil, err
	}
	if err := c.Send(iq); err != nil {
		return nil, err
	}
	for {
		e, err := c.Next()
		if err != nil {
			return nil, err
		}
		if StreamErrorCondition(e) != "" {
			return nil, fmt.Errorf("stream error %s", StreamErrorCondition(e))
		}
		if e.Name.Local == "iq" && e.Get("id") == req.Get("id") {
			return e, nil
		}
	}
}

// StartTLS asks for TLS, completes the handshake with cfg (nil means
// TLSConfig()) and opens a new stream over it.
func (c *Raw) StartTLS(cfg *tls.Config) error {
	if err := c.Send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`); err != nil {
		return err
	}
	e, err := c.Next()
	if err != nil {
		return err
	}
	if e.Name.Local != "proceed" {
		return fmt.Errorf("starttls: got %s", e)
	}
	if cfg == nil {
		cfg = c.s.TLSConfig()
	}
	tc := tls.Client(c.Conn, cfg)
	tc.SetDeadline(time.Now().Add(rawTimeout))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	tc.SetDeadline(time.Time{})
	c.Conn, c.TLS = tc, tc
	_, err = c.Open(Header)
	return err
}

// AuthPlain authenticates with SASL PLAIN. It returns the condition of the
// server's <failure/>, or "" after success, when it has also restarted the
// stream.
func (c *Raw) AuthPlain(local, password string) (cond string, err error) {
	msg := base64.StdEncoding.EncodeToString([]byte("\x00" + local + "\x00" + password))
	if err := c.Send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + msg + `</auth>`); err != nil {
		return "", err
	}
	e, err := c.Next()
	if err != nil {
		return "", err
	}
	return c.saslOutcome(e, nil)
}

// saslOutcome reads the end of a SASL exchange. check, if not nil, checks
// the additional data of <success/>.
func (c *Raw) saslOutcome(e *router.Element, check func([]byte) error) (string, error) {
	switch {
	case e.Name.Space == nsSASL && e.Name.Local == "failure":
		c.LastFailureText = ""
		if t := e.Child(nsSASL, "text"); t != nil {
			c.LastFailureText = t.Text()
		}
		for _, cond := range e.Elements() {
			if cond.Name.Local != "text" {
				return cond.Name.Local, nil
			}
		}
		return "", fmt.Errorf("sasl failure without condition: %s", e)
	case e.Name.Space == nsSASL && e.Name.Local == "success":
		if check != nil {
			data, err := base64.StdEncoding.DecodeString(e.Text())
			if err != nil {
				return "", fmt.Errorf("success data: %w", err)
			}
			if err := check(data); err != nil {
				return "", err
			}
		}
		_, err := c.Open(c.reopen())
		return "", err
	}
	return "", fmt.Errorf("sasl: unexpected %s", e)
}

// SCRAM says how AuthSCRAM runs a SCRAM exchange.
type SCRAM struct {
	// Mechanism is SCRAM-SHA-1, SCRAM-SHA-256 or one of their -PLUS forms.
	Mechanism string
	// Binding is the channel binding type for a -PLUS mechanism:
	// tls-exporter, tls-server-end-point or tls-unique.
	Binding string
	// GS2Flag overrides the GS2 channel binding flag: "y" claims that the
	// client supports channel binding but thinks the server does not (the
	// downgrade RFC 5802 §6 makes the server refuse).
	GS2Flag string
	// BindingData, if not nil, is sent instead of the connection's channel
	// binding data, as by a man in the middle who sees another connection.
	BindingData []byte
}

// AuthSCRAM runs a SCRAM exchange (RFC 5802, RFC 7677) written from the RFC,
// independent of both mellium and the server's code, and verifies the
// server's signature. It returns the condition of the server's <failure/>,
// or "" after success, when it has also restarted the stream.
func (c *Raw) AuthSCRAM(local, password string, o SCRAM) (cond string, err error) {
	sc, err := c.newSCRAMClient(local, o)
	if err != nil {
		return "", err
	}
	first := base64.StdEncoding.EncodeToString([]byte(sc.first()))
	if err := c.Send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='` + o.Mechanism + `'>` + first + `</auth>`); err != nil {
		return "", err
	}
	e, err := c.Next()
	if err != nil {
		return "", err
	}
	if e.Name.Local != "challenge" {
		return c.saslOutcome(e, nil)
	}
	final, err := sc.final(e.Text(), password)
	if err != nil {
		return "", err
	}
	if err := c.Send(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>` + final + `</response>`); err != nil {
		return "", err
	}
	if e, err = c.Next(); err != nil {
		return "", err
	}
	return c.saslOutcome(e, sc.verify)
}

// scramClient is the client side of one SCRAM exchange, for AuthSCRAM and
// the SASL2 client (sasl2.go).
type scramClient struct {
	c           *Raw
	h           func() hash.Hash
	gs2         string
	cbData      []byte
	bare        string // client-first-message-bare
	authMessage string
	salted      []byte
}

func (c *Raw) newSCRAMClient(local string, o SCRAM) (*scramClient, error) {
	family, plus := strings.CutSuffix(o.Mechanism, "-PLUS")
	sc := &scramClient{c: c, gs2: "n,,"}
	switch family {
	case "SCRAM-SHA-1":
		sc.h = sha1.New
	case "SCRAM-SHA-256":
		sc.h = sha256.New
	default:
		return nil, fmt.Errorf("scram: unknown mechanism %s", o.Mechanism)
	}
	switch {
	case o.GS2Flag != "":
		sc.gs2 = o.GS2Flag + ",,"
	case plus:
		sc.gs2 = "p=" + o.Binding + ",,"
		if c.TLS == nil {
			return nil, errors.New("scram: -PLUS needs TLS")
		}
		sc.cbData = o.BindingData
		if sc.cbData == nil {
			cs := c.TLS.ConnectionState()
			var err error
			if sc.cbData, err = ClientBinding(&cs, o.Binding); err != nil {
				return nil, err
			}
		}
	}
	sc.bare = "n=" + local + ",r=" + rand.Text()
	return sc, nil
}

// first is the client-first-message.
func (sc *scramClient) first() string { return sc.gs2 + sc.bare }

// final takes the server-first-message in base64 (recorded as
// Raw.LastServerFirst) and returns the client-final-message in base64.
func (sc *scramClient) final(challenge, password string) (string, error) {
	serverFirst, err := base64.StdEncoding.DecodeString(strings.TrimSpace(challenge))
	if err != nil {
		return "", fmt.Errorf("scram: challenge: %w", err)
	}
	sc.c.LastServerFirst = string(serverFirst)
	attrs := map[byte]string{}
	for _, f := range strings.Split(string(serverFirst), ",") {
		if len(f) >= 2 && f[1] == '=' {
			attrs[f[0]] = f[2:]
		}
	}
	salt, err := base64.StdEncoding.DecodeString(attrs['s'])
	if err != nil {
		return "", fmt.Errorf("scram: salt: %w", err)
	}
	var iter int
	if _, err := fmt.Sscan(attrs['i'], &iter); err != nil {
		return "", fmt.Errorf("scram: iteration count: %w", err)
	}
	if !strings.HasPrefix(attrs['r'], sc.bare[strings.Index(sc.bare, ",r=")+3:]) {
		return "", errors.New("scram: server nonce does not extend ours")
	}
	finalNoProof := "c=" + base64.StdEncoding.EncodeToString(append([]byte(sc.gs2), sc.cbData...)) + ",r=" + attrs['r']
	sc.authMessage = sc.bare + "," + string(serverFirst) + "," + finalNoProof
	if sc.salted, err = saltedPassword(sc.h, password, salt, iter); err != nil {
		return "", err
	}
	clientKey := hmacSum(sc.h, sc.salted, "Client Key")
	storedKey := sc.h()
	storedKey.Write(clientKey)
	signature := hmacSum(sc.h, storedKey.Sum(nil), sc.authMessage)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ signature[i]
	}
	final := finalNoProof + ",p=" + base64.StdEncoding.EncodeToString(proof)
	return base64.StdEncoding.EncodeToString([]byte(final)), nil
}

// saltedKeys caches SaltedPassword by its inputs, as real clients keep
// it (RFC 5802 §5.1 allows it), so that a benchmark of logins measures
// the server's work and not the client's PBKDF2.
var saltedKeys sync.Map

// saltedPassword is RFC 5802's Hi(password, salt, i), cached.
func saltedPassword(h func() hash.Hash, password string, salt []byte, iter int) ([]byte, error) {
	key := fmt.Sprintf("%d %s %x %d", h().Size(), password, salt, iter)
	if v, ok := saltedKeys.Load(key); ok {
		return v.([]byte), nil
	}
	salted, err := pbkdf2.Key(h, password, salt, iter, h().Size())
	if err != nil {
		return nil, err
	}
	saltedKeys.Store(key, salted)
	return salted, nil
}

// verify checks the server-final-message of <success/>.
func (sc *scramClient) verify(data []byte) error {
	serverSig := hmacSum(sc.h, hmacSum(sc.h, sc.salted, "Server Key"), sc.authMessage)
	if string(data) != "v="+base64.StdEncoding.EncodeToString(serverSig) {
		return fmt.Errorf("scram: wrong server signature %q", data)
	}
	return nil
}

func hmacSum(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// ClientBinding computes the channel binding data of a TLS connection as a
// client sees it (RFC 9266, RFC 5929).
func ClientBinding(cs *tls.ConnectionState, typ string) ([]byte, error) {
	switch typ {
	case "tls-exporter":
		return cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
	case "tls-unique":
		if len(cs.TLSUnique) == 0 {
			return nil, errors.New("no tls-unique on this connection")
		}
		return append([]byte(nil), cs.TLSUnique...), nil
	case "tls-server-end-point":
		if len(cs.PeerCertificates) == 0 {
			return nil, errors.New("no server certificate")
		}
		cert := cs.PeerCertificates[0]
		var h hash.Hash
		switch cert.SignatureAlgorithm {
		case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
			h = sha512.New384()
		case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
			h = sha512.New()
		default: // MD5 and SHA-1 are replaced by SHA-256 (RFC 5929 §4.1)
			h = sha256.New()
		}
		h.Write(cert.Raw)
		return h.Sum(nil), nil
	}
	return nil, fmt.Errorf("unknown channel binding type %q", typ)
}

// Bind binds resource ("" lets the server choose) and returns the full JID,
// or an error naming the stanza error's condition.
func (c *Raw) Bind(resource string) (string, error) {
	payload := `<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>`
	if resource != "" {
		payload = `<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>` + resource + `</resource></bind>`
	}
	e, err := c.Request(`<iq type='set' id='bind-1'>` + payload + `</iq>`)
	if err != nil {
		return "", err
	}
	if e.Get("type") != "result" {
		cond, _ := ErrorCondition(e)
		return "", fmt.Errorf("bind: %s", cond)
	}
	b := e.Child(nsBind, "bind")
	if b == nil || b.Child(nsBind, "jid") == nil {
		return "", fmt.Errorf("bind: no jid in %s", e)
	}
	return b.Child(nsBind, "jid").Text(), nil
}

// WaitStreamError reads until the server sends a stream error, skipping
// (and never answering) everything else, and returns its condition. It then
// checks that the server closed the stream and the connection.
func (c *Raw) WaitStreamError(timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		e, err := c.Next()
		if err != nil {
			return "", err
		}
		if cond := StreamErrorCondition(e); cond != "" {
			return cond, c.WaitClosed()
		}
	}
	return "", errors.New("no stream error in time")
}

// WaitClosed checks that the server ends the stream (</stream:stream>) and
// closes the connection.
func (c *Raw) WaitClosed() error {
	if _, err := c.Next(); !errors.Is(err, router.ErrStreamEnd) {
		return fmt.Errorf("after the stream error: want </stream:stream>, got %v", err)
	}
	if c.ws != nil {
		return c.wsWaitClosed()
	}
	if c.bosh != nil {
		return nil // the terminate body ended the session
	}
	c.Conn.SetReadDeadline(time.Now().Add(rawTimeout))
	var buf [1]byte
	_, err := c.Conn.Read(buf[:])
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("connection still open after </stream:stream> (read: %v)", err)
	}
	return nil
}
