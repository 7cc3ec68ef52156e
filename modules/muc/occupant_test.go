package muc_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/muc"
	"github.com/xmppd/xmppd/router"
)

// TestGroupchat checks messages to all occupants (§7.4): reflected to
// everyone with the sender's id (muc#stable_id), a stanza-id by the room
// and the sender's occupant id; refused to non-occupants (not-acceptable)
// and to visitors of a moderated room (forbidden).
func TestGroupchat(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob", "carol")
	alice, bob, carol := online(t, s, "alice"), online(t, s, "bob"), online(t, s, "carol")
	alice.create("coven", "alice")
	bob.enter("coven", "bob")

	bob.send(`<message type='groupchat' id='m1' to='` + room("coven") + `'><body>Thrice the brinded cat hath mew'd.</body>` +
		`<occupant-id xmlns='` + muc.NSOccupantID + `' id='forged'/><stanza-id xmlns='urn:xmpp:sid:0' by='` + room("coven") + `' id='forged'/></message>`)
	var ids []string
	for _, u := range []*user{alice, bob} {
		m := u.MustNext(t, "reflection", groupchatFrom(occ("coven", "bob"), "Thrice the brinded cat hath mew'd."))
		if m.Get("id") != "m1" {
			t.Errorf("reflected id %q, want m1", m.Get("id"))
		}
		var sids, oids []string
		for _, c := range m.Elements() {
			switch {
			case c.Name.Space == "urn:xmpp:sid:0" && c.Name.Local == "stanza-id":
				if c.Get("by") != room("coven") {
					t.Errorf("stanza-id by %q: %s", c.Get("by"), m)
				}
				sids = append(sids, c.Get("id"))
			case c.Name.Space == muc.NSOccupantID:
				oids = append(oids, c.Get("id"))
			}
		}
		if len(sids) != 1 || sids[0] == "forged" || len(oids) != 1 || oids[0] == "forged" {
			t.Fatalf("stanza-ids %v, occupant-ids %v: %s", sids, oids, m)
		}
		ids = append(ids, sids[0])
	}
	if ids[0] != ids[1] {
		t.Errorf("stanza-ids differ between copies: %v", ids)
	}

	carol.send(`<message type='groupchat' id='m2' to='` + room("coven") + `'><body>hi</body></message>`)
	wantError(t, carol.MustNext(t, "error", errorFrom("message", room("coven"))), "not-acceptable", "modify")

	testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_moderatedroom", "1"))
	carol.enter("coven", "carol") // a visitor now
	carol.send(`<message type='groupchat' id='m3' to='` + room("coven") + `'><body>hi</body></message>`)
	wantError(t, carol.MustNext(t, "error", errorFrom("message", room("coven"))), "forbidden", "auth")
	bob.ExpectNone(t, "a visitor's message", groupchatFrom(occ("coven", "carol"), "hi"))
}

// TestHistory checks the discussion history on entering (§7.2.14,
// §7.2.15): delayed by the room, oldest first, before the subject, and
// limited by maxstanzas, maxchars, seconds and since; from memory in a
// room without archiving, from the archive in one with it.
func TestHistory(t *testing.T) {
	for _, archived := range []string{"0", "1"} {
		t.Run("archiving "+archived, func(t *testing.T) {
			testHistory(t, archived)
		})
	}
}

func testHistory(t *testing.T, archived string) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob")
	alice, bob := online(t, s, "alice"), online(t, s, "bob")
	alice.create("coven", "alice")
	testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_enablearchiving", archived))
	for i := 1; i <= 5; i++ {
		alice.send(fmt.Sprintf(`<message type='groupchat' id='h%d' to='%s'><body>line %d</body></message>`, i, room("coven"), i))
		alice.MustNext(t, "reflection", groupchatFrom(occ("coven", "alice"), fmt.Sprintf("line %d", i)))
	}
	for _, c := range []struct {
		name, history string
		want          []string
	}{
		{"all", ``, []string{"line 1", "line 2", "line 3", "line 4", "line 5"}},
		{"maxstanzas", `<history maxstanzas='2'/>`, []string{"line 4", "line 5"}},
		{"none", `<history maxstanzas='0'/>`, nil},
		{"maxchars 0", `<history maxchars='0'/>`, nil},
		{"maxchars one", `<history maxchars='600'/>`, []string{"line 5"}},
		{"seconds", `<history seconds='3600'/>`, []string{"line 1", "line 2", "line 3", "line 4", "line 5"}},
		{"since future", `<history since='2999-01-01T00:00:00Z'/>`, nil},
		{"since past", `<history since='2000-01-01T00:00:00Z' maxstanzas='1'/>`, []string{"line 5"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			bob.t = t
			bob.join("coven", "bob", c.history)
			var got []string
			for _, e := range bob.history("coven") {
				d := e.Child("urn:xmpp:delay", "delay")
				if d == nil || d.Get("from") != room("coven") || d.Get("stamp") == "" || roomStanzaID(e, "coven") == "" {
					t.Errorf("history without the room's delay and stanza-id: %s", e)
				}
				if e.Child(muc.NSUser, "x") != nil {
					t.Errorf("history with a real JID: %s", e)
				}
				got = append(got, childText(e, "", "body"))
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("history %v, want %v", got, c.want)
			}
			bob.send(`<presence type='unavailable' to='` + occ("coven", "bob") + `'/>`)
			bob.MustNext(t, "exit", func(e *router.Element) bool {
				return presenceFrom(occ("coven", "bob"))(e) && e.Get("type") == "unavailable"
			})
		})
	}
}

// TestSubject checks the subject (§7.2.16, §8.1): empty before one is
// set, set by a moderator and sent to all, refused to a participant until
// the room lets occupants change it, and sent on entering with a delay.
func TestSubject(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob", "carol")
	alice, bob, carol := online(t, s, "alice"), online(t, s, "bob"), online(t, s, "carol")
	alice.create("coven", "alice")
	if sub := bob.enter("coven", "bob"); sub == nil {
		t.Fatal("no self-presence")
	}
	alice.send(`<message type='groupchat' to='` + room("coven") + `'><subject>Fire Burn and Cauldron Bubble!</subject></message>`)
	got := bob.MustNext(t, "subject change", func(e *router.Element) bool {
		return messageFrom(occ("coven", "alice"))(e) && childText(e, "", "subject") == "Fire Burn and Cauldron Bubble!"
	})
	if got.Get("type") != "groupchat" {
		t.Errorf("subject change: %s", got)
	}
	bob.send(`<message type='groupchat' to='` + room("coven") + `'><subject>mine</subject></message>`)
	wantError(t, bob.MustNext(t, "refusal", errorFrom("message", room("coven"))), "forbidden", "auth")
	testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_changesubject", "1"))
	bob.send(`<message type='groupchat' to='` + room("coven") + `'><subject>Spells</subject></message>`)
	alice.MustNext(t, "bob's subject", func(e *router.Element) bool {
		return messageFrom(occ("coven", "bob"))(e) && childText(e, "", "subject") == "Spells"
	})
	carol.join("coven", "carol", "")
	sub := carol.subject("coven")
	if sub.Get("from") != occ("coven", "bob") || childText(sub, "", "subject") != "Spells" || sub.Child("urn:xmpp:delay", "delay") == nil {
		t.Errorf("subject on entering: %s", sub)
	}
}

// TestPrivateMessages checks private messages (§7.5): passed from one
// occupant JID to the other's real JID with the muc#user <x/> of the
// XEP-0280 rules, not copied as a carbon to the recipient's other
// resources, refused as groupchat (bad-request), to a nick not in the
// room (item-not-found), from a non-occupant (not-acceptable), and when
// the room allows none (forbidden).
func TestPrivateMessages(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob", "carol")
	alice, bob, carol := online(t, s, "alice"), online(t, s, "bob"), online(t, s, "carol")
	phone := onlineAs(t, s, "bob", "phone")
	testserver.WantResult(t, phone.iq("", "set", `<enable xmlns='urn:xmpp:carbons:2'/>`))
	alice.create("coven", "alice")
	bob.enter("coven", "bob")

	alice.send(`<message type='chat' id='pm1' to='` + occ("coven", "bob") + `'><body>psst</body></message>`)
	pm := bob.MustNext(t, "private message", messageFrom(occ("coven", "alice")))
	if pm.Get("type") != "chat" || pm.Get("id") != "pm1" || childText(pm, "", "body") != "psst" || pm.Child(muc.NSUser, "x") == nil {
		t.Errorf("private message: %s", pm)
	}
	phone.ExpectNone(t, "a carbon of a MUC private message", func(e *router.Element) bool {
		return e.Name.Local == "message" && strings.Contains(e.String(), "psst")
	})

	for _, c := range []struct {
		name, from, to, typ, cond, ctype string
	}{
		{"groupchat", "alice", occ("coven", "bob"), "groupchat", "bad-request", "modify"},
		{"no such nick", "alice", occ("coven", "nobody"), "chat", "item-not-found", "cancel"},
		{"not an occupant", "carol", occ("coven", "bob"), "chat", "not-acceptable", "modify"},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := map[string]*user{"alice": alice, "carol": carol}[c.from]
			u.t = t
			u.send(`<message type='` + c.typ + `' to='` + c.to + `'><body>x</body></message>`)
			wantError(t, u.MustNext(t, "error", errorFrom("message", c.to)), c.cond, c.ctype)
		})
	}
	alice.t, carol.t = t, t
	testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_allowpm", "none"))
	bob.send(`<message type='chat' to='` + occ("coven", "alice") + `'><body>x</body></message>`)
	wantError(t, bob.MustNext(t, "error", errorFrom("message", occ("coven", "alice"))), "forbidden", "auth")
}

// TestNickChange checks a nick change (§7.6): unavailable from the old
// nick with the new one and 303, available from the new, and a conflict
// with a nick in use; and a nick the service normalises (210).
func TestNickChange(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob")
	alice, bob := online(t, s, "alice"), online(t, s, "bob")
	alice.create("coven", "alice")
	bob.enter("coven", "bob")

	bob.send(`<presence to='` + occ("coven", "alice") + `'/>`)
	wantError(t, bob.MustNext(t, "conflict", errorFrom("presence", occ("coven", "alice"))), "conflict", "cancel")

	bob.send(`<presence to='` + occ("coven", "oldhag") + `'/>`)
	for _, u := range []*user{alice, bob} {
		gone := u.MustNext(t, "old nick unavailable", func(e *router.Element) bool {
			return presenceFrom(occ("coven", "bob"))(e) && e.Get("type") == "unavailable"
		})
		if !hasStatus(gone, 303) || item(t, gone).Get("nick") != "oldhag" {
			t.Errorf("nick change to %s: %s", u.name, gone)
		}
		if (u == bob) != hasStatus(gone, 110) {
			t.Errorf("110 to %s: %s", u.name, gone)
		}
		u.MustNext(t, "new nick", presenceFrom(occ("coven", "oldhag")))
	}

	// "Ｗitch" with a fullwidth letter is "Witch" after PRECIS? Not in
	// OpaqueString; a decomposed é is composed, though.
	bob.send("<presence to='" + room("coven") + "/cafe\u0301'/>")
	self := bob.MustNext(t, "normalised nick", func(e *router.Element) bool {
		return presenceFrom(room("coven")+"/caf\u00e9")(e) && e.Get("type") == ""
	})
	if !hasStatus(self, 210) {
		t.Errorf("normalised nick without 210: %s", self)
	}
}

// TestGroupchat10 checks presence without the MUC <x/> from a
// non-occupant (§7.2.24): the kick with 110, 307 and 333.
func TestGroupchat10(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob")
	alice, bob := online(t, s, "alice"), online(t, s, "bob")
	alice.create("coven", "alice")
	bob.send(`<presence to='` + occ("coven", "bob") + `'/>`)
	kick := bob.MustNext(t, "kick", presenceFrom(occ("coven", "bob")))
	if kick.Get("type") != "unavailable" || !hasStatus(kick, 110) || !hasStatus(kick, 307) || !hasStatus(kick, 333) {
		t.Errorf("groupchat 1.0 join: %s", kick)
	}
	alice.ExpectNone(t, "bob's presence", presenceFrom(occ("coven", "bob")))
}
