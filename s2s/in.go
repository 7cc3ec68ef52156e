package s2s

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/internal/connlimit"
	"github.com/xmppd/xmppd/router"
)

// errKeyInvalid ends a stream whose dialback key the Authoritative
// Server refused (inbound), or says that the Receiving Server refused
// ours (outbound).
var errKeyInvalid = errors.New("dialback key invalid")

// negotiationTimeout bounds how long a peer may take to authenticate.
const negotiationTimeout = 60 * time.Second

// idleTimeoutIn closes inbound streams silent for this long (the peer
// reconnects when it has something to send).
const idleTimeoutIn = 15 * time.Minute

// inStream is one inbound server connection.
type inStream struct {
	s         *Server
	c         *conn
	directTLS bool
	log       *slog.Logger
	// addr is the peer's address, kept apart from c.nc, which the
	// reading goroutine replaces on STARTTLS while describe runs.
	addr string

	// Touched by the reading goroutine only.
	local          string // the served domain the peer's header named
	peerFrom       string // the peer's header 'from'
	externalDomain string // domain authenticated by SASL EXTERNAL

	mu     sync.Mutex
	authed map[pair]bool // (local, remote) pairs authenticated by dialback

	// releasePending stops counting the connection against its address's
	// unauthenticated connections, once a domain has authenticated.
	releasePending func()
	// pending is the stream's place among its address's unauthenticated
	// connections; negotiation reports its progress there.
	pending *connlimit.Ticket

	// workers route the stream's stanzas (see dispatch); started by the
	// reading goroutine at the first stanza and stopped by run.
	workers routeWorkers
}

// Workers of an inbound stream. A stanza's routing may wait for storage
// (an offline message, a roster change), and one slow call must not stall
// the whole federation link: the reading goroutine hands each stanza to one
// of inWorkers goroutines, picked by the recipient's bare JID so that the
// stanzas to one recipient keep their order (RFC 6120 §10.1). Each worker
// has a queue of inQueue stanzas; when the one a stanza needs is full, the
// reading goroutine waits, which slows the peer down through TCP instead
// of letting it make the server buffer without bound.
const (
	inWorkers = 4
	inQueue   = 32
)

// routeWorkers are the goroutines that route one inbound stream's stanzas.
type routeWorkers struct {
	queues []chan *router.Stanza
	wg     sync.WaitGroup
}

// workerOf picks the worker for the stanzas to a bare JID: FNV-1a, inline
// so that the hot path allocates nothing.
func workerOf(bare string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(bare); i++ {
		h ^= uint32(bare[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// dispatch hands st to the worker of its recipient, starting the workers
// on the first stanza: streams that only carry dialback verifications
// never start any.
func (in *inStream) dispatch(ctx context.Context, st *router.Stanza) error {
	w := &in.workers
	if w.queues == nil {
		// The reading goroutine may still change in.log (a restarted
		// stream's header): the workers keep the one of now.
		log := in.log
		// What was read is routed even when the server shuts down
		// meanwhile (the stream's end stops the workers after their
		// queues), so routing does not inherit the cancellation: a
		// cancelled context would make storage calls fail and turn the
		// stanzas already accepted into internal-server-error bounces.
		rctx := context.WithoutCancel(ctx)
		w.queues = make([]chan *router.Stanza, inWorkers)
		for i := range w.queues {
			q := make(chan *router.Stanza, inQueue)
			w.queues[i] = q
			w.wg.Go(func() {
				for st := range q {
					in.route(rctx, log, st)
				}
			})
		}
	}
	select {
	case w.queues[workerOf(st.To.Bare().String(), len(w.queues))] <- st:
		return nil
	case <-ctx.Done():
		return stream.SystemShutdown
	}
}

// route routes one stanza of the peer's; a panic is logged and ends only
// that stanza's routing, not the worker (the router already answers the
// sender of a stanza whose module crashed).
func (in *inStream) route(ctx context.Context, log *slog.Logger, st *router.Stanza) {
	defer func() {
		if v := recover(); v != nil {
			log.Error("s2s inbound stanza routing panicked", slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
		}
	}()
	in.s.opts.Router.Route(ctx, st)
}

// stopWorkers lets the workers route what they were given and waits for
// them to end; run calls it once the stream is over.
func (in *inStream) stopWorkers() {
	for _, q := range in.workers.queues {
		close(q)
	}
	in.workers.wg.Wait()
}

func newInStream(s *Server, nc net.Conn, directTLS bool) *inStream {
	return &inStream{
		s:         s,
		c:         &conn{nc: nc, maxSize: int64(s.opts.Config.Limits.MaxStanzaSize), maxDepth: s.opts.Config.Limits.MaxDepth},
		directTLS: directTLS,
		log:       s.log.With(slog.String("direction", "in"), slog.String("peer", nc.RemoteAddr().String())),
		addr:      nc.RemoteAddr().String(),
		authed:    map[pair]bool{},
		// Serve replaces it with the release of the address's count.
		releasePending: func() {},
	}
}

func (in *inStream) describe() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	var doms []string
	if in.externalDomain != "" {
		doms = append(doms, in.externalDomain+" ("+authExternal+")")
	}
	for p := range in.authed {
		doms = append(doms, p.remote+"→"+p.local+" ("+authDialback+")")
	}
	slices.Sort(doms)
	return in.addr + " " + strings.Join(doms, ", ")
}

// run serves the connection until it ends; a panic ends only it.
func (in *inStream) run(ctx context.Context) {
	// Last: the stanzas already read are still routed, and the stream
	// owns its workers until they are done.
	defer in.stopWorkers()
	defer func() {
		if v := recover(); v != nil {
			in.log.Error("s2s inbound stream panicked", slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			in.c.close(stream.InternalServerError)
		}
	}()
	err := in.serve(ctx)
	var se stream.Error
	switch {
	case err == nil || isEOF(err):
		in.log.Debug("s2s inbound stream closed")
		in.c.close(nil)
	case errors.As(err, &se):
		in.log.Info("s2s inbound stream error", slog.String("condition", se.Err), slog.Any("err", err))
		in.closeWithHeader(se)
	default:
		in.log.Info("s2s inbound stream failed", slog.Any("err", err))
		in.c.close(nil)
	}
}

// closeWithHeader sends our header first if the error comes before it
// (RFC 6120 §4.9.1.2).
func (in *inStream) closeWithHeader(se stream.Error) {
	if !in.c.headerSent {
		in.c.write(header(in.local, "", newID(), false))
		in.c.headerSent = true
	}
	in.c.close(se)
}

func (in *inStream) serve(ctx context.Context) error {
	in.c.nc.SetDeadline(time.Now().Add(negotiationTimeout))
	if in.directTLS {
		if err := in.serverTLS(ctx, alpnServer); err != nil {
			return err
		}
	}
	for {
		restart, err := in.stream(ctx)
		if err != nil || !restart {
			return err
		}
	}
}

// serverTLS runs the TLS server handshake, asking for the peer's
// certificate for SASL EXTERNAL.
func (in *inStream) serverTLS(ctx context.Context, alpn string) error {
	cfg := in.s.opts.Certs.ServerConfig(alpn)
	cfg.ClientAuth = tls.RequestClientCert
	get := cfg.GetCertificate
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if hello.ServerName == "" && in.local != "" {
			hello.ServerName = in.local
		}
		return get(hello)
	}
	tc := tls.Server(in.c.nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	// Under the write lock: Shutdown closes the stream from another
	// goroutine.
	in.c.writeMu.Lock()
	in.c.nc, in.c.tls = tc, tc
	in.c.writeMu.Unlock()
	in.pending.Progress(connlimit.TLS)
	return nil
}

// stream reads one stream (until a restart) and serves its elements.
func (in *inStream) stream(ctx context.Context) (restart bool, err error) {
	in.c.newReader()
	in.c.headerSent = false
	hdr, err := in.c.readHeader()
	if err != nil {
		return false, err
	}
	in.pending.Progress(connlimit.Header)
	to, err := jid.Parse(hdr.to)
	if hdr.to != "" && (err != nil || to.Localpart() != "" || to.Resourcepart() != "" || !in.s.opts.Router.IsLocal(to.Domainpart())) {
		return false, stream.HostUnknown
	}
	if hdr.to != "" {
		in.local = to.Domainpart()
	}
	if hdr.from != "" {
		if from, err := jid.Parse(hdr.from); err == nil && from.Localpart() == "" && from.Resourcepart() == "" {
			if in.peerFrom == "" {
				in.log = in.log.With(slog.String("remote", from.Domainpart()))
			}
			in.peerFrom = from.Domainpart()
		}
	}
	in.c.streamID = newID()
	buf := header(in.local, in.peerFrom, in.c.streamID, in.dialbackOffered())
	in.c.headerSent = true
	if hdr.version != "" {
		buf = in.features().AppendXML(buf, router.NSServer)
	}
	if err := in.c.write(buf); err != nil {
		return false, err
	}
	for {
		e, err := in.c.in.Next()
		if err != nil {
			return false, err
		}
		switch {
		case e.Name.Space == nsTLS && e.Name.Local == "starttls":
			if in.c.tls != nil {
				return false, stream.PolicyViolation
			}
			if err := in.c.writeElement(router.NewElement(nsTLS, "proceed")); err != nil {
				return false, err
			}
			return true, in.serverTLS(ctx, "")
		case e.Name.Space == nsSASL && e.Name.Local == "auth":
			in.pending.Progress(connlimit.Auth)
			ok, err := in.saslExternal(e)
			if err != nil || ok {
				return ok, err
			}
		case e.Name.Space == nsDialback && e.Name.Local == "result":
			in.pending.Progress(connlimit.Auth)
			if err := in.dialbackResult(ctx, e); err != nil {
				return false, err
			}
		case e.Name.Space == nsDialback && e.Name.Local == "verify":
			if err := in.dialbackVerify(e); err != nil {
				return false, err
			}
		case e.Name.Space == "" && (e.Name.Local == "message" || e.Name.Local == "presence" || e.Name.Local == "iq"):
			if err := in.stanza(ctx, e); err != nil {
				return false, err
			}
		case isStreamError(e):
			return false, fmt.Errorf("peer sent stream error %s", streamErrorOf(e))
		default:
			return false, stream.UnsupportedStanzaType
		}
	}
}

// tlsRequired tells whether the peer must do STARTTLS before anything.
// It looks at the header's 'from' only: each domain the stream
// authenticates, and each stanza's sender, is checked again with
// plaintextOK, or an exempt domain would cover any other.
func (in *inStream) tlsRequired() bool {
	return !in.plaintextOK(in.peerFrom)
}

// plaintextOK tells whether domain may use this stream as it is: with
// TLS, or without it if the policy exempts the domain.
func (in *inStream) plaintextOK(domain string) bool {
	return in.c.tls != nil || in.s.plaintextAllowed(domain)
}

// features lists what the peer may negotiate next.
func (in *inStream) features() *router.Element {
	f := router.NewElement(router.NSStream, "features")
	if in.c.tls == nil {
		st := router.NewElement(nsTLS, "starttls")
		if in.tlsRequired() {
			f.Append(st.Append(router.NewElement(nsTLS, "required")))
			return f
		}
		f.Append(st)
	}
	if in.externalDomain == "" && in.c.tls != nil && in.peerFrom != "" && in.certValid(in.peerFrom) == nil {
		f.Append(router.NewElement(nsSASL, "mechanisms").Append(router.NewElement(nsSASL, "mechanism").AppendText("EXTERNAL")))
	}
	if in.externalDomain == "" && in.dialbackOffered() {
		f.Append(router.NewElement(nsDialbackFea, "dialback").Append(router.NewElement(nsDialbackFea, "errors")))
	}
	return f
}

// dialbackOffered tells whether the peer may authenticate by dialback:
// unless its header named a domain whose policy requires a certificate.
func (in *inStream) dialbackOffered() bool {
	return in.peerFrom == "" || in.s.dialbackAllowed(in.peerFrom)
}

// certValid checks the peer's certificate for a domain.
func (in *inStream) certValid(domain string) error {
	if in.c.tls == nil {
		return errors.New("no TLS")
	}
	return VerifyDomain(in.c.tls.ConnectionState().PeerCertificates, domain, in.s.roots, time.Now())
}

// external handles SASL EXTERNAL (RFC 6120 §6.4, XEP-0178): the peer is
// authenticated as the domain its certificate validates for.
func (in *inStream) saslExternal(auth *router.Element) (bool, error) {
	fail := func(cond string) (bool, error) {
		f := router.NewElement(nsSASL, "failure").Append(router.NewElement(nsSASL, cond))
		return false, in.c.writeElement(f)
	}
	if in.c.tls == nil || in.externalDomain != "" || auth.Get("mechanism") != "EXTERNAL" {
		return fail("invalid-mechanism")
	}
	domain := in.peerFrom
	if t := auth.Text(); t != "" && t != "=" {
		b, err := base64.StdEncoding.DecodeString(t)
		if err != nil {
			return fail("incorrect-encoding")
		}
		j, err := jid.Parse(string(b))
		if err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
			return fail("invalid-authzid")
		}
		if domain != "" && j.Domainpart() != domain {
			return fail("invalid-authzid")
		}
		domain = j.Domainpart()
	}
	if domain == "" {
		return fail("not-authorized")
	}
	if err := in.certValid(domain); err != nil {
		in.log.Info("s2s SASL EXTERNAL refused", slog.Any("reason", err))
		return fail("not-authorized")
	}
	if err := in.c.writeElement(router.NewElement(nsSASL, "success")); err != nil {
		return false, err
	}
	in.releasePending()
	in.mu.Lock()
	in.externalDomain = domain
	in.mu.Unlock()
	in.c.nc.SetDeadline(time.Now().Add(idleTimeoutIn))
	in.log.Info("s2s inbound stream authenticated", slog.String("auth", authExternal))
	return true, nil
}

// dialbackResult handles a dialback request from an originating server
// (XEP-0220 §2.1.2): we ask its authoritative server whether the key is
// right and answer with the verdict.
func (in *inStream) dialbackResult(ctx context.Context, e *router.Element) error {
	if in.tlsRequired() {
		return stream.PolicyViolation
	}
	from, err1 := jid.Parse(e.Get("from"))
	to, err2 := jid.Parse(e.Get("to"))
	if err1 != nil || err2 != nil || from.Localpart() != "" || to.Localpart() != "" || e.Get("from") == "" || e.Get("to") == "" {
		return stream.ImproperAddressing
	}
	remote, local := from.Domainpart(), to.Domainpart()
	reply := func(typ string, cond string) error {
		r := router.NewElement(nsDialback, "result", "from", local, "to", remote, "type", typ)
		if cond != "" {
			r.Append(router.NewElement("", "error", "type", "cancel").Append(router.NewElement(nsStanzas, cond)))
		}
		return in.c.writeDialback(r)
	}
	if !in.s.opts.Router.IsLocal(local) {
		return reply("error", "item-not-found")
	}
	if !in.plaintextOK(remote) {
		// The stream is in plaintext because its header named a domain
		// exempt from TLS; remote is not. XEP-0220 §2.5 names this case
		// policy-violation, as a dialback error rather than a stream
		// error: the refusal concerns this domain pair, and closing the
		// stream would throw away the exempt domain's pairs with it.
		in.log.Info("s2s dialback refused without TLS", slog.String("domain", remote))
		return reply("error", "policy-violation")
	}
	if !in.s.dialbackAllowed(remote) {
		in.log.Info("s2s dialback refused by policy", slog.String("domain", remote))
		return reply("error", "not-authorized")
	}
	vctx, cancel := context.WithTimeout(ctx, in.s.cfg.ConnectTimeout)
	defer cancel()
	valid, err := in.s.verifyKey(vctx, local, remote, in.c.streamID, e.Text())
	if err != nil {
		in.log.Info("s2s dialback verification failed", slog.String("domain", remote), slog.Any("err", err))
		return reply("error", "remote-server-not-found")
	}
	if !valid {
		in.log.Info("s2s dialback key invalid", slog.String("domain", remote))
		in.mu.Lock()
		others := in.externalDomain != "" || len(in.authed) > 0
		in.mu.Unlock()
		if others {
			// XEP-0220 §2.2.1: the peer may only be misconfigured for this
			// domain; keep the stream and the pairs it has.
			return reply("error", "forbidden")
		}
		// §2.2.1: with no other pair, answer invalid and close the stream.
		if err := reply("invalid", ""); err != nil {
			return err
		}
		return errKeyInvalid
	}
	in.releasePending()
	in.mu.Lock()
	in.authed[pair{local, remote}] = true
	in.mu.Unlock()
	in.c.nc.SetDeadline(time.Now().Add(idleTimeoutIn))
	in.log.Info("s2s inbound stream authenticated", slog.String("domain", remote), slog.String("local", local), slog.String("auth", authDialback))
	return reply("valid", "")
}

// dialbackVerify answers a receiving server that checks a key we (as
// authoritative server) generated (XEP-0220 §2.1.3).
func (in *inStream) dialbackVerify(e *router.Element) error {
	// The verifying server is "from", we are "to".
	receiving, originating, id := e.Get("from"), e.Get("to"), e.Get("id")
	if receiving == "" || originating == "" || id == "" {
		return stream.ImproperAddressing
	}
	typ := "invalid"
	if in.s.opts.Router.IsLocal(originating) && VerifyDialbackKey(in.s.secret, receiving, originating, id, e.Text()) {
		typ = "valid"
	}
	in.log.Debug("s2s dialback verify answered", slog.String("receiving", receiving), slog.String("type", typ))
	r := router.NewElement(nsDialback, "verify", "from", originating, "to", receiving, "id", id, "type", typ)
	return in.c.writeDialback(r)
}

// stanza checks a stanza's addresses against what the stream authenticated
// (RFC 6120 §4.9.3, §13.4) and hands it to a worker to route.
func (in *inStream) stanza(ctx context.Context, e *router.Element) error {
	st, err := router.NewStanza(e)
	if err != nil || e.Get("from") == "" || e.Get("to") == "" {
		return stream.ImproperAddressing
	}
	local, remote := st.To.Domainpart(), st.From.Domainpart()
	if !in.s.opts.Router.IsLocal(local) {
		return stream.HostUnknown
	}
	in.mu.Lock()
	ok := in.externalDomain == remote || in.authed[pair{local, remote}]
	in.mu.Unlock()
	if !ok {
		if in.externalDomain == "" && len(in.authed) == 0 {
			return stream.NotAuthorized
		}
		return stream.InvalidFrom
	}
	if !in.plaintextOK(remote) {
		// dialbackResult authenticates no such pair; should one slip
		// through, it still carries nothing in plaintext.
		return stream.PolicyViolation
	}
	in.c.nc.SetDeadline(time.Now().Add(idleTimeoutIn))
	count(&in.s.stats.in, st.Name.Local)
	return in.dispatch(ctx, st)
}

// verifyKey asks the authoritative server of remote whether key is the one
// it generated for the stream id (XEP-0220 §2.1.2), over a connection of
// its own.
func (s *Server) verifyKey(ctx context.Context, local, remote, id, key string) (bool, error) {
	c, _, err := s.open(ctx, local, remote)
	if err != nil {
		return false, err
	}
	defer c.close(nil)
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Now()) })
	defer stop()
	v := router.NewElement(nsDialback, "verify", "from", local, "to", remote, "id", id).AppendText(key)
	if err := c.writeDialback(v); err != nil {
		return false, err
	}
	for {
		e, err := c.in.Next()
		if err != nil {
			return false, fmt.Errorf("read dialback verify answer: %w", err)
		}
		if isStreamError(e) {
			return false, fmt.Errorf("stream error %s", streamErrorOf(e))
		}
		if e.Name.Space == nsDialback && e.Name.Local == "verify" && e.Get("id") == id {
			return e.Get("type") == "valid", nil
		}
	}
}

// newID returns a random stream id.
func newID() string { return router.NewID() + router.NewID() }
