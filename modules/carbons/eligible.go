package carbons

import "github.com/xmppd/xmppd/router"

// direction says which side of the user a message is on: sent by one of
// their clients, or received by the account.
type direction bool

const (
	sent     direction = true
	received direction = false
)

// imPayloads are the namespaces of payloads that make a message without a
// body part of a conversation (§6.1: "payload elements typically used in
// IM"): receipts (XEP-0184), chat states (XEP-0085), displayed markers
// (XEP-0333), direct MUC invitations (XEP-0249), call invitations
// (XEP-0353) and reactions (XEP-0444).
var imPayloads = map[string]bool{
	"urn:xmpp:receipts":                     true,
	"http://jabber.org/protocol/chatstates": true,
	"urn:xmpp:chat-markers:0":               true,
	"jabber:x:conference":                   true,
	"urn:xmpp:jingle-message:0":             true,
	"urn:xmpp:reactions:0":                  true,
}

// isCarbon tells whether m is a carbon: a <received/> or <sent/> wrapper.
func isCarbon(m *router.Stanza) bool {
	return m.Child(NS, "received") != nil || m.Child(NS, "sent") != nil
}

// eligible applies the rules of XEP-0280 §6.1 to a message going in
// direction dir.
func eligible(m *router.Stanza, dir direction) bool {
	if m.Child(NS, "private") != nil || m.Child(NSHints, "no-copy") != nil || isCarbon(m) {
		// §7 (the sender asked for no copies) and XEP-0334; a carbon is
		// never copied again.
		return false
	}
	typ := m.Type()
	switch typ {
	case "groupchat", "headline":
		// Group chat is replicated by the room; headlines are
		// notifications, not conversations.
		return false
	}
	if x := m.Child(NSMUCUser, "x"); x != nil && dir == received && x.Child(NSMUCUser, "invite") == nil {
		// A private message from a room occupant: the room already
		// sends it to every client of the user that joined (§6.1). A
		// mediated invitation is copied.
		return false
	}
	switch {
	case typ == "chat":
		return true
	case typ == "error":
		// §6.1 wants errors that answer an eligible message. The server
		// keeps no record of what it copied, so it goes by the error: a
		// bounce from an account's bare JID answers a message to that
		// bare JID (chat or normal: the others are not bounced from
		// there, or not bounced at all), and an error that echoes the
		// original (RFC 6120 §8.3.1) shows what it was.
		return m.From.Localpart() != "" && m.From.Resourcepart() == "" || hasConversation(m)
	}
	// A normal message (type "normal" or no type).
	return hasConversation(m)
}

// hasConversation tells whether m holds a body or an IM payload.
func hasConversation(m *router.Stanza) bool {
	for _, c := range m.Elements() {
		if c.Name.Space == "" && c.Name.Local == "body" || imPayloads[c.Name.Space] {
			return true
		}
		if c.Name.Space == NSMUCUser && c.Child(NSMUCUser, "invite") != nil {
			return true // a mediated invitation (XEP-0045 §7.8.2)
		}
	}
	return false
}
