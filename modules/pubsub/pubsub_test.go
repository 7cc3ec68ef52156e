package pubsub_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/pubsub/core"
	"github.com/xmppd/xmppd/router"
)

const (
	password = "secret"
	service  = "pubsub." + testserver.Domain
	nsNews   = "urn:example:news"
)

// client is a logged-in client of a test.
type client struct {
	*testserver.Client
	t *testing.T
}

// start starts a server on b with the accounts given.
func start(t *testing.T, b storetest.Backend, users ...string) *testserver.Server {
	t.Helper()
	s := testserver.StartOn(t, b, nil)
	for _, u := range users {
		s.AddUser(u, password)
	}
	return s
}

// online logs local in and sends available presence, so that messages to
// its bare JID reach it.
func online(t *testing.T, s *testserver.Server, local string) *client {
	t.Helper()
	c := &client{s.Login(local, password, testserver.LoginOptions{Resource: "pc"}), t}
	c.MustSend(t, `<presence/>`)
	c.MustNext(t, "own presence", func(e *router.Element) bool { return e.Name.Local == "presence" })
	return c
}

func bare(local string) string { return local + "@" + testserver.Domain }

// iq sends a request to the service and returns the answer.
func (c *client) iq(typ, payload string) *router.Element {
	c.t.Helper()
	return c.MustRequest(c.t, fmt.Sprintf(`<iq type='%s' id='%s' to='%s'>%s</iq>`, typ, router.NewID(), service, payload))
}

func ps(inner string) string { return `<pubsub xmlns='` + core.NS + `'>` + inner + `</pubsub>` }

func owner(inner string) string { return `<pubsub xmlns='` + core.NSOwner + `'>` + inner + `</pubsub>` }

// form is a data form of FORM_TYPE formType with var, value pairs.
func form(formType, typ string, fields ...string) string {
	return testserver.DataForm(formType, typ, fields...)
}

func publish(node, id, text string) string {
	return ps(`<publish node='` + node + `'><item id='` + id + `'><entry xmlns='` + nsNews + `'>` + text + `</entry></item></publish>`)
}

func subscribe(node, j string) string {
	return ps(`<subscribe node='` + node + `' jid='` + j + `'/>`)
}

// wantError checks an answer's error condition, type and pubsub#errors
// condition ("" for none).
func wantError(t *testing.T, e *router.Element, cond, typ, app string) {
	t.Helper()
	testserver.WantIQError(t, e, cond, typ)
	got := ""
	if er := e.Child("", "error"); er != nil {
		if a := er.Child(core.NSErrors, ""); a != nil {
			got = a.Name.Local
		}
	}
	if got != app {
		t.Fatalf("pubsub#errors condition %q, want %q: %s", got, app, e)
	}
}

// event matches a notification from the service whose <event/> has a
// child local about node, with an item or retract id when id is set.
func event(local, node, id string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		if e.Name.Local != "message" || e.Get("from") != service {
			return false
		}
		ev := e.Child(core.NSEvent, "event")
		if ev == nil {
			return false
		}
		c := ev.Child(core.NSEvent, local)
		if c == nil || c.Get("node") != node {
			return false
		}
		if id == "" {
			return true
		}
		for _, it := range c.Elements() {
			if it.Get("id") == id {
				return true
			}
		}
		return false
	}
}

// subscriptionEvent matches the service's notification of a subscription
// state (§8.6.2, §8.8.2).
func subscriptionEvent(state string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		if e.Name.Local != "message" || e.Get("from") != service {
			return false
		}
		ev := e.Child(core.NSEvent, "event")
		return ev != nil && ev.Child(core.NSEvent, "subscription") != nil && ev.Child(core.NSEvent, "subscription").Get("subscription") == state
	}
}

func itemIDs(t *testing.T, e *router.Element) []string {
	t.Helper()
	testserver.WantResult(t, e)
	var ids []string
	for _, it := range e.Child(core.NS, "pubsub").Child(core.NS, "items").Elements() {
		ids = append(ids, it.Get("id"))
	}
	return ids
}

// TestDisco checks that the domain lists the service, and the service's
// own disco: identity, features, nodes and a node's meta-data.
func TestDisco(t *testing.T) { storetest.Run(t, testDisco) }

func testDisco(t *testing.T, b storetest.Backend) {
	s := start(t, b, "alice")
	alice := online(t, s, "alice")
	items := alice.MustRequest(t, `<iq type='get' id='i1' to='`+testserver.Domain+`'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`)
	found := false
	for _, it := range items.Child("http://jabber.org/protocol/disco#items", "query").Elements() {
		found = found || it.Get("jid") == service
	}
	if !found {
		t.Fatalf("domain's disco#items without %s: %s", service, items)
	}
	info := alice.iq("get", `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
	testserver.WantResult(t, info)
	q := info.Child("http://jabber.org/protocol/disco#info", "query")
	id := q.Child("http://jabber.org/protocol/disco#info", "identity")
	if id == nil || id.Get("category") != "pubsub" || id.Get("type") != "service" {
		t.Fatalf("identity: %s", info)
	}
	var features []string
	for _, f := range q.Elements() {
		if f.Name.Local == "feature" {
			features = append(features, f.Get("var"))
		}
	}
	for _, want := range []string{core.NS, core.NS + "#access-authorize", core.NS + "#manage-subscriptions", core.NS + "#create-nodes"} {
		if !slices.Contains(features, want) {
			t.Errorf("feature %s missing: %v", want, features)
		}
	}
	if slices.Contains(features, core.NS+"#auto-create") {
		t.Errorf("auto-create advertised, but a publish creates no node")
	}
	// Exactly the features the service implements: core's, less those of
	// PEP only, plus authorize's (pubsub.go).
	var pubsubFeatures []string
	for _, f := range features {
		if f == core.NS || strings.HasPrefix(f, core.NS+"#") {
			pubsubFeatures = append(pubsubFeatures, f)
		}
	}
	want := slices.DeleteFunc(slices.Clone(core.Features), func(f string) bool {
		return f == core.NS+"#auto-create" || f == core.NS+"#auto-subscribe" || f == core.NS+"#filtered-notifications"
	})
	want = append(want, core.AuthorizeFeatures...)
	slices.Sort(want)
	want = slices.Compact(want)
	slices.Sort(pubsubFeatures)
	if !slices.Equal(pubsubFeatures, want) {
		t.Errorf("pubsub features:\n got %v\nwant %v", pubsubFeatures, want)
	}
	testserver.WantResult(t, alice.iq("set", ps(`<create node='news'/>`+`<configure>`+form(core.FormNodeConfig, "submit", "pubsub#title", "Daily news", core.FieldType, "http://www.w3.org/2005/Atom")+`</configure>`)))
	nodes := alice.iq("get", `<query xmlns='http://jabber.org/protocol/disco#items'/>`)
	it := nodes.Child("http://jabber.org/protocol/disco#items", "query").Child("http://jabber.org/protocol/disco#items", "item")
	if it == nil || it.Get("node") != "news" || it.Get("name") != "Daily news" || it.Get("jid") != service {
		t.Fatalf("nodes: %s", nodes)
	}
	meta := alice.iq("get", `<query xmlns='http://jabber.org/protocol/disco#info' node='news'/>`)
	testserver.WantResult(t, meta)
	if s := meta.String(); !strings.Contains(s, "pubsub#meta-data") || !strings.Contains(s, bare("alice")) || !strings.Contains(s, "leaf") ||
		!strings.Contains(s, "http://www.w3.org/2005/Atom") {
		t.Fatalf("node meta-data: %s", s)
	}
	testserver.WantIQError(t, alice.iq("get", `<query xmlns='http://jabber.org/protocol/disco#info' node='nope'/>`), "item-not-found", "cancel")
}

// TestNodeLifecycle runs the use cases of a node on both backends:
// create (default, custom, instant, taken), publish by owner and refused
// to others, subscribe and the notifications that follow, items,
// retract, purge, delete with redirect, and the default configuration.
func TestNodeLifecycle(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, "alice", "bob")
		alice, bob := online(t, s, "alice"), online(t, s, "bob")

		def := alice.iq("get", owner(`<default/>`))
		testserver.WantResult(t, def)
		if !strings.Contains(def.String(), "pubsub#access_model") {
			t.Fatalf("default configuration: %s", def)
		}
		testserver.WantResult(t, alice.iq("set", ps(`<create node='news'/>`)))
		wantError(t, bob.iq("set", ps(`<create node='news'/>`)), "conflict", "cancel", "")
		inst := alice.iq("set", ps(`<create/>`))
		testserver.WantResult(t, inst)
		if c := inst.Child(core.NS, "pubsub").Child(core.NS, "create"); c == nil || c.Get("node") == "" {
			t.Fatalf("instant node: %s", inst)
		}
		testserver.WantResult(t, alice.iq("set", ps(`<create node='short'/><configure>`+form(core.FormNodeConfig, "submit", "pubsub#max_items", "2")+`</configure>`)))
		for _, id := range []string{"a", "b", "c"} {
			testserver.WantResult(t, alice.iq("set", publish("short", id, id)))
		}
		if got := itemIDs(t, bob.iq("get", ps(`<items node='short'/>`))); !slices.Equal(got, []string{"c", "b"}) {
			t.Fatalf("max_items 2 keeps %v", got)
		}

		wantError(t, bob.iq("set", publish("news", "x", "not mine")), "forbidden", "auth", "")
		wantError(t, alice.iq("set", publish("nope", "x", "no node")), "item-not-found", "cancel", "")

		sub := bob.iq("set", subscribe("news", bare("bob")))
		testserver.WantResult(t, sub)
		if e := sub.Child(core.NS, "pubsub").Child(core.NS, "subscription"); e == nil || e.Get("subscription") != "subscribed" || e.Get("subid") == "" {
			t.Fatalf("subscribe: %s", sub)
		}
		wantError(t, bob.iq("set", subscribe("news", bare("alice"))), "bad-request", "modify", "invalid-jid")

		testserver.WantResult(t, alice.iq("set", publish("news", "n1", "first")))
		bob.MustNext(t, "item notification", event("items", "news", "n1"))
		if got := itemIDs(t, bob.iq("get", ps(`<items node='news'/>`))); !slices.Equal(got, []string{"n1"}) {
			t.Fatalf("items: %v", got)
		}
		testserver.WantResult(t, alice.iq("set", ps(`<retract node='news' notify='true'><item id='n1'/></retract>`)))
		bob.MustNext(t, "retract notification", event("items", "news", "n1"))

		testserver.WantResult(t, alice.iq("set", publish("news", "n2", "second")))
		bob.MustNext(t, "item notification", event("items", "news", "n2"))
		wantError(t, bob.iq("set", owner(`<purge node='news'/>`)), "forbidden", "auth", "")
		testserver.WantResult(t, alice.iq("set", owner(`<purge node='news'/>`)))
		bob.MustNext(t, "purge notification", event("purge", "news", ""))
		if got := itemIDs(t, bob.iq("get", ps(`<items node='news'/>`))); len(got) != 0 {
			t.Fatalf("items after purge: %v", got)
		}

		testserver.WantResult(t, alice.iq("set", owner(`<delete node='news'><redirect uri='xmpp:`+service+`?;node=short'/></delete>`)))
		del := bob.MustNext(t, "delete notification", event("delete", "news", ""))
		if r := del.Child(core.NSEvent, "event").Child(core.NSEvent, "delete").Child(core.NSEvent, "redirect"); r == nil || !strings.Contains(r.Get("uri"), "node=short") {
			t.Fatalf("delete without redirect: %s", del)
		}
		testserver.WantIQError(t, bob.iq("get", ps(`<items node='news'/>`)), "item-not-found", "cancel")
	})
}

// TestAccessModels checks that presence and whitelist nodes are closed to
// whom the node's creator has not let in.
func TestAccessModels(t *testing.T) { storetest.Run(t, testAccessModels) }

func testAccessModels(t *testing.T, b storetest.Backend) {
	s := start(t, b, "alice", "bob", "carol")
	r := admin.Rosters{Users: admin.Users{Config: s.Config, Users: s.Store.Users()}, Store: s.Store}
	if err := r.Add(context.Background(), bare("alice"), bare("bob"), "", nil); err != nil {
		t.Fatal(err)
	}
	alice, bob, carol := online(t, s, "alice"), online(t, s, "bob"), online(t, s, "carol")
	for _, c := range []struct{ node, model string }{{"friends", "presence"}, {"secret", "whitelist"}} {
		testserver.WantResult(t, alice.iq("set", ps(`<create node='`+c.node+`'/><configure>`+form(core.FormNodeConfig, "submit", "pubsub#access_model", c.model)+`</configure>`)))
		testserver.WantResult(t, alice.iq("set", publish(c.node, "1", "hi")))
	}
	if got := itemIDs(t, bob.iq("get", ps(`<items node='friends'/>`))); !slices.Equal(got, []string{"1"}) {
		t.Fatalf("contact reads presence node: %v", got)
	}
	wantError(t, carol.iq("get", ps(`<items node='friends'/>`)), "not-authorized", "auth", "presence-subscription-required")
	wantError(t, carol.iq("set", subscribe("friends", bare("carol"))), "not-authorized", "auth", "presence-subscription-required")
	wantError(t, bob.iq("get", ps(`<items node='secret'/>`)), "not-allowed", "cancel", "closed-node")
	testserver.WantResult(t, alice.iq("set", owner(`<affiliations node='secret'><affiliation jid='`+bare("bob")+`' affiliation='member'/></affiliations>`)))
	if got := itemIDs(t, bob.iq("get", ps(`<items node='secret'/>`))); !slices.Equal(got, []string{"1"}) {
		t.Fatalf("member reads whitelist node: %v", got)
	}
	// A publisher may publish; the owner cannot drop its own ownership.
	testserver.WantResult(t, alice.iq("set", owner(`<affiliations node='secret'><affiliation jid='`+bare("carol")+`' affiliation='publisher'/></affiliations>`)))
	testserver.WantResult(t, carol.iq("set", publish("secret", "2", "from carol")))
	testserver.WantIQError(t, alice.iq("set", owner(`<affiliations node='secret'><affiliation jid='`+bare("alice")+`' affiliation='none'/></affiliations>`)), "not-acceptable", "modify")
	affs := alice.iq("get", owner(`<affiliations node='secret'/>`))
	if s := affs.String(); !strings.Contains(s, "publisher") || !strings.Contains(s, "member") {
		t.Fatalf("affiliations: %s", s)
	}
}

// TestAuthorize runs the authorize access model: a subscription waits for
// the owner, who gets the authorization form as a message and approves
// one subscriber and denies another; each is told, and only the approved
// one reads items and gets notifications. The owner then lists and
// changes subscriptions (§8.8).
func TestAuthorize(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, "alice", "bob", "carol")
		alice, bob, carol := online(t, s, "alice"), online(t, s, "bob"), online(t, s, "carol")
		testserver.WantResult(t, alice.iq("set", ps(`<create node='club'/><configure>`+form(core.FormNodeConfig, "submit", "pubsub#access_model", "authorize")+`</configure>`)))
		testserver.WantResult(t, alice.iq("set", publish("club", "1", "welcome")))

		for _, c := range []*client{bob, carol} {
			j := c.LocalAddr().Bare().String()
			sub := c.iq("set", subscribe("club", j))
			testserver.WantResult(t, sub)
			if e := sub.Child(core.NS, "pubsub").Child(core.NS, "subscription"); e == nil || e.Get("subscription") != "pending" {
				t.Fatalf("subscribe to authorize node: %s", sub)
			}
			wantError(t, c.iq("get", ps(`<items node='club'/>`)), "not-authorized", "auth", "not-subscribed")
			req := alice.MustNext(t, "authorization request for "+j, func(e *router.Element) bool {
				return e.Name.Local == "message" && e.Get("from") == service && strings.Contains(e.String(), core.FormSubscribeAuthorization) && strings.Contains(e.String(), j)
			})
			subid := ""
			x := req.Child("jabber:x:data", "x")
			for _, f := range x.Elements() {
				if f.Get("var") == "pubsub#subid" {
					subid = f.Child("jabber:x:data", "value").Text()
				}
			}
			allow := "false"
			if c == bob {
				allow = "true"
			}
			// A stranger's answer changes nothing.
			carol.MustSend(t, `<message to='`+service+`'>`+form(core.FormSubscribeAuthorization, "submit",
				"pubsub#subid", subid, "pubsub#node", "club", "pubsub#subscriber_jid", j, "pubsub#allow", "true")+`</message>`)
			alice.MustSend(t, `<message to='`+service+`'>`+form(core.FormSubscribeAuthorization, "submit",
				"pubsub#subid", subid, "pubsub#node", "club", "pubsub#subscriber_jid", j, "pubsub#allow", allow)+`</message>`)
			want := map[string]string{"true": "subscribed", "false": "none"}[allow]
			c.MustNext(t, "subscription "+want, subscriptionEvent(want))
		}
		if got := itemIDs(t, bob.iq("get", ps(`<items node='club'/>`))); !slices.Equal(got, []string{"1"}) {
			t.Fatalf("approved subscriber's items: %v", got)
		}
		wantError(t, carol.iq("get", ps(`<items node='club'/>`)), "not-authorized", "auth", "not-subscribed")
		testserver.WantResult(t, alice.iq("set", publish("club", "2", "news")))
		bob.MustNext(t, "notification", event("items", "club", "2"))
		carol.ExpectNone(t, "notification to the denied", event("items", "club", "2"))

		subs := alice.iq("get", owner(`<subscriptions node='club'/>`))
		testserver.WantResult(t, subs)
		if s := subs.String(); !strings.Contains(s, bare("bob")) || strings.Contains(s, bare("carol")) {
			t.Fatalf("subscriptions: %s", s)
		}
		wantError(t, bob.iq("get", owner(`<subscriptions node='club'/>`)), "forbidden", "auth", "")
		testserver.WantResult(t, alice.iq("set", owner(`<subscriptions node='club'><subscription jid='`+bare("bob")+`' subscription='none'/><subscription jid='`+bare("carol")+`' subscription='subscribed'/></subscriptions>`)))
		bob.MustNext(t, "subscription removed", subscriptionEvent("none"))
		testserver.WantResult(t, alice.iq("set", publish("club", "3", "more")))
		carol.MustNext(t, "notification to the owner's new subscriber", event("items", "club", "3"))
		bob.ExpectNone(t, "notification after removal", event("items", "club", "3"))
	})
}

// TestCreators checks who may create nodes.
func TestCreators(t *testing.T) { storetest.Run(t, testCreators) }

func testCreators(t *testing.T, b storetest.Backend) {
	s := testserver.StartOn(t, b, func(c *config.Config) {
		c.Hosts = append(c.Hosts, config.Host{Domain: "other.test"})
	})
	s.AddUser("alice", password)
	alice := online(t, s, "alice")
	testserver.WantResult(t, alice.iq("set", ps(`<create node='mine'/>`)))
	// alice@localhost on pubsub.other.test: local accounts may by default.
	r := alice.MustRequest(t, `<iq type='set' id='c2' to='pubsub.other.test'>`+ps(`<create node='there'/>`)+`</iq>`)
	testserver.WantResult(t, r)
}
