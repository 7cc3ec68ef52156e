// Package blocking implements XEP-0191, the blocking command: a user keeps a
// list of JIDs (domains, bare or full JIDs) with which the server then stops
// all communication in both directions, so that the user appears offline to
// them.
//
// Enforcement is a router filter, which sees every stanza. It must cost
// little (no allocation, no lock) and must never query the database per
// stanza for an online user, so the lists of accounts with bound sessions
// are kept in memory: loaded at first need, reloaded after every change,
// dropped when the account's last session ends, which bounds them by the
// accounts online. Accounts with no session are looked up in storage;
// stanzas for them are rare and mostly end in offline storage, which
// queries the database anyway.
package blocking

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/internal/keylock"
	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
)

// Namespaces of XEP-0191.
const (
	NS       = "urn:xmpp:blocking"
	NSErrors = "urn:xmpp:blocking:errors"
)

// FilterPriority runs the blocking filter ahead of every other filter
// (roster subscriptions, last's full-JID check, carbons, archives), so that
// a blocked stanza leaves no trace anywhere.
const FilterPriority = router.PriorityAccess

func init() {
	modules.RegisterWithOptions("blocking", DefaultOptions(), New)
}

// Options are the blocking module's settings, module_options.blocking.
type Options struct {
	// MaxItems bounds one blocklist.
	MaxItems int `yaml:"max_items"`
}

// DefaultOptions is a list longer than any person's, short enough to
// check for every stanza.
func DefaultOptions() Options { return Options{MaxItems: 1000} }

// Validate implements modules.Validator.
func (o *Options) Validate() error { return modules.MustBePositive("max_items", o.MaxItems) }

// New returns an unstarted blocking module with options o.
func New(o Options) *Blocking { return &Blocking{maxItems: o.MaxItems} }

// Blocking is the blocking command module.
type Blocking struct {
	h *modules.Host
	// maxItems bounds one blocklist (module_options.blocking.max_items), so that
	// a client cannot make the server hold an unbounded list in memory for
	// every stanza it filters.
	maxItems int
	// changes runs the changes of one account's list one after the
	// other, so that what a change reads first (the list, for the limit
	// and for whom to send presence) still holds when it writes, and
	// their answers, pushes and presence go out in order; no lock is held
	// while a change reads, writes or routes, so a filter or hook reached
	// from it may come back with another change of the same account.
	changes keylock.Ordered

	// lists holds the lists of accounts with bound sessions: for each
	// served domain (fixed when the router is made), a map from localpart
	// to *list. Reading it takes no lock, like the router's session
	// registry, and builds no key string, because the filter reads it
	// twice for every stanza; the domain lookup also tells whether a JID
	// is a local account at all.
	lists map[string]*sync.Map
	// mu serialises the writers of lists, which must check the account's
	// sessions and the epoch together with their write.
	mu sync.Mutex
	// epoch grows with every change of any list. A list read from storage
	// is kept only if no change happened while it was being read, so a
	// stale read never overwrites a newer list.
	epoch atomic.Uint64
}

var _ modules.Starter = (*Blocking)(nil)

// Start implements modules.Starter.
func (b *Blocking) Start(_ context.Context, h *modules.Host) error {
	b.h = h
	b.lists = map[string]*sync.Map{}
	for _, d := range h.Router().Domains() {
		b.lists[d] = new(sync.Map)
	}
	// XEP-0191 §3.1: clients ask the server (disco#info to the domain);
	// some ask their own account, which speaks for the same server.
	h.AddFeature(router.ToServer, NS)
	h.AddFeature(router.ToAccount, NS)
	if err := h.HandleIQ(router.ToAccount, stanza.GetIQ, NS, b.get); err != nil {
		return err
	}
	if err := h.HandleIQ(router.ToAccount, stanza.SetIQ, NS, b.set); err != nil {
		return err
	}
	h.AddFilter(FilterPriority, b.filter)
	h.OnSessionEnd(router.PriorityDefault, b.ended)
	return nil
}

// accountLists returns the lists of j's domain if j is (a resource of) a
// local account, else nil.
func (b *Blocking) accountLists(j jid.JID) *sync.Map {
	if j.Localpart() == "" {
		return nil
	}
	return b.lists[j.Domainpart()]
}

// listOf returns owner's list: from memory if the account has bound
// sessions, else from storage. owner is a bare JID and lists its domain's
// lists.
func (b *Blocking) listOf(ctx context.Context, lists *sync.Map, owner jid.JID) (*list, error) {
	if v, ok := lists.Load(owner.Localpart()); ok {
		return v.(*list), nil
	}
	epoch := b.epoch.Load()
	items, err := b.h.Store().Blocklists().List(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("blocking: load blocklist of %s: %w", owner, err)
	}
	l := newList(items)
	b.mu.Lock()
	// The session check is made under b.mu, as ended's is: a session that
	// ends after it has its list dropped by ended, and one that ended
	// before it is not counted, so no list outlives its sessions.
	if b.epoch.Load() == epoch && b.hasSessions(owner) {
		lists.LoadOrStore(owner.Localpart(), l)
	}
	b.mu.Unlock()
	return l, nil
}

// invalidate forgets owner's list after a change in storage; the next
// stanza loads the new one.
func (b *Blocking) invalidate(owner jid.JID) {
	b.mu.Lock()
	if lists := b.accountLists(owner); lists != nil {
		lists.Delete(owner.Localpart())
	}
	b.epoch.Add(1)
	b.mu.Unlock()
}

func (b *Blocking) hasSessions(owner jid.JID) bool {
	return len(b.h.Router().Sessions(owner)) > 0
}

// ended forgets what concerned a session that closed, and the account's
// list once its last session is gone.
func (b *Blocking) ended(_ context.Context, s router.Session) {
	owner := s.JID().Bare()
	b.mu.Lock()
	if lists := b.accountLists(owner); lists != nil && !b.hasSessions(owner) {
		lists.Delete(owner.Localpart())
	}
	b.mu.Unlock()
}

// cached tells whether owner's list is in memory, for tests.
func (b *Blocking) cached(owner jid.JID) bool {
	lists := b.accountLists(owner)
	if lists == nil {
		return false
	}
	_, ok := lists.Load(owner.Localpart())
	return ok
}

// logErr logs a failure with the account it concerns.
func (b *Blocking) logErr(msg string, owner jid.JID, err error) {
	b.h.Logger().Error(msg, slog.String("owner", owner.String()), slog.Any("err", err))
}
