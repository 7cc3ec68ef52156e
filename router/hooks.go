package router

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// Target says what a local handler is addressed as, in the manner of
// Prosody's event names: the server domain itself, or a user's bare JID (which
// includes stanzas a client sends with no 'to', RFC 6120 §10.3).
type Target int

// Targets of local handlers.
const (
	ToServer Target = iota
	ToAccount
)

func (t Target) String() string {
	if t == ToServer {
		return "server"
	}
	return "account"
}

// Priorities of hooks: higher runs first. The named levels say what runs
// there, so that modules that never see each other still run in an order
// that makes sense.
const (
	// PriorityAccess is for filters that decide whether a stanza may pass
	// at all (blocking): they run before everything else, so that a
	// refused stanza leaves no trace and gets the refusing module's answer.
	PriorityAccess = 1000
	// PriorityFirst is for filters and handlers that must see a stanza
	// before the ordinary ones but after access control (last's check of
	// queries to full JIDs).
	PriorityFirst   = 500
	PriorityDefault = 0
	PriorityLast    = -1000
)

// IQHandler answers an IQ request. It returns the response (a result or an
// error built with Reply or ErrorReply), or nil when it has sent or will send
// the response itself.
type IQHandler func(ctx context.Context, iq *Stanza) *Stanza

// StanzaHandler handles a message or presence addressed to a local target and
// reports whether it did; an unhandled stanza goes on to the next handler and
// finally to the router's default rule.
type StanzaHandler func(ctx context.Context, st *Stanza) (handled bool)

// Filter sees every stanza before it is routed (blocking, carbons, archive,
// …). It returns the stanza to route, changed or not, or nil to stop it.
type Filter func(ctx context.Context, st *Stanza) *Stanza

// DeliveryHook sees every stanza as it is handed to a session, whatever
// path brought it there (a routed stanza, a bounce, a roster push): the
// stage where carbons of received messages, stanza IDs, CSI holding back
// and blocking act on what one resource really gets. It returns the stanza
// to hand over, changed or not, or nil to suppress it; a suppressed stanza
// counts as taken, since the hook took responsibility for it. Hooks fold
// in priority order, each seeing what the one before returned.
type DeliveryHook func(ctx context.Context, s Session, st *Stanza) *Stanza

// UndeliveredHandler hears of a message to a local account that no
// resource could take. Every handler hears it (offline storage, an
// archive); stored says whether this one took responsibility for the
// message, so that the sender is answered only if nobody did. st is shared
// by the handlers: a handler copies what it keeps and changes nothing.
type UndeliveredHandler func(ctx context.Context, st *Stanza) (stored bool)

// Registration is what adding a handler returns; Remove takes it away again,
// so a module that stops leaves nothing behind.
type Registration interface{ Remove() }

type removeFunc func()

func (f removeFunc) Remove() { f() }

// hooks holds the handlers. Readers load immutable snapshots through atomic
// pointers, so routing takes no lock; registration (rare) copies them.
type hooks struct {
	mu       sync.Mutex // serialises writers
	iq       atomic.Pointer[map[iqKey]entry[IQHandler]]
	stanza   atomic.Pointer[map[stanzaKey][]entry[StanzaHandler]]
	filters  atomic.Pointer[[]entry[Filter]]
	delivery atomic.Pointer[[]entry[DeliveryHook]]
	undeliv  atomic.Pointer[[]entry[UndeliveredHandler]]
	features atomic.Pointer[map[Target][]entry[string]]
	idents   atomic.Pointer[map[Target][]entry[Identity]]
	// featureGen counts changes of features (FeatureGeneration).
	featureGen atomic.Uint64
	seq        int
}

type iqKey struct {
	target Target
	typ    string // get or set
	ns     string // payload namespace
	addr   string // the service address (HandleServiceIQ); "" for target's
}

// String names what the key is addressed to, for errors.
func (k iqKey) String() string {
	if k.addr != "" {
		return k.addr
	}
	return k.target.String()
}

type stanzaKey struct {
	target Target
	kind   string
}

// entry is one registered hook of any kind: who added it, where it runs in
// its list (higher priority first, then in order of registration) and the
// handler itself.
type entry[H any] struct {
	owner    string
	priority int
	seq      int
	h        H
}

// register adds a hook by copy-on-write: under the writers' lock it stores
// add(snapshot) as the new snapshot, and the Registration it returns stores
// remove(snapshot) the same way. Readers keep whatever snapshot they loaded.
func register[T any](hk *hooks, p *atomic.Pointer[T], add func(old T, seq int) T, remove func(old T, seq int) T) Registration {
	hk.mu.Lock()
	defer hk.mu.Unlock()
	hk.seq++
	seq := hk.seq
	swap(p, seq, add)
	return removeFunc(func() {
		hk.mu.Lock()
		defer hk.mu.Unlock()
		swap(p, seq, remove)
	})
}

// registerUnique adds h under k to a map that holds one handler per key.
// If k is taken, it changes nothing and reports the holder.
func registerUnique[K comparable, H any](hk *hooks, p *atomic.Pointer[map[K]entry[H]], k K, owner string, h H) (reg Registration, holder string, taken bool) {
	reg = register(hk, p,
		func(old map[K]entry[H], seq int) map[K]entry[H] {
			if e, ok := old[k]; ok {
				holder, taken = e.owner, true
				return old
			}
			return withKey(old, k, entry[H]{owner, PriorityDefault, seq, h})
		},
		func(old map[K]entry[H], seq int) map[K]entry[H] {
			if e, ok := old[k]; !ok || e.seq != seq {
				return old
			}
			m := maps.Clone(old)
			delete(m, k)
			return m
		})
	if taken {
		return nil, holder, true
	}
	return reg, "", false
}

func swap[T any](p *atomic.Pointer[T], seq int, change func(old T, seq int) T) {
	var old T
	if cur := p.Load(); cur != nil {
		old = *cur
	}
	next := change(old, seq)
	p.Store(&next)
}

// listAdder returns the add step of register for a priority-ordered list.
func listAdder[H any](owner string, priority int, h H) func([]entry[H], int) []entry[H] {
	return func(old []entry[H], seq int) []entry[H] {
		return inserted(old, entry[H]{owner, priority, seq, h})
	}
}

// inserted returns a copy of list with e placed after every entry of the
// same or higher priority.
func inserted[H any](list []entry[H], e entry[H]) []entry[H] {
	i := sort.Search(len(list), func(i int) bool { return list[i].priority < e.priority })
	out := make([]entry[H], 0, len(list)+1)
	out = append(out, list[:i]...)
	out = append(out, e)
	return append(out, list[i:]...)
}

// without returns a copy of list without the entry registered as seq.
func without[H any](list []entry[H], seq int) []entry[H] {
	out := make([]entry[H], 0, len(list))
	for _, e := range list {
		if e.seq != seq {
			out = append(out, e)
		}
	}
	return out
}

// keyedAdder and keyedRemover are the steps of register for a map of
// priority-ordered lists.
func keyedAdder[K comparable, H any](k K, owner string, priority int, h H) func(map[K][]entry[H], int) map[K][]entry[H] {
	return func(old map[K][]entry[H], seq int) map[K][]entry[H] {
		return withKey(old, k, inserted(old[k], entry[H]{owner, priority, seq, h}))
	}
}

func keyedRemover[K comparable, H any](k K) func(map[K][]entry[H], int) map[K][]entry[H] {
	return func(old map[K][]entry[H], seq int) map[K][]entry[H] {
		return withKey(old, k, without(old[k], seq))
	}
}

// withKey returns a copy of m with k set to v.
func withKey[K comparable, V any](m map[K]V, k K, v V) map[K]V {
	out := make(map[K]V, len(m)+1)
	for kk, vv := range m {
		out[kk] = vv
	}
	out[k] = v
	return out
}

// HandleIQ registers h for IQs of type typ ("get" or "set") whose payload is
// in namespace ns, addressed to target. One handler per key: a second
// registration of the same key is an error.
func (r *Router) HandleIQ(owner string, target Target, typ, ns string, h IQHandler) (Registration, error) {
	return r.addIQ(owner, iqKey{target: target, typ: typ, ns: ns}, h)
}

// addIQ registers the one IQ handler of k.
func (r *Router) addIQ(owner string, k iqKey, h IQHandler) (Registration, error) {
	reg, holder, taken := registerUnique(&r.hooks, &r.hooks.iq, k, owner, h)
	if taken {
		return nil, fmt.Errorf("router: iq %s %s %s already handled by %s", k, k.typ, k.ns, holder)
	}
	return reg, nil
}

// HandleStanza registers h for messages or presences (kind) addressed to
// target, run in priority order until one handles the stanza.
func (r *Router) HandleStanza(owner string, target Target, kind string, priority int, h StanzaHandler) Registration {
	k := stanzaKey{target, kind}
	return register(&r.hooks, &r.hooks.stanza, keyedAdder(k, owner, priority, h), keyedRemover[stanzaKey, StanzaHandler](k))
}

// OnUndelivered registers h for messages to a local account that has no
// available resource (offline storage, archives). It is an event: every
// handler hears of the message, in priority order, whether or not one
// before it stored it; if none stored it, the sender gets the RFC 6121
// §8.5.2.2 error.
func (r *Router) OnUndelivered(owner string, priority int, h UndeliveredHandler) Registration {
	return register(&r.hooks, &r.hooks.undeliv, listAdder(owner, priority, h), without[UndeliveredHandler])
}

// AddFilter registers a pre-routing filter.
func (r *Router) AddFilter(owner string, priority int, f Filter) Registration {
	return register(&r.hooks, &r.hooks.filters, listAdder(owner, priority, f), without[Filter])
}

// AddDeliveryHook registers a hook on every hand-over of a stanza to a
// session (see DeliveryHook).
func (r *Router) AddDeliveryHook(owner string, priority int, h DeliveryHook) Registration {
	return register(&r.hooks, &r.hooks.delivery, listAdder(owner, priority, h), without[DeliveryHook])
}

// AddFeature advertises a disco#info feature on target (the server or
// every account), for as long as the registration lasts.
func (r *Router) AddFeature(target Target, ns string) Registration {
	reg := register(&r.hooks, &r.hooks.features, keyedAdder(target, "", PriorityDefault, ns), keyedRemover[Target, string](target))
	r.hooks.featureGen.Add(1)
	return removeFunc(func() {
		reg.Remove()
		r.hooks.featureGen.Add(1)
	})
}

// Identity is a disco#info identity (XEP-0030 §3.1) that a module adds
// to a target beside the one disco gives it: pubsub/pep on accounts
// (XEP-0163 §4.1).
type Identity struct {
	Category, Type, Name string
}

// AddIdentity advertises an identity on target for as long as the
// registration lasts. It changes FeatureGeneration like a feature, since
// the XEP-0115 ver hashes identities too.
func (r *Router) AddIdentity(owner string, target Target, id Identity) Registration {
	reg := register(&r.hooks, &r.hooks.idents, keyedAdder(target, owner, PriorityDefault, id), keyedRemover[Target, Identity](target))
	r.hooks.featureGen.Add(1)
	return removeFunc(func() {
		reg.Remove()
		r.hooks.featureGen.Add(1)
	})
}

// Identities lists the identities modules added to target, without
// duplicates, in order of registration.
func (r *Router) Identities(target Target) []Identity {
	var out []Identity
	for _, e := range loadMap(&r.hooks.idents)[target] {
		if !slices.Contains(out, e.h) {
			out = append(out, e.h)
		}
	}
	return out
}

// FeatureGeneration changes whenever a feature is added or removed on any
// target, after Features shows the change: a value derived from Features
// (the XEP-0115 ver) that was computed under a generation read before
// Features stays valid while FeatureGeneration returns the same number.
func (r *Router) FeatureGeneration() uint64 { return r.hooks.featureGen.Load() }

// Features lists the features advertised on target, sorted and unique.
func (r *Router) Features(target Target) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range loadMap(&r.hooks.features)[target] {
		if !seen[e.h] {
			seen[e.h] = true
			out = append(out, e.h)
		}
	}
	sort.Strings(out)
	return out
}

func loadMap[K comparable, V any](p *atomic.Pointer[map[K]V]) map[K]V {
	if m := p.Load(); m != nil {
		return *m
	}
	return nil
}

// guardSession runs a session event handler, logging a panic with the
// handler's owner instead of crashing.
func (r *Router) guardSession(owner string, fn func()) {
	defer func() {
		if v := recover(); v != nil {
			r.log.Error("session handler panicked", slog.String("module", owner),
				slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
		}
	}()
	fn()
}

// guard runs fn, turning a panic into an error logged with the handler's
// owner: a crash in one module must not take the server down.
func (r *Router) guard(owner string, st *Stanza, fn func()) (panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			panicked = true
			r.log.Error("handler panicked", slog.String("module", owner),
				slog.String("stanza", st.Kind()), slog.Any("panic", v),
				slog.String("stack", string(debug.Stack())))
		}
	}()
	fn()
	return false
}
