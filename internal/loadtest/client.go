// Package loadtest opens many authenticated client sessions to an XMPP
// server and holds them, to measure what idle sessions cost the server.
//
// The client is written by hand on encoding/xml and crypto/tls rather than
// with mellium's client: a load client must be cheap enough that thousands
// of its sessions do not dominate the machine, and once a session is bound it
// keeps nothing but its TLS connection (no goroutine, no decoder). It speaks
// only what the measurement needs: STARTTLS or direct TLS, SASL SCRAM
// (its own, without channel binding, with the salted password cached per
// account: scram.go) or PLAIN, an optional roster request,
// resource binding, optional stream management (XEP-0198, with or without
// resumption, so that a dropped connection leaves a hibernating session to
// measure) and an optional initial presence, so it works against any
// RFC 6120 server (xmppd, Prosody, ejabberd).
package loadtest

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Namespaces the client negotiates.
const (
	nsClient = "jabber:client"
	nsStream = "http://etherx.jabber.org/streams"
	nsTLS    = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL   = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind   = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSM     = "urn:xmpp:sm:3"
)

// Stream management modes of Options.StreamManagement.
const (
	// SMEnable enables XEP-0198 stream management without resumption.
	SMEnable = "enable"
	// SMResume enables it with resume='true': a dropped connection leaves
	// the session hibernating on the server.
	SMResume = "resume"
)

// Account is who one session logs in as.
type Account struct {
	// Local is the user name (the local part of the JID).
	Local    string
	Password string
	// Resource is the resource to bind; empty lets the server choose.
	Resource string
}

// Options say how to reach the server.
type Options struct {
	// Addr is the host:port to connect to.
	Addr string
	// Domain is the XMPP domain: the stream's 'to' and the TLS server name.
	Domain string
	// TLS configures the client side of TLS; ServerName defaults to Domain.
	TLS *tls.Config
	// DirectTLS starts TLS at once (XEP-0368) instead of with STARTTLS.
	DirectTLS bool
	// Mechanism is the SASL mechanism: SCRAM-SHA-256, SCRAM-SHA-1 or
	// PLAIN; empty means the first of these that the server offers.
	Mechanism string
	// Roster asks for the roster after binding and waits for it, as
	// clients do before their presence (RFC 6121 §2.2).
	Roster bool
	// Presence sends an initial <presence/> after binding, as clients do.
	Presence bool
	// StreamManagement is "" (none), SMEnable or SMResume: after binding
	// the session enables XEP-0198 (before its presence, as mobile clients
	// do), then pings the server and acknowledges every stanza it got, so
	// that the server holds nothing unacknowledged for it.
	StreamManagement string
	// Timeout bounds the whole negotiation of one session; 0 means 30 s.
	Timeout time.Duration
}

// Session is one bound client session. It reads nothing after binding:
// what the server sends waits in the socket buffers, until a scenario
// reads it (Reader).
type Session struct {
	conn net.Conn
	// br holds what the negotiation read ahead; see Reader.
	br *bufio.Reader
	// JID is the full JID the server bound.
	JID string
	// SMID is the stream management resumption id, with SMResume.
	SMID string
}

// Close ends the stream politely and closes the connection.
func (s *Session) Close() error {
	s.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	io.WriteString(s.conn, "</stream:stream>")
	return s.conn.Close()
}

// Drop closes the TCP connection as a lost network would look to the
// server: a reset (SO_LINGER 0), without </stream:stream> or a TLS
// close_notify. With SMResume the server keeps the session hibernating.
func (s *Session) Drop() error {
	raw := s.conn
	if tc, ok := raw.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		if err := tcp.SetLinger(0); err != nil {
			raw.Close()
			return fmt.Errorf("loadtest: drop: %w", err)
		}
	}
	return raw.Close()
}

// Conn is the session's connection (TLS), for callers that want to send.
func (s *Session) Conn() net.Conn { return s.conn }

// Reader reads what the server sends after binding, starting with what
// the negotiation had already read ahead.
func (s *Session) Reader() io.Reader { return s.br }

// Dial connects, negotiates TLS, authenticates with SASL and binds a
// resource.
func Dial(ctx context.Context, o Options, a Account) (*Session, error) {
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("loadtest: dial %s: %w", o.Addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	n := &negotiator{o: o, a: a, conn: raw}
	s, err := n.run(ctx)
	if err != nil {
		n.conn.Close()
		return nil, fmt.Errorf("loadtest: %s: %w", a.Local, err)
	}
	s.conn.SetDeadline(time.Time{})
	return s, nil
}

// negotiator holds the state of one negotiation; it is dropped once the
// session is bound.
type negotiator struct {
	o    Options
	a    Account
	conn net.Conn
	br   *bufio.Reader
	dec  *xml.Decoder
}

func (n *negotiator) run(ctx context.Context) (*Session, error) {
	if n.o.DirectTLS {
		if err := n.handshake(ctx); err != nil {
			return nil, err
		}
	} else {
		f, err := n.open()
		if err != nil {
			return nil, err
		}
		if f.child(nsTLS, "starttls") == nil {
			return nil, errors.New("server offers no STARTTLS")
		}
		if err := n.send(`<starttls xmlns='` + nsTLS + `'/>`); err != nil {
			return nil, err
		}
		e, err := n.next()
		if err != nil {
			return nil, err
		}
		if e.XMLName.Local != "proceed" {
			return nil, fmt.Errorf("starttls: got <%s>", e.XMLName.Local)
		}
		if err := n.handshake(ctx); err != nil {
			return nil, err
		}
	}
	f, err := n.open()
	if err != nil {
		return nil, err
	}
	if err := n.authenticate(f); err != nil {
		return nil, err
	}
	if _, err := n.open(); err != nil {
		return nil, err
	}
	bind := `<iq type='set' id='bind1'><bind xmlns='` + nsBind + `'>`
	if n.a.Resource != "" {
		bind += `<resource>` + escape(n.a.Resource) + `</resource>`
	}
	if err := n.send(bind + `</bind></iq>`); err != nil {
		return nil, err
	}
	e, err := n.next()
	if err != nil {
		return nil, err
	}
	j := e.child(nsBind, "bind").child(nsBind, "jid")
	if e.XMLName.Local != "iq" || e.attr("type") != "result" || j == nil {
		return nil, fmt.Errorf("bind: got <%s type=%q> %s", e.XMLName.Local, e.attr("type"), e.inner())
	}
	sess := &Session{conn: n.conn, br: n.br, JID: j.Text}
	if n.o.Roster {
		if err := n.roster(); err != nil {
			return nil, err
		}
	}
	if n.o.StreamManagement != "" {
		if sess.SMID, err = n.enableSM(); err != nil {
			return nil, err
		}
		return sess, nil
	}
	if n.o.Presence {
		if err := n.send(`<presence/>`); err != nil {
			return nil, err
		}
	}
	return sess, nil
}

// roster asks for the roster and reads until its answer.
func (n *negotiator) roster() error {
	if err := n.send(`<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>`); err != nil {
		return err
	}
	for {
		e, err := n.next()
		if err != nil {
			return err
		}
		if e.XMLName.Local == "iq" && e.attr("id") == "roster1" {
			if e.attr("type") != "result" {
				return fmt.Errorf("roster: got <iq type=%q> %s", e.attr("type"), e.inner())
			}
			return nil
		}
	}
}

// enableSM enables stream management (XEP-0198 §3), sends the initial
// presence if asked, then pings the server and, once the answer is in,
// acknowledges every stanza received since <enabled/>: the server's
// queue of unacknowledged stanzas for this session is then empty. It
// returns the resumption id (empty without resumption).
func (n *negotiator) enableSM() (string, error) {
	enable := `<enable xmlns='` + nsSM + `'/>`
	if n.o.StreamManagement == SMResume {
		enable = `<enable xmlns='` + nsSM + `' resume='true'/>`
	} else if n.o.StreamManagement != SMEnable {
		return "", fmt.Errorf("stream management mode %q: want %q or %q", n.o.StreamManagement, SMEnable, SMResume)
	}
	if err := n.send(enable); err != nil {
		return "", err
	}
	e, err := n.next()
	if err != nil {
		return "", err
	}
	if e.XMLName.Space != nsSM || e.XMLName.Local != "enabled" {
		return "", fmt.Errorf("sm enable: got <%s> %s", e.XMLName.Local, e.inner())
	}
	id := e.attr("id")
	if n.o.StreamManagement == SMResume && (id == "" || (e.attr("resume") != "true" && e.attr("resume") != "1")) {
		return "", fmt.Errorf("sm enable: resumption refused: <enabled id=%q resume=%q/>", id, e.attr("resume"))
	}
	if n.o.Presence {
		if err := n.send(`<presence/>`); err != nil {
			return "", err
		}
	}
	if err := n.send(`<iq type='get' id='sm-ping'><ping xmlns='urn:xmpp:ping'/></iq>`); err != nil {
		return "", err
	}
	handled := 0
read:
	for {
		e, err := n.next()
		if err != nil {
			return "", err
		}
		if e.XMLName.Space == nsSM {
			if e.XMLName.Local == "r" {
				if err := n.send(fmt.Sprintf(`<a xmlns='%s' h='%d'/>`, nsSM, handled)); err != nil {
					return "", err
				}
			}
			continue
		}
		switch e.XMLName.Local {
		case "message", "presence", "iq":
			handled++
		}
		if e.XMLName.Local == "iq" && e.attr("id") == "sm-ping" {
			break read
		}
	}
	if err := n.send(fmt.Sprintf(`<a xmlns='%s' h='%d'/>`, nsSM, handled)); err != nil {
		return "", err
	}
	return id, nil
}

// authenticate runs SASL with the mechanism chosen in Options (or the
// strongest offered) until <success/>.
func (n *negotiator) authenticate(features *node) error {
	mech, err := n.mechanism(features)
	if err != nil {
		return err
	}
	var sc *scram
	resp := []byte("\x00" + n.a.Local + "\x00" + n.a.Password)
	if mech != "PLAIN" {
		if sc, err = newSCRAM(mech, n.a.Local, n.a.Password); err != nil {
			return err
		}
		resp = sc.first()
	}
	if err := n.send(`<auth xmlns='` + nsSASL + `' mechanism='` + mech + `'>` + encodeSASL(resp) + `</auth>`); err != nil {
		return err
	}
	for {
		e, err := n.next()
		if err != nil {
			return err
		}
		switch e.XMLName.Local {
		case "challenge":
			ch, err := base64.StdEncoding.DecodeString(e.Text)
			if err != nil {
				return fmt.Errorf("sasl challenge: %w", err)
			}
			if sc == nil {
				return errors.New("sasl PLAIN: got a challenge")
			}
			if resp, err = sc.final(ch); err != nil {
				return fmt.Errorf("sasl %s: %w", mech, err)
			}
			if err := n.send(`<response xmlns='` + nsSASL + `'>` + encodeSASL(resp) + `</response>`); err != nil {
				return err
			}
		case "success":
			if sc != nil {
				data, err := base64.StdEncoding.DecodeString(e.Text)
				if err != nil {
					return fmt.Errorf("sasl success: %w", err)
				}
				if err := sc.verify(data); err != nil {
					return fmt.Errorf("sasl %s: %w", mech, err)
				}
			}
			return nil
		default:
			return fmt.Errorf("sasl %s: got <%s> %s", mech, e.XMLName.Local, e.inner())
		}
	}
}

// mechanisms the client knows, strongest first.
var mechanisms = []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}

// mechanism picks Options.Mechanism, or the strongest one offered.
func (n *negotiator) mechanism(features *node) (string, error) {
	for _, m := range mechanisms {
		if (n.o.Mechanism == "" || n.o.Mechanism == m) && features.offers(m) {
			return m, nil
		}
	}
	if n.o.Mechanism != "" {
		return "", fmt.Errorf("server does not offer SASL %s", n.o.Mechanism)
	}
	return "", errors.New("server offers none of SCRAM-SHA-256, SCRAM-SHA-1, PLAIN")
}

// encodeSASL encodes a SASL payload; "=" is an empty one (RFC 6120 §6.4.2).
func encodeSASL(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

// handshake runs the TLS client handshake.
func (n *negotiator) handshake(ctx context.Context) error {
	cfg := &tls.Config{}
	if n.o.TLS != nil {
		cfg = n.o.TLS.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = n.o.Domain
	}
	if n.o.DirectTLS && cfg.NextProtos == nil {
		cfg.NextProtos = []string{"xmpp-client"}
	}
	tc := tls.Client(n.conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	n.conn = tc
	return nil
}

// open sends a stream header, reads the server's, and returns its features.
func (n *negotiator) open() (*node, error) {
	if err := n.send(`<?xml version='1.0'?><stream:stream xmlns='` + nsClient + `' xmlns:stream='` + nsStream +
		`' to='` + escape(n.o.Domain) + `' version='1.0' xml:lang='en'>`); err != nil {
		return nil, err
	}
	// The decoder reads through a buffer of ours, so that what it read
	// ahead of the last answer is not lost to the session (Session.Reader).
	n.br = bufio.NewReader(n.conn)
	n.dec = xml.NewDecoder(n.br)
	for {
		tok, err := n.dec.Token()
		if err != nil {
			return nil, fmt.Errorf("read stream header: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Space != nsStream || se.Name.Local != "stream" {
				return nil, fmt.Errorf("expected a stream header, got <%s>", se.Name.Local)
			}
			break
		}
	}
	f, err := n.next()
	if err != nil {
		return nil, err
	}
	if f.XMLName.Space != nsStream || f.XMLName.Local != "features" {
		return nil, fmt.Errorf("expected stream features, got <%s> %s", f.XMLName.Local, f.inner())
	}
	return f, nil
}

// next reads the next top-level element; a stream error or the end of the
// stream is an error.
func (n *negotiator) next() (*node, error) {
	for {
		tok, err := n.dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			e := &node{}
			if err := n.dec.DecodeElement(e, &t); err != nil {
				return nil, err
			}
			if e.XMLName.Space == nsStream && e.XMLName.Local == "error" {
				return nil, fmt.Errorf("stream error: %s", e.inner())
			}
			return e, nil
		case xml.EndElement:
			return nil, errors.New("server closed the stream")
		}
	}
}

func (n *negotiator) send(s string) error {
	_, err := io.WriteString(n.conn, s)
	return err
}

// node is a generic XML element, enough to read negotiation answers.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []*node    `xml:",any"`
}

func (e *node) child(space, local string) *node {
	if e == nil {
		return nil
	}
	for _, c := range e.Nodes {
		if c.XMLName.Space == space && c.XMLName.Local == local {
			return c
		}
	}
	return nil
}

func (e *node) attr(name string) string {
	for _, a := range e.Attrs {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// offers tells whether features list a SASL mechanism.
func (e *node) offers(mech string) bool {
	for _, m := range e.child(nsSASL, "mechanisms").Nodes {
		if m.XMLName.Local == "mechanism" && m.Text == mech {
			return true
		}
	}
	return false
}

// inner describes an element's children for error messages, two levels
// deep: enough to show a stanza error's condition.
func (e *node) inner() string {
	s := ""
	for _, c := range e.Nodes {
		s += "<" + c.XMLName.Local + ">"
		for _, cc := range c.Nodes {
			s += "<" + cc.XMLName.Local + "/>"
		}
		s += strings.TrimSpace(c.Text) + "</" + c.XMLName.Local + ">"
	}
	return s
}

func escape(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '\'':
			b = append(b, "&apos;"...)
		case '"':
			b = append(b, "&quot;"...)
		default:
			b = append(b, c)
		}
	}
	return string(b)
}
