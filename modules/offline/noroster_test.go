package offline_test

import (
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/modules/offline"
)

// TestDeliverWithoutRoster checks that stored messages reach a session at
// its initial presence when the roster module is not enabled: the session
// itself says that it became available, not the module that broadcasts
// presence. Before, only modules/roster did, so offline silently delivered
// nothing without it.
func TestDeliverWithoutRoster(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, func(c *config.Config) { c.Modules = []string{"offline"} })
		bob := login(s, "bob")
		bob.MustSend(t, `<message type="chat" id="m1" to="alice@localhost"><body>one</body></message>`)
		bob.MustSync(t)
		if n := count(t, s); n != 1 {
			t.Fatalf("%d messages stored, want 1", n)
		}
		alice := login(s, "alice")
		alice.MustSync(t)
		alice.ExpectNone(t, "a stored message before initial presence", fromBob)
		alice.MustSend(t, `<presence/>`)
		e := alice.MustNext(t, "m1", fromBob)
		if e.Get("id") != "m1" || e.Child(offline.NSDelay, "delay") == nil {
			t.Errorf("got %s, want m1 with a delay", e)
		}
		alice.MustSync(t)
		if n := count(t, s); n != 0 {
			t.Errorf("%d messages left after delivery", n)
		}
	})
}
