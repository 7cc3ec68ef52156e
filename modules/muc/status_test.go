package muc_test

import (
	"context"
	"slices"
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/muc"
	"github.com/xmppd/xmppd/router"
)

// TestStatusCodes has one case for each way the service emits a status
// code of XEP-0045 §15.6: the setup that makes the room send it, and the
// exact codes of the stanza the client gets. Each case runs on a server
// of its own with alice, who owns the room "coven", and bob, in it.
func TestStatusCodes(t *testing.T) {
	// toBob is bob's next presence from his occupant JID.
	toBob := func(t *testing.T, bob *user, nick string) *router.Element {
		return bob.MustNext(t, "bob's presence", presenceFrom(occ("coven", nick)))
	}
	// notice is the next room message bob gets with status codes.
	notice := func(t *testing.T, bob *user) *router.Element {
		return bob.MustNext(t, "notice", func(e *router.Element) bool {
			return messageFrom(room("coven"))(e) && len(statuses(e)) > 0
		})
	}
	// configured changes the configuration and returns bob's notice.
	configured := func(t *testing.T, alice, bob *user, fields ...string) *router.Element {
		testserver.WantResult(t, alice.configure("coven", fields...))
		return notice(t, bob)
	}
	for _, c := range []struct {
		name string
		// enter, if set, is done by bob instead of entering "coven" as bob.
		enter func(t *testing.T, s *testserver.Server, alice, bob *user) *router.Element
		// then runs with bob in the room and returns the stanza to check.
		then func(t *testing.T, s *testserver.Server, alice, bob *user) *router.Element
		want []int
	}{
		{name: "110 self-presence", want: []int{110},
			enter: func(t *testing.T, _ *testserver.Server, _, bob *user) *router.Element {
				return bob.join("coven", "bob", "")
			}},
		{name: "100 non-anonymous room", want: []int{100, 110},
			enter: func(t *testing.T, _ *testserver.Server, alice, bob *user) *router.Element {
				testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_whois", "anyone"))
				return bob.join("coven", "bob", "")
			}},
		{name: "170 archived room", want: []int{110, 170},
			enter: func(t *testing.T, _ *testserver.Server, alice, bob *user) *router.Element {
				testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_enablearchiving", "1"))
				return bob.join("coven", "bob", "")
			}},
		{name: "201 created", want: []int{110, 201},
			enter: func(t *testing.T, _ *testserver.Server, _, bob *user) *router.Element {
				return bob.join("newroom", "bob", "")
			}},
		{name: "210 nick normalised on entering", want: []int{110, 210},
			enter: func(t *testing.T, _ *testserver.Server, _, bob *user) *router.Element {
				return bob.join("coven", "cafe\u0301", "")
			}},
		{name: "104 configuration changed", want: []int{104},
			then: func(t *testing.T, _ *testserver.Server, alice, bob *user) *router.Element {
				return configured(t, alice, bob, "muc#roomconfig_roomname", "Renamed")
			}},
		{name: "170 logging on", want: []int{104, 170},
			then: func(t *testing.T, _ *testserver.Server, alice, bob *user) *router.Element {
				return configured(t, alice, bob, "muc#roomconfig_enablearchiving", "1")
			}},
		{name: "171 logging off", want: []int{104, 171},
			then: func(t *testing.T, _ *testserver.Server, alice, bob *user) *router.Element {
				configured(t, alice, bob, "muc#roomconfig_enablearchiving", "1")
				return configured(t, alice, bob, "muc#roomconfig_enablearchiving", "0")
			}},
		{name: "172 now non-anonymous", want: []int{104, 172},
			then: func(t *testing.T, _ *testserver.Server, alice, bob *user) *router.Element {
				return configured(t, alice, bob, "muc#roomconfig_whois", "anyone")
			}},
		{name: "173 now semi-anonymous", want: []int{104, 173},
			then: func(t *testing.T, _ *testserver.Server, alice, bob *user) *router.Element {
				configured(t, alice, bob, "muc#roomconfig_whois", "anyone")
				return configured(t, alice, bob, "muc#roomconfig_whois", "moderators")
			}},
		{name: "303 nick changed", want: []int{110, 303},
			then: func(t *testing.T, _ *testserver.Server, _, bob *user) *router.Element {
				bob.send(`<presence to='` + occ("coven", "oldhag") + `'/>`)
				return toBob(t, bob, "bob")
			}},
		{name: "210 nick normalised on changing", want: []int{110, 210},
			then: func(t *testing.T, _ *testserver.Server, _, bob *user) *router.Element {
				bob.send("<presence to='" + room("coven") + "/cafe\u0301'/>")
				return toBob(t, bob, "caf\u00e9")
			}},
		{name: "307 kicked", want: []int{110, 307},
			then: func(t *testing.T, _ *testserver.Server, alice, bob *user) *router.Element {
				testserver.WantResult(t, alice.iq(room("coven"), "set", admin(`<item nick='bob' role='none'/>`)))
				return toBob(t, bob, "bob")
			}},
		{name: "301 banned", want: []int{110, 301},
			then: func(t *testing.T, _ *testserver.Server, alice, bob *user) *router.Element {
				testserver.WantResult(t, alice.iq(room("coven"), "set", admin(`<item affiliation='outcast' jid='bob@localhost'/>`)))
				return toBob(t, bob, "bob")
			}},
		{name: "321 membership revoked", want: []int{110, 321},
			enter: enterAsMember,
			then: func(t *testing.T, _ *testserver.Server, alice, bob *user) *router.Element {
				testserver.WantResult(t, alice.iq(room("coven"), "set", admin(`<item affiliation='none' jid='bob@localhost'/>`)))
				return toBob(t, bob, "bob")
			}},
		{name: "321 registration cancelled", want: []int{110, 321},
			enter: enterAsMember,
			then: func(t *testing.T, _ *testserver.Server, _, bob *user) *router.Element {
				testserver.WantResult(t, bob.iq(room("coven"), "set", `<query xmlns='jabber:iq:register'><remove/></query>`))
				return toBob(t, bob, "bob")
			}},
		{name: "322 room made members-only", want: []int{110, 322},
			then: func(t *testing.T, _ *testserver.Server, alice, bob *user) *router.Element {
				testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_membersonly", "1"))
				return toBob(t, bob, "bob")
			}},
		{name: "332 shutdown", want: []int{110, 332},
			then: func(t *testing.T, s *testserver.Server, _, bob *user) *router.Element {
				if err := s.Shutdown(context.Background()); err != nil {
					t.Fatal(err)
				}
				return toBob(t, bob, "bob")
			}},
		{name: "333 presence without the MUC x", want: []int{110, 307, 333},
			enter: func(t *testing.T, _ *testserver.Server, _, bob *user) *router.Element {
				bob.send(`<presence to='` + occ("coven", "bob") + `'/>`)
				return toBob(t, bob, "bob")
			}},
		{name: "333 error bounced", want: []int{110, 307, 333},
			then: func(t *testing.T, _ *testserver.Server, _, bob *user) *router.Element {
				bob.send(`<message type='error' to='` + occ("coven", "alice") + `'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`)
				return toBob(t, bob, "bob")
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob")
			alice, bob := online(t, s, "alice"), online(t, s, "bob")
			alice.create("coven", "alice")
			var got *router.Element
			if c.enter != nil {
				got = c.enter(t, s, alice, bob)
			} else {
				bob.enter("coven", "bob")
			}
			if c.then != nil {
				got = c.then(t, s, alice, bob)
			}
			if codes := statuses(got); !slices.Equal(codes, c.want) {
				t.Errorf("status codes %v, want %v: %s", codes, c.want, got)
			}
		})
	}
}

// enterAsMember makes bob a member of the members-only room "coven" with
// the registered nick bob, and enters it.
func enterAsMember(t *testing.T, _ *testserver.Server, alice, bob *user) *router.Element {
	t.Helper()
	testserver.WantResult(t, alice.iq(room("coven"), "set", admin(`<item affiliation='member' jid='bob@localhost'/>`)))
	testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_membersonly", "1"))
	testserver.WantResult(t, bob.iq(room("coven"), "set", `<query xmlns='jabber:iq:register'>`+
		testserver.DataForm(muc.NS+"#register", "submit", "muc#register_roomnick", "bob")+`</query>`))
	return bob.enter("coven", "bob")
}
