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
	modules.RegisterWithOptions("roster", DefaultOptions(), New)
}

// New returns an unstarted roster module with options o.
func New(o Options) *Roster { return &Roster{maxItems: o.MaxItems} }

// Options are the roster module's settings, module_options.roster.
type Options struct {
	// MaxItems bounds one roster (RFC 6121 §2.3.3 not-allowed), and the
	// subscription requests stored for one account.
	MaxItems int `yaml:"max_items"`
}

// DefaultOptions are ejabberd's and Prosody's order of magnitude: more
// contacts than people keep, few enough that a roster push stays small.
func DefaultOptions() Options { return Options{MaxItems: 1000} }

// Validate implements modules.Validator.
func (o *Options) Validate() error { return modules.MustBePositive("max_items", o.MaxItems) }

// Roster is the roster and presence module.
type Roster struct {
	h        *modules.Host
	maxItems int
	// maxRequestSize bounds a stored subscription request, in bytes: the
	// stanza size limit of the streams it can arrive on.
	maxRequestSize int
	// availability orders the availability changes of one account's
	// sessions, and what they send, per bare JID (see ended).
	availability keylock.Ordered
	// requests orders the changes to one account's stored subscription
	// requests, so that concurrent requests cannot store more than the
	// limit, and their hand-over to the account's sessions, so that each
	// session gets a request once (inbound, initial). It is held while
	// delivering to a local session, never while routing.
	requests keylock.Map
}

var _ modules.Starter = (*Roster)(nil)

// Start implements modules.Starter.
func (r *Roster) Start(_ context.Context, h *modules.Host) error {
	r.h = h
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
