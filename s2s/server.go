// Package s2s federates xmppd with other XMPP servers (RFC 6120): it
// accepts server-to-server streams (STARTTLS and direct TLS, XEP-0368),
// opens one outbound stream per pair of local and remote domain, and
// authenticates them with SASL EXTERNAL on a certificate that validates
// (RFC 6125 name matching) or, where the policy allows, with Server
// Dialback (XEP-0220, keys per XEP-0185). Every stanza received must come
// from a domain authenticated on its stream and go to a domain we serve.
//
// mellium offers no server side of any of this (shared/MELLIUM-NOTES.md),
// so the streams are ours, built on the same stanza reader as c2s.
package s2s

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/certs"
	"github.com/xmppd/xmppd/internal/connlimit"
	"github.com/xmppd/xmppd/router"
)

// Options are what a Server needs.
type Options struct {
	Config *config.Config
	Router *router.Router
	Certs  *certs.Store
	Log    *slog.Logger
}

// Server runs the inbound and outbound server-to-server streams.
type Server struct {
	opts     Options
	cfg      config.S2S
	resolver *Resolver
	roots    *x509.CertPool
	// pending counts inbound connections per address block that have not
	// authenticated a domain yet (limits.max_pending_per_ip).
	pending *connlimit.PerIP
	secret  string
	log     *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Limits of the outbound streams, read from the package defaults
	// when the Server is made, so that a test may lower them for the
	// servers it starts.
	maxQueueBytes int
	minBackoff    time.Duration

	stats stats

	mu     sync.Mutex
	out    map[pair]*outStream
	in     map[*inStream]struct{}
	closed bool
}

// pair names an outbound stream: from a local domain to a remote one.
type pair struct{ local, remote string }

var _ router.Remote = (*Server)(nil)

// New returns a Server; it starts nothing until stanzas arrive or Serve is
// called.
func New(opts Options) (*Server, error) {
	cfg := opts.Config.S2S
	roots, err := LoadRoots(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("s2s: %w", err)
	}
	secret := cfg.DialbackSecret
	if secret == "" {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("s2s: dialback secret: %w", err)
		}
		secret = hex.EncodeToString(b[:])
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts:     opts,
		cfg:      cfg,
		resolver: NewResolver(cfg.Routes, cfg.DNSServer),
		roots:    roots,
		pending:  connlimit.New(opts.Config.Limits.MaxPendingPerIP),
		secret:   secret,
		log:      opts.Log.With(slog.String("component", "s2s")),
		ctx:      ctx,
		cancel:   cancel,

		maxQueueBytes: maxQueueBytes,
		minBackoff:    minBackoff,

		out: map[pair]*outStream{},
		in:  map[*inStream]struct{}{},
	}, nil
}

// Route implements router.Remote: it queues st on the outbound stream from
// its sender's domain to its recipient's, which connects if needed.
func (s *Server) Route(ctx context.Context, st *router.Stanza) {
	local, remote := st.From.Domainpart(), st.To.Domainpart()
	if !s.cfg.Enabled || !s.opts.Router.IsLocal(local) {
		s.opts.Router.Bounce(ctx, st, stanza.RemoteServerNotFound, "")
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.opts.Router.Bounce(ctx, st, stanza.RemoteServerNotFound, "")
		return
	}
	p := pair{local, remote}
	o, ok := s.out[p]
	if !ok {
		o = newOutStream(s, p)
		s.out[p] = o
	}
	s.mu.Unlock()
	o.enqueue(ctx, st)
}

// policy returns the authentication policy for a remote domain.
func (s *Server) policy(domain string) string {
	if p, ok := s.cfg.DomainAuth[domain]; ok {
		return p
	}
	return s.cfg.Auth
}

// dialbackAllowed tells whether a remote domain may authenticate by
// dialback.
func (s *Server) dialbackAllowed(domain string) bool {
	return s.policy(domain) == config.S2SAuthAllowDialback
}

// plaintextAllowed tells whether a remote domain may go without TLS.
func (s *Server) plaintextAllowed(domain string) bool {
	return slices.Contains(s.cfg.PlaintextDomains, domain)
}

// Serve accepts inbound server connections on ln until ctx is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener, directTLS bool) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				s.log.Warn("s2s accept", slog.Any("err", err))
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return err
		}
		ip, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
		ticket, ok := s.pending.Acquire(ip, func(at connlimit.Stage) {
			// A plain close: it wakes the reader whatever it waits for,
			// and the peer's server just connects again when it has
			// something to send.
			s.log.Info("s2s pending connection evicted to make room for a newer one from its address", slog.String("peer", nc.RemoteAddr().String()), slog.Int("stage", int(at)))
			nc.Close()
		})
		if !ok {
			s.log.Warn("s2s connection refused: too many unauthenticated connections from this address", slog.String("peer", nc.RemoteAddr().String()))
			nc.Close()
			continue
		}
		in := newInStream(s, nc, directTLS)
		in.pending = ticket
		in.releasePending = ticket.Release
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			ticket.Release()
			nc.Close()
			return nil
		}
		s.in[in] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer in.releasePending()
			defer func() {
				s.mu.Lock()
				delete(s.in, in)
				s.mu.Unlock()
			}()
			in.run(s.ctx)
		}()
	}
}

// forget removes an outbound stream that has stopped, if it is still the
// registered one.
func (s *Server) forget(o *outStream) {
	s.mu.Lock()
	if s.out[o.p] == o {
		delete(s.out, o.p)
	}
	s.mu.Unlock()
}

// forgetIfIdle removes an outbound stream whose backoff and grace period
// (see fail) are over and that is not running: a domain that could not be
// reached is remembered only while it is in use, so that stanzas to ever
// new unreachable domains cannot grow the map without bound.
func (s *Server) forgetIfIdle(o *outStream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out[o.p] != o {
		return
	}
	o.mu.Lock()
	idle := !o.running && !time.Now().Before(o.forgetAt)
	o.mu.Unlock()
	if idle {
		delete(s.out, o.p)
	}
}

// Shutdown closes every stream with system-shutdown, bounces what was
// still queued, and waits for the goroutines to end or ctx to be done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for in := range s.in {
		in.c.close(stream.SystemShutdown)
	}
	s.mu.Unlock()
	s.cancel()
	// After cancel: fail starts no timer once the context is done, so
	// none outlives this loop.
	s.mu.Lock()
	for _, o := range s.out {
		o.stopForgetTimer()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Streams describes the open streams, for logs and the CLI.
func (s *Server) Streams() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for p, o := range s.out {
		out = append(out, fmt.Sprintf("out %s→%s %s", p.local, p.remote, o.describe()))
	}
	for in := range s.in {
		out = append(out, "in "+in.describe())
	}
	slices.Sort(out)
	return out
}
