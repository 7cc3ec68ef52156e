package offline

import (
	"time"

	"github.com/xmppd/xmppd/router"
)

// Namespaces the storage policy looks at.
const (
	NSDelay      = "urn:xmpp:delay"                        // XEP-0203
	NSHints      = "urn:xmpp:hints"                        // XEP-0334
	NSChatStates = "http://jabber.org/protocol/chatstates" // XEP-0085
	NSStanzaID   = "urn:xmpp:sid:0"                        // XEP-0359 origin-id
)

// shouldStore applies XEP-0160 §3 and XEP-0334 to a message nobody could
// take. Errors are never stored (XEP-0334 excepts them from <store/> too).
// A <no-store/> hint wins over everything else, <store/> over the message
// type (XEP-0334 §4.2, §4.4). Otherwise normal and chat messages are stored, and
// groupchat and headline messages are not; nor are messages whose only
// content is a chat state (XEP-0160 §3 on chat), which would be stale by
// the time they were read.
func shouldStore(st *router.Stanza) bool {
	typ := st.Type()
	if typ == "error" {
		return false
	}
	if st.Child(NSHints, "no-store") != nil {
		return false
	}
	if st.Child(NSHints, "store") != nil {
		return true
	}
	switch typ {
	case "groupchat", "headline":
		return false
	}
	return !isChatStateOnly(st)
}

// isChatStateOnly tells whether a message carries nothing but a chat state
// notification: no body or subject, at least one XEP-0085 element, and
// otherwise only elements that are about the message rather than content
// (thread, hints, delay, origin-id). Anything else, such as a receipt or an
// encrypted payload, is worth storing.
func isChatStateOnly(st *router.Stanza) bool {
	state := false
	for _, c := range st.Elements() {
		switch c.Name.Space {
		case NSChatStates:
			state = true
		case NSHints, NSDelay, NSStanzaID:
		case "":
			if c.Name.Local != "thread" {
				return false // body, subject or anything else of the client namespace
			}
		default:
			return false
		}
	}
	return state
}

// stampFormat is XEP-0082's DateTime in UTC with milliseconds, which the
// profile allows: messages stored within one second keep their order for
// clients that sort by the stamp.
const stampFormat = "2006-01-02T15:04:05.000Z"

// stamped returns a copy of st with the XEP-0203 delay that XEP-0160 §2
// recommends: from the server's domain, stamped with when it was stored,
// with the XEP's reason text. A message that already carries a delay from
// domain keeps it and gets no second one: that is a message stored before,
// delivered to a session that closed before writing it, and coming back
// (its first stamp is the true one). Removing such a delay would not stop a
// sender from forging one either, since a message delivered directly keeps
// every delay it carries.
func stamped(st *router.Stanza, domain string, now time.Time) *router.Stanza {
	out := st.Copy()
	for _, c := range out.Elements() {
		if c.Name.Space == NSDelay && c.Name.Local == "delay" && c.Get("from") == domain {
			return out
		}
	}
	out.Append(router.NewElement(NSDelay, "delay", "from", domain, "stamp", now.UTC().Format(stampFormat)).
		AppendText("Offline Storage"))
	return out
}
