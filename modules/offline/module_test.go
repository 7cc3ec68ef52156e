package offline

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/routertest"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// These tests run the module on a real router and a real store with fake
// sessions, so that delivery at login is tested whatever the state of the
// presence module, which is what calls Router.SessionAvailable for real
// clients.

var alice = jid.MustParse("alice@localhost")

type harness struct {
	t     *testing.T
	r     *router.Router
	store storage.Store
}

// newHarness starts the module with an offline queue of limit messages,
// with accounts alice and bob.
func newHarness(t *testing.T, b storetest.Backend, limit int) *harness {
	t.Helper()
	db := storetest.Open(t, b)
	cfg := config.Default()
	cfg.SetModuleOptions("offline", Options{MaxMessages: limit})
	r := routertest.StartModules(t, db, cfg, []string{"offline"}, "alice", "bob")
	return &harness{t: t, r: r, store: db}
}

func (h *harness) bind(full string, available bool, priority int) *fakeSession {
	h.t.Helper()
	s := &fakeSession{jid: jid.MustParse(full)}
	s.available.Store(available)
	s.priority.Store(int32(priority))
	if _, err := h.r.Sessions().Bind(s, 0); err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) send(from, xml string) {
	h.t.Helper()
	st := routertest.Stanza(h.t, xml)
	st.SetFrom(jid.MustParse(from))
	h.r.Route(context.Background(), st)
}

func (h *harness) count() int {
	h.t.Helper()
	n, err := h.store.Offline().Count(context.Background(), alice)
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// fakeSession is a bound client that records what it is given. Its
// availability and priority may change while the router reads them.
type fakeSession struct {
	router.SessionState
	jid       jid.JID
	available atomic.Bool
	priority  atomic.Int32
	// availableAfter makes Available false for its first calls, for a
	// session that becomes available while a message is being routed.
	availableAfter atomic.Int32

	mu  sync.Mutex
	got []*router.Stanza
}

var _ router.Session = (*fakeSession)(nil)

func (s *fakeSession) JID() jid.JID { return s.jid }

func (s *fakeSession) Available() bool {
	if s.availableAfter.Add(-1) >= 0 {
		return false
	}
	return s.available.Load()
}

func (s *fakeSession) Priority() int                { return int(s.priority.Load()) }
func (s *fakeSession) LastPresence() *router.Stanza { return nil }
func (s *fakeSession) Close(error)                  {}

func (s *fakeSession) Deliver(st *router.Stanza) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, st)
	return true
}

func (s *fakeSession) take() []*router.Stanza {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.got
	s.got = nil
	return got
}

func ids(list []*router.Stanza) []string {
	var out []string
	for _, st := range list {
		out = append(out, st.ID())
	}
	return out
}

// TestDeliverOnAvailable checks XEP-0160 §2: messages for an account with
// no available resource are stored without an error to the sender, and
// delivered in order, with a delay, to the first resource that becomes
// available, then deleted.
func TestDeliverOnAvailable(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, 100)
		bob := h.bind("bob@localhost/x", true, 0)
		h.send("bob@localhost/x", `<message id="m1" type="chat" to="alice@localhost"><body>one</body></message>`)
		h.send("bob@localhost/x", `<message id="m2" to="alice@localhost/gone"><body>two</body></message>`)
		h.send("bob@localhost/x", `<message id="m3" type="normal" to="alice@localhost"><body>three</body></message>`)
		if got := bob.take(); len(got) != 0 {
			t.Errorf("the sender got %v", got)
		}
		if n := h.count(); n != 3 {
			t.Fatalf("%d messages stored, want 3", n)
		}

		a := h.bind("alice@localhost/a", true, 0)
		h.r.SessionAvailable(context.Background(), a)
		got := a.take()
		if want := []string{"m1", "m2", "m3"}; !slices.Equal(ids(got), want) {
			t.Fatalf("delivered %v, want %v", ids(got), want)
		}
		for _, st := range got {
			d := st.Child(NSDelay, "delay")
			if d == nil || d.Get("from") != "localhost" {
				t.Errorf("no delay from localhost in %s", st)
				continue
			}
			stamp, err := time.Parse(time.RFC3339Nano, d.Get("stamp"))
			if err != nil || time.Since(stamp) > time.Minute || stamp.Location() != time.UTC {
				t.Errorf("delay stamp %q: %v", d.Get("stamp"), err)
			}
		}
		if n := h.count(); n != 0 {
			t.Errorf("%d messages left after delivery", n)
		}

		b2 := h.bind("alice@localhost/b", true, 0)
		h.r.SessionAvailable(context.Background(), b2)
		if got := b2.take(); len(got) != 0 {
			t.Errorf("a second session got %v", ids(got))
		}
		if !slices.Contains(h.r.Features(router.ToServer), Feature) {
			t.Errorf("server features %v lack %s", h.r.Features(router.ToServer), Feature)
		}
	})
}

// TestNegativePriority checks that a resource with a negative priority
// gets nothing until it sends presence with a non-negative one (XEP-0160
// §2 steps 2 and 5).
func TestNegativePriority(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, 100)
		a := h.bind("alice@localhost/a", true, -1)
		h.send("bob@localhost/x", `<message id="m1" to="alice@localhost"><body>hi</body></message>`)
		h.r.SessionAvailable(context.Background(), a)
		if got := a.take(); len(got) != 0 {
			t.Fatalf("a negative-priority session got %v", ids(got))
		}
		if n := h.count(); n != 1 {
			t.Fatalf("%d messages stored, want 1", n)
		}
		h.send("alice@localhost/a", `<presence><priority>-5</priority></presence>`)
		if got := a.take(); len(got) != 0 {
			t.Fatalf("still negative, got %v", ids(got))
		}
		a.priority.Store(1)
		h.send("alice@localhost/a", `<presence><priority>1</priority></presence>`)
		if got := a.take(); !slices.Equal(ids(got), []string{"m1"}) {
			t.Fatalf("after raising the priority got %v, want [m1]", ids(got))
		}
		if n := h.count(); n != 0 {
			t.Errorf("%d messages left", n)
		}
	})
}

// TestConcurrentAvailable checks that two sessions becoming available at
// once share the messages without a duplicate or a loss.
func TestConcurrentAvailable(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, 100)
		const n = 30
		for i := range n {
			h.send("bob@localhost/x", fmt.Sprintf(`<message id="m%d" to="alice@localhost"><body>%d</body></message>`, i, i))
		}
		sessions := []*fakeSession{h.bind("alice@localhost/a", true, 0), h.bind("alice@localhost/b", true, 0)}
		var wg sync.WaitGroup
		for _, s := range sessions {
			wg.Go(func() { h.r.SessionAvailable(context.Background(), s) })
		}
		wg.Wait()
		seen := map[string]int{}
		for _, s := range sessions {
			for _, id := range ids(s.take()) {
				seen[id]++
			}
		}
		for i := range n {
			if id := fmt.Sprintf("m%d", i); seen[id] != 1 {
				t.Errorf("%s delivered %d times", id, seen[id])
			}
		}
		if c := h.count(); c != 0 {
			t.Errorf("%d messages left", c)
		}
	})
}

// TestLimit checks XEP-0160 §2 step 3: with the queue full, the sender
// gets service-unavailable.
func TestLimit(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, 2)
		bob := h.bind("bob@localhost/x", true, 0)
		for i := range 3 {
			h.send("bob@localhost/x", fmt.Sprintf(`<message id="m%d" type="chat" to="alice@localhost"><body>%d</body></message>`, i, i))
		}
		got := bob.take()
		if len(got) != 1 || got[0].ID() != "m2" || got[0].Type() != "error" ||
			got[0].Child("", "error").Child(router.NSStanzas, "service-unavailable") == nil {
			t.Errorf("sender got %v, want service-unavailable for m2", got)
		}
		if n := h.count(); n != 2 {
			t.Errorf("%d messages stored, want 2", n)
		}
	})
}

// TestNotStored checks what is not stored and what the sender hears then:
// the router's answer for a message nobody takes (RFC 6121 §8.5.2.2).
func TestNotStored(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, 100)
		bob := h.bind("bob@localhost/x", true, 0)
		for _, tc := range []struct {
			name string
			xml  string
			// cond is the error the sender gets, "" for none.
			cond string
		}{
			{"headline", `<message type="headline" to="alice@localhost"><body>news</body></message>`, ""},
			{"error", `<message type="error" to="alice@localhost"><error type="cancel"><gone xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`, ""},
			{"groupchat", `<message type="groupchat" to="alice@localhost"><body>hi</body></message>`, "service-unavailable"},
			{"chat state only", `<message type="chat" to="alice@localhost"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>`, "service-unavailable"},
			{"no-store hint", `<message type="chat" to="alice@localhost"><body>hi</body><no-store xmlns="urn:xmpp:hints"/></message>`, "service-unavailable"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h.send("bob@localhost/x", tc.xml)
				if n := h.count(); n != 0 {
					t.Errorf("%d messages stored", n)
				}
				got := bob.take()
				switch {
				case tc.cond == "" && len(got) != 0:
					t.Errorf("sender got %v", got)
				case tc.cond != "" && (len(got) != 1 || got[0].Child("", "error").Child(router.NSStanzas, tc.cond) == nil):
					t.Errorf("sender got %v, want %s", got, tc.cond)
				}
			})
		}
	})
}

// TestAvailableMeanwhile checks that a message stored just as a session
// became available, after that session fetched its messages, is delivered
// at once rather than at the next login.
func TestAvailableMeanwhile(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, 100)
		a := h.bind("alice@localhost/a", true, 0)
		a.availableAfter.Store(1) // the router sees it unavailable, the module available
		h.send("bob@localhost/x", `<message id="m1" to="alice@localhost"><body>hi</body></message>`)
		if got := a.take(); !slices.Equal(ids(got), []string{"m1"}) {
			t.Errorf("got %v, want [m1]", ids(got))
		}
		if n := h.count(); n != 0 {
			t.Errorf("%d messages left", n)
		}
	})
}

// TestUnreadable checks that a stored message that cannot be parsed is
// dropped (and logged) instead of blocking the queue for ever.
func TestUnreadable(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, 100)
		ctx := context.Background()
		if err := h.store.Offline().Push(ctx, alice, []byte(`<message><body>broken`), 0); err != nil {
			t.Fatal(err)
		}
		h.send("bob@localhost/x", `<message id="m1" to="alice@localhost"><body>hi</body></message>`)
		a := h.bind("alice@localhost/a", true, 0)
		h.r.SessionAvailable(ctx, a)
		if got := a.take(); !slices.Equal(ids(got), []string{"m1"}) {
			t.Errorf("got %v, want [m1]", ids(got))
		}
		if n := h.count(); n != 0 {
			t.Errorf("%d messages left", n)
		}
	})
}
