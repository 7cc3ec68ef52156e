// Package server assembles a running xmppd from a configuration: database,
// router, modules and listeners. It is shared by the CLI's serve command and
// the in-process test servers, so that tests exercise the same wiring that
// operators run.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/certs"
	"github.com/xmppd/xmppd/modules"
	_ "github.com/xmppd/xmppd/modules/standard" // the standard module set
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/s2s"
	"github.com/xmppd/xmppd/storage"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
	"github.com/xmppd/xmppd/web"
)

// FastSecretFile is the file in data_dir that keeps the generated key of
// FAST tokens when auth.fast_secret is not set.
const FastSecretFile = "fast-secret"

// LoadFastKey returns the key FAST tokens (XEP-0484) are derived with:
// auth.fast_secret, or the one kept in data_dir, made on first start. It
// is a file and not a row of the database so that a copy of the database
// alone lets nobody log in with a token.
func LoadFastKey(cfg *config.Config) ([]byte, error) {
	key, err := modules.LoadSecret(cfg.Auth.FastSecret, filepath.Join(cfg.DataDir, FastSecretFile))
	if err != nil {
		return nil, fmt.Errorf("fast token key: %w", err)
	}
	return key, nil
}

// Server is a started xmppd.
type Server struct {
	Config *config.Config
	Router *router.Router
	Store  storage.Store
	C2S    *c2s.Server
	S2S    *s2s.Server
	// Web is the HTTP(S) server of the http and https listeners, on which
	// the WebSocket transport, host-meta and metrics are registered;
	// modules (upload) and later transports (BOSH) add their routes to it.
	Web     *web.Server
	modules *modules.Set
	log     *slog.Logger

	listeners []boundListener
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

type boundListener struct {
	cfg config.Listener
	ln  net.Listener
}

// accounts answers the router's "does this account exist" from storage.
type accounts struct{ users storage.Users }

func (a accounts) Exists(ctx context.Context, bare jid.JID) (bool, error) {
	_, err := a.users.Get(ctx, bare.Domainpart(), bare.Localpart())
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Start opens the database, starts the modules and listens on every
// configured listener. Listeners with port 0 get a free port; Addr tells
// which.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Server, error) {
	db, err := sqlstore.Open(ctx, cfg.Storage)
	if err != nil {
		return nil, err
	}
	s, err := start(ctx, cfg, log, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func start(ctx context.Context, cfg *config.Config, log *slog.Logger, db storage.Store) (*Server, error) {
	cs, err := certs.Load(cfg)
	if err != nil {
		return nil, err
	}
	fastKey, err := LoadFastKey(cfg)
	if err != nil {
		return nil, err
	}
	domains := make([]string, 0, len(cfg.Hosts))
	for _, h := range cfg.Hosts {
		domains = append(domains, h.Domain)
	}
	r := router.New(log, router.NewLocalRegistry(), accounts{db.Users()}, domains)
	// Before the modules, which may add routes to it.
	w, err := web.New(web.Options{Config: cfg.Web, TLS: cs.ServerConfig(""), Log: log})
	if err != nil {
		return nil, err
	}
	mods, err := modules.Start(ctx, cfg.Modules, r, db, cfg, log, w)
	if err != nil {
		return nil, err
	}
	srv := &Server{Config: cfg, Router: r, Store: db, Web: w, modules: mods, log: log}
	srv.C2S = c2s.New(c2s.Options{Config: cfg, Router: r, Users: db.Users(), Secrets: db.Secrets(),
		Tokens: db.FastTokens(), FastKey: fastKey, Certs: cs, Log: log, PreAuth: preAuthHandlers(mods)})
	srv.S2S, err = s2s.New(s2s.Options{Config: cfg, Router: r, Certs: cs, Log: log})
	if err != nil {
		mods.Stop()
		return nil, err
	}
	r.SetRemote(srv.S2S)
	if err := addWebSocket(w, cfg, srv.C2S); err != nil {
		mods.Stop()
		return nil, err
	}
	if err := addBOSH(w, cfg, srv.C2S); err != nil {
		mods.Stop()
		return nil, err
	}
	if err := srv.addMetrics(); err != nil {
		mods.Stop()
		return nil, err
	}
	for _, l := range cfg.Listeners {
		if l.Type == config.ListenerTURN || l.Type == config.ListenerTURNS {
			// UDP and TCP (and TLS), bound by module turn.
			if !slices.Contains(cfg.Modules, "turn") {
				log.Warn("turn listener unused: module turn is not enabled", slog.String("address", l.Address))
			}
			continue
		}
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			srv.closeListeners()
			mods.Stop()
			return nil, fmt.Errorf("listen %s on %s: %w", l.Type, l.Address, err)
		}
		srv.listeners = append(srv.listeners, boundListener{l, ln})
	}
	runCtx, cancel := context.WithCancel(context.Background())
	srv.cancel = cancel
	for _, bl := range srv.listeners {
		log.Info("listening", slog.String("type", bl.cfg.Type), slog.String("address", bl.ln.Addr().String()), slog.Any("domains", domains))
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			var err error
			switch bl.cfg.Type {
			case config.ListenerHTTP, config.ListenerHTTPS:
				err = srv.Web.Serve(runCtx, bl.ln, bl.cfg.Type == config.ListenerHTTPS)
			case config.ListenerS2SStartTLS, config.ListenerS2SDirectTLS:
				err = srv.S2S.Serve(runCtx, bl.ln, bl.cfg.Type == config.ListenerS2SDirectTLS)
			default:
				err = srv.C2S.Serve(runCtx, bl.ln, bl.cfg.Type == config.ListenerC2SDirectTLS)
			}
			if err != nil {
				log.Error("listener failed", slog.String("address", bl.ln.Addr().String()), slog.Any("err", err))
			}
		}()
	}
	return srv, nil
}

// addWebSocket serves XMPP over WebSocket at /xmpp-websocket, listed in
// host-meta, unless the configuration disables it.
func addWebSocket(w *web.Server, cfg *config.Config, c *c2s.Server) error {
	if cfg.Web.WebSocket.Disabled {
		return nil
	}
	h := c.WebSocket(c2s.WebSocketOptions{
		Origins:       cfg.Web.WebSocket.Origins,
		AllowInsecure: cfg.Web.WebSocket.AllowInsecure,
		Client: func(r *http.Request) (net.Addr, bool, string) {
			cl := web.ClientOf(r)
			return net.TCPAddrFromAddrPort(cl.Addr), cl.Secure, cl.Host
		},
	})
	if _, err := w.Handle(web.Route{Pattern: "GET " + c2s.WebSocketPath, Handler: h, LongLived: true}); err != nil {
		return err
	}
	w.AddLink(web.Link{Rel: web.RelWebSocket, Path: c2s.WebSocketPath, WebSocket: true})
	return nil
}

// addBOSH serves XMPP over BOSH at web.bosh.path, listed in host-meta,
// unless the configuration disables it.
func addBOSH(w *web.Server, cfg *config.Config, c *c2s.Server) error {
	b := cfg.Web.BOSH
	if b.Disabled {
		return nil
	}
	h := c.BOSH(c2s.BOSHOptions{
		Origins:       b.Origins,
		AllowInsecure: b.AllowInsecure,
		Client: func(r *http.Request) (net.Addr, bool, string) {
			cl := web.ClientOf(r)
			return net.TCPAddrFromAddrPort(cl.Addr), cl.Secure, cl.Host
		},
		MaxWait:    b.MaxWait,
		MaxHold:    b.MaxHold,
		Inactivity: b.Inactivity,
		MaxPause:   b.MaxPause,
		Polling:    b.Polling,
	})
	if _, err := w.Handle(web.Route{Pattern: b.Path, Handler: h, LongLived: true, OnShutdown: h.Shutdown}); err != nil {
		return err
	}
	w.AddLink(web.Link{Rel: web.RelBOSH, Path: b.Path})
	return nil
}

// preAuthHandlers returns the running modules that answer IQs before
// authentication (the register module's sign-up), for c2s, which cannot
// import the modules and so gets them from here.
func preAuthHandlers(mods *modules.Set) []c2s.PreAuthIQHandler {
	var hs []c2s.PreAuthIQHandler
	for _, m := range mods.Modules() {
		if h, ok := m.(c2s.PreAuthIQHandler); ok {
			hs = append(hs, h)
		}
	}
	return hs
}

// Addr returns the bound address of the first listener of a type.
func (s *Server) Addr(listenerType string) net.Addr {
	for _, bl := range s.listeners {
		if bl.cfg.Type == listenerType {
			return bl.ln.Addr()
		}
	}
	return nil
}

func (s *Server) closeListeners() {
	for _, bl := range s.listeners {
		bl.ln.Close()
	}
}

// Shutdown stops accepting, lets the modules tell users (ShutdownNotifier),
// closes every session with system-shutdown, stops the modules and closes
// the database.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	// First, while its listeners are open: Shutdown stops them itself.
	if err := s.Web.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	s.cancel()
	s.closeListeners()
	s.wg.Wait()
	// While sessions and server streams are open, so that what modules
	// say of the shutdown reaches the users.
	s.modules.NotifyShutdown(ctx)
	if err := s.C2S.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("close sessions: %w", err))
	}
	if err := s.S2S.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("close server streams: %w", err))
	}
	if err := s.modules.Stop(); err != nil {
		errs = append(errs, err)
	}
	if err := s.Store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close database: %w", err))
	}
	return errors.Join(errs...)
}
