package testserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/router"
)

// NSHTTPBind is BOSH's namespace (XEP-0124).
const NSHTTPBind = "http://jabber.org/protocol/httpbind"

// BOSHClient is a small BOSH client written from XEP-0124 and XEP-0206:
// it creates a session, numbers its requests with rids and posts <body/>
// wrappers. Post sends one request and returns the response as it came,
// PostAsync does so in the background; a client that Raw drives
// (LoginBOSH) keeps one request held by the server at all times, as
// browsers do, from a goroutine of its own that the test's end (or
// Vanish) stops, unless BOSHOptions.Manual leaves the requests to the
// test.
type BOSHClient struct {
	s    *Server
	HTTP *http.Client
	URL  string
	// Header is added to every request (Origin, X-Forwarded-*).
	Header http.Header
	// SID is the session's id; Created the session creation response.
	SID     string
	Created *router.Element
	// Condition is the condition of the terminate body the session
	// ended with, once Raw.Next has read it.
	Condition string

	mu  sync.Mutex
	rid uint64 // the next request's
	// ctx is the requests' context; Vanish cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	in      chan *router.Element // payloads of responses, for Raw.Next
	wg      sync.WaitGroup
	ended   bool
	endOnce sync.Once
}

// BOSHOptions choose how DialBOSH connects.
type BOSHOptions struct {
	// TLS connects to the https listener (HTTP/2) instead of the http one.
	TLS    bool
	Header http.Header
	// Attrs are the session creation request's attributes after rid;
	// empty asks for to, wait 60, hold 1, ver 1.11 and xmpp:version 1.0.
	Attrs string
	// Manual keeps no request held by the server: only Send and the
	// test's own requests are posted, so that a test can number and
	// time every request itself.
	Manual bool
}

// NewBOSHClient returns a client of the server's BOSH endpoint that has
// sent nothing yet.
func (s *Server) NewBOSHClient(o BOSHOptions) *BOSHClient {
	tr := &http.Transport{MaxConnsPerHost: 4}
	url := s.HTTPURL() + "/http-bind"
	if o.TLS {
		tr.TLSClientConfig = s.TLSConfig()
		tr.ForceAttemptHTTP2 = true
		url = s.HTTPSURL() + "/http-bind"
	}
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<40))
	b := &BOSHClient{s: s, HTTP: &http.Client{Transport: tr, Timeout: 90 * time.Second}, URL: url, Header: o.Header,
		rid: n.Uint64() + 1, in: make(chan *router.Element, 256)}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	s.t.Cleanup(func() {
		b.mu.Lock()
		b.cancel()
		b.mu.Unlock()
		b.wg.Wait()
		tr.CloseIdleConnections()
	})
	return b
}

// Vanish drops the client off the network, as a closed laptop: the
// requests in progress are abandoned (their connections closed, unread)
// and the poller stops. Post and PostAsync work again afterwards, for
// a test to look at what became of the session.
func (b *BOSHClient) Vanish() {
	b.mu.Lock()
	b.cancel()
	b.ended = true // the poller stops and Raw.Next hears nothing more
	b.mu.Unlock()
	b.wg.Wait()
	b.HTTP.Transport.(*http.Transport).CloseIdleConnections()
	b.mu.Lock()
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.mu.Unlock()
}

// SetRID makes rid the next request's, for tests of rids out of order.
func (b *BOSHClient) SetRID(rid uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rid = rid
}

// NextRID takes the next rid.
func (b *BOSHClient) NextRID() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rid++
	return b.rid - 1
}

// Create sends the session creation request (attrs as in BOSHOptions)
// and keeps the sid of its response.
func (b *BOSHClient) Create(attrs string) (*http.Response, *router.Element, error) {
	if attrs == "" {
		attrs = `to="` + Domain + `" wait="60" hold="1" ver="1.11" xmlns:xmpp="urn:xmpp:xbosh" xmpp:version="1.0"`
	}
	resp, body, err := b.Post(fmt.Sprintf(`<body xmlns="%s" rid="%d" %s/>`, NSHTTPBind, b.NextRID(), attrs))
	if err == nil {
		b.SID = body.Get("sid")
		b.Created = body
	}
	return resp, body, err
}

// Body is a request of the session: rid, sid, the extra attributes and
// the payload.
func (b *BOSHClient) Body(rid uint64, attrs, payload string) string {
	return fmt.Sprintf(`<body xmlns="%s" rid="%d" sid="%s" %s>%s</body>`, NSHTTPBind, rid, b.SID, attrs, payload)
}

// BOSHResponse is the response to one request.
type BOSHResponse struct {
	// Resp is the HTTP response (its body read and closed); nil if the
	// request failed.
	Resp *http.Response
	// Data is the response body as it came; Body is it parsed, nil if it
	// is not a <body/>.
	Data []byte
	Body *router.Element
	Err  error
}

// Condition is the terminate condition of the response, "" if it is no
// terminate body (or one without a condition).
func (r BOSHResponse) Condition() string {
	if r.Body == nil || r.Body.Get("type") != "terminate" {
		return ""
	}
	return r.Body.Get("condition")
}

// Post posts a request and returns the response and its parsed body (nil
// if it is not XML).
func (b *BOSHClient) Post(body string) (*http.Response, *router.Element, error) {
	r := b.Do(body)
	return r.Resp, r.Body, r.Err
}

// Do posts a request and returns the response.
func (b *BOSHClient) Do(body string) BOSHResponse {
	b.mu.Lock()
	ctx := b.ctx
	b.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.URL, strings.NewReader(body))
	if err != nil {
		return BOSHResponse{Err: err}
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	for k, v := range b.Header {
		req.Header[k] = v
	}
	resp, err := b.HTTP.Do(req)
	if err != nil {
		return BOSHResponse{Err: err}
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := BOSHResponse{Resp: resp, Data: data, Err: err}
	if err != nil {
		return r
	}
	e, perr := router.ParseElement(bytes.TrimSpace(data), router.NSClient)
	if perr == nil && e.Name.Space == NSHTTPBind && e.Name.Local == "body" {
		r.Body = e
	}
	return r
}

// PostAsync posts a request from a goroutine of the client and returns
// where its response will come; the test's end (or Vanish) abandons it.
func (b *BOSHClient) PostAsync(body string) <-chan BOSHResponse {
	ch := make(chan BOSHResponse, 1)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		ch <- b.Do(body)
	}()
	return ch
}

// send posts payload as the next request and queues the payloads of the
// response for Raw.Next.
func (b *BOSHClient) send(attrs, payload string) error {
	return b.sendRID(b.NextRID(), attrs, payload)
}

func (b *BOSHClient) sendRID(rid uint64, attrs, payload string) error {
	resp, body, err := b.Post(b.Body(rid, attrs, payload))
	if err != nil {
		return err
	}
	if body == nil {
		return fmt.Errorf("bosh: response %s is not a <body/>", resp.Status)
	}
	b.deliver(body)
	return nil
}

// deliver queues a response's payloads; after a terminate it queues
// nothing more, and Next reads the end of the stream.
func (b *BOSHClient) deliver(body *router.Element) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return
	}
	for _, e := range body.Elements() {
		b.in <- e
	}
	if body.Get("type") == "terminate" {
		b.ended = true
		b.in <- body
	}
}

// poll keeps a request held by the server until the session ends or the
// test does.
func (b *BOSHClient) poll() {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			b.mu.Lock()
			ended := b.ended || b.ctx.Err() != nil
			b.mu.Unlock()
			if ended {
				return
			}
			if err := b.send("", ""); err != nil {
				return
			}
		}
	}()
}

// DialBOSH creates a BOSH session as a Raw client whose Send posts a
// request and whose Next reads the payloads of the responses; its
// Features are those of the session creation response.
func (s *Server) DialBOSH(o BOSHOptions) (*Raw, error) {
	b := s.NewBOSHClient(o)
	resp, body, err := b.Create(o.Attrs)
	if err != nil {
		return nil, err
	}
	if body == nil || b.SID == "" {
		return nil, fmt.Errorf("bosh: session creation answered %s %v", resp.Status, body)
	}
	c := &Raw{s: s, bosh: b}
	for _, e := range body.Elements() {
		b.in <- e
	}
	f, err := c.Next()
	if err != nil {
		return nil, err
	}
	c.Features = f
	if !o.Manual {
		b.poll()
	}
	return c, nil
}

// LoginBOSH creates a BOSH session, authenticates with SCRAM-SHA-256 and
// binds resource, failing the test on error.
func (s *Server) LoginBOSH(local, password, resource string, o BOSHOptions) *Raw {
	s.t.Helper()
	c, err := s.DialBOSH(o)
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
		s.t.Fatalf("bosh login %s: %v", local, err)
	}
	return c
}

// BOSH is the BOSH client of a Raw made by DialBOSH (nil otherwise).
func (c *Raw) BOSH() *BOSHClient { return c.bosh }

// boshNext reads the next payload; a terminate body is returned as
// router.ErrStreamEnd after its payloads (a stream error among them).
func (c *Raw) boshNext() (*router.Element, error) {
	select {
	case e := <-c.bosh.in:
		if e.Name.Space == NSHTTPBind && e.Name.Local == "body" {
			c.bosh.Terminated(e)
			return nil, router.ErrStreamEnd
		}
		return e, nil
	case <-time.After(rawTimeout):
		return nil, errors.New("bosh: nothing received in time")
	}
}

// Terminated records the terminate body the session ended with.
func (b *BOSHClient) Terminated(e *router.Element) {
	b.endOnce.Do(func() { b.Condition = e.Get("condition") })
}

// boshRestart sends the restart request after SASL (XEP-0206 §5) and
// reads the new stream features.
func (c *Raw) boshRestart() (*router.Element, error) {
	c.boshPost(`to="`+Domain+`" xmlns:xmpp="urn:xmpp:xbosh" xmpp:restart="true"`, "")
	f, err := c.Next()
	if err != nil {
		return nil, err
	}
	c.Features = f
	return f, nil
}

// boshSend posts s as the next request's payload; the response comes on
// Next.
func (c *Raw) boshSend(s string) error {
	c.boshPost("", s)
	return nil
}

// boshPost posts a request from a goroutine of the client, its rid taken
// now, so that requests keep the order of the calls.
func (c *Raw) boshPost(attrs, payload string) {
	rid := c.bosh.NextRID()
	c.bosh.wg.Add(1)
	go func() {
		defer c.bosh.wg.Done()
		c.bosh.sendRID(rid, attrs, payload)
	}()
}

// HTTPBindURL is the URL of the BOSH endpoint on the http listener.
func (s *Server) HTTPBindURL() string {
	return "http://" + s.Addr(config.ListenerHTTP).String() + "/http-bind"
}
