package subscription

import (
	"reflect"
	"testing"
)

// TestClientView: the attributes of RFC 6121 §2.1.2 for each state of A.1.
func TestClientView(t *testing.T) {
	for _, tc := range []struct {
		state    string
		approved bool
		sub, ask string
		shown    bool // approved='true'
	}{
		{state: "None", sub: "none"},
		{state: "None + Pending Out", sub: "none", ask: "subscribe"},
		{state: "None + Pending In", sub: "none"},
		{state: "None + Pending Out/In", sub: "none", ask: "subscribe"},
		{state: "To", sub: "to"},
		{state: "To + Pending In", sub: "to"},
		{state: "From", sub: "from"},
		{state: "From + Pending Out", sub: "from", ask: "subscribe"},
		{state: "Both", sub: "both"},

		// §2.1.2.1: a pre-approval shows while it can still apply.
		{state: "None", approved: true, sub: "none", shown: true},
		{state: "None + Pending Out", approved: true, sub: "none", ask: "subscribe", shown: true},
		{state: "To", approved: true, sub: "to", shown: true},
		{state: "From", approved: true, sub: "from"},
		{state: "None + Pending In", approved: true, sub: "none"},
	} {
		name := tc.state
		if tc.approved {
			name += "/approved"
		}
		t.Run(name, func(t *testing.T) {
			sub, ask, shown := ClientView(item(t, tc.state, tc.approved))
			if sub != tc.sub || ask != tc.ask || shown != tc.shown {
				t.Errorf("ClientView = %q, %q, %v; want %q, %q, %v", sub, ask, shown, tc.sub, tc.ask, tc.shown)
			}
		})
	}
}

// TestRemove: what removing the item sends to the contact (RFC 6121
// §2.5.2), for each state of A.1.
func TestRemove(t *testing.T) {
	for _, tc := range []struct {
		state    string
		approved bool
		want     []string
	}{
		{state: "None"},
		{state: "None", approved: true},
		{state: "None + Pending Out", want: []string{Unsubscribe}},
		{state: "None + Pending In", want: []string{Unsubscribed}},
		{state: "None + Pending Out/In", want: []string{Unsubscribe, Unsubscribed}},
		{state: "To", want: []string{Unsubscribe}},
		{state: "To + Pending In", want: []string{Unsubscribe, Unsubscribed}},
		{state: "From", want: []string{Unsubscribed}},
		{state: "From + Pending Out", want: []string{Unsubscribe, Unsubscribed}},
		{state: "Both", want: []string{Unsubscribe, Unsubscribed}},
	} {
		t.Run(tc.state, func(t *testing.T) {
			if got := Remove(item(t, tc.state, tc.approved)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Remove = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRemoveEndsBothWays: after the contact processes what Remove sends,
// it neither has nor waits for anything from the user.
func TestRemoveEndsBothWays(t *testing.T) {
	for name := range rfcStates {
		t.Run(name, func(t *testing.T) {
			user := item(t, name, false)
			contact := mirror(user)
			for _, typ := range Remove(user) {
				out := Outbound(user, true, typ)
				if !out.Route {
					t.Fatalf("%s from the removed item is not routed: %+v", typ, out)
				}
				contact = Inbound(contact, inRoster(contact), typ).Item
			}
			if s := stateOf(contact); s != none {
				t.Errorf("contact left in %s", s)
			}
		})
	}
}
