// Package testserver starts a real xmppd in-process on random loopback ports
// and logs real clients (mellium.im/xmpp) in to it, so that integration tests
// drive the server exactly as an XMPP client would.
package testserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/admin"
	"github.com/xmppd/xmppd/internal/app"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/router"
)

// Domain is the domain test servers serve.
const Domain = "localhost"

// Server is a running test server.
type Server struct {
	*app.Server
	t testing.TB
	// Roots trusts the server's self-signed certificate.
	Roots *x509.CertPool
}

// Start starts a server on SQLite in a temporary directory. mutate, if not
// nil, may change the configuration first.
func Start(t testing.TB, mutate func(*config.Config)) *Server {
	t.Helper()
	return StartOn(t, storetest.Backend{Name: "sqlite"}, mutate)
}

// StartOn starts a server on the given storage backend.
func StartOn(t testing.TB, b storetest.Backend, mutate func(*config.Config)) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Storage = b.Config(t)
	cfg.Listeners = []config.Listener{
		{Type: config.ListenerC2SStartTLS, Address: "127.0.0.1:0"},
		{Type: config.ListenerC2SDirectTLS, Address: "127.0.0.1:0"},
	}
	cfg.Log.Level = "debug"
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	srv, err := app.Start(ctx, cfg, log)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	s := &Server{Server: srv, t: t, Roots: x509.NewCertPool()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	for _, h := range cfg.Hosts {
		pem, err := os.ReadFile(filepath.Join(cfg.DataDir, h.Domain+".crt"))
		if err == nil {
			s.Roots.AppendCertsFromPEM(pem)
		}
	}
	return s
}

// testWriter sends server logs to the test log, so they show only when a
// test fails (or with -v).
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// AddUser creates an account and returns its bare JID.
func (s *Server) AddUser(local, password string) jid.JID {
	s.t.Helper()
	u := admin.Users{Config: s.Config, Users: s.Store.Users()}
	j, err := u.Add(context.Background(), local+"@"+Domain, password)
	if err != nil {
		s.t.Fatalf("add user %s: %v", local, err)
	}
	return j
}

// StartTLSAddr is the address of the STARTTLS listener.
func (s *Server) StartTLSAddr() string { return s.Addr(config.ListenerC2SStartTLS).String() }

// DirectTLSAddr is the address of the direct TLS listener.
func (s *Server) DirectTLSAddr() string { return s.Addr(config.ListenerC2SDirectTLS).String() }

// TLSConfig is a client TLS configuration that trusts the test server.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{ServerName: Domain, RootCAs: s.Roots, MinVersion: tls.VersionTLS12}
}

// Client is a logged-in mellium client whose incoming stanzas arrive on In.
type Client struct {
	*xmpp.Session
	t  testing.TB
	In chan *router.Element
	// Done is closed when the session ends; Err says why.
	Done chan struct{}
	Err  error
}

// LoginOptions choose how a client logs in.
type LoginOptions struct {
	Resource  string
	Mechanism sasl.Mechanism // default SCRAM-SHA-256
	DirectTLS bool
	TLS       *tls.Config // default TLSConfig()
}

// Dial connects and negotiates a session; it does not fail the test, so
// tests of failed logins can check the error.
func (s *Server) Dial(local, password string, o LoginOptions) (*Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if o.Mechanism.Name == "" {
		o.Mechanism = sasl.ScramSha256
	}
	if o.TLS == nil {
		o.TLS = s.TLSConfig()
	}
	origin := jid.MustParse(local + "@" + Domain)
	if o.Resource != "" {
		origin, _ = origin.WithResource(o.Resource)
	}
	var conn net.Conn
	var err error
	features := []xmpp.StreamFeature{xmpp.SASL("", password, o.Mechanism), xmpp.BindResource()}
	if o.DirectTLS {
		cfg := o.TLS.Clone()
		cfg.NextProtos = []string{"xmpp-client"}
		conn, err = tls.Dial("tcp", s.DirectTLSAddr(), cfg)
	} else {
		conn, err = net.Dial("tcp", s.StartTLSAddr())
		features = append([]xmpp.StreamFeature{xmpp.StartTLS(o.TLS)}, features...)
	}
	if err != nil {
		return nil, err
	}
	sess, err := xmpp.NewClientSession(ctx, origin, conn, features...)
	if err != nil {
		conn.Close()
		return nil, err
	}
	c := &Client{Session: sess, t: s.t, In: make(chan *router.Element, 100), Done: make(chan struct{})}
	go func() {
		defer close(c.Done)
		c.Err = sess.Serve(xmpp.HandlerFunc(c.handle))
	}()
	return c, nil
}

// Login is Dial that fails the test on error and closes the client at the
// end of the test.
func (s *Server) Login(local, password string, o LoginOptions) *Client {
	s.t.Helper()
	c, err := s.Dial(local, password, o)
	if err != nil {
		s.t.Fatalf("login %s: %v", local, err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// handle re-serialises each incoming top-level element and parses it into
// a router.Element for the test to inspect.
func (c *Client) handle(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	if err := enc.EncodeToken(*start); err != nil {
		return err
	}
	if _, err := xmlstream.Copy(enc, t); err != nil {
		return err
	}
	if err := enc.Flush(); err != nil {
		return err
	}
	e, err := router.ParseElement(buf.Bytes(), router.NSClient)
	if err != nil {
		return err
	}
	select {
	case c.In <- e:
	default:
		c.t.Errorf("client inbox full; dropped %s", e)
	}
	if e.Name.Local == "iq" && (e.Get("type") == "get" || e.Get("type") == "set") {
		// Answer like a real client so the server sees a response.
		resp := router.NewElement("", "iq", "type", "result", "id", e.Get("id"), "to", e.Get("from"))
		_, err := xmlstream.Copy(t, xml.NewDecoder(strings.NewReader(resp.String())))
		return err
	}
	return nil
}

// SendRaw writes XML text to the stream as it is.
func (c *Client) SendRaw(s string) error {
	return c.Send(context.Background(), xml.NewDecoder(strings.NewReader(s)))
}

// Close ends the session with </stream:stream>.
func (c *Client) Close() error {
	err := c.Session.Close()
	c.Conn().Close()
	return err
}

// ErrTimeout is returned by Next when nothing matching arrived in time.
var ErrTimeout = errors.New("timed out waiting for a stanza")

// Next returns the next incoming element that match accepts (others are
// dropped), waiting at most 10 s. Use it with t.Fatal on error.
func (c *Client) Next(match func(*router.Element) bool) (*router.Element, error) {
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-c.In:
			if match == nil || match(e) {
				return e, nil
			}
		case <-c.Done:
			return nil, errors.Join(errors.New("session ended"), c.Err)
		case <-timeout:
			return nil, ErrTimeout
		}
	}
}
