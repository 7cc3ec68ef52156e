// Package web is xmppd's one HTTP(S) server: every web feature (the
// WebSocket transport, host-meta, and later file upload, BOSH and metrics)
// registers its handlers here instead of opening a listener of its own, so
// that TLS with the hosts' certificates, HTTP/2, the limits that keep a slow
// or greedy client from holding the server (header and body timeouts, header
// and body sizes), the access log and the handling of reverse proxies are
// done once.
//
// A feature registers a Route (Server.Handle) and, if clients discover it
// through XEP-0156, a Link (Server.AddLink); both return a
// router.Registration that removes them again, as modules' other
// registrations do. web imports neither c2s nor the modules: the server's
// wiring hands it their handlers.
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/router"
)

// Options are what a web Server needs.
type Options struct {
	Config config.Web
	// TLS is the configuration of https listeners (the hosts'
	// certificates); nil when there are none.
	TLS *tls.Config
	Log *slog.Logger
}

// Route is one handler on the server.
type Route struct {
	// Pattern is an http.ServeMux pattern: "GET /xmpp-websocket",
	// "/upload/{slot}/{name}".
	Pattern string
	Handler http.Handler
	// MaxBodySize bounds the request body of this route, in bytes; 0 is
	// the server's web.max_body_size. A larger declared Content-Length
	// gets 413 before the handler runs; a chunked body that grows past
	// it fails the handler's read with *http.MaxBytesError (see
	// BodyTooLarge).
	MaxBodySize int64
	// LongLived exempts the route from the read and write timeouts, for
	// connections that stay open by design: a WebSocket, a BOSH long
	// poll. Such a handler bounds its own reads and writes.
	LongLived bool
	// OnShutdown, if set, is called when the server begins to shut down,
	// before it waits for the requests in progress: a handler that holds
	// requests (BOSH) answers them then.
	OnShutdown func()
}

// Link is a way to connect that host-meta (XEP-0156) lists.
type Link struct {
	// Rel is the link relation, "urn:xmpp:alt-connections:websocket" or
	// "urn:xmpp:alt-connections:xbosh".
	Rel string
	// Path is the route's path on this server, "/xmpp-websocket".
	Path string
	// WebSocket makes the URL ws:// or wss:// instead of http(s)://.
	WebSocket bool
}

// Server is the HTTP(S) server of all http and https listeners.
type Server struct {
	opts    Options
	proxies []netip.Prefix

	mu    sync.Mutex // serialises changes to routes and links
	seq   int
	state atomic.Pointer[snapshot]

	srvMu   sync.Mutex
	servers []*http.Server
	// ports are the ports of the listeners served, plain and TLS, in
	// the order Serve was called: what Port reports.
	ports map[bool][]int
}

// snapshot is the routes and links at one moment, rebuilt on every change
// (http.ServeMux cannot remove a handler) and read without a lock.
type snapshot struct {
	routes []registered
	links  []registeredLink
	mux    *http.ServeMux
	byPat  map[string]*Route
}

type registered struct {
	id int
	r  Route
}

type registeredLink struct {
	id int
	l  Link
}

// New returns a Server with host-meta registered. Listeners are added with
// Serve.
func New(opts Options) (*Server, error) {
	s := &Server{opts: opts}
	for _, p := range opts.Config.TrustedProxies {
		pr, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, fmt.Errorf("web: trusted proxy %q: %w", p, err)
			}
			pr = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		s.proxies = append(s.proxies, pr)
	}
	s.state.Store(&snapshot{mux: http.NewServeMux(), byPat: map[string]*Route{}})
	if _, err := s.Handle(Route{Pattern: "GET /.well-known/host-meta", Handler: http.HandlerFunc(s.hostMetaXRD)}); err != nil {
		return nil, err
	}
	if _, err := s.Handle(Route{Pattern: "GET /.well-known/host-meta.json", Handler: http.HandlerFunc(s.hostMetaJSON)}); err != nil {
		return nil, err
	}
	return s, nil
}

// removal is a router.Registration.
type removal func()

func (r removal) Remove() { r() }

// Handle adds a route. Its pattern must not conflict with another
// route's (http.ServeMux's rules); removing the registration takes the
// route away.
func (s *Server) Handle(r Route) (router.Registration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := s.seq
	cur := s.state.Load()
	routes := append(slices.Clip(cur.routes), registered{id, r})
	next, err := build(routes, cur.links)
	if err != nil {
		return nil, fmt.Errorf("web: route %q: %w", r.Pattern, err)
	}
	s.state.Store(next)
	return removal(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		cur := s.state.Load()
		routes := slices.DeleteFunc(slices.Clone(cur.routes), func(x registered) bool { return x.id == id })
		next, _ := build(routes, cur.links) // a subset of valid routes is valid
		s.state.Store(next)
	}), nil
}

// AddLink adds a connection method to host-meta.
func (s *Server) AddLink(l Link) router.Registration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := s.seq
	cur := s.state.Load()
	next := *cur
	next.links = append(slices.Clip(cur.links), registeredLink{id, l})
	s.state.Store(&next)
	return removal(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		cur := s.state.Load()
		next := *cur
		next.links = slices.DeleteFunc(slices.Clone(cur.links), func(x registeredLink) bool { return x.id == id })
		s.state.Store(&next)
	})
}

// build makes the mux of routes; a conflicting pattern is an error rather
// than http.ServeMux's panic.
func build(routes []registered, links []registeredLink) (snap *snapshot, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%v", v)
		}
	}()
	snap = &snapshot{routes: routes, links: links, mux: http.NewServeMux(), byPat: make(map[string]*Route, len(routes))}
	for i := range routes {
		r := &routes[i].r
		snap.mux.Handle(r.Pattern, r.Handler)
		snap.byPat[r.Pattern] = r
	}
	return snap, nil
}

// Serve serves HTTP on ln (HTTPS, with HTTP/2, if useTLS) until ctx is
// done or Shutdown is called.
func (s *Server) Serve(ctx context.Context, ln net.Listener, useTLS bool) error {
	c := s.opts.Config
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.opts.Log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	if useTLS {
		if s.opts.TLS == nil {
			return errors.New("web: https listener without TLS configuration")
		}
		cfg := s.opts.TLS.Clone()
		cfg.NextProtos = []string{"h2", "http/1.1"}
		hs.TLSConfig = cfg
	}
	s.srvMu.Lock()
	s.servers = append(s.servers, hs)
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
		if s.ports == nil {
			s.ports = map[bool][]int{}
		}
		s.ports[useTLS] = append(s.ports[useTLS], tcp.Port)
	}
	s.srvMu.Unlock()
	stop := context.AfterFunc(ctx, func() { hs.Close() })
	defer stop()
	var err error
	if useTLS {
		err = hs.ServeTLS(ln, "", "")
	} else {
		err = hs.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// TLSConfig returns a copy of the TLS configuration of the https
// listeners, the hosts' certificates chosen by SNI, for other TLS
// listeners that serve the same names (TURN over TLS); nil without one.
func (s *Server) TLSConfig() *tls.Config {
	if s.opts.TLS == nil {
		return nil
	}
	return s.opts.TLS.Clone()
}

// Port returns the port of the first https listener (secure) or http
// listener being served, and false if there is none: what a feature that
// hands out absolute URLs (file upload) puts in them when no public URL is
// configured. It is the bound port, also for a listener configured with
// port 0.
func (s *Server) Port(secure bool) (int, bool) {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if p := s.ports[secure]; len(p) > 0 {
		return p[0], true
	}
	return 0, false
}

// Shutdown stops every listener and waits for requests in progress until
// ctx is done. Long-lived connections taken over by their handler (a
// WebSocket) are their owner's to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.srvMu.Lock()
	servers := slices.Clone(s.servers)
	s.srvMu.Unlock()
	for _, r := range s.state.Load().routes {
		if r.r.OnShutdown != nil {
			r.r.OnShutdown()
		}
	}
	var errs []error
	for _, hs := range servers {
		if err := hs.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("web: shutdown: %w", err))
		}
	}
	return errors.Join(errs...)
}

// ServeHTTP dispatches a request to its route, with the client as the
// trusted proxies say, the body limit, the long-lived exemption, a caught
// panic and the access log.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	cl := s.client(r)
	r = r.WithContext(context.WithValue(r.Context(), clientKey{}, cl))
	r.RemoteAddr = cl.Addr.String()
	rec := &recorder{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.opts.Log.Error("web handler panicked", slog.String("path", r.URL.Path), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			if !rec.wroteHeader {
				http.Error(rec, "internal server error", http.StatusInternalServerError)
			}
		}
		s.logAccess(r, rec, cl, start)
	}()
	snap := s.state.Load()
	_, pattern := snap.mux.Handler(r)
	limit := s.opts.Config.MaxBodySize
	route := snap.byPat[pattern]
	if route != nil && route.MaxBodySize > 0 {
		limit = route.MaxBodySize
	}
	if r.ContentLength > limit {
		http.Error(rec, fmt.Sprintf("request body too large: at most %d bytes", limit), http.StatusRequestEntityTooLarge)
		return
	}
	r.Body = http.MaxBytesReader(rec, r.Body, limit)
	if route != nil && route.LongLived {
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Time{})
		rc.SetWriteDeadline(time.Time{})
	}
	// Through the mux rather than the handler Handler found, so that the
	// route's wildcards are set (r.PathValue): Handler only finds it.
	snap.mux.ServeHTTP(rec, r)
}

// BodyTooLarge answers 413 and reports true if err, from reading a
// request body, is the server's body limit.
func BodyTooLarge(w http.ResponseWriter, err error) bool {
	var mbe *http.MaxBytesError
	if !errors.As(err, &mbe) {
		return false
	}
	http.Error(w, fmt.Sprintf("request body too large: at most %d bytes", mbe.Limit), http.StatusRequestEntityTooLarge)
	return true
}

func (s *Server) logAccess(r *http.Request, rec *recorder, cl Client, start time.Time) {
	if !s.opts.Config.AccessLog {
		return
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	// The path only: a query may carry secrets (upload signatures).
	s.opts.Log.Info("http request",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("proto", r.Proto),
		slog.Int("status", status), slog.Int64("bytes", rec.bytes), slog.Duration("duration", time.Since(start)),
		slog.String("client", cl.Addr.Addr().String()), slog.String("host", r.Host),
		slog.String("user_agent", r.UserAgent()))
}
