package muc_test

import (
	"context"
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/muc"
	"github.com/xmppd/xmppd/router"
)

func admin(items string) string { return `<query xmlns='` + muc.NSAdmin + `'>` + items + `</query>` }

// unavailableFrom matches unavailable presence from an occupant JID.
func unavailableFrom(from string) func(*router.Element) bool {
	return func(e *router.Element) bool { return presenceFrom(from)(e) && e.Get("type") == "unavailable" }
}

// TestModeration checks the moderator and admin use cases (§8, §9): a
// kick (307) with actor and reason, voice revoked and granted, a ban
// (301) and the outcast list, several items in one request, a member
// removed from a members-only room (321), the lists and who may read
// them, and the refusals (a moderator kicking an admin, a participant
// kicking, removing the last owner).
func TestModeration(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob", "carol", "dave")
	alice, bob, carol, dave := online(t, s, "alice"), online(t, s, "bob"), online(t, s, "carol"), online(t, s, "dave")
	alice.create("coven", "alice")
	bob.enter("coven", "bob")
	carol.enter("coven", "carol")

	// Kick.
	testserver.WantResult(t, alice.iq(room("coven"), "set", admin(`<item nick='carol' role='none'><reason>Avaunt, you cullion!</reason></item>`)))
	for _, u := range []*user{carol, bob} {
		k := u.MustNext(t, "kick", unavailableFrom(occ("coven", "carol")))
		if !hasStatus(k, 307) || (u == carol) != hasStatus(k, 110) {
			t.Errorf("kick to %s: %s", u.name, k)
		}
		it := item(t, k)
		if it.Get("role") != "none" || childText(it, muc.NSUser, "reason") != "Avaunt, you cullion!" ||
			it.Child(muc.NSUser, "actor") == nil || it.Child(muc.NSUser, "actor").Get("nick") != "alice" {
			t.Errorf("kick item: %s", k)
		}
	}
	// A participant may not kick; nobody may kick someone not there.
	wantError(t, bob.iq(room("coven"), "set", admin(`<item nick='alice' role='none'/>`)), "forbidden", "auth")
	wantError(t, alice.iq(room("coven"), "set", admin(`<item nick='nobody' role='none'/>`)), "item-not-found", "cancel")

	// Voice revoked and granted.
	testserver.WantResult(t, alice.iq(room("coven"), "set", admin(`<item nick='bob' role='visitor'/>`)))
	wantItem(t, bob.MustNext(t, "voice revoked", presenceFrom(occ("coven", "bob"))), "none", "visitor")
	bob.send(`<message type='groupchat' to='` + room("coven") + `'><body>hi</body></message>`)
	wantError(t, bob.MustNext(t, "no voice", errorFrom("message", room("coven"))), "forbidden", "auth")
	testserver.WantResult(t, alice.iq(room("coven"), "set", admin(`<item nick='bob' role='participant'/>`)))
	wantItem(t, bob.MustNext(t, "voice granted", presenceFrom(occ("coven", "bob"))), "none", "participant")

	// Several items at once: bob admin and carol member; all or nothing.
	wantError(t, alice.iq(room("coven"), "set", admin(`<item affiliation='admin' jid='bob@localhost'/><item affiliation='bogus' jid='carol@localhost'/>`)), "bad-request", "modify")
	list := alice.iq(room("coven"), "get", admin(`<item affiliation='admin'/>`))
	if list.Child(muc.NSAdmin, "query").Child(muc.NSAdmin, "item") != nil {
		t.Errorf("a refused request changed the admin list: %s", list)
	}
	testserver.WantResult(t, alice.iq(room("coven"), "set", admin(`<item affiliation='admin' jid='bob@localhost'/><item affiliation='member' jid='carol@localhost'/>`)))
	wantItem(t, bob.MustNext(t, "made admin", presenceFrom(occ("coven", "bob"))), "admin", "moderator")
	for _, c := range []struct {
		aff, want string
	}{{"admin", "bob@localhost"}, {"member", "carol@localhost"}, {"owner", "alice@localhost"}} {
		l := alice.iq(room("coven"), "get", admin(`<item affiliation='`+c.aff+`'/>`))
		it := l.Child(muc.NSAdmin, "query").Child(muc.NSAdmin, "item")
		if it == nil || it.Get("jid") != c.want || it.Get("affiliation") != c.aff {
			t.Errorf("%s list: %s", c.aff, l)
		}
	}
	wantError(t, dave.iq(room("coven"), "get", admin(`<item affiliation='member'/>`)), "forbidden", "auth")
	wantError(t, bob.iq(room("coven"), "get", admin(`<item affiliation='owner'/>`)), "forbidden", "auth")
	mods := bob.iq(room("coven"), "get", admin(`<item role='moderator'/>`))
	if n := len(mods.Child(muc.NSAdmin, "query").Elements()); n != 2 {
		t.Errorf("moderators: %s", mods)
	}
	// An admin may not touch the owner, nor a moderator an admin.
	wantError(t, bob.iq(room("coven"), "set", admin(`<item affiliation='none' jid='alice@localhost'/>`)), "not-allowed", "cancel")
	wantError(t, bob.iq(room("coven"), "set", admin(`<item nick='alice' role='none'/>`)), "not-allowed", "cancel")
	// The last owner stays.
	wantError(t, alice.iq(room("coven"), "set", admin(`<item affiliation='admin' jid='alice@localhost'/>`)), "conflict", "cancel")

	// Ban: dave enters and is banned by the admin.
	dave.enter("coven", "dave")
	testserver.WantResult(t, bob.iq(room("coven"), "set", admin(`<item affiliation='outcast' jid='dave@localhost'><reason>Treason</reason></item>`)))
	ban := dave.MustNext(t, "ban", unavailableFrom(occ("coven", "dave")))
	if !hasStatus(ban, 301) || !hasStatus(ban, 110) {
		t.Errorf("ban: %s", ban)
	}
	wantItem(t, ban, "outcast", "none")
	out := bob.iq(room("coven"), "get", admin(`<item affiliation='outcast'/>`))
	if it := out.Child(muc.NSAdmin, "query").Child(muc.NSAdmin, "item"); it == nil || it.Get("jid") != "dave@localhost" || childText(it, muc.NSAdmin, "reason") != "Treason" {
		t.Errorf("outcast list: %s", out)
	}
	wantError(t, dave.join("coven", "dave", ""), "forbidden", "auth")

	// Members-only: carol, a member, enters; losing membership removes her (321).
	testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_membersonly", "1"))
	carol.enter("coven", "carol")
	testserver.WantResult(t, alice.iq(room("coven"), "set", admin(`<item affiliation='none' jid='carol@localhost'/>`)))
	rm := carol.MustNext(t, "removal", unavailableFrom(occ("coven", "carol")))
	if !hasStatus(rm, 321) {
		t.Errorf("membership revoked: %s", rm)
	}
}

// TestConfiguration checks room creation and configuration (§10.1,
// §10.2): the form, a reserved room configured before anyone may enter,
// notification of changes (104, 170, 171, 172, 173), non-members leaving
// a room made members-only (322), a cancelled creation that destroys the
// room, and the owner alone configuring.
func TestConfiguration(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob", "carol")
	alice, bob, carol := online(t, s, "alice"), online(t, s, "bob"), online(t, s, "carol")

	self := alice.join("reserved", "alice", "")
	if !hasStatus(self, 201) {
		t.Fatalf("created: %s", self)
	}
	alice.subject("reserved")
	form := alice.iq(room("reserved"), "get", `<query xmlns='`+muc.NSOwner+`'/>`)
	testserver.WantResult(t, form)
	x := form.Child(muc.NSOwner, "query").Child("jabber:x:data", "x")
	vars := map[string]bool{}
	for _, f := range x.Elements() {
		vars[f.Get("var")] = true
	}
	for _, v := range []string{"FORM_TYPE", "muc#roomconfig_roomname", "muc#roomconfig_roomdesc", "muc#roomconfig_persistentroom",
		"muc#roomconfig_publicroom", "muc#roomconfig_membersonly", "muc#roomconfig_moderatedroom", "muc#roomconfig_passwordprotectedroom",
		"muc#roomconfig_roomsecret", "muc#roomconfig_whois", "muc#roomconfig_maxusers", "muc#roomconfig_allowinvites",
		"muc#roomconfig_changesubject", "muc#roomconfig_historylength", "muc#roomconfig_lang", "muc#roomconfig_enablearchiving",
		"muc#roomconfig_allowpm"} {
		if !vars[v] {
			t.Errorf("configuration form without %s", v)
		}
	}
	wantError(t, bob.join("reserved", "bob", ""), "item-not-found", "cancel")
	wantError(t, bob.iq(room("reserved"), "get", `<query xmlns='`+muc.NSOwner+`'/>`), "forbidden", "auth")
	wantError(t, alice.configure("reserved", "muc#roomconfig_whois", "everybody"), "not-acceptable", "modify")
	testserver.WantResult(t, alice.configure("reserved", "muc#roomconfig_roomname", "Reserved"))
	alice.ExpectNone(t, "a change notice for the first configuration", func(e *router.Element) bool {
		return messageFrom(room("reserved"))(e) && hasStatus(e, 104)
	})
	bob.enter("reserved", "bob")
	carol.enter("reserved", "carol")

	for _, c := range []struct {
		name   string
		fields []string
		codes  []int
	}{
		{"name", []string{"muc#roomconfig_roomname", "Renamed"}, []int{104}},
		{"logging on", []string{"muc#roomconfig_enablearchiving", "1"}, []int{104, 170}},
		{"logging off", []string{"muc#roomconfig_enablearchiving", "0"}, []int{104, 171}},
		{"non-anonymous", []string{"muc#roomconfig_whois", "anyone"}, []int{104, 172}},
		{"semi-anonymous", []string{"muc#roomconfig_whois", "moderators"}, []int{104, 173}},
	} {
		t.Run(c.name, func(t *testing.T) {
			alice.t, bob.t = t, t
			testserver.WantResult(t, alice.configure("reserved", c.fields...))
			n := bob.MustNext(t, "notice", func(e *router.Element) bool { return messageFrom(room("reserved"))(e) && hasStatus(e, 104) })
			if got := statuses(n); len(got) != len(c.codes) || got[0] != c.codes[0] || got[len(got)-1] != c.codes[len(c.codes)-1] {
				t.Errorf("codes %v, want %v", got, c.codes)
			}
		})
	}
	alice.t, bob.t = t, t

	testserver.WantResult(t, alice.iq(room("reserved"), "set", admin(`<item affiliation='member' jid='bob@localhost'/>`)))
	testserver.WantResult(t, alice.configure("reserved", "muc#roomconfig_membersonly", "1"))
	rm := carol.MustNext(t, "members-only removal", unavailableFrom(occ("reserved", "carol")))
	if !hasStatus(rm, 322) || !hasStatus(rm, 110) {
		t.Errorf("322: %s", rm)
	}
	bob.ExpectNone(t, "a member's removal", unavailableFrom(occ("reserved", "bob")))

	// A cancelled creation destroys the room.
	alice.join("cancelled", "alice", "")
	alice.subject("cancelled")
	testserver.WantResult(t, alice.iq(room("cancelled"), "set", `<query xmlns='`+muc.NSOwner+`'><x xmlns='jabber:x:data' type='cancel'/></query>`))
	wantError(t, bob.iq(room("cancelled"), "get", `<query xmlns='`+nsInfo+`'/>`), "item-not-found", "cancel")
}

// TestDestroy checks the destruction of a room (§10.9): every occupant
// leaves with the alternate venue and the reason, the room is gone, and
// only an owner may destroy it.
func TestDestroy(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob")
	alice, bob := online(t, s, "alice"), online(t, s, "bob")
	alice.create("heath", "alice")
	bob.enter("heath", "bob")
	destroy := `<query xmlns='` + muc.NSOwner + `'><destroy jid='coven@` + service + `'><reason>Macbeth doth come.</reason></destroy></query>`
	wantError(t, bob.iq(room("heath"), "set", destroy), "forbidden", "auth")
	testserver.WantResult(t, alice.iq(room("heath"), "set", destroy))
	for _, u := range []*user{alice, bob} {
		p := u.MustNext(t, "destruction", func(e *router.Element) bool {
			return e.Name.Local == "presence" && e.Get("type") == "unavailable" && e.Get("from") == occ("heath", u.name)
		})
		d := p.Child(muc.NSUser, "x").Child(muc.NSUser, "destroy")
		if d == nil || d.Get("jid") != "coven@"+service || childText(d, muc.NSUser, "reason") != "Macbeth doth come." {
			t.Errorf("destruction notice: %s", p)
		}
		wantItem(t, p, "none", "none")
	}
	wantError(t, bob.iq(room("heath"), "get", `<query xmlns='`+nsInfo+`'/>`), "item-not-found", "cancel")
}

// TestShutdown checks that occupants hear of a server shutdown (332).
func TestShutdown(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob")
	alice, bob := online(t, s, "alice"), online(t, s, "bob")
	alice.create("coven", "alice")
	bob.enter("coven", "bob")
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := bob.MustNext(t, "shutdown", unavailableFrom(occ("coven", "bob")))
	if !hasStatus(p, 332) || !hasStatus(p, 110) {
		t.Errorf("shutdown: %s", p)
	}
}

// TestDisconnect checks that an occupant whose client goes away without
// leaving is taken out of the room: the roster module withdraws the
// directed presence the join was, and the others see the exit.
func TestDisconnect(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob")
	alice, bob := online(t, s, "alice"), online(t, s, "bob")
	alice.create("coven", "alice")
	bob.enter("coven", "bob")
	bob.Close()
	alice.MustNext(t, "bob's exit", unavailableFrom(occ("coven", "bob")))
	testserver.WantResult(t, alice.iq(room("coven"), "get", admin(`<item role='participant'/>`)))
	list := alice.iq(room("coven"), "get", admin(`<item role='participant'/>`))
	if n := len(list.Child(muc.NSAdmin, "query").Elements()); n != 0 {
		t.Errorf("participants after bob left: %s", list)
	}
}
