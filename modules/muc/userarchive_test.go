package muc_test

import (
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/mam/query"
	"github.com/xmppd/xmppd/router"
)

// ownArchive queries the user's own archive (XEP-0313 on the account) and
// returns the forwarded messages.
func (u *user) ownArchive() []*router.Element {
	u.t.Helper()
	qid := router.NewID()
	answer, results := u.MustRequestAfter(u.t, `<iq type='set' id='`+qid+`'><query xmlns='`+query.NS+`' queryid='`+qid+`'/></iq>`,
		func(e *router.Element) bool {
			r := e.Child(query.NS, "result")
			return e.Name.Local == "message" && r != nil && r.Get("queryid") == qid
		})
	testserver.WantResult(u.t, answer)
	var msgs []*router.Element
	for _, e := range results {
		msgs = append(msgs, forwardedMessage(u.t, e))
	}
	return msgs
}

// TestUserArchives checks, with the mam module on and on both backends,
// that a room's groupchat messages (live, history and archive results) go
// to the room's archive only, never to the occupants' own archives
// (XEP-0313 §5.1.1 leaves it open; clients read groupchat from the room),
// while private messages through the room are the users' own, archived
// in both accounts' archives; and that the stanza-id by the room reaches
// the occupants.
func TestUserArchives(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, func(c *config.Config) {
			testserver.EnableModules(c, "muc", "mam", "roster", "carbons")
		})
		for _, u := range []string{"alice", "bob"} {
			s.AddUser(u, pw)
		}
		alice, bob := online(t, s, "alice"), online(t, s, "bob")
		alice.create("coven", "alice")
		testserver.WantResult(t, alice.configure("coven", "muc#roomconfig_enablearchiving", "1"))
		bob.enter("coven", "bob")
		m := alice.say("coven", "alice", "to the room")
		got := bob.MustNext(t, "groupchat", groupchatFrom(occ("coven", "alice"), "to the room"))
		if roomStanzaID(got, "coven") == "" || roomStanzaID(got, "coven") != roomStanzaID(m, "coven") {
			t.Errorf("the room's stanza-id did not reach bob: %s", got)
		}
		alice.send(`<message type='chat' id='pm1' to='` + occ("coven", "bob") + `'><body>just to you</body></message>`)
		bob.MustNext(t, "private message", func(e *router.Element) bool { return e.Get("id") == "pm1" })
		bob.send(`<presence type='unavailable' to='` + occ("coven", "bob") + `'/>`)
		bob.MustNext(t, "exit", unavailableFrom(occ("coven", "bob")))
		bob.join("coven", "bob", "")
		if h := bob.history("coven"); len(h) != 1 {
			t.Errorf("history: %v", h)
		}
		if msgs, _, _ := bob.mamQuery("coven", ""); len(msgs) != 1 {
			t.Errorf("room archive: %v", msgs)
		}
		for _, u := range []*user{alice, bob} {
			msgs := u.ownArchive()
			if len(msgs) != 1 || msgs[0].Get("id") != "pm1" || msgs[0].Get("type") != "chat" {
				t.Errorf("%s's own archive: %v, want the private message only", u.name, msgs)
			}
		}
	})
}
