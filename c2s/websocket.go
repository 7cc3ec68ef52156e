package c2s

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/router"
)

// nsFraming is RFC 7395's namespace of <open/> and <close/>.
const nsFraming = "urn:ietf:params:xml:ns:xmpp-framing"

// WebSocketProtocol is the WebSocket subprotocol of XMPP (RFC 7395 §3.1).
const WebSocketProtocol = "xmpp"

// WebSocketPath is where the web server serves XMPP over WebSocket.
const WebSocketPath = "/xmpp-websocket"

// WebSocketOptions configure the WebSocket transport.
type WebSocketOptions struct {
	// Origins are the allowed Origin hosts as patterns (path.Match
	// syntax: "example.org", "*.example.org", "*"); empty allows only the
	// host the request was made to. A request without Origin (not from a
	// browser page) is always allowed: the check protects browser users
	// from other sites' scripts, not the server from clients.
	Origins []string
	// AllowInsecure accepts a client that reached the server over plain
	// HTTP from anywhere; otherwise plain HTTP is accepted only from
	// loopback, where nobody can listen in.
	AllowInsecure bool
	// Client tells who made the request: its address, whether it came
	// over TLS and the host it asked for. Behind a reverse proxy these are
	// the trusted proxy's X-Forwarded-* (package web); nil reads the
	// request itself.
	Client func(r *http.Request) (addr net.Addr, secure bool, host string)
}

// WebSocket returns the handler of XMPP over WebSocket (RFC 7395): it
// checks the upgrade request (400 without the xmpp subprotocol, 403 for a
// refused origin or plain HTTP from afar, 426 for no upgrade at all), and
// then runs on the WebSocket the same negotiation and session as on TCP,
// framed as the RFC says: <open/> and <close/> for the stream's start and
// end, one element per text message. The connection counts against the
// same limits and ends with Shutdown like TCP ones.
func (s *Server) WebSocket(o WebSocketOptions) http.Handler {
	up := &websocket.Upgrader{
		Subprotocols: []string{WebSocketProtocol},
		// Checked before Upgrade, with the proxy-aware host.
		CheckOrigin:     func(*http.Request) bool { return true },
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
	}
	client := o.Client
	if client == nil {
		client = func(r *http.Request) (net.Addr, bool, string) {
			addr, _ := net.ResolveTCPAddr("tcp", r.RemoteAddr)
			return addr, r.TLS != nil, r.Host
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			w.Header().Set("Upgrade", "websocket")
			http.Error(w, "this is XMPP over WebSocket (RFC 7395): connect with a WebSocket client and the xmpp subprotocol", http.StatusUpgradeRequired)
			return
		}
		if !slices.Contains(websocket.Subprotocols(r), WebSocketProtocol) {
			http.Error(w, `the WebSocket subprotocol "xmpp" is required (RFC 7395 §3.1)`, http.StatusBadRequest)
			return
		}
		addr, secure, host := client(r)
		if addr == nil {
			http.Error(w, "bad client address", http.StatusBadRequest)
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" && !originAllowed(origin, o.Origins, host) {
			http.Error(w, "origin not allowed: "+origin, http.StatusForbidden)
			return
		}
		if !secure && !o.AllowInsecure && !isLoopback(addr) {
			http.Error(w, "XMPP over WebSocket needs HTTPS: connect to wss://", http.StatusForbidden)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade has answered the client
		}
		// Not the request's cancellation, which comes when this handler
		// returns: a session that hibernates outlives its WebSocket, and
		// its context must stay usable after it is resumed elsewhere.
		// Shutdown ends these connections itself, as it does TCP ones.
		s.serveWebSocket(context.WithoutCancel(r.Context()), ws, addr)
	})
}

// originAllowed checks an Origin header against the patterns, or, with
// none, against the host the request was made to.
func originAllowed(origin string, patterns []string, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if len(patterns) == 0 {
		return strings.EqualFold(u.Host, host)
	}
	for _, p := range patterns {
		p = strings.ToLower(p)
		for _, h := range []string{strings.ToLower(u.Host), strings.ToLower(u.Hostname())} {
			if ok, _ := path.Match(p, h); ok {
				return true
			}
		}
	}
	return false
}

func isLoopback(addr net.Addr) bool {
	h, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// serveWebSocket runs a client connection over ws on the calling (the HTTP
// handler's) goroutine, until it ends.
func (s *Server) serveWebSocket(ctx context.Context, ws *websocket.Conn, addr net.Addr) {
	c := newConnFrom(s, ws.NetConn(), addr, false)
	c.log = c.log.With(slog.String("transport", "websocket"))
	c.ws = newWSFraming(ws, &c.writesStopped, s.limits.MaxStanzaSize, s.limits.PingInterval, s.limits.PingTimeout)
	// Run by the reader, inside ReadMessage: a pong proves the client alive.
	ws.SetPongHandler(func(string) error {
		ws.SetReadDeadline(c.ws.readDeadline(c))
		return nil
	})
	ticket, ok := s.pending.Acquire(c.ip, c.evict)
	if !ok {
		s.opts.Log.Warn("c2s websocket refused: too many unauthenticated connections from this address", slog.String("remote", addr.String()))
		c.ws.closeFrame(websocket.ClosePolicyViolation, "too many unauthenticated connections")
		ws.Close()
		return
	}
	c.pending = ticket
	if !s.track(c) {
		ticket.Release()
		c.ws.closeFrame(websocket.CloseGoingAway, "shutting down")
		ws.Close()
		return
	}
	defer s.wg.Done()
	defer s.untrack(c)
	defer c.releasePending()
	defer c.ws.stopPinging()
	c.run(ctx)
}

// wsFraming is the WebSocket framing of a conn (RFC 7395): each message is
// one element, the stream opens with <open/> and ends with <close/>. Its
// keepalive is the WebSocket's ping and pong rather than XMPP pings:
// browsers answer those without the page's help.
type wsFraming struct {
	ws *websocket.Conn
	// writesStopped is the conn's, checked between messages: gorilla
	// sets its own write deadline for each, which would undo
	// interruptWrites' deadline.
	writesStopped *atomic.Bool
	maxSize       int
	pingInterval  time.Duration
	pingTimeout   time.Duration

	pingMu  sync.Mutex
	pinger  *time.Timer
	stopped bool
}

func newWSFraming(ws *websocket.Conn, stopped *atomic.Bool, maxSize int, interval, timeout time.Duration) *wsFraming {
	// A message is one element, so the stanza size limit bounds it.
	ws.SetReadLimit(int64(maxSize) + 1024)
	w := &wsFraming{ws: ws, writesStopped: stopped, maxSize: maxSize, pingInterval: interval, pingTimeout: timeout}
	w.pinger = time.AfterFunc(interval, w.ping)
	return w
}

// ping sends a WebSocket ping every interval; the reader's deadline, moved
// on by every message and pong, ends a client that stops answering.
func (w *wsFraming) ping() {
	w.pingMu.Lock()
	defer w.pingMu.Unlock()
	if w.stopped {
		return
	}
	if err := w.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(w.pingTimeout)); err != nil {
		return
	}
	w.pinger.Reset(w.pingInterval)
}

func (w *wsFraming) stopPinging() {
	w.pingMu.Lock()
	defer w.pingMu.Unlock()
	w.stopped = true
	w.pinger.Stop()
}

// readDeadline is how long the reader waits: the negotiation deadline
// before binding, then a ping interval and the time to answer it.
func (w *wsFraming) readDeadline(c *conn) time.Time {
	d := time.Now().Add(w.pingInterval + w.pingTimeout)
	if !c.bound && c.deadline.Before(d) {
		d = c.deadline
	}
	return d
}

// next reads the next element: one per text message; <close/> ends the
// stream (router.ErrStreamEnd), as </stream:stream> does on TCP.
func (w *wsFraming) next(c *conn) (*router.Element, error) {
	for {
		w.ws.SetReadDeadline(w.readDeadline(c))
		// After the deadline is set, as in idleReader: Close sets its
		// own after closing done.
		select {
		case <-c.done:
			return nil, errClosing
		default:
		}
		typ, data, err := w.ws.ReadMessage()
		if err != nil {
			select {
			case <-c.done:
				return nil, errClosing
			default:
			}
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				return nil, stream.ConnectionTimeout
			case errors.Is(err, websocket.ErrReadLimit):
				return nil, stream.PolicyViolation
			case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway):
				// Closed without <close/>: the connection is gone (a
				// resumable session hibernates).
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if typ != websocket.TextMessage {
			// RFC 7395 §3.2: XMPP is carried in text messages only.
			return nil, stream.BadFormat
		}
		if len(bytes.TrimSpace(data)) == 0 {
			continue // a whitespace keepalive
		}
		e, err := parseFrame(data, c.srv.limits.MaxStanzaSize, c.srv.limits.MaxDepth)
		if err != nil {
			return nil, err
		}
		if e.Name.Space == nsFraming && e.Name.Local == "close" {
			return nil, router.ErrStreamEnd
		}
		return e, nil
	}
}

// parseFrame parses a message as exactly one element (RFC 7395 §3.3.3: no
// more, and no XML declaration).
func parseFrame(data []byte, maxSize, maxDepth int) (*router.Element, error) {
	r := router.NewReader(bytes.NewReader(data), router.NSClient, int64(maxSize), maxDepth)
	e, err := r.Next()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, router.ErrStreamEnd) {
			return nil, stream.NotWellFormed
		}
		return nil, err
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		// A second element, or something else after the first.
		return nil, stream.BadFormat
	}
	return e, nil
}

// readOpen reads the client's <open/> and returns its to, from and version.
func (w *wsFraming) readOpen(c *conn) (to, from, version string, err error) {
	e, err := w.next(c)
	if err != nil {
		return "", "", "", err
	}
	if e.Name.Local != "open" {
		return "", "", "", stream.NotWellFormed
	}
	if e.Name.Space != nsFraming {
		return "", "", "", stream.InvalidNamespace
	}
	return e.Get("to"), e.Get("from"), e.Get("version"), nil
}

// writeElements writes b, serialised top-level elements, one message per
// element, each declaring the namespaces a message of its own needs
// (RFC 7395 §3.3.3): jabber:client for stanzas, the stream prefix for
// <stream:features/> and <stream:error/>. The caller holds the write lock.
func (w *wsFraming) writeElements(b []byte) error {
	w.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return w.write(b, true)
}

// write writes b's elements; interruptible stops at interruptWrites.
func (w *wsFraming) write(b []byte, interruptible bool) error {
	for len(b) > 0 {
		if interruptible && w.writesStopped.Load() {
			return errWritesStopped
		}
		end, nameEnd := splitElement(b)
		if err := w.writeOne(b[:end], nameEnd); err != nil {
			return err
		}
		b = b[end:]
	}
	return nil
}

func (w *wsFraming) writeOne(el []byte, nameEnd int) error {
	mw, err := w.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	var decl string
	if nameEnd > 0 {
		switch name := el[1:nameEnd]; {
		case bytes.HasPrefix(name, []byte("stream:")):
			decl = ` xmlns:stream="` + router.NSStream + `"`
		case !bytes.HasPrefix(el[nameEnd:], []byte(` xmlns="`)):
			decl = ` xmlns="` + router.NSClient + `"`
		}
	}
	if decl != "" {
		mw.Write(el[:nameEnd])
		io.WriteString(mw, decl)
		mw.Write(el[nameEnd:])
	} else {
		mw.Write(el)
	}
	return mw.Close()
}

// writeFinal writes the stream's last elements and closes the WebSocket
// (a normal closure). The caller has set the deadline on the connection;
// it is also gorilla's.
func (w *wsFraming) writeFinal(b []byte) {
	w.stopPinging()
	w.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if w.write(b, false) == nil {
		w.closeFrame(websocket.CloseNormalClosure, "")
	}
}

func (w *wsFraming) closeFrame(code int, text string) {
	w.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(5*time.Second))
}

// splitElement finds the end of the first element in b, which holds whole
// elements as router.Element.AppendXML writes them: there '<' and '>'
// appear only as markup (text and attribute values escape them), so
// counting tags finds the end without parsing. nameEnd is where the
// element's name ends in its start tag. If b is not such XML, all of it is
// one piece.
func splitElement(b []byte) (end, nameEnd int) {
	if len(b) == 0 || b[0] != '<' {
		return len(b), 0
	}
	depth := 0
	for i := 0; i < len(b); {
		lt := bytes.IndexByte(b[i:], '<')
		if lt < 0 {
			break
		}
		i += lt
		gt := bytes.IndexByte(b[i:], '>')
		if gt < 0 {
			break
		}
		tagEnd := i + gt
		switch {
		case i+1 < len(b) && b[i+1] == '/':
			depth--
		case b[tagEnd-1] == '/':
			// Self-closing: depth unchanged.
		default:
			depth++
		}
		if nameEnd == 0 {
			nameEnd = 1 + bytes.IndexAny(b[1:tagEnd+1], " />")
		}
		i = tagEnd + 1
		if depth <= 0 {
			return i, nameEnd
		}
	}
	return len(b), nameEnd
}
