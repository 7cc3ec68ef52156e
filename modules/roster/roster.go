// Package roster implements RFC 6121 for local accounts: the roster
// (jabber:iq:roster with XEP-0237 versioning), presence subscriptions and
// their state machine, and presence broadcast, probes and directed presence.
// They live in one module because every subscription change is a roster
// change pushed to the resources whose presence this module tracks. Remote
// contacts go through the router like local ones, so federation needs
// nothing more from this module.
package roster

import (
	"context"
	"sync"

	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/internal/keylock"
	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
)

// Namespaces.
const (
	NS            = "jabber:iq:roster"
	NSVer         = "urn:xmpp:features:rosterver"    // XEP-0237 stream feature
	NSPreApproval = "urn:xmpp:features:pre-approval" // RFC 6121 §3.4 stream feature
)

func init() {
	modules.Register(modules.Info{ID: "roster", New: func() modules.Module { return new(Roster) }})
}

// Roster is the roster and presence module.
type Roster struct {
	h        *modules.Host
	maxItems int
	// maxRequestSize bounds a stored subscription request, in bytes: the
	// stanza size limit of the streams it can arrive on.
	maxRequestSize int
	sessions       sync.Map // router.Session → *sessionState
	// availability orders the availability changes of one account's
	// sessions, and what they send, per bare JID (see ended).
	availability keylock.Ordered
	// requests orders the changes to one account's stored subscription
	// requests, so that concurrent requests cannot store more than the
	// limit. It is never held while routing.
	requests keylock.Map
}

var (
	_ modules.Module  = (*Roster)(nil)
	_ modules.Starter = (*Roster)(nil)
)

// ModuleInfo implements modules.Module.
func (*Roster) ModuleInfo() modules.Info {
	return modules.Info{ID: "roster", New: func() modules.Module { return new(Roster) }}
}

// Start implements modules.Starter.
func (r *Roster) Start(_ context.Context, h *modules.Host) error {
	r.h = h
	r.maxItems = h.Config().Limits.MaxRosterItems
	r.maxRequestSize = h.Config().Limits.MaxStanzaSize
	if err := h.HandleIQ(router.ToAccount, stanza.GetIQ, NS, r.get); err != nil {
		return err
	}
	if err := h.HandleIQ(router.ToAccount, stanza.SetIQ, NS, r.set); err != nil {
		return err
	}
	h.AddStreamFeature(router.NewElement(NSVer, "ver"))
	h.AddStreamFeature(router.NewElement(NSPreApproval, "sub"))
	h.AddFilter(router.PriorityDefault, r.outbound)
	h.HandleStanza(router.ToAccount, router.KindPresence, router.PriorityDefault, r.toAccount)
	h.OnSessionEnd(router.PriorityDefault, r.ended)
	return nil
}
