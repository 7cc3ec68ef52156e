package pep_test

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/caps"
	"github.com/xmppd/xmppd/modules/pubsub/core"
	"github.com/xmppd/xmppd/router"
)

// TestSubscribe checks explicit subscriptions: a contact the access model
// allows subscribes, gets the last item at once and then new items; a
// stranger is refused; unsubscribing twice fails the second time; the
// subscriber lists its own subscriptions and the owner its affiliations.
func TestSubscribe(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob", "carol")
		befriend(t, s, "alice", "bob")
		alice := bare("alice")
		a := login(t, s, "alice", "phone")
		testserver.WantResult(t, a.iq("set", "", publishXML(nsNick, "n1", nick("Alice"))))
		bob := login(t, s, "bob", "pc")
		full := bob.LocalAddr().String()
		sub := func(op string) string {
			return `<pubsub xmlns='` + core.NS + `'><` + op + ` node='` + nsNick + `' jid='` + full + `'/></pubsub>`
		}
		e := bob.iq("set", alice, sub("subscribe"))
		testserver.WantResult(t, e)
		if st := e.Child(core.NS, "pubsub").Child(core.NS, "subscription"); st.Get("subscription") != "subscribed" || st.Get("subid") == "" {
			t.Fatalf("subscription %s", e)
		}
		bob.MustNext(t, "the last item on subscribing", isEvent(alice, nsNick, "item", "n1"))
		testserver.WantResult(t, a.iq("set", "", publishXML(nsNick, "n2", nick("Alicia"))))
		bob.MustNext(t, "the new item", isEvent(alice, nsNick, "item", "n2"))

		e = bob.iq("get", alice, `<pubsub xmlns='`+core.NS+`'><subscriptions/></pubsub>`)
		testserver.WantResult(t, e)
		if st := e.Child(core.NS, "pubsub").Child(core.NS, "subscriptions").Child(core.NS, "subscription"); st == nil || st.Get("node") != nsNick || st.Get("jid") != full {
			t.Fatalf("own subscriptions %s", e)
		}
		e = a.iq("get", "", `<pubsub xmlns='`+core.NS+`'><affiliations/></pubsub>`)
		testserver.WantResult(t, e)
		if af := e.Child(core.NS, "pubsub").Child(core.NS, "affiliations").Child(core.NS, "affiliation"); af == nil || af.Get("affiliation") != "owner" {
			t.Fatalf("own affiliations %s", e)
		}

		carol := login(t, s, "carol", "pc")
		wantError(t, carol.iq("set", alice, `<pubsub xmlns='`+core.NS+`'><subscribe node='`+nsNick+`' jid='`+carol.LocalAddr().String()+`'/></pubsub>`),
			"not-authorized", "auth", "presence-subscription-required")
		wantError(t, carol.iq("set", alice, sub("subscribe")), "bad-request", "modify", "invalid-jid")

		testserver.WantResult(t, bob.iq("set", alice, sub("unsubscribe")))
		wantError(t, bob.iq("set", alice, sub("unsubscribe")), "unexpected-request", "cancel", "not-subscribed")
		testserver.WantResult(t, a.iq("set", "", publishXML(nsNick, "n3", nick("Al"))))
		a.MustSync(t)
		bob.ExpectNone(t, "an item after unsubscribing", isEvent(alice, nsNick, "item", "n3"))
	})
}

// TestNewPresenceSubscription replays the subscription exchange of two
// online clients: once bob is subscribed to alice and alice sees bob's
// presence, bob's resource that advertises the avatar's +notify gets
// alice's last avatar (XEP-0163 §4.3.4).
func TestNewPresenceSubscription(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob")
		alice, bob := bare("alice"), bare("bob")
		a := online(t, s, "alice", "phone")
		testserver.WantResult(t, a.iq("set", "", publishXML(nsAvatar, "v1", avatarMeta("v1"))))
		bc := online(t, s, "bob", "pc", caps.Notify(nsAvatar))
		bc.MustSync(t)
		a.MustSync(t)
		bc.ExpectNone(t, "an avatar before subscribing", isEvent(alice, nsAvatar, "item", "v1"))

		isSub := func(from, typ string) func(*router.Element) bool {
			return func(e *router.Element) bool {
				return e.Name.Local == "presence" && e.Get("type") == typ && strings.HasPrefix(e.Get("from"), from)
			}
		}
		bc.MustSend(t, `<presence to='`+alice+`' type='subscribe'/>`)
		a.MustNext(t, "bob's request", isSub(bob, "subscribe"))
		a.MustSend(t, `<presence to='`+bob+`' type='subscribed'/>`)
		a.MustSend(t, `<presence to='`+bob+`' type='subscribe'/>`)
		bc.MustNext(t, "alice's request", isSub(alice, "subscribe"))
		bc.MustSend(t, `<presence to='`+alice+`' type='subscribed'/>`)
		bc.MustNext(t, "alice's last avatar", isEvent(alice, nsAvatar, "item", "v1"))
	})
}
