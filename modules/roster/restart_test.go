package roster_test

import (
	"context"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
)

// TestRosterSurvivesRestart: rosters, their version, pending subscription
// requests and pre-approvals are in the database, not in the process: a
// new server on the same data directory and database serves them as the
// old one did.
func TestRosterSurvivesRestart(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		dataDir, store := t.TempDir(), b.Config(t)
		same := func(c *config.Config) { c.DataDir, c.Storage = dataDir, store }

		first := testserver.StartOn(t, b, same)
		addUsers(first, "alice", "bob", "carol")
		a := online(t, first, "alice", "phone")
		a.mustSet(`<item jid='dave@localhost' name='Dave'><group>Team</group><group>Friends</group></item>`)
		a.send(`<presence to='bob@localhost' type='subscribe'><status>from before</status></presence>`)
		a.awaitPush(item{JID: bare("bob"), Subscription: "none", Ask: "subscribe"})
		a.send(`<presence to='carol@localhost' type='subscribed'/>`)
		ver := a.awaitPush(item{JID: bare("carol"), Subscription: "none", Approved: true})
		before := a.rosterGet()
		a.Close()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := first.Shutdown(ctx); err != nil {
			t.Fatalf("shut the first server down: %v", err)
		}

		second := testserver.StartOn(t, b, same)
		a = login(t, second, "alice", "phone")
		if res := a.versioned(ver); len(res.Elements()) != 0 {
			t.Errorf("the roster version did not survive: %s", res)
		}
		a.expectRoster(before...)
		a.available("")

		bob := login(t, second, "bob", "desk")
		bob.send(`<presence/>`)
		req := bob.next("the request made before the restart", isPresence(bare("alice"), "subscribe"))
		if st := req.Child("", "status"); st == nil || st.Text() != "from before" {
			t.Errorf("the stored request lost its status: %s", req)
		}
		bob.send(`<presence to='alice@localhost' type='subscribed'/>`)
		a.expectPush(item{JID: bare("bob"), Subscription: "to"})

		// The pre-approval still answers carol's request.
		carol := online(t, second, "carol", "pc")
		carol.send(`<presence to='alice@localhost' type='subscribe'/>`)
		carol.next("the automatic approval", isPresence(bare("alice"), "subscribed"))
		a.awaitPush(item{JID: bare("carol"), Subscription: "from"})
	})
}
