package blocking

import (
	"context"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// presenceKind says which presence a block or unblock sends.
type presenceKind int

const (
	// unavailablePresence is sent on block (XEP-0191 §3.3).
	unavailablePresence presenceKind = iota
	// currentPresence, each resource's last available presence, is sent
	// on unblock (§3.4).
	currentPresence
)

// sendPresence sends, from each available resource of owner, presence of
// the given kind to the JIDs among items that may receive the user's
// presence: under RFC 6121 §4, the contacts whose subscription is 'from'
// or 'both'. Directed presence (§4.6) is the roster module's state and is
// not considered.
func (b *Blocking) sendPresence(ctx context.Context, owner jid.JID, items []jid.JID, kind presenceKind) {
	if len(items) == 0 {
		return
	}
	var sessions []router.Session
	for _, s := range b.h.Router().Sessions(owner) {
		if s.Available() {
			sessions = append(sessions, s)
		}
	}
	if len(sessions) == 0 {
		return // an unavailable user has no presence to send or withdraw
	}
	roster, _, err := b.h.Store().Rosters().Get(ctx, owner)
	if err != nil {
		b.logErr("blocking: read roster", owner, err)
		return
	}
	for _, to := range presenceTargets(roster, items) {
		for _, s := range sessions {
			var p *router.Stanza
			switch kind {
			case unavailablePresence:
				p = &router.Stanza{Element: router.NewElement("", "presence", "type", "unavailable")}
			case currentPresence:
				last := s.LastPresence()
				if last == nil {
					continue // became unavailable meanwhile
				}
				p = last.Copy()
			}
			p.SetFrom(s.JID())
			p.SetTo(to)
			b.h.Route(ctx, p)
		}
	}
}

// presenceTargets returns the addresses to send presence to when items are
// blocked or unblocked: each roster contact with a subscription from the
// user that an item matches (a bare JID, or every contact at a blocked
// domain), and each full-JID item whose bare JID is such a contact and is
// not matched already.
func presenceTargets(roster []storage.RosterItem, items []jid.JID) []jid.JID {
	subscribed := map[string]bool{}
	l := newList(items)
	var out []jid.JID
	for _, it := range roster {
		if it.Subscription != storage.SubFrom && it.Subscription != storage.SubBoth {
			continue
		}
		subscribed[it.Contact.String()] = true
		if l.blocks(it.Contact) {
			out = append(out, it.Contact)
		}
	}
	for _, j := range items {
		if j.Resourcepart() == "" {
			continue
		}
		if bare := j.Bare(); subscribed[bare.String()] && !l.blocks(bare) {
			out = append(out, j)
		}
	}
	return out
}
