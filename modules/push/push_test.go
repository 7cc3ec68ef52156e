package push_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/push"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// appAddr is the test's app server, a service address of the test server.
const appAddr = "push.localhost"

// refuse is the node the app server answers with an IQ error, busy the
// one it answers with an error of type wait.
const (
	refuse = "refuse"
	busy   = "busy"
)

// wait bounds a failure only: nothing in these tests waits for time to
// pass.
const wait = 10 * time.Second

// appServer records the publishes it gets, and answers each with a
// result, or with an error for the nodes refuse and busy.
type appServer struct {
	got chan *router.Stanza
}

// addAppServer makes addr (appAddr unless the test federates) an app
// server on s.
func addAppServer(t *testing.T, s *testserver.Server, addr string) *appServer {
	t.Helper()
	a := &appServer{got: make(chan *router.Stanza, 100)}
	reg, err := s.Router.AddService("test-app-server", addr, func(ctx context.Context, st *router.Stanza) bool {
		if !st.IsIQRequest() {
			return false
		}
		a.got <- st.Copy()
		pub := st.Child("http://jabber.org/protocol/pubsub", "pubsub").Child("http://jabber.org/protocol/pubsub", "publish")
		switch {
		case pub != nil && pub.Get("node") == refuse:
			s.Router.Route(ctx, st.ErrorReply(stanza.Cancel, stanza.ItemNotFound, ""))
		case pub != nil && pub.Get("node") == busy:
			s.Router.Route(ctx, st.ErrorReply(stanza.Wait, stanza.ResourceConstraint, ""))
		default:
			s.Router.Route(ctx, st.Reply())
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Remove)
	return a
}

// next returns the next publish, failing the test if none comes.
func (a *appServer) next(t *testing.T, what string) *router.Stanza {
	t.Helper()
	select {
	case st := <-a.got:
		return st
	case <-time.After(wait):
		t.Fatalf("no publish for %s", what)
		return nil
	}
}

// none fails the test if a publish was recorded.
func (a *appServer) none(t *testing.T, what string) {
	t.Helper()
	select {
	case st := <-a.got:
		t.Fatalf("%s: unexpected publish %s", what, st)
	default:
	}
}

// syncs numbers the accounts sync makes.
var syncs atomic.Int64

// sync makes sure the module's one worker has handled everything queued
// before: it registers a new offline account, sends it a message and
// waits for that account's publish, which the worker handles after the
// others.
func (a *appServer) sync(t *testing.T, s *testserver.Server, from *testserver.Client) {
	t.Helper()
	local := fmt.Sprintf("sync%d", syncs.Add(1))
	owner := s.AddUser(local, "pw")
	reg := storage.PushRegistration{Service: jid.MustParse(appAddr), Node: local}
	if err := s.Store.PushRegistrations().Put(context.Background(), owner, reg, 0); err != nil {
		t.Fatal(err)
	}
	from.MustSend(t, `<message type="chat" id="s" to="`+owner.String()+`"><body>sync</body></message>`)
	from.MustSync(t)
	for {
		st := a.next(t, "sync")
		if node(st) == local {
			return
		}
		t.Fatalf("publish %s before the sync", st)
	}
}

// node is the node a publish is to.
func node(st *router.Stanza) string {
	return st.Child(nsPubSub, "pubsub").Child(nsPubSub, "publish").Get("node")
}

const nsPubSub = "http://jabber.org/protocol/pubsub"

// summary returns the fields of a publish's summary form.
func summary(t *testing.T, st *router.Stanza) map[string]string {
	t.Helper()
	item := st.Child(nsPubSub, "pubsub").Child(nsPubSub, "publish").Child(nsPubSub, "item")
	var x *router.Element
	if item != nil {
		if n := item.Child(push.NS, "notification"); n != nil {
			x = n.Child("jabber:x:data", "x")
		}
	}
	if x == nil {
		t.Fatalf("publish without a notification form: %s", st)
	}
	fields := map[string]string{}
	for _, f := range x.Elements() {
		fields[f.Get("var")] = f.Child("jabber:x:data", "value").Text()
	}
	return fields
}

// start starts a server with push options o and one worker, so that
// sync works, with an app server, and the users alice and carol.
func start(t *testing.T, b storetest.Backend, o push.Options, mutate ...func(*config.Config)) (*testserver.Server, *appServer) {
	t.Helper()
	o.Workers = 1
	s := testserver.StartOn(t, b, func(c *config.Config) {
		testserver.EnableModules(c, "push")
		c.SetModuleOptions("push", o)
		for _, m := range mutate {
			m(c)
		}
	})
	s.AddUser("alice", "pw")
	s.AddUser("carol", "pw")
	return s, addAppServer(t, s, appAddr)
}

const enableForm = `<x xmlns="jabber:x:data" type="submit">` +
	`<field var="FORM_TYPE"><value>http://jabber.org/protocol/pubsub#publish-options</value></field>` +
	`<field var="secret"><value>s3cr3t</value></field></x>`

// TestEnableDisable checks the IQs of XEP-0357 §5 and §6 and what they
// leave in storage.
func TestEnableDisable(t *testing.T) {
	s, _ := start(t, storetest.Backend{Name: "sqlite"}, push.DefaultOptions())
	s.AddUser("bob", "pw")
	alice := s.Login("alice", "pw", testserver.LoginOptions{})
	tests := []struct {
		name      string
		iq        string
		wantCond  string
		wantNodes []string
	}{
		{"enable", `<iq type="set" id="1"><enable xmlns="urn:xmpp:push:0" jid="push.localhost" node="n1"/></iq>`, "",
			[]string{"n1"}},
		{"enable to own bare JID, with a form", `<iq type="set" id="2" to="alice@localhost"><enable xmlns="urn:xmpp:push:0" jid="push.localhost" node="n2">` + enableForm + `</enable></iq>`, "",
			[]string{"n1", "n2"}},
		{"enable without node", `<iq type="set" id="3"><enable xmlns="urn:xmpp:push:0" jid="push.localhost"/></iq>`, "bad-request",
			[]string{"n1", "n2"}},
		{"enable without jid", `<iq type="set" id="4"><enable xmlns="urn:xmpp:push:0" node="n3"/></iq>`, "bad-request",
			[]string{"n1", "n2"}},
		{"enable with a form of another type", `<iq type="set" id="5"><enable xmlns="urn:xmpp:push:0" jid="push.localhost" node="n3"><x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE"><value>urn:other</value></field></x></enable></iq>`, "bad-request",
			[]string{"n1", "n2"}},
		{"enable for another account", `<iq type="set" id="6" to="bob@localhost"><enable xmlns="urn:xmpp:push:0" jid="push.localhost" node="n3"/></iq>`, "forbidden",
			[]string{"n1", "n2"}},
		{"disable one node", `<iq type="set" id="7"><disable xmlns="urn:xmpp:push:0" jid="push.localhost" node="n1"/></iq>`, "",
			[]string{"n2"}},
		{"enable another node", `<iq type="set" id="8"><enable xmlns="urn:xmpp:push:0" jid="push.localhost" node="n4"/></iq>`, "",
			[]string{"n2", "n4"}},
		{"disable every node", `<iq type="set" id="9"><disable xmlns="urn:xmpp:push:0" jid="push.localhost"/></iq>`, "",
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := alice.MustRequest(t, tt.iq)
			if tt.wantCond == "" {
				testserver.WantResult(t, resp)
			} else if cond, _ := testserver.ErrorCondition(resp); cond != tt.wantCond {
				t.Errorf("answer %s, want %s", resp, tt.wantCond)
			}
			if nodes := nodesOf(t, s, "alice@localhost"); strings.Join(nodes, " ") != strings.Join(tt.wantNodes, " ") {
				t.Errorf("registered nodes %q, want %q", nodes, tt.wantNodes)
			}
		})
	}
}

// TestDiscoFeature checks that the account's bare JID advertises push
// only when the module is enabled.
func TestDiscoFeature(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		t.Run(fmt.Sprint("enabled=", enabled), func(t *testing.T) {
			s := testserver.Start(t, func(c *config.Config) {
				testserver.EnableModules(c, "push")
				if !enabled {
					var ids []string
					for _, id := range c.Modules {
						if id != "push" {
							ids = append(ids, id)
						}
					}
					c.Modules = ids
				}
			})
			s.AddUser("alice", "pw")
			alice := s.Login("alice", "pw", testserver.LoginOptions{})
			resp := alice.MustRequest(t, `<iq type="get" id="d" to="alice@localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
			testserver.WantResult(t, resp)
			if got := testserver.HasFeature(resp, push.NS); got != enabled {
				t.Errorf("feature %s advertised: %v, want %v (%s)", push.NS, got, enabled, resp)
			}
		})
	}
}

// waitFor polls cond until it holds; wait only bounds a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// mustBare parses a JID.
func mustBare(s string) jid.JID { return jid.MustParse(s) }

// nodesOf lists the nodes of the account's stored registrations, sorted
// by service then node.
func nodesOf(t *testing.T, s *testserver.Server, bare string) []string {
	t.Helper()
	regs, err := s.Store.PushRegistrations().List(context.Background(), jid.MustParse(bare))
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for _, r := range regs {
		nodes = append(nodes, r.Node)
	}
	return nodes
}
