package testserver

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/router"
)

// WSOpen is the <open/> a well-behaved WebSocket client starts a stream
// with (RFC 7395 §3.4).
const WSOpen = `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="` + Domain + `" version="1.0"/>`

// nsFraming is RFC 7395's namespace.
const nsFraming = "urn:ietf:params:xml:ns:xmpp-framing"

// HTTPURL is the base URL of the server's plain HTTP listener.
func (s *Server) HTTPURL() string { return "http://" + s.Addr(config.ListenerHTTP).String() }

// HTTPSURL is the base URL of the server's HTTPS listener.
func (s *Server) HTTPSURL() string { return "https://" + s.Addr(config.ListenerHTTPS).String() }

// WSOptions choose how DialWebSocket connects.
type WSOptions struct {
	// Protocols are the subprotocols asked for; nil asks for "xmpp".
	Protocols []string
	// Header is added to the upgrade request (Origin, X-Forwarded-*).
	Header http.Header
	// TLS connects to the https listener instead of the http one.
	TLS bool
}

// DialWebSocket connects to /xmpp-websocket as a Raw client whose Send
// sends one message and whose Next reads one, checking that each message
// is one element that declares its own namespace (RFC 7395 §3.3.3). The
// response is returned too, also on a refused upgrade (err is then
// websocket.ErrBadHandshake). The connection is closed when the test ends.
func (s *Server) DialWebSocket(o WSOptions) (*Raw, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: o.Protocols, HandshakeTimeout: rawTimeout}
	if o.Protocols == nil {
		d.Subprotocols = []string{"xmpp"}
	}
	url := "ws://" + s.Addr(config.ListenerHTTP).String() + "/xmpp-websocket"
	if o.TLS {
		d.TLSClientConfig = s.TLSConfig()
		url = "wss://" + s.Addr(config.ListenerHTTPS).String() + "/xmpp-websocket"
	}
	ws, resp, err := d.Dial(url, o.Header)
	if err != nil {
		return nil, resp, err
	}
	s.t.Cleanup(func() { ws.Close() })
	return &Raw{s: s, Conn: ws.NetConn(), ws: ws}, resp, nil
}

// LoginWebSocket connects over WebSocket, authenticates with SCRAM-SHA-256
// and binds resource, failing the test on error.
func (s *Server) LoginWebSocket(local, password, resource string) *Raw {
	s.t.Helper()
	c, _, err := s.DialWebSocket(WSOptions{})
	if err == nil {
		_, err = c.Open(WSOpen)
	}
	if err == nil {
		var cond string
		cond, err = c.AuthSCRAM(local, password, SCRAM{Mechanism: "SCRAM-SHA-256"})
		if cond != "" {
			err = fmt.Errorf("sasl failure %s", cond)
		}
	}
	if err == nil {
		_, err = c.Bind(resource)
	}
	if err != nil {
		s.t.Fatalf("websocket login %s: %v", local, err)
	}
	return c
}

func (c *Raw) wsSend(s string) error {
	c.ws.SetWriteDeadline(time.Now().Add(rawTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, []byte(s))
}

// wsOpen reads the server's <open/> and the stream features after it.
func (c *Raw) wsOpen() (*router.Element, error) {
	e, err := c.wsNext()
	if err != nil {
		return nil, fmt.Errorf("read open: %w", err)
	}
	if e.Name.Space != nsFraming || e.Name.Local != "open" {
		// A stream error before any open, say.
		c.Features = e
		return e, nil
	}
	var b strings.Builder
	for _, a := range e.Attr {
		fmt.Fprintf(&b, " %s=%q", a.Name.Local, a.Value)
	}
	c.StreamHeader = b.String()
	f, err := c.wsNext()
	if err != nil {
		return nil, err
	}
	c.Features = f
	return f, nil
}

// LastFrame is the text of the last message Next read on a WebSocket.
func (c *Raw) LastFrame() string { return c.lastFrame }

// wsNext reads one message as one element; <close/> is
// router.ErrStreamEnd.
func (c *Raw) wsNext() (*router.Element, error) {
	c.ws.SetReadDeadline(time.Now().Add(rawTimeout))
	typ, data, err := c.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	c.lastFrame = string(data)
	if typ != websocket.TextMessage {
		return nil, fmt.Errorf("websocket: message of type %d, want text", typ)
	}
	// Parsed on its own, as a browser would: every prefix and the
	// default namespace must be declared in the message.
	tok, err := xml.NewDecoder(bytes.NewReader(data)).Token()
	if err != nil {
		return nil, fmt.Errorf("websocket message %q: %w", data, err)
	}
	start, ok := tok.(xml.StartElement)
	if !ok || start.Name.Space == "" || !strings.Contains(start.Name.Space, ":") {
		return nil, fmt.Errorf("websocket message %q: the element does not declare its namespace", data)
	}
	r := router.NewReader(bytes.NewReader(data), router.NSClient, 0, 0)
	e, err := r.Next()
	if err != nil {
		return nil, fmt.Errorf("websocket message %q: %w", data, err)
	}
	if _, err := r.Next(); err == nil {
		return nil, fmt.Errorf("websocket message %q: more than one element", data)
	}
	if e.Name.Space == nsFraming && e.Name.Local == "close" {
		return nil, router.ErrStreamEnd
	}
	return e, nil
}

// wsWaitClosed checks that the server closes the WebSocket (with a close
// message) after its <close/>.
func (c *Raw) wsWaitClosed() error {
	c.ws.SetReadDeadline(time.Now().Add(rawTimeout))
	_, _, err := c.ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return fmt.Errorf("after <close/>: want the WebSocket closed, got %v", err)
	}
	return nil
}

// SendBinary sends a binary WebSocket message, which RFC 7395 does not
// allow.
func (c *Raw) SendBinary(b []byte) error {
	c.ws.SetWriteDeadline(time.Now().Add(rawTimeout))
	return c.ws.WriteMessage(websocket.BinaryMessage, b)
}

// OnPing replaces the WebSocket's answer to the server's pings (by
// default a pong): f is called with each ping instead, and no pong is
// sent. It runs while Next reads.
func (c *Raw) OnPing(f func()) {
	c.ws.SetPingHandler(func(string) error { f(); return nil })
}
