package mam

import "github.com/xmppd/xmppd/router"

// storedPayloads are the namespaces of payloads that make a message without
// a body one that clients keep in their history, so one to archive
// (XEP-0313 §5.1.1 leaves "additional non-conversation messages" to the
// server): receipts (XEP-0184), displayed markers (XEP-0333), corrections
// (XEP-0308), retractions (XEP-0424), reactions (XEP-0444), call
// invitations (XEP-0353) and encrypted messages (OMEMO, XEP-0384, old and
// new, and OpenPGP for XMPP, XEP-0373), which carry their body inside.
// Chat states (XEP-0085) are not among them: they are state, not history.
var storedPayloads = map[string]bool{
	"urn:xmpp:receipts":              true,
	"urn:xmpp:chat-markers:0":        true,
	"urn:xmpp:message-correct:0":     true,
	"urn:xmpp:message-retract:1":     true,
	"urn:xmpp:reactions:0":           true,
	"urn:xmpp:jingle-message:0":      true,
	"eu.siacs.conversations.axolotl": true,
	"urn:xmpp:omemo:2":               true,
	"urn:xmpp:openpgp:0":             true,
}

// archivable tells whether m is a message to archive, whoever's archive:
// a chat or normal message with a body or one of storedPayloads, or the
// XEP-0334 <store/> hint, and without a <no-store/> or
// <no-permanent-store/> hint. Errors, headlines and groupchat messages are
// not (rooms will keep their own archives).
func archivable(m *router.Stanza) bool {
	switch m.Type() {
	case "", "normal", "chat":
	default:
		return false
	}
	keep := false
	for _, c := range m.Elements() {
		switch {
		case c.Name.Space == NSHints:
			switch c.Name.Local {
			case "no-store", "no-permanent-store":
				return false
			case "store":
				keep = true
			}
		case c.Name.Space == "" && c.Name.Local == "body", storedPayloads[c.Name.Space]:
			keep = true
		}
	}
	return keep
}
