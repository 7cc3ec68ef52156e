package pep_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/pubsub/core"
	"github.com/xmppd/xmppd/router"
)

// TestDisco checks what the account's bare JID advertises: the pubsub/pep
// identity and the features Conversations checks before it turns OMEMO on.
func TestDisco(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice")
		a := login(t, s, "alice", "phone")
		e := a.iq("get", bare("alice"), `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
		testserver.WantResult(t, e)
		if !hasPEPIdentity(e) {
			t.Errorf("no pubsub/pep identity: %s", e)
		}
		for _, f := range []string{core.NS, core.NS + "#publish", core.NS + "#publish-options", core.NS + "#auto-create", core.NS + "#access-open"} {
			if !testserver.HasFeature(e, f) {
				t.Errorf("feature %s not advertised", f)
			}
		}
	})
}

// TestOwnerRequests runs, in order, the owner's requests on its own
// service and what each must answer.
func TestOwnerRequests(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice")
		a := login(t, s, "alice", "phone")
		const node = "urn:xmpp:test"
		big := `<data xmlns='urn:xmpp:test'>` + strings.Repeat("x", 5000) + `</data>`
		steps := []struct {
			name, typ, payload string
			// check looks at the answer.
			check func(t *testing.T, e *router.Element)
		}{
			{"items of a missing node", "get", itemsXML(node, ""), func(t *testing.T, e *router.Element) {
				wantError(t, e, "item-not-found", "cancel", "")
			}},
			{"publish creates the node", "set", publishXML(node, "a", `<p xmlns='urn:xmpp:test'>1</p>`), func(t *testing.T, e *router.Element) {
				testserver.WantResult(t, e)
				if id := e.Child(core.NS, "pubsub").Child(core.NS, "publish").Child(core.NS, "item").Get("id"); id != "a" {
					t.Errorf("published id %q, want a", id)
				}
			}},
			{"publish without id", "set", publishXML(node, "", `<p xmlns='urn:xmpp:test'>2</p>`), func(t *testing.T, e *router.Element) {
				testserver.WantResult(t, e)
				if id := e.Child(core.NS, "pubsub").Child(core.NS, "publish").Child(core.NS, "item").Get("id"); id == "" || id == "a" {
					t.Errorf("generated id %q", id)
				}
			}},
			{"default keeps one item", "get", itemsXML(node, ""), func(t *testing.T, e *router.Element) {
				if ids := itemIDs(t, e); len(ids) != 1 || ids[0] == "a" {
					t.Errorf("items %v, want the generated one only", ids)
				}
			}},
			{"configure form", "get", ownerXML("configure", node, ""), func(t *testing.T, e *router.Element) {
				testserver.WantResult(t, e)
				x := e.Child(core.NSOwner, "pubsub").Child(core.NSOwner, "configure").Child("jabber:x:data", "x")
				f, _ := core.ParseForm(x)
				if f.Type != core.FormNodeConfig || f.Fields[core.FieldMaxItems][0] != "1" || f.Fields[core.FieldAccessModel][0] != "presence" {
					t.Errorf("form %v", f.Fields)
				}
			}},
			{"configure max_items 10", "set", ownerXML("configure", node, form(core.FormNodeConfig, "submit", core.FieldMaxItems, "10")), testserverResult},
			{"publish b", "set", publishXML(node, "b", `<p xmlns='urn:xmpp:test'>b</p>`), testserverResult},
			{"publish c", "set", publishXML(node, "c", `<p xmlns='urn:xmpp:test'>c</p>`), testserverResult},
			{"max_items 2", "get", itemsXML(node, " max_items='2'"), func(t *testing.T, e *router.Element) {
				if ids := itemIDs(t, e); !slices.Equal(ids, []string{"c", "b"}) {
					t.Errorf("items %v, want [c b]", ids)
				}
			}},
			{"item by id", "get", itemsXML(node, "", "b"), func(t *testing.T, e *router.Element) {
				ids := itemIDs(t, e)
				if !slices.Equal(ids, []string{"b"}) {
					t.Errorf("items %v, want [b]", ids)
				}
				if p := e.Child(core.NS, "pubsub").Child(core.NS, "items").Child(core.NS, "item").Child("urn:xmpp:test", "p"); p == nil || p.Text() != "b" {
					t.Errorf("payload lost: %s", e)
				}
			}},
			{"retract b", "set", `<pubsub xmlns='` + core.NS + `'><retract node='` + node + `' notify='true'><item id='b'/></retract></pubsub>`, testserverResult},
			{"retract b again", "set", `<pubsub xmlns='` + core.NS + `'><retract node='` + node + `'><item id='b'/></retract></pubsub>`, func(t *testing.T, e *router.Element) {
				wantError(t, e, "item-not-found", "cancel", "")
			}},
			{"payload too big", "set", publishXML(node, "big", big), func(t *testing.T, e *router.Element) {
				wantError(t, e, "not-acceptable", "modify", "payload-too-big")
			}},
			{"two payloads", "set", publishXML(node, "two", `<p xmlns='urn:xmpp:test'/><q xmlns='urn:xmpp:test'/>`), func(t *testing.T, e *router.Element) {
				wantError(t, e, "bad-request", "modify", "invalid-payload")
			}},
			{"max_items above the limit", "set", ownerXML("configure", node, form(core.FormNodeConfig, "submit", core.FieldMaxItems, "21")), func(t *testing.T, e *router.Element) {
				wantError(t, e, "not-acceptable", "modify", "")
			}},
			{"authorize refused", "set", ownerXML("configure", node, form(core.FormNodeConfig, "submit", core.FieldAccessModel, "authorize")), func(t *testing.T, e *router.Element) {
				wantError(t, e, "feature-not-implemented", "cancel", "unsupported")
			}},
			{"purge", "set", ownerXML("purge", node, ""), testserverResult},
			{"purged", "get", itemsXML(node, ""), func(t *testing.T, e *router.Element) {
				if ids := itemIDs(t, e); len(ids) != 0 {
					t.Errorf("items %v after purge", ids)
				}
			}},
			{"delete", "set", ownerXML("delete", node, ""), testserverResult},
			{"deleted", "get", itemsXML(node, ""), func(t *testing.T, e *router.Element) {
				wantError(t, e, "item-not-found", "cancel", "")
			}},
			{"publish-options create an open node", "set", publishXML("open", "1", `<p xmlns='urn:xmpp:test'/>`, core.FieldAccessModel, "open", core.FieldMaxItems, "max"), testserverResult},
			{"open node configured so", "get", ownerXML("configure", "open", ""), func(t *testing.T, e *router.Element) {
				f, _ := core.ParseForm(e.Child(core.NSOwner, "pubsub").Child(core.NSOwner, "configure").Child("jabber:x:data", "x"))
				if f.Fields[core.FieldAccessModel][0] != "open" || f.Fields[core.FieldMaxItems][0] != "max" {
					t.Errorf("form %v", f.Fields)
				}
			}},
			{"precondition met", "set", publishXML("open", "2", `<p xmlns='urn:xmpp:test'/>`, core.FieldAccessModel, "open"), testserverResult},
			{"precondition not met", "set", publishXML("open", "3", `<p xmlns='urn:xmpp:test'/>`, core.FieldAccessModel, "presence"), func(t *testing.T, e *router.Element) {
				wantError(t, e, "conflict", "cancel", "precondition-not-met")
			}},
			{"unknown option", "set", publishXML("open", "3", `<p xmlns='urn:xmpp:test'/>`, "pubsub#nonsense", "1"), func(t *testing.T, e *router.Element) {
				wantError(t, e, "conflict", "cancel", "precondition-not-met")
			}},
			{"options before publish", "set", `<pubsub xmlns='` + core.NS + `'><publish-options>` + form(core.FormPublishOptions, "submit", core.FieldAccessModel, "open") +
				`</publish-options><publish node='open'><item id='2'><p xmlns='urn:xmpp:test'/></item></publish></pubsub>`, testserverResult},
			{"max_items kept all", "get", itemsXML("open", ""), func(t *testing.T, e *router.Element) {
				if ids := itemIDs(t, e); !slices.Equal(ids, []string{"2", "1"}) {
					t.Errorf("items %v, want [2 1]", ids)
				}
			}},
		}
		for _, st := range steps {
			st.check(t, a.iq(st.typ, "", st.payload))
			if t.Failed() {
				t.Fatalf("at step %q", st.name)
			}
		}
	})
}

func testserverResult(t *testing.T, e *router.Element) { testserver.WantResult(t, e) }

// TestDinoRepublish replays Dino's flow: a publish with options that the
// existing node does not meet fails with precondition-not-met; Dino then
// reconfigures the node and publishes again, which succeeds.
func TestDinoRepublish(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice")
		a := login(t, s, "alice", "dino")
		testserver.WantResult(t, a.iq("set", "", publishXML(nsDeviceList, "current", `<list xmlns='`+nsAxolotl+`'><device id='1'/></list>`)))
		opts := []string{core.FieldAccessModel, "open"}
		wantError(t, a.iq("set", "", publishXML(nsDeviceList, "current", `<list xmlns='`+nsAxolotl+`'><device id='1'/><device id='2'/></list>`, opts...)),
			"conflict", "cancel", "precondition-not-met")
		cfg := a.iq("get", "", ownerXML("configure", nsDeviceList, ""))
		testserver.WantResult(t, cfg)
		testserver.WantResult(t, a.iq("set", "", ownerXML("configure", nsDeviceList, form(core.FormNodeConfig, "submit", opts...))))
		testserver.WantResult(t, a.iq("set", "", publishXML(nsDeviceList, "current", `<list xmlns='`+nsAxolotl+`'><device id='1'/><device id='2'/></list>`, opts...)))
	})
}

// TestAccessModels checks who may read a node of each access model: the
// owner always, a subscribed contact a presence node, a contact in an
// allowed group a roster node, a stranger only an open node, and only the
// owner and members a whitelist node.
func TestAccessModels(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob", "carol", "dave")
		befriend(t, s, "alice", "bob", "friends")
		befriend(t, s, "alice", "dave")
		a := login(t, s, "alice", "phone")
		for _, n := range []struct{ node, model string }{{"presence", "presence"}, {"open", "open"}, {"roster", "roster"}, {"white", "whitelist"}} {
			testserver.WantResult(t, a.iq("set", "", publishXML(n.node, "1", `<p xmlns='urn:xmpp:test'/>`, core.FieldAccessModel, n.model)))
		}
		testserver.WantResult(t, a.iq("set", "", ownerXML("configure", "roster", form(core.FormNodeConfig, "submit", core.FieldRosterGroups, "friends"))))
		clients := map[string]*client{"alice": a, "bob": login(t, s, "bob", "x"), "carol": login(t, s, "carol", "x"), "dave": login(t, s, "dave", "x")}
		for _, c := range []struct {
			who, node  string
			cond, app  string // "" for allowed
			errType    string
			afterGrant bool
		}{
			{"alice", "presence", "", "", "", false},
			{"bob", "presence", "", "", "", false},
			{"carol", "presence", "not-authorized", "presence-subscription-required", "auth", false},
			{"carol", "open", "", "", "", false},
			{"bob", "roster", "", "", "", false},
			{"dave", "roster", "not-authorized", "not-in-roster-group", "auth", false},
			{"alice", "white", "", "", "", false},
			{"bob", "white", "not-allowed", "closed-node", "cancel", false},
			{"bob", "white", "", "", "", true},
		} {
			t.Run(c.who+"/"+c.node, func(t *testing.T) {
				if c.afterGrant {
					testserver.WantResult(t, a.iq("set", "", ownerXML("affiliations", "white", `<affiliation jid='`+bare(c.who)+`' affiliation='member'/>`)))
				}
				e := clients[c.who].iq("get", bare("alice"), itemsXML(c.node, ""))
				if c.cond == "" {
					if ids := itemIDs(t, e); !slices.Equal(ids, []string{"1"}) {
						t.Errorf("items %v", ids)
					}
					return
				}
				wantError(t, e, c.cond, c.errType, c.app)
			})
		}
		// Only the owner publishes or configures.
		wantError(t, clients["bob"].iq("set", bare("alice"), publishXML("open", "2", `<p xmlns='urn:xmpp:test'/>`)), "forbidden", "auth", "")
		wantError(t, clients["bob"].iq("get", bare("alice"), ownerXML("configure", "open", "")), "forbidden", "auth", "")
	})
}

// TestNodeLimit checks max-nodes-exceeded.
func TestNodeLimit(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice")
		a := login(t, s, "alice", "phone")
		for i := range testOptions.MaxNodes {
			testserver.WantResult(t, a.iq("set", "", publishXML("n"+string(rune('a'+i)), "1", `<p xmlns='urn:xmpp:test'/>`)))
		}
		wantError(t, a.iq("set", "", publishXML("one-too-many", "1", `<p xmlns='urn:xmpp:test'/>`)), "not-allowed", "cancel", "max-nodes-exceeded")
		wantError(t, a.iq("set", "", `<pubsub xmlns='`+core.NS+`'><create node='one-more'/></pubsub>`), "not-allowed", "cancel", "max-nodes-exceeded")
	})
}

// discoItems returns the nodes of a disco#items answer, sorted.
func discoItems(t *testing.T, e *router.Element, service string) []string {
	t.Helper()
	testserver.WantResult(t, e)
	var nodes []string
	for _, it := range e.Child(nsDiscoItems, "query").Elements() {
		if it.Get("jid") != service {
			t.Errorf("item of another jid: %s", it)
		}
		nodes = append(nodes, it.Get("node"))
	}
	slices.Sort(nodes)
	return nodes
}

const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
)

// hasPEPIdentity tells whether a disco#info answer has pubsub/pep.
func hasPEPIdentity(e *router.Element) bool {
	for _, id := range e.Child(nsDiscoInfo, "query").Elements() {
		if id.Name.Local == "identity" && id.Get("category") == "pubsub" && id.Get("type") == "pep" {
			return true
		}
	}
	return false
}

// TestContactDiscovery checks XEP-0163 §6.2: a contact subscribed to the
// account's presence (both, or from) discovers on the bare JID that it is
// a PEP service with its features, and lists the nodes it may read (not
// a whitelist node, not a roster node of another group); a stranger gets
// service-unavailable for both, as from an account that does not exist.
func TestContactDiscovery(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob", "dave", "carol")
		befriend(t, s, "alice", "bob", "friends")
		subscribe(t, s, "alice", "dave")
		alice := bare("alice")
		a := login(t, s, "alice", "phone")
		testserver.WantResult(t, a.iq("set", "", publishXML(nsNick, "n1", nick("Alice"))))
		testserver.WantResult(t, a.iq("set", "", publishXML(nsDeviceList, "current", `<list xmlns='`+nsAxolotl+`'/>`, core.FieldAccessModel, "open")))
		testserver.WantResult(t, a.iq("set", "", publishXML("urn:xmpp:private", "1", `<p xmlns='urn:xmpp:private'/>`, core.FieldAccessModel, "whitelist")))
		testserver.WantResult(t, a.iq("set", "", publishXML("friends", "1", `<p xmlns='urn:xmpp:friends'/>`, core.FieldAccessModel, "roster")))
		testserver.WantResult(t, a.iq("set", "", ownerXML("configure", "friends", form(core.FormNodeConfig, "submit", core.FieldRosterGroups, "friends", core.FieldTitle, "For friends"))))

		for _, c := range []struct {
			who   string
			nodes []string
		}{
			{"alice", []string{nsDeviceList, "friends", nsNick, "urn:xmpp:private"}},
			{"bob", []string{nsDeviceList, "friends", nsNick}},
			{"dave", []string{nsDeviceList, nsNick}},
		} {
			t.Run(c.who, func(t *testing.T) {
				cl := a
				if c.who != "alice" {
					cl = login(t, s, c.who, "x")
				}
				e := cl.iq("get", alice, `<query xmlns='`+nsDiscoInfo+`'/>`)
				testserver.WantResult(t, e)
				if !hasPEPIdentity(e) {
					t.Errorf("no pubsub/pep identity: %s", e)
				}
				for _, f := range []string{core.NS + "#publish", core.NS + "#access-presence", core.NS + "#retrieve-items"} {
					if !testserver.HasFeature(e, f) {
						t.Errorf("feature %s not advertised", f)
					}
				}
				got := discoItems(t, cl.iq("get", alice, `<query xmlns='`+nsDiscoItems+`'/>`), alice)
				want := slices.Sorted(slices.Values(c.nodes))
				if !slices.Equal(got, want) {
					t.Errorf("nodes %v, want %v", got, want)
				}
			})
		}
		carol := login(t, s, "carol", "x")
		for _, ns := range []string{nsDiscoInfo, nsDiscoItems} {
			testserver.WantIQError(t, carol.iq("get", alice, `<query xmlns='`+ns+`'/>`), "service-unavailable", "cancel")
			testserver.WantIQError(t, carol.iq("get", bare("nobody"), `<query xmlns='`+ns+`'/>`), "service-unavailable", "cancel")
		}
	})
}
