package roster

import (
	"context"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/routertest"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
)

// These tests run the module on a real router and store with fake
// sessions, to check what it remembers of sessions: that needs the
// module's instance, and timings that real clients cannot produce.

// testID registers a roster module whose instance the test can reach.
const testID = "roster-under-test"

var (
	startedMu sync.Mutex
	started   *Roster
)

func init() {
	modules.RegisterWithOptions(testID, DefaultOptions(), func(o Options) *Roster {
		r := New(o)
		startedMu.Lock()
		started = r
		startedMu.Unlock()
		return r
	})
}

// startRoster starts the module on b with account alice and returns it
// with its router.
func startRoster(t *testing.T, b storetest.Backend) (*Roster, *router.Router) {
	t.Helper()
	rt := routertest.StartModules(t, storetest.Open(t, b), config.Default(), []string{testID}, "alice")
	startedMu.Lock()
	defer startedMu.Unlock()
	return started, rt
}

// tracked is 1 if the module keeps a state in s, else 0.
func (r *Roster) tracked(s router.Session) int {
	if _, ok := stateKey.Get(s); ok {
		return 1
	}
	return 0
}

// fakeSession is a bound client that accepts everything.
type fakeSession struct {
	jid jid.JID
	router.SessionState
}

var _ router.Session = (*fakeSession)(nil)

func (s *fakeSession) JID() jid.JID                 { return s.jid }
func (s *fakeSession) Deliver(*router.Stanza) bool  { return true }
func (s *fakeSession) Available() bool              { return false }
func (s *fakeSession) Priority() int                { return 0 }
func (s *fakeSession) LastPresence() *router.Stanza { return nil }
func (s *fakeSession) Close(error)                  {}

// TestSessionStateDoesNotOutliveSession: the state kept for a session is
// forgotten when it ends (ended), and nothing creates it again afterwards.
// A roster push takes the sessions of the account as a snapshot, so it may
// reach a session that ended meanwhile; a roster get or presence may look
// a session up just before it ends. Either way no state may be left.
func TestSessionStateDoesNotOutliveSession(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		r, rt := startRoster(t, b)
		ctx := context.Background()
		alice := jid.MustParse("alice@localhost")
		s := &fakeSession{jid: jid.MustParse("alice@localhost/phone")}
		if _, err := rt.Sessions().Bind(s, 0); err != nil {
			t.Fatal(err)
		}

		// A push to a session that never asked for the roster leaves no
		// state behind.
		r.push(ctx, alice, router.NewElement(NS, "item", "jid", "bob@localhost", "subscription", "none"), 1)
		if n := r.tracked(s); n != 0 {
			t.Fatalf("%d session states after a push to an uninterested session, want 0", n)
		}

		if r.track(s) == nil {
			t.Fatal("no state for a bound session")
		}
		rt.Sessions().Unbind(s)
		r.ended(ctx, s)
		if n := r.tracked(s); n != 0 {
			t.Fatalf("%d session states after the session ended, want 0", n)
		}

		// What ran with a snapshot or lookup from before the end comes
		// after it: a push, a roster get (track), a presence.
		r.push(ctx, alice, router.NewElement(NS, "item", "jid", "bob@localhost", "subscription", "none"), 2)
		if r.track(s) != nil {
			t.Error("a state for a session that is no longer bound")
		}
		r.inOrder(ctx, s.JID(), func(queue func(func(context.Context))) { r.unavailable(s, nil, nil, queue) })
		if n := r.tracked(s); n != 0 {
			t.Errorf("%d session states after work for an ended session, want 0", n)
		}
	})
}
