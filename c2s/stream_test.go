package c2s_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// TestStreamHeaderErrors sends bad stream headers and checks the stream
// error (RFC 6120 §4.9.3) and that the server closes the connection, before
// TLS and, for the first ones, again after STARTTLS on the restarted stream.
func TestStreamHeaderErrors(t *testing.T) {
	s := testserver.Start(t, nil)
	const streamNS = `xmlns:stream='http://etherx.jabber.org/streams'`
	for _, tc := range []struct {
		name, header, cond string
	}{
		{"unknown host", `<stream:stream xmlns='jabber:client' ` + streamNS + ` to='elsewhere.example' version='1.0'>`, "host-unknown"},
		{"no to", `<stream:stream xmlns='jabber:client' ` + streamNS + ` version='1.0'>`, "host-unknown"},
		{"to with a local part", `<stream:stream xmlns='jabber:client' ` + streamNS + ` to='alice@localhost' version='1.0'>`, "host-unknown"},
		{"server namespace", `<stream:stream xmlns='jabber:server' ` + streamNS + ` to='localhost' version='1.0'>`, "invalid-namespace"},
		{"no default namespace", `<stream:stream ` + streamNS + ` to='localhost' version='1.0'>`, "invalid-namespace"},
		{"wrong stream namespace", `<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' to='localhost' version='1.0'>`, "invalid-namespace"},
		{"no version", `<stream:stream xmlns='jabber:client' ` + streamNS + ` to='localhost'>`, "unsupported-version"},
		{"version 2", `<stream:stream xmlns='jabber:client' ` + streamNS + ` to='localhost' version='2.0'>`, "unsupported-version"},
		{"not a stream", `<?xml version='1.0'?><message xmlns='jabber:client' to='localhost'/>`, "not-well-formed"},
		{"processing instruction", `<?php echo 1; ?><stream:stream xmlns='jabber:client' ` + streamNS + ` to='localhost' version='1.0'>`, "restricted-xml"},
		{"malformed", `<stream:stream xmlns='jabber:client' ` + streamNS + ` to='localhost' version='1.0'<<`, "not-well-formed"},
		// Answered at once: the server must not wait for a '<' (this
		// would wait for the negotiation timeout, past rawWait).
		{"HTTP request", "GET / HTTP/1.1\r\nHost: localhost\r\n", "not-well-formed"},
		{"Latin-1", `<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream xmlns='jabber:client' ` + streamNS + ` to='localhost' version='1.0'>`, "unsupported-encoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := s.DialRaw()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Send(tc.header); err != nil {
				t.Fatal(err)
			}
			checkHeaderError(t, c, tc.cond)
		})
		if strings.Contains(tc.header, "<stream:stream") && tc.cond != "not-well-formed" {
			// The same header on the stream restarted after TLS.
			t.Run(tc.name+"/after starttls", func(t *testing.T) {
				c, err := s.DialRaw()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Open(testserver.Header); err != nil {
					t.Fatal(err)
				}
				if err := c.Send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`); err != nil {
					t.Fatal(err)
				}
				if err := startTLSOnly(c, s); err != nil {
					t.Fatal(err)
				}
				if err := c.Send(tc.header); err != nil {
					t.Fatal(err)
				}
				checkHeaderError(t, c, tc.cond)
			})
		}
	}
}

// checkHeaderError reads the server's answer to a bad header: its own
// header, then the stream error, then the end of the stream and connection.
func checkHeaderError(t *testing.T, c *testserver.Raw, cond string) {
	t.Helper()
	r := router.NewReader(c.Conn, router.NSClient, 0, 0)
	c.Conn.SetReadDeadline(time.Now().Add(rawWait))
	if _, err := r.Header(); err != nil {
		t.Fatalf("server's stream header: %v", err)
	}
	e, err := r.Next()
	if err != nil {
		t.Fatalf("reading the stream error: %v", err)
	}
	if got := testserver.StreamErrorCondition(e); got != cond {
		t.Fatalf("got %s; want stream error %s", e, cond)
	}
	if _, err := r.Next(); err != router.ErrStreamEnd {
		t.Errorf("after the stream error: %v; want </stream:stream>", err)
	}
	var b [1]byte
	if n, err := c.Conn.Read(b[:]); err == nil || isTimeout(err) {
		t.Errorf("connection still open after the stream error (read %d bytes, %v)", n, err)
	}
}

// startTLSOnly reads <proceed/> and does the TLS handshake, without opening
// the next stream.
func startTLSOnly(c *testserver.Raw, s *testserver.Server) error {
	e, err := c.Next()
	if err != nil {
		return err
	}
	if e.Name.Local != "proceed" {
		return &unexpected{e}
	}
	tc := tlsClient(c.Conn, s)
	if err := tc.Handshake(); err != nil {
		return err
	}
	c.Conn, c.TLS = tc, tc
	return nil
}

// TestHostileInput sends what a broken or hostile client might on an
// authenticated stream and checks the stream error the server answers with,
// that it closes the connection, and that it goes on serving others.
func TestHostileInput(t *testing.T) {
	const maxSize = 4096
	s := testserver.Start(t, func(c *config.Config) {
		c.Limits.MaxStanzaSize = maxSize
		c.Limits.MaxDepth = 16
	})
	s.AddUser("mallory", "pw")
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	alice := s.Login("alice", "pw", testserver.LoginOptions{})
	bob := s.Login("bob", "pw", testserver.LoginOptions{DirectTLS: true})
	body := func(n int) string { return strings.Repeat("x", n) }
	nested := func(depth int) string {
		return `<message to="alice@localhost">` + strings.Repeat("<a xmlns='urn:x'>", depth-1) + strings.Repeat("</a>", depth-1) + `</message>`
	}
	for _, tc := range []struct {
		name, input, cond string
	}{
		{"oversized stanza", `<message to="alice@localhost"><body>` + body(maxSize+100) + `</body></message>`, "policy-violation"},
		{"endless text", `<message to="alice@localhost"><body>` + body(256<<10), "policy-violation"},
		{"endless attribute", `<message to="alice@localhost" id="` + body(256<<10), "policy-violation"},
		{"many small children", `<message to="alice@localhost">` + strings.Repeat("<b/>", maxSize/4+10) + `</message>`, "policy-violation"},
		{"too deep", nested(17), "policy-violation"},
		{"too deep and unclosed", `<message>` + strings.Repeat("<a>", 1000), "policy-violation"},
		{"mismatched tags", `<message to="alice@localhost"><body>x</message>`, "not-well-formed"},
		{"bad attribute", `<message to=alice@localhost/>`, "not-well-formed"},
		{"duplicate attribute", `<message to="alice@localhost" from="alice@localhost/x" from="bob@localhost/y"/>`, "not-well-formed"},
		{"undeclared element prefix", `<message to="alice@localhost"><foo:bar/></message>`, "not-well-formed"},
		{"undeclared attribute prefix", `<message to="alice@localhost"><body foo:x="1">x</body></message>`, "not-well-formed"},
		{"name that is not an NCName", `<message to="alice@localhost"><p:0 xmlns:p="urn:x"/></message>`, "not-well-formed"},
		{"undefined entity", `<message to="alice@localhost"><body>&bogus;</body></message>`, "not-well-formed"},
		{"text between stanzas", `hello<message to="alice@localhost"/>`, "not-well-formed"},
		{"invalid UTF-8", "<message to=\"alice@localhost\"><body>\xff\xfe</body></message>", "not-well-formed"},
		{"control character", "<message to=\"alice@localhost\"><body>\x01</body></message>", "not-well-formed"},
		{"comment in stanza", `<message to="alice@localhost"><!-- hi --><body>x</body></message>`, "restricted-xml"},
		{"comment between stanzas", `<!-- hi -->`, "restricted-xml"},
		{"processing instruction", `<message to="alice@localhost"><?pi data?></message>`, "restricted-xml"},
		{"DTD", `<!DOCTYPE foo [<!ENTITY x "y">]>`, "restricted-xml"},
		{"not a stanza", `<foo/>`, "unsupported-stanza-type"},
		{"stanza in another namespace", `<message xmlns='urn:other' to="alice@localhost"/>`, "unsupported-stanza-type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := s.LoginRaw("mallory", "pw", "")
			// Addressed to alice's session, so that what the server
			// wrongly let through would reach (and might break) her stream.
			input := strings.ReplaceAll(tc.input, "alice@localhost", alice.LocalAddr().String())
			if err := m.Send(input); err != nil && !isReset(err) {
				t.Fatal(err)
			}
			cond, err := m.WaitStreamError(rawWait)
			if err != nil {
				t.Fatalf("waiting for stream error: %v", err)
			}
			if cond != tc.cond {
				t.Errorf("stream error %q; want %q", cond, tc.cond)
			}
			chat(t, alice, bob)
			chat(t, bob, alice)
		})
	}
	// A stanza just within the limit goes through.
	id := "big"
	alice.MustSend(t, `<message type="chat" id="`+id+`" to="`+bob.LocalAddr().String()+`"><body>`+body(maxSize-200)+`</body></message>`)
	bob.MustNext(t, "message "+id, isMessage(id))
}

// TestStreamHeaderEncodings checks that a declaration naming UTF-8, in
// either case, or none, opens the stream as before.
func TestStreamHeaderEncodings(t *testing.T) {
	s := testserver.Start(t, nil)
	open := strings.TrimPrefix(testserver.Header, "<?xml version='1.0'?>")
	for _, decl := range []string{"", `<?xml version='1.0'?>`, `<?xml version='1.0' encoding='UTF-8'?>`, `<?xml version="1.0" encoding="utf-8"?>`} {
		t.Run(decl, func(t *testing.T) {
			c, err := s.DialRaw()
			if err != nil {
				t.Fatal(err)
			}
			e, err := c.Open(decl + open)
			if err != nil {
				t.Fatal(err)
			}
			if e.Name.Local != "features" {
				t.Fatalf("got %s; want the stream features", e)
			}
		})
	}
}

// TestWhitespaceKeepalive checks that a run of whitespace between stanzas
// longer than max_stanza_size is accepted: the limit is for stanzas, and
// the stanza after the run is routed.
func TestWhitespaceKeepalive(t *testing.T) {
	const maxSize = 32 << 10
	s := testserver.Start(t, func(c *config.Config) { c.Limits.MaxStanzaSize = maxSize })
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	alice := s.LoginRaw("alice", "pw", "")
	bob := s.Login("bob", "pw", testserver.LoginOptions{})
	// Within the burst the reader allows (twice the limit), past the old
	// limit (the size limit plus the reader's slack).
	run := strings.Repeat(" \n", (3*maxSize/2+9000)/2)
	if err := alice.Send(run + `<message type="chat" id="ka" to="` + bob.LocalAddr().String() + `"><body>hi</body></message>`); err != nil {
		t.Fatal(err)
	}
	bob.MustNext(t, "message ka", isMessage("ka"))
	if _, err := alice.Request(`<iq type="get" id="p1" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`); err != nil {
		t.Fatalf("alice's stream after the whitespace: %v", err)
	}
}

// TestIdlePing checks XEP-0199 keepalive: a client that answers the
// server's pings stays connected; one that never answers is dropped with
// connection-timeout. Only outcomes are checked, never durations.
func TestIdlePing(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) {
		c.Limits.PingInterval = 200 * time.Millisecond
		// Long enough for a client on a loaded machine to answer.
		c.Limits.PingTimeout = 5 * time.Second
	})
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	alice := s.Login("alice", "pw", testserver.LoginOptions{})
	bob := s.Login("bob", "pw", testserver.LoginOptions{})
	silent := s.LoginRaw("alice", "pw", "silent")

	cond, err := silent.WaitStreamError(rawWait)
	if err != nil || cond != "connection-timeout" {
		t.Fatalf("client that never answers pings: stream error %q (%v); want connection-timeout", cond, err)
	}
	// alice answered several pings (the client helper answers every IQ
	// request) and is still there.
	for i := range 3 {
		p := alice.MustNext(t, "a ping", func(e *router.Element) bool {
			return e.Name.Local == "iq" && e.Get("type") == "get" && e.Child("urn:xmpp:ping", "ping") != nil
		})
		if p.Get("from") != "localhost" {
			t.Errorf("ping %d from %q; want localhost", i, p.Get("from"))
		}
	}
	chat(t, alice, bob)
	chat(t, bob, alice)
}

// TestShutdown checks that shutting the server down ends every session with
// system-shutdown.
func TestShutdown(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	alice := s.Login("alice", "pw", testserver.LoginOptions{})
	bob := s.Login("bob", "pw", testserver.LoginOptions{DirectTLS: true})
	raw := s.LoginRaw("alice", "pw", "raw")
	// Not yet authenticated: it is closed too.
	early, err := s.DialRaw()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := early.Open(testserver.Header); err != nil {
		t.Fatal(err)
	}
	alice.MustSync(t)
	bob.MustSync(t)

	ctx, cancel := context.WithTimeout(context.Background(), rawWait)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for _, c := range []*testserver.Client{alice, bob} {
		cond, err := c.WaitClosed()
		if err != nil || cond != "system-shutdown" {
			t.Errorf("%s: stream error %q (%v); want system-shutdown", c.LocalAddr(), cond, err)
		}
	}
	for _, c := range []*testserver.Raw{raw, early} {
		cond, err := c.WaitStreamError(rawWait)
		if err != nil || cond != "system-shutdown" {
			t.Errorf("raw client: stream error %q (%v); want system-shutdown", cond, err)
		}
	}
}
