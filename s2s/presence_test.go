package s2s_test

import (
	"testing"

	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

const nsRoster = "jabber:iq:roster"

// rosterPush matches a roster push (RFC 6121 §2.1.6) for contact with the
// subscription state sub and, if ask, a pending outbound request.
func rosterPush(contact, sub string, ask bool) func(*router.Element) bool {
	return func(e *router.Element) bool {
		q := e.Child(nsRoster, "query")
		if e.Name.Local != "iq" || e.Get("type") != "set" || q == nil {
			return false
		}
		item := q.Child(nsRoster, "item")
		return item != nil && item.Get("jid") == contact && item.Get("subscription") == sub && (item.Get("ask") == "subscribe") == ask
	}
}

// isPresence matches presence of type typ ("" for available) from from.
func isPresence(from, typ string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		return e.Name.Local == "presence" && e.Get("from") == from && e.Get("type") == typ
	}
}

// rosterSubscription asks c's server for c's roster and returns the
// subscription state of contact, "" if it is not there.
func rosterSubscription(t *testing.T, c *testserver.Client, contact string) string {
	t.Helper()
	e := c.MustRequest(t, `<iq type="get" id="roster-`+router.NewID()+`"><query xmlns="jabber:iq:roster"/></iq>`)
	testserver.WantResult(t, e)
	for _, item := range e.Child(nsRoster, "query").Elements() {
		if item.Get("jid") == contact {
			return item.Get("subscription")
		}
	}
	return ""
}

// rosterLogin logs an existing account in as a client that has asked for
// its roster (so gets pushes) and sent its initial presence.
func rosterLogin(t *testing.T, s *testserver.Server, local, resource string) *testserver.Client {
	t.Helper()
	c := s.Login(local, password, testserver.LoginOptions{Resource: resource})
	rosterSubscription(t, c, "")
	c.MustSend(t, `<presence/>`)
	return c
}

// TestPresenceSubscription runs a mutual subscription between alice@a.test
// and bob@b.test with the roster module on both servers (RFC 6121 §3):
// both rosters end at "both" through roster pushes, each side sees the
// other's presence, a login's presence probe crosses to the other domain
// (§4.3), and so does the unavailable presence of a logout (§4.5).
func TestPresenceSubscription(t *testing.T) {
	servers := testserver.StartFederation(t, nil, domainA, domainB)
	a, b := servers[0], servers[1]
	a.AddUser("alice", password)
	b.AddUser("bob", password)
	alice := rosterLogin(t, a, "alice", "home")
	bob := rosterLogin(t, b, "bob", "work")
	aliceFull, bobFull := alice.LocalAddr().String(), bob.LocalAddr().String()

	// alice asks, bob approves: alice is subscribed to bob.
	alice.MustSend(t, `<presence to="bob@b.test" type="subscribe"/>`)
	alice.MustNext(t, "the push of the pending request", rosterPush("bob@b.test", "none", true))
	bob.MustNext(t, "alice's request", isPresence("alice@a.test", "subscribe"))
	bob.MustSend(t, `<presence to="alice@a.test" type="subscribed"/>`)
	bob.MustNext(t, "the push of bob's approval", rosterPush("alice@a.test", "from", false))
	alice.MustNext(t, "the push of the approval", rosterPush("bob@b.test", "to", false))
	alice.MustNext(t, "bob's presence after approval", isPresence(bobFull, ""))

	// bob asks, alice approves: now both.
	bob.MustSend(t, `<presence to="alice@a.test" type="subscribe"/>`)
	bob.MustNext(t, "the push of bob's request", rosterPush("alice@a.test", "from", true))
	alice.MustNext(t, "bob's request", isPresence("bob@b.test", "subscribe"))
	alice.MustSend(t, `<presence to="bob@b.test" type="subscribed"/>`)
	alice.MustNext(t, "the push of alice's approval", rosterPush("bob@b.test", "both", false))
	bob.MustNext(t, "the push of alice's approval", rosterPush("alice@a.test", "both", false))
	bob.MustNext(t, "alice's presence after approval", isPresence(aliceFull, ""))

	if got := rosterSubscription(t, alice, "bob@b.test"); got != "both" {
		t.Errorf("alice's roster: bob is %q, want both", got)
	}
	if got := rosterSubscription(t, bob, "alice@a.test"); got != "both" {
		t.Errorf("bob's roster: alice is %q, want both", got)
	}

	// A second resource of alice logs in: its initial presence goes to
	// bob, and its probe brings bob's presence back from b.test.
	mobile := rosterLogin(t, a, "alice", "mobile")
	mobile.MustNext(t, "bob's presence, answering the probe", isPresence(bobFull, ""))
	bob.MustNext(t, "the new resource's presence", isPresence("alice@a.test/mobile", ""))

	// bob's presence changes: both of alice's resources hear it.
	bob.MustSend(t, `<presence><show>away</show></presence>`)
	for _, c := range []*testserver.Client{alice, mobile} {
		c.MustNext(t, "bob's away presence", func(e *router.Element) bool {
			s := e.Child("", "show")
			return isPresence(bobFull, "")(e) && s != nil && s.Text() == "away"
		})
	}

	// Logouts cross over as unavailable presence.
	mobile.Close()
	bob.MustNext(t, "the unavailable presence of alice's logout", isPresence("alice@a.test/mobile", "unavailable"))
	bob.Close()
	alice.MustNext(t, "the unavailable presence of bob's logout", isPresence(bobFull, "unavailable"))
}
