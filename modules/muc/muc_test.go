package muc_test

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/muc"
	"github.com/xmppd/xmppd/router"
)

const (
	nsInfo  = "http://jabber.org/protocol/disco#info"
	nsItems = "http://jabber.org/protocol/disco#items"
)

// TestDisco checks the service's disco (§6.1-6.3): listed by the domain,
// identity conference/text and its features, public rooms as items
// (neither hidden nor locked ones), and a room's disco#info with its
// muc_* features and the muc#roominfo form (§6.4).
func TestDisco(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob")
	alice, bob := online(t, s, "alice"), online(t, s, "bob")

	items := alice.iq(testserver.Domain, "get", `<query xmlns='`+nsItems+`'/>`)
	if !strings.Contains(items.String(), "jid=\""+service+"\"") {
		t.Fatalf("domain's disco#items without %s: %s", service, items)
	}
	info := alice.iq(service, "get", `<query xmlns='`+nsInfo+`'/>`)
	testserver.WantResult(t, info)
	id := info.Child(nsInfo, "query").Child(nsInfo, "identity")
	if id == nil || id.Get("category") != "conference" || id.Get("type") != "text" {
		t.Fatalf("identity: %s", info)
	}
	for _, f := range []string{muc.NS, muc.NSStableID, muc.NSOccupantID, muc.NSSelfPing} {
		if !testserver.HasFeature(info, f) {
			t.Errorf("service feature %s missing: %s", f, info)
		}
	}

	alice.create("public", "alice")
	alice.create("hidden", "alice")
	testserver.WantResult(t, alice.configure("hidden", "muc#roomconfig_publicroom", "0"))
	alice.join("locked", "alice", "") // created, never configured

	list := bob.iq(service, "get", `<query xmlns='`+nsItems+`'/>`)
	testserver.WantResult(t, list)
	var jids []string
	for _, it := range list.Child(nsItems, "query").Elements() {
		jids = append(jids, it.Get("jid"))
	}
	if len(jids) != 1 || jids[0] != room("public") {
		t.Errorf("rooms listed: %v, want only %s", jids, room("public"))
	}

	testserver.WantResult(t, alice.configure("public", "muc#roomconfig_roomname", "The Public Room",
		"muc#roomconfig_roomdesc", "For everyone", "muc#roomconfig_moderatedroom", "1", "muc#roomconfig_whois", "anyone"))
	ri := bob.iq(room("public"), "get", `<query xmlns='`+nsInfo+`'/>`)
	testserver.WantResult(t, ri)
	q := ri.Child(nsInfo, "query")
	if id := q.Child(nsInfo, "identity"); id == nil || id.Get("category") != "conference" || id.Get("type") != "text" || id.Get("name") != "The Public Room" {
		t.Errorf("room identity: %s", ri)
	}
	for _, c := range []struct {
		feature string
		want    bool
	}{
		{muc.NS, true}, {muc.NSStableID, true}, {muc.NSOccupantID, true}, {"muc_public", true}, {"muc_hidden", false},
		{"muc_temporary", true}, {"muc_persistent", false}, {"muc_open", true}, {"muc_moderated", true},
		{"muc_unmoderated", false}, {"muc_unsecured", true}, {"muc_nonanonymous", true}, {"muc_semianonymous", false},
	} {
		if testserver.HasFeature(ri, c.feature) != c.want {
			t.Errorf("room feature %s: %v, want %v", c.feature, !c.want, c.want)
		}
	}
	form := q.Child("jabber:x:data", "x")
	if form == nil || !strings.Contains(form.String(), muc.NS+"#roominfo") || !strings.Contains(form.String(), "For everyone") ||
		!strings.Contains(form.String(), "muc#roominfo_occupants") {
		t.Errorf("roominfo form: %s", ri)
	}
	wantError(t, bob.iq(room("nowhere"), "get", `<query xmlns='`+nsInfo+`'/>`), "item-not-found", "cancel")
}

// TestEnter runs the entering use cases of §7.2 and their errors, each
// against a room set up for it.
func TestEnter(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, map[string]any{"max_occupants": 2}, "alice", "bob", "carol")
	alice, bob, carol := online(t, s, "alice"), online(t, s, "bob"), online(t, s, "carol")

	alice.create("open", "alice")
	alice.create("pw", "alice")
	testserver.WantResult(t, alice.configure("pw", "muc#roomconfig_passwordprotectedroom", "1", "muc#roomconfig_roomsecret", "cauldron"))
	alice.create("members", "alice")
	testserver.WantResult(t, alice.configure("members", "muc#roomconfig_membersonly", "1"))
	alice.create("banned", "alice")
	testserver.WantResult(t, alice.iq(room("banned"), "set", `<query xmlns='`+muc.NSAdmin+`'><item affiliation='outcast' jid='bob@localhost'/></query>`))
	alice.join("locked", "alice", "")

	for _, c := range []struct {
		name, room, nick, inner string
		cond, typ               string
	}{
		{"no password", "pw", "bob", "", "not-authorized", "auth"},
		{"wrong password", "pw", "bob", "<password>broom</password>", "not-authorized", "auth"},
		{"members-only", "members", "bob", "", "registration-required", "auth"},
		{"banned", "banned", "bob", "", "forbidden", "auth"},
		{"nick conflict", "open", "alice", "", "conflict", "cancel"},
		{"locked", "locked", "bob", "", "item-not-found", "cancel"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bob.t = t
			e := bob.join(c.room, c.nick, c.inner)
			if e.Get("type") != "error" || e.Get("from") != occ(c.room, c.nick) {
				t.Fatalf("got %s, want an error from %s", e, occ(c.room, c.nick))
			}
			wantError(t, e, c.cond, c.typ)
			if er := e.Child("", "error"); er == nil || er.Get("by") != room(c.room) {
				t.Errorf("error without by='%s': %s", room(c.room), e)
			}
			if e.Child(muc.NS, "x") == nil {
				t.Errorf("error without the MUC <x/>: %s", e)
			}
		})
	}
	bob.t = t

	bob.join("pw", "bob", "<password>cauldron</password>")
	bob.subject("pw")
	// max_occupants is 2: open has alice; bob enters, carol is refused.
	bob.enter("open", "bob")
	e := carol.join("open", "carol", "")
	wantError(t, e, "service-unavailable", "wait")
}

// TestPresenceBroadcast checks the order and content of the presence on
// entering (§7.2.3, §7.2.4), the self codes 110, 100, 170, 201, the real
// JIDs moderators and (non-anonymous rooms) everyone see, occupant ids,
// presence updates (§7.7) and exit (§7.14).
func TestPresenceBroadcast(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob", "carol")
	alice, bob, carol := online(t, s, "alice"), online(t, s, "bob"), online(t, s, "carol")

	alice.send(`<presence to='` + occ("coven", "firstwitch") + `'><x xmlns='` + muc.NS + `'/></presence>`)
	self := alice.MustNext(t, "creation", presenceFrom(occ("coven", "firstwitch")))
	if got := statuses(self); len(got) != 2 || got[0] != 110 || got[1] != 201 {
		t.Errorf("creation codes %v, want [110 201]: %s", got, self)
	}
	wantItem(t, self, "owner", "moderator")
	alice.subject("coven")
	testserver.WantResult(t, alice.iq(room("coven"), "set", `<query xmlns='`+muc.NSOwner+`'><x xmlns='jabber:x:data' type='submit'/></query>`))

	bob.send(`<presence to='` + occ("coven", "secondwitch") + `'><show>away</show><status>brewing</status><x xmlns='` + muc.NS + `'/></presence>`)
	first := bob.MustNext(t, "alice's presence", presenceFrom(occ("coven", "firstwitch")))
	wantItem(t, first, "owner", "moderator")
	if item(t, first).Get("jid") != "" {
		t.Errorf("semi-anonymous room shows a moderator's real JID to a participant: %s", first)
	}
	own := bob.MustNext(t, "self-presence", presenceFrom(occ("coven", "secondwitch")))
	if got := statuses(own); len(got) != 1 || got[0] != 110 {
		t.Errorf("self codes %v, want [110]", got)
	}
	if childText(own, "", "show") != "away" || childText(own, "", "status") != "brewing" {
		t.Errorf("self-presence without show and status: %s", own)
	}
	toAlice := alice.MustNext(t, "bob's presence", presenceFrom(occ("coven", "secondwitch")))
	if item(t, toAlice).Get("jid") != bob.full() {
		t.Errorf("a moderator does not see the real JID: %s", toAlice)
	}
	aliceID := first.Child(muc.NSOccupantID, "occupant-id")
	if aliceID == nil || aliceID.Get("id") == "" {
		t.Fatalf("no occupant-id: %s", first)
	}
	bob.subject("coven")

	// Non-anonymous and archived: 100 and 170 on entering.
	testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_whois", "anyone", "muc#roomconfig_enablearchiving", "1"))
	self = carol.join("coven", "thirdwitch", "")
	if got := statuses(self); len(got) != 3 || got[0] != 100 || got[1] != 110 || got[2] != 170 {
		t.Errorf("codes %v, want [100 110 170]", got)
	}
	carol.subject("coven")
	toBob := bob.MustNext(t, "carol's presence", presenceFrom(occ("coven", "thirdwitch")))
	if item(t, toBob).Get("jid") != carol.full() {
		t.Errorf("a non-anonymous room hides the real JID: %s", toBob)
	}

	// A presence update goes to all.
	bob.send(`<presence to='` + occ("coven", "secondwitch") + `'><show>dnd</show></presence>`)
	upd := carol.MustNext(t, "update", func(e *router.Element) bool {
		return presenceFrom(occ("coven", "secondwitch"))(e) && childText(e, "", "show") == "dnd"
	})
	wantItem(t, upd, "none", "participant")

	// Exit: unavailable to all, with 110 to the one leaving.
	bob.send(`<presence type='unavailable' to='` + occ("coven", "secondwitch") + `'><status>gone</status></presence>`)
	left := bob.MustNext(t, "own exit", func(e *router.Element) bool {
		return presenceFrom(occ("coven", "secondwitch"))(e) && e.Get("type") == "unavailable"
	})
	if !hasStatus(left, 110) || childText(left, "", "status") != "gone" {
		t.Errorf("exit: %s", left)
	}
	wantItem(t, left, "none", "none")
	other := alice.MustNext(t, "bob's exit", func(e *router.Element) bool {
		return presenceFrom(occ("coven", "secondwitch"))(e) && e.Get("type") == "unavailable"
	})
	if hasStatus(other, 110) {
		t.Errorf("110 to another occupant: %s", other)
	}
}
