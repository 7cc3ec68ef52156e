package offline

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/router"
)

// TestDeliveryReentry checks that the stored messages go through the
// delivery hooks, and that a hook that, on one of them, makes the account's
// session available again (re-entering this module's delivery for the
// same account) does not deadlock (issue 8: no per-account lock held
// across delivery): the second delivery runs after the first and finds
// nothing left, so each message arrives once.
func TestDeliveryReentry(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b, 100)
		h.send("bob@localhost/x", `<message id="m1" type="chat" to="alice@localhost"><body>one</body></message>`)
		h.send("bob@localhost/x", `<message id="m2" type="chat" to="alice@localhost"><body>two</body></message>`)
		var seen, reentered atomic.Int32
		h.r.AddDeliveryHook("test", router.PriorityDefault, func(ctx context.Context, s router.Session, st *router.Stanza) *router.Stanza {
			seen.Add(1)
			if st.ID() == "m1" && reentered.Add(1) == 1 {
				h.r.SessionAvailable(ctx, s)
			}
			return st
		})
		a := h.bind("alice@localhost/a", true, 0)
		h.r.SessionAvailable(context.Background(), a)
		if got := ids(a.take()); !slices.Equal(got, []string{"m1", "m2"}) {
			t.Errorf("delivered %v, want [m1 m2]", got)
		}
		if n := seen.Load(); n != 2 {
			t.Errorf("the delivery hook saw %d stanzas, want 2", n)
		}
		if n := h.count(); n != 0 {
			t.Errorf("%d messages left", n)
		}
	})
}
