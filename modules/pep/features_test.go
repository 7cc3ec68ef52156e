package pep_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/caps"
	"github.com/xmppd/xmppd/modules/pubsub/core"
	"github.com/xmppd/xmppd/router"
)

// TestAdvertisedFeatures checks that the account's disco#info lists
// exactly the pubsub#… features of core.Features, no more and no fewer,
// so that every advertised one is one the tests below exercise.
func TestAdvertisedFeatures(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice")
		a := login(t, s, "alice", "phone")
		e := a.iq("get", bare("alice"), `<query xmlns='`+nsDiscoInfo+`'/>`)
		testserver.WantResult(t, e)
		var got []string
		for _, f := range e.Child(nsDiscoInfo, "query").Elements() {
			if v := f.Get("var"); f.Name.Local == "feature" && (v == core.NS || strings.HasPrefix(v, core.NS+"#")) {
				got = append(got, v)
			}
		}
		want := slices.Clone(core.Features)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("pubsub features on the account:\n got %v\nwant %v", got, want)
		}
	})
}

// TestNodeFeatures exercises, on the account's own PEP service, the
// advertised features that clients seldom use but may: explicit and
// instant creation, create-and-configure, the default configuration,
// publisher and outcast affiliations, and the node options whose effect
// is not a stored value (send_last_published_item never, notify_retract).
func TestNodeFeatures(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob", "mallory")
		befriend(t, s, "alice", "bob")
		a := login(t, s, "alice", "phone")
		const alice = "alice@" + testserver.Domain

		t.Run("create-nodes", func(t *testing.T) {
			testserver.WantResult(t, a.iq("set", "", `<pubsub xmlns='`+core.NS+`'><create node='urn:xmpp:test:made'/></pubsub>`))
			if ids := itemIDs(t, a.iq("get", "", itemsXML("urn:xmpp:test:made", ""))); len(ids) != 0 {
				t.Errorf("a new node has items %v", ids)
			}
			wantError(t, a.iq("set", "", `<pubsub xmlns='`+core.NS+`'><create node='urn:xmpp:test:made'/></pubsub>`), "conflict", "cancel", "")
		})
		t.Run("instant-nodes", func(t *testing.T) {
			e := a.iq("set", "", `<pubsub xmlns='`+core.NS+`'><create/></pubsub>`)
			testserver.WantResult(t, e)
			name := e.Child(core.NS, "pubsub").Child(core.NS, "create").Get("node")
			if name == "" {
				t.Fatalf("instant node without a name: %s", e)
			}
			if ids := itemIDs(t, a.iq("get", "", itemsXML(name, ""))); len(ids) != 0 {
				t.Errorf("instant node %s has items %v", name, ids)
			}
		})
		t.Run("create-and-configure", func(t *testing.T) {
			testserver.WantResult(t, a.iq("set", "", `<pubsub xmlns='`+core.NS+`'><create node='urn:xmpp:test:conf'/><configure>`+
				form(core.FormNodeConfig, "submit", core.FieldAccessModel, "open", core.FieldMaxItems, "7", core.FieldType, "urn:xmpp:test:payload")+`</configure></pubsub>`))
			cfg := a.iq("get", "", ownerXML("configure", "urn:xmpp:test:conf", ""))
			testserver.WantResult(t, cfg)
			for _, want := range []string{"open", "<value>7</value>", "urn:xmpp:test:payload"} {
				if !strings.Contains(cfg.String(), want) {
					t.Errorf("configuration without %q: %s", want, cfg)
				}
			}
		})
		t.Run("retrieve-default", func(t *testing.T) {
			e := a.iq("get", "", `<pubsub xmlns='`+core.NSOwner+`'><default/></pubsub>`)
			testserver.WantResult(t, e)
			d := e.Child(core.NSOwner, "pubsub").Child(core.NSOwner, "default")
			if d == nil || !strings.Contains(d.String(), core.FormNodeConfig) || !strings.Contains(d.String(), core.FieldAccessModel) {
				t.Fatalf("default configuration: %s", e)
			}
		})
		t.Run("publisher-affiliation", func(t *testing.T) {
			const node = "urn:xmpp:test:shared"
			testserver.WantResult(t, a.iq("set", "", publishXML(node, "a1", `<p xmlns='urn:xmpp:test'/>`)))
			bob := login(t, s, "bob", "desk")
			wantError(t, bob.iq("set", alice, publishXML(node, "b1", `<p xmlns='urn:xmpp:test'/>`)), "forbidden", "auth", "")
			testserver.WantResult(t, a.iq("set", "", ownerXML("affiliations", node, `<affiliation jid='`+bare("bob")+`' affiliation='publisher'/>`)))
			testserver.WantResult(t, bob.iq("set", alice, publishXML(node, "b1", `<p xmlns='urn:xmpp:test'/>`)))
			if ids := itemIDs(t, a.iq("get", "", itemsXML(node, "", "b1"))); !slices.Equal(ids, []string{"b1"}) {
				t.Errorf("bob's item is not on alice's node: %v", ids)
			}
		})
		t.Run("outcast-affiliation", func(t *testing.T) {
			const node = "urn:xmpp:test:public"
			testserver.WantResult(t, a.iq("set", "", publishXML(node, "p1", `<p xmlns='urn:xmpp:test'/>`, core.FieldAccessModel, "open")))
			m := login(t, s, "mallory", "x")
			if ids := itemIDs(t, m.iq("get", alice, itemsXML(node, ""))); !slices.Equal(ids, []string{"p1"}) {
				t.Fatalf("a stranger reads the open node: %v", ids)
			}
			testserver.WantResult(t, a.iq("set", "", ownerXML("affiliations", node, `<affiliation jid='`+bare("mallory")+`' affiliation='outcast'/>`)))
			testserver.WantIQError(t, m.iq("get", alice, itemsXML(node, "")), "forbidden", "auth")
		})
		t.Run("send_last_published_item", func(t *testing.T) {
			const sent, never = "urn:xmpp:test:sent", "urn:xmpp:test:never"
			testserver.WantResult(t, a.iq("set", "", publishXML(sent, "s1", `<p xmlns='urn:xmpp:test'/>`)))
			testserver.WantResult(t, a.iq("set", "", publishXML(never, "n1", `<p xmlns='urn:xmpp:test'/>`, core.FieldSendLast, "never")))
			bob := online(t, s, "bob", "tablet", caps.Notify(sent), caps.Notify(never))
			bob.MustNext(t, "the last item of an on_sub_and_presence node", isEvent(alice, sent, "item", "s1"))
			bob.ExpectNone(t, "the last item of a never node", isEvent(alice, never, "item", "n1"))
		})
		t.Run("notify_retract", func(t *testing.T) {
			const quiet = "urn:xmpp:test:quiet"
			testserver.WantResult(t, a.iq("set", "", publishXML(quiet, "q1", `<p xmlns='urn:xmpp:test'/>`, core.FieldNotifyRetract, "0", core.FieldMaxItems, "5")))
			testserver.WantResult(t, a.iq("set", "", publishXML(quiet, "q2", `<p xmlns='urn:xmpp:test'/>`, core.FieldNotifyRetract, "0", core.FieldMaxItems, "5")))
			bob := online(t, s, "bob", "watch", caps.Notify(quiet))
			bob.MustNext(t, "the last item", isEvent(alice, quiet, "item", "q2"))
			retract := func(id, attrs string) string {
				return `<pubsub xmlns='` + core.NS + `'><retract node='` + quiet + `'` + attrs + `><item id='` + id + `'/></retract></pubsub>`
			}
			testserver.WantResult(t, a.iq("set", "", retract("q1", "")))
			a.MustSync(t)
			bob.ExpectNone(t, "a retraction from a notify_retract=0 node", isEvent(alice, quiet, "retract", "q1"))
			// The request's notify attribute asks for it anyway (§7.2.2.1).
			testserver.WantResult(t, a.iq("set", "", retract("q2", ` notify='true'`)))
			bob.MustNext(t, "a retraction asked for with notify", isEvent(alice, quiet, "retract", "q2"))
		})
	})
}

// TestNickname is XEP-0172 as clients use it: a nickname published to
// http://jabber.org/protocol/nick with the default (presence) access
// reaches contacts that want it (+notify) and their later sessions, and
// no one without a subscription may read it.
func TestNickname(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob", "mallory")
		befriend(t, s, "alice", "bob")
		const alice = "alice@" + testserver.Domain
		a := login(t, s, "alice", "phone")
		bob := online(t, s, "bob", "desk", caps.Notify(nsNick))
		bob.Drain(t)
		testserver.WantResult(t, a.iq("set", "", publishXML(nsNick, "current", nick("Alice Liddell"))))
		ev := bob.MustNext(t, "the nickname", isEvent(alice, nsNick, "item", "current"))
		if n := eventItem(ev).Child(nsNick, "nick"); n == nil || n.Text() != "Alice Liddell" {
			t.Fatalf("notified nickname: %s", ev)
		}
		later := online(t, s, "bob", "phone", caps.Notify(nsNick))
		later.MustNext(t, "the nickname on a new session", isEvent(alice, nsNick, "item", "current"))
		m := login(t, s, "mallory", "x")
		wantError(t, m.iq("get", alice, itemsXML(nsNick, "")), "not-authorized", "auth", "presence-subscription-required")
		noNotify := online(t, s, "bob", "old", caps.NSDiscoInfo)
		noNotify.ExpectNone(t, "a nickname without +notify", func(e *router.Element) bool {
			return isEvent(alice, nsNick, "item", "current")(e)
		})
	})
}
