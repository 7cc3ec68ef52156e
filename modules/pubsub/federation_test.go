package pubsub_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/pubsub/core"
	"github.com/xmppd/xmppd/router"
)

// TestFederation has a user of another domain subscribe over s2s to a node
// of pubsub.a.test, get its notifications and read its items, and be
// refused creating nodes there.
func TestFederation(t *testing.T) { storetest.Run(t, testFederation) }

func testFederation(t *testing.T, backend storetest.Backend) {
	// b.test reaches pubsub.a.test at a.test's s2s listener, as an SRV
	// record of the service's domain would say.
	f := testserver.NewFederationOn(t, backend, func(c *config.Config) {
		if c.Hosts[0].Domain == "b.test" {
			c.S2S.Routes["pubsub.a.test"] = c.S2S.Routes["a.test"]
		}
	}, "a.test", "b.test")
	servers := []*testserver.Server{f.Start("a.test"), f.Start("b.test")}
	a, b := servers[0], servers[1]
	a.AddUser("alice", password)
	b.AddUser("bob", password)
	const svc = "pubsub.a.test"
	al := a.Login("alice", password, testserver.LoginOptions{Resource: "pc"})
	bo := b.Login("bob", password, testserver.LoginOptions{Resource: "pc"})
	request := func(c *testserver.Client, typ, payload string) *router.Element {
		t.Helper()
		return c.MustRequest(t, fmt.Sprintf(`<iq type='%s' id='%s' to='%s'>%s</iq>`, typ, router.NewID(), svc, payload))
	}
	testserver.WantResult(t, request(al, "set", ps(`<create node='news'/>`)))
	wantError(t, request(bo, "set", ps(`<create node='bobs'/>`)), "forbidden", "auth", "")
	testserver.WantResult(t, request(bo, "set", subscribe("news", "bob@b.test/pc")))
	testserver.WantResult(t, request(al, "set", publish("news", "n1", "over s2s")))
	ev := bo.MustNext(t, "notification over s2s", func(e *router.Element) bool {
		return e.Name.Local == "message" && e.Get("from") == svc && e.Child(core.NSEvent, "event") != nil
	})
	if it := ev.Child(core.NSEvent, "event").Child(core.NSEvent, "items").Child(core.NSEvent, "item"); it == nil || it.Get("id") != "n1" {
		t.Fatalf("notification: %s", ev)
	}
	if got := itemIDs(t, request(bo, "get", ps(`<items node='news'/>`))); !slices.Equal(got, []string{"n1"}) {
		t.Fatalf("remote items: %v", got)
	}
}
