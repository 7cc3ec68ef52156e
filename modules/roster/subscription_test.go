package roster_test

import (
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
)

// TestSubscriptionHandshake walks two online local users through RFC 6121
// §3: a request, its approval, the same the other way, then an
// unsubscribe and a cancellation, checking at each step the roster pushes
// on both sides, the subscription stanzas delivered and the presence that
// starts or stops flowing.
func TestSubscriptionHandshake(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice", "bob")
		a := online(t, s, "alice", "phone")
		bob := online(t, s, "bob", "desk")

		// §3.1.2–3.1.3: alice asks; her roster shows the pending request,
		// bob's client gets the request from her bare JID and bob's roster
		// does not change.
		a.send(`<presence to='bob@localhost' type='subscribe'><status>it is me</status></presence>`)
		a.expectPush(item{JID: bare("bob"), Subscription: "none", Ask: "subscribe"})
		req := bob.next("the subscription request", isPresence(bare("alice"), "subscribe"))
		if st := req.Child("", "status"); st == nil || st.Text() != "it is me" {
			t.Errorf("the request lost its status: %s", req)
		}
		a.sync()
		bob.none("a roster push for an inbound request", anyPush)

		// §3.1.5–3.1.6: bob approves; alice is subscribed to bob (to),
		// bob has alice with from, and alice gets bob's presence.
		bob.send(`<presence to='alice@localhost' type='subscribed'/>`)
		bob.expectPush(item{JID: bare("alice"), Subscription: "from"})
		a.expectPush(item{JID: bare("bob"), Subscription: "to"})
		a.next("the approval", isPresence(bare("bob"), "subscribed"))
		a.next("bob's presence after the approval", isPresence(bob.full, ""))
		bob.none("alice's presence (bob is not subscribed to her)", isPresence(a.full, ""))

		// §3.1.3: asking again while subscribed is answered by bob's
		// server for him, without bothering him; alice's server drops the
		// answer, which changes nothing (A.3.3, "To"), and her roster
		// stays as it is (A.2.1).
		a.send(`<presence to='bob@localhost' type='subscribe'/>`)
		a.sync()
		bob.none("a request he already granted", isPresence(bare("alice"), "subscribe"))
		a.none("a roster push for a subscription she has", anyPush)

		// The other way: both.
		bob.send(`<presence to='alice@localhost' type='subscribe'/>`)
		bob.expectPush(item{JID: bare("alice"), Subscription: "from", Ask: "subscribe"})
		a.next("bob's request", isPresence(bare("bob"), "subscribe"))
		a.send(`<presence to='bob@localhost' type='subscribed'/>`)
		a.awaitPush(item{JID: bare("bob"), Subscription: "both"})
		bob.expectPush(item{JID: bare("alice"), Subscription: "both"})
		bob.next("the approval", isPresence(bare("alice"), "subscribed"))
		bob.next("alice's presence", isPresence(a.full, ""))
		a.expectRoster(item{JID: bare("bob"), Subscription: "both"})
		bob.expectRoster(item{JID: bare("alice"), Subscription: "both"})

		// Presence now flows both ways (§4.4).
		a.available(`<presence><status>lunch</status></presence>`)
		bob.next("alice's new status", withChild(isPresence(a.full, ""), "status", "lunch"))
		bob.available(`<presence><show>dnd</show></presence>`)
		a.next("bob's new status", withChild(isPresence(bob.full, ""), "show", "dnd"))

		// §3.3: alice unsubscribes from bob; she gets bob's unavailable
		// presence, from each of his resources (§3.3.3).
		a.send(`<presence to='bob@localhost' type='unsubscribe'/>`)
		a.expectPush(item{JID: bare("bob"), Subscription: "from"})
		bob.expectPush(item{JID: bare("alice"), Subscription: "to"})
		bob.next("the unsubscribe", isPresence(bare("alice"), "unsubscribe"))
		a.next("bob's unavailable presence", isPresence(bob.full, "unavailable"))

		// §3.2: alice cancels bob's subscription to her; bob gets her
		// unavailable presence and the cancellation.
		a.send(`<presence to='bob@localhost' type='unsubscribed'/>`)
		a.expectPush(item{JID: bare("bob"), Subscription: "none"})
		bob.expectPush(item{JID: bare("alice"), Subscription: "none"})
		bob.next("alice's unavailable presence", isPresence(a.full, "unavailable"))
		bob.next("the cancellation", isPresence(bare("alice"), "unsubscribed"))

		// Nothing flows any more.
		a.drain()
		bob.drain()
		a.available(`<presence><status>alone</status></presence>`)
		bob.available(`<presence><status>alone too</status></presence>`)
		a.sync()
		bob.none("alice's presence", isPresence(a.full, ""))
		a.none("bob's presence", isPresence(bob.full, ""))
		a.expectRoster(item{JID: bare("bob"), Subscription: "none"})
		bob.expectRoster(item{JID: bare("alice"), Subscription: "none"})
	})
}

// TestSubscriptionDeniedAndWithdrawn: a request the contact denies
// (§3.2, "unsubscribed" to a pending request) and one the user withdraws
// (§3.3, "unsubscribe" before an answer) both end the pending state on
// both sides, and neither is delivered again at the next login.
func TestSubscriptionDeniedAndWithdrawn(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice", "bob", "carol")
		a := online(t, s, "alice", "phone")
		bob := online(t, s, "bob", "desk")
		carol := online(t, s, "carol", "pc")

		bob.send(`<presence to='alice@localhost' type='subscribe'/>`)
		bob.expectPush(item{JID: bare("alice"), Subscription: "none", Ask: "subscribe"})
		a.next("bob's request", isPresence(bare("bob"), "subscribe"))
		a.send(`<presence to='bob@localhost' type='unsubscribed'/>`)
		bob.expectPush(item{JID: bare("alice"), Subscription: "none"})
		a.none("a roster item for bob (§3.1.3: a request adds none)", isPush(bare("bob")))
		bob.next("the denial", isPresence(bare("alice"), "unsubscribed"))
		a.sync()
		bob.none("alice's presence after a denial", isPresence(a.full, ""))

		carol.send(`<presence to='alice@localhost' type='subscribe'/>`)
		carol.expectPush(item{JID: bare("alice"), Subscription: "none", Ask: "subscribe"})
		a.next("carol's request", isPresence(bare("carol"), "subscribe"))
		carol.send(`<presence to='alice@localhost' type='unsubscribe'/>`)
		carol.expectPush(item{JID: bare("alice"), Subscription: "none"})
		a.next("carol's withdrawal", isPresence(bare("carol"), "unsubscribe"))

		// Neither request comes back.
		a.Close()
		again := online(t, s, "alice", "laptop")
		again.none("a request that was answered or withdrawn", isPresence("", "subscribe"))
		again.expectRoster()
	})
}

// TestSubscriptionPreApproval: RFC 6121 §3.4. Bob approves alice before
// she asks; her later request is answered by the server at once and never
// reaches bob's client.
func TestSubscriptionPreApproval(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice", "bob")
		a := online(t, s, "alice", "phone")
		bob := online(t, s, "bob", "desk")

		bob.send(`<presence to='alice@localhost' type='subscribed'/>`)
		bob.expectPush(item{JID: bare("alice"), Subscription: "none", Approved: true})
		bob.sync()
		a.none("a pre-approval (§3.4.2: not routed)", isPresence(bare("bob"), "subscribed"))

		a.send(`<presence to='bob@localhost' type='subscribe'/>`)
		a.expectPush(item{JID: bare("bob"), Subscription: "none", Ask: "subscribe"})
		a.expectPush(item{JID: bare("bob"), Subscription: "to"})
		a.next("the automatic approval", isPresence(bare("bob"), "subscribed"))
		a.next("bob's presence", isPresence(bob.full, ""))
		bob.expectPush(item{JID: bare("alice"), Subscription: "from"})
		a.sync()
		bob.none("a pre-approved request", isPresence(bare("alice"), "subscribe"))
		bob.expectRoster(item{JID: bare("alice"), Subscription: "from"})

		// A pre-approval can be withdrawn with unsubscribed (§3.4.1): then
		// a request reaches the user again.
		a.send(`<presence to='bob@localhost' type='subscribed'/>`)
		a.expectPush(item{JID: bare("bob"), Subscription: "to", Approved: true})
		a.send(`<presence to='bob@localhost' type='unsubscribed'/>`)
		a.expectPush(item{JID: bare("bob"), Subscription: "to"})
		a.sync()
		bob.none("the withdrawal of a pre-approval", isPresence(bare("alice"), "unsubscribed"))
		bob.send(`<presence to='alice@localhost' type='subscribe'/>`)
		a.next("bob's request", isPresence(bare("bob"), "subscribe"))
	})
}

// TestSubscriptionRequestWhileOffline: a request made while the contact
// is offline is delivered when the contact next becomes available, and
// at every login after that until it is answered (RFC 6121 §3.1.3), never
// after.
func TestSubscriptionRequestWhileOffline(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice", "bob")
		a := online(t, s, "alice", "phone")
		a.send(`<presence to='bob@localhost' type='subscribe'><status>remember me?</status></presence>`)
		a.expectPush(item{JID: bare("bob"), Subscription: "none", Ask: "subscribe"})
		a.sync()

		// A session that has not sent initial presence is not available:
		// the request waits for it (§3.1.3, §4.2).
		first := login(t, s, "bob", "desk")
		first.rosterGet()
		first.none("a request before initial presence", isPresence(bare("alice"), "subscribe"))
		first.send(`<presence/>`)
		req := first.next("the stored request", isPresence(bare("alice"), "subscribe"))
		if st := req.Child("", "status"); st == nil || st.Text() != "remember me?" {
			t.Errorf("the stored request lost its status: %s", req)
		}
		if to := req.Get("to"); to != bare("bob") && to != first.full {
			t.Errorf("the stored request is addressed to %q", to)
		}
		first.expectRoster()
		first.Close()

		second := online(t, s, "bob", "desk")
		second.next("the request again, unanswered", isPresence(bare("alice"), "subscribe"))
		second.send(`<presence to='alice@localhost' type='subscribed'/>`)
		second.expectPush(item{JID: bare("alice"), Subscription: "from"})
		a.expectPush(item{JID: bare("bob"), Subscription: "to"})
		a.next("the approval", isPresence(bare("bob"), "subscribed"))
		second.Close()

		third := online(t, s, "bob", "desk")
		third.none("a request already answered", isPresence(bare("alice"), "subscribe"))
		third.expectRoster(item{JID: bare("alice"), Subscription: "from"})
	})
}

// TestRosterRemoveCancelsSubscriptions: removing a contact from the roster
// cancels the subscriptions both ways (RFC 6121 §2.5.2): the contact gets
// an unsubscribe and an unsubscribed, its roster is pushed with the item at
// none, and each side gets the other's unavailable presence (§3.2.2,
// §3.3.3), so that neither keeps showing the other online.
func TestRosterRemoveCancelsSubscriptions(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice", "bob")
		befriend(t, s, "alice", "bob")
		bob := online(t, s, "bob", "desk")
		a := online(t, s, "alice", "phone")
		bob.next("alice's presence", isPresence(a.full, ""))
		a.next("bob's presence", isPresence(bob.full, ""))

		a.mustSet(`<item jid='bob@localhost' subscription='remove'/>`)
		a.expectPush(item{JID: bare("bob"), Subscription: "remove"})
		bob.next("the unsubscribe", isPresence(bare("alice"), "unsubscribe"))
		bob.next("the unsubscribed", isPresence(bare("alice"), "unsubscribed"))
		bob.awaitPush(item{JID: bare("alice"), Subscription: "none"})
		bob.next("alice's unavailable presence", isPresence(a.full, "unavailable"))
		a.next("bob's unavailable presence", isPresence(bob.full, "unavailable"))

		a.drain()
		bob.drain()
		a.available(`<presence><status>still here</status></presence>`)
		bob.available(`<presence><status>me too</status></presence>`)
		a.sync()
		bob.none("alice's presence", isPresence(a.full, ""))
		a.none("bob's presence", isPresence(bob.full, ""))
		a.expectRoster()
		bob.expectRoster(item{JID: bare("alice"), Subscription: "none"})
	})
}
