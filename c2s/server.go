// Package c2s serves client connections (RFC 6120): it accepts TCP with
// STARTTLS and direct TLS (XEP-0368), and WebSocket (RFC 7395) through the
// handler Server.WebSocket that the web server mounts; it negotiates the stream itself as a
// list of registered steps (Step: TLS, SASL SCRAM with channel binding,
// in-band registration, resource binding, stream management resumption;
// Server.AddStep adds more), and then serves the bound Session: a read loop per connection that stamps
// 'from' and hands stanzas to the router (or other top-level elements to
// their owner, Server.HandleElement), plus one writer per attachment fed by
// the session's bounded queue.
//
// A Session is apart from the Transport that carries it (a TCP, TLS or
// WebSocket connection; BOSH will implement the same interface):
// it can be detached and attached to another transport, and it ends, with
// "session ended", only once. Stream management (XEP-0198, sm.go) uses
// that: a resumable session outlives a lost connection, hibernating until
// a new connection of the same account resumes it or its timeout ends it.
// Client State Indication (XEP-0352, csi.go) holds, in the session's
// delivery, what a client that said it is inactive can wait for.
//
// Stream negotiation is ours rather than mellium's ReceiveSession: xmppd must
// check the stream's 'to' against its hosts, send the RFC's stream errors
// itself, bound stanza sizes on the raw input, and do SCRAM from stored keys,
// none of which the mellium negotiator allows (see shared/MELLIUM-NOTES.md).
// mellium provides the JIDs (PRECIS), stanza and stream error values.
package c2s

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/certs"
	"github.com/xmppd/xmppd/internal/connlimit"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// Options are what a c2s Server needs.
type Options struct {
	Config *config.Config
	Router *router.Router
	Users  storage.Users
	// Secrets keeps the server's own keys (the Bind 2 resource key); nil
	// makes them last only as long as the process.
	Secrets storage.Secrets
	// Tokens keeps FAST tokens (XEP-0484); nil turns FAST off.
	Tokens storage.FastTokens
	// FastKey derives the FAST tokens from the ids Tokens keeps
	// (sasl.FastToken). It must not be kept in the database, so that a
	// copy of it lets nobody log in, and must be the same on every node
	// sharing the database; empty turns FAST off.
	FastKey []byte
	Certs   *certs.Store
	Log     *slog.Logger
	// PreAuth answer the IQs of their namespaces that clients send before
	// authenticating (in-band registration); see PreAuthIQHandler.
	PreAuth []PreAuthIQHandler
}

// Server accepts client connections on any number of listeners.
type Server struct {
	opts     Options
	limits   config.Limits
	throttle *Throttle
	// pending counts connections per address block that have not
	// authenticated yet (limits.max_pending_per_ip).
	pending *connlimit.PerIP
	// negotiation holds the negotiation steps and the owners of post-bind
	// elements (negotiate.go).
	negotiation negotiation
	// sm holds the resumable sessions (stream management, sm.go).
	sm smRegistry

	stats stats

	// resourceKeyBytes keys the Bind 2 resource suffixes (bind2.go),
	// loaded once.
	resourceKeyOnce  sync.Once
	resourceKeyBytes []byte

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NegotiationTimeout bounds how long a client may take from connecting to
// binding a resource.
const NegotiationTimeout = 60 * time.Second

// New returns a Server with the standard negotiation steps.
func New(opts Options) *Server {
	s := &Server{
		opts:     opts,
		limits:   opts.Config.Limits,
		throttle: NewThrottle(opts.Config.Limits.LoginFailures, opts.Config.Limits.LoginFailuresPerIP, opts.Config.Limits.LoginWindow),
		pending:  connlimit.New(opts.Config.Limits.MaxPendingPerIP),
		conns:    map[*conn]struct{}{},
	}
	s.addStandardSteps()
	s.addSMHandlers()
	s.addCSIHandlers()
	return s
}

// Serve accepts connections on ln until ctx is done or ln fails. directTLS
// listeners start TLS at once (XEP-0368); the others require STARTTLS.
func (s *Server) Serve(ctx context.Context, ln net.Listener, directTLS bool) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Too many open files and the like: back off, as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.opts.Log.Warn("c2s accept", slog.Any("err", err))
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := newConn(s, nc, directTLS)
		ticket, ok := s.pending.Acquire(c.ip, c.evict)
		if !ok {
			// Too many connections from this address still negotiating,
			// none of them evictable (every c2s one is, so this is a
			// safety net): refuse before spending a goroutine and a TLS
			// handshake.
			s.opts.Log.Warn("c2s connection refused: too many unauthenticated connections from this address", slog.String("remote", nc.RemoteAddr().String()))
			nc.Close()
			continue
		}
		c.pending = ticket
		if !s.track(c) {
			ticket.Release()
			nc.Close()
			return nil
		}
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			defer c.releasePending()
			c.run(ctx)
		}()
	}
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown ends every connection with a system-shutdown stream error and
// waits until all have finished or ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close(stream.SystemShutdown)
	}
	s.mu.Unlock()
	s.endHibernating(stream.SystemShutdown)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ConnCount is the number of open client connections.
func (s *Server) ConnCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
