package muc_test

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/mam/query"
	"github.com/xmppd/xmppd/modules/muc"
	"github.com/xmppd/xmppd/router"
)

// moderate is a XEP-0425 request to retract the message with stanza-id id.
func moderate(id, reason string) string {
	r := ""
	if reason != "" {
		r = `<reason>` + reason + `</reason>`
	}
	return `<moderate xmlns='` + muc.NSModerate + `' id='` + id + `'><retract xmlns='` + muc.NSRetract + `'/>` + r + `</moderate>`
}

// retractionOf matches a retraction of the message id from the address
// from.
func retractionOf(from, id string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		r := e.Child(muc.NSRetract, "retract")
		return e.Name.Local == "message" && e.Get("type") == "groupchat" && e.Get("from") == from && r != nil && r.Get("id") == id
	}
}

// TestModerateMessage checks XEP-0425 on both backends: a moderator
// retracts an occupant's message by its stanza-id; every occupant gets the
// retraction from the room, marked moderated by the moderator's occupant
// JID and occupant id, with the reason; the archive keeps the retraction
// and a tombstone in place of the message, which full-text search and
// newcomers' history no longer show; participants get forbidden, an
// unknown or retracted id item-not-found. A room without archive works
// from its history; one that keeps no messages does not advertise it.
func TestModerateMessage(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob", "carol", "dave")
		alice, bob, carol, dave := online(t, s, "alice"), online(t, s, "bob"), online(t, s, "carol"), online(t, s, "dave")
		alice.create("coven", "alice")
		testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_enablearchiving", "1"))
		info := dave.iq(room("coven"), "get", `<query xmlns='`+nsInfo+`'/>`)
		if !testserver.HasFeature(info, muc.NSModerate) || !testserver.HasFeature(info, muc.NSTombstone) {
			t.Errorf("moderation not advertised: %s", info)
		}
		bob.enter("coven", "bob")
		carol.enter("coven", "carol")
		alice.say("coven", "alice", "welcome")
		spam := roomStanzaID(bob.say("coven", "bob", "buy magic potions"), "coven")
		carol.MustNext(t, "spam", groupchatFrom(occ("coven", "bob"), "buy magic potions"))

		wantError(t, carol.iq(room("coven"), "set", moderate(spam, "")), "forbidden", "auth")
		wantError(t, alice.iq(room("coven"), "set", moderate("nosuchid", "")), "item-not-found", "cancel")
		wantError(t, alice.iq(room("coven"), "set", `<moderate xmlns='`+muc.NSModerate+`' id='`+spam+`'/>`), "bad-request", "modify")
		testserver.WantResult(t, alice.iq(room("coven"), "set", moderate(spam, "Spam")))
		for _, u := range []*user{alice, bob, carol} {
			m := u.MustNext(t, "the moderation", retractionOf(room("coven"), spam))
			r := m.Child(muc.NSRetract, "retract")
			mod := r.Child(muc.NSModerate, "moderated")
			if mod == nil || mod.Get("by") != occ("coven", "alice") || mod.Child(muc.NSOccupantID, "occupant-id") == nil ||
				childText(r, muc.NSRetract, "reason") != "Spam" || roomStanzaID(m, "coven") == "" {
				t.Errorf("moderation to %s: %s", u.name, m)
			}
		}
		wantError(t, alice.iq(room("coven"), "set", moderate(spam, "")), "item-not-found", "cancel")

		msgs, ids, _ := dave.mamQuery("coven", "")
		if len(msgs) != 3 || ids[1] != spam {
			t.Fatalf("archive after moderation: %v", msgs)
		}
		tomb := msgs[1]
		gone := tomb.Child(muc.NSRetract, "retracted")
		if tomb.Child("", "body") != nil || gone == nil || gone.Get("stamp") == "" || gone.Child(muc.NSModerate, "moderated") == nil ||
			tomb.Get("from") != occ("coven", "bob") || tomb.Child(muc.NSOccupantID, "occupant-id") == nil {
			t.Errorf("tombstone: %s", tomb)
		}
		if r := msgs[2].Child(muc.NSRetract, "retract"); r == nil || r.Get("id") != spam || gone.Get("id") != msgs[2].Get("id") {
			t.Errorf("the archived moderation %s for the tombstone %s", msgs[2], tomb)
		}
		if found, _, _ := dave.mamQuery("coven", "", query.FieldText, "potions"); len(found) != 0 {
			t.Errorf("full-text search finds the retracted message: %v", found)
		}
		dave.join("coven", "dave", "")
		for _, h := range dave.history("coven") {
			if strings.Contains(h.String(), "potions") || h.Child(muc.NSRetract, "retracted") != nil {
				t.Errorf("history replays the retracted message: %s", h)
			}
		}

		// Without an archive: from the history.
		alice.create("tmp", "alice")
		bob.enter("tmp", "bob")
		tmp := roomStanzaID(bob.say("tmp", "bob", "oops"), "tmp")
		testserver.WantResult(t, alice.iq(room("tmp"), "set", moderate(tmp, "")))
		bob.MustNext(t, "the moderation", retractionOf(room("tmp"), tmp))
		carol.join("tmp", "carol", "")
		for _, h := range carol.history("tmp") {
			if childText(h, "", "body") == "oops" {
				t.Errorf("history replays the retracted message: %s", h)
			}
		}
		// A room that keeps nothing has nothing to moderate.
		testserver.WantResult(t, alice.configure("tmp", "muc#roomconfig_historylength", "0"))
		if info := dave.iq(room("tmp"), "get", `<query xmlns='`+nsInfo+`'/>`); testserver.HasFeature(info, muc.NSModerate) ||
			testserver.HasFeature(info, muc.NSTombstone) {
			t.Errorf("moderation advertised by a room that keeps no messages: %s", info)
		}
		wantError(t, alice.iq(room("tmp"), "set", moderate(tmp, "")), "item-not-found", "cancel")
	})
}

// retraction is a XEP-0424 retraction of the message id, with the
// fallback body.
func retraction(roomName, id string) string {
	return `<message type='groupchat' id='r-` + id + `' to='` + room(roomName) + `'><retract xmlns='` + muc.NSRetract + `' id='` + id + `'/>` +
		`<fallback xmlns='urn:xmpp:fallback:0' for='` + muc.NSRetract + `'/><body>/me retracted a message</body></message>`
}

// TestRetractOwnMessage checks XEP-0424 retractions in a room on both
// backends: the author (by occupant id, here from another resource under
// another nick) retracts its message; the retraction is reflected to all
// and archived as such, and the original is replaced by a tombstone naming
// it (§5) and not replayed to newcomers; another occupant's retraction is
// forbidden, as is one claiming to be moderated; an unknown id is
// item-not-found.
func TestRetractOwnMessage(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob", "carol")
		alice, bob, carol := online(t, s, "alice"), online(t, s, "bob"), online(t, s, "carol")
		alice.create("coven", "alice")
		testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_enablearchiving", "1"))
		bob.enter("coven", "bob")
		carol.enter("coven", "carol")
		typo := roomStanzaID(bob.say("coven", "bob", "tpyo"), "coven")

		carol.send(retraction("coven", typo))
		wantError(t, carol.MustNext(t, "refused", errorFrom("message", room("coven"))), "forbidden", "auth")
		bob.send(`<message type='groupchat' to='` + room("coven") + `'><retract xmlns='` + muc.NSRetract + `' id='` + typo + `'><moderated xmlns='` + muc.NSModerate + `' by='` + room("coven") + `'/></retract></message>`)
		wantError(t, bob.MustNext(t, "refused", errorFrom("message", room("coven"))), "forbidden", "auth")
		bob.send(retraction("coven", "nosuchid"))
		wantError(t, bob.MustNext(t, "refused", errorFrom("message", room("coven"))), "item-not-found", "cancel")
		alice.ExpectNone(t, "a refused retraction", func(e *router.Element) bool { return e.Child(muc.NSRetract, "retract") != nil })

		phone := onlineAs(t, s, "bob", "phone")
		phone.enter("coven", "bobby")
		phone.send(retraction("coven", typo))
		for _, u := range []*user{alice, carol, phone} {
			m := u.MustNext(t, "the retraction", retractionOf(occ("coven", "bobby"), typo))
			if childText(m, "", "body") != "/me retracted a message" || roomStanzaID(m, "coven") == "" {
				t.Errorf("retraction to %s: %s", u.name, m)
			}
		}
		phone.send(retraction("coven", typo))
		wantError(t, phone.MustNext(t, "again", errorFrom("message", room("coven"))), "item-not-found", "cancel")

		msgs, ids, _ := carol.mamQuery("coven", "")
		if len(msgs) != 2 || ids[0] != typo {
			t.Fatalf("archive after the retraction: %v", msgs)
		}
		tomb, gone := msgs[0], msgs[0].Child(muc.NSRetract, "retracted")
		if tomb.Child("", "body") != nil || gone == nil || gone.Get("id") != "r-"+typo || gone.Get("stamp") == "" ||
			gone.Child(muc.NSModerate, "moderated") != nil || tomb.Get("from") != occ("coven", "bob") {
			t.Errorf("tombstone: %s", tomb)
		}
		if r := msgs[1].Child(muc.NSRetract, "retract"); r == nil || r.Get("id") != typo || msgs[1].Get("from") != occ("coven", "bobby") ||
			childText(msgs[1], "", "body") != "/me retracted a message" {
			t.Errorf("archived retraction: %s", msgs[1])
		}
		tablet := onlineAs(t, s, "carol", "tablet")
		tablet.join("coven", "carol2", "")
		for _, h := range tablet.history("coven") {
			if childText(h, "", "body") == "tpyo" || h.Child(muc.NSRetract, "retracted") != nil {
				t.Errorf("history replays the retracted message: %s", h)
			}
		}
	})
}
