package muc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/muc"
)

// TestPersistence checks on both backends that a persistent room keeps
// its configuration, affiliations and subject across a restart, and
// that a temporary room vanishes when its last occupant leaves.
func TestPersistence(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob")
		alice := online(t, s, "alice")
		alice.create("keep", "alice")
		testserver.WantResult(t, alice.configure("keep", "muc#roomconfig_persistentroom", "1", "muc#roomconfig_roomname", "Kept",
			"muc#roomconfig_membersonly", "1"))
		testserver.WantResult(t, alice.iq(room("keep"), "set", admin(`<item affiliation='member' jid='bob@localhost'/>`)))
		alice.send(`<message type='groupchat' to='` + room("keep") + `'><subject>Still here</subject></message>`)
		alice.subject("keep")
		alice.create("temp", "alice")
		alice.send(`<presence type='unavailable' to='` + occ("temp", "alice") + `'/>`)
		alice.MustNext(t, "exit", unavailableFrom(occ("temp", "alice")))
		wantError(t, alice.iq(room("temp"), "get", `<query xmlns='`+nsInfo+`'/>`), "item-not-found", "cancel")
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}

		s2 := testserver.StartOn(t, b, func(c *config.Config) {
			testserver.EnableModules(c, "muc", "roster", "carbons")
			c.Storage, c.DataDir = s.Config.Storage, s.Config.DataDir
		})
		bob := online(t, s2, "bob")
		info := bob.iq(room("keep"), "get", `<query xmlns='`+nsInfo+`'/>`)
		testserver.WantResult(t, info)
		if !testserver.HasFeature(info, "muc_persistent") || !testserver.HasFeature(info, "muc_membersonly") ||
			!strings.Contains(info.String(), `name="Kept"`) {
			t.Errorf("room after restart: %s", info)
		}
		self := bob.join("keep", "bob", "")
		wantItem(t, self, "member", "participant")
		if sub := bob.subject("keep"); childText(sub, "", "subject") != "Still here" || sub.Get("from") != occ("keep", "alice") {
			t.Errorf("subject after restart: %s", sub)
		}
		owners := bob.iq(room("keep"), "get", `<query xmlns='`+muc.NSAdmin+`'><item affiliation='member'/></query>`)
		wantError(t, owners, "forbidden", "auth")
	})
}

// TestLimits checks the service's limits: rooms per user, message size
// (policy-violation) and the occupant's message rate (resource-constraint),
// the rate's token bucket with a burst of 3 at one message per hour, so
// that no token comes back while the test runs.
func TestLimits(t *testing.T) {
	s := start(t, storetest.Backend{Name: "sqlite"}, map[string]any{"max_rooms_per_user": 1, "message_rate": 1, "message_burst": 3,
		"max_message_size": 500}, "alice", "bob")
	alice, bob := online(t, s, "alice"), online(t, s, "bob")
	alice.create("one", "alice")
	wantError(t, alice.join("two", "alice", ""), "not-allowed", "cancel")
	bob.enter("one", "bob")

	alice.send(`<message type='groupchat' to='` + room("one") + `'><body>` + strings.Repeat("x", 600) + `</body></message>`)
	wantError(t, alice.MustNext(t, "too large", errorFrom("message", room("one"))), "policy-violation", "modify")
	// The refused message took no token: three pass, the fourth does not.
	for _, body := range []string{"1", "2", "3"} {
		alice.send(`<message type='groupchat' to='` + room("one") + `'><body>` + body + `</body></message>`)
		bob.MustNext(t, "message "+body, groupchatFrom(occ("one", "alice"), body))
	}
	alice.send(`<message type='groupchat' to='` + room("one") + `'><body>4</body></message>`)
	wantError(t, alice.MustNext(t, "rate", errorFrom("message", room("one"))), "resource-constraint", "wait")
	bob.ExpectNone(t, "the fourth message", groupchatFrom(occ("one", "alice"), "4"))
	// Another occupant's bucket is its own.
	bob.send(`<message type='groupchat' to='` + room("one") + `'><body>mine</body></message>`)
	alice.MustNext(t, "bob's message", groupchatFrom(occ("one", "bob"), "mine"))
}

// TestHistoryRestart checks on both backends that the history of an
// archived persistent room comes from the archive: after a restart on the
// same database a newcomer gets it, with the stanza-ids and delay stamps
// it had before.
func TestHistoryRestart(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob")
		alice, bob := online(t, s, "alice"), online(t, s, "bob")
		alice.create("keep", "alice")
		testserver.WantResult(t, alice.configure("keep", "muc#roomconfig_persistentroom", "1", "muc#roomconfig_enablearchiving", "1"))
		for _, body := range []string{"one", "two", "three"} {
			alice.say("keep", "alice", body)
		}
		bob.join("keep", "bob", "")
		before := bob.history("keep")
		if len(before) != 3 {
			t.Fatalf("history before the restart: %v", before)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}

		s2 := testserver.StartOn(t, b, func(c *config.Config) {
			testserver.EnableModules(c, "muc", "roster", "carbons")
			c.Storage, c.DataDir = s.Config.Storage, s.Config.DataDir
		})
		bob = online(t, s2, "bob")
		bob.join("keep", "bob", "")
		after := bob.history("keep")
		if len(after) != len(before) {
			t.Fatalf("history after the restart: %v, want %v", after, before)
		}
		for i := range before {
			b, a := before[i], after[i]
			if childText(a, "", "body") != childText(b, "", "body") || a.Get("from") != b.Get("from") ||
				roomStanzaID(a, "keep") == "" || roomStanzaID(a, "keep") != roomStanzaID(b, "keep") ||
				a.Child("urn:xmpp:delay", "delay").Get("stamp") != b.Child("urn:xmpp:delay", "delay").Get("stamp") {
				t.Errorf("history message %d after the restart:\n%s\nwant as before:\n%s", i, a, b)
			}
		}
	})
}
