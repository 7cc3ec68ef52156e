package c2s

import (
	"context"
	"sync"

	"github.com/xmppd/xmppd/router"
)

// Client State Indication (XEP-0352): a client in the background (a phone
// with its screen off) says <inactive/>, and until it says <active/> the
// session holds back what it does not need at once, so that the radio
// stays asleep; what is held goes out, in order, as soon as something
// important comes.
//
// The holding is in the session's delivery (Session.Deliver), before its
// outbound queue: a held stanza is not queued, so it is not written, and
// so stream management does not count it until it is (sm.go counts what
// the writer writes). Everything held is newer than everything queued,
// since whatever is queued while stanzas are held first flushes them; so
// a flush appends the held stanzas to the queue, and at the session's end
// they come after the queued ones to be routed again (requeue). The state
// exists only once the client has sent <inactive/>: a session that never
// uses CSI costs nothing more.
//
// What is held (csiHoldable):
//   - presence updates, available or unavailable, keeping only the latest
//     from each full JID (an older one from the same sender is dropped and
//     the newer one takes its turn at the end);
//   - messages without a body whose only payload is a chat state
//     (XEP-0085) or a pubsub event notification (XEP-0060, PEP), beside
//     elements that only describe the message: thread, processing hints
//     (XEP-0334), delay (XEP-0203), stanza and origin ids (XEP-0359);
//     and carbon copies (XEP-0280) of such messages.
//
// Anything else is important and flushes what is held, then goes out
// itself: every IQ, every error, presence subscription requests and
// answers, and every message with anything else: a body, a subject, a
// receipt request (XEP-0184), a call invitation (XEP-0353), an encrypted
// payload, an invitation to a room. So does <active/>, and one held stanza
// more than limits.csi_max_held. A resumed stream is active again (XEP-0352
// §4), so resumption flushes too; a hibernating session still holds.

// nsCSI is the namespace of XEP-0352.
const nsCSI = "urn:xmpp:csi:0"

// Namespaces of what an inactive client may wait for.
const (
	nsChatStates  = "http://jabber.org/protocol/chatstates"   // XEP-0085
	nsPubSubEvent = "http://jabber.org/protocol/pubsub#event" // XEP-0060
	nsHints       = "urn:xmpp:hints"                          // XEP-0334
	nsDelay       = "urn:xmpp:delay"                          // XEP-0203
	nsStanzaID    = "urn:xmpp:sid:0"                          // XEP-0359
	nsCarbons     = "urn:xmpp:carbons:2"                      // XEP-0280
	nsForward     = "urn:xmpp:forward:0"                      // XEP-0297
)

// csiKey holds a session's client state, set by its first <inactive/>.
var csiKey = router.NewSessionKey[*csiState]("c2s client state indication")

// csiState is one session's client state and what is held for it.
type csiState struct {
	mu sync.Mutex
	// inactive is the client's last indication.
	inactive bool
	// ended is set when the session ends and takes what is held: from
	// then on nothing more is held.
	ended bool
	// held is what waits for the client, oldest first.
	held []*router.Stanza
}

// csiStep advertises CSI after authentication (XEP-0352 §3); its elements
// come after binding, to the owners addCSIHandlers registers.
var csiStep = Step{
	Name:   "csi",
	Stages: AfterAuth,
	Features: func(*Negotiation) []*router.Element {
		return []*router.Element{router.NewElement(nsCSI, "csi")}
	},
}

// addCSIHandlers registers <inactive/> and <active/>.
func (s *Server) addCSIHandlers() {
	s.HandleElement(nsCSI, "inactive", func(_ context.Context, s *Session, _ *router.Element) error {
		s.csiInactive()
		return nil
	})
	s.HandleElement(nsCSI, "active", func(_ context.Context, s *Session, _ *router.Element) error {
		// Handled before the client's next element is read, so that a
		// ping after <active/> is answered after the flush (§5).
		s.csiActive()
		return nil
	})
}

// csi returns the session's client state, nil if it never was inactive.
func (s *Session) csi() *csiState {
	c, _ := csiKey.Get(s)
	return c
}

// csiInactive makes the session inactive: for <inactive/>, sent after
// binding or inline in Bind 2 (XEP-0386).
func (s *Session) csiInactive() {
	c := csiKey.GetOrSet(s, func() *csiState { return &csiState{} })
	c.mu.Lock()
	c.inactive = true
	c.mu.Unlock()
}

// csiActive makes the session active: what is held is queued. For
// <active/>, and for a resumed stream, which starts active.
func (s *Session) csiActive() {
	c := s.csi()
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inactive = false
	s.flushHeld(c)
}

// deliverCSI is Deliver for a session that has used CSI: st is held if the
// client is inactive and st can wait, else what is held is flushed and st
// queued after it.
func (s *Session) deliverCSI(c *csiState, st *router.Stanza) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inactive && !c.ended && csiHoldable(st) && c.hold(st, s.srv.limits.CSIMaxHeld) {
		return true
	}
	s.flushHeld(c)
	return s.enqueue(st)
}

// hold adds st to what is held, replacing a held presence from the same
// sender; it reports false, holding nothing, when st would be one more
// than max. The caller holds mu.
func (c *csiState) hold(st *router.Stanza, max int) bool {
	if st.Kind() == router.KindPresence {
		from := st.Get("from")
		for i, h := range c.held {
			if h.Kind() == router.KindPresence && h.Get("from") == from {
				copy(c.held[i:], c.held[i+1:])
				c.held[len(c.held)-1] = st
				return true
			}
		}
	}
	if len(c.held) >= max {
		return false
	}
	c.held = append(c.held, st)
	return true
}

// flushHeld queues what is held, in order, after what is queued. The
// held stanzas were accepted by Deliver already, so the queue's bound does
// not refuse them (csi_max_held bounds them); a queue that has ended
// leaves them held, for End to take. The caller holds c.mu.
func (s *Session) flushHeld(c *csiState) {
	if len(c.held) == 0 {
		return
	}
	if s.out.pushAll(c.held) == queueEnded {
		return
	}
	c.held = nil
}

// csiEnd is End's part for CSI: what is held is returned, oldest first,
// to be routed again after what was queued, and nothing more is held.
func (s *Session) csiEnd() []*router.Stanza {
	c := s.csi()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended = true
	held := c.held
	c.held = nil
	return held
}

// csiHoldable tells whether st can wait for an inactive client (the rule
// is at the top of this file).
func csiHoldable(st *router.Stanza) bool {
	switch st.Kind() {
	case router.KindPresence:
		switch st.Type() {
		case "", "unavailable":
			return true
		}
		return false
	case router.KindMessage:
		return quietMessage(st.Element)
	}
	return false
}

// quietMessage tells whether message m can wait: no body, and a chat state
// or an event notification. A carbon copy (XEP-0280) can wait if what it
// copies can, so that the chat states of the user's other devices wait too.
func quietMessage(m *router.Element) bool {
	if m.Get("type") == "error" {
		return false
	}
	waiting := false
	for _, c := range m.Elements() {
		switch c.Name.Space {
		case nsChatStates, nsPubSubEvent:
			waiting = true
		case nsHints, nsDelay, nsStanzaID:
		case nsCarbons:
			if copied := forwardedMessage(c); copied == nil || !quietMessage(copied) {
				return false
			}
			waiting = true
		case "":
			if c.Name.Local != "thread" {
				return false // body, subject, error
			}
		default:
			return false
		}
	}
	return waiting
}

// forwardedMessage returns the message a carbons wrapper (<received/>,
// <sent/>) forwards (XEP-0297), or nil. Read from a client stream it is in
// the content namespace, from a server stream in jabber:client.
func forwardedMessage(wrapper *router.Element) *router.Element {
	f := wrapper.Child(nsForward, "forwarded")
	if f == nil {
		return nil
	}
	if m := f.Child("", router.KindMessage); m != nil {
		return m
	}
	return f.Child(router.NSClient, router.KindMessage)
}
