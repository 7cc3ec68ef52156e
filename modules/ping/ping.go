// Package ping answers XEP-0199 pings addressed to the server, which clients
// use to check that their connection is alive. Pinging idle clients is done
// by c2s, which owns the connections.
package ping

import (
	"context"

	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
)

// NS is the XEP-0199 namespace.
const NS = "urn:xmpp:ping"

func init() { modules.Register("ping", func() *Ping { return new(Ping) }) }

// Ping is the ping module.
type Ping struct{}

var _ modules.Starter = (*Ping)(nil)

// Start implements modules.Starter.
func (*Ping) Start(_ context.Context, h *modules.Host) error {
	h.AddFeature(router.ToServer, NS)
	return h.HandleIQ(router.ToServer, stanza.GetIQ, NS, func(_ context.Context, iq *router.Stanza) *router.Stanza {
		return iq.Reply()
	})
}
