package carbons

import (
	"hash/maphash"
	"slices"
	"sync"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
)

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
	switch typ {
	case "chat":
		return true
	case "error":
		// §6.1 wants only errors that answer an eligible message: the
		// caller knows which messages it copied (answersCopy). An
		// echoed body does not tell, since a room's answer to a
		// groupchat message echoes it too.
		return false
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

// exchanged holds, for a session whose messages were copied, a digest of
// the peer and id of the last ones, so that the error that answers one of
// them is copied too (§6.1), and no other error is. It is made with the
// first copy, so a session that never has one pays nothing for it.
var exchanged = router.NewSessionKey[*exchanges]("carbons.exchanged")

// maxExchanges bounds exchanges: an error answers a message within
// seconds, while a few dozen more are exchanged at most.
const maxExchanges = 32

// exchanges is a ring of digests. Copies of what a session receives are
// made by the goroutines of every sender, hence the lock.
type exchanges struct {
	mu      sync.Mutex
	next    int
	digests [maxExchanges]uint64
}

// exchangeSeed keys the digests; it is random per process, so that
// nobody can make two exchanges collide on purpose.
var exchangeSeed = maphash.MakeSeed()

// exchangeDigest is the digest of a message with id exchanged with peer in
// direction dir.
func exchangeDigest(dir direction, peer jid.JID, id string) uint64 {
	var h maphash.Hash
	h.SetSeed(exchangeSeed)
	if dir == sent {
		h.WriteByte('s')
	} else {
		h.WriteByte('r')
	}
	h.WriteString(peer.String())
	h.WriteByte(0)
	h.WriteString(id)
	return h.Sum64()
}

// noteExchange records that s sent to peer (dir sent), or received from
// it, the message id, and that it was copied. Without an id, no error can
// be matched to the message.
func noteExchange(s router.Session, dir direction, peer jid.JID, id string) {
	if id == "" {
		return
	}
	d := exchangeDigest(dir, peer, id)
	r := exchanged.GetOrSet(s, func() *exchanges { return new(exchanges) })
	r.mu.Lock()
	r.digests[r.next] = d
	r.next = (r.next + 1) % maxExchanges
	r.mu.Unlock()
}

// answersCopy tells whether the error st, which s sends to peer (dir sent)
// or receives from it, answers a message going the other way that was
// copied: an error carries the id of the message it answers (RFC 6120
// §8.3.1).
func answersCopy(s router.Session, dir direction, peer jid.JID, st *router.Stanza) bool {
	r, ok := exchanged.Get(s)
	if !ok || st.Type() != "error" || st.ID() == "" {
		return false
	}
	d := exchangeDigest(!dir, peer, st.ID())
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.digests[:], d)
}
