package muc_test

import (
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/muc"
	"github.com/xmppd/xmppd/router"
)

// TestSelfPresenceID checks the id of the presence an occupant gets about
// itself: the id of the presence it sent, when it sent one (§7.2.3 lets
// the room reflect it), and never the id of an earlier presence. The
// room once kept the id of the occupant's last presence and put it on the
// unavailable presence of a nick change, an exit and a kick, which a
// client matching ids (slixmpp, seen in the interop run) takes for the
// answer to that earlier presence.
func TestSelfPresenceID(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, nil, "alice", "bob")
	alice, bob := online(t, s, "alice"), online(t, s, "bob")
	alice.create("ids", "alice")

	self := func(from, typ string) func(*router.Element) bool {
		return func(e *router.Element) bool {
			return e.Name.Local == "presence" && e.Get("from") == from && e.Get("type") == typ && hasStatus(e, 110)
		}
	}
	for _, c := range []struct {
		name, send string // send: what bob sends, if anything
		from, typ  string // bob's self-presence that answers it
		want       string // its id
	}{
		{"enter", `<presence id='enter1' to='` + occ("ids", "bob") + `'><x xmlns='` + muc.NS + `'/></presence>`, occ("ids", "bob"), "", "enter1"},
		{"nick change: the old nick's unavailable", `<presence id='nick2' to='` + occ("ids", "robert") + `'/>`, occ("ids", "bob"), "unavailable", "nick2"},
		{"nick change: the new nick", "", occ("ids", "robert"), "", "nick2"},
		{"update", `<presence id='update3' to='` + occ("ids", "robert") + `'><show>away</show></presence>`, occ("ids", "robert"), "", "update3"},
		{"exit", `<presence id='exit4' type='unavailable' to='` + occ("ids", "robert") + `'/>`, occ("ids", "robert"), "unavailable", "exit4"},
		{"enter again", `<presence id='enter5' to='` + occ("ids", "bob") + `'><x xmlns='` + muc.NS + `'/></presence>`, occ("ids", "bob"), "", "enter5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.send != "" {
				bob.send(c.send)
			}
			if got := bob.MustNext(t, c.name, self(c.from, c.typ)).Get("id"); got != c.want {
				t.Errorf("self-presence id %q, want %q", got, c.want)
			}
		})
	}
	testserver.WantResult(t, alice.iq(room("ids"), "set", `<query xmlns='`+muc.NSAdmin+`'><item nick='bob' role='none'/></query>`))
	if got := bob.MustNext(t, "the kick", self(occ("ids", "bob"), "unavailable")).Get("id"); got != "" {
		t.Errorf("kick: bob's unavailable presence has id %q, from none of his", got)
	}
}
