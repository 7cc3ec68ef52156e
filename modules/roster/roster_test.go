package roster_test

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/roster"
	"github.com/xmppd/xmppd/router"
)

// set sends a roster set with the given <item/> (or other content of the
// query) and returns the error condition, "" for success.
func (p *peer) set(content string) string {
	p.t.Helper()
	return condition(p.t, p.request(`<iq type='set' id='set-`+router.NewID()+`'><query xmlns='jabber:iq:roster'>`+content+`</query></iq>`))
}

// mustSet is set that fails the test on an error.
func (p *peer) mustSet(content string) {
	p.t.Helper()
	if cond := p.set(content); cond != "" {
		p.t.Fatalf("%s: roster set %s: %s", p.full, content, cond)
	}
}

// TestRosterSetGetRemove: a roster set adds and updates an item with its
// name and groups, a get returns it, and a set with subscription='remove'
// removes it (RFC 6121 §2.2–2.5); each change is pushed to the resource.
func TestRosterSetGetRemove(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice", "bob")
		a := login(t, s, "alice", "phone")
		a.expectRoster()

		a.mustSet(`<item jid='bob@localhost' name='Bob'><group>Work</group><group>Friends</group></item>`)
		bob := item{JID: bare("bob"), Subscription: "none", Name: "Bob", Groups: []string{"Friends", "Work"}}
		a.expectPush(bob)
		a.expectRoster(bob)

		// §2.1.2: the subscription, ask and approved attributes of a roster
		// set are the server's business and are ignored; the name and the
		// groups are replaced as a whole.
		a.mustSet(`<item jid='bob@localhost' name='Bobby' subscription='both' ask='subscribe' approved='true'><group>Work</group></item>`)
		bob = item{JID: bare("bob"), Subscription: "none", Name: "Bobby", Groups: []string{"Work"}}
		a.expectPush(bob)
		a.expectRoster(bob)

		// A contact is kept as a normalised bare JID (§2.1.2.3), and need
		// not be an account (it could be anyone on the network).
		a.mustSet(`<item jid='Carol@LOCALHOST/desk'/>`)
		carol := item{JID: bare("carol"), Subscription: "none"}
		a.expectPush(carol)
		a.expectRoster(bob, carol)

		a.mustSet(`<item jid='bob@localhost' subscription='remove'/>`)
		a.expectPush(item{JID: bare("bob"), Subscription: "remove"})
		a.expectRoster(carol)

		// §2.5.3: removing an item that is not there.
		if cond := a.set(`<item jid='bob@localhost' subscription='remove'/>`); cond != "item-not-found" {
			t.Errorf("removing a missing item: %q, want item-not-found", cond)
		}
		a.none("a push for the failed remove", isPush(bare("bob")))
	})
}

// TestRosterPushesToInterestedResources: a change is pushed to every
// resource of the user that asked for the roster, and only to those (RFC
// 6121 §2.1.6); all pushes of a change carry the same version.
func TestRosterPushesToInterestedResources(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice", "bob")
		phone := login(t, s, "alice", "phone")
		laptop := login(t, s, "alice", "laptop")
		quiet := login(t, s, "alice", "quiet") // never asks for the roster
		other := login(t, s, "bob", "desk")    // another user entirely
		phone.rosterGet()
		laptop.rosterGet()
		other.rosterGet()

		phone.mustSet(`<item jid='carol@localhost' name='Carol'/>`)
		carol := item{JID: bare("carol"), Subscription: "none", Name: "Carol"}
		v1 := phone.expectPush(carol)
		if v2 := laptop.expectPush(carol); v2 != v1 {
			t.Errorf("the two pushes carry versions %q and %q", v1, v2)
		}
		quiet.none("a roster push without asking for the roster", anyPush)
		other.none("a push of another user's roster", anyPush)

		// Once it asks, it gets the next change too.
		quiet.rosterGet()
		laptop.mustSet(`<item jid='carol@localhost' subscription='remove'/>`)
		for _, p := range []*peer{phone, laptop, quiet} {
			p.expectPush(item{JID: bare("carol"), Subscription: "remove"})
		}
	})
}

// versioned sends a roster get with a ver attribute and returns the answer.
func (p *peer) versioned(ver string) *router.Element {
	p.t.Helper()
	res := p.request(`<iq type='get' id='ver-` + router.NewID() + `'><query xmlns='jabber:iq:roster' ver='` + ver + `'/></iq>`)
	if res.Get("type") != "result" {
		p.t.Fatalf("%s: versioned roster get: %s", p.full, res)
	}
	return res
}

// TestRosterVersioning: XEP-0237. The feature is advertised; a get with
// an empty ver returns the roster and its version; a get with the current
// version returns an empty result; changes bring pushes with new versions;
// an old or unknown version gets the whole roster again.
func TestRosterVersioning(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice")

		raw := s.LoginRaw("alice", password, "raw")
		if raw.Features.Child(roster.NSVer, "ver") == nil {
			t.Errorf("stream features lack <ver xmlns='%s'/>: %s", roster.NSVer, raw.Features)
		}
		if raw.Features.Child(roster.NSPreApproval, "sub") == nil {
			t.Errorf("stream features lack <sub xmlns='%s'/>: %s", roster.NSPreApproval, raw.Features)
		}

		a := login(t, s, "alice", "phone")
		a.mustSet(`<item jid='bob@localhost'/>`) // not interested yet: no push
		res := a.versioned("")
		q := res.Child(roster.NS, "query")
		if q == nil || q.Get("ver") == "" || len(items(q)) != 1 {
			t.Fatalf("get with ver='': want the roster and its version, got %s", res)
		}
		v1 := q.Get("ver")

		if res := a.versioned(v1); len(res.Elements()) != 0 {
			t.Errorf("get with the current version: want an empty result, got %s", res)
		}

		a.mustSet(`<item jid='carol@localhost'/>`)
		_, v2 := a.pushed(bare("carol"))
		if v2 == v1 {
			t.Errorf("the push after a change carries the old version %q", v1)
		}
		a.mustSet(`<item jid='bob@localhost' subscription='remove'/>`)
		_, v3 := a.pushed(bare("bob"))
		if v3 == v2 || v3 == v1 {
			t.Errorf("versions %q, %q, %q do not all differ", v1, v2, v3)
		}
		if res := a.versioned(v3); len(res.Elements()) != 0 {
			t.Errorf("get with the version of the last push: want an empty result, got %s", res)
		}

		// An old version, or one this server never gave, gets the whole
		// roster with the current version (XEP-0237 §3.3 lets the server
		// choose this over a series of pushes).
		for _, old := range []string{v1, "not-a-version", ""} {
			res := a.versioned(old)
			q := res.Child(roster.NS, "query")
			if q == nil || q.Get("ver") != v3 {
				t.Errorf("get with ver=%q: want the roster at version %q, got %s", old, v3, res)
				continue
			}
			if got := items(q); len(got) != 1 || got[0].JID != bare("carol") {
				t.Errorf("get with ver=%q: items %v", old, got)
			}
		}
	})
}

// TestRosterSetErrors: RFC 6121 §2.3.3 (and §2.1.2.3 for the JID). A
// refused set changes nothing and pushes nothing.
func TestRosterSetErrors(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice")
		a := login(t, s, "alice", "phone")
		a.rosterGet()
		long := strings.Repeat("x", 1024)
		var many strings.Builder
		for i := range 65 {
			many.WriteString("<group>g" + string(rune('A'+i%26)) + strings.Repeat("z", i/26) + "</group>")
		}
		for _, tc := range []struct {
			name, content, cond string
		}{
			{"two items", `<item jid='bob@localhost'/><item jid='carol@localhost'/>`, "bad-request"},
			{"no item", ``, "bad-request"},
			{"item in another namespace", `<item xmlns='urn:example' jid='bob@localhost'/>`, "bad-request"},
			{"missing jid", `<item name='Bob'/>`, "jid-malformed"},
			{"empty jid", `<item jid=''/>`, "jid-malformed"},
			{"empty localpart", `<item jid='@localhost'/>`, "jid-malformed"},
			{"empty resource", `<item jid='bob@localhost/'/>`, "jid-malformed"},
			{"duplicate group", `<item jid='bob@localhost'><group>Team</group><group>Team</group></item>`, "bad-request"},
			{"empty group", `<item jid='bob@localhost'><group/></item>`, "not-acceptable"},
			{"group too long", `<item jid='bob@localhost'><group>` + long + `</group></item>`, "not-acceptable"},
			{"name too long", `<item jid='bob@localhost' name='` + long + `'/>`, "not-acceptable"},
			{"too many groups", `<item jid='bob@localhost'>` + many.String() + `</item>`, "not-acceptable"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := a.in(t)
				if cond := a.set(tc.content); cond != tc.cond {
					t.Errorf("got %q, want %q", cond, tc.cond)
				}
			})
		}
		a.none("a push after a refused set", anyPush)
		a.expectRoster()
	})
}

// TestRosterOfAnotherUser: only the account itself may read or change its
// roster (RFC 6121 §2.1.5, §2.3.3 forbidden); addressing one's own bare JID
// is the same as no 'to'.
func TestRosterOfAnotherUser(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice", "bob")
		bob := login(t, s, "bob", "desk")
		bob.rosterGet()
		bob.mustSet(`<item jid='carol@localhost' name='Carol'/>`)
		bob.pushed(bare("carol"))
		a := login(t, s, "alice", "phone")
		for _, tc := range []struct{ name, iq, cond string }{
			{"get", `<iq type='get' id='g1' to='bob@localhost'><query xmlns='jabber:iq:roster'/></iq>`, "forbidden"},
			{"get full JID", `<iq type='get' id='g2' to='bob@localhost/desk'><query xmlns='jabber:iq:roster'/></iq>`, ""},
			{"set", `<iq type='set' id='s1' to='bob@localhost'><query xmlns='jabber:iq:roster'><item jid='mallory@localhost'/></query></iq>`, "forbidden"},
			{"own bare JID", `<iq type='get' id='g3' to='alice@localhost'><query xmlns='jabber:iq:roster'/></iq>`, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := a.in(t)
				res := a.request(tc.iq)
				if tc.name == "get full JID" {
					// An IQ to a full JID goes to that client (RFC 6120
					// §10.5.4): bob's client answers, not the server, so
					// nothing of the roster leaks.
					if q := res.Child(roster.NS, "query"); q != nil && len(q.Elements()) > 0 {
						t.Errorf("bob's roster leaked: %s", res)
					}
					return
				}
				if cond := condition(t, res); cond != tc.cond {
					t.Errorf("got %q, want %q: %s", cond, tc.cond, res)
				}
			})
		}
		bob.none("a push after alice's attempt", isPush(bare("mallory")))
		bob.expectRoster(item{JID: bare("carol"), Subscription: "none", Name: "Carol"})
	})
}

// TestRosterItemLimit: a set that would add an item beyond
// limits.max_roster_items is refused with not-allowed; changing or
// removing existing items still works.
func TestRosterItemLimit(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, func(c *config.Config) { c.SetModuleOptions("roster", roster.Options{MaxItems: 2}) })
		addUsers(s, "alice", "dave")
		dave := online(t, s, "dave", "pc")
		a := login(t, s, "alice", "phone")
		a.mustSet(`<item jid='bob@localhost'/>`)
		a.mustSet(`<item jid='carol@localhost'/>`)
		if cond := a.set(`<item jid='dave@localhost'/>`); cond != "not-allowed" {
			t.Errorf("third item: %q, want not-allowed", cond)
		}
		a.mustSet(`<item jid='bob@localhost' name='Bob'/>`)

		// A subscription stanza that would add an item is refused alike,
		// with a presence error, and goes nowhere: otherwise a client could
		// grow its roster without bound by asking strangers.
		a.rosterGet()
		for _, typ := range []string{"subscribe", "subscribed"} {
			a.send(`<presence to='dave@localhost' type='` + typ + `'/>`)
			e := a.next("the refusal of a "+typ, isPresence(bare("dave"), "error"))
			if cond, _ := testserver.ErrorCondition(e); cond != "not-allowed" {
				t.Errorf("%s beyond the limit: %s, want not-allowed", typ, e)
			}
		}
		// To a contact in the roster, it works as ever.
		a.send(`<presence to='bob@localhost' type='subscribe'/>`)
		a.awaitPush(item{JID: bare("bob"), Subscription: "none", Ask: "subscribe", Name: "Bob"})
		a.none("an item beyond the limit", isPush(bare("dave")))
		dave.none("a subscription stanza from a full roster", func(e *router.Element) bool {
			return e.Name.Local == "presence" && e.Get("from") == bare("alice")
		})

		a.mustSet(`<item jid='carol@localhost' subscription='remove'/>`)
		a.mustSet(`<item jid='dave@localhost'/>`)
		a.expectRoster(item{JID: bare("bob"), Subscription: "none", Ask: "subscribe", Name: "Bob"}, item{JID: bare("dave"), Subscription: "none"})
	})
}
