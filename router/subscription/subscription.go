// Package subscription is the presence-subscription state machine of RFC
// 6121: what a subscription stanza does to the roster item between a user
// and a contact, and what the server must send because of it.
//
// It is pure (no storage, no routing) so that every transition of Appendix A
// can be tested as a table, and so that the roster module and account
// removal share one reading of the RFC. The caller loads the item, asks
// Outbound (a stanza the user sent, Appendix A.2) or Inbound (a stanza that
// arrived for the user, Appendix A.3), then carries out the result: store
// and push the item, route or deliver the stanza, keep or drop the stored
// request, and send the presence the RFC asks for.
//
// Beyond Appendix A the machine implements subscription pre-approval
// (§3.4): a "subscribed" sent before any request is remembered on the item
// (storage.RosterItem.Approved) and answers the contact's request when it
// comes.
//
// A contact who asked for a subscription but is not in the user's roster
// has no roster item (RFC 6121 A.1, §3.1.3): the request lives in
// storage.SubscriptionRequests. The caller reports it by passing exists
// false and item.PendingIn true; the results say when to store or remove
// the request.
package subscription

import "github.com/xmppd/xmppd/storage"

// The presence types that manage subscriptions (RFC 6121 §3). Outbound and
// Inbound return the item untouched, with nothing to do, for any other.
const (
	Subscribe    = "subscribe"
	Subscribed   = "subscribed"
	Unsubscribe  = "unsubscribe"
	Unsubscribed = "unsubscribed"
)

// OutboundResult is what the user's server does with a subscription stanza
// the user sent to a contact (RFC 6121 A.2).
type OutboundResult struct {
	// Item is the new state of the roster item. Name and Groups are the
	// caller's and come back unchanged.
	Item storage.RosterItem
	// Changed: store Item and push it to the user's interested resources
	// (§3.1.2, §3.1.5, §3.2.2, §3.3.2). Never set for a contact that stays
	// out of the roster.
	Changed bool
	// Create: the contact was not in the roster and Item must be added,
	// with subscription none and ask='subscribe' after a request (§3.1.2),
	// or with the pre-approval (§3.4) or 'from' after an approval (§3.1.5).
	// Changed is set too.
	Create bool
	// Route: send the stanza on to the contact, from the user's bare JID.
	Route bool
	// RemoveRequest: the contact's stored request is answered and must not
	// be delivered again (§3.1.3).
	RemoveRequest bool
	// SendPresence: the contact is now subscribed, so after routing the
	// approval the server sends it the current presence of each of the
	// user's available resources (§3.1.5).
	SendPresence bool
	// SendUnavailable: the contact loses its subscription, so the server
	// sends it unavailable presence from each of the user's available
	// resources, before routing the stanza, while the contact still
	// accepts presence from the user (§3.2.2).
	SendUnavailable bool
}

// Outbound applies a subscription stanza of type typ that the user sends to
// the contact of item. exists tells whether the contact is in the user's
// roster; if not, only item.Contact and item.PendingIn (a stored request
// from the contact) are read.
//
// "subscribe" and "unsubscribe" are always routed (A.2.1, A.2.2).
// "subscribed" approves a pending request (§3.1.5) or, with none pending,
// pre-approves one (§3.4); it is dropped when the contact is already
// subscribed. "unsubscribed" denies a pending request or cancels the
// contact's subscription (§3.2.2), or else withdraws a pre-approval, which
// is not routed (§3.4).
func Outbound(item storage.RosterItem, exists bool, typ string) OutboundResult {
	table, ok := outboundTables[typ]
	if !ok {
		return OutboundResult{Item: item}
	}
	cur, now := load(item, exists)
	res := OutboundResult{Item: now}
	row := table[cur]
	res.Route = row.pass
	set(&res.Item, row.next)
	switch typ {
	case Subscribed:
		if row.pass {
			res.RemoveRequest, res.SendPresence = true, true
		} else if !cur.contactSubscribed() {
			res.Item.Approved = true
		}
	case Unsubscribed:
		if row.pass {
			res.RemoveRequest = cur.pendingIn()
			res.SendUnavailable = cur.contactSubscribed()
		} else {
			res.Item.Approved = false
		}
	}
	res.Create, res.Changed = persist(item, res.Item, exists)
	return res
}

// InboundResult is what the user's server does with a subscription stanza
// that a contact sent to the user (RFC 6121 A.3).
type InboundResult struct {
	// Item is the new state of the roster item; Name and Groups come back
	// unchanged.
	Item storage.RosterItem
	// Changed: store Item and push it to the user's interested resources.
	// Never set for a contact outside the roster: no inbound stanza adds
	// one (A.1, §3.1.3).
	Changed bool
	// Deliver: deliver the stanza to the user's available resources (to
	// the interested ones for approvals and cancellations, §3.1.6, §3.2.3).
	Deliver bool
	// StoreRequest: keep the request (the stanza as received) so that it
	// is delivered at each login until the user answers it, even when a
	// resource is available now (§3.1.3).
	StoreRequest bool
	// RemoveRequest: the contact withdrew its request (§3.3.3).
	RemoveRequest bool
	// AutoReply is a presence type the server sends back to the contact on
	// the user's behalf, from the user's bare JID: "subscribed" when the
	// contact is already subscribed (§3.1.3) or the user pre-approved it
	// (§3.4). Empty for none.
	AutoReply string
	// SendPresence: the contact is (still) subscribed after the auto-reply,
	// so it gets the current presence of each of the user's available
	// resources, as after an approval by the user (§3.1.5).
	SendPresence bool
	// SendUnavailable: the contact unsubscribed from the user's presence,
	// so it gets unavailable presence from each of the user's available
	// resources (§3.3.3).
	SendUnavailable bool
}

// Inbound applies a subscription stanza of type typ that the contact of
// item sent to the user. exists tells whether the contact is in the user's
// roster; if not, only item.Contact and item.PendingIn (a stored request
// from the contact) are read.
//
// A request from a contact who is already subscribed or was pre-approved
// is answered at once and not shown to the user (§3.1.3, §3.4); one that
// is already pending is not delivered again (A.3.1), and the first stored
// copy is kept.
func Inbound(item storage.RosterItem, exists bool, typ string) InboundResult {
	table, ok := inboundTables[typ]
	if !ok {
		return InboundResult{Item: item}
	}
	cur, now := load(item, exists)
	res := InboundResult{Item: now}
	row := table[cur]
	res.Deliver = row.pass
	next := row.next
	switch typ {
	case Subscribe:
		switch {
		case cur.contactSubscribed():
			res.AutoReply, res.SendPresence = Subscribed, true
		case now.Approved:
			// The pre-approval answers as the user would have: the
			// request is followed at once by an approval (A.2.3).
			next = outboundTables[Subscribed][next].next
			res.Deliver = false
			res.AutoReply, res.SendPresence = Subscribed, true
		case row.pass:
			res.StoreRequest = true
		}
	case Unsubscribe:
		if row.pass {
			res.RemoveRequest = cur.pendingIn()
			res.SendUnavailable = cur.contactSubscribed()
		}
	}
	set(&res.Item, next)
	_, res.Changed = persist(item, res.Item, exists)
	return res
}

// load returns the state of an item and the item written back in canonical
// form. A contact outside the roster can only have a pending request.
func load(it storage.RosterItem, exists bool) (state, storage.RosterItem) {
	if !exists {
		it.Subscription, it.PendingOut, it.Approved = storage.SubNone, false, false
	}
	s := stateOf(it)
	set(&it, s)
	return s, it
}

// persist tells whether the new item must be added to the roster and
// whether the roster changes at all. A contact outside the roster is added
// once it holds more than a pending request, which stays in
// storage.SubscriptionRequests (A.1). An existing item changes when any
// state field differs from what was stored, so an item the machine had to
// read leniently (see stateOf) is stored back repaired.
func persist(old, now storage.RosterItem, exists bool) (create, changed bool) {
	if !exists {
		create = now.Subscription != storage.SubNone || now.PendingOut || now.Approved
		return create, create
	}
	return false, old.Subscription != now.Subscription || old.PendingOut != now.PendingOut ||
		old.PendingIn != now.PendingIn || old.Approved != now.Approved
}
