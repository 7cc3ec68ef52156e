package s2s_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/s2s"
)

// TestInboundSlowRecipient checks that a stanza whose routing waits (a
// slow storage call for one recipient) does not hold up the stanzas to
// other recipients on the same inbound stream (issue 8), while the
// stanzas to each recipient keep their order.
func TestInboundSlowRecipient(t *testing.T) {
	tr := transports[0]
	b, bob, auth := hostileSetup(t, tr)
	// A recipient whose stanzas another worker than bob's routes.
	slow := ""
	for i := 0; slow == "" && i < 100; i++ {
		if j := fmt.Sprintf("slow%d@%s", i, domainB); s2s.WorkerOf(j) != s2s.WorkerOf("bob@"+domainB) {
			slow = j
		}
	}
	if slow == "" {
		t.Fatal("every recipient tried has bob's worker")
	}
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	handled := make(chan string, 3)
	b.Router.HandleStanza("test-slow", router.ToAccount, router.KindMessage, router.PriorityAccess, func(_ context.Context, st *router.Stanza) bool {
		if st.To.Bare().String() != slow {
			return false
		}
		select {
		case started <- struct{}{}:
		default:
		}
		<-release
		handled <- st.ID()
		return true
	})
	released := false
	unblock := func() {
		if !released {
			released = true
			close(release)
		}
	}
	// Before the server's shutdown, which waits for the stream's workers.
	t.Cleanup(unblock)

	c := connect(t, b, tr)
	authenticate(t, c, auth, "evil.test")
	for _, id := range []string{"s1", "s2"} {
		c.send(`<message from="mallory@evil.test/x" to="` + slow + `" type="chat" id="` + id + `"><body>hi</body></message>`)
	}
	<-started
	ids := []string{"b1", "b2", "b3"}
	for _, id := range ids {
		c.send(`<message from="mallory@evil.test/x" to="bob@b.test" type="chat" id="` + id + `"><body>hi</body></message>`)
	}
	var bobGot []string
	for range ids {
		m := bob.MustNext(t, "a message while another recipient's waits", func(e *router.Element) bool { return e.Name.Local == "message" })
		bobGot = append(bobGot, m.Get("id"))
	}
	if !slices.Equal(bobGot, ids) {
		t.Errorf("bob got %q, want %q", bobGot, ids)
	}
	unblock()
	c.send(`<message from="mallory@evil.test/x" to="` + slow + `" type="chat" id="s3"><body>hi</body></message>`)
	var slowGot []string
	for range 3 {
		slowGot = append(slowGot, <-handled)
	}
	if want := []string{"s1", "s2", "s3"}; !slices.Equal(slowGot, want) {
		t.Errorf("the slow recipient got %q, want %q", slowGot, want)
	}
}
