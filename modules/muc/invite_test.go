package muc_test

import (
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/muc"
	"github.com/xmppd/xmppd/router"
)

// TestInvitations checks mediated invitations and declines (§7.8.2):
// the room passes the invitation on from the inviter's real JID with
// the password, makes the invitee a member of a members-only room, and
// passes a decline back; a decline of no invitation is refused, and so
// is an invitation by a participant to a members-only room that does not
// allow it. XEP-0249 direct invitations go from user to user untouched.
func TestInvitations(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob", "carol")
	alice, bob, carol := online(t, s, "alice"), online(t, s, "bob"), online(t, s, "carol")
	alice.create("coven", "alice")
	testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_membersonly", "1",
		"muc#roomconfig_passwordprotectedroom", "1", "muc#roomconfig_roomsecret", "cauldron"))

	alice.send(`<message to='` + room("coven") + `'><x xmlns='` + muc.NSUser + `'><invite to='bob@localhost'><reason>Hey Hecate, this is the place for all good witches!</reason></invite></x></message>`)
	inv := bob.MustNext(t, "invitation", messageFrom(room("coven")))
	x := inv.Child(muc.NSUser, "x")
	if x == nil || x.Child(muc.NSUser, "invite") == nil || x.Child(muc.NSUser, "invite").Get("from") != alice.full() ||
		childText(x.Child(muc.NSUser, "invite"), muc.NSUser, "reason") == "" || childText(x, muc.NSUser, "password") != "cauldron" {
		t.Fatalf("invitation: %s", inv)
	}
	members := alice.iq(room("coven"), "get", `<query xmlns='`+muc.NSAdmin+`'><item affiliation='member'/></query>`)
	if it := members.Child(muc.NSAdmin, "query").Child(muc.NSAdmin, "item"); it == nil || it.Get("jid") != "bob@localhost" {
		t.Errorf("the invitee is not a member: %s", members)
	}

	bob.send(`<message to='` + room("coven") + `'><x xmlns='` + muc.NSUser + `'><decline to='alice@localhost'><reason>Sorry, I'm too busy right now.</reason></decline></x></message>`)
	dec := alice.MustNext(t, "decline", func(e *router.Element) bool {
		return messageFrom(room("coven"))(e) && e.Child(muc.NSUser, "x") != nil && e.Child(muc.NSUser, "x").Child(muc.NSUser, "decline") != nil
	})
	if d := dec.Child(muc.NSUser, "x").Child(muc.NSUser, "decline"); d.Get("from") != "bob@localhost" || childText(d, muc.NSUser, "reason") == "" {
		t.Errorf("decline: %s", dec)
	}
	bob.send(`<message to='` + room("coven") + `'><x xmlns='` + muc.NSUser + `'><decline to='alice@localhost'/></x></message>`)
	wantError(t, bob.MustNext(t, "refused decline", errorFrom("message", room("coven"))), "not-acceptable", "modify")

	// bob, a member, may not invite while the room does not allow it.
	bob.join("coven", "bob", "<password>cauldron</password>")
	bob.subject("coven")
	bob.send(`<message to='` + room("coven") + `'><x xmlns='` + muc.NSUser + `'><invite to='carol@localhost'/></x></message>`)
	wantError(t, bob.MustNext(t, "refused invitation", errorFrom("message", room("coven"))), "forbidden", "auth")
	testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_allowinvites", "1"))
	bob.send(`<message to='` + room("coven") + `'><x xmlns='` + muc.NSUser + `'><invite to='carol@localhost'/></x></message>`)
	carol.MustNext(t, "invitation", messageFrom(room("coven")))

	// XEP-0249: a direct invitation is a message between users.
	alice.send(`<message to='carol@localhost/pc'><x xmlns='jabber:x:conference' jid='` + room("coven") + `' password='cauldron' reason='join us'/></message>`)
	direct := carol.MustNext(t, "direct invitation", messageFrom(alice.full()))
	if c := direct.Child("jabber:x:conference", "x"); c == nil || c.Get("jid") != room("coven") || c.Get("password") != "cauldron" {
		t.Errorf("direct invitation: %s", direct)
	}
}

// TestVoiceRequest checks a visitor's request for voice (§7.13): the
// moderators get the muc#request form, and a moderator's approval (§8.6)
// makes the visitor a participant.
func TestVoiceRequest(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob")
	alice, bob := online(t, s, "alice"), online(t, s, "bob")
	alice.create("coven", "alice")
	testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_moderatedroom", "1"))
	wantItem(t, bob.enter("coven", "bob"), "none", "visitor")

	bob.send(`<message to='` + room("coven") + `'>` + testserver.DataForm(muc.NS+"#request", "submit", "muc#role", "participant") + `</message>`)
	req := alice.MustNext(t, "voice request", func(e *router.Element) bool {
		return messageFrom(room("coven"))(e) && e.Child("jabber:x:data", "x") != nil
	})
	form := req.Child("jabber:x:data", "x")
	values := map[string]string{}
	for _, f := range form.Elements() {
		if f.Name.Local == "field" {
			values[f.Get("var")] = childText(f, "jabber:x:data", "value")
		}
	}
	if form.Get("type") != "form" || values["FORM_TYPE"] != muc.NS+"#request" || values["muc#roomnick"] != "bob" ||
		values["muc#jid"] != bob.full() || values["muc#role"] != "participant" {
		t.Fatalf("voice request form: %s", req)
	}
	alice.send(`<message to='` + room("coven") + `'>` + testserver.DataForm(muc.NS+"#request", "submit",
		"muc#role", "participant", "muc#jid", bob.full(), "muc#roomnick", "bob", "muc#request_allow", "true") + `</message>`)
	voiced := bob.MustNext(t, "voice", func(e *router.Element) bool {
		return presenceFrom(occ("coven", "bob"))(e) && e.Child(muc.NSUser, "x") != nil && item(t, e).Get("role") == "participant"
	})
	wantItem(t, voiced, "none", "participant")
	bob.send(`<message to='` + room("coven") + `'>` + testserver.DataForm(muc.NS+"#request", "submit", "muc#role", "participant") + `</message>`)
	wantError(t, bob.MustNext(t, "second request", errorFrom("message", room("coven"))), "not-acceptable", "modify")
}

// TestRegister checks registration with a room (§7.10) and discovering
// the reserved nick (§7.12): the form, a registration that makes a
// member, the registered answer, a nick another user registered
// (conflict on registering and on entering), and cancelling.
func TestRegister(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob", "carol")
	alice, bob, carol := online(t, s, "alice"), online(t, s, "bob"), online(t, s, "carol")
	alice.create("coven", "alice")

	form := bob.iq(room("coven"), "get", `<query xmlns='jabber:iq:register'/>`)
	testserver.WantResult(t, form)
	if x := form.Child("jabber:iq:register", "query").Child("jabber:x:data", "x"); x == nil || x.Get("type") != "form" {
		t.Fatalf("registration form: %s", form)
	}
	nick := bob.iq(room("coven"), "get", `<query xmlns='`+nsInfo+`' node='x-roomuser-item'/>`)
	testserver.WantResult(t, nick)
	if nick.Child(nsInfo, "query").Child(nsInfo, "identity") != nil {
		t.Errorf("a reserved nick before registering: %s", nick)
	}
	reg := func(u *user, nick string) *router.Element {
		return u.iq(room("coven"), "set", `<query xmlns='jabber:iq:register'>`+
			testserver.DataForm(muc.NS+"#register", "submit", "muc#register_roomnick", nick)+`</query>`)
	}
	testserver.WantResult(t, reg(bob, "thirdwitch"))
	got := bob.iq(room("coven"), "get", `<query xmlns='jabber:iq:register'/>`)
	if q := got.Child("jabber:iq:register", "query"); q.Child("jabber:iq:register", "registered") == nil || childText(q, "jabber:iq:register", "username") != "thirdwitch" {
		t.Errorf("registered: %s", got)
	}
	nick = bob.iq(room("coven"), "get", `<query xmlns='`+nsInfo+`' node='x-roomuser-item'/>`)
	if id := nick.Child(nsInfo, "query").Child(nsInfo, "identity"); id == nil || id.Get("name") != "thirdwitch" || id.Get("category") != "conference" {
		t.Errorf("reserved nick: %s", nick)
	}
	members := alice.iq(room("coven"), "get", `<query xmlns='`+muc.NSAdmin+`'><item affiliation='member'/></query>`)
	if it := members.Child(muc.NSAdmin, "query").Child(muc.NSAdmin, "item"); it == nil || it.Get("jid") != "bob@localhost" || it.Get("nick") != "thirdwitch" {
		t.Errorf("member list after registering: %s", members)
	}
	wantError(t, reg(carol, "thirdwitch"), "conflict", "cancel")
	wantError(t, carol.join("coven", "thirdwitch", ""), "conflict", "cancel")
	wantError(t, reg(carol, ""), "not-acceptable", "modify")

	testserver.WantResult(t, bob.iq(room("coven"), "set", `<query xmlns='jabber:iq:register'><remove/></query>`))
	testserver.WantResult(t, reg(carol, "thirdwitch"))
}

// TestSelfPing checks XEP-0410 as the service answers it: a result for
// the occupant's own occupant JID, not-acceptable for a nick the sender
// is not joined as, or when it is not in the room.
func TestSelfPing(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob")
	alice, bob := online(t, s, "alice"), online(t, s, "bob")
	alice.create("coven", "alice")
	ping := `<ping xmlns='urn:xmpp:ping'/>`
	res := alice.iq(occ("coven", "alice"), "get", ping)
	testserver.WantResult(t, res)
	if res.Get("from") != occ("coven", "alice") {
		t.Errorf("self-ping answered from %s", res.Get("from"))
	}
	wantError(t, bob.iq(occ("coven", "alice"), "get", ping), "not-acceptable", "cancel")
	wantError(t, bob.iq(occ("coven", "bob"), "get", ping), "not-acceptable", "cancel")
	bob.enter("coven", "bob")
	testserver.WantResult(t, bob.iq(occ("coven", "bob"), "get", ping))
	wantError(t, bob.iq(occ("coven", "alice"), "get", ping), "not-acceptable", "cancel")
	alice.send(`<presence type='unavailable' to='` + occ("coven", "alice") + `'/>`)
	alice.MustNext(t, "exit", func(e *router.Element) bool {
		return presenceFrom(occ("coven", "alice"))(e) && e.Get("type") == "unavailable"
	})
	wantError(t, alice.iq(occ("coven", "alice"), "get", ping), "not-acceptable", "cancel")
}

// TestOccupantID checks XEP-0421: one id per real bare JID in a room,
// the same for two sessions of one user and after leaving and entering
// again, another for another user and in another room.
func TestOccupantID(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob")
	alice, bob := online(t, s, "alice"), online(t, s, "bob")
	phone := onlineAs(t, s, "bob", "phone")
	alice.create("coven", "alice")
	alice.create("other", "alice")
	idOf := func(e *router.Element) string {
		t.Helper()
		o := e.Child(muc.NSOccupantID, "occupant-id")
		if o == nil || o.Get("id") == "" {
			t.Fatalf("no occupant-id: %s", e)
		}
		return o.Get("id")
	}
	pc := idOf(bob.enter("coven", "bob"))
	mobile := idOf(phone.enter("coven", "bobphone"))
	other := idOf(bob.enter("other", "bob"))
	aliceID := idOf(alice.MustNext(t, "bob's presence", presenceFrom(occ("coven", "bob"))))
	if pc != mobile || pc != aliceID {
		t.Errorf("ids of one user differ: %s, %s, %s", pc, mobile, aliceID)
	}
	if other == pc {
		t.Errorf("the same id in two rooms: %s", pc)
	}
	self := alice.iq(occ("coven", "alice"), "get", `<ping xmlns='urn:xmpp:ping'/>`)
	testserver.WantResult(t, self)
	bob.send(`<presence type='unavailable' to='` + occ("coven", "bob") + `'/>`)
	bob.MustNext(t, "exit", func(e *router.Element) bool {
		return presenceFrom(occ("coven", "bob"))(e) && e.Get("type") == "unavailable"
	})
	if again := idOf(bob.enter("coven", "bob")); again != pc {
		t.Errorf("id after entering again %s, want %s", again, pc)
	}
}
