package c2s

import (
	"log/slog"
	"sync"
	"testing"

	"github.com/xmppd/xmppd/router"
)

// TestDeliverRacingSessionEnd delivers to a session while it ends: every
// stanza Deliver accepted must be in what the final drain hands to requeue.
// Before the queue could be closed, a push that passed Deliver's done check
// and landed after the drain was accepted and then lost.
func TestDeliverRacingSessionEnd(t *testing.T) {
	const iterations, perIteration = 2000, 64
	e, err := router.ParseElement([]byte(`<message to='a@example.org/r' type='chat'><body>x</body></message>`), router.NSClient)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := router.NewStanza(e)
	if err != nil {
		t.Fatal(err)
	}
	for i := range iterations {
		c := &Session{out: newOutQueue(0), log: slog.New(slog.DiscardHandler)}
		var wg sync.WaitGroup
		accepted := 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perIteration {
				if c.Deliver(msg) {
					accepted++
				}
			}
		}()
		drained := len(c.out.drain())
		wg.Wait()
		if accepted != drained {
			t.Fatalf("iteration %d: Deliver accepted %d stanzas, the session's end took %d: %d lost", i, accepted, drained, accepted-drained)
		}
	}
}
