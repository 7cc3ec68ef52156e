package c2s_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// TestWebSocketLoginAndChat logs in over WebSocket with SCRAM (the same
// negotiation as TCP, in RFC 7395 framing), binds, and exchanges messages
// with a mellium client on TCP.
func TestWebSocketLoginAndChat(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "secret")
	s.AddUser("bob", "secret")

	ws, _, err := s.DialWebSocket(testserver.WSOptions{})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	f, err := ws.Open(testserver.WSOpen)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if !strings.Contains(ws.StreamHeader, `from="localhost"`) || !strings.Contains(ws.StreamHeader, `version="1.0"`) {
		t.Errorf("server <open/> = %s, want from localhost and version 1.0", ws.StreamHeader)
	}
	if f.Name.Space != router.NSStream || f.Name.Local != "features" {
		t.Fatalf("after <open/>: %s, want stream features", f)
	}
	if f.Child("urn:ietf:params:xml:ns:xmpp-tls", "starttls") != nil {
		t.Errorf("features %s offer STARTTLS on a WebSocket", f)
	}
	mechs := f.Child("urn:ietf:params:xml:ns:xmpp-sasl", "mechanisms")
	if mechs == nil || !strings.Contains(mechs.String(), "SCRAM-SHA-256<") || strings.Contains(mechs.String(), "PLUS") {
		t.Errorf("mechanisms %v, want SCRAM-SHA-256 and no -PLUS (no channel binding through a WebSocket)", mechs)
	}
	if cond, err := ws.AuthSCRAM("alice", "secret", testserver.SCRAM{Mechanism: "SCRAM-SHA-256"}); err != nil || cond != "" {
		t.Fatalf("scram: %q %v", cond, err)
	}
	if ws.Features.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind") == nil {
		t.Fatalf("features after SASL %s have no bind", ws.Features)
	}
	full, err := ws.Bind("web")
	if err != nil {
		t.Fatalf("bind: %v", err)
	}
	if full != "alice@localhost/web" {
		t.Errorf("bound %q", full)
	}

	bob := s.Login("bob", "secret", testserver.LoginOptions{})
	bob.MustSend(t, `<message type="chat" id="m1" to="alice@localhost/web"><body>hi from tcp</body></message>`)
	m := nextElement(t, ws, "message m1", isMessage("m1"))
	if m.Get("from") != bob.LocalAddr().String() || m.Child("", "body").Text() != "hi from tcp" {
		t.Errorf("got %s", m)
	}
	if !strings.HasPrefix(ws.LastFrame(), `<message xmlns="jabber:client"`) {
		t.Errorf("message frame %q does not declare jabber:client", ws.LastFrame())
	}
	if err := ws.Send(`<message xmlns="jabber:client" type="chat" id="m2" to="` + bob.LocalAddr().String() + `"><body>hi from the web</body></message>`); err != nil {
		t.Fatal(err)
	}
	got := bob.MustNext(t, "message m2", isMessage("m2"))
	if got.Get("from") != "alice@localhost/web" {
		t.Errorf("from = %q, want the WebSocket session's full JID", got.Get("from"))
	}

	// <close/> ends the stream: the server answers <close/> and closes
	// the WebSocket.
	if err := ws.Send(`<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`); err != nil {
		t.Fatal(err)
	}
	if err := ws.WaitClosed(); err != nil {
		t.Fatal(err)
	}
}

// nextElement reads a raw client's elements until match accepts one.
func nextElement(t *testing.T, c *testserver.Raw, what string, match func(*router.Element) bool) *router.Element {
	t.Helper()
	for {
		e, err := c.Next()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if match(e) {
			return e
		}
		if cond := testserver.StreamErrorCondition(e); cond != "" {
			t.Fatalf("waiting for %s: stream error %s", what, cond)
		}
	}
}

// TestWebSocketStreamManagement enables XEP-0198 over WebSocket and
// acknowledges: the stream management code is the TCP one.
func TestWebSocketStreamManagement(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "secret")
	s.AddUser("bob", "secret")
	ws := s.LoginWebSocket("alice", "secret", "web")
	if err := ws.Send(`<enable xmlns="urn:xmpp:sm:3" resume="true"/>`); err != nil {
		t.Fatal(err)
	}
	en := nextElement(t, ws, "enabled", isSM("enabled"))
	if en.Get("id") == "" || en.Get("resume") != "true" {
		t.Errorf("enabled = %s, want a resumable id", en)
	}
	bob := s.Login("bob", "secret", testserver.LoginOptions{})
	bob.MustSend(t, `<message type="chat" id="m1" to="alice@localhost/web"><body>1</body></message>`)
	nextElement(t, ws, "message", isMessage("m1"))
	if err := ws.Send(`<r xmlns="urn:xmpp:sm:3"/>`); err != nil {
		t.Fatal(err)
	}
	a := nextElement(t, ws, "ack", isSM("a"))
	if a.Get("h") != "0" {
		t.Errorf("server acked h=%s, want 0 (nothing sent but the enable)", a.Get("h"))
	}
	if !strings.HasPrefix(ws.LastFrame(), `<a xmlns="urn:xmpp:sm:3"`) {
		t.Errorf("ack frame %q", ws.LastFrame())
	}
	if err := ws.Send(`<a xmlns="urn:xmpp:sm:3" h="1"/>`); err != nil {
		t.Fatal(err)
	}
	// The session still works after the ack.
	bob.MustSend(t, `<message type="chat" id="m2" to="alice@localhost/web"><body>2</body></message>`)
	nextElement(t, ws, "message", isMessage("m2"))
}

// TestWebSocketStreamErrors: what breaks RFC 7395's framing gets the
// stream error, then <close/>, then the WebSocket's close.
func TestWebSocketStreamErrors(t *testing.T) {
	tests := []struct {
		name   string
		open   bool     // send a good <open/> first
		send   []string // messages then
		binary bool     // send a binary message instead
		want   string
	}{
		{name: "not well-formed", open: true, send: []string{`<message xmlns="jabber:client"><body>`}, want: "not-well-formed"},
		{name: "two elements in one message", open: true, send: []string{`<presence xmlns="jabber:client"/><presence xmlns="jabber:client"/>`}, want: "bad-format"},
		{name: "binary message", open: true, binary: true, want: "bad-format"},
		{name: "XML declaration", send: []string{testserver.Header}, want: "restricted-xml"},
		{name: "stream header instead of open", send: []string{`<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="localhost" version="1.0">`}, want: "not-well-formed"},
		{name: "unknown host", send: []string{`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.com" version="1.0"/>`}, want: "host-unknown"},
		{name: "open in the wrong namespace", send: []string{`<open xmlns="jabber:client" to="localhost" version="1.0"/>`}, want: "invalid-namespace"},
		{name: "stanza before authentication", open: true, send: []string{`<message xmlns="jabber:client" to="bob@localhost"/>`}, want: "not-authorized"},
		{name: "starttls on a WebSocket", open: true, send: []string{`<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>`}, want: "policy-violation"},
	}
	s := testserver.Start(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := s.DialWebSocket(testserver.WSOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.open {
				if _, err := c.Open(testserver.WSOpen); err != nil {
					t.Fatal(err)
				}
			}
			for _, m := range tt.send {
				if err := c.Send(m); err != nil {
					t.Fatal(err)
				}
			}
			if tt.binary {
				if err := c.SendBinary([]byte(`<presence xmlns="jabber:client"/>`)); err != nil {
					t.Fatal(err)
				}
			}
			cond, err := c.WaitStreamError(rawWait)
			if err != nil {
				t.Fatal(err)
			}
			if cond != tt.want {
				t.Errorf("stream error %s, want %s", cond, tt.want)
			}
		})
	}
}

// TestWebSocketUpgradeRefused: requests that are no XMPP WebSocket, or
// come from a page or over a transport that is not allowed, get an HTTP
// error and no WebSocket.
func TestWebSocketUpgradeRefused(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) {
		c.Web.WebSocket.Origins = []string{"*.example.org"}
		c.Web.TrustedProxies = []string{"127.0.0.1"}
	})
	tests := []struct {
		name      string
		protocols []string
		header    http.Header
		want      int
	}{
		{name: "no xmpp subprotocol", protocols: []string{"chat"}, want: http.StatusBadRequest},
		{name: "origin not allowed", header: http.Header{"Origin": {"https://evil.example"}}, want: http.StatusForbidden},
		{name: "plain HTTP through a proxy", header: http.Header{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Proto": {"http"}}, want: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, resp, err := s.DialWebSocket(testserver.WSOptions{Protocols: tt.protocols, Header: tt.header})
			if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil {
				t.Fatalf("dial: %v, want a refused handshake", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, body, tt.want)
			}
			if len(strings.TrimSpace(string(body))) == 0 {
				t.Errorf("status %d without a body saying why", resp.StatusCode)
			}
		})
	}
	allowed := []struct {
		name   string
		header http.Header
	}{
		{name: "allowed origin", header: http.Header{"Origin": {"https://app.example.org"}}},
		{name: "HTTPS through a trusted proxy", header: http.Header{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Proto": {"https"}}},
	}
	for _, tt := range allowed {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := s.DialWebSocket(testserver.WSOptions{Header: tt.header})
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			if _, err := c.Open(testserver.WSOpen); err != nil {
				t.Fatalf("open: %v", err)
			}
		})
	}

	resp, err := http.Get(s.HTTPURL() + "/xmpp-websocket")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("plain GET: status %d, want 426", resp.StatusCode)
	}
}

// TestWebSocketOverHTTPS logs in over wss:// on the https listener.
func TestWebSocketOverHTTPS(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "secret")
	c, _, err := s.DialWebSocket(testserver.WSOptions{TLS: true})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if _, err := c.Open(testserver.WSOpen); err != nil {
		t.Fatal(err)
	}
	if cond, err := c.AuthSCRAM("alice", "secret", testserver.SCRAM{Mechanism: "SCRAM-SHA-1"}); err != nil || cond != "" {
		t.Fatalf("scram: %q %v", cond, err)
	}
	if _, err := c.Bind(""); err != nil {
		t.Fatal(err)
	}
}

// TestWebSocketShutdown: the server's shutdown ends WebSocket sessions
// with system-shutdown, as it does TCP ones.
func TestWebSocketShutdown(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "secret")
	c := s.LoginWebSocket("alice", "secret", "")
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(t.Context()) }()
	cond, err := c.WaitStreamError(rawWait)
	if err != nil {
		t.Fatal(err)
	}
	if cond != "system-shutdown" {
		t.Errorf("stream error %s, want system-shutdown", cond)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// TestWebSocketKeepalive: the server pings a WebSocket client, and one
// that does not answer with a pong is dropped with connection-timeout.
func TestWebSocketKeepalive(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) {
		c.Limits.PingInterval = 50 * time.Millisecond
		c.Limits.PingTimeout = 50 * time.Millisecond
	})
	s.AddUser("alice", "secret")
	c := s.LoginWebSocket("alice", "secret", "")
	var pings atomic.Int32
	c.OnPing(func() { pings.Add(1) })
	cond, err := c.WaitStreamError(rawWait)
	if err != nil {
		t.Fatal(err)
	}
	if cond != "connection-timeout" {
		t.Errorf("stream error %s, want connection-timeout", cond)
	}
	if pings.Load() == 0 {
		t.Error("the server sent no WebSocket ping")
	}
}

// TestWebSocketCarbonsAndCSI: carbons (a module, through the router) and
// client state indication (a c2s element handler) work over WebSocket as
// on TCP.
func TestWebSocketCarbonsAndCSI(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "secret")
	s.AddUser("bob", "secret")
	ws := s.LoginWebSocket("alice", "secret", "web")
	r, err := ws.Request(`<iq xmlns="jabber:client" type="set" id="c1"><enable xmlns="urn:xmpp:carbons:2"/></iq>`)
	if err != nil || r.Get("type") != "result" {
		t.Fatalf("enable carbons: %v %v", r, err)
	}
	phone := s.Login("alice", "secret", testserver.LoginOptions{Resource: "phone"})
	bob := s.Login("bob", "secret", testserver.LoginOptions{})
	phone.MustSend(t, `<message type="chat" id="sent1" to="`+bob.LocalAddr().String()+`"><body>from the phone</body></message>`)
	c := nextElement(t, ws, "carbon", func(e *router.Element) bool {
		return e.Name.Local == "message" && e.Child("urn:xmpp:carbons:2", "sent") != nil
	})
	if !strings.Contains(c.String(), "from the phone") {
		t.Errorf("carbon %s", c)
	}
	// Inactive, then active again: the c2s handlers take them (without
	// them the stream would end with unsupported-stanza-type), and a
	// message still arrives after <active/>.
	for _, state := range []string{"inactive", "active"} {
		if err := ws.Send(`<` + state + ` xmlns="urn:xmpp:csi:0"/>`); err != nil {
			t.Fatal(err)
		}
	}
	bob.MustSend(t, `<message type="chat" id="m9" to="alice@localhost/web"><body>after csi</body></message>`)
	nextElement(t, ws, "message after CSI", isMessage("m9"))
}

// TestWebSocketResumption: a WebSocket that drops without <close/> leaves
// its stream management session resumable (hibernating, or still attached
// if the server has not yet seen the loss), and a new WebSocket resumes it,
// with the message sent meanwhile.
func TestWebSocketResumption(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "secret")
	s.AddUser("bob", "secret")
	ws := s.LoginWebSocket("alice", "secret", "web")
	if err := ws.Send(`<enable xmlns="urn:xmpp:sm:3" resume="true"/>`); err != nil {
		t.Fatal(err)
	}
	id := nextElement(t, ws, "enabled", isSM("enabled")).Get("id")
	ws.Conn.Close() // the network goes, no <close/>
	bob := s.Login("bob", "secret", testserver.LoginOptions{})
	bob.MustSend(t, `<message type="chat" id="while-away" to="alice@localhost/web"><body>are you there?</body></message>`)

	again, _, err := s.DialWebSocket(testserver.WSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Open(testserver.WSOpen); err != nil {
		t.Fatal(err)
	}
	if cond, err := again.AuthSCRAM("alice", "secret", testserver.SCRAM{Mechanism: "SCRAM-SHA-256"}); err != nil || cond != "" {
		t.Fatalf("scram: %q %v", cond, err)
	}
	if err := again.Send(`<resume xmlns="urn:xmpp:sm:3" previd="` + id + `" h="0"/>`); err != nil {
		t.Fatal(err)
	}
	r := nextElement(t, again, "resumed", func(e *router.Element) bool { return isSM("resumed")(e) || isSM("failed")(e) })
	if r.Name.Local != "resumed" || r.Get("previd") != id {
		t.Fatalf("resume: got %s", r)
	}
	nextElement(t, again, "the message sent while away", isMessage("while-away"))
}
