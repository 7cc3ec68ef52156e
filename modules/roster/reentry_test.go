package roster_test

import (
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/routertest"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// reentryID registers routertest's Reactor, whose filter, on a stanza the
// test picks, routes another presence from inside the routing of the
// first: what a module that reacts to presence (for example by sending the
// user's presence again) does from the roster module's broadcast.
const reentryID = "test-presence-reentry"

var reactor = routertest.Reactors(reentryID)

// presenceFrom builds a presence broadcast (no 'to') from full.
func presenceFrom(t *testing.T, full, payload string) *router.Stanza {
	t.Helper()
	e, err := router.ParseElement([]byte(`<presence from='`+full+`'>`+payload+`</presence>`), router.NSClient)
	if err != nil {
		t.Fatal(err)
	}
	st, err := router.NewStanza(e)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestPresenceReentry: a filter reached from the roster module's broadcast
// that routes presence of the same account back into it must not deadlock
// (issue 8: no per-account lock held across Route): on a client's
// presence, and on the unavailable presence the server generates for a
// dropped connection. What the filter routed is broadcast after the
// presence it was reached from.
func TestPresenceReentry(t *testing.T) {
	type resources struct{ phone, laptop *peer }
	tests := []struct {
		name string
		// react returns what the filter routes on st, or nil.
		react func(t *testing.T, r resources, st *router.Stanza) *router.Stanza
		// trigger makes the phone send what the filter reacts to.
		trigger func(r resources)
		// first and then are what bob gets, in that order.
		first, then func(r resources) func(*router.Element) bool
	}{{
		name: "presence update re-entered with an update of the same resource",
		react: func(t *testing.T, r resources, st *router.Stanza) *router.Stanza {
			if st.From.String() == r.phone.full && st.To.String() == bare("bob") && st.Child("", "status") != nil && st.Child("", "status").Text() == "trigger" {
				return presenceFrom(t, r.phone.full, `<status>echo</status>`)
			}
			return nil
		},
		trigger: func(r resources) { r.phone.send(`<presence><status>trigger</status></presence>`) },
		first: func(r resources) func(*router.Element) bool {
			return withChild(isPresence(r.phone.full, ""), "status", "trigger")
		},
		then: func(r resources) func(*router.Element) bool {
			return withChild(isPresence(r.phone.full, ""), "status", "echo")
		},
	}, {
		name: "dropped connection re-entered with an update of another resource",
		react: func(t *testing.T, r resources, st *router.Stanza) *router.Stanza {
			if st.From.String() == r.phone.full && st.To.String() == bare("bob") && st.Type() == "unavailable" {
				return presenceFrom(t, r.laptop.full, `<status>still here</status>`)
			}
			return nil
		},
		trigger: func(r resources) { r.phone.drop() },
		first:   func(r resources) func(*router.Element) bool { return isPresence(r.phone.full, "unavailable") },
		then: func(r resources) func(*router.Element) bool {
			return withChild(isPresence(r.laptop.full, ""), "status", "still here")
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, b storetest.Backend) {
				s := testserver.StartOn(t, b, func(c *config.Config) { testserver.EnableModules(c, reentryID) })
				m := reactor()
				addUsers(s, "alice", "bob")
				befriend(t, s, "alice", "bob")
				bob := online(t, s, "bob", "desk")
				r := resources{laptop: online(t, s, "alice", "laptop")}
				bob.next("the laptop's presence", isPresence(r.laptop.full, ""))
				r.phone = online(t, s, "alice", "phone")
				bob.next("the phone's presence", isPresence(r.phone.full, ""))

				m.On(func(st *router.Stanza) *router.Stanza { return tt.react(t, r, st) })
				tt.trigger(r)
				select {
				case <-m.Reentered:
				case <-time.After(wait):
					// A hang detector, not a time limit: on the old
					// code this never comes.
					t.Fatalf("the filter's Route did not return after %s (deadlock)", wait)
				}
				bob.next("the presence the filter reacted to", tt.first(r))
				bob.next("what the filter sent, after it", tt.then(r))
				r.laptop.next("the presence the filter reacted to", tt.first(r))
				r.laptop.next("what the filter sent, after it", tt.then(r))
			})
		})
	}
}
