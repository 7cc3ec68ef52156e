package muc_test

import (
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/muc"
	"github.com/xmppd/xmppd/router"
)

// roleChange matches available presence from an occupant JID whose item
// has the role given.
func roleChange(t *testing.T, from, role string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		return presenceFrom(from)(e) && e.Get("type") == "" && e.Child(muc.NSUser, "x") != nil && item(t, e).Get("role") == role
	}
}

// TestModeratorRole checks granting and revoking moderator (§9.6, §9.7):
// an admin grants it to a participant and revokes it, each change
// broadcast to every occupant with the new role, the actor and the
// reason, and the new moderator sees real JIDs and may kick; a moderator
// who is not an admin may neither grant it nor revoke it (not-allowed), a
// participant may not (forbidden), and nobody revokes it from an admin
// or an owner.
func TestModeratorRole(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob", "carol", "dave")
	alice, bob, carol, dave := online(t, s, "alice"), online(t, s, "bob"), online(t, s, "carol"), online(t, s, "dave")
	alice.create("coven", "alice")
	testserver.WantResult(t, alice.iq(room("coven"), "set", admin(`<item affiliation='admin' jid='bob@localhost'/>`)))
	bob.enter("coven", "bob")
	carol.enter("coven", "carol")
	dave.enter("coven", "dave")
	for _, u := range []*user{alice, bob, carol, dave} {
		u.Drain(t)
	}

	// A participant may not grant it.
	wantError(t, dave.iq(room("coven"), "set", admin(`<item nick='dave' role='moderator'/>`)), "forbidden", "auth")

	// The admin grants it to carol: all see it.
	testserver.WantResult(t, bob.iq(room("coven"), "set", admin(`<item nick='carol' role='moderator'><reason>A trusted witch</reason></item>`)))
	for _, u := range []*user{alice, bob, carol, dave} {
		p := u.MustNext(t, "carol made moderator", roleChange(t, occ("coven", "carol"), "moderator"))
		wantItem(t, p, "none", "moderator")
		it := item(t, p)
		if a := it.Child(muc.NSUser, "actor"); a == nil || a.Get("nick") != "bob" || childText(it, muc.NSUser, "reason") != "A trusted witch" {
			t.Errorf("grant to %s without actor and reason: %s", u.name, p)
		}
		if (u == carol) != hasStatus(p, 110) {
			t.Errorf("110 to %s: %s", u.name, p)
		}
	}
	// As a moderator carol sees real JIDs in role lists and may kick a
	// participant, but she is no admin.
	list := carol.iq(room("coven"), "get", admin(`<item role='participant'/>`))
	testserver.WantResult(t, list)
	if it := list.Child(muc.NSAdmin, "query").Child(muc.NSAdmin, "item"); it == nil || it.Get("jid") != dave.full() {
		t.Errorf("participants to the new moderator: %s", list)
	}
	for _, c := range []struct{ name, items string }{
		{"grant by a moderator", `<item nick='dave' role='moderator'/>`},
		{"revoke from the owner", `<item nick='alice' role='participant'/>`},
		{"revoke from an admin", `<item nick='bob' role='participant'/>`},
	} {
		t.Run(c.name, func(t *testing.T) {
			carol.t = t
			wantError(t, carol.iq(room("coven"), "set", admin(c.items)), "not-allowed", "cancel")
		})
	}
	carol.t = t
	wantError(t, bob.iq(room("coven"), "set", admin(`<item nick='alice' role='participant'/>`)), "not-allowed", "cancel")
	testserver.WantResult(t, carol.iq(room("coven"), "set", admin(`<item nick='dave' role='visitor'/>`)))
	dave.MustNext(t, "voice revoked", roleChange(t, occ("coven", "dave"), "visitor"))

	// The owner revokes it: carol is a participant again, for all.
	testserver.WantResult(t, alice.iq(room("coven"), "set", admin(`<item nick='carol' role='participant'/>`)))
	for _, u := range []*user{alice, bob, carol, dave} {
		p := u.MustNext(t, "carol's moderator revoked", roleChange(t, occ("coven", "carol"), "participant"))
		if a := item(t, p).Child(muc.NSUser, "actor"); a == nil || a.Get("nick") != "alice" {
			t.Errorf("revocation to %s without the actor: %s", u.name, p)
		}
	}
	wantError(t, carol.iq(room("coven"), "set", admin(`<item nick='dave' role='participant'/>`)), "forbidden", "auth")
	wantError(t, carol.iq(room("coven"), "get", admin(`<item role='participant'/>`)), "forbidden", "auth")
}
