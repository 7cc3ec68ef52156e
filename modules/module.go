// Package modules is xmppd's module API: a module is a type that registers
// itself by ID in init(), is enabled by that ID in the configuration, and at
// start attaches typed handlers to the router through a Host that remembers
// every registration so that stopping the module removes them all.
package modules

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/web"
)

// Module is what a constructor given to Register or RegisterWithOptions
// builds. Nothing is mandatory beyond the ID and the constructor, which the
// registration says once: Starter, Stopper and Validator (for options) are
// optional interfaces the host checks for, so small modules stay small.
type Module any

// Starter is implemented by modules that attach handlers when the server
// starts.
type Starter interface {
	Start(ctx context.Context, h *Host) error
}

// Stopper is implemented by modules that hold resources beyond their router
// registrations (which the Host removes by itself).
type Stopper interface {
	Stop() error
}

// ShutdownNotifier is implemented by modules that tell their users that
// the server is going down while sessions and server streams are still
// open, before they close: the multi-user chat service's presence with
// status 332 to every occupant. The server calls it once, at shutdown,
// before Stop.
type ShutdownNotifier interface {
	NotifyShutdown(ctx context.Context)
}

// Host is what a module sees of the server. Every registration made through
// it is recorded and removed when the module stops.
type Host struct {
	id     string
	router *router.Router
	store  storage.Store
	cfg    *config.Config
	log    *slog.Logger
	web    HTTP
	regs   []router.Registration
}

// HTTP is what a module may do with the server's one web server (package
// web): add routes (file upload, metrics) and host-meta links. Handlers are
// served on every http and https listener.
type HTTP interface {
	Handle(r web.Route) (router.Registration, error)
	AddLink(l web.Link) router.Registration
	// Port is the port of the first https (secure) or http listener, as
	// web.Server.Port.
	Port(secure bool) (int, bool)
	// TLSConfig is the hosts' TLS configuration, as web.Server.TLSConfig.
	TLSConfig() *tls.Config
}

// TLSConfig returns the hosts' TLS server configuration (their
// certificates, by SNI), for a module's own TLS listener.
func (h *Host) TLSConfig() (*tls.Config, error) {
	if h.web == nil {
		return nil, fmt.Errorf("%s: TLS: %w", h.id, errNoWeb)
	}
	cfg := h.web.TLSConfig()
	if cfg == nil {
		return nil, fmt.Errorf("%s: no TLS configuration", h.id)
	}
	return cfg, nil
}

// errNoWeb is HandleHTTP's error on a host without a web server (tests
// that start modules alone).
var errNoWeb = errors.New("no web server")

// HandleHTTP serves r on the web server until the module stops.
func (h *Host) HandleHTTP(r web.Route) error {
	if h.web == nil {
		return fmt.Errorf("%s: route %s: %w", h.id, r.Pattern, errNoWeb)
	}
	reg, err := h.web.Handle(r)
	if err != nil {
		return fmt.Errorf("%s: %w", h.id, err)
	}
	h.regs = append(h.regs, reg)
	return nil
}

// AddLink lists a connection method in host-meta (XEP-0156) until the
// module stops.
func (h *Host) AddLink(l web.Link) error {
	if h.web == nil {
		return fmt.Errorf("%s: link %s: %w", h.id, l.Rel, errNoWeb)
	}
	h.regs = append(h.regs, h.web.AddLink(l))
	return nil
}

// HTTPPort returns the port of the first https listener (secure) or http
// listener of the web server, for URLs the module hands out, and false
// when there is none (or no web server).
func (h *Host) HTTPPort(secure bool) (int, bool) {
	if h.web == nil {
		return 0, false
	}
	return h.web.Port(secure)
}

// Router is what a module may do with the router beyond registering
// handlers: send, look up sessions and accounts. It is an interface, not
// the router itself, so that a module cannot reach around the hooks (a
// stanza handed to a session goes through the delivery hooks, one routed
// through the filters) or bind and unbind sessions, and so that the calls
// can later be answered for sessions on other nodes.
type Router interface {
	// Route sends a stanza the module made through the filters, as if
	// its 'from' had sent it.
	Route(ctx context.Context, st *router.Stanza)
	// DeliverTo hands st to one session the module picked, through the
	// delivery hooks, and tells whether it was taken (see
	// router.Router.DeliverTo).
	DeliverTo(ctx context.Context, s router.Session, st *router.Stanza) bool
	// Bounce answers st with a stanza error, unless st is an error or an
	// IQ response.
	Bounce(ctx context.Context, st *router.Stanza, cond stanza.Condition, text string)
	// SendIQ sends an IQ request of the server's and waits for the answer
	// (see router.Router.SendIQ).
	SendIQ(ctx context.Context, iq *router.Stanza) (*router.Stanza, error)
	// Sessions returns the sessions bound to an account (a snapshot).
	Sessions(bare jid.JID) []router.Session
	// Session returns the session bound to a full JID, or nil.
	Session(full jid.JID) router.Session
	// AccountExists tells whether a local account exists.
	AccountExists(ctx context.Context, bare jid.JID) (bool, error)
	// ServesUsers tells whether domain is a user domain of this server
	// (not a service address), and Domains lists them.
	ServesUsers(domain string) bool
	Domains() []string
	// Services lists the service addresses (disco#items of the server).
	Services() []string
	// Features lists the disco#info features advertised on target.
	Features(target router.Target) []string
	// Identities lists the disco#info identities modules added to target
	// (Host.AddIdentity).
	Identities(target router.Target) []router.Identity
	// FeatureGeneration changes whenever a feature is added or removed, so
	// that what is computed from Features (the caps hash) can be cached.
	FeatureGeneration() uint64
}

// hostRouter is the Router a Host gives its module. It holds the router in
// a field rather than embedding it, so that a type assertion on what
// Host.Router returns finds only these methods, not the whole router.
type hostRouter struct{ r *router.Router }

var _ Router = hostRouter{}

func (h hostRouter) Route(ctx context.Context, st *router.Stanza) { h.r.Route(ctx, st) }

func (h hostRouter) DeliverTo(ctx context.Context, s router.Session, st *router.Stanza) bool {
	return h.r.DeliverTo(ctx, s, st)
}

func (h hostRouter) Bounce(ctx context.Context, st *router.Stanza, cond stanza.Condition, text string) {
	h.r.Bounce(ctx, st, cond, text)
}

func (h hostRouter) SendIQ(ctx context.Context, iq *router.Stanza) (*router.Stanza, error) {
	return h.r.SendIQ(ctx, iq)
}

func (h hostRouter) Sessions(bare jid.JID) []router.Session { return h.r.Sessions().Sessions(bare) }

func (h hostRouter) Session(full jid.JID) router.Session { return h.r.Sessions().Lookup(full) }

func (h hostRouter) AccountExists(ctx context.Context, bare jid.JID) (bool, error) {
	return h.r.AccountExists(ctx, bare)
}

func (h hostRouter) ServesUsers(domain string) bool { return h.r.ServesUsers(domain) }

func (h hostRouter) Domains() []string { return h.r.Domains() }

func (h hostRouter) Services() []string { return h.r.Services() }

func (h hostRouter) Features(target router.Target) []string { return h.r.Features(target) }

func (h hostRouter) Identities(target router.Target) []router.Identity {
	return h.r.Identities(target)
}

func (h hostRouter) FeatureGeneration() uint64 { return h.r.FeatureGeneration() }

// ID is the module's ID.
func (h *Host) ID() string { return h.id }

// Enabled tells whether the module id is enabled in the configuration:
// for a module whose feature needs another's (PEP keeping bookmarks in
// private XML storage, vCard avatars converted to PEP), and which
// advertises that feature only when both run.
func (h *Host) Enabled(id string) bool { return h.cfg != nil && slices.Contains(h.cfg.Modules, id) }

// Router returns what the module may do with the router.
func (h *Host) Router() Router { return hostRouter{h.router} }

// Store returns the database.
func (h *Host) Store() storage.Store { return h.store }

// Config returns the server configuration.
func (h *Host) Config() *config.Config { return h.cfg }

// Logger returns a logger that names the module.
func (h *Host) Logger() *slog.Logger { return h.log }

// HandleIQ answers IQs of type typ (stanza.GetIQ or stanza.SetIQ) whose
// payload is in namespace ns, addressed to target.
func (h *Host) HandleIQ(target router.Target, typ stanza.IQType, ns string, fn router.IQHandler) error {
	reg, err := h.router.HandleIQ(h.id, target, string(typ), ns, fn)
	if err != nil {
		return fmt.Errorf("%s: %w", h.id, err)
	}
	h.regs = append(h.regs, reg)
	return nil
}

// AddService makes the module the owner of the service address domain
// (conference.DOMAIN, upload.DOMAIN): fn receives every stanza to it or to a
// JID under it, until the module stops. fn may be nil for a service that
// only answers the IQs it registers with HandleServiceIQ.
func (h *Host) AddService(domain string, fn router.ServiceHandler) error {
	reg, err := h.router.AddService(h.id, domain, fn)
	if err != nil {
		return fmt.Errorf("%s: %w", h.id, err)
	}
	h.regs = append(h.regs, reg)
	return nil
}

// HandleServiceIQ answers IQs of type typ whose payload is in namespace ns,
// addressed to the service address domain itself: a service's own
// disco#info, say.
func (h *Host) HandleServiceIQ(domain string, typ stanza.IQType, ns string, fn router.IQHandler) error {
	reg, err := h.router.HandleServiceIQ(h.id, domain, string(typ), ns, fn)
	if err != nil {
		return fmt.Errorf("%s: %w", h.id, err)
	}
	h.regs = append(h.regs, reg)
	return nil
}

// HandleStanza attaches fn to messages or presences (kind) for target.
func (h *Host) HandleStanza(target router.Target, kind string, priority int, fn router.StanzaHandler) {
	h.regs = append(h.regs, h.router.HandleStanza(h.id, target, kind, priority, fn))
}

// OnUndelivered attaches fn to messages that found no available resource;
// every module attached hears of each such message.
func (h *Host) OnUndelivered(priority int, fn router.UndeliveredHandler) {
	h.regs = append(h.regs, h.router.OnUndelivered(h.id, priority, fn))
}

// AddFilter attaches a pre-routing filter.
func (h *Host) AddFilter(priority int, f router.Filter) {
	h.regs = append(h.regs, h.router.AddFilter(h.id, priority, f))
}

// AddDeliveryHook attaches a hook on every stanza handed to a session.
func (h *Host) AddDeliveryHook(priority int, fn router.DeliveryHook) {
	h.regs = append(h.regs, h.router.AddDeliveryHook(h.id, priority, fn))
}

// AddFeature advertises a disco#info feature on target; it should be done
// only for what the module really implements.
func (h *Host) AddFeature(target router.Target, ns string) {
	h.regs = append(h.regs, h.router.AddFeature(target, ns))
}

// AddIdentity advertises a disco#info identity on target beside the one
// disco gives it (pubsub/pep on accounts), for what the module really
// serves there.
func (h *Host) AddIdentity(target router.Target, id router.Identity) {
	h.regs = append(h.regs, h.router.AddIdentity(h.id, target, id))
}

// AddStreamFeature advertises e to authenticated clients in the stream
// features.
func (h *Host) AddStreamFeature(e *router.Element) {
	h.regs = append(h.regs, h.router.AddStreamFeature(e))
}

// AddStreamFeatureFunc advertises to authenticated clients, in the stream
// features, what f builds for the domain they logged in to; for features
// that change while the server runs (XEP-0115 caps).
func (h *Host) AddStreamFeatureFunc(f router.StreamFeatureFunc) {
	h.regs = append(h.regs, h.router.AddStreamFeatureFunc(h.id, f))
}

// AddBindFeature makes fn the module's Bind 2 (XEP-0386) feature of
// namespace ns: clients may then ask for it inline when they bind, and the
// feature is listed in the Bind 2 stream feature.
func (h *Host) AddBindFeature(ns string, fn router.BindFeature) error {
	reg, err := h.router.AddBindFeature(h.id, ns, fn)
	if err != nil {
		return fmt.Errorf("%s: %w", h.id, err)
	}
	h.regs = append(h.regs, reg)
	return nil
}

// OnSessionAvailable attaches fn to sessions that sent initial presence.
func (h *Host) OnSessionAvailable(priority int, fn router.SessionHandler) {
	h.regs = append(h.regs, h.router.OnSessionAvailable(h.id, priority, fn))
}

// OnSessionEnd attaches fn to sessions that ended.
func (h *Host) OnSessionEnd(priority int, fn router.SessionHandler) {
	h.regs = append(h.regs, h.router.OnSessionEnd(h.id, priority, fn))
}

// Route sends a stanza the module made.
func (h *Host) Route(ctx context.Context, st *router.Stanza) { h.router.Route(ctx, st) }

// Set is the running modules of one server.
type Set struct {
	hosts   []*Host
	modules []Module
}

// Start builds and starts the modules named by ids, in order, each with its
// options from cfg's module_options. Options for a module that is not
// among ids are an error, as in Check. If one module fails, those already
// started are stopped again. w is the web server modules add routes to
// (nil without one: HandleHTTP then fails).
func Start(ctx context.Context, ids []string, r *router.Router, store storage.Store, cfg *config.Config, log *slog.Logger, w HTTP) (*Set, error) {
	if errs := checkOptionsBlocks(cfg, ids); len(errs) > 0 {
		return nil, fmt.Errorf("modules: %w", errors.Join(errs...))
	}
	set := &Set{}
	for _, id := range ids {
		e, ok := lookup(id)
		if !ok {
			set.Stop()
			return nil, fmt.Errorf("modules: unknown module %q (known: %v)", id, Known())
		}
		m, err := e.build(cfg)
		if err != nil {
			set.Stop()
			return nil, fmt.Errorf("modules: %s: %w", id, err)
		}
		h := &Host{id: id, router: r, store: store, cfg: cfg, log: log.With(slog.String("module", id)), web: w}
		set.hosts = append(set.hosts, h)
		set.modules = append(set.modules, m)
		if s, ok := m.(Starter); ok {
			if err := s.Start(ctx, h); err != nil {
				set.Stop()
				return nil, fmt.Errorf("modules: start %s: %w", id, err)
			}
		}
	}
	return set, nil
}

// Modules returns the running modules in start order, for the server's
// wiring to hand those that implement a listener's hook (such as c2s's
// pre-authentication IQ handler) to that listener.
func (s *Set) Modules() []Module { return slices.Clone(s.modules) }

// NotifyShutdown runs the modules' ShutdownNotifier, in reverse order.
func (s *Set) NotifyShutdown(ctx context.Context) {
	for i := len(s.modules) - 1; i >= 0; i-- {
		if n, ok := s.modules[i].(ShutdownNotifier); ok {
			n.NotifyShutdown(ctx)
		}
	}
}

// Stop stops the modules in reverse order and removes their registrations.
func (s *Set) Stop() error {
	var errs []error
	for i := len(s.modules) - 1; i >= 0; i-- {
		h := s.hosts[i]
		for _, reg := range h.regs {
			reg.Remove()
		}
		h.regs = nil
		if st, ok := s.modules[i].(Stopper); ok {
			if err := st.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("modules: stop %s: %w", h.id, err))
			}
		}
	}
	s.modules, s.hosts = nil, nil
	return errors.Join(errs...)
}
