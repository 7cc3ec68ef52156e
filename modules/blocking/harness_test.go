package blocking

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/routertest"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// The harness runs the module on a real router and a real store, with fake
// sessions standing for clients, so that the filter's rules and its cache
// are tested without the network and whatever the presence module does.

// testID registers a module whose instance the test can reach.
const testID = "blocking-under-test"

var (
	startedMu sync.Mutex
	started   *Blocking
)

func init() {
	modules.RegisterWithOptions(testID, DefaultOptions(), func(o Options) *Blocking {
		b := New(o)
		startedMu.Lock()
		started = b
		startedMu.Unlock()
		return b
	})
}

type harness struct {
	t      testing.TB
	r      *router.Router
	store  storage.Store
	lists  *countingBlocklists
	b      *Blocking
	remote *fakeRemote
}

// countingBlocklists counts the reads of blocklists from storage.
type countingBlocklists struct {
	storage.Blocklists
	reads atomic.Int64
}

func (c *countingBlocklists) List(ctx context.Context, owner jid.JID) ([]jid.JID, error) {
	c.reads.Add(1)
	return c.Blocklists.List(ctx, owner)
}

type countingStore struct {
	storage.Store
	lists *countingBlocklists
}

func (s countingStore) Blocklists() storage.Blocklists { return s.lists }

// fakeRemote records what the router sends to other domains.
type fakeRemote struct {
	mu  sync.Mutex
	got []*router.Stanza
}

func (f *fakeRemote) Route(_ context.Context, st *router.Stanza) {
	f.mu.Lock()
	f.got = append(f.got, st)
	f.mu.Unlock()
}

func (f *fakeRemote) take() []*router.Stanza {
	f.mu.Lock()
	defer f.mu.Unlock()
	got := f.got
	f.got = nil
	return got
}

// newHarness starts the module on backend b with accounts alice, bob,
// carol and dave at localhost.
func newHarness(t testing.TB, b storetest.Backend) *harness {
	return newHarnessWith(t, b, []string{testID})
}

// newHarnessWith starts the given modules instead.
func newHarnessWith(t testing.TB, b storetest.Backend, ids []string) *harness {
	t.Helper()
	db := storetest.Open(t, b)
	lists := &countingBlocklists{Blocklists: db.Blocklists()}
	store := countingStore{Store: db, lists: lists}
	startedMu.Lock()
	started = nil
	startedMu.Unlock()
	r := routertest.StartModules(t, store, config.Default(), ids, "alice", "bob", "carol", "dave")
	remote := &fakeRemote{}
	r.SetRemote(remote)
	startedMu.Lock()
	defer startedMu.Unlock()
	return &harness{t: t, r: r, store: store, lists: lists, b: started, remote: remote}
}

// bind binds a fake session, available with the given presence if that is
// not "".
func (h *harness) bind(full string, presence string) *fakeSession {
	h.t.Helper()
	s := &fakeSession{jid: jid.MustParse(full)}
	if presence != "" {
		s.presence = h.stanza(presence)
		s.presence.SetFrom(s.jid)
	}
	if _, err := h.r.Sessions().Bind(s, 0); err != nil {
		h.t.Fatal(err)
	}
	return s
}

// end unbinds s as c2s does when a connection closes.
func (h *harness) end(s *fakeSession) {
	h.r.Sessions().Unbind(s)
	h.r.SessionEnded(context.Background(), s)
}

func (h *harness) stanza(xml string) *router.Stanza {
	h.t.Helper()
	return routertest.Stanza(h.t, xml)
}

// send routes xml as if the session of from (a full JID) had sent it.
func (h *harness) send(from, xml string) {
	h.t.Helper()
	st := h.stanza(xml)
	st.SetFrom(jid.MustParse(from))
	h.r.Route(context.Background(), st)
}

// request routes an IQ from a session and returns the answer it got.
func (h *harness) request(s *fakeSession, xml string) *router.Stanza {
	h.t.Helper()
	st := h.stanza(xml)
	st.SetFrom(s.jid)
	h.r.Route(context.Background(), st)
	for _, got := range s.take() {
		if got.Kind() == router.KindIQ && got.ID() == st.ID() {
			return got
		}
	}
	h.t.Fatalf("no answer to %s", xml)
	return nil
}

// fakeSession is a bound client that records what it is given.
type fakeSession struct {
	router.SessionState
	jid      jid.JID
	presence *router.Stanza // nil: unavailable

	// discard makes Deliver keep nothing, for benchmarks.
	discard bool

	mu  sync.Mutex
	got []*router.Stanza
}

var _ router.Session = (*fakeSession)(nil)

func (s *fakeSession) JID() jid.JID                 { return s.jid }
func (s *fakeSession) Available() bool              { return s.presence != nil }
func (s *fakeSession) Priority() int                { return 0 }
func (s *fakeSession) LastPresence() *router.Stanza { return s.presence }
func (s *fakeSession) Close(error)                  {}
func (s *fakeSession) Deliver(st *router.Stanza) bool {
	if s.discard {
		return true
	}
	s.mu.Lock()
	s.got = append(s.got, st)
	s.mu.Unlock()
	return true
}

// take returns what the session was given since the last take.
func (s *fakeSession) take() []*router.Stanza {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.got
	s.got = nil
	return got
}

// errorCondition returns the defined condition of a stanza error and
// whether it carries XEP-0191's <blocked/>.
func errorCondition(st *router.Stanza) (cond string, blocked bool) {
	e := st.Child("", "error")
	if e == nil {
		return "", false
	}
	for _, c := range e.Elements() {
		if c.Name.Space == router.NSStanzas && c.Name.Local != "text" {
			cond = c.Name.Local
		}
	}
	return cond, e.Child(NSErrors, "blocked") != nil
}

// parseStored reads a stored stanza back.
func parseStored(b []byte) (*router.Stanza, error) {
	e, err := router.ParseElement(b, router.NSClient)
	if err != nil {
		return nil, err
	}
	return router.NewStanza(e)
}
