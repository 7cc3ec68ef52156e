// Package modules is xmppd's module API: a module is a type that registers
// itself by ID in init(), is enabled by that ID in the configuration, and at
// start attaches typed handlers to the router through a Host that remembers
// every registration so that stopping the module removes them all.
package modules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// Module is implemented by every module. Only its identity is mandatory;
// Starter and Stopper are optional, so small modules stay small.
type Module interface {
	ModuleInfo() Info
}

// Info says what a module is called and how to build one.
type Info struct {
	// ID is the stable name the configuration enables the module by.
	ID string
	// New returns a fresh, unstarted instance.
	New func() Module
}

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

var (
	registryMu sync.RWMutex
	registry   = map[string]Info{}
)

// Register makes a module known by its ID. It is meant for init() and
// panics on a duplicate ID, which is a programming error.
func Register(info Info) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if info.ID == "" || info.New == nil {
		panic("modules: Register needs an ID and a constructor")
	}
	if _, dup := registry[info.ID]; dup {
		panic(fmt.Sprintf("modules: module %q registered twice", info.ID))
	}
	registry[info.ID] = info
}

// Known returns the IDs of all registered modules, sorted.
func Known() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	ids := make([]string, 0, len(registry))
	for id := range registry {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Host is what a module sees of the server. Every registration made through
// it is recorded and removed when the module stops.
type Host struct {
	id     string
	router *router.Router
	store  storage.Store
	cfg    *config.Config
	log    *slog.Logger
	regs   []router.Registration
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
	// Serves tells whether domain is a user domain of this server, and
	// Domains lists them.
	Serves(domain string) bool
	Domains() []string
	// Features lists the disco#info features advertised on target.
	Features(target router.Target) []string
	// SessionAvailable runs the "session available" handlers; the module
	// that tracks presence calls it until sessions fire it themselves.
	SessionAvailable(ctx context.Context, s router.Session)
}

// hostRouter is the Router a Host gives its module.
type hostRouter struct{ *router.Router }

var _ Router = hostRouter{}

func (r hostRouter) Sessions(bare jid.JID) []router.Session {
	return r.Router.Sessions().Sessions(bare)
}

func (r hostRouter) Session(full jid.JID) router.Session { return r.Router.Sessions().Lookup(full) }

// ID is the module's ID.
func (h *Host) ID() string { return h.id }

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

// AddStreamFeature advertises e to authenticated clients in the stream
// features.
func (h *Host) AddStreamFeature(e *router.Element) {
	h.regs = append(h.regs, h.router.AddStreamFeature(e))
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

// Start builds and starts the modules named by ids, in order. If one fails,
// those already started are stopped again.
func Start(ctx context.Context, ids []string, r *router.Router, store storage.Store, cfg *config.Config, log *slog.Logger) (*Set, error) {
	set := &Set{}
	for _, id := range ids {
		registryMu.RLock()
		info, ok := registry[id]
		registryMu.RUnlock()
		if !ok {
			set.Stop()
			return nil, fmt.Errorf("modules: unknown module %q (known: %v)", id, Known())
		}
		m := info.New()
		h := &Host{id: id, router: r, store: store, cfg: cfg, log: log.With(slog.String("module", id))}
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
