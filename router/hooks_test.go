package router_test

import (
	"context"
	"testing"

	"github.com/xmppd/xmppd/router"
)

// A Registration removed twice, after a newer handler took the same IQ key,
// must not take the newer handler with it.
func TestStaleIQRegistrationKeepsNewerHandler(t *testing.T) {
	r, _ := newRouter(t)
	h := func(_ context.Context, iq *router.Stanza) *router.Stanza { return iq.Reply() }
	old, err := r.HandleIQ("a", router.ToServer, "get", "urn:test", h)
	if err != nil {
		t.Fatal(err)
	}
	old.Remove()
	if _, err := r.HandleIQ("b", router.ToServer, "get", "urn:test", h); err != nil {
		t.Fatal(err)
	}
	old.Remove()
	if _, err := r.HandleIQ("c", router.ToServer, "get", "urn:test", h); err == nil {
		t.Fatal("the stale registration removed the newer handler")
	}
}
