package subscription

import "github.com/xmppd/xmppd/storage"

// ClientView returns the subscription state of an item as a roster shows
// it to clients (RFC 6121 §2.1.2): the subscription attribute (none, to,
// from or both), the ask attribute ("subscribe" while the user's request is
// pending, §2.1.2.2, else empty) and whether to add approved='true'
// (§2.1.2.1). A pending inbound request is never shown as an attribute:
// the client learns of it from the request itself (§3.1.3).
func ClientView(item storage.RosterItem) (sub, ask string, approved bool) {
	s := stateOf(item)
	if s.pendingOut() {
		ask = Subscribe
	}
	return s.subscription(), ask, item.Approved && !s.contactSubscribed() && !s.pendingIn()
}

// Remove returns the presence types that removing item from the roster
// sends to the contact, in order (RFC 6121 §2.5.2): "unsubscribe" if the
// user is subscribed to the contact or asked to be, then "unsubscribed" if
// the contact is subscribed to the user or asked to be. The roster remove
// and account deletion both use it, so that a vanished contact never keeps
// a subscription on the other side.
//
// Each is an outbound stanza like any other: Outbound(item, true, typ)
// tells what goes with it, notably the unavailable presence that precedes
// an "unsubscribed" to a subscribed contact (§3.2.2). The resulting item
// is not stored, since the item is gone.
func Remove(item storage.RosterItem) []string {
	s := stateOf(item)
	var types []string
	if s.userSubscribed() || s.pendingOut() {
		types = append(types, Unsubscribe)
	}
	if s.contactSubscribed() || s.pendingIn() {
		types = append(types, Unsubscribed)
	}
	return types
}
