package subscription

import (
	"reflect"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
)

// rfcStates are the nine states of RFC 6121 A.1 as roster item fields,
// written out here rather than taken from the package so that the tests
// check its mapping too.
var rfcStates = map[string]storage.RosterItem{
	"None":                  {Subscription: storage.SubNone},
	"None + Pending Out":    {Subscription: storage.SubNone, PendingOut: true},
	"None + Pending In":     {Subscription: storage.SubNone, PendingIn: true},
	"None + Pending Out/In": {Subscription: storage.SubNone, PendingOut: true, PendingIn: true},
	"To":                    {Subscription: storage.SubTo},
	"To + Pending In":       {Subscription: storage.SubTo, PendingIn: true},
	"From":                  {Subscription: storage.SubFrom},
	"From + Pending Out":    {Subscription: storage.SubFrom, PendingOut: true},
	"Both":                  {Subscription: storage.SubBoth},
}

var juliet = jid.MustParse("juliet@example.com")

// item returns a roster item in the named state, with a name and groups
// that the machine must leave alone.
func item(t *testing.T, name string, approved bool) storage.RosterItem {
	t.Helper()
	it, ok := rfcStates[name]
	if !ok {
		t.Fatalf("no state %q", name)
	}
	it.Contact, it.Name, it.Groups = juliet, "Juliet", []string{"Capulets"}
	it.Approved = approved
	return it
}

// row is one transition: an existing state, a stanza type, the state after
// it ("" for the RFC's "no state change") and the actions expected. The
// Item of want is filled in from next.
type row struct {
	state    string
	typ      string
	next     string
	approved bool // the existing item carries a pre-approval
	after    bool // the new item carries one
	out      OutboundResult
	in       InboundResult
}

func (r row) name() string { return r.typ + "/" + r.state }

// wantItem is the item the row expects.
func (r row) wantItem(t *testing.T) storage.RosterItem {
	next := r.next
	if next == "" {
		next = r.state
	}
	return item(t, next, r.after)
}

func testOutbound(t *testing.T, rows []row, exists bool) {
	for _, r := range rows {
		t.Run(r.name(), func(t *testing.T) {
			want := r.out
			want.Item = r.wantItem(t)
			got := Outbound(item(t, r.state, r.approved), exists, r.typ)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Outbound(%s, %s)\n got  %+v\n want %+v", r.state, r.typ, got, want)
			}
		})
	}
}

func testInbound(t *testing.T, rows []row, exists bool) {
	for _, r := range rows {
		t.Run(r.name(), func(t *testing.T) {
			want := r.in
			want.Item = r.wantItem(t)
			got := Inbound(item(t, r.state, r.approved), exists, r.typ)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Inbound(%s, %s)\n got  %+v\n want %+v", r.state, r.typ, got, want)
			}
		})
	}
}

// TestOutbound walks RFC 6121 A.2.1–A.2.4 for a contact in the roster,
// with no pre-approval.
func TestOutbound(t *testing.T) {
	route := OutboundResult{Route: true}
	routeChange := OutboundResult{Route: true, Changed: true}
	nothing := OutboundResult{}
	testOutbound(t, []row{
		// A.2.1: the user asks for the contact's presence.
		{state: "None", typ: Subscribe, next: "None + Pending Out", out: routeChange},
		{state: "None + Pending Out", typ: Subscribe, out: route},
		{state: "None + Pending In", typ: Subscribe, next: "None + Pending Out/In", out: routeChange},
		{state: "None + Pending Out/In", typ: Subscribe, out: route},
		{state: "To", typ: Subscribe, out: route},
		{state: "To + Pending In", typ: Subscribe, out: route},
		{state: "From", typ: Subscribe, next: "From + Pending Out", out: routeChange},
		{state: "From + Pending Out", typ: Subscribe, out: route},
		{state: "Both", typ: Subscribe, out: route},

		// A.2.2: the user gives up the contact's presence or the request.
		{state: "None", typ: Unsubscribe, out: route},
		{state: "None + Pending Out", typ: Unsubscribe, next: "None", out: routeChange},
		{state: "None + Pending In", typ: Unsubscribe, out: route},
		{state: "None + Pending Out/In", typ: Unsubscribe, next: "None + Pending In", out: routeChange},
		{state: "To", typ: Unsubscribe, next: "None", out: routeChange},
		{state: "To + Pending In", typ: Unsubscribe, next: "None + Pending In", out: routeChange},
		{state: "From", typ: Unsubscribe, out: route},
		{state: "From + Pending Out", typ: Unsubscribe, next: "From", out: routeChange},
		{state: "Both", typ: Unsubscribe, next: "From", out: routeChange},

		// A.2.3: the user approves. With no request pending it is a
		// pre-approval (§3.4), not routed; TestOutboundPreApproval.
		{state: "None", typ: Subscribed, after: true, out: OutboundResult{Changed: true}},
		{state: "None + Pending Out", typ: Subscribed, after: true, out: OutboundResult{Changed: true}},
		{state: "None + Pending In", typ: Subscribed, next: "From",
			out: OutboundResult{Route: true, Changed: true, RemoveRequest: true, SendPresence: true}},
		{state: "None + Pending Out/In", typ: Subscribed, next: "From + Pending Out",
			out: OutboundResult{Route: true, Changed: true, RemoveRequest: true, SendPresence: true}},
		{state: "To", typ: Subscribed, after: true, out: OutboundResult{Changed: true}},
		{state: "To + Pending In", typ: Subscribed, next: "Both",
			out: OutboundResult{Route: true, Changed: true, RemoveRequest: true, SendPresence: true}},
		{state: "From", typ: Subscribed, out: nothing},
		{state: "From + Pending Out", typ: Subscribed, out: nothing},
		{state: "Both", typ: Subscribed, out: nothing},

		// A.2.4: the user denies a request or cancels the contact's
		// subscription (§3.2.2).
		{state: "None", typ: Unsubscribed, out: nothing},
		{state: "None + Pending Out", typ: Unsubscribed, out: nothing},
		{state: "None + Pending In", typ: Unsubscribed, next: "None",
			out: OutboundResult{Route: true, Changed: true, RemoveRequest: true}},
		{state: "None + Pending Out/In", typ: Unsubscribed, next: "None + Pending Out",
			out: OutboundResult{Route: true, Changed: true, RemoveRequest: true}},
		{state: "To", typ: Unsubscribed, out: nothing},
		{state: "To + Pending In", typ: Unsubscribed, next: "To",
			out: OutboundResult{Route: true, Changed: true, RemoveRequest: true}},
		{state: "From", typ: Unsubscribed, next: "None",
			out: OutboundResult{Route: true, Changed: true, SendUnavailable: true}},
		{state: "From + Pending Out", typ: Unsubscribed, next: "None + Pending Out",
			out: OutboundResult{Route: true, Changed: true, SendUnavailable: true}},
		{state: "Both", typ: Unsubscribed, next: "To",
			out: OutboundResult{Route: true, Changed: true, SendUnavailable: true}},
	}, true)
}

// TestOutboundNotInRoster: a contact outside the roster is "None", or
// "None + Pending In" when it sent a request (A.1); the roster gets an item
// only when the user's stanza makes it more than that.
func TestOutboundNotInRoster(t *testing.T) {
	testOutbound(t, []row{
		{state: "None", typ: Subscribe, next: "None + Pending Out",
			out: OutboundResult{Route: true, Changed: true, Create: true}},
		{state: "None", typ: Unsubscribe, out: OutboundResult{Route: true}},
		{state: "None", typ: Subscribed, after: true, out: OutboundResult{Changed: true, Create: true}},
		{state: "None", typ: Unsubscribed},

		{state: "None + Pending In", typ: Subscribe, next: "None + Pending Out/In",
			out: OutboundResult{Route: true, Changed: true, Create: true}},
		{state: "None + Pending In", typ: Unsubscribe, out: OutboundResult{Route: true}},
		{state: "None + Pending In", typ: Subscribed, next: "From",
			out: OutboundResult{Route: true, Changed: true, Create: true, RemoveRequest: true, SendPresence: true}},
		// The denial reaches the contact; nothing is left to store.
		{state: "None + Pending In", typ: Unsubscribed, next: "None",
			out: OutboundResult{Route: true, RemoveRequest: true}},
	}, false)
}

// TestOutboundPreApproval: what the user's stanzas do to an item carrying
// a pre-approval, which only the states with neither a subscription nor a
// request from the contact can hold (§3.4).
func TestOutboundPreApproval(t *testing.T) {
	testOutbound(t, []row{
		{state: "None", typ: Subscribe, approved: true, after: true, next: "None + Pending Out",
			out: OutboundResult{Route: true, Changed: true}},
		{state: "None", typ: Unsubscribe, approved: true, after: true, out: OutboundResult{Route: true}},
		// Approving twice changes nothing and is still not routed.
		{state: "None", typ: Subscribed, approved: true, after: true},
		{state: "None + Pending Out", typ: Subscribed, approved: true, after: true},
		{state: "To", typ: Subscribed, approved: true, after: true},
		// "unsubscribed" withdraws the pre-approval and is not routed.
		{state: "None", typ: Unsubscribed, approved: true, out: OutboundResult{Changed: true}},
		{state: "None + Pending Out", typ: Unsubscribed, approved: true, out: OutboundResult{Changed: true}},
		{state: "To", typ: Unsubscribed, approved: true, out: OutboundResult{Changed: true}},
		{state: "To", typ: Unsubscribe, approved: true, after: true, next: "None",
			out: OutboundResult{Route: true, Changed: true}},
	}, true)
}

// TestInbound walks RFC 6121 A.3.1–A.3.4 for a contact in the roster,
// with no pre-approval.
func TestInbound(t *testing.T) {
	nothing := InboundResult{}
	deliver := InboundResult{Deliver: true, Changed: true}
	autoReply := InboundResult{AutoReply: Subscribed, SendPresence: true}
	request := InboundResult{Deliver: true, Changed: true, StoreRequest: true}
	withdraw := InboundResult{Deliver: true, Changed: true, RemoveRequest: true}
	unsubscribe := InboundResult{Deliver: true, Changed: true, SendUnavailable: true}
	testInbound(t, []row{
		// A.3.1: the contact asks for the user's presence; a contact
		// already subscribed is answered at once (§3.1.3).
		{state: "None", typ: Subscribe, next: "None + Pending In", in: request},
		{state: "None + Pending Out", typ: Subscribe, next: "None + Pending Out/In", in: request},
		{state: "None + Pending In", typ: Subscribe, in: nothing},
		{state: "None + Pending Out/In", typ: Subscribe, in: nothing},
		{state: "To", typ: Subscribe, next: "To + Pending In", in: request},
		{state: "To + Pending In", typ: Subscribe, in: nothing},
		{state: "From", typ: Subscribe, in: autoReply},
		{state: "From + Pending Out", typ: Subscribe, in: autoReply},
		{state: "Both", typ: Subscribe, in: autoReply},

		// A.3.2: the contact gives up the user's presence or its request
		// (§3.3.3).
		{state: "None", typ: Unsubscribe, in: nothing},
		{state: "None + Pending Out", typ: Unsubscribe, in: nothing},
		{state: "None + Pending In", typ: Unsubscribe, next: "None", in: withdraw},
		{state: "None + Pending Out/In", typ: Unsubscribe, next: "None + Pending Out", in: withdraw},
		{state: "To", typ: Unsubscribe, in: nothing},
		{state: "To + Pending In", typ: Unsubscribe, next: "To", in: withdraw},
		{state: "From", typ: Unsubscribe, next: "None", in: unsubscribe},
		{state: "From + Pending Out", typ: Unsubscribe, next: "None + Pending Out", in: unsubscribe},
		{state: "Both", typ: Unsubscribe, next: "To", in: unsubscribe},

		// A.3.3: the contact approves the user's request (§3.1.6).
		{state: "None", typ: Subscribed, in: nothing},
		{state: "None + Pending Out", typ: Subscribed, next: "To", in: deliver},
		{state: "None + Pending In", typ: Subscribed, in: nothing},
		{state: "None + Pending Out/In", typ: Subscribed, next: "To + Pending In", in: deliver},
		{state: "To", typ: Subscribed, in: nothing},
		{state: "To + Pending In", typ: Subscribed, in: nothing},
		{state: "From", typ: Subscribed, in: nothing},
		{state: "From + Pending Out", typ: Subscribed, next: "Both", in: deliver},
		{state: "Both", typ: Subscribed, in: nothing},

		// A.3.4: the contact denies the user's request or cancels the
		// user's subscription (§3.2.3).
		{state: "None", typ: Unsubscribed, in: nothing},
		{state: "None + Pending Out", typ: Unsubscribed, next: "None", in: deliver},
		{state: "None + Pending In", typ: Unsubscribed, in: nothing},
		{state: "None + Pending Out/In", typ: Unsubscribed, next: "None + Pending In", in: deliver},
		{state: "To", typ: Unsubscribed, next: "None", in: deliver},
		{state: "To + Pending In", typ: Unsubscribed, next: "None + Pending In", in: deliver},
		{state: "From", typ: Unsubscribed, in: nothing},
		{state: "From + Pending Out", typ: Unsubscribed, next: "From", in: deliver},
		{state: "Both", typ: Unsubscribed, next: "From", in: deliver},
	}, true)
}

// TestInboundNotInRoster: no inbound stanza adds a contact to the roster; a
// request is kept apart (A.1, §3.1.3).
func TestInboundNotInRoster(t *testing.T) {
	testInbound(t, []row{
		{state: "None", typ: Subscribe, next: "None + Pending In",
			in: InboundResult{Deliver: true, StoreRequest: true}},
		{state: "None", typ: Unsubscribe},
		{state: "None", typ: Subscribed},
		{state: "None", typ: Unsubscribed},

		{state: "None + Pending In", typ: Subscribe},
		{state: "None + Pending In", typ: Unsubscribe, next: "None",
			in: InboundResult{Deliver: true, RemoveRequest: true}},
		{state: "None + Pending In", typ: Subscribed},
		{state: "None + Pending In", typ: Unsubscribed},
	}, false)
}

// TestInboundPreApproval: a pre-approved request is approved on the user's
// behalf and never shown to the user (§3.4); the contact's other stanzas
// leave the pre-approval in place.
func TestInboundPreApproval(t *testing.T) {
	approve := InboundResult{Changed: true, AutoReply: Subscribed, SendPresence: true}
	testInbound(t, []row{
		{state: "None", typ: Subscribe, approved: true, next: "From", in: approve},
		{state: "None + Pending Out", typ: Subscribe, approved: true, next: "From + Pending Out", in: approve},
		{state: "To", typ: Subscribe, approved: true, next: "Both", in: approve},

		{state: "None", typ: Unsubscribe, approved: true, after: true},
		{state: "None + Pending Out", typ: Subscribed, approved: true, after: true, next: "To",
			in: InboundResult{Deliver: true, Changed: true}},
		{state: "To", typ: Unsubscribed, approved: true, after: true, next: "None",
			in: InboundResult{Deliver: true, Changed: true}},
	}, true)
}

// TestRepair: flags that the subscription rules out, or an unknown
// subscription, are read leniently and the item is stored back canonical.
func TestRepair(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stored storage.RosterItem
		want   storage.RosterItem
	}{
		{"pending in while from", storage.RosterItem{Subscription: storage.SubFrom, PendingIn: true},
			storage.RosterItem{Subscription: storage.SubFrom}},
		{"pending out while to", storage.RosterItem{Subscription: storage.SubTo, PendingOut: true},
			storage.RosterItem{Subscription: storage.SubTo}},
		{"pending both ways while both", storage.RosterItem{Subscription: storage.SubBoth, PendingOut: true, PendingIn: true},
			storage.RosterItem{Subscription: storage.SubBoth}},
		{"pre-approval while both", storage.RosterItem{Subscription: storage.SubBoth, Approved: true},
			storage.RosterItem{Subscription: storage.SubBoth}},
		{"pre-approval while pending in", storage.RosterItem{Subscription: storage.SubNone, PendingIn: true, Approved: true},
			storage.RosterItem{Subscription: storage.SubNone, PendingIn: true}},
		{"empty subscription", storage.RosterItem{}, storage.RosterItem{Subscription: storage.SubNone}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// An approval nobody asked for is a no-op in every repaired
			// state (A.3.3): only the repair shows.
			got := Inbound(tc.stored, true, Subscribed)
			want := InboundResult{Item: tc.want, Changed: true}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Inbound got %+v, want %+v", got, want)
			}
		})
	}
	// Outbound reads items the same way.
	got := Outbound(storage.RosterItem{Subscription: storage.SubBoth, PendingIn: true}, true, Subscribed)
	want := OutboundResult{Item: storage.RosterItem{Subscription: storage.SubBoth}, Changed: true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Outbound got %+v, want %+v", got, want)
	}
}

// TestNotInRosterIgnoresItemFields: for a contact outside the roster only
// the pending request counts, whatever else the caller left in the item.
func TestNotInRosterIgnoresItemFields(t *testing.T) {
	stale := storage.RosterItem{Contact: juliet, Subscription: storage.SubBoth, PendingOut: true, Approved: true}
	want := storage.RosterItem{Contact: juliet, Subscription: storage.SubNone, PendingIn: true}
	got := Inbound(stale, false, Subscribe)
	if !reflect.DeepEqual(got.Item, want) || !got.Deliver || !got.StoreRequest || got.Changed || got.AutoReply != "" {
		t.Errorf("Inbound(stale, false, subscribe) = %+v", got)
	}
}

// TestUnknownType: a presence type outside §3 changes nothing, not even an
// item that would need repair.
func TestUnknownType(t *testing.T) {
	for name := range rfcStates {
		it := item(t, name, false)
		it.Approved = true
		if got, want := Outbound(it, true, "probe"), (OutboundResult{Item: it}); !reflect.DeepEqual(got, want) {
			t.Errorf("Outbound(%s, probe) = %+v", name, got)
		}
		if got, want := Inbound(it, true, ""), (InboundResult{Item: it}); !reflect.DeepEqual(got, want) {
			t.Errorf("Inbound(%s, \"\") = %+v", name, got)
		}
	}
}

// TestStateNames checks that the package and the tests agree on what each
// RFC state is.
func TestStateNames(t *testing.T) {
	for s := range numStates {
		it, ok := rfcStates[s.String()]
		if !ok {
			t.Fatalf("state %d is named %q, not an RFC 6121 A.1 name", s, s)
		}
		if got := stateOf(it); got != s {
			t.Errorf("stateOf(%s fields) = %s", s, got)
		}
	}
}

// mirror is the contact's view of a user's item: the two directions and
// the two pending flags swap.
func mirror(it storage.RosterItem) storage.RosterItem {
	swap := map[string]string{storage.SubTo: storage.SubFrom, storage.SubFrom: storage.SubTo}
	m := it
	if s, ok := swap[it.Subscription]; ok {
		m.Subscription = s
	}
	m.PendingOut, m.PendingIn = it.PendingIn, it.PendingOut
	m.Approved = false
	return m
}

// inRoster says whether a state needs a roster item (A.1).
func inRoster(it storage.RosterItem) bool {
	return it.Subscription != storage.SubNone || it.PendingOut || it.Approved
}

// exchange plays one stanza from a to b, both served by this machine: a's
// server applies it as outbound and, if routed, b's server as inbound;
// an auto-reply goes back the same way. It returns the new items.
func exchange(a, b storage.RosterItem, typ string) (storage.RosterItem, storage.RosterItem) {
	out := Outbound(a, inRoster(a), typ)
	a = out.Item
	if !out.Route {
		return a, b
	}
	in := Inbound(b, inRoster(b), typ)
	b = in.Item
	if in.AutoReply != "" {
		a = Inbound(a, inRoster(a), in.AutoReply).Item
	}
	return a, b
}

// TestBothSidesAgree: when user and contact start from matching states,
// every stanza either of them sends leaves the states matching. This
// checks the A.2 and A.3 tables against each other.
func TestBothSidesAgree(t *testing.T) {
	for name := range rfcStates {
		for _, typ := range []string{Subscribe, Unsubscribe, Subscribed, Unsubscribed} {
			t.Run(typ+"/"+name, func(t *testing.T) {
				user := item(t, name, false)
				contact := mirror(user)
				u, c := exchange(user, contact, typ)
				if !reflect.DeepEqual(mirror(u), stripApproval(c)) {
					t.Errorf("user sends %s: user %s, contact %s", typ, stateOf(u), stateOf(c))
				}
				c, u = exchange(contact, user, typ)
				if !reflect.DeepEqual(mirror(c), stripApproval(u)) {
					t.Errorf("contact sends %s: user %s, contact %s", typ, stateOf(u), stateOf(c))
				}
			})
		}
	}
}

// stripApproval drops a pre-approval, which only one side knows of.
func stripApproval(it storage.RosterItem) storage.RosterItem {
	it.Approved = false
	return it
}

// TestPreApprovalScenario follows RFC 6121 §3.4 end to end: the user
// pre-approves a contact not yet in the roster, then the contact's request
// is approved without reaching the user.
func TestPreApprovalScenario(t *testing.T) {
	user := storage.RosterItem{Contact: juliet}
	contact := storage.RosterItem{Contact: jid.MustParse("romeo@example.net")}

	pre := Outbound(user, false, Subscribed)
	if pre.Route || !pre.Create || !pre.Item.Approved {
		t.Fatalf("pre-approval: %+v", pre)
	}
	if _, _, approved := ClientView(pre.Item); !approved {
		t.Error("pre-approval not shown as approved='true'")
	}
	user = pre.Item

	req := Outbound(contact, false, Subscribe)
	contact = req.Item
	in := Inbound(user, true, Subscribe)
	if in.Deliver || in.StoreRequest || in.AutoReply != Subscribed || !in.Changed {
		t.Fatalf("pre-approved request: %+v", in)
	}
	user = in.Item
	contact = Inbound(contact, true, in.AutoReply).Item
	if stateOf(user) != from || stateOf(contact) != to || user.Approved {
		t.Errorf("after: user %s (approved %v), contact %s", stateOf(user), user.Approved, stateOf(contact))
	}
}
