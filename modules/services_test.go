package modules_test

import (
	"context"
	"slices"
	"testing"

	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
)

// service owns rooms.localhost through its Host, with a handler and the
// address's own IQ handler.
type service struct{}

func (*service) Start(_ context.Context, h *modules.Host) error {
	if err := h.AddService("rooms.localhost", func(_ context.Context, st *router.Stanza) bool {
		record("service " + st.ID())
		return true
	}); err != nil {
		return err
	}
	return h.HandleServiceIQ("rooms.localhost", stanza.GetIQ, nsTest, func(_ context.Context, iq *router.Stanza) *router.Stanza {
		record("service iq " + iq.ID())
		return iq.Reply()
	})
}

func init() {
	modules.Register("test-service", func() *service { return new(service) })
}

// TestModuleService checks that a module owns a service address through
// its Host while it runs, that a second owner fails to start, and that
// stopping gives the address up.
func TestModuleService(t *testing.T) {
	r := newRouter(t)
	set, err := start(t, r, "test-service")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := start(t, r, "test-service"); err == nil {
		t.Error("a second owner of rooms.localhost started")
	}
	route(t, r, `<message to="room@rooms.localhost/nick" id="1"/>`)
	route(t, r, `<iq to="rooms.localhost" type="get" id="2"><q xmlns="urn:xmppd:test"/></iq>`)
	if got, want := takeEvents(), []string{"service 1", "service iq 2"}; !slices.Equal(got, want) {
		t.Errorf("while running: %q, want %q", got, want)
	}
	if err := set.Stop(); err != nil {
		t.Fatal(err)
	}
	if r.IsService("rooms.localhost") {
		t.Error("still a service address after Stop")
	}
}
