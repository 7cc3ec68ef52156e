// Package roster is a placeholder for jabber:iq:roster (RFC 6121 §2) until
// the full roster module lands: it answers a roster get with an empty roster,
// because clients wait for the roster before they go online, and refuses
// changes with feature-not-implemented instead of pretending to store them.
package roster

import (
	"context"

	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
)

// NS is the roster namespace.
const NS = "jabber:iq:roster"

func init() {
	modules.Register(modules.Info{ID: "roster", New: func() modules.Module { return new(Roster) }})
}

// Roster is the placeholder roster module.
type Roster struct{}

var (
	_ modules.Module  = (*Roster)(nil)
	_ modules.Starter = (*Roster)(nil)
)

// ModuleInfo implements modules.Module.
func (*Roster) ModuleInfo() modules.Info {
	return modules.Info{ID: "roster", New: func() modules.Module { return new(Roster) }}
}

// Start implements modules.Starter.
func (*Roster) Start(_ context.Context, h *modules.Host) error {
	own := func(iq *router.Stanza) bool {
		return iq.To.Domainpart() == "" || iq.To.Bare().Equal(iq.From.Bare())
	}
	if err := h.HandleIQ(router.ToAccount, stanza.GetIQ, NS, func(_ context.Context, iq *router.Stanza) *router.Stanza {
		if !own(iq) {
			return iq.ErrorReply(stanza.Auth, stanza.Forbidden, "")
		}
		return iq.Reply(router.NewElement(NS, "query"))
	}); err != nil {
		return err
	}
	return h.HandleIQ(router.ToAccount, stanza.SetIQ, NS, func(_ context.Context, iq *router.Stanza) *router.Stanza {
		if !own(iq) {
			return iq.ErrorReply(stanza.Auth, stanza.Forbidden, "")
		}
		return iq.ErrorReply(stanza.Cancel, stanza.FeatureNotImplemented, "roster changes are not supported yet")
	})
}
