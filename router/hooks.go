package router

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
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

// Priorities of hooks: higher runs first.
const (
	PriorityFirst   = 1000
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

// Registration is what adding a handler returns; Remove takes it away again,
// so a module that stops leaves nothing behind.
type Registration interface{ Remove() }

type removeFunc func()

func (f removeFunc) Remove() { f() }

// hooks holds the handlers. Readers load immutable snapshots through atomic
// pointers, so routing takes no lock; registration (rare) copies them.
type hooks struct {
	mu       sync.Mutex // serialises writers
	iq       atomic.Pointer[map[iqKey]iqEntry]
	stanza   atomic.Pointer[map[stanzaKey][]stanzaEntry]
	filters  atomic.Pointer[[]filterEntry]
	undeliv  atomic.Pointer[[]stanzaEntry]
	features atomic.Pointer[map[Target][]featureEntry]
	seq      int
}

type iqKey struct {
	target Target
	typ    string // get or set
	ns     string // payload namespace
}

type iqEntry struct {
	owner string
	h     IQHandler
}

type stanzaKey struct {
	target Target
	kind   string
}

type stanzaEntry struct {
	owner    string
	priority int
	seq      int
	h        StanzaHandler
}

type filterEntry struct {
	owner    string
	priority int
	seq      int
	f        Filter
}

type featureEntry struct {
	seq int
	ns  string
}

// HandleIQ registers h for IQs of type typ ("get" or "set") whose payload is
// in namespace ns, addressed to target. One handler per key: a second
// registration of the same key is an error.
func (r *Router) HandleIQ(owner string, target Target, typ, ns string, h IQHandler) (Registration, error) {
	k := iqKey{target, typ, ns}
	r.hooks.mu.Lock()
	defer r.hooks.mu.Unlock()
	old := loadMap(&r.hooks.iq)
	if e, dup := old[k]; dup {
		return nil, fmt.Errorf("router: iq %s %s %s already handled by %s", target, typ, ns, e.owner)
	}
	m := make(map[iqKey]iqEntry, len(old)+1)
	for kk, v := range old {
		m[kk] = v
	}
	m[k] = iqEntry{owner, h}
	r.hooks.iq.Store(&m)
	return removeFunc(func() {
		r.hooks.mu.Lock()
		defer r.hooks.mu.Unlock()
		old := loadMap(&r.hooks.iq)
		m := make(map[iqKey]iqEntry, len(old))
		for kk, v := range old {
			if kk != k {
				m[kk] = v
			}
		}
		r.hooks.iq.Store(&m)
	}), nil
}

// HandleStanza registers h for messages or presences (kind) addressed to
// target, run in priority order until one handles the stanza.
func (r *Router) HandleStanza(owner string, target Target, kind string, priority int, h StanzaHandler) Registration {
	k := stanzaKey{target, kind}
	r.hooks.mu.Lock()
	defer r.hooks.mu.Unlock()
	r.hooks.seq++
	seq := r.hooks.seq
	old := loadMap(&r.hooks.stanza)
	m := make(map[stanzaKey][]stanzaEntry, len(old)+1)
	for kk, v := range old {
		m[kk] = v
	}
	m[k] = sortedStanza(append(append([]stanzaEntry(nil), old[k]...), stanzaEntry{owner, priority, seq, h}))
	r.hooks.stanza.Store(&m)
	return removeFunc(func() {
		r.hooks.mu.Lock()
		defer r.hooks.mu.Unlock()
		old := loadMap(&r.hooks.stanza)
		m := make(map[stanzaKey][]stanzaEntry, len(old))
		for kk, v := range old {
			m[kk] = v
		}
		m[k] = withoutSeq(old[k], seq)
		r.hooks.stanza.Store(&m)
	})
}

// OnUndelivered registers h for messages to a local account that has no
// available resource (offline storage, archives). The first handler that
// returns true has taken responsibility for the message; if none does, the
// sender gets the RFC 6121 §8.5.2.2 error.
func (r *Router) OnUndelivered(owner string, priority int, h StanzaHandler) Registration {
	r.hooks.mu.Lock()
	defer r.hooks.mu.Unlock()
	r.hooks.seq++
	seq := r.hooks.seq
	var old []stanzaEntry
	if p := r.hooks.undeliv.Load(); p != nil {
		old = *p
	}
	list := sortedStanza(append(append([]stanzaEntry(nil), old...), stanzaEntry{owner, priority, seq, h}))
	r.hooks.undeliv.Store(&list)
	return removeFunc(func() {
		r.hooks.mu.Lock()
		defer r.hooks.mu.Unlock()
		list := withoutSeq(*r.hooks.undeliv.Load(), seq)
		r.hooks.undeliv.Store(&list)
	})
}

// AddFilter registers a pre-routing filter.
func (r *Router) AddFilter(owner string, priority int, f Filter) Registration {
	r.hooks.mu.Lock()
	defer r.hooks.mu.Unlock()
	r.hooks.seq++
	seq := r.hooks.seq
	var old []filterEntry
	if p := r.hooks.filters.Load(); p != nil {
		old = *p
	}
	list := append(append([]filterEntry(nil), old...), filterEntry{owner, priority, seq, f})
	sort.SliceStable(list, func(i, j int) bool { return list[i].priority > list[j].priority })
	r.hooks.filters.Store(&list)
	return removeFunc(func() {
		r.hooks.mu.Lock()
		defer r.hooks.mu.Unlock()
		var list []filterEntry
		for _, e := range *r.hooks.filters.Load() {
			if e.seq != seq {
				list = append(list, e)
			}
		}
		r.hooks.filters.Store(&list)
	})
}

// AddFeature advertises a disco#info feature on target (the server or
// every account), for as long as the registration lasts.
func (r *Router) AddFeature(target Target, ns string) Registration {
	r.hooks.mu.Lock()
	defer r.hooks.mu.Unlock()
	r.hooks.seq++
	seq := r.hooks.seq
	old := loadMap(&r.hooks.features)
	m := make(map[Target][]featureEntry, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[target] = append(append([]featureEntry(nil), old[target]...), featureEntry{seq, ns})
	r.hooks.features.Store(&m)
	return removeFunc(func() {
		r.hooks.mu.Lock()
		defer r.hooks.mu.Unlock()
		old := loadMap(&r.hooks.features)
		m := make(map[Target][]featureEntry, len(old))
		for k, v := range old {
			m[k] = v
		}
		var list []featureEntry
		for _, e := range old[target] {
			if e.seq != seq {
				list = append(list, e)
			}
		}
		m[target] = list
		r.hooks.features.Store(&m)
	})
}

// Features lists the features advertised on target, sorted and unique.
func (r *Router) Features(target Target) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range loadMap(&r.hooks.features)[target] {
		if !seen[e.ns] {
			seen[e.ns] = true
			out = append(out, e.ns)
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

func sortedStanza(list []stanzaEntry) []stanzaEntry {
	sort.SliceStable(list, func(i, j int) bool { return list[i].priority > list[j].priority })
	return list
}

func withoutSeq(list []stanzaEntry, seq int) []stanzaEntry {
	var out []stanzaEntry
	for _, e := range list {
		if e.seq != seq {
			out = append(out, e)
		}
	}
	return out
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
