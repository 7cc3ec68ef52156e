package muc_test

import (
	"net"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/muc"
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

// TestRoomVanishesWhileBouncing has the only occupant of a room on a
// server that cannot be reached: what the room sends it bounces, the
// error removes it, the room empties, and the unavailable presence the
// room sends it then bounces at once, within the room's own routing,
// back to the room that has just emptied. That bounce must find the room
// gone, not wait for it to be forgotten: the room was forgotten only after
// its routing had finished, which waited on the bounce, and the goroutine
// spun for ever (and the server could not shut down). Afterwards the room
// name is free again.
func TestRoomVanishesWhileBouncing(t *testing.T) {
	ca := testserver.NewCA(t)
	// Bob's server as the room's server sees it: a listener that this
	// test closes once the room has connected to it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f := testserver.NewFederation(t, func(c *config.Config) {
		d := c.Hosts[0].Domain
		c.Hosts[0].Cert, c.Hosts[0].Key = ca.Issue(d)
		c.S2S.CAFile = ca.File
		if d == testserver.Domain {
			testserver.EnableModules(c, "muc")
			c.SetModuleOptions("muc", map[string]any{"creators": "anyone"})
			c.S2S.Routes[remoteDomain] = ln.Addr().String()
			return
		}
		c.S2S.Routes[service] = c.S2S.Routes[testserver.Domain]
	}, testserver.Domain, remoteDomain)
	home, peer := f.Start(testserver.Domain), f.Start(remoteDomain)
	for _, s := range []*testserver.Server{home, peer} {
		s.Roots.AppendCertsFromPEM(ca.PEM)
	}
	home.AddUser("alice", pw)
	peer.AddUser("bob", pw)
	alice, bob := online(t, home, "alice"), online(t, peer, "bob")

	// Bob's join reaches the room over bob's server's stream (SASL
	// EXTERNAL: no dialback to the address the room cannot reach). The
	// room creates itself and connects to send bob his presence; that
	// connection fails, and so does every later one.
	bob.send(`<presence to='` + occ("lost", "bob") + `'><x xmlns='` + muc.NS + `'/></presence>`)
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(time.Minute)) // bounds only a failure
	conn, err := ln.Accept()
	if err != nil {
		t.Fatalf("the room never connected to bob's server: %v", err)
	}
	conn.Close()
	ln.Close()
	// Until the room has bounced itself empty, it is bob's locked room;
	// then alice creates it anew.
	for {
		self := alice.join("lost", "alice", "")
		if self.Get("type") != "error" {
			if !hasStatus(self, 201) {
				t.Fatalf("alice entering the vanished room: %s, want a new room (201)", self)
			}
			break
		}
		wantError(t, self, "item-not-found", "cancel")
	}
	alice.subject("lost")
}
