package s2s_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/internal/certs"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// Namespaces the hand-driven streams use.
const (
	nsTLS         = "urn:ietf:params:xml:ns:xmpp-tls"
	nsDialback    = "jabber:server:dialback"
	nsDialbackFea = "urn:xmpp:features:dialback"
)

// rawTimeout bounds each read of a hand-driven stream, so that a test
// never hangs on a server that says nothing.
const rawTimeout = 10 * time.Second

// s2sHeader is the stream header of a server-to-server stream.
func s2sHeader(from, to, id string) string {
	h := `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' version='1.0'`
	for _, a := range [][2]string{{"from", from}, {"to", to}, {"id", id}} {
		if a[1] != "" {
			h += fmt.Sprintf(" %s='%s'", a[0], a[1])
		}
	}
	return h + ">"
}

// deadlineReader gives every read a deadline.
type deadlineReader struct{ c net.Conn }

func (r deadlineReader) Read(p []byte) (int, error) {
	r.c.SetReadDeadline(time.Now().Add(rawTimeout))
	return r.c.Read(p)
}

// rawS2S is a server-to-server stream to the server under test driven by
// hand, as an Initiating Server of a domain that server does not serve:
// what no well-behaved server sends (spoofed addresses, stanzas before
// authentication) it sends on request.
type rawS2S struct {
	t        *testing.T
	conn     net.Conn
	r        *router.Reader
	id       string // the stream id the server gave
	features *router.Element
}

// dialS2S connects to an s2s listener; nothing is sent yet.
func dialS2S(t *testing.T, addr string) *rawS2S {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawS2S{t: t, conn: nc}
}

// open sends a stream header and reads the server's header and features.
func (c *rawS2S) open(from, to string) {
	c.t.Helper()
	c.send(s2sHeader(from, to, ""))
	c.r = router.NewReader(deadlineReader{c.conn}, router.NSServer, 0, 0)
	hdr, err := c.r.Header()
	if err != nil {
		c.t.Fatalf("read stream header: %v", err)
	}
	for _, a := range hdr.Attr {
		if a.Name.Space == "" && a.Name.Local == "id" {
			c.id = a.Value
		}
	}
	if c.features, err = c.r.Next(); err != nil {
		c.t.Fatalf("read stream features: %v", err)
	}
	if c.id == "" {
		c.t.Fatalf("stream header without id; features %s", c.features)
	}
}

// startTLS upgrades the stream, trusting any certificate (the tests are
// about what comes after), and opens a new stream over it.
func (c *rawS2S) startTLS(from, to string) {
	c.t.Helper()
	if c.features.Child(nsTLS, "starttls") == nil {
		c.t.Fatalf("no STARTTLS offered: %s", c.features)
	}
	c.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	if e := c.next(); e.Name.Local != "proceed" {
		c.t.Fatalf("starttls: got %s", e)
	}
	tc := tls.Client(c.conn, &tls.Config{ServerName: to, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	tc.SetDeadline(time.Now().Add(rawTimeout))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("tls handshake: %v", err)
	}
	tc.SetDeadline(time.Time{})
	c.conn = tc
	c.open(from, to)
}

// send writes XML text as it is.
func (c *rawS2S) send(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(rawTimeout))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next reads the next element the server sent.
func (c *rawS2S) next() *router.Element {
	c.t.Helper()
	e, err := c.r.Next()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return e
}

// dialback asks to be authenticated as from for to with key (XEP-0220
// §2.1.1) and returns the server's <db:result/> answer.
func (c *rawS2S) dialback(from, to, key string) *router.Element {
	c.t.Helper()
	c.send(fmt.Sprintf(`<db:result from='%s' to='%s'>%s</db:result>`, from, to, key))
	for {
		e := c.next()
		if testserver.StreamErrorCondition(e) != "" {
			c.t.Fatalf("dialback %s→%s: stream error %s", from, to, testserver.StreamErrorCondition(e))
		}
		if e.Name.Space == nsDialback && e.Name.Local == "result" && e.Get("from") == to && e.Get("to") == from {
			return e
		}
	}
}

// streamError reads until the server sends a stream error and returns its
// condition, checking that the server then closes the stream and the
// connection.
func (c *rawS2S) streamError() string {
	c.t.Helper()
	for {
		e, err := c.r.Next()
		if err != nil {
			c.t.Fatalf("waiting for a stream error: %v", err)
		}
		if cond := testserver.StreamErrorCondition(e); cond != "" {
			if _, err := c.r.Next(); !errors.Is(err, router.ErrStreamEnd) {
				c.t.Errorf("after the stream error: want </stream:stream>, got %v", err)
			}
			c.conn.SetReadDeadline(time.Now().Add(rawTimeout))
			if _, err := c.conn.Read(make([]byte, 1)); err == nil || isTimeout(err) {
				c.t.Errorf("connection still open after the stream error (read: %v)", err)
			}
			return cond
		}
	}
}

// closed checks that the server ends the stream (with or without a stream
// error first) and closes the connection.
func (c *rawS2S) closed() {
	c.t.Helper()
	for {
		e, err := c.r.Next()
		if errors.Is(err, router.ErrStreamEnd) || errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			c.t.Fatalf("waiting for the stream to close: %v", err)
		}
		if testserver.StreamErrorCondition(e) != "" {
			c.t.Logf("stream error %s", testserver.StreamErrorCondition(e))
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// fakeServer is a remote XMPP server written by hand, listening on
// loopback for the server under test to connect to: as the Authoritative
// Server that answers <db:verify/> for the domain a rawS2S claims, or as a
// Receiving Server that accepts our dialback without checking it and then
// misbehaves as a test needs.
type fakeServer struct {
	t      *testing.T
	domain string
	ln     net.Listener
	// tlsConfig, if not nil, is offered with STARTTLS (required);
	// without it the server under test must list the domain in
	// s2s.plaintext_domains.
	tlsConfig *tls.Config

	// verify answers a <db:verify/>: valid or not. Nil answers invalid.
	verify func(v *router.Element) bool
	// result is the type of the answer to a <db:result/>: "valid" if
	// empty, "drop" to close the connection without answering.
	result string
	// closeAfter, if positive, makes the server close each stream after
	// that many stanzas: it sends </stream:stream> and reads on, counting
	// what still arrives, until the other side closes (RFC 6120 §4.4).
	closeAfter int

	// stanzas gets every stanza received, on any connection.
	stanzas chan *router.Element
	// conns counts the connections accepted.
	conns atomic.Int32

	mu  sync.Mutex
	raw bytes.Buffer // everything received, for checks on serialisation
}

// startFake starts f listening on loopback.
func startFake(t *testing.T, f *fakeServer) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.t, f.ln = t, ln
	if f.stanzas == nil {
		f.stanzas = make(chan *router.Element, 1000)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			mu.Lock()
			open = append(open, nc)
			mu.Unlock()
			wg.Go(func() {
				defer nc.Close()
				// The other side hanging up (EOF) is no news.
				if err := f.serve(nc); err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "EOF") {
					t.Logf("fake %s: %v", f.domain, err)
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, nc := range open {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return f
}

// selfSignedTLS is a server TLS configuration with a self-signed
// certificate for domain, which no test server trusts.
func selfSignedTLS(t *testing.T, domain string) *tls.Config {
	t.Helper()
	certPEM, keyPEM, err := certs.SelfSigned(domain, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

func (f *fakeServer) addr() string { return f.ln.Addr().String() }

// recorder copies what it reads to the fake's log.
type recorder struct {
	f *fakeServer
	r io.Reader
}

func (r recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.f.mu.Lock()
	r.f.raw.Write(p[:n])
	r.f.mu.Unlock()
	return n, err
}

// received is everything the fake has read so far.
func (f *fakeServer) received() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.raw.String()
}

// serve runs one connection.
func (f *fakeServer) serve(nc net.Conn) error {
	conn := nc
	secure := false
	for {
		r := router.NewReader(recorder{f, deadlineReader{conn}}, router.NSServer, 0, 0)
		hdr, err := r.Header()
		if err != nil {
			return fmt.Errorf("header: %w", err)
		}
		peer := ""
		for _, a := range hdr.Attr {
			if a.Name.Space == "" && a.Name.Local == "from" {
				peer = a.Value
			}
		}
		feats := `<stream:features>`
		if f.tlsConfig != nil && !secure {
			feats += `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>`
		} else {
			feats += `<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>`
		}
		feats += `</stream:features>`
		if _, err := io.WriteString(conn, s2sHeader(f.domain, peer, "fake-"+router.NewID())+feats); err != nil {
			return err
		}
		upgrade, err := f.stream(conn, r)
		if err != nil || !upgrade {
			return err
		}
		tc := tls.Server(conn, f.tlsConfig)
		tc.SetDeadline(time.Now().Add(rawTimeout))
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		tc.SetDeadline(time.Time{})
		conn, secure = tc, true
	}
}

// stream serves one stream until it ends or STARTTLS restarts it.
func (f *fakeServer) stream(conn net.Conn, r *router.Reader) (upgrade bool, err error) {
	stanzas, closing := 0, false
	for {
		e, err := r.Next()
		if err != nil {
			if errors.Is(err, router.ErrStreamEnd) {
				if !closing {
					io.WriteString(conn, `</stream:stream>`)
				}
				return false, nil
			}
			return false, err
		}
		switch {
		case e.Name.Space == nsTLS && e.Name.Local == "starttls":
			_, err := io.WriteString(conn, `<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
			return true, err
		case e.Name.Space == nsDialback && e.Name.Local == "verify":
			typ := "invalid"
			if f.verify != nil && f.verify(e) {
				typ = "valid"
			}
			answer := fmt.Sprintf(`<db:verify from='%s' to='%s' id='%s' type='%s'/>`, e.Get("to"), e.Get("from"), e.Get("id"), typ)
			if _, err := io.WriteString(conn, answer); err != nil {
				return false, err
			}
		case e.Name.Space == nsDialback && e.Name.Local == "result":
			typ := f.result
			switch typ {
			case "drop":
				return false, nil
			case "":
				typ = "valid"
			}
			answer := fmt.Sprintf(`<db:result from='%s' to='%s' type='%s'/>`, e.Get("to"), e.Get("from"), typ)
			if typ == "error" {
				answer = fmt.Sprintf(`<db:result from='%s' to='%s' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>`, e.Get("to"), e.Get("from"))
			}
			if _, err := io.WriteString(conn, answer); err != nil {
				return false, err
			}
		case e.Name.Space == "" && (e.Name.Local == "message" || e.Name.Local == "presence" || e.Name.Local == "iq"):
			f.stanzas <- e
			stanzas++
			if stanzas == f.closeAfter {
				closing = true
				if _, err := io.WriteString(conn, `</stream:stream>`); err != nil {
					return false, err
				}
			}
		}
	}
}
