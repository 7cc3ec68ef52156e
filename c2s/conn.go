package c2s

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/internal/connlimit"
	"github.com/xmppd/xmppd/router"
)

// Namespaces of stream negotiation (RFC 6120 §5–7).
const (
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession = "urn:ietf:params:xml:ns:xmpp-session"
	nsStreams = "urn:ietf:params:xml:ns:xmpp-streams"
	nsSASLCB  = "urn:xmpp:sasl-cb:0" // XEP-0440
	nsPing    = "urn:xmpp:ping"
)

// writeTimeout bounds one write to a client; a client that does not read for
// this long is treated as gone.
const writeTimeout = 30 * time.Second

// conn is one client connection, from accept to close, and the Transport
// of the session it carries: TCP with STARTTLS, direct TLS, or a WebSocket
// (RFC 7395, websocket.go). Negotiation (negotiate.go, sasl.go, bind.go,
// resume.go) and the session are the same code for all: only how the
// stream is framed differs, which is ws's (nil for TCP) in the methods
// next, write, appendHeader, appendEnd, readHeader and writeFinal. Before
// binding, its reading goroutine negotiates and writes directly; once
// bound it carries a Session, which writes through its bounded queue and
// writer goroutine.
type conn struct {
	srv  *Server
	raw  net.Conn // the TCP connection, for deadlines set by other goroutines
	nc   net.Conn // the transport: TCP, or TLS over it
	tls  *tls.Conn
	leaf *x509.Certificate // the certificate we presented
	ws   *wsFraming        // the WebSocket framing; nil on TCP
	bosh *boshSession      // the BOSH session (bosh.go); nil otherwise; raw and nc are then nil
	addr net.Addr          // the client's address
	ip   string
	log  *slog.Logger
	in   *router.Reader

	// Negotiation state, touched by the reading goroutine only.
	host string // the served domain the client asked for
	peer string // the client's stream from, echoed as our to
	// The flags are together, so that they take one word.
	directTLS  bool
	headerSent bool
	authed     bool
	bound      bool
	pinged     bool
	user       string // local part, once authenticated
	// agent is the SASL2 <user-agent/>, once authenticated with SASL2.
	agent        UserAgent
	saslFailures int // wrong credentials on this stream
	// otherFailures counts the SASL failures that are not wrong
	// credentials (see maxOtherFailures).
	otherFailures int
	deadline      time.Time // negotiation must finish by then

	// IQs before SASL (preauth.go): how many were seen, and the
	// per-connection answerers of their handlers, by namespace.
	preAuthRequests int
	preAuth         map[string]func(context.Context, *router.Stanza) *router.Stanza

	// sess is the session this connection carries once bound; set by the
	// reading goroutine.
	sess *Session
	// stepState is the negotiation steps' state of this connection
	// (Negotiation.State).
	stepState router.SessionState

	writeMu sync.Mutex
	// writesStopped is set when the session this connection carried is
	// resumed elsewhere (interruptWrites): a write blocked on a dead
	// socket must not hold the resumption up for the write timeout.
	writesStopped atomic.Bool
	closeOnce     sync.Once
	finishOnce    sync.Once
	// pending is the connection's place among its address's
	// unauthenticated connections; negotiation reports its progress there.
	// Touched by the reading goroutine only; nil once released.
	pending *connlimit.Ticket
	done    chan struct{} // closed by Close
	cause   error         // why; set before done is closed
}

func newConn(s *Server, nc net.Conn, directTLS bool) *conn {
	return newConnFrom(s, nc, nc.RemoteAddr(), directTLS)
}

// newConnFrom returns a connection over nc from the client at addr (which
// differs from nc's peer behind a reverse proxy).
func newConnFrom(s *Server, nc net.Conn, addr net.Addr, directTLS bool) *conn {
	ip, _, _ := net.SplitHostPort(addr.String())
	return &conn{
		srv:       s,
		raw:       nc,
		nc:        nc,
		addr:      addr,
		directTLS: directTLS,
		ip:        ip,
		log:       s.opts.Log.With(slog.String("remote", addr.String())),
		done:      make(chan struct{}),
	}
}

// secure tells whether the stream is encrypted: TLS on this connection,
// or a WebSocket, which the web server accepts only over HTTPS (or from
// loopback, or as the operator allows; see WebSocketOptions).
func (c *conn) secure() bool { return c.tls != nil || c.ws != nil || c.bosh != nil }

// next reads the next top-level element of the stream.
func (c *conn) next() (*router.Element, error) {
	if c.ws != nil {
		return c.ws.next(c)
	}
	if c.bosh != nil {
		return c.bosh.next(c)
	}
	return c.in.Next()
}

// run serves the connection until it ends. A panic here ends this
// connection only, and a bound session is still unbound and announced as
// ended, so that no ghost stays in the registry.
func (c *conn) run(ctx context.Context) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("c2s connection panicked", slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			c.Close(stream.InternalServerError)
			if c.sess != nil {
				c.sess.transportEnded(c, stream.InternalServerError)
			} else {
				c.finish(nil)
			}
		}
	}()
	c.deadline = time.Now().Add(NegotiationTimeout)
	err := c.negotiate(ctx)
	if err != nil || c.sess == nil {
		c.Close(err)
		c.finish(nil)
		c.logEnd(err)
		return
	}
	transport := c.transport()
	c.srv.stats.serving(transport, 1)
	err = c.sess.serve(ctx, c)
	c.srv.stats.serving(transport, -1)
	c.sess.transportEnded(c, err)
	c.logEnd(c.cause)
}

// transport names the connection's transport in Stats.
func (c *conn) transport() string {
	if c.ws != nil {
		return TransportWebSocket
	}
	if c.bosh != nil {
		return TransportBOSH
	}
	return TransportTCP
}

func (c *conn) logEnd(err error) {
	if err == nil || errors.Is(err, router.ErrStreamEnd) || errors.Is(err, io.EOF) {
		c.log.Debug("c2s connection closed")
		return
	}
	c.log.Info("c2s connection closed", slog.Any("reason", err))
}

// Close ends the connection with cause: a stream.Error is sent to the
// client; other causes just close the stream. It may be called from any
// goroutine, any number of times; the first cause wins.
func (c *conn) Close(cause error) {
	c.closeOnce.Do(func() {
		c.cause = cause
		close(c.done)
		// Wake the reading goroutine if it is blocked in Read. The TCP
		// connection, not c.nc, which the reader may be replacing with TLS.
		// (A BOSH reader waits on done itself.)
		if c.raw != nil {
			c.raw.SetReadDeadline(time.Now())
		}
	})
}

// interruptWrites makes the connection's writes fail from now on, and the
// one in progress (on a socket that may be dead) at once: the session is
// moving to another connection, which stream management re-sends the
// unacknowledged stanzas on. finish still writes the end of the stream.
func (c *conn) interruptWrites() {
	c.writesStopped.Store(true)
	if c.bosh != nil {
		c.bosh.wakeWriter()
		return
	}
	c.raw.SetWriteDeadline(time.Now())
}

// finish writes final and the closing stream error (if any) and
// </stream:stream>, then closes the transport. Runs once.
func (c *conn) finish(final []byte) {
	c.finishOnce.Do(func() {
		var se stream.Error
		isStreamErr := errors.As(c.cause, &se)
		var buf []byte
		if !c.headerSent && isStreamErr {
			buf = c.appendHeader(buf)
		}
		if isStreamErr {
			buf = append(buf, final...)
			buf = append(buf, `<stream:error><`...)
			buf = append(buf, se.Err...)
			buf = append(buf, ` xmlns="`+nsStreams+`"/>`...)
			var p interface{ streamErrorPayload() []byte }
			if errors.As(c.cause, &p) {
				buf = append(buf, p.streamErrorPayload()...)
			}
			buf = append(buf, `</stream:error>`...)
		}
		if c.headerSent || isStreamErr {
			buf = c.appendEnd(buf)
		}
		c.writeFinal(buf)
	})
}

// appendEnd appends the end of the stream.
func (c *conn) appendEnd(buf []byte) []byte {
	if c.ws != nil {
		return append(buf, `<close xmlns="`+nsFraming+`"/>`...)
	}
	if c.bosh != nil {
		return buf // the terminate body is writeFinal's
	}
	return append(buf, `</stream:stream>`...)
}

// writeFinal writes the last bytes of the stream, with a short deadline
// of its own, and closes the transport.
func (c *conn) writeFinal(buf []byte) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.bosh != nil {
		c.bosh.writeFinal(c, buf)
		return
	}
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if c.ws != nil {
		c.ws.writeFinal(buf)
	} else if len(buf) > 0 {
		c.nc.Write(buf)
	}
	c.nc.Close()
}

// errWritesStopped fails the writes of a connection whose session was
// resumed on another one.
var errWritesStopped = errors.New("c2s: session resumed elsewhere, writes stopped")

// write sends raw bytes to the client.
func (c *conn) write(b []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.bosh != nil {
		if err := c.bosh.write(c, b); err != nil {
			return fmt.Errorf("write to client: %w", err)
		}
		return nil
	}
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	// Checked after the deadline is set: an interruptWrites that comes
	// before sees its own deadline stand, one that came after is seen.
	if c.writesStopped.Load() {
		return errWritesStopped
	}
	var err error
	if c.ws != nil {
		err = c.ws.writeElements(b)
	} else {
		_, err = c.nc.Write(b)
	}
	if err != nil {
		return fmt.Errorf("write to client: %w", err)
	}
	return nil
}

// writeElement writes one element during negotiation.
func (c *conn) writeElement(e *router.Element) error {
	return c.write(e.AppendXML(nil, router.NSClient))
}

// appendHeader appends our stream header: <stream:stream> on TCP, <open/>
// on a WebSocket (RFC 7395 §3.4).
func (c *conn) appendHeader(buf []byte) []byte {
	if c.bosh != nil {
		// BOSH has no stream header: the session creation response's
		// attributes say what it would (bosh.go).
		c.headerSent = true
		return buf
	}
	if c.ws != nil {
		buf = append(buf, `<open xmlns="`+nsFraming+`" version="1.0" xml:lang="en" id="`...)
	} else {
		buf = append(buf, `<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" version="1.0" xml:lang="en" id="`...)
	}
	buf = append(buf, router.NewID()...)
	buf = append(buf, '"')
	if c.host != "" {
		buf = append(buf, ` from="`...)
		buf = append(buf, c.host...)
		buf = append(buf, '"')
	}
	if c.peer != "" {
		buf = append(buf, ` to="`...)
		buf = router.AppendEscaped(buf, c.peer)
		buf = append(buf, '"')
	}
	c.headerSent = true
	if c.ws != nil {
		return append(buf, "/>"...)
	}
	return append(buf, '>')
}

// idleReader is the transport as the XML decoder reads it. Timeouts are
// handled here because the decoder treats any read error as final: before
// binding, the negotiation deadline applies; after, a silent client is
// pinged (XEP-0199) and dropped if it stays silent.
type idleReader struct{ c *conn }

func (r idleReader) Read(p []byte) (int, error) {
	c := r.c
	for {
		var d time.Time
		switch {
		case !c.bound:
			d = c.deadline
		case c.pinged:
			d = time.Now().Add(c.srv.limits.PingTimeout)
		default:
			d = time.Now().Add(c.srv.limits.PingInterval)
		}
		c.nc.SetReadDeadline(d)
		// Checked after setting the deadline: Close closes done before it
		// sets its own deadline, so either we see done here or its
		// deadline replaces ours and Read returns at once.
		select {
		case <-c.done:
			return 0, errClosing
		default:
		}
		n, err := c.nc.Read(p)
		if n > 0 {
			c.pinged = false
			return n, nil
		}
		var ne net.Error
		if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
			return n, err
		}
		select {
		case <-c.done:
			return 0, errClosing
		default:
		}
		if !c.bound || c.pinged {
			return 0, stream.ConnectionTimeout
		}
		c.pinged = true
		c.sendPing()
	}
}

// errClosing tells the reading goroutine that Close was called.
var errClosing = errors.New("connection closing")

// sendPing asks an idle client to prove it is alive.
func (c *conn) sendPing() {
	iq := router.NewElement("", "iq", "type", "get", "id", "ping-"+router.NewID(), "from", c.host, "to", c.sess.jidString)
	iq.Append(router.NewElement(nsPing, "ping"))
	st, _ := router.NewStanza(iq)
	c.srv.opts.Router.DeliverTo(c.sess.ctx, c.sess, st)
}

// newReader starts reading a (re)started stream.
func (c *conn) newReader() {
	c.in = router.NewReader(idleReader{c}, router.NSClient, int64(c.srv.limits.MaxStanzaSize), c.srv.limits.MaxDepth)
}

// negotiate runs stream negotiation until a resource is bound.
func (c *conn) negotiate(ctx context.Context) error {
	if c.directTLS {
		if err := c.handshake(ctx); err != nil {
			return err
		}
	}
	for !c.bound {
		if err := c.openStream(); err != nil {
			return err
		}
		if err := c.negotiateStream(ctx); err != nil {
			return err
		}
	}
	return nil
}

// openStream reads the client's stream header, checks it, and answers with
// ours and the stream features.
func (c *conn) openStream() error {
	c.headerSent = false
	to, from, version, err := c.readHeader()
	if err != nil {
		return err
	}
	c.pending.Progress(connlimit.Header)
	domain, err := jid.Parse(to)
	if err != nil || domain.Localpart() != "" || domain.Resourcepart() != "" || !c.srv.opts.Router.ServesUsers(domain.Domainpart()) {
		return stream.HostUnknown
	}
	if c.host != "" && c.host != domain.Domainpart() {
		// A restarted stream must stay with the host it began with.
		return stream.HostUnknown
	}
	c.host = domain.Domainpart()
	if major, _, _ := strings.Cut(version, "."); major != "1" {
		return stream.UnsupportedVersion
	}
	// RFC 6120 §4.7.2: echo the client's 'from' (when it is a valid JID)
	// as our 'to'.
	c.peer = ""
	if j, err := jid.Parse(from); err == nil && from != "" {
		c.peer = j.String()
	}
	buf := c.appendHeader(nil)
	buf = c.features().AppendXML(buf, router.NSClient)
	return c.write(buf)
}

// readHeader reads the client's stream header (on a WebSocket its <open/>)
// and returns its to, from and version.
func (c *conn) readHeader() (to, from, version string, err error) {
	if c.ws != nil {
		return c.ws.readOpen(c)
	}
	if c.bosh != nil {
		return c.bosh.readOpen(c)
	}
	c.newReader()
	hdr, err := c.in.Header()
	if err != nil {
		return "", "", "", err
	}
	var ns string
	for _, a := range hdr.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "to":
			to = a.Value
		case a.Name.Space == "" && a.Name.Local == "from":
			from = a.Value
		case a.Name.Space == "" && a.Name.Local == "version":
			version = a.Value
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			ns = a.Value
		}
	}
	if ns != router.NSClient {
		return "", "", "", stream.InvalidNamespace
	}
	return to, from, version, nil
}

// handshake runs the TLS server handshake on the transport.
func (c *conn) handshake(ctx context.Context) error {
	cfg := c.srv.opts.Certs.ServerConfig("")
	if c.directTLS {
		cfg = c.srv.opts.Certs.ServerConfig("xmpp-client")
	}
	get := cfg.GetCertificate
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if hello.ServerName == "" && c.host != "" {
			hello.ServerName = c.host
		}
		cert, err := get(hello)
		if cert != nil {
			c.leaf = cert.Leaf
		}
		return cert, err
	}
	tc := tls.Server(c.nc, cfg)
	hctx, cancel := context.WithDeadline(ctx, c.deadline)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	c.nc, c.tls = tc, tc
	c.pending.Progress(connlimit.TLS)
	return nil
}

// evict ends a connection that has to make room for a newer one from its
// address (connlimit.PerIP.Acquire). A stream that is open gets
// connection-timeout: the victim is the one that has made the least
// progress, the oldest among equals, so it is the slow one, and the
// condition tells a real client to just connect again, where
// policy-violation would say it did something wrong. Before the client's
// header there is no stream to end: the connection is just closed.
func (c *conn) evict(at connlimit.Stage) {
	c.log.Info("c2s pending connection evicted to make room for a newer one from its address", slog.Int("stage", int(at)))
	if at < connlimit.Header {
		c.Close(errEvicted)
		return
	}
	c.Close(stream.ConnectionTimeout)
}

// releasePending stops counting this connection against its address's
// unauthenticated connections: at authentication, or at the end. The
// ticket is dropped with it, so that a bound session keeps nothing of the
// pending limit (docs/PERFORMANCE.md counts bytes per idle session).
func (c *conn) releasePending() {
	c.pending.Release()
	c.pending = nil
}

// errEvicted ends a connection evicted before its stream was open.
var errEvicted = errors.New("evicted: too many unauthenticated connections from this address")
