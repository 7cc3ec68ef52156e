package roster_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// TestMessageDelivery: RFC 6121 §8.5.2 and §8.5.3 through real clients.
// Alice has four resources: high (priority 5), low (1), also-low (1) and
// negative (-1); their availability comes from their own presence, which
// the c2s session records before the roster module broadcasts it.
func TestMessageDelivery(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		// Without offline storage, so that an undeliverable chat bounces.
		s := testserver.StartOn(t, b, func(c *config.Config) {
			c.Modules = slices.DeleteFunc(c.Modules, func(m string) bool { return m == "offline" })
		})
		addUsers(s, "alice", "bob", "carol")
		befriend(t, s, "alice", "bob")
		bob := online(t, s, "bob", "desk")
		res := map[string]*peer{}
		for _, r := range []struct{ name, prio string }{{"high", "5"}, {"low", "1"}, {"also-low", "1"}, {"negative", "-1"}} {
			p := login(t, s, "alice", r.name)
			p.available(`<presence><priority>` + r.prio + `</priority></presence>`)
			res[r.name] = p
			// §4.4.2: a negative priority does not stop the broadcast.
			bob.next(r.name+"'s presence", withChild(isPresence(p.full, ""), "priority", r.prio))
		}

		for _, tc := range []struct {
			name, to, typ string
			want          []string // the resources that get it
			bounce        string   // the error condition bob gets, if any
		}{
			{name: "chat to the bare JID", to: "alice@localhost", typ: "chat", want: []string{"high"}},
			{name: "normal to the bare JID", to: "alice@localhost", typ: "normal", want: []string{"high"}},
			{name: "no type to the bare JID", to: "alice@localhost", want: []string{"high"}},
			{name: "headline to the bare JID", to: "alice@localhost", typ: "headline", want: []string{"high", "low", "also-low"}},
			{name: "groupchat to the bare JID", to: "alice@localhost", typ: "groupchat", bounce: "service-unavailable"},
			{name: "error to the bare JID", to: "alice@localhost", typ: "error"},
			{name: "chat to a full JID", to: "alice@localhost/low", typ: "chat", want: []string{"low"}},
			{name: "chat to the negative resource", to: "alice@localhost/negative", typ: "chat", want: []string{"negative"}},
			{name: "chat to an unknown resource", to: "alice@localhost/gone", typ: "chat", want: []string{"high"}},
			{name: "headline to an unknown resource", to: "alice@localhost/gone", typ: "headline"},
			{name: "groupchat to an unknown resource", to: "alice@localhost/gone", typ: "groupchat", bounce: "service-unavailable"},
			{name: "error to a full JID", to: "alice@localhost/high", typ: "error", want: []string{"high"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				bob := bob.in(t)
				res := maps.Clone(res)
				for name, p := range res {
					res[name] = p.in(t)
				}
				id := "m-" + router.NewID()
				typ := ""
				if tc.typ != "" {
					typ = ` type='` + tc.typ + `'`
				}
				payload := `<body>hello</body>`
				if tc.typ == "error" {
					payload = `<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`
				}
				bob.send(`<message to='` + tc.to + `' id='` + id + `'` + typ + `>` + payload + `</message>`)
				bob.sync()
				wanted := map[string]bool{}
				for _, r := range tc.want {
					wanted[r] = true
					m := res[r].next("the message", isMessage(id))
					if m.Get("type") == "error" && tc.typ != "error" {
						t.Errorf("%s got an error: %s", r, m)
					}
				}
				for name, p := range res {
					if !wanted[name] {
						p.none("a message meant for "+tc.to+" by §8.5", isMessage(id))
					}
				}
				if tc.bounce != "" {
					e := bob.next("the bounce", isMessage(id))
					if cond, _ := testserver.ErrorCondition(e); e.Get("type") != "error" || cond != tc.bounce {
						t.Errorf("bounce %s, want %s", e, tc.bounce)
					}
				} else {
					bob.none("an answer", isMessage(id))
				}
			})
		}

		// §8.5.2.1.1: resources of equal top priority all get a chat.
		res["high"].send(`<presence><priority>1</priority></presence>`)
		bob.next("high's lower priority", withChild(isPresence(res["high"].full, ""), "priority", "1"))
		bob.send(`<message to='alice@localhost' id='tie' type='chat'><body>all of you</body></message>`)
		for _, r := range []string{"high", "low", "also-low"} {
			res[r].next("the chat at equal priority", isMessage("tie"))
		}
		bob.sync()
		res["negative"].none("a chat at negative priority", isMessage("tie"))

		// §8.5.2.2: with only a negative-priority resource, a chat to the
		// bare JID is as for an account with no available resource: here,
		// with no offline storage enabled, an error.
		for _, r := range []string{"high", "low", "also-low"} {
			res[r].Close()
		}
		carol := online(t, s, "carol", "pc")
		eventually(t, "alice's only session left is the negative one", func() bool {
			return len(s.Router.Sessions().Sessions(res["negative"].LocalAddr().Bare())) == 1
		})
		carol.send(`<message to='alice@localhost' id='alone' type='chat'><body>anyone?</body></message>`)
		e := carol.next("the bounce", isMessage("alone"))
		if cond, _ := testserver.ErrorCondition(e); cond != "service-unavailable" {
			t.Errorf("chat to an account with only a negative-priority resource: %s", e)
		}
		carol.sync()
		res["negative"].none("a chat to the bare JID at negative priority", isMessage("alone"))
	})
}
