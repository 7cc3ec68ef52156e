package muc_test

import (
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// remoteDomain is the peer of the federation tests, whose users are
// remote occupants of the rooms on testserver.Domain.
const remoteDomain = "remote.test"

// federate starts testserver.Domain, with the muc module, and
// remoteDomain, which routes to conference.DOMAIN over s2s as it would
// after a DNS lookup; each with the accounts given.
func federate(t *testing.T, local, remote []string) (home, peer *testserver.Server) {
	t.Helper()
	var f *testserver.Federation
	f = testserver.NewFederation(t, func(c *config.Config) {
		if c.Hosts[0].Domain == testserver.Domain {
			testserver.EnableModules(c, "muc")
			return
		}
		c.S2S.Routes[service] = f.Addr(testserver.Domain)
	}, testserver.Domain, remoteDomain)
	home, peer = f.Start(testserver.Domain), f.Start(remoteDomain)
	for _, u := range local {
		home.AddUser(u, pw)
	}
	for _, u := range remote {
		peer.AddUser(u, pw)
	}
	return home, peer
}

// TestRemoteOccupants has users of another server in a room over s2s:
// what the room sends them leaves on the stream from the service's
// domain, so that they get the presence, the groupchat messages of
// others and their own reflections, and the history when they enter
// later (the room's copies once had no sender the s2s stream could be
// chosen by, and every groupchat message and history entry to a remote
// occupant was bounced).
func TestRemoteOccupants(t *testing.T) {
	home, peer := federate(t, []string{"alice"}, []string{"bob", "carol"})
	alice := online(t, home, "alice")
	bob, carol := online(t, peer, "bob"), online(t, peer, "carol")

	alice.create("fed", "alice")
	bob.enter("fed", "bob")
	alice.MustNext(t, "bob's presence", presenceFrom(occ("fed", "bob")))

	for _, m := range []struct {
		from *user
		nick string
		body string
	}{{alice, "alice", "hello from the home server"}, {bob, "bob", "hello from the remote server"}} {
		m.from.send(`<message to='` + room("fed") + `' type='groupchat' id='` + router.NewID() + `'><body>` + m.body + `</body></message>`)
		for _, u := range []*user{alice, bob} {
			u.MustNext(t, u.name+" gets "+m.body, groupchatFrom(occ("fed", m.nick), m.body))
		}
	}

	carol.join("fed", "carol", "")
	for _, m := range []struct{ nick, body string }{{"alice", "hello from the home server"}, {"bob", "hello from the remote server"}} {
		h := carol.MustNext(t, "history: "+m.body, groupchatFrom(occ("fed", m.nick), m.body))
		if d := h.Child("urn:xmpp:delay", "delay"); d == nil || d.Get("from") != room("fed") {
			t.Errorf("history without the room's delay: %s", h)
		}
	}
	carol.subject("fed")
}

