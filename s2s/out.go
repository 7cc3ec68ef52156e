package s2s

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/router"
)

// maxQueue bounds the stanzas waiting for one remote domain.
const maxQueue = 10000

// maxQueueBytes bounds the serialised size of what an outbound stream
// holds, queued or taken for a write not yet done: a peer that holds the
// connection phase open (a tarpit) must not make us keep maxQueue stanzas
// of the largest size, gigabytes, for one domain pair. A variable, read
// when a Server is made, so that tests can lower it.
var maxQueueBytes = 16 << 20

// maxWrite is about how much one write to a peer carries: a long queue
// goes out in several writes rather than through one buffer of its size.
const maxWrite = 64 << 10

// writeBufs pools serialisation buffers, so that an idle stream holds
// none.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Backoff after a failed connection: stanzas bounce at once until it has
// passed, so that an unreachable domain costs one attempt, not one per
// stanza. minBackoff is a variable, read when a Server is made, so that
// tests can lower it.
var minBackoff = time.Second

const maxBackoff = 5 * time.Minute

// errDialbackError says that the Receiving Server answered our dialback
// request with a dialback error (XEP-0220 §2.5).
var errDialbackError = errors.New("dialback error")

// dialbackCondition is the condition of a dialback error.
func dialbackCondition(e *router.Element) string {
	if errEl := e.Child("", "error"); errEl != nil {
		for _, c := range errEl.Elements() {
			if c.Name.Space == nsStanzas && c.Name.Local != "text" {
				return c.Name.Local
			}
		}
	}
	return "no condition"
}

// Authentication methods, as logged and reported.
const (
	authExternal = "SASL EXTERNAL"
	authDialback = "dialback"
)

// outStream is the outbound stream from one local domain to one remote
// domain. Stanzas queue while it connects; a goroutine owned by the Server
// connects, authenticates, writes and closes it when idle.
type outStream struct {
	s   *Server
	p   pair
	log *slog.Logger

	mu    sync.Mutex
	queue []queued
	// bytes is the serialised size of the queue and of what serve has
	// taken from it but not yet written.
	bytes       int
	running     bool
	ready       bool
	method      string
	failedUntil time.Time
	failCond    stanza.Condition
	backoff     time.Duration
	// forgetAt is when a stream that failed and has not run since is
	// removed from the Server; forgetTimer calls forgetIfIdle then.
	forgetAt    time.Time
	forgetTimer *time.Timer
	wake        chan struct{}
}

// queued is a stanza waiting to be written, with its serialised size.
type queued struct {
	st   *router.Stanza
	size int
}

// serialisedSize is the length of st as written on a stream.
func serialisedSize(st *router.Stanza) int {
	bp := writeBufs.Get().(*[]byte)
	b := st.AppendXML((*bp)[:0], router.NSServer)
	n := len(b)
	if cap(b) <= 2*maxWrite {
		*bp = b[:0]
		writeBufs.Put(bp)
	}
	return n
}

func newOutStream(s *Server, p pair) *outStream {
	return &outStream{
		s:    s,
		p:    p,
		log:  s.log.With(slog.String("direction", "out"), slog.String("local", p.local), slog.String("remote", p.remote)),
		wake: make(chan struct{}, 1),
	}
}

func (o *outStream) describe() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.ready:
		return "ready (" + o.method + ")"
	case o.running:
		return fmt.Sprintf("connecting, %d queued", len(o.queue))
	case time.Now().Before(o.failedUntil):
		return "unreachable until " + o.failedUntil.Format(time.RFC3339)
	}
	return "idle"
}

// enqueue adds st and makes sure the goroutine runs.
func (o *outStream) enqueue(ctx context.Context, st *router.Stanza) {
	size := serialisedSize(st)
	o.mu.Lock()
	if !o.running && time.Now().Before(o.failedUntil) {
		cond := o.failCond
		o.mu.Unlock()
		o.s.opts.Router.Bounce(ctx, st, cond, "")
		return
	}
	// A stanza larger than the byte limit still goes when nothing else
	// is held, or it could never go at all.
	if len(o.queue) >= maxQueue || (o.bytes > 0 && o.bytes+size > o.s.maxQueueBytes) {
		o.mu.Unlock()
		o.s.stats.queueDrops.Add(1)
		o.s.opts.Router.Bounce(ctx, st, stanza.ResourceConstraint, "")
		return
	}
	o.queue = append(o.queue, queued{st, size})
	o.bytes += size
	start := !o.running
	o.running = true
	o.mu.Unlock()
	if start {
		// The Server's WaitGroup may only grow while it is not closing:
		// Add during Shutdown's Wait would be a misuse.
		o.s.mu.Lock()
		if o.s.closed {
			o.s.mu.Unlock()
			o.bounceQueue(ctx, stanza.RemoteServerNotFound)
			return
		}
		o.s.wg.Add(1)
		o.s.mu.Unlock()
		go func() {
			defer o.s.wg.Done()
			o.run()
		}()
		return
	}
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// run connects and writes until idle, failure or shutdown. A stream that
// breaks after it was ready gets one new connection for what was not yet
// written; what cannot be sent is bounced, never silently dropped.
func (o *outStream) run() {
	defer func() {
		if v := recover(); v != nil {
			o.log.Error("s2s outbound stream panicked", slog.Any("panic", v))
			o.fail(stanza.InternalServerError)
		}
	}()
	for attempt := 0; ; attempt++ {
		c, err := o.connect()
		if err != nil {
			// XEP-0220 §2.1.1 names the errors for a refused key and a
			// dialback error; RFC 6120 §8.3.3 the others.
			cond := stanza.RemoteServerNotFound
			switch {
			case errors.Is(err, errKeyInvalid):
				cond = stanza.InternalServerError
			case errors.Is(err, errDialbackError) || isTimeout(err):
				cond = stanza.RemoteServerTimeout
			}
			o.log.Warn("s2s connection failed", slog.Any("err", err))
			o.fail(cond)
			return
		}
		o.mu.Lock()
		o.ready, o.backoff = true, 0
		o.mu.Unlock()
		again, err := o.serve(c)
		o.mu.Lock()
		o.ready = false
		o.mu.Unlock()
		if err == nil && !again {
			return // idle or shutdown: finished cleanly
		}
		o.log.Info("s2s stream lost", slog.Any("err", err))
		o.mu.Lock()
		if len(o.queue) == 0 {
			// Nothing waits: connect again when something does.
			o.running = false
			o.mu.Unlock()
			o.s.forget(o)
			return
		}
		o.mu.Unlock()
		if attempt >= 1 {
			o.fail(stanza.RemoteServerTimeout)
			return
		}
	}
}

// fail starts a backoff period and bounces everything queued.
//
// The stream stays registered for as long again after the backoff, so
// that a domain still in use keeps its backoff growing; then, unless it
// has run since, forgetIfIdle removes it.
func (o *outStream) fail(cond stanza.Condition) {
	o.mu.Lock()
	queue := o.stopLocked()
	o.backoff = min(max(2*o.backoff, o.s.minBackoff), maxBackoff)
	o.failedUntil = time.Now().Add(o.backoff)
	o.forgetAt = o.failedUntil.Add(o.backoff)
	o.failCond = cond
	o.scheduleForget(2 * o.backoff)
	o.mu.Unlock()
	o.bounce(context.Background(), queue, cond)
}

// bounceQueue stops the stream and bounces what is queued with cond.
func (o *outStream) bounceQueue(ctx context.Context, cond stanza.Condition) {
	o.mu.Lock()
	queue := o.stopLocked()
	o.mu.Unlock()
	o.bounce(ctx, queue, cond)
}

// stopLocked, called with o.mu held, marks the stream stopped and takes
// its queue.
func (o *outStream) stopLocked() []queued {
	queue := o.queue
	o.queue, o.bytes, o.running = nil, 0, false
	return queue
}

// bounce returns stanzas to their senders with cond.
func (o *outStream) bounce(ctx context.Context, queue []queued, cond stanza.Condition) {
	for _, q := range queue {
		o.s.opts.Router.Bounce(ctx, q.st, cond, "")
	}
}

// scheduleForget, called with o.mu held, has forgetIfIdle run after d.
// Once the Server's context is done no timer starts, so that Shutdown,
// which stops those running after it cancelled the context, leaves none.
func (o *outStream) scheduleForget(d time.Duration) {
	if o.s.ctx.Err() != nil {
		return
	}
	if o.forgetTimer == nil {
		o.forgetTimer = time.AfterFunc(d, func() { o.s.forgetIfIdle(o) })
		return
	}
	o.forgetTimer.Reset(d)
}

// stopForgetTimer stops the timer scheduleForget started, if any.
func (o *outStream) stopForgetTimer() {
	o.mu.Lock()
	if o.forgetTimer != nil {
		o.forgetTimer.Stop()
	}
	o.mu.Unlock()
}

// serve writes queued stanzas on a ready stream. It returns again=true
// with what could not be written still queued when the stream broke, and
// nil when it closed the stream itself (idle, shutdown).
func (o *outStream) serve(c *conn) (again bool, err error) {
	readErr := make(chan error, 1)
	go func() { readErr <- o.drain(c) }()
	idle := time.NewTimer(o.s.cfg.IdleTimeout)
	defer idle.Stop()
	for {
		// A stream the peer has closed takes no more: what is queued
		// waits for the next connection rather than go where nobody
		// reads it. Shutdown is seen here too, not only when the queue
		// is empty, which under steady traffic it may never be.
		select {
		case err := <-readErr:
			c.nc.Close()
			return true, fmt.Errorf("peer closed the stream: %w", err)
		case <-o.s.ctx.Done():
			o.shutdown(c)
			return false, nil
		default:
		}
		o.mu.Lock()
		batch := o.queue
		o.queue = nil
		o.mu.Unlock()
		if len(batch) > 0 {
			if err := o.write(c, batch); err != nil {
				c.nc.Close()
				return true, err
			}
			idle.Reset(o.s.cfg.IdleTimeout)
			continue
		}
		select {
		case <-o.wake:
		case err := <-readErr:
			c.nc.Close()
			return true, fmt.Errorf("peer closed the stream: %w", err)
		case <-idle.C:
			o.mu.Lock()
			if len(o.queue) > 0 {
				o.mu.Unlock()
				continue
			}
			o.running = false
			o.mu.Unlock()
			o.s.forget(o)
			o.log.Info("s2s stream idle; closing")
			c.close(nil)
			return false, nil
		case <-o.s.ctx.Done():
			o.shutdown(c)
			return false, nil
		}
	}
}

// shutdown bounces what is queued and closes the stream with
// system-shutdown.
func (o *outStream) shutdown(c *conn) {
	o.bounceQueue(context.Background(), stanza.RemoteServerTimeout)
	c.close(stream.SystemShutdown)
}

// write sends batch in writes of about maxWrite bytes, so that no buffer
// holds the whole queue, and counts what is written off o.bytes. What a
// failed write, or shutdown, leaves is put back at the front of the
// queue.
func (o *outStream) write(c *conn, batch []queued) error {
	bp := writeBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 2*maxWrite {
			writeBufs.Put(bp)
		}
	}()
	for i := 0; i < len(batch); {
		start, size := i, 0
		buf := (*bp)[:0]
		for ; i < len(batch) && len(buf) < maxWrite; i++ {
			buf = batch[i].st.AppendXML(buf, router.NSServer)
			size += batch[i].size
			count(&o.s.stats.out, batch[i].st.Name.Local)
		}
		*bp = buf[:0]
		if err := c.write(buf); err != nil {
			o.requeue(batch[start:])
			return err
		}
		o.mu.Lock()
		o.bytes -= size
		o.mu.Unlock()
		if o.s.ctx.Err() != nil {
			// serve bounces the rest.
			o.requeue(batch[i:])
			return nil
		}
	}
	return nil
}

// requeue puts unwritten stanzas back at the front; they are still
// counted in o.bytes.
func (o *outStream) requeue(batch []queued) {
	if len(batch) == 0 {
		return
	}
	o.mu.Lock()
	o.queue = append(batch, o.queue...)
	o.mu.Unlock()
}

// drain reads what the peer sends on our outbound stream after
// authentication: nothing but whitespace, a stream error or the close.
func (o *outStream) drain(c *conn) error {
	for {
		e, err := c.in.Next()
		if err != nil {
			return err
		}
		if isStreamError(e) {
			return fmt.Errorf("stream error %s", streamErrorOf(e))
		}
		o.log.Debug("s2s unexpected element on outbound stream", slog.String("element", e.Name.Local))
	}
}

// connect dials the remote domain and negotiates TLS and authentication.
func (o *outStream) connect() (*conn, error) {
	ctx, cancel := context.WithTimeout(o.s.ctx, o.s.cfg.ConnectTimeout)
	defer cancel()
	c, method, err := o.s.dial(ctx, o.p.local, o.p.remote, o.log, false)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	o.method = method
	o.mu.Unlock()
	o.log.Info("s2s stream ready", slog.String("auth", method))
	return c, nil
}

// negotiation is the outcome of dial, for connect and `xmppd s2s check`.
type negotiation struct {
	target   Target
	tls      bool
	version  uint16
	verdict  error // of the peer certificate; nil = valid for the domain
	external bool  // the peer offered SASL EXTERNAL
	dialback bool  // the peer offered dialback
}

// dial connects to remote and authenticates as local. With probe, it stops
// after TLS and reports what it saw, without authenticating.
func (s *Server) dial(ctx context.Context, local, remote string, log *slog.Logger, probe bool) (*conn, string, error) {
	c, n, err := s.open(ctx, local, remote)
	if err != nil {
		return nil, "", err
	}
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Now()) })
	defer stop()
	method, err := s.authenticate(ctx, c, n, local, remote, log)
	if err != nil {
		c.close(nil)
		return nil, "", err
	}
	c.nc.SetDeadline(time.Time{})
	return c, method, nil
}

// open connects to remote and negotiates TLS, returning the stream after
// the (restarted) header with its features read into n.
func (s *Server) open(ctx context.Context, local, remote string) (*conn, *negotiation, error) {
	nc, target, err := s.resolver.Dial(ctx, remote, &net.Dialer{})
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", remote, err)
	}
	if d, ok := ctx.Deadline(); ok {
		nc.SetDeadline(d)
	}
	c := &conn{nc: nc, maxSize: int64(s.opts.Config.Limits.MaxStanzaSize), maxDepth: s.opts.Config.Limits.MaxDepth}
	n := &negotiation{target: target}
	if target.DirectTLS {
		if err := s.clientTLS(ctx, c, local, remote, true); err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	for {
		feats, hdr, err := s.restart(c, local, remote)
		if err != nil {
			c.nc.Close()
			return nil, nil, err
		}
		c.streamID = hdr.id
		if c.tls == nil {
			if feats.Child(nsTLS, "starttls") != nil {
				if err := c.writeElement(router.NewElement(nsTLS, "starttls")); err != nil {
					c.nc.Close()
					return nil, nil, err
				}
				e, err := c.in.Next()
				if err != nil || e.Name.Space != nsTLS || e.Name.Local != "proceed" {
					c.nc.Close()
					return nil, nil, fmt.Errorf("%s refused STARTTLS: %v", remote, err)
				}
				if err := s.clientTLS(ctx, c, local, remote, false); err != nil {
					c.nc.Close()
					return nil, nil, err
				}
				continue
			}
			if !s.plaintextAllowed(remote) {
				c.close(stream.PolicyViolation)
				return nil, nil, fmt.Errorf("%s does not offer TLS, which is required", remote)
			}
		}
		n.tls = c.tls != nil
		if c.tls != nil {
			cs := c.tls.ConnectionState()
			n.version = cs.Version
			n.verdict = VerifyDomain(cs.PeerCertificates, remote, s.roots, time.Now())
		}
		if m := feats.Child(nsSASL, "mechanisms"); m != nil {
			for _, mech := range m.Elements() {
				if mech.Text() == "EXTERNAL" {
					n.external = true
				}
			}
		}
		n.dialback = feats.Child(nsDialbackFea, "dialback") != nil || hdr.dialback
		c.features = feats
		return c, n, nil
	}
}

// restart sends our header and reads the peer's header and features.
func (s *Server) restart(c *conn, local, remote string) (*router.Element, headerInfo, error) {
	if err := c.write(header(local, remote, "", true)); err != nil {
		return nil, headerInfo{}, err
	}
	c.newReader()
	hdr, err := c.readHeader()
	if err != nil {
		return nil, hdr, fmt.Errorf("stream header from %s: %w", remote, err)
	}
	if hdr.version == "" {
		// A pre-1.0 server: no features, dialback only.
		return router.NewElement(router.NSStream, "features"), hdr, nil
	}
	feats, err := c.in.Next()
	if err != nil {
		return nil, hdr, fmt.Errorf("stream features from %s: %w", remote, err)
	}
	if isStreamError(feats) {
		return nil, hdr, fmt.Errorf("%s sent stream error %s", remote, streamErrorOf(feats))
	}
	if feats.Name.Space != router.NSStream || feats.Name.Local != "features" {
		return nil, hdr, fmt.Errorf("%s sent %s instead of stream features", remote, feats.Name.Local)
	}
	return feats, hdr, nil
}

// clientTLS runs the TLS client handshake, offering the local domain's
// certificate for SASL EXTERNAL. The peer's certificate is checked by
// VerifyDomain afterwards, because the policy decides what an invalid one
// means.
func (s *Server) clientTLS(ctx context.Context, c *conn, local, remote string, direct bool) error {
	cfg := &tls.Config{
		ServerName:         remote,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verified by VerifyDomain against our roots and RFC 6125
	}
	if cert := s.opts.Certs.ForDomain(local); cert != nil {
		// Always present it, as OpenSSL-based servers do: with only
		// Certificates set, Go sends none when the peer's list of
		// acceptable CAs does not name our issuer, and the peer then
		// cannot even try SASL EXTERNAL.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	if direct {
		cfg.NextProtos = []string{alpnServer}
	}
	tc := tls.Client(c.nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls handshake with %s: %w", remote, err)
	}
	c.nc, c.tls = tc, tc
	return nil
}

// authenticate authenticates the stream as local: SASL EXTERNAL if the
// peer offers it, dialback otherwise (or when EXTERNAL fails) if the policy
// for remote allows it.
func (s *Server) authenticate(ctx context.Context, c *conn, n *negotiation, local, remote string, log *slog.Logger) (string, error) {
	if n.tls && n.verdict != nil && !s.dialbackAllowed(remote) {
		return "", fmt.Errorf("certificate of %s not accepted (policy require_cert): %w", remote, n.verdict)
	}
	if n.tls && n.external {
		ok, err := s.external(c, local)
		if err != nil {
			return "", err
		}
		if ok {
			if _, _, err := s.restart(c, local, remote); err != nil {
				return "", err
			}
			return authExternal, nil
		}
		log.Info("s2s SASL EXTERNAL refused; trying dialback")
	}
	if !n.dialback {
		return "", fmt.Errorf("%s offers no authentication we can use (EXTERNAL: %v, dialback: no)", remote, n.external)
	}
	if !s.dialbackAllowed(remote) {
		return "", fmt.Errorf("dialback with %s not allowed by policy", remote)
	}
	key := DialbackKey(s.secret, remote, local, c.streamID)
	db := router.NewElement(nsDialback, "result", "from", local, "to", remote).AppendText(key)
	if err := c.writeDialback(db); err != nil {
		return "", err
	}
	for {
		e, err := c.in.Next()
		if err != nil {
			return "", fmt.Errorf("dialback with %s: %w", remote, err)
		}
		if isStreamError(e) {
			return "", fmt.Errorf("dialback with %s: stream error %s", remote, streamErrorOf(e))
		}
		// XEP-0220 §2.1.1: only the answer for our pair counts.
		if e.Name.Space != nsDialback || e.Name.Local != "result" || e.Get("from") != remote || e.Get("to") != local {
			continue
		}
		switch e.Get("type") {
		case "valid":
			return authDialback, nil
		case "invalid":
			return "", fmt.Errorf("%s refused our dialback key: %w", remote, errKeyInvalid)
		default:
			return "", fmt.Errorf("%s could not check our dialback key (type %q, %s): %w", remote, e.Get("type"), dialbackCondition(e), errDialbackError)
		}
	}
}

// external runs SASL EXTERNAL with the local domain as authorization
// identity (RFC 6120 §6.4.3, XEP-0178).
func (s *Server) external(c *conn, local string) (bool, error) {
	auth := router.NewElement(nsSASL, "auth", "mechanism", "EXTERNAL").AppendText(base64.StdEncoding.EncodeToString([]byte(local)))
	if err := c.writeElement(auth); err != nil {
		return false, err
	}
	for {
		e, err := c.in.Next()
		if err != nil {
			return false, err
		}
		switch {
		case e.Name.Space == nsSASL && e.Name.Local == "success":
			return true, nil
		case e.Name.Space == nsSASL && e.Name.Local == "failure":
			return false, nil
		case e.Name.Space == nsSASL && e.Name.Local == "challenge":
			// An empty response: the identity was in <auth/>.
			if err := c.writeElement(router.NewElement(nsSASL, "response").AppendText("=")); err != nil {
				return false, err
			}
		case isStreamError(e):
			return false, fmt.Errorf("stream error %s", streamErrorOf(e))
		}
	}
}
