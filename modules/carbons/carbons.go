// Package carbons implements XEP-0280, Message Carbons: a client that
// enables carbons gets a copy of every instant message its account sends
// from, or receives on, the user's other resources, so that each device
// sees both sides of every conversation.
//
// Copies of received messages are made where a message is handed to the
// resource it was addressed to (a delivery hook), since only there is it
// known that the message reached a resource, whatever path brought it
// (routed from a contact, or a bounce from a server). A message addressed
// to the bare JID goes by RFC 6121 to several resources at once; its
// copies are made once, in a filter that sees it before it is routed, for
// the enabled resources that routing will not give the original to.
// Copies of sent messages are made in the same filter, which sees each
// message a client sends exactly once.
//
// Carbons are only ever made by this server, for its own users: the
// filter drops any routed message that carries a carbon wrapper (§11), so
// that another user or a remote domain cannot make a client believe that
// the user sent or received a message.
package carbons

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
)

// Namespaces of XEP-0280 and of the elements its rules look at.
const (
	NS        = "urn:xmpp:carbons:2"
	NSForward = "urn:xmpp:forward:0" // XEP-0297
	NSHints   = "urn:xmpp:hints"     // XEP-0334
	NSMUCUser = "http://jabber.org/protocol/muc#user"
)

// Priorities of the module's hooks. The filter runs after every other
// filter (blocking, archives), so that only what is really routed is
// copied.
const (
	FilterPriority   = router.PriorityLast
	DeliveryPriority = router.PriorityDefault
)

func init() { modules.Register("carbons", func() *Carbons { return new(Carbons) }) }

// enabled marks the sessions that enabled carbons. The mark lives in the
// session and goes with it, so a new session starts disabled, as the XEP
// wants (carbons are enabled per login session). It is a flag that is
// switched with compare-and-swap, so that the count of enabled sessions
// stays right when a disable and the session's end race.
var enabled = router.NewSessionKey[*atomic.Bool]("carbons.enabled")

// Carbons is the message carbons module.
type Carbons struct {
	h *modules.Host
	// sessions counts the sessions that have carbons enabled. While it is
	// zero (no client asked, the common case on a server without
	// multi-device users) the filter and the hook do nothing for a
	// message beyond this load, and take no snapshot of sessions.
	sessions atomic.Int64
}

var _ modules.Starter = (*Carbons)(nil)

// Start implements modules.Starter.
func (c *Carbons) Start(_ context.Context, h *modules.Host) error {
	c.h = h
	// §4: clients ask their server. The "urn:xmpp:carbons:rules:0"
	// feature is not advertised: it would promise every §6.1 rule as a
	// MUST, and an error is copied only if it answers a message whose
	// exchange is still remembered (see answersCopy).
	h.AddFeature(router.ToServer, NS)
	if err := h.HandleIQ(router.ToAccount, stanza.SetIQ, NS, c.set); err != nil {
		return err
	}
	// XEP-0386: a client may enable carbons inline when it binds; it
	// must succeed, and nothing answers it.
	if err := h.AddBindFeature(NS, func(_ context.Context, s router.Session, e *router.Element) *router.Element {
		if e.Name.Local == "enable" {
			c.setEnabled(s, true)
		}
		return nil
	}); err != nil {
		return err
	}
	h.AddFilter(FilterPriority, c.filter)
	h.AddDeliveryHook(DeliveryPriority, c.delivered)
	h.OnSessionEnd(router.PriorityDefault, c.ended)
	return nil
}

// set enables or disables carbons for the requesting session (§4, §5).
// Repeated requests are answered with a result, as §9.1 asks.
func (c *Carbons) set(_ context.Context, iq *router.Stanza) *router.Stanza {
	// Only a client of this server may change its own session's
	// setting; the XEP's examples answer anyone else with not-allowed.
	var s router.Session
	if iq.To.Domainpart() == "" || iq.To.Bare().Equal(iq.From.Bare()) {
		s = c.h.Router().Session(iq.From)
	}
	if s == nil {
		return iq.ErrorReply(stanza.Cancel, stanza.NotAllowed, "")
	}
	switch iq.FirstChild().Name.Local {
	case "enable":
		c.setEnabled(s, true)
	case "disable":
		c.setEnabled(s, false)
	default:
		return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "")
	}
	return iq.Reply()
}

// setEnabled switches carbons on or off for s, keeping the count.
func (c *Carbons) setEnabled(s router.Session, on bool) {
	flag := enabled.GetOrSet(s, func() *atomic.Bool { return new(atomic.Bool) })
	if flag.CompareAndSwap(!on, on) {
		if on {
			c.sessions.Add(1)
		} else {
			c.sessions.Add(-1)
		}
	}
}

// ended takes a session that ends out of the count.
func (c *Carbons) ended(_ context.Context, s router.Session) {
	if flag, ok := enabled.Get(s); ok && flag.CompareAndSwap(true, false) {
		c.sessions.Add(-1)
	}
}

// copied holds, for a session that was given carbons, the serials of the
// last messages they copy (router.Stanza.Serial). It is made with the
// first carbon, so a session that never gets one pays nothing for it.
var copied = router.NewSessionKey[*copies]("carbons.copied")

// maxCopies bounds copies: the messages a session may get a carbon of
// while another resource of the account hibernates on them.
const maxCopies = 128

// copies is a ring of serials. Carbons for one session are made by the
// goroutines of every sender, hence the lock.
type copies struct {
	mu      sync.Mutex
	next    int
	serials [maxCopies]uint64
}

// noteCopy records that s was given a carbon of the message numbered
// serial.
func noteCopy(s router.Session, serial uint64) {
	if serial == 0 {
		return
	}
	r := copied.GetOrSet(s, func() *copies { return new(copies) })
	r.mu.Lock()
	r.serials[r.next] = serial
	r.next = (r.next + 1) % maxCopies
	r.mu.Unlock()
}

// hasCopy tells whether s was given a carbon of the message numbered
// serial.
func hasCopy(s router.Session, serial uint64) bool {
	r, ok := copied.Get(s)
	if !ok || serial == 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.serials[:], serial)
}

// isEnabled tells whether s enabled carbons.
func isEnabled(s router.Session) bool {
	flag, ok := enabled.Get(s)
	return ok && flag.Load()
}

// filter drops forged carbons and makes the copies that are made once per
// routed message: sent copies for the sender's other resources, and
// received copies of a message that routing delivers by the bare JID.
func (c *Carbons) filter(ctx context.Context, st *router.Stanza) *router.Stanza {
	if st.Kind() != router.KindMessage {
		return st
	}
	if isCarbon(st) {
		// §11: a carbon comes from the user's bare JID, and the server
		// delivers the ones it makes to sessions directly, never
		// through routing; one that is routed was made by someone
		// else, a local user or a remote domain, to impersonate.
		c.h.Logger().Debug("dropped a forged carbon", "from", st.From.String(), "to", st.To.String())
		return nil
	}
	if c.sessions.Load() == 0 {
		return st
	}
	sameAccount := st.From.Bare().Equal(st.To.Bare())
	if sender := c.localSession(st.From); sender != nil && (eligible(st, sent) || answersCopy(sender, sent, st.To, st)) {
		// The sender does not get its own message back, nor does the
		// addressee if the user wrote to another resource of theirs.
		copied := c.copyToOthers(ctx, st.From.Bare(), "sent", st, func(s router.Session) bool {
			return s.JID().Equal(st.From) || (sameAccount && s.JID().Equal(st.To))
		})
		if copied && st.Type() != "error" {
			noteExchange(sender, sent, st.To, st.ID())
		}
	}
	if !sameAccount && c.routedToBare(st) && eligible(st, received) {
		targets := bareTargets(c.h.Router().Sessions(st.To.Bare()))
		copied := c.copyToOthers(ctx, st.To.Bare(), "received", st, func(s router.Session) bool {
			return targets[s]
		})
		for s := range targets {
			if copied {
				noteExchange(s, received, st.From, st.ID())
			}
		}
	}
	return st
}

// delivered makes the received copies of a message handed to the very
// resource it was addressed to: for the user's other enabled resources. A
// message that reaches a resource that already has a carbon of it is taken
// without being handed over: it is one that another resource of the
// account was given and did not acknowledge before its session ended, and
// that the router now routes again (XEP-0198 §5).
func (c *Carbons) delivered(ctx context.Context, s router.Session, st *router.Stanza) *router.Stanza {
	if c.sessions.Load() == 0 || st.Kind() != router.KindMessage {
		return st
	}
	if !st.To.Equal(s.JID()) {
		// To the bare JID, or to another resource: routed by the bare
		// JID, and copied, if at all, by the filter.
		if st.To.Bare().Equal(s.JID().Bare()) && hasCopy(s, st.Serial()) {
			return nil
		}
		return st
	}
	if st.From.Bare().Equal(st.To.Bare()) || !eligible(st, received) && !answersCopy(s, received, st.From, st) {
		// Messages within the account were copied as sent; what the
		// server delivers from the bare JID (the carbons themselves)
		// is not a conversation.
		return st
	}
	copied := c.copyToOthers(ctx, st.To.Bare(), "received", st, func(o router.Session) bool {
		return o == s
	})
	if copied && st.Type() != "error" {
		noteExchange(s, received, st.From, st.ID())
	}
	return st
}

// localSession returns the session bound here whose full JID is j, or nil:
// a stanza from one is what a client of this server sent.
func (c *Carbons) localSession(j jid.JID) router.Session {
	if j.Resourcepart() == "" || !c.h.Router().ServesUsers(j.Domainpart()) {
		return nil
	}
	return c.h.Router().Session(j)
}

// routedToBare tells whether routing will deliver st by RFC 6121's rules
// for the bare JID of a local account (§8.5.2): it is addressed to the bare
// JID, or to a full JID with no session, which the router treats as the
// bare JID for messages of these types (§8.5.3.2.1).
func (c *Carbons) routedToBare(st *router.Stanza) bool {
	to := st.To
	if to.Localpart() == "" || !c.h.Router().ServesUsers(to.Domainpart()) {
		return false
	}
	switch st.Type() {
	case "", "normal", "chat":
	default:
		return false // errors to a bare JID are dropped, groupchat bounced
	}
	return to.Resourcepart() == "" || c.h.Router().Session(to) == nil
}

// bareTargets returns the sessions that the router gives a message to
// the bare JID to (router.messageToBare, RFC 6121 §8.5.2.1.1): the
// available ones of the highest non-negative priority. Only chat and
// normal messages get here, so the headline rule does not apply.
func bareTargets(sessions []router.Session) map[router.Session]bool {
	best, found := 0, false
	for _, s := range sessions {
		if s.Available() && s.Priority() >= 0 && (!found || s.Priority() > best) {
			best, found = s.Priority(), true
		}
	}
	targets := map[router.Session]bool{}
	for _, s := range sessions {
		if found && s.Available() && s.Priority() == best {
			targets[s] = true
		}
	}
	return targets
}

// copyToOthers hands a carbon of st, wrapped in a <sent/> or <received/>
// (dir), to every enabled session of account except those skip names.
// A copy a session refuses is not answered (§9.3: its error must never
// reach the original sender). It reports whether any session took one.
func (c *Carbons) copyToOthers(ctx context.Context, account jid.JID, dir string, st *router.Stanza, skip func(router.Session) bool) (copied bool) {
	var inner *router.Element
	for _, s := range c.h.Router().Sessions(account) {
		if !isEnabled(s) || skip(s) {
			continue
		}
		if inner == nil {
			inner = c.ownStanzaIDs(st.Element.Copy(), account)
		}
		if !c.h.Router().DeliverTo(ctx, s, wrap(account, s.JID(), dir, st.Type(), inner.Copy())) {
			continue
		}
		copied = true
		if dir == "received" {
			// A sent message goes to another account, or to the
			// account's own resources, where a session must not
			// lose the original for having the sent carbon.
			noteCopy(s, st.Serial())
		}
	}
	return copied
}

// nsSID is the namespace of XEP-0359 stanza-ids.
const nsSID = "urn:xmpp:sid:0"

// ownStanzaIDs removes from e, a copy of a message for account's carbons,
// the XEP-0359 stanza-ids of other local accounts' archives: a message
// between two local accounts carries the ids of both archives while it is
// routed (the archive puts them on), and each account's resources may
// know only their own archive's (XEP-0313 §3.2). Ids by anyone else, a
// room for one, are kept.
func (c *Carbons) ownStanzaIDs(e *router.Element, account jid.JID) *router.Element {
	kept := e.Children[:0]
	for _, n := range e.Children {
		if x, ok := n.(*router.Element); ok && x.Name.Space == nsSID && x.Name.Local == "stanza-id" {
			by, err := jid.Parse(x.Get("by"))
			if err == nil && by.Localpart() != "" && by.Resourcepart() == "" &&
				c.h.Router().ServesUsers(by.Domainpart()) && !by.Equal(account) {
				continue
			}
		}
		kept = append(kept, n)
	}
	clear(e.Children[len(kept):])
	e.Children = kept
	return e
}

// wrap builds a carbon (§5, §6): from the user's bare JID to one of their
// resources, of the original's type, holding the original forwarded as
// XEP-0297 says.
func wrap(account, to jid.JID, dir, typ string, original *router.Element) *router.Stanza {
	e := router.NewElement("", router.KindMessage, "from", account.String(), "to", to.String(), "type", typ)
	e.Append(router.NewElement(NS, dir).Append(router.NewElement(NSForward, "forwarded").Append(original)))
	return &router.Stanza{Element: e, From: account, To: to}
}
