package c2s

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/router"
)

// Namespaces of BOSH (XEP-0124) and its XMPP binding (XEP-0206).
const (
	nsHTTPBind = "http://jabber.org/protocol/httpbind"
	nsXBOSH    = "urn:xmpp:xbosh"
)

// BOSHPath is where the web server serves XMPP over BOSH by default.
const BOSHPath = "/http-bind"

// boshVersion is the highest BOSH version we speak (XEP-0124 1.11).
const boshVersion = "1.11"

// maxRID is the largest rid a client may use (XEP-0124 §14.1: 2^53-1).
const maxRID = 1<<53 - 1

// BOSHOptions configure the BOSH transport.
type BOSHOptions struct {
	// Origins and AllowInsecure are as for WebSocketOptions: the Origin
	// patterns allowed (empty: the request's own host), and whether
	// plain HTTP is accepted from beyond loopback.
	Origins       []string
	AllowInsecure bool
	// Client tells who made a request, as for WebSocketOptions.
	Client func(r *http.Request) (addr net.Addr, secure bool, host string)
	// MaxWait caps the client's wait: how long a request is held
	// without anything to send.
	MaxWait time.Duration
	// MaxHold caps the client's hold: how many requests are held at once.
	MaxHold int
	// Inactivity is how long a session may have no request held before
	// it counts as disconnected (a resumable one hibernates).
	Inactivity time.Duration
	// MaxPause is the longest pause a client may ask for; 0 offers none.
	MaxPause time.Duration
	// Polling is the shortest interval between empty requests of a
	// polling session (hold 0); 0 does not check.
	Polling time.Duration
}

// BOSH is the handler of XMPP over BOSH (XEP-0124, XEP-0206): HTTP
// requests carry <body/> wrappers of the elements of one stream, and a
// session of the same negotiation and Session code as TCP runs behind
// each BOSH session, on a goroutine of its own owned by the c2s Server
// (the transport has no connection to read from; the requests feed it).
type BOSH struct {
	srv  *Server
	opts BOSHOptions

	mu       sync.Mutex
	sessions map[string]*boshSession
	closed   bool
}

// BOSH returns the BOSH handler; mount it at BOSHPath for POST and
// OPTIONS, and call its Shutdown when the web server stops.
func (s *Server) BOSH(o BOSHOptions) *BOSH {
	if o.Client == nil {
		o.Client = func(r *http.Request) (net.Addr, bool, string) {
			addr, _ := net.ResolveTCPAddr("tcp", r.RemoteAddr)
			return addr, r.TLS != nil, r.Host
		}
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 60 * time.Second
	}
	if o.MaxHold <= 0 {
		o.MaxHold = 1
	}
	if o.Inactivity <= 0 {
		o.Inactivity = 60 * time.Second
	}
	return &BOSH{srv: s, opts: o, sessions: map[string]*boshSession{}}
}

// Shutdown ends every BOSH session with system-shutdown, which answers
// their held requests, and refuses new ones: for the web server's
// shutdown, which waits for the requests in progress.
func (b *BOSH) Shutdown() {
	b.mu.Lock()
	b.closed = true
	ss := make([]*boshSession, 0, len(b.sessions))
	for _, bs := range b.sessions {
		ss = append(ss, bs)
	}
	b.mu.Unlock()
	for _, bs := range ss {
		bs.c.Close(stream.SystemShutdown)
	}
}

// Sessions is the number of open BOSH sessions.
func (b *BOSH) Sessions() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.sessions)
}

// boshError is a terminal binding condition (XEP-0124 §17.2) that ends a
// session; as a cause it is a stream error, so that the session ends
// rather than hibernates.
type boshError struct{ cond string }

func (e boshError) Error() string { return "bosh: " + e.cond }
func (e boshError) Unwrap() error { return stream.UndefinedCondition }

// httpStatus is the deprecated HTTP code of a condition for legacy
// clients (XEP-0124 §17.1); 200 for the others.
func httpStatus(cond string) int {
	switch cond {
	case "bad-request":
		return http.StatusBadRequest
	case "policy-violation":
		return http.StatusForbidden
	case "item-not-found":
		return http.StatusNotFound
	}
	return http.StatusOK
}

// terminateBody is a <body type='terminate'/> with cond.
func terminateBody(cond string) []byte {
	b := []byte(`<body xmlns="` + nsHTTPBind + `" type="terminate"`)
	if cond != "" {
		b = append(b, ` condition="`+cond+`"`...)
	}
	return append(b, "/>"...)
}

// ServeHTTP implements http.Handler.
func (b *BOSH) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	addr, secure, host := b.opts.Client(r)
	if addr == nil {
		http.Error(w, "bad client address", http.StatusBadRequest)
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if !originAllowed(origin, b.opts.Origins, host) {
			http.Error(w, "origin not allowed: "+origin, http.StatusForbidden)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	}
	switch r.Method {
	case http.MethodOptions:
		// The CORS preflight of a browser's POST with text/xml.
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusOK)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, "this is XMPP over BOSH (XEP-0124, XEP-0206): POST <body/> wrappers", http.StatusMethodNotAllowed)
		return
	}
	if !secure && !b.opts.AllowInsecure && !isLoopback(addr) {
		http.Error(w, "XMPP over BOSH needs HTTPS", http.StatusForbidden)
		return
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, fmt.Sprintf("request body too large: at most %d bytes", mbe.Limit), http.StatusRequestEntityTooLarge)
		}
		return
	}
	req, perr := parseBOSHBody(data, b.srv.limits.MaxStanzaSize, b.srv.limits.MaxDepth)
	if req == nil || req.sid == "" && perr != nil {
		// Not a <body/> of ours, or no session to speak of: the HTTP
		// error (XEP-0124 §17.1) carries the binding condition too.
		writeBOSH(w, http.StatusBadRequest, "", terminateBody("bad-request"))
		return
	}
	if req.sid == "" {
		b.create(w, r, req, addr, secure)
		return
	}
	b.mu.Lock()
	bs := b.sessions[req.sid]
	b.mu.Unlock()
	switch {
	case bs == nil && perr != nil:
		writeBOSH(w, http.StatusBadRequest, "", terminateBody("bad-request"))
		return
	case bs == nil:
		writeBOSH(w, http.StatusNotFound, "", terminateBody("item-not-found"))
		return
	}
	if bs.secure && !secure {
		// XEP-0124 §15: a secure session stays secure; the session is not
		// ended, which would let anyone end it.
		http.Error(w, "this BOSH session was opened over HTTPS", http.StatusForbidden)
		return
	}
	if perr != nil {
		bs.malformed(w, req)
		return
	}
	bs.serve(w, r, req)
}

// malformed answers a request of the session whose payloads are not
// well-formed XML or break the stanza limits: bad-request, a terminal
// condition (XEP-0124 §17.2), when its rid is one the session expects;
// otherwise (a stray or forged request) only the request is refused.
func (bs *boshSession) malformed(w http.ResponseWriter, req *boshRequest) {
	bs.mu.Lock()
	ok := !bs.ended && bs.inWindow(req)
	bs.mu.Unlock()
	if !ok {
		writeBOSH(w, http.StatusBadRequest, bs.contentType, terminateBody("bad-request"))
		return
	}
	bs.terminate("bad-request", w)
}

// writeBOSH writes a response body.
func writeBOSH(w http.ResponseWriter, status int, contentType string, body []byte) {
	if contentType == "" {
		contentType = "text/xml; charset=utf-8"
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// boshRequest is a parsed <body/> wrapper.
type boshRequest struct {
	attrs    map[string]string // attributes by local name ("xmpp:…" for urn:xmpp:xbosh)
	sid      string
	rid      uint64
	payloads []*router.Element
}

// parseBOSHBody parses a request: one <body/> of the httpbind namespace
// and its child elements, each within the stanza limits. When the <body/>
// start and its rid are good but what follows is not, it returns the
// request without payloads and the error, so that the session it names can
// be told.
func parseBOSHBody(data []byte, maxSize, maxDepth int) (*boshRequest, error) {
	rd := router.NewReader(bytes.NewReader(data), router.NSClient, int64(maxSize), maxDepth)
	root, err := rd.Open(nsHTTPBind, "body")
	if err != nil {
		return nil, err
	}
	req := &boshRequest{attrs: map[string]string{}}
	for _, a := range root.Attr {
		switch a.Name.Space {
		case "":
			req.attrs[a.Name.Local] = a.Value
		case nsXBOSH:
			req.attrs["xmpp:"+a.Name.Local] = a.Value
		case "http://www.w3.org/XML/1998/namespace":
			req.attrs["xml:"+a.Name.Local] = a.Value
		}
	}
	req.sid = req.attrs["sid"]
	req.rid, err = strconv.ParseUint(req.attrs["rid"], 10, 64)
	if err != nil || req.rid == 0 || req.rid > maxRID {
		return nil, errors.New("bosh: bad rid")
	}
	for {
		e, err := rd.Next()
		if errors.Is(err, io.EOF) && bytes.HasSuffix(bytes.TrimSpace(data), []byte("/>")) {
			// A self-closing <body/>: the reader sees the end of the
			// input before the decoder's end of the element.
			return req, nil
		}
		if errors.Is(err, router.ErrStreamEnd) {
			break
		}
		if err != nil {
			req.payloads = nil
			return req, fmt.Errorf("bosh: payload: %w", err)
		}
		// XEP-0206 §5: many clients leave stanzas in the wrapper's
		// namespace; they are jabber:client.
		unwrapNS(e)
		req.payloads = append(req.payloads, e)
	}
	if _, err := rd.Next(); !errors.Is(err, io.EOF) {
		req.payloads = nil
		return req, errors.New("bosh: content after </body>")
	}
	return req, nil
}

// unwrapNS moves e and its descendants from the httpbind namespace to
// jabber:client.
func unwrapNS(e *router.Element) {
	if e.Name.Space == nsHTTPBind {
		e.Name.Space = ""
	}
	for _, c := range e.Children {
		if ce, ok := c.(*router.Element); ok {
			unwrapNS(ce)
		}
	}
}

// seconds parses a non-negative number of seconds.
func seconds(s string) (time.Duration, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	return time.Duration(n) * time.Second, err == nil
}

// create starts a session (XEP-0124 §7.1, XEP-0206 §5).
func (b *BOSH) create(w http.ResponseWriter, r *http.Request, req *boshRequest, addr net.Addr, secure bool) {
	a := req.attrs
	legacy := a["ver"] == ""
	fail := func(cond string) {
		status := http.StatusOK
		if legacy {
			status = httpStatus(cond)
		}
		writeBOSH(w, status, "", terminateBody(cond))
	}
	to := a["to"]
	if to == "" {
		fail("improper-addressing")
		return
	}
	d, err := jid.Parse(to)
	if err != nil || d.Localpart() != "" || d.Resourcepart() != "" || !b.srv.opts.Router.ServesUsers(d.Domainpart()) {
		fail("host-unknown")
		return
	}
	domain := d.Domainpart()
	// wait and hold SHOULD be given (XEP-0124 §7.1); without them, the
	// longest wait we allow and one request held, as clients that reuse
	// connections ask for.
	wait, okWait := b.opts.MaxWait, true
	if v, ok := a["wait"]; ok {
		wait, okWait = seconds(v)
	}
	hold, errHold := 1, error(nil)
	if v, ok := a["hold"]; ok {
		hold, errHold = strconv.Atoi(v)
	}
	if !okWait || errHold != nil || hold < 0 {
		fail("bad-request")
		return
	}
	contentType := a["content"]
	if contentType != "" {
		if _, _, err := mime.ParseMediaType(contentType); err != nil {
			fail("bad-request")
			return
		}
	}
	bs := &boshSession{
		h:           b,
		domain:      domain,
		rid:         req.rid,
		firstRID:    req.rid,
		wait:        min(wait, b.opts.MaxWait),
		hold:        min(hold, b.opts.MaxHold),
		inactivity:  b.opts.Inactivity,
		legacy:      legacy,
		secure:      secure,
		contentType: contentType,
		ver:         minVersion(a["ver"]),
		inSignal:    make(chan struct{}, 1),
		outSignal:   make(chan struct{}),
		replies:     map[uint64][]byte{},
	}
	bs.requests = bs.hold + 1
	if bs.hold == 0 && b.opts.Polling > 0 {
		// A polling session gets more than the poll interval between
		// requests (XEP-0124 §12).
		bs.inactivity = max(bs.inactivity, 2*b.opts.Polling)
	}
	version := a["xmpp:version"]
	if version == "" {
		version = "1.0"
	}
	bs.in = append(bs.in, boshItem{open: true, to: to, from: a["from"], version: version})
	for {
		bs.sid = rand.Text()
		b.mu.Lock()
		if b.sessions[bs.sid] == nil {
			break
		}
		b.mu.Unlock()
	}
	if b.closed {
		b.mu.Unlock()
		fail("system-shutdown")
		return
	}
	b.sessions[bs.sid] = bs
	b.mu.Unlock()

	s := b.srv
	c := newConnFrom(s, nil, addr, false)
	c.log = c.log.With(slog.String("transport", "bosh"))
	c.bosh = bs
	bs.c = c
	ticket, ok := s.pending.Acquire(c.ip, c.evict)
	if !ok {
		b.remove(bs)
		fail("policy-violation")
		return
	}
	c.pending = ticket
	if !s.track(c) {
		ticket.Release()
		b.remove(bs)
		fail("system-shutdown")
		return
	}
	// Not the request's cancellation: the session outlives it. Shutdown
	// ends it, as it does TCP connections.
	ctx := context.WithoutCancel(r.Context())
	go func() {
		defer s.wg.Done()
		defer s.untrack(c)
		defer c.releasePending()
		c.run(ctx)
	}()
	bs.mu.Lock()
	hr := bs.hold1(newHeld(req.rid))
	bs.mu.Unlock()
	bs.await(w, r, hr)
}

func newHeld(rid uint64) *heldRequest {
	return &heldRequest{rid: rid, reply: make(chan []byte, 1), status: http.StatusOK}
}

// minVersion is the BOSH version of a session: the client's or ours,
// whichever is lower.
func minVersion(client string) string {
	if client == "" {
		return boshVersion
	}
	cmaj, cmin, _ := strings.Cut(client, ".")
	ma, err1 := strconv.Atoi(cmaj)
	mi, err2 := strconv.Atoi(cmin)
	if err1 != nil || err2 != nil {
		return boshVersion
	}
	if ma < 1 || ma == 1 && mi < 11 {
		return strconv.Itoa(ma) + "." + strconv.Itoa(mi)
	}
	return boshVersion
}

// remove forgets a session.
func (b *BOSH) remove(bs *boshSession) {
	b.mu.Lock()
	if b.sessions[bs.sid] == bs {
		delete(b.sessions, bs.sid)
	}
	b.mu.Unlock()
}

// boshItem is what the requests give the session's reader, in rid order:
// an element, the stream's (re)start, or the client's terminate.
type boshItem struct {
	el                *router.Element
	open              bool // session creation or xmpp:restart
	to, from, version string
	terminate         bool
}

// heldRequest is a request waiting for its response.
type heldRequest struct {
	rid   uint64
	reply chan []byte // buffered 1; the response body
	// status is the HTTP status of the response (200 but for legacy
	// clients' errors).
	status int
	// timer answers it, empty, once it has been held for the session's
	// wait; nil while it is not held, and for the creation request,
	// which waits for the stream features.
	timer *time.Timer
}

// boshSession is one BOSH session: the Transport framing of its conn
// (next, write, readOpen, writeFinal) and the XEP-0124 state of its
// requests. The conn's goroutine reads what the requests bring; what it
// writes waits in out for a held request to carry it.
type boshSession struct {
	h           *BOSH
	c           *conn
	domain      string // the served domain the session is for
	sid         string
	firstRID    uint64
	wait        time.Duration
	hold        int
	requests    int
	inactivity  time.Duration
	legacy      bool
	secure      bool
	contentType string
	ver         string

	mu sync.Mutex
	// rid is the highest rid applied: payloads are applied in rid order.
	rid uint64
	// pending are requests ahead of rid, waiting for the gap.
	pending map[uint64]*pendingRequest
	// held are the applied requests waiting for a response, in rid order.
	held []*heldRequest
	// replies are the bodies of the latest responses, by rid, for
	// retransmission; replyOrder their rids, oldest first.
	replies    map[uint64][]byte
	replyOrder []uint64
	in         []boshItem
	inSignal   chan struct{} // wakes the reader; buffered 1
	out        []byte
	outSignal  chan struct{} // closed and replaced when out is taken
	ended      bool
	final      []byte // the terminate body not yet delivered
	idle       *time.Timer
	idleGen    int
	// pauseFor is the inactivity period after a pause request, until the
	// next request.
	pauseFor time.Duration
	// lastEmpty is when the last empty request arrived and whether the
	// response to it was empty (polling, XEP-0124 §12).
	lastEmpty      time.Time
	lastEmptyReply bool
}

type pendingRequest struct {
	req *boshRequest
	hr  *heldRequest
}

// serve handles a request of the session.
func (bs *boshSession) serve(w http.ResponseWriter, r *http.Request, req *boshRequest) {
	bs.mu.Lock()
	if bs.ended {
		final := bs.final
		bs.final = nil
		bs.mu.Unlock()
		if final != nil {
			bs.h.remove(bs)
			writeBOSH(w, http.StatusOK, bs.contentType, final)
			return
		}
		writeBOSH(w, http.StatusNotFound, bs.contentType, terminateBody("item-not-found"))
		return
	}
	switch {
	case req.rid <= bs.rid:
		if body, ok := bs.replies[req.rid]; ok {
			// A retransmission: the same response again.
			bs.mu.Unlock()
			writeBOSH(w, http.StatusOK, bs.contentType, body)
			return
		}
		if i := bs.heldIndex(req.rid); i >= 0 {
			// Sent again while held: the old request gets a recoverable
			// error, this one takes its place (XEP-0124 §14.3).
			old := bs.held[i]
			hr := newHeld(req.rid)
			bs.held[i] = hr
			bs.arm(hr)
			bs.answer(old, recoverableError, false)
			bs.mu.Unlock()
			bs.await(w, r, hr)
			return
		}
		bs.mu.Unlock()
		bs.terminate("item-not-found", w)
		return
	case !bs.inWindow(req):
		bs.mu.Unlock()
		bs.terminate("item-not-found", w)
		return
	case req.rid > bs.rid+1:
		if bs.pending == nil {
			bs.pending = map[uint64]*pendingRequest{}
		}
		if p := bs.pending[req.rid]; p != nil {
			// Sent again while waiting for the rids before it: as for a
			// held request, the old one gets the recoverable error.
			old := p.hr
			p.hr = newHeld(req.rid)
			hr := p.hr
			bs.answer(old, recoverableError, false)
			bs.mu.Unlock()
			bs.await(w, r, hr)
			return
		}
		hr := newHeld(req.rid)
		bs.pending[req.rid] = &pendingRequest{req, hr}
		bs.mu.Unlock()
		bs.await(w, r, hr)
		return
	}
	hr, cond := bs.apply(req, nil)
	// failed is the request waiting for this one that broke the rules: it
	// gets the terminate body, and this one what the end gives it.
	var failed *heldRequest
	for cond == "" {
		p := bs.pending[bs.rid+1]
		if p == nil {
			break
		}
		delete(bs.pending, bs.rid+1)
		if _, cond = bs.apply(p.req, p.hr); cond != "" {
			failed = p.hr
		}
	}
	bs.mu.Unlock()
	switch {
	case cond != "" && failed == nil:
		bs.terminate(cond, w)
		return
	case cond != "":
		bs.end(cond, failed)
	}
	bs.await(w, r, hr)
}

// recoverableError is the recoverable binding condition (XEP-0124 §17.3).
var recoverableError = []byte(`<body xmlns="` + nsHTTPBind + `" type="error"/>`)

// inWindow tells whether req's rid is one of the next the session allows
// (XEP-0124 §14.1): as many as requests, and one more to pause or
// terminate (§11). The caller holds mu.
func (bs *boshSession) inWindow(req *boshRequest) bool {
	n := uint64(bs.requests)
	if req.attrs["pause"] != "" || req.attrs["type"] == "terminate" {
		n++
	}
	return req.rid > bs.rid && req.rid <= bs.rid+n
}

func (bs *boshSession) heldIndex(rid uint64) int {
	return slices.IndexFunc(bs.held, func(h *heldRequest) bool { return h.rid == rid })
}

// apply applies the next request in rid order: its payloads go to the
// reader, and it is held. cond is a terminal condition it breaks. The
// caller holds mu.
func (bs *boshSession) apply(req *boshRequest, hr *heldRequest) (*heldRequest, string) {
	bs.rid = req.rid
	a := req.attrs
	empty := len(req.payloads) == 0
	now := time.Now()
	pause, terminate := a["pause"] != "", a["type"] == "terminate"
	if !pause && !terminate {
		// A pause or terminate may come on top (XEP-0124 §11).
		unanswered := len(bs.held) + 1
		for _, p := range bs.pending {
			if p.req.attrs["pause"] == "" && p.req.attrs["type"] != "terminate" {
				unanswered++
			}
		}
		if unanswered > bs.requests {
			return nil, "policy-violation"
		}
		if empty && bs.h.opts.Polling > 0 && !bs.lastEmpty.IsZero() && bs.lastEmptyReply &&
			(bs.hold == 0 || unanswered == bs.requests) && now.Sub(bs.lastEmpty) < bs.h.opts.Polling {
			return nil, "policy-violation"
		}
	}
	if empty {
		bs.lastEmpty, bs.lastEmptyReply = now, true
	} else {
		bs.lastEmpty = time.Time{}
	}
	bs.pauseFor = 0
	var pauseFor time.Duration
	if pause {
		d, ok := seconds(a["pause"])
		if !ok || bs.h.opts.MaxPause <= 0 || d > bs.h.opts.MaxPause {
			return nil, "bad-request"
		}
		pauseFor = d
	}
	switch {
	case terminate:
		for _, e := range req.payloads {
			bs.in = append(bs.in, boshItem{el: e})
		}
		bs.in = append(bs.in, boshItem{terminate: true})
	case a["xmpp:restart"] == "true" || a["xmpp:restart"] == "1":
		// XEP-0206 §5: a payload of a restart request is ignored.
		bs.in = append(bs.in, boshItem{open: true, to: a["to"], from: a["from"], version: "1.0"})
	default:
		for _, e := range req.payloads {
			bs.in = append(bs.in, boshItem{el: e})
		}
	}
	if len(bs.in) > 0 {
		select {
		case bs.inSignal <- struct{}{}:
		default:
		}
	}
	if pause {
		// XEP-0124 §10: every held request is answered, the pause one
		// too, empty (and not kept for retransmission), and the session
		// may be idle for the pause.
		for _, h := range bs.held {
			bs.answer(h, bs.body(h.rid, nil), true)
		}
		bs.held = nil
		bs.pauseFor = pauseFor
		if hr == nil {
			hr = newHeld(req.rid)
		}
		bs.answer(hr, bs.body(hr.rid, nil), false)
		bs.idleStart()
		return hr, ""
	}
	if hr == nil {
		hr = newHeld(req.rid)
	}
	return bs.hold1(hr), ""
}

// hold1 holds hr, an applied request, answering older ones beyond hold
// and sending what is waiting. The caller holds mu.
func (bs *boshSession) hold1(hr *heldRequest) *heldRequest {
	bs.idleStop()
	bs.held = append(bs.held, hr)
	bs.arm(hr)
	bs.flush()
	// Beyond hold (hold 0: a polling session), the oldest are answered now.
	for len(bs.held) > bs.hold && bs.answerOldest() {
	}
	return hr
}

// flush sends what is waiting on the oldest held request. The caller
// holds mu.
func (bs *boshSession) flush() {
	if len(bs.out) > 0 && len(bs.held) > 0 {
		bs.answerOldest()
	}
}

// answerOldest answers the oldest held request with what is waiting and
// reports whether it did: the creation request waits for the stream
// features. The caller holds mu.
func (bs *boshSession) answerOldest() bool {
	if len(bs.held) == 0 || len(bs.out) == 0 && bs.held[0].rid == bs.firstRID {
		return false
	}
	hr := bs.held[0]
	bs.held = bs.held[1:]
	out := bs.out
	bs.out = nil
	if len(out) > 0 {
		close(bs.outSignal)
		bs.outSignal = make(chan struct{})
		bs.lastEmpty = time.Time{}
	}
	bs.answer(hr, bs.body(hr.rid, out), true)
	if len(bs.held) == 0 {
		bs.idleStart()
	}
	return true
}

// arm starts hr's wait, now that it is held: when the wait is over, it
// is answered empty whether or not its client is still there (a client
// whose connection broke sends the request again and gets the same
// response, XEP-0124 §14.3). The creation request waits for the stream
// features instead. The caller holds mu.
func (bs *boshSession) arm(hr *heldRequest) {
	if hr.rid != bs.firstRID {
		hr.timer = time.AfterFunc(bs.wait, func() { bs.expire(hr) })
	}
}

// answer gives hr its response, and keeps it for retransmission if keep
// (not a pause's or an error's). The caller holds mu.
func (bs *boshSession) answer(hr *heldRequest, body []byte, keep bool) {
	if hr.timer != nil {
		hr.timer.Stop()
	}
	hr.reply <- body
	if !keep {
		return
	}
	bs.replies[hr.rid] = body
	bs.replyOrder = append(bs.replyOrder, hr.rid)
	for len(bs.replyOrder) > bs.requests {
		delete(bs.replies, bs.replyOrder[0])
		bs.replyOrder = bs.replyOrder[1:]
	}
}

// body builds a response <body/> around out; the session creation
// response carries the session's attributes (XEP-0124 §7.1, XEP-0206 §5).
func (bs *boshSession) body(rid uint64, out []byte) []byte {
	b := make([]byte, 0, 256+len(out))
	b = append(b, `<body xmlns="`+nsHTTPBind+`" xmlns:stream="`+router.NSStream+`"`...)
	if rid == bs.firstRID {
		b = fmt.Appendf(b, ` xmlns:xmpp="%s" sid="%s" wait="%d" hold="%d" requests="%d" inactivity="%d" ver="%s" from="%s" xmpp:version="1.0" xmpp:restartlogic="true"`,
			nsXBOSH, bs.sid, int(bs.wait/time.Second), bs.hold, bs.requests, int(bs.inactivity/time.Second), bs.ver, bs.domain)
		if p := bs.h.opts.Polling; p > 0 {
			b = fmt.Appendf(b, ` polling="%d"`, int((p+time.Second-1)/time.Second))
		}
		if p := bs.h.opts.MaxPause; p > 0 {
			b = fmt.Appendf(b, ` maxpause="%d"`, int(p/time.Second))
		}
	}
	if len(out) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = append(b, out...)
	return append(b, "</body>"...)
}

// idleStart starts the inactivity timer: no request is held. The caller
// holds mu.
func (bs *boshSession) idleStart() {
	bs.idleStop()
	d := bs.inactivity
	if bs.pauseFor > 0 {
		d = bs.pauseFor
	}
	gen := bs.idleGen
	bs.idle = time.AfterFunc(d, func() {
		bs.mu.Lock()
		stale := gen != bs.idleGen || len(bs.held) > 0
		bs.mu.Unlock()
		if !stale {
			// As a dropped TCP connection: a resumable session hibernates.
			// Forgotten first: a request from now on finds no session
			// (XEP-0124 §10).
			bs.h.remove(bs)
			bs.c.log.Info("c2s bosh session inactive")
			bs.c.Close(stream.ConnectionTimeout)
		}
	})
}

// idleStop stops the inactivity timer. The caller holds mu.
func (bs *boshSession) idleStop() {
	bs.idleGen++
	if bs.idle != nil {
		bs.idle.Stop()
		bs.idle = nil
	}
}

// await writes hr's response when it comes: what is to be sent, or an
// empty body when its wait is over (arm). A request ahead of the rid
// order waits for its turn first.
func (bs *boshSession) await(w http.ResponseWriter, r *http.Request, hr *heldRequest) {
	select {
	case body := <-hr.reply:
		writeBOSH(w, hr.status, bs.contentType, body)
	case <-r.Context().Done():
		// The client went away. The request stays held until it is
		// answered, and the answer is kept for the client to fetch by
		// sending the request again.
	}
}

// expire answers hr, whose wait is over, and the held requests before it
// empty, in rid order.
func (bs *boshSession) expire(hr *heldRequest) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	i := slices.Index(bs.held, hr)
	if i < 0 {
		return
	}
	kept := bs.held[:0]
	for j, h := range bs.held {
		if j <= i && h.rid != bs.firstRID {
			bs.answer(h, bs.body(h.rid, nil), true)
			continue
		}
		kept = append(kept, h)
	}
	bs.held = kept
	if len(bs.held) == 0 {
		bs.idleStart()
	}
}

// terminate ends the session with a terminal binding condition answered
// on w (XEP-0124 §17.2).
func (bs *boshSession) terminate(cond string, w http.ResponseWriter) {
	status, body := bs.end(cond, nil)
	writeBOSH(w, status, bs.contentType, body)
}

// end ends the session with a terminal binding condition and returns the
// response that says so; on, if not nil, is a request of the session
// that gets it.
func (bs *boshSession) end(cond string, on *heldRequest) (int, []byte) {
	status := http.StatusOK
	if bs.legacy {
		status = httpStatus(cond)
	}
	body := terminateBody(cond)
	bs.mu.Lock()
	if on != nil {
		on.status = status
		bs.answer(on, body, false)
	}
	bs.endLocked()
	bs.mu.Unlock()
	bs.h.remove(bs)
	bs.c.log.Info("c2s bosh session terminated", slog.String("condition", cond))
	bs.c.Close(boshError{cond})
	return status, body
}

// endLocked marks the session ended and answers what is held or pending
// with empty bodies. The caller holds mu.
func (bs *boshSession) endLocked() {
	if bs.ended {
		return
	}
	bs.ended = true
	bs.idleStop()
	for _, h := range bs.held {
		bs.answer(h, bs.body(h.rid, nil), false)
	}
	bs.held = nil
	for _, p := range bs.pending {
		bs.answer(p.hr, bs.body(p.hr.rid, nil), false)
	}
	bs.pending = nil
	close(bs.outSignal)
	bs.outSignal = make(chan struct{})
}

// next reads the next element for the conn's goroutine; the client's
// terminate ends the stream (router.ErrStreamEnd).
func (bs *boshSession) next(c *conn) (*router.Element, error) {
	for {
		bs.mu.Lock()
		if len(bs.in) > 0 {
			it := bs.in[0]
			bs.in = bs.in[1:]
			bs.mu.Unlock()
			switch {
			case it.terminate:
				return nil, router.ErrStreamEnd
			case it.open:
				// A restart where none is due.
				return nil, stream.BadFormat
			}
			return it.el, nil
		}
		bs.mu.Unlock()
		if err := bs.waitIn(c, !c.bound); err != nil {
			return nil, err
		}
	}
}

// readOpen waits for the stream's start: the session creation request or
// a restart request (XEP-0206 §5).
func (bs *boshSession) readOpen(c *conn) (to, from, version string, err error) {
	for {
		bs.mu.Lock()
		if len(bs.in) > 0 {
			it := bs.in[0]
			bs.in = bs.in[1:]
			bs.mu.Unlock()
			switch {
			case it.terminate:
				return "", "", "", router.ErrStreamEnd
			case !it.open:
				// Stanzas where a restart is due.
				return "", "", "", stream.BadFormat
			}
			if it.to == "" {
				it.to = c.host
			}
			return it.to, it.from, it.version, nil
		}
		bs.mu.Unlock()
		if err := bs.waitIn(c, true); err != nil {
			return "", "", "", err
		}
	}
}

// waitIn waits for what the next request brings, until the conn closes
// or, if negotiating, its negotiation deadline.
func (bs *boshSession) waitIn(c *conn, negotiating bool) error {
	var deadline <-chan time.Time
	if negotiating {
		t := time.NewTimer(time.Until(c.deadline))
		defer t.Stop()
		deadline = t.C
	}
	select {
	case <-c.done:
		return errClosing
	case <-bs.inSignal:
		return nil
	case <-deadline:
		return stream.ConnectionTimeout
	}
}

// maxOut bounds what waits for a request: the writer blocks beyond it.
func (bs *boshSession) maxOut() int { return max(64<<10, 2*bs.c.srv.limits.MaxStanzaSize) }

// write queues b, serialised elements, for the next held request, each
// element declaring jabber:client. It blocks while too much is waiting,
// up to the write timeout. The caller holds the conn's write lock.
func (bs *boshSession) write(c *conn, b []byte) error {
	deadline := time.NewTimer(writeTimeout)
	defer deadline.Stop()
	for {
		if c.writesStopped.Load() {
			return errWritesStopped
		}
		bs.mu.Lock()
		if bs.ended {
			bs.mu.Unlock()
			return errors.New("bosh session ended")
		}
		if len(bs.out) < bs.maxOut() {
			bs.out = appendDeclared(bs.out, b)
			bs.flush()
			bs.mu.Unlock()
			return nil
		}
		sig := bs.outSignal
		bs.mu.Unlock()
		select {
		case <-sig:
		case <-deadline.C:
			return errors.New("bosh: no request to carry the output")
		}
	}
}

// wakeWriter wakes a write waiting for room (interruptWrites).
func (bs *boshSession) wakeWriter() {
	bs.mu.Lock()
	close(bs.outSignal)
	bs.outSignal = make(chan struct{})
	bs.mu.Unlock()
}

// appendDeclared appends b's elements, each with the namespace declaration
// it needs inside a <body/> that declares the stream prefix.
func appendDeclared(dst, b []byte) []byte {
	for len(b) > 0 {
		end, nameEnd := splitElement(b)
		el := b[:end]
		if nameEnd > 0 && !bytes.HasPrefix(el[1:nameEnd], []byte("stream:")) && !bytes.HasPrefix(el[nameEnd:], []byte(` xmlns="`)) {
			dst = append(dst, el[:nameEnd]...)
			dst = append(dst, ` xmlns="`+router.NSClient+`"`...)
			dst = append(dst, el[nameEnd:]...)
		} else {
			dst = append(dst, el...)
		}
		b = b[end:]
	}
	return dst
}

// writeFinal ends the session: the terminate body, with a stream error
// as remote-stream-error (system-shutdown as itself) and the stanzas
// before it (XEP-0206 §7), goes to the oldest held request, or to the
// next request if none is held.
func (bs *boshSession) writeFinal(c *conn, final []byte) {
	cond := ""
	var se stream.Error
	var be boshError
	switch {
	case errors.As(c.cause, &be):
		cond = be.cond
	case errors.As(c.cause, &se) && se.Err == stream.SystemShutdown.Err:
		cond = "system-shutdown"
	case errors.As(c.cause, &se) && se.Err == stream.ConnectionTimeout.Err:
		// Inactivity or a negotiation that took too long: the client is
		// gone; nothing is said (XEP-0124 §10).
	case errors.As(c.cause, &se):
		cond = "remote-stream-error"
	}
	body := []byte(`<body xmlns="` + nsHTTPBind + `" xmlns:stream="` + router.NSStream + `" type="terminate"`)
	if cond != "" {
		body = append(body, ` condition="`+cond+`"`...)
	}
	bs.mu.Lock()
	pending := append(bs.out, appendDeclared(nil, final)...)
	bs.out = nil
	if len(pending) > 0 {
		body = append(body, '>')
		body = append(body, pending...)
		body = append(body, "</body>"...)
	} else {
		body = append(body, "/>"...)
	}
	if bs.ended {
		bs.mu.Unlock()
		return
	}
	var oldest *heldRequest
	if len(bs.held) > 0 {
		oldest = bs.held[0]
		bs.held = bs.held[1:]
	}
	bs.endLocked()
	if oldest != nil {
		bs.answer(oldest, body, false)
		bs.mu.Unlock()
		bs.h.remove(bs)
		return
	}
	if cond != "" {
		// Kept for the next request, for a while.
		bs.final = body
		time.AfterFunc(bs.inactivity, func() { bs.h.remove(bs) })
	}
	bs.mu.Unlock()
	if cond == "" {
		bs.h.remove(bs)
	}
}
