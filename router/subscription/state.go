package subscription

import "github.com/xmppd/xmppd/storage"

// state is one of the nine subscription states of RFC 6121 Appendix A.1.
// A roster item spreads a state over three fields (Subscription,
// PendingOut, PendingIn), some combinations of which the RFC does not
// define; folding them into one value lets the transition tables below be
// written as the RFC prints them, one row per state.
type state uint8

const (
	none      state = iota // "None"
	noneOut                // "None + Pending Out"
	noneIn                 // "None + Pending In"
	noneOutIn              // "None + Pending Out/In"
	to                     // "To"
	toIn                   // "To + Pending In"
	from                   // "From"
	fromOut                // "From + Pending Out"
	both                   // "Both"
	numStates
)

// stateNames are the names RFC 6121 A.1 gives the states.
var stateNames = [numStates]string{
	none:      "None",
	noneOut:   "None + Pending Out",
	noneIn:    "None + Pending In",
	noneOutIn: "None + Pending Out/In",
	to:        "To",
	toIn:      "To + Pending In",
	from:      "From",
	fromOut:   "From + Pending Out",
	both:      "Both",
}

// String returns the RFC's name of the state, for tests and logs.
func (s state) String() string { return stateNames[s] }

// userSubscribed tells whether the user receives the contact's presence.
func (s state) userSubscribed() bool { return s == to || s == toIn || s == both }

// contactSubscribed tells whether the contact receives the user's presence.
func (s state) contactSubscribed() bool { return s == from || s == fromOut || s == both }

// pendingOut tells whether the user's request to the contact is unanswered.
func (s state) pendingOut() bool { return s == noneOut || s == noneOutIn || s == fromOut }

// pendingIn tells whether the contact's request to the user is unanswered.
func (s state) pendingIn() bool { return s == noneIn || s == noneOutIn || s == toIn }

// subscription is the value of the roster's subscription attribute.
func (s state) subscription() string {
	switch {
	case s == both:
		return storage.SubBoth
	case s.userSubscribed():
		return storage.SubTo
	case s.contactSubscribed():
		return storage.SubFrom
	}
	return storage.SubNone
}

// stateOf reads the state of an item. Flags that the subscription makes
// meaningless (a pending request for a subscription that already exists)
// are ignored, and an unknown subscription counts as none, so that a
// damaged item still maps to a defined state.
func stateOf(it storage.RosterItem) state {
	switch it.Subscription {
	case storage.SubTo:
		if it.PendingIn {
			return toIn
		}
		return to
	case storage.SubFrom:
		if it.PendingOut {
			return fromOut
		}
		return from
	case storage.SubBoth:
		return both
	}
	switch {
	case it.PendingOut && it.PendingIn:
		return noneOutIn
	case it.PendingOut:
		return noneOut
	case it.PendingIn:
		return noneIn
	}
	return none
}

// set writes s into an item. A pre-approval only means something while the
// contact has neither a subscription nor a pending request (RFC 6121
// §3.4), so it is dropped in the other states.
func set(it *storage.RosterItem, s state) {
	it.Subscription = s.subscription()
	it.PendingOut = s.pendingOut()
	it.PendingIn = s.pendingIn()
	if s.contactSubscribed() || s.pendingIn() {
		it.Approved = false
	}
}

// step is one row of an Appendix A table: whether the stanza goes on
// (routed to the contact when outbound, delivered to the user when
// inbound) and the state that follows. A row whose next state is its own
// is the RFC's "no state change".
type step struct {
	pass bool
	next state
}

// outboundTables are RFC 6121 A.2.1–A.2.4: stanzas the user sends to the
// contact, by the user's state.
var outboundTables = map[string][numStates]step{
	Subscribe: { // A.2.1: always routed, so that a contact whose state
		// drifted from ours can answer again (§3.1.2).
		none:      {true, noneOut},
		noneOut:   {true, noneOut},
		noneIn:    {true, noneOutIn},
		noneOutIn: {true, noneOutIn},
		to:        {true, to},
		toIn:      {true, toIn},
		from:      {true, fromOut},
		fromOut:   {true, fromOut},
		both:      {true, both},
	},
	Unsubscribe: { // A.2.2: always routed, like A.2.1 (§3.3.2).
		none:      {true, none},
		noneOut:   {true, none},
		noneIn:    {true, noneIn},
		noneOutIn: {true, noneIn},
		to:        {true, none},
		toIn:      {true, noneIn},
		from:      {true, from},
		fromOut:   {true, from},
		both:      {true, from},
	},
	Subscribed: { // A.2.3: only an answer to a pending request is routed.
		none:      {false, none},
		noneOut:   {false, noneOut},
		noneIn:    {true, from},
		noneOutIn: {true, fromOut},
		to:        {false, to},
		toIn:      {true, both},
		from:      {false, from},
		fromOut:   {false, fromOut},
		both:      {false, both},
	},
	Unsubscribed: { // A.2.4: routed when it denies or cancels something.
		none:      {false, none},
		noneOut:   {false, noneOut},
		noneIn:    {true, none},
		noneOutIn: {true, noneOut},
		to:        {false, to},
		toIn:      {true, to},
		from:      {true, none},
		fromOut:   {true, noneOut},
		both:      {true, to},
	},
}

// inboundTables are RFC 6121 A.3.1–A.3.4: stanzas the contact sends to the
// user, by the user's state.
var inboundTables = map[string][numStates]step{
	Subscribe: { // A.3.1: a request already pending is not delivered twice.
		none:      {true, noneIn},
		noneOut:   {true, noneOutIn},
		noneIn:    {false, noneIn},
		noneOutIn: {false, noneOutIn},
		to:        {true, toIn},
		toIn:      {false, toIn},
		from:      {false, from},
		fromOut:   {false, fromOut},
		both:      {false, both},
	},
	Unsubscribe: { // A.3.2
		none:      {false, none},
		noneOut:   {false, noneOut},
		noneIn:    {true, none},
		noneOutIn: {true, noneOut},
		to:        {false, to},
		toIn:      {true, to},
		from:      {true, none},
		fromOut:   {true, noneOut},
		both:      {true, to},
	},
	Subscribed: { // A.3.3: only an answer to the user's request counts.
		none:      {false, none},
		noneOut:   {true, to},
		noneIn:    {false, noneIn},
		noneOutIn: {true, toIn},
		to:        {false, to},
		toIn:      {false, toIn},
		from:      {false, from},
		fromOut:   {true, both},
		both:      {false, both},
	},
	Unsubscribed: { // A.3.4
		none:      {false, none},
		noneOut:   {true, none},
		noneIn:    {false, noneIn},
		noneOutIn: {true, noneIn},
		to:        {true, none},
		toIn:      {true, noneIn},
		from:      {false, from},
		fromOut:   {true, from},
		both:      {true, from},
	},
}
