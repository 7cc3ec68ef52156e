package caps_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/modules/caps"
	"github.com/xmppd/xmppd/router"
)

// capsUser is a test module wired the way PEP is meant to use a Resolver:
// it owns one, feeds it the presence that local accounts receive (and
// that they broadcast, which their own resources receive), forgets a
// session when it ends, and hears when features become known.
type capsUser struct {
	res      *caps.Resolver
	resolved chan event
	ended    chan jid.JID // sessions forgotten
}

const capsUserID = "test-caps-user"

var (
	capsUserMu   sync.Mutex
	capsUserLast *capsUser
)

func init() {
	modules.Register(capsUserID, func() *capsUser {
		m := &capsUser{resolved: make(chan event, 16), ended: make(chan jid.JID, 16)}
		capsUserMu.Lock()
		capsUserLast = m
		capsUserMu.Unlock()
		return m
	})
}

var (
	_ modules.Starter = (*capsUser)(nil)
	_ modules.Stopper = (*capsUser)(nil)
)

func (m *capsUser) Start(ctx context.Context, h *modules.Host) error {
	res, err := caps.New(caps.Options{
		Query:      h.Router().SendIQ,
		OnResolved: func(observer, full jid.JID, f caps.Features) { m.resolved <- event{observer, full, f} },
		Logger:     h.Logger(),
	})
	if err != nil {
		return err
	}
	m.res = res
	h.HandleStanza(router.ToAccount, router.KindPresence, router.PriorityFirst, func(_ context.Context, st *router.Stanza) bool {
		observer := st.To.Bare()
		if st.To.Domainpart() == "" {
			observer = st.From.Bare() // a broadcast: the account's own resources get it
		}
		res.Presence(observer, st)
		return false
	})
	h.OnSessionEnd(router.PriorityDefault, func(_ context.Context, s router.Session) {
		res.Forget(s.JID())
		select {
		case m.ended <- s.JID():
		default:
		}
	})
	res.Start(context.WithoutCancel(ctx))
	return nil
}

func (m *capsUser) Stop() error {
	m.res.Stop()
	return nil
}

// TestThroughServer checks the resolver with a client logged in to the
// whole server: the client's presence with caps makes the server ask it
// for disco#info NODE#VER over its c2s stream, and its answer, verified,
// gives its features, forgotten when the session ends.
func TestThroughServer(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) {
		// pep owns a resolver of its own, whose query this client would
		// have to answer too.
		c.Modules = slices.DeleteFunc(c.Modules, func(id string) bool { return id == "pep" })
		testserver.EnableModules(c, capsUserID)
	})
	srv.AddUser("alice", "pw")
	capsUserMu.Lock()
	m := capsUserLast
	capsUserMu.Unlock()

	c := srv.LoginRaw("alice", "pw", "phone")
	q, cc := info(caps.NSDiscoInfo, avatar+"+notify")
	if err := c.Send(`<presence><c xmlns='` + caps.NS + `' hash='sha-1' node='` + cc.Node + `' ver='` + cc.Ver + `'/></presence>`); err != nil {
		t.Fatal(err)
	}
	var req *router.Element
	for req == nil {
		e, err := c.Next()
		if err != nil {
			t.Fatalf("waiting for the disco#info request: %v", err)
		}
		if e.Name.Local == "iq" && e.Get("type") == "get" && e.Child(caps.NSDiscoInfo, "query") != nil {
			req = e
		}
	}
	if node := req.Child(caps.NSDiscoInfo, "query").Get("node"); node != cc.QueryNode() {
		t.Errorf("asked for node %q; want %q", node, cc.QueryNode())
	}
	answer := router.NewElement("", "iq", "type", "result", "id", req.Get("id"), "to", req.Get("from")).Append(q)
	if err := c.Send(answer.String()); err != nil {
		t.Fatal(err)
	}
	full := jid.MustParse("alice@" + srv.Domain() + "/phone")
	select {
	case e := <-m.resolved:
		if !e.full.Equal(full) || !e.observer.Equal(full.Bare()) || !e.f.Has(avatar+"+notify") {
			t.Errorf("resolved %s for %s with %v; want %s for its account with %s", e.full, e.observer, e.f.List(), full, avatar+"+notify")
		}
	case <-time.After(guard):
		t.Fatal("features never resolved")
	}
	if got := m.res.InterestedResources(full.Bare(), avatar); len(got) != 1 || !got[0].Equal(full) {
		t.Errorf("InterestedResources = %v; want %s", got, full)
	}
	if n, ok := m.res.Cached(cc.Hash, cc.Ver); n != 1 || !ok {
		t.Errorf("cache %d, %v; want the ver cached", n, ok)
	}

	c.Conn.Close()
	select {
	case j := <-m.ended:
		if !j.Equal(full) {
			t.Fatalf("session %s ended; want %s", j, full)
		}
	case <-time.After(guard):
		t.Fatal("the session never ended")
	}
	if _, ok := m.res.Features(full); ok {
		t.Error("features kept after the session ended")
	}
}
