package caps_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/routertest"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/modules/caps"
	"github.com/xmppd/xmppd/router"
)

// The resolver's tests run it on a real router: its queries are the
// router's SendIQ from a local account to peers bound as sessions, which
// answer (or not) as each test says.

// owner is the local account the presences are for, which the queries
// are sent from.
var owner = jid.MustParse("owner@" + routertest.Domain)

// guard bounds a wait for something that must happen; reaching it fails
// the test.
const guard = 10 * time.Second

type event struct {
	observer, full jid.JID
	f              caps.Features
}

type harness struct {
	t        *testing.T
	rt       *router.Router
	res      *caps.Resolver
	resolved chan event
	gaveUp   chan string
}

// newHarness starts a resolver with opt (Query and OnResolved set here) on
// a new router.
func newHarness(t *testing.T, opt caps.Options) *harness {
	t.Helper()
	db := storetest.Open(t, storetest.Backends(t)[0])
	h := &harness{
		t:        t,
		rt:       router.New(slog.New(slog.DiscardHandler), router.NewLocalRegistry(), routertest.Accounts{Users: db.Users()}, []string{routertest.Domain}),
		resolved: make(chan event, 64),
		gaveUp:   make(chan string, 64),
	}
	opt.Query = h.rt.SendIQ
	opt.OnResolved = func(observer, full jid.JID, f caps.Features) { h.resolved <- event{observer, full, f} }
	res, err := caps.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	res.OnGaveUp(func(key string) { h.gaveUp <- key })
	res.Start(context.Background())
	t.Cleanup(res.Stop)
	h.res = res
	return h
}

// peer is a bound session that hands the IQ requests it gets to the test.
// It is a routertest.Sink but for Deliver.
type peer struct {
	*routertest.Sink
	jid      jid.JID
	rt       *router.Router
	requests chan *router.Stanza
}

func (p *peer) Deliver(st *router.Stanza) bool {
	if st.IsIQRequest() {
		select {
		case p.requests <- st:
		default:
			return false
		}
	}
	return true
}

func (h *harness) peer(full string) *peer {
	h.t.Helper()
	j := jid.MustParse(full)
	p := &peer{Sink: routertest.NewSink(j), jid: j, rt: h.rt, requests: make(chan *router.Stanza, 16)}
	if _, err := h.rt.Sessions().Bind(p, 0); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// presence gives the resolver an available presence from p to owner with
// c, or an unavailable one if c is nil.
func (h *harness) presence(p *peer, c *caps.Caps) {
	st := &router.Stanza{Element: router.NewElement("", "presence")}
	if c == nil {
		st.SetAttr("type", "unavailable")
	} else {
		st.Append(router.NewElement(caps.NS, "c", "hash", c.Hash, "node", c.Node, "ver", c.Ver))
	}
	st.SetFrom(p.jid)
	st.SetTo(owner)
	h.res.Presence(owner, st)
}

// request waits for the disco#info request p gets and checks it asks
// for c's node from owner.
func (p *peer) request(t *testing.T, c caps.Caps) *router.Stanza {
	t.Helper()
	select {
	case req := <-p.requests:
		q := req.Child(caps.NSDiscoInfo, "query")
		if q == nil || q.Get("node") != c.QueryNode() || !req.From.Equal(owner) {
			t.Fatalf("%s got %s; want disco#info for node %s from %s", p.jid, req, c.QueryNode(), owner)
		}
		return req
	case <-time.After(guard):
		t.Fatalf("%s got no disco#info request", p.jid)
		return nil
	}
}

// noRequest checks p has not been asked anything.
func (p *peer) noRequest(t *testing.T) {
	t.Helper()
	select {
	case req := <-p.requests:
		t.Fatalf("%s was asked %s; want no request", p.jid, req)
	default:
	}
}

// answer routes p's answer to req: a result with info.
func (p *peer) answer(req *router.Stanza, info *router.Element) {
	resp := &router.Stanza{Element: router.NewElement("", "iq", "type", "result", "id", req.ID()).Append(info)}
	resp.SetFrom(p.jid)
	resp.SetTo(req.From)
	p.rt.Route(context.Background(), resp)
}

// waitResolved waits for the callbacks for owner of the JIDs given, in
// any order, and returns the features each got.
func (h *harness) waitResolved(want ...jid.JID) map[string]caps.Features {
	h.t.Helper()
	return h.waitResolvedFor(owner, want...)
}

func (h *harness) waitResolvedFor(observer jid.JID, want ...jid.JID) map[string]caps.Features {
	h.t.Helper()
	got := map[string]caps.Features{}
	for len(got) < len(want) {
		select {
		case e := <-h.resolved:
			if !e.observer.Equal(observer) {
				h.t.Fatalf("resolved %s for %s; want for %s", e.full, e.observer, observer)
			}
			if !slices.ContainsFunc(want, e.full.Equal) {
				h.t.Fatalf("resolved %s; want only %v", e.full, want)
			}
			if _, twice := got[e.full.String()]; twice {
				h.t.Fatalf("resolved %s twice", e.full)
			}
			got[e.full.String()] = e.f
		case <-time.After(guard):
			h.t.Fatalf("resolved %v; want %v", got, want)
		}
	}
	return got
}

func (h *harness) noResolved() {
	h.t.Helper()
	select {
	case e := <-h.resolved:
		h.t.Fatalf("resolved %s; want nothing", e.full)
	default:
	}
}

func (h *harness) waitGaveUp() {
	h.t.Helper()
	select {
	case <-h.gaveUp:
	case <-time.After(guard):
		h.t.Fatal("the query was not given up")
	}
}

// info is a client's disco#info with the features given, and the caps a
// client with it advertises.
func info(features ...string) (*router.Element, caps.Caps) {
	q := router.NewElement(caps.NSDiscoInfo, "query").Append(
		router.NewElement(caps.NSDiscoInfo, "identity", "category", "client", "type", "phone", "name", "Test"))
	for _, f := range features {
		q.Append(router.NewElement(caps.NSDiscoInfo, "feature", "var", f))
	}
	return q, caps.Caps{Node: "https://example.org/client", Hash: caps.SHA1, Ver: caps.Ver(caps.ParseInfo(q))}
}

const avatar = "urn:xmpp:avatar:metadata"

// TestResolveSharedVer checks the path of a verified ver: two resources
// advertising it cost one query, whose answer serves both; a third gets it
// from the cache at its presence, with no query.
func TestResolveSharedVer(t *testing.T) {
	h := newHarness(t, caps.Options{})
	q, c := info(caps.NSDiscoInfo, avatar+"+notify", "urn:xmpp:bookmarks:1+notify")
	a, b := h.peer("alice@localhost/phone"), h.peer("alice@localhost/laptop")
	h.presence(a, &c)
	h.presence(b, &c)
	req := a.request(t, c)
	if _, ok := h.res.Features(a.jid); ok {
		t.Error("features known before the answer")
	}
	a.answer(req, q)
	got := h.waitResolved(a.jid, b.jid)
	b.noRequest(t)
	if f := got[b.jid.String()]; !f.Has(avatar+"+notify") || f.Len() != 3 {
		t.Errorf("b's features %v", f.List())
	}
	if n, ok := h.res.Cached(c.Hash, c.Ver); n != 1 || !ok {
		t.Errorf("cache holds %d vers, ours %v; want 1, true", n, ok)
	}

	other := h.peer("carol@localhost/desk")
	h.presence(other, &c)
	h.waitResolved(other.jid) // from the cache, during Presence
	other.noRequest(t)
	if n := h.res.Flights(); n != 0 {
		t.Errorf("%d queries pending after a cache hit", n)
	}

	for _, tc := range []struct {
		full       jid.JID
		node       string
		interested bool
	}{
		{a.jid, avatar, true},
		{b.jid, "urn:xmpp:bookmarks:1", true},
		{other.jid, "urn:xmpp:omemo:2:devices", false},
		{jid.MustParse("dave@localhost/x"), avatar, false},
	} {
		if got := h.res.Interested(tc.full, tc.node); got != tc.interested {
			t.Errorf("Interested(%s, %s) = %v; want %v", tc.full, tc.node, got, tc.interested)
		}
	}
	alice := jid.MustParse("alice@localhost")
	if got := h.res.InterestedResources(alice, avatar); !slices.EqualFunc(got, []jid.JID{b.jid, a.jid}, jid.JID.Equal) {
		t.Errorf("InterestedResources(alice, avatar) = %v; want laptop and phone", got)
	}
	if got := h.res.InterestedResources(alice, "urn:other"); len(got) != 0 {
		t.Errorf("InterestedResources(alice, urn:other) = %v; want none", got)
	}
}

// TestMismatchNotCached checks that an answer that does not hash to the
// advertised ver serves only the JID that gave it and is not cached, and
// that the next advertiser of the ver is asked instead (XEP-0115 §5.4).
func TestMismatchNotCached(t *testing.T) {
	h := newHarness(t, caps.Options{})
	q, c := info(avatar + "+notify")
	lie, _ := info("urn:evil+notify")
	mallory, bob := h.peer("mallory@localhost/x"), h.peer("bob@localhost/y")
	h.presence(mallory, &c)
	h.presence(bob, &c)
	mallory.answer(mallory.request(t, c), lie)
	if f := h.waitResolved(mallory.jid)[mallory.jid.String()]; !f.Has("urn:evil+notify") {
		t.Errorf("mallory's features %v; want its own answer", f.List())
	}
	if _, ok := h.res.Cached(c.Hash, c.Ver); ok {
		t.Fatal("a mismatched answer was cached")
	}
	bob.answer(bob.request(t, c), q)
	if f := h.waitResolved(bob.jid)[bob.jid.String()]; !f.Has(avatar+"+notify") || f.Has("urn:evil+notify") {
		t.Errorf("bob's features %v", f.List())
	}
	if _, ok := h.res.Cached(c.Hash, c.Ver); !ok {
		t.Error("the verified answer was not cached")
	}
	if h.res.Interested(mallory.jid, avatar) || !h.res.Interested(mallory.jid, "urn:evil") {
		t.Error("mallory's features changed by bob's answer")
	}
}

// TestUnverifiable checks caps whose ver cannot be verified: each JID is
// asked for its own, nothing is cached, and two JIDs with the same such
// ver are asked each.
func TestUnverifiable(t *testing.T) {
	q, _ := info(avatar + "+notify")
	for _, c := range []caps.Caps{
		{Node: "http://psi-im.org/caps", Ver: "0.11"},                               // legacy: no hash
		{Node: "https://example.org", Hash: "md5", Ver: "kJ0bvUK3i0p3ZUb5JNXRjQ=="}, // untrusted hash
		{Node: "https://example.org", Hash: caps.SHA1, Ver: "not-a-digest"},         // bogus ver
	} {
		t.Run(c.Hash+" "+c.Ver, func(t *testing.T) {
			h := newHarness(t, caps.Options{})
			a, b := h.peer("alice@localhost/a"), h.peer("bob@localhost/b")
			h.presence(a, &c)
			h.presence(b, &c)
			a.answer(a.request(t, c), q)
			b.answer(b.request(t, c), q)
			h.waitResolved(a.jid, b.jid)
			if n, _ := h.res.Cached(c.Hash, c.Ver); n != 0 {
				t.Errorf("%d vers cached; want none", n)
			}
			if !h.res.Interested(a.jid, avatar) || !h.res.Interested(b.jid, avatar) {
				t.Error("features of the JIDs not kept")
			}
		})
	}
}

// TestTimeout checks a peer that never answers: the query is given up
// after the timeout, the features stay unknown, and neither it nor
// another advertiser of the ver is asked again soon.
func TestTimeout(t *testing.T) {
	h := newHarness(t, caps.Options{Timeout: 20 * time.Millisecond})
	_, c := info(avatar + "+notify")
	silent, late := h.peer("silent@localhost/x"), h.peer("late@localhost/y")
	h.presence(silent, &c)
	silent.request(t, c)
	h.waitGaveUp()
	if _, ok := h.res.Features(silent.jid); ok {
		t.Error("features known without an answer")
	}
	h.presence(silent, &c)
	h.presence(late, &c)
	if n := h.res.Flights(); n != 0 {
		t.Errorf("%d queries queued for a ver that just failed", n)
	}
	late.noRequest(t)
	h.noResolved()

	// The workers are free: another ver resolves.
	q2, c2 := info("urn:other+notify")
	h.presence(late, &c2)
	late.answer(late.request(t, c2), q2)
	h.waitResolved(late.jid)
}

// TestForget checks that an unavailable presence from the last observer
// and the end of a session forget what a JID advertised.
func TestForget(t *testing.T) {
	h := newHarness(t, caps.Options{})
	q, c := info(avatar + "+notify")
	a, b := h.peer("alice@localhost/a"), h.peer("alice@localhost/b")
	h.presence(a, &c)
	h.presence(b, &c)
	a.answer(a.request(t, c), q)
	h.waitResolved(a.jid, b.jid)

	// Available to another local account too: one unavailable is not
	// enough.
	second := jid.MustParse("second@localhost")
	st := &router.Stanza{Element: router.NewElement("", "presence")}
	st.SetFrom(a.jid)
	h.res.Presence(second, st) // no <c/>: keeps what a advertises
	h.waitResolvedFor(second, a.jid)
	h.res.Presence(second, st) // not new to second: no callback
	h.noResolved()
	h.presence(a, nil)
	if !h.res.Interested(a.jid, avatar) {
		t.Error("forgotten while still available to another account")
	}
	if h.res.AvailableTo(owner, a.jid) || !h.res.AvailableTo(second, a.jid) {
		t.Errorf("AvailableTo owner %v, second %v; want false, true", h.res.AvailableTo(owner, a.jid), h.res.AvailableTo(second, a.jid))
	}
	un := &router.Stanza{Element: router.NewElement("", "presence", "type", "unavailable")}
	un.SetFrom(a.jid)
	h.res.Presence(second, un)
	if _, ok := h.res.Features(a.jid); ok {
		t.Error("features kept after the last unavailable presence")
	}
	h.res.Forget(b.jid)
	if _, ok := h.res.Features(b.jid); ok {
		t.Error("features kept after Forget")
	}
	if got := h.res.InterestedResources(jid.MustParse("alice@localhost"), avatar); len(got) != 0 {
		t.Errorf("InterestedResources = %v after both left", got)
	}
	if n := h.res.Resources(); n != 0 {
		t.Errorf("%d resources remembered", n)
	}
	// The ver stays cached: coming back costs no query.
	h.presence(a, &c)
	h.waitResolved(a.jid)
	a.noRequest(t)
}

// TestBounds checks what hostile peers cannot make the resolver keep or
// do: a huge answer, a new ver at every presence, more vers and JIDs than
// the bounds.
func TestBounds(t *testing.T) {
	t.Run("huge answer", func(t *testing.T) {
		h := newHarness(t, caps.Options{})
		features := make([]string, caps.MaxFeatures+1)
		for i := range features {
			features[i] = fmt.Sprintf("urn:f:%d", i)
		}
		q, c := info(features...)
		p := h.peer("huge@localhost/x")
		h.presence(p, &c)
		p.answer(p.request(t, c), q)
		h.waitGaveUp()
		if _, ok := h.res.Features(p.jid); ok {
			t.Error("features of a huge answer kept")
		}
		if n, _ := h.res.Cached(c.Hash, c.Ver); n != 0 {
			t.Error("a huge answer was cached")
		}
	})
	t.Run("a new ver at every presence", func(t *testing.T) {
		h := newHarness(t, caps.Options{})
		p := h.peer("churn@localhost/x")
		for i := range caps.MaxQueriesPerResource + 1 {
			q, c := info(fmt.Sprintf("urn:v:%d", i))
			h.presence(p, &c)
			if i == caps.MaxQueriesPerResource {
				if n := h.res.Flights(); n != 0 {
					t.Errorf("query %d queued; want at most %d per resource", i+1, caps.MaxQueriesPerResource)
				}
				p.noRequest(t)
				break
			}
			p.answer(p.request(t, c), q)
			h.waitResolved(p.jid)
		}
	})
	t.Run("cache and resources", func(t *testing.T) {
		h := newHarness(t, caps.Options{CacheSize: 2, MaxResources: 2})
		var vers []caps.Caps
		var peers []*peer
		for i := range 3 {
			q, c := info(fmt.Sprintf("urn:v:%d", i))
			p := h.peer(fmt.Sprintf("u%d@localhost/x", i))
			h.presence(p, &c)
			p.answer(p.request(t, c), q)
			h.waitResolved(p.jid)
			vers, peers = append(vers, c), append(peers, p)
		}
		if n, ok := h.res.Cached(vers[0].Hash, vers[0].Ver); n != 2 || ok {
			t.Errorf("cache holds %d vers, the oldest %v; want 2, false", n, ok)
		}
		if n, ok := h.res.Cached(vers[2].Hash, vers[2].Ver); n != 2 || !ok {
			t.Errorf("cache holds %d vers, the newest %v; want 2, true", n, ok)
		}
		if n := h.res.Resources(); n != 2 {
			t.Errorf("%d resources; want 2", n)
		}
		if _, ok := h.res.Features(peers[0].jid); ok {
			t.Error("the oldest resource was not forgotten")
		}
		if got := h.res.InterestedResources(jid.MustParse("u0@localhost"), "urn:v:0"); len(got) != 0 {
			t.Errorf("forgotten resource still listed: %v", got)
		}
	})
}

// TestStopEndsQueries checks Stop returns while a query waits for a peer
// that never answers.
func TestStopEndsQueries(t *testing.T) {
	h := newHarness(t, caps.Options{Timeout: time.Hour})
	_, c := info(avatar + "+notify")
	p := h.peer("silent@localhost/x")
	h.presence(p, &c)
	p.request(t, c)
	h.res.Stop()
	h.waitGaveUp()
}

// TestTimeoutForgottenVer checks that once the failure of a ver is no
// longer remembered, another advertiser is asked, but never again the
// peer that did not answer for it.
func TestTimeoutForgottenVer(t *testing.T) {
	h := newHarness(t, caps.Options{Timeout: 20 * time.Millisecond, FailureTTL: time.Nanosecond})
	q, c := info(avatar + "+notify")
	silent, other := h.peer("silent@localhost/x"), h.peer("other@localhost/y")
	h.presence(silent, &c)
	silent.request(t, c)
	h.waitGaveUp()
	h.presence(silent, &c)
	if n := h.res.Flights(); n != 0 {
		t.Errorf("%d queries queued for the peer that did not answer", n)
	}
	h.presence(other, &c)
	other.answer(other.request(t, c), q)
	h.waitResolved(other.jid)
	silent.noRequest(t)
	h.presence(silent, &c) // now from the cache
	h.waitResolved(silent.jid)
}

// TestSameVerOtherNode checks that the ver alone is what is shared: a
// client naming its software differently but advertising the same ver
// waits for the same query.
func TestSameVerOtherNode(t *testing.T) {
	h := newHarness(t, caps.Options{})
	q, c := info(avatar + "+notify")
	c2 := c
	c2.Node = "https://example.org/fork"
	a, b := h.peer("alice@localhost/a"), h.peer("bob@localhost/b")
	h.presence(a, &c)
	h.presence(b, &c2)
	a.answer(a.request(t, c), q)
	h.waitResolved(a.jid, b.jid)
	b.noRequest(t)
}

// TestCapsChangeDuringQuery checks a resource whose unverifiable caps
// change while it is being asked: the answer for the old caps is not
// taken for the new ones, which are asked next.
func TestCapsChangeDuringQuery(t *testing.T) {
	h := newHarness(t, caps.Options{})
	old := caps.Caps{Node: "http://psi-im.org/caps", Ver: "0.11"}
	cur := caps.Caps{Node: "http://psi-im.org/caps", Ver: "0.12"}
	qOld, _ := info("urn:old+notify")
	qCur, _ := info("urn:cur+notify")
	p := h.peer("psi@localhost/x")
	h.presence(p, &old)
	req := p.request(t, old)
	h.presence(p, &cur)
	p.answer(req, qOld)
	p.answer(p.request(t, cur), qCur)
	if f := h.waitResolved(p.jid)[p.jid.String()]; !f.Has("urn:cur+notify") || f.Has("urn:old+notify") {
		t.Errorf("features %v; want those of the current caps", f.List())
	}
}
