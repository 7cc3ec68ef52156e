package c2s

import (
	"fmt"
	"testing"

	"github.com/xmppd/xmppd/router"
)

// TestCSIHoldable checks the rule of what an inactive client can wait for
// (csi.go).
func TestCSIHoldable(t *testing.T) {
	el := router.NewElement
	chatState := el(nsChatStates, "composing")
	event := el(nsPubSubEvent, "event").Append(el(nsPubSubEvent, "items", "node", "urn:xmpp:avatar:metadata"))
	carbon := func(dir, ns string, m *router.Element) *router.Element {
		m.Name.Space = ns
		return el("", "message", "from", "alice@x").Append(el(nsCarbons, dir).Append(el(nsForward, "forwarded").Append(m)))
	}
	for _, tc := range []struct {
		name string
		st   *router.Element
		want bool
	}{
		{"available presence", el("", "presence"), true},
		{"unavailable presence", el("", "presence", "type", "unavailable"), true},
		{"subscription request", el("", "presence", "type", "subscribe"), false},
		{"subscription approval", el("", "presence", "type", "subscribed"), false},
		{"presence error", el("", "presence", "type", "error"), false},
		{"chat state", el("", "message", "type", "chat").Append(chatState), true},
		{"chat state with thread, hints, delay, origin-id", el("", "message", "type", "chat").Append(
			el("", "thread"), chatState, el(nsHints, "no-store"), el(nsDelay, "delay"), el(nsStanzaID, "origin-id")), true},
		{"pubsub event", el("", "message").Append(event), true},
		{"pubsub event in a headline", el("", "message", "type", "headline").Append(event), true},
		{"chat state with a body", el("", "message", "type", "chat").Append(chatState, el("", "body")), false},
		{"event with a body", el("", "message").Append(event, el("", "body")), false},
		{"subject", el("", "message", "type", "groupchat").Append(el("", "subject")), false},
		{"chat state with a receipt request", el("", "message").Append(chatState, el("urn:xmpp:receipts", "request")), false},
		{"call invitation", el("", "message").Append(el("urn:xmpp:jingle-message:0", "propose")), false},
		{"encrypted", el("", "message").Append(chatState, el("eu.siacs.conversations.axolotl", "encrypted")), false},
		{"hints only", el("", "message").Append(el(nsHints, "no-store")), false},
		{"empty message", el("", "message"), false},
		{"error message", el("", "message", "type", "error").Append(chatState), false},
		{"carbon of a chat state", carbon("received", "", el("", "message", "type", "chat").Append(chatState)), true},
		{"carbon of a chat state, jabber:client", carbon("sent", router.NSClient, el("", "message", "type", "chat").Append(chatState)), true},
		{"carbon of a message with a body", carbon("received", "", el("", "message", "type", "chat").Append(chatState, el("", "body"))), false},
		{"carbon without a message", el("", "message").Append(el(nsCarbons, "received")), false},
		{"iq result", el("", "iq", "type", "result"), false},
		{"iq request", el("", "iq", "type", "get").Append(el("urn:xmpp:ping", "ping")), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := csiHoldable(&router.Stanza{Element: tc.st}); got != tc.want {
				t.Errorf("csiHoldable(%s) = %v, want %v", tc.st, got, tc.want)
			}
		})
	}
}

// TestCSIHold checks what is held: the latest presence of each sender,
// moved to the end, and nothing past the bound.
func TestCSIHold(t *testing.T) {
	st := func(kind, from, id string) *router.Stanza {
		return &router.Stanza{Element: router.NewElement("", kind, "from", from, "id", id)}
	}
	var c csiState
	for _, x := range []struct {
		st   *router.Stanza
		held bool
	}{
		{st("presence", "bob@x/a", "p1"), true},
		{st("message", "bob@x/a", "m1"), true},
		{st("presence", "bob@x/b", "q1"), true},
		{st("message", "bob@x/a", "m2"), false}, // a fourth
		{st("presence", "bob@x/a", "p2"), true}, // replaces p1
		{st("presence", "carol@x/a", "r1"), false},
	} {
		if got := c.hold(x.st, 3); got != x.held {
			t.Errorf("hold(%s) = %v, want %v", x.st, got, x.held)
		}
	}
	var ids []string
	for _, h := range c.held {
		ids = append(ids, h.ID())
	}
	if want := "m1 q1 p2"; fmt.Sprint(ids) != "["+want+"]" {
		t.Errorf("held %v, want [%s]", ids, want)
	}
}
