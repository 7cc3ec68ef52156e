package caps

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
)

// Bounds on what one peer's disco#info answer may make the Resolver keep.
// Real clients advertise well under a hundred features (Conversations,
// Dino, Gajim: 40 to 90, +notify ones included) and one or two identities;
// a verified ver is cheap to make up, so the cache holds at most
// CacheSize times these.
const (
	MaxFeatures     = 512
	MaxIdentities   = 32
	MaxFeatureBytes = 32 << 10 // the features' vars together
	// MaxQueriesPerResource is how many disco#info queries one full JID
	// may cost while it is known (from its first available presence with
	// caps to its unavailable presence or the end of its session): a peer
	// that changes its ver at every presence stops being asked.
	MaxQueriesPerResource = 8
	// maxAttempts is how many advertisers of one ver are asked before the
	// ver is given up (and remembered as failed for FailureTTL).
	maxAttempts = 3
	// maxObservers bounds the local accounts one full JID is remembered as
	// available to.
	maxObservers = 1024
)

// Defaults of Options.
const (
	DefaultCacheSize    = 512
	DefaultWorkers      = 2
	DefaultQueueSize    = 256
	DefaultTimeout      = 10 * time.Second
	DefaultFailureTTL   = time.Minute
	DefaultMaxResources = 100000
)

// QueryFunc sends a disco#info request of the server's and waits for the
// answer: modules.Router.SendIQ, whose blocking wait is why the Resolver
// calls it only from its workers.
type QueryFunc func(ctx context.Context, iq *router.Stanza) (*router.Stanza, error)

// Options configure a Resolver. Query is required; zero values of the
// others take the defaults.
type Options struct {
	// Query sends the disco#info requests.
	Query QueryFunc
	// OnResolved, if set, is called for each observer a full JID is
	// available to when its features become known (from the cache at its
	// presence, or from an answer), and for a new observer when they are
	// already known: once per (observer, full JID) for each caps the JID
	// advertises. It runs on the goroutine that learnt them, with no lock
	// of the Resolver held: PEP
	// sends the last items of the nodes the resource is interested in.
	OnResolved func(observer, full jid.JID, f Features)
	// CacheSize is how many verified vers are remembered (least recently
	// used forgotten first).
	CacheSize int
	// Workers is how many queries run at once; QueueSize how many vers
	// may wait for a worker (more are dropped, to be tried again at the
	// advertiser's next presence).
	Workers, QueueSize int
	// Timeout bounds each query.
	Timeout time.Duration
	// FailureTTL is how long a ver that no advertiser answered for is not
	// asked again.
	FailureTTL time.Duration
	// MaxResources bounds the full JIDs remembered; the one whose presence
	// is oldest is forgotten first (a remote peer whose server went away
	// never sends unavailable).
	MaxResources int
	// Logger, if set, hears of mismatched hashes and failed queries.
	Logger *slog.Logger
}

// Resolver knows, for each full JID that sent available presence with
// caps to a local entity, the features it advertises (XEP-0115): from a
// cache of verified vers shared by every advertiser, or by asking the
// JID's disco#info (NODE#VER) from a small set of workers, at most one
// query per ver at a time. A module owns it: it feeds it presence
// (Presence, Forget), starts and stops it, and asks it which resources
// want a PEP node's notifications.
type Resolver struct {
	opt Options
	log *slog.Logger

	mu        sync.Mutex
	resources *lru[*resource]                 // full JID → what it advertises
	byBare    map[string]map[string]*resource // bare JID → full JID → resource
	cache     *lru[Features]                  // caps key → verified features
	fails     failures                        // caps keys given up lately
	flights   map[string]*flight              // caps key (or per-JID key) → query waiting or running
	queue     chan string                     // flight keys for the workers

	cancel context.CancelFunc
	wg     sync.WaitGroup

	// gaveUp, set by tests, hears of each flight that ended without a
	// verified answer to cache (failed, mismatched, or a resource's own).
	gaveUp func(key string)
}

// resource is what a full JID advertises.
type resource struct {
	jid       jid.JID
	caps      Caps
	features  Features
	known     bool
	observers map[string]jid.JID // local entities it is available to
	asker     jid.JID            // the one the queries are sent from
	queries   int
	failed    string // caps key it did not answer (or answered wrongly) for
}

// flight is a disco#info query to make for one caps key, with the
// resources waiting for its answer. A verifiable ver is shared: any of its
// advertisers may be asked, and the verified answer serves all. Otherwise
// (legacy caps, an unknown hash, a ver that cannot be a digest) the
// flight is the one resource's own.
type flight struct {
	shared   bool
	caps     Caps
	waiters  []jid.JID
	attempts int
}

// New returns a Resolver; it resolves nothing until Start.
func New(opt Options) (*Resolver, error) {
	if opt.Query == nil {
		return nil, errors.New("caps: new resolver: no query function")
	}
	opt.CacheSize = cmpOr(opt.CacheSize, DefaultCacheSize)
	opt.Workers = cmpOr(opt.Workers, DefaultWorkers)
	opt.QueueSize = cmpOr(opt.QueueSize, DefaultQueueSize)
	opt.Timeout = cmpOr(opt.Timeout, DefaultTimeout)
	opt.FailureTTL = cmpOr(opt.FailureTTL, DefaultFailureTTL)
	opt.MaxResources = cmpOr(opt.MaxResources, DefaultMaxResources)
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Resolver{
		opt:     opt,
		log:     log,
		byBare:  map[string]map[string]*resource{},
		cache:   newLRU[Features](opt.CacheSize),
		fails:   failures{ttl: opt.FailureTTL, m: newLRU[time.Time](opt.CacheSize)},
		flights: map[string]*flight{},
		queue:   make(chan string, opt.QueueSize),
	}
	r.resources = newLRU[*resource](opt.MaxResources)
	r.resources.evicted = func(_ string, res *resource) { r.unindex(res) }
	return r, nil
}

func cmpOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Start starts the workers; Stop ends them. ctx bounds their queries.
func (r *Resolver) Start(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		return
	}
	ctx, r.cancel = context.WithCancel(ctx)
	for range r.opt.Workers {
		r.wg.Add(1)
		go r.work(ctx)
	}
}

// Stop ends the workers, cancelling the queries they wait for, and
// returns when they are gone.
func (r *Resolver) Stop() {
	r.mu.Lock()
	cancel := r.cancel
	r.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	r.wg.Wait()
}

// resolved is a callback to make once the lock is released.
type resolved struct {
	observer, full jid.JID
	f              Features
}

// learnt sets res's features and returns the callbacks to make, one per
// observer. r.mu is held.
func learnt(res *resource, f Features) []resolved {
	res.features, res.known = f, true
	done := make([]resolved, 0, len(res.observers))
	for _, o := range res.observers {
		done = append(done, resolved{o, res.jid, f})
	}
	return done
}

func (r *Resolver) notify(done []resolved) {
	if r.opt.OnResolved == nil {
		return
	}
	for _, d := range done {
		r.opt.OnResolved(d.observer, d.full, d.f)
	}
}

// Presence takes what a presence from a full JID to observer (the local
// account, by bare JID, or the served domain that received it, and that
// the disco#info queries are sent from) tells: an available presence with
// <c/> sets the caps the JID advertises, and one without keeps them (a
// server may strip unchanged caps, XEP-0115 §8.4); an unavailable presence
// forgets the JID once no observer has it available. Other types are
// ignored. It never waits for a query: features known from the cache are
// set (and OnResolved called) at once, others are queued.
func (r *Resolver) Presence(observer jid.JID, st *router.Stanza) {
	full := st.From
	if full.Resourcepart() == "" || st.Kind() != router.KindPresence {
		return
	}
	switch st.Type() {
	case "":
		c, ok := FromPresence(st)
		r.available(observer.Bare(), full, c, ok)
	case "unavailable":
		r.unavailable(observer.Bare(), full)
	}
}

func (r *Resolver) available(observer, full jid.JID, c Caps, hasCaps bool) {
	r.mu.Lock()
	res, ok := r.resources.get(full.String())
	if !ok {
		if !hasCaps {
			r.mu.Unlock()
			return
		}
		res = &resource{jid: full, observers: map[string]jid.JID{}}
		r.resources.put(full.String(), res)
		bare := bareKey(full)
		if r.byBare[bare] == nil {
			r.byBare[bare] = map[string]*resource{}
		}
		r.byBare[bare][full.String()] = res
	}
	_, seen := res.observers[observer.String()]
	if seen || len(res.observers) < maxObservers {
		res.observers[observer.String()] = observer
	}
	res.asker = observer
	var done []resolved
	if !seen && res.known && (!hasCaps || res.caps == c) {
		// Known already; new to this observer.
		done = []resolved{{observer, full, res.features}}
	}
	if hasCaps && (res.caps != c || !res.known) {
		if res.caps != c {
			res.caps, res.known, res.features = c, false, Features{}
		}
		done = r.learn(res)
	}
	r.mu.Unlock()
	r.notify(done)
}

// learn finds res's features in the cache or queues the query for them.
// r.mu is held.
func (r *Resolver) learn(res *resource) []resolved {
	c := res.caps
	shared := !c.Legacy() && plausible(c.Hash, c.Ver)
	key := c.key()
	if shared {
		if f, ok := r.cache.get(key); ok {
			return learnt(res, f)
		}
		if r.fails.recent(key, time.Now()) {
			return nil
		}
	} else {
		key = "\x00" + res.jid.String()
	}
	if res.failed == c.key() {
		return nil
	}
	if fl := r.flights[key]; fl != nil {
		// A resource's own flight follows its latest caps; one whose
		// query is running is not among the waiters, and waits again
		// for the next attempt if that query was for older caps.
		if !shared {
			fl.caps = c
		}
		if !slices.ContainsFunc(fl.waiters, res.jid.Equal) {
			fl.waiters = append(fl.waiters, res.jid)
		}
		return nil
	}
	if res.queries >= MaxQueriesPerResource {
		r.log.Debug("caps: too many queries for one resource", "jid", res.jid)
		return nil
	}
	fl := &flight{shared: shared, caps: c, waiters: []jid.JID{res.jid}}
	r.enqueue(key, fl)
	return nil
}

// enqueue hands a flight to the workers, or drops it when the queue is
// full: the advertisers' next presence tries again. r.mu is held.
func (r *Resolver) enqueue(key string, fl *flight) {
	select {
	case r.queue <- key:
		r.flights[key] = fl
	default:
		delete(r.flights, key)
		r.log.Debug("caps: query queue full", "ver", fl.caps.Ver)
	}
}

func (r *Resolver) unavailable(observer, full jid.JID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.resources.get(full.String())
	if !ok {
		return
	}
	delete(res.observers, observer.String())
	if len(res.observers) == 0 {
		r.resources.remove(full.String())
		r.unindex(res)
	}
}

// Forget forgets a full JID at once, whoever it was available to: a local
// session that ended, or a remote one whose server is gone.
func (r *Resolver) Forget(full jid.JID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if res, ok := r.resources.get(full.String()); ok {
		r.resources.remove(full.String())
		r.unindex(res)
	}
}

// unindex removes res from byBare. r.mu is held.
func (r *Resolver) unindex(res *resource) {
	bare := bareKey(res.jid)
	delete(r.byBare[bare], res.jid.String())
	if len(r.byBare[bare]) == 0 {
		delete(r.byBare, bare)
	}
}

// Features returns the features a full JID advertises, and false while
// they are not known (no caps, or not resolved yet, or never resolved).
func (r *Resolver) Features(full jid.JID) (Features, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.resources.peek(full.String())
	if !ok {
		return Features{}, false
	}
	return res.features, res.known
}

// AvailableTo tells whether full's last presence to observer (a bare JID
// or domain, as given to Presence) was available, with caps known or not:
// a resource that sent observer directed unavailable presence is not,
// although it may be available to others.
func (r *Resolver) AvailableTo(observer, full jid.JID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.resources.peek(full.String())
	if !ok {
		return false
	}
	_, ok = res.observers[observer.Bare().String()]
	return ok
}

// Interested tells whether a full JID wants the notifications of the PEP
// node: it advertises node+"+notify" (XEP-0163 §4.4).
func (r *Resolver) Interested(full jid.JID, node string) bool {
	f, ok := r.Features(full)
	return ok && f.Has(Notify(node))
}

// InterestedResources returns the known full JIDs of bare (local or
// remote) that advertise node+"+notify", sorted. Whether they may have
// the node's items is the caller's to decide.
func (r *Resolver) InterestedResources(bare jid.JID, node string) []jid.JID {
	want := Notify(node)
	r.mu.Lock()
	var out []jid.JID
	for _, res := range r.byBare[bareKey(bare)] {
		if res.known && res.features.Has(want) {
			out = append(out, res.jid)
		}
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b jid.JID) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// work runs flights until ctx ends.
func (r *Resolver) work(ctx context.Context) {
	defer r.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case key := <-r.queue:
			r.resolve(ctx, key)
		}
	}
}

// resolve asks one advertiser of the flight key and hands out the answer.
func (r *Resolver) resolve(ctx context.Context, key string) {
	r.mu.Lock()
	fl := r.flights[key]
	target, asker, node, ok := r.pick(fl)
	if !ok {
		if fl != nil {
			delete(r.flights, key)
		}
		r.mu.Unlock()
		return
	}
	c := fl.caps
	r.mu.Unlock()

	info, err := r.query(ctx, asker, target, node)

	r.mu.Lock()
	var done []resolved
	verified := false
	switch {
	case err != nil:
		r.log.Debug("caps: disco#info", "jid", target, "node", node, "err", err)
		if res := r.advertising(target, c); res != nil {
			res.failed = c.key()
		}
	case fl.shared && r.verify(info, c, target):
		verified = true
		f := NewFeatures(info.Features...)
		r.cache.put(key, f)
		for _, w := range append(fl.waiters, target) {
			if res := r.advertising(w, c); res != nil && !res.known {
				done = append(done, learnt(res, f)...)
			}
		}
		delete(r.flights, key)
	default:
		// Unverifiable or mismatched: the features are this JID's own.
		if res := r.advertising(target, c); res != nil {
			if fl.shared {
				res.failed = c.key()
			}
			done = learnt(res, NewFeatures(info.Features...))
		}
	}
	var gaveUp bool
	if !verified {
		gaveUp = r.retry(key, fl, err != nil)
	}
	hook := r.gaveUp
	r.mu.Unlock()
	r.notify(done)
	if gaveUp && hook != nil {
		hook(key)
	}
}

// pick takes the next advertiser to ask off the flight's waiters, the
// entity to ask from, and the disco node to ask for (the advertiser's own
// NODE#VER: clients sharing a ver may name their software differently).
// r.mu is held.
func (r *Resolver) pick(fl *flight) (target, asker jid.JID, node string, ok bool) {
	if fl == nil {
		return jid.JID{}, jid.JID{}, "", false
	}
	for len(fl.waiters) > 0 {
		w := fl.waiters[0]
		fl.waiters = fl.waiters[1:]
		res := r.advertising(w, fl.caps)
		if res == nil || res.failed == fl.caps.key() || res.queries >= MaxQueriesPerResource {
			continue
		}
		res.queries++
		asker := res.asker
		if _, still := res.observers[asker.String()]; !still {
			for _, o := range res.observers {
				asker = o
				break
			}
		}
		return w, asker, res.caps.QueryNode(), true
	}
	return jid.JID{}, jid.JID{}, "", false
}

// advertising returns the resource of full if it still advertises c's
// hash and ver (whatever its node). r.mu is held.
func (r *Resolver) advertising(full jid.JID, c Caps) *resource {
	res, ok := r.resources.peek(full.String())
	if !ok || res.caps.key() != c.key() {
		return nil
	}
	return res
}

// retry queues the flight again for its next waiter, or gives it up and,
// for a shared ver, remembers that for FailureTTL. It tells whether it
// gave up. r.mu is held.
func (r *Resolver) retry(key string, fl *flight, failed bool) bool {
	fl.attempts++
	if len(fl.waiters) > 0 && fl.attempts < maxAttempts {
		r.enqueue(key, fl)
		return false
	}
	delete(r.flights, key)
	if fl.shared && (failed || len(fl.waiters) > 0) {
		r.fails.failed(key, time.Now())
	}
	return true
}

// verify tells whether info is well-formed and hashes to c's ver, logging
// why not. r.mu is held.
func (r *Resolver) verify(info Info, c Caps, from jid.JID) bool {
	if err := info.Check(); err != nil {
		r.log.Info("caps: not caching an ill-formed answer", "jid", from, "ver", c.Ver, "err", err)
		return false
	}
	if got, _ := VerHash(info, c.Hash); got != c.Ver {
		r.log.Info("caps: disco#info does not match the advertised ver; not cached", "jid", from, "ver", c.Ver, "hash", c.Hash, "computed", got)
		return false
	}
	return true
}

// query asks target for its disco#info at node, from asker, within the
// timeout, and bounds what the answer may hold.
func (r *Resolver) query(ctx context.Context, asker, target jid.JID, node string) (Info, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opt.Timeout)
	defer cancel()
	q := router.NewElement(NSDiscoInfo, "query", "node", node)
	iq := &router.Stanza{Element: router.NewElement("", "iq", "type", "get").Append(q)}
	iq.SetFrom(asker)
	iq.SetTo(target)
	resp, err := r.opt.Query(ctx, iq)
	if err != nil {
		return Info{}, fmt.Errorf("caps: query %s: %w", target, err)
	}
	answer := resp.Child(NSDiscoInfo, "query")
	if answer == nil {
		return Info{}, fmt.Errorf("caps: query %s: answer without disco#info", target)
	}
	info := ParseInfo(answer)
	size := 0
	for _, f := range info.Features {
		size += len(f)
	}
	if len(info.Features) > MaxFeatures || len(info.Identities) > MaxIdentities || size > MaxFeatureBytes {
		return Info{}, fmt.Errorf("caps: query %s: answer too large (%d features, %d identities, %d bytes)", target, len(info.Features), len(info.Identities), size)
	}
	return info, nil
}
