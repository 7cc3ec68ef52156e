package muc_test

import (
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// errorBody is the error of a bounce, as an occupant's server sends it
// for a stanza it cannot deliver.
const errorBody = `<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`

// TestErrorBounce checks that an occupant whose side answers what the
// room sent with an error is taken out of the room (§13.1, as Prosody
// does): bob's client bounces a groupchat message (the error goes to the
// sender's occupant JID), a message of the room itself (to the room's
// JID) or an occupant's presence; every occupant, bob too, gets his
// unavailable presence with 307 and 333, and he is no longer in the room.
// An error from someone who is not in the room changes nothing.
func TestErrorBounce(t *testing.T) {
	for _, c := range []struct {
		name string
		// provoke makes the room send bob something and returns what bob
		// bounces, as the error stanza he sends back.
		provoke func(t *testing.T, alice, bob *user) string
	}{
		{"groupchat message", func(t *testing.T, alice, bob *user) string {
			m := alice.say("coven", "alice", "hail")
			bob.MustNext(t, "alice's message", groupchatFrom(occ("coven", "alice"), "hail"))
			return `<message type='error' id='` + m.Get("id") + `' to='` + occ("coven", "alice") + `'><body>hail</body>` + errorBody + `</message>`
		}},
		{"message of the room", func(t *testing.T, alice, bob *user) string {
			testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_roomname", "Renamed"))
			n := bob.MustNext(t, "configuration notice", messageFrom(room("coven")))
			return `<message type='error' id='` + n.Get("id") + `' to='` + room("coven") + `'>` + errorBody + `</message>`
		}},
		{"presence", func(t *testing.T, alice, bob *user) string {
			alice.send(`<presence to='` + occ("coven", "alice") + `'><show>away</show></presence>`)
			bob.MustNext(t, "alice's presence", func(e *router.Element) bool {
				return presenceFrom(occ("coven", "alice"))(e) && childText(e, "", "show") == "away"
			})
			return `<presence type='error' to='` + occ("coven", "alice") + `'>` + errorBody + `</presence>`
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob", "carol")
			alice, bob, carol := online(t, s, "alice"), online(t, s, "bob"), online(t, s, "carol")
			alice.create("coven", "alice")
			bob.enter("coven", "bob")
			for _, u := range []*user{alice, bob} {
				u.Drain(t)
			}

			// From a non-occupant, the same error is nothing to the room.
			carol.send(c.provoke(t, alice, bob))
			carol.MustSync(t)
			testserver.WantResult(t, bob.iq(occ("coven", "bob"), "get", `<ping xmlns='urn:xmpp:ping'/>`))

			bob.send(c.provoke(t, alice, bob))
			for _, u := range []*user{alice, bob} {
				gone := u.MustNext(t, "bob's removal", unavailableFrom(occ("coven", "bob")))
				if !hasStatus(gone, 307) || !hasStatus(gone, 333) || (u == bob) != hasStatus(gone, 110) {
					t.Errorf("removal to %s: %s", u.name, gone)
				}
				wantItem(t, gone, "none", "none")
			}
			wantError(t, bob.iq(occ("coven", "bob"), "get", `<ping xmlns='urn:xmpp:ping'/>`), "not-acceptable", "cancel")
			bob.send(`<message type='groupchat' to='` + room("coven") + `'><body>still here?</body></message>`)
			wantError(t, bob.MustNext(t, "refusal", errorFrom("message", room("coven"))), "not-acceptable", "modify")
			alice.ExpectNone(t, "bob's message", groupchatFrom(occ("coven", "bob"), "still here?"))
		})
	}
}
