// Package testserver starts a real xmppd in-process on random loopback ports
// and logs real clients (mellium.im/xmpp) in to it, so that integration tests
// drive the server exactly as an XMPP client would. For what no client
// library sends (input before TLS, broken XML, chosen channel bindings,
// silence), Raw drives a connection by hand.
package testserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/server"
)

// Domain is the domain test servers serve.
const Domain = "localhost"

// Server is a running test server.
type Server struct {
	*server.Server
	t testing.TB
	// Roots trusts the server's self-signed certificate.
	Roots *x509.CertPool

	shutdownOnce sync.Once
	shutdownErr  error
}

// Start starts a server on SQLite in a temporary directory. mutate, if not
// nil, may change the configuration first.
func Start(t testing.TB, mutate func(*config.Config)) *Server {
	t.Helper()
	return StartOn(t, storetest.Backend{Name: "sqlite"}, mutate)
}

// Domain is the server's first (usually only) domain: Domain unless the
// test configured others.
func (s *Server) Domain() string { return s.Config.Hosts[0].Domain }

// StartOn starts a server on the given storage backend.
func StartOn(t testing.TB, b storetest.Backend, mutate func(*config.Config)) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Storage = b.Config(t)
	cfg.Listeners = []config.Listener{
		{Type: config.ListenerC2SStartTLS, Address: "127.0.0.1:0"},
		{Type: config.ListenerC2SDirectTLS, Address: "127.0.0.1:0"},
		{Type: config.ListenerHTTP, Address: "127.0.0.1:0"},
		{Type: config.ListenerHTTPS, Address: "127.0.0.1:0"},
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
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	s := &Server{Server: srv, t: t, Roots: x509.NewCertPool()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
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

// Shutdown shuts the server down as an operator would: every connected
// client gets a system-shutdown stream error. It runs once; the test's
// cleanup calls it too, and later calls return the first result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.Server.Shutdown(ctx) })
	return s.shutdownErr
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
	j, err := u.Add(context.Background(), local+"@"+s.Domain(), password)
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
	return &tls.Config{ServerName: s.Domain(), RootCAs: s.Roots, MinVersion: tls.VersionTLS12}
}

// Client is a logged-in mellium client whose incoming stanzas arrive on In.
type Client struct {
	*xmpp.Session
	t  testing.TB
	In chan *router.Element
	// Done is closed when the session ends; Err says why.
	Done chan struct{}
	Err  error

	log      *streamLog
	answerIQ func(req *router.Element) *router.Element
	mu       sync.Mutex
	backlog  []*router.Element // read from In but not yet matched by Next
}

// LoginOptions choose how a client logs in.
type LoginOptions struct {
	// Resource, if set, is requested when binding; else the server picks one.
	Resource  string
	Mechanism sasl.Mechanism // default SCRAM-SHA-256
	DirectTLS bool
	TLS       *tls.Config // default TLSConfig()
	// AnswerIQ, if set, answers the IQ requests the client gets instead
	// of the empty result it sends by default; nil from it sends nothing.
	AnswerIQ func(req *router.Element) *router.Element
}

// LoginError is why Dial failed, with what the server said about it.
type LoginError struct {
	Err error
	// SASLFailure is the condition of the server's last SASL <failure/>,
	// StreamError that of its stream error and StanzaError that of its last
	// stanza error (e.g. to the bind request); each "" if none was sent.
	SASLFailure string
	StreamError string
	StanzaError string
}

// Error implements error.
func (e *LoginError) Error() string {
	return fmt.Sprintf("login: %v (sasl failure %q, stream error %q, stanza error %q)", e.Err, e.SASLFailure, e.StreamError, e.StanzaError)
}

// Unwrap returns mellium's error.
func (e *LoginError) Unwrap() error { return e.Err }

// Dial connects and negotiates a session; it does not fail the test, so
// tests of failed logins can check the error, a *LoginError once the
// connection was made.
func (s *Server) Dial(local, password string, o LoginOptions) (*Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if o.Mechanism.Name == "" {
		o.Mechanism = sasl.ScramSha256
	}
	if o.TLS == nil {
		o.TLS = s.TLSConfig()
	}
	origin := jid.MustParse(local + "@" + s.Domain())
	log := &streamLog{}
	bind := xmpp.BindResource()
	if o.Resource != "" {
		bind = bindResource(o.Resource)
	}
	features := []xmpp.StreamFeature{xmpp.SASL("", password, o.Mechanism), bind}
	var rw net.Conn
	var state xmpp.SessionState
	if o.DirectTLS {
		cfg := o.TLS.Clone()
		cfg.NextProtos = []string{"xmpp-client"}
		tc, err := tls.Dial("tcp", s.DirectTLSAddr(), cfg)
		if err != nil {
			return nil, err
		}
		rw, state = recordConn{tc, log}, xmpp.Secure
	} else {
		nc, err := net.Dial("tcp", s.StartTLSAddr())
		if err != nil {
			return nil, err
		}
		rw = nc
		features = append([]xmpp.StreamFeature{startTLS(o.TLS, log)}, features...)
	}
	sess, err := xmpp.NewSession(ctx, origin.Domain(), origin, rw, state, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: features}
	}))
	if err != nil {
		rw.Close()
		if sess != nil {
			sess.Conn().Close()
		}
		f := scan(log.bytes())
		return nil, &LoginError{Err: err, SASLFailure: f.SASLFailure, StreamError: f.StreamError, StanzaError: f.StanzaError}
	}
	c := &Client{Session: sess, t: s.t, In: make(chan *router.Element, 100), Done: make(chan struct{}), log: log, answerIQ: o.AnswerIQ}
	go func() {
		defer close(c.Done)
		c.Err = sess.Serve(xmpp.HandlerFunc(c.handle))
	}()
	return c, nil
}

// startTLS is mellium's STARTTLS feature with the TLS connection recorded.
func startTLS(cfg *tls.Config, log *streamLog) xmpp.StreamFeature {
	f := xmpp.StartTLS(cfg)
	negotiate := f.Negotiate
	f.Negotiate = func(ctx context.Context, session *xmpp.Session, data any) (xmpp.SessionState, io.ReadWriter, error) {
		mask, rw, err := negotiate(ctx, session, data)
		if tc, ok := rw.(*tls.Conn); ok {
			rw = recordConn{tc, log}
		}
		return mask, rw, err
	}
	return f
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

// handle parses each incoming top-level element into a router.Element for
// the test to inspect, and answers IQ requests like a real client would, so
// that the server's pings get their answer.
func (c *Client) handle(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	e, err := readElement(*start, t)
	if err != nil {
		return err
	}
	select {
	case c.In <- e:
	default:
		c.t.Errorf("client inbox full; dropped %s", e)
	}
	if e.Name.Local == "iq" && (e.Get("type") == "get" || e.Get("type") == "set") {
		resp := router.NewElement("", "iq", "type", "result", "id", e.Get("id"), "to", e.Get("from"))
		if c.answerIQ != nil {
			if resp = c.answerIQ(e); resp == nil {
				return nil
			}
		}
		_, err := xmlstream.Copy(t, xml.NewDecoder(strings.NewReader(resp.String())))
		return err
	}
	return nil
}

// SendRaw writes XML text to the stream exactly as given: mellium adds
// nothing (no id, no from) and checks nothing, so tests can send what a
// careless or hostile client would.
func (c *Client) SendRaw(s string) error {
	return writeRaw(c.TokenWriter(), c.Conn(), s)
}

// Close ends the session with </stream:stream>.
func (c *Client) Close() error {
	err := c.Session.Close()
	c.Conn().Close()
	return err
}

// ErrTimeout is returned by Next when nothing matching arrived in time.
var ErrTimeout = errors.New("timed out waiting for a stanza")

// Next returns the first incoming element that match accepts (nil accepts
// any), waiting at most 10 s. Elements it passes over are kept, in order,
// for later calls. Use it with t.Fatal on error.
func (c *Client) Next(match func(*router.Element) bool) (*router.Element, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range c.backlog {
		if match == nil || match(e) {
			c.backlog = append(c.backlog[:i], c.backlog[i+1:]...)
			return e, nil
		}
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-c.In:
			if match == nil || match(e) {
				return e, nil
			}
			c.backlog = append(c.backlog, e)
		case <-c.Done:
			// The session may have ended right after the element came.
			select {
			case e := <-c.In:
				if match == nil || match(e) {
					return e, nil
				}
				c.backlog = append(c.backlog, e)
				continue
			default:
			}
			return nil, errors.Join(errors.New("session ended"), c.Err)
		case <-timeout:
			return nil, ErrTimeout
		}
	}
}

// Request sends an IQ request given as XML text, which must have an id, and
// returns the result or error that answers it.
func (c *Client) Request(iq string) (*router.Element, error) {
	req, err := router.ParseElement([]byte(iq), router.NSClient)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", iq, err)
	}
	id := req.Get("id")
	if err := c.SendRaw(iq); err != nil {
		return nil, err
	}
	return c.Next(func(e *router.Element) bool {
		t := e.Get("type")
		return e.Name.Local == "iq" && e.Get("id") == id && (t == "result" || t == "error")
	})
}

// Sync makes a round trip to the server (an XEP-0199 ping; an error answer
// will do as well), so that everything this client sent before has been
// processed: the server handles one connection's stanzas in order.
func (c *Client) Sync() error {
	id := "sync-" + router.NewID()
	_, err := c.Request(`<iq type="get" id="` + id + `" to="` + c.LocalAddr().Domainpart() + `"><ping xmlns="` + nsPing + `"/></iq>`)
	return err
}

// WaitClosed waits until the server has ended the session and returns the
// condition of the stream error it sent, "" if it sent none.
func (c *Client) WaitClosed() (string, error) {
	select {
	case <-c.Done:
	case <-time.After(20 * time.Second):
		return "", errors.New("session still open")
	}
	return scan(c.log.bytes()).StreamError, nil
}

// Pending returns, without waiting, the elements that have arrived and not
// been taken by Next, oldest first; they stay available to Next. After a
// Sync, everything the server queued for this client before answering the
// sync is among them.
func (c *Client) Pending() []*router.Element {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		select {
		case e := <-c.In:
			c.backlog = append(c.backlog, e)
			continue
		default:
		}
		return append([]*router.Element(nil), c.backlog...)
	}
}

// Take returns, without waiting, the elements that have arrived, not been
// taken by Next, and that match accepts, oldest first, and takes them out
// of the backlog; the others stay available to Next.
func (c *Client) Take(match func(*router.Element) bool) []*router.Element {
	c.Pending()
	c.mu.Lock()
	defer c.mu.Unlock()
	var taken []*router.Element
	kept := c.backlog[:0]
	for _, e := range c.backlog {
		if match(e) {
			taken = append(taken, e)
		} else {
			kept = append(kept, e)
		}
	}
	clear(c.backlog[len(kept):])
	c.backlog = kept
	return taken
}

// EnableModules adds module IDs to the configuration unless they are
// enabled already, so tests keep working whatever the default list holds.
func EnableModules(c *config.Config, ids ...string) {
	for _, id := range ids {
		if !slices.Contains(c.Modules, id) {
			c.Modules = append(c.Modules, id)
		}
	}
}
