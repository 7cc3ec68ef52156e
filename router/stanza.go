package router

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync/atomic"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Stanza kinds: the local names of the three stanza elements.
const (
	KindMessage  = "message"
	KindPresence = "presence"
	KindIQ       = "iq"
)

// NSStanzas is the namespace of stanza error conditions (RFC 6120 §8.3).
const NSStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"

// Stanza is a message, presence or iq with its addresses parsed once, when it
// is read, so that routing never parses a JID twice.
type Stanza struct {
	*Element
	From jid.JID
	To   jid.JID
	// serial tells one routed message from every other; see Serial.
	serial uint64
}

// serials numbers the messages the router routes.
var serials atomic.Uint64

// Serial returns the number the router gave st when it first routed it, or
// 0 if it never routed it. Copies keep it, and so does a reroute: a message
// that routing hands to several resources, or that goes to another resource
// or to offline storage when its session ends unacknowledged, is one
// message to a module that counts or copies messages (push's count, the
// carbons a resource already got), whatever its id attribute says, and two
// messages with the same content and id are two. Only messages get one.
func (st *Stanza) Serial() uint64 { return st.serial }

// number gives st a serial if it has none.
func (st *Stanza) number() {
	if st.serial == 0 && st.Kind() == KindMessage {
		st.serial = serials.Add(1)
	}
}

// NewStanza wraps e after parsing its addresses. A malformed address is
// reported as a jid-malformed stanza error (RFC 6120 §8.3.3.8).
func NewStanza(e *Element) (*Stanza, error) {
	st := &Stanza{Element: e}
	var err error
	if s := e.Get("to"); s != "" {
		if st.To, err = jid.Parse(s); err != nil {
			return st, stanza.Error{Type: stanza.Modify, Condition: stanza.JIDMalformed}
		}
	}
	if s := e.Get("from"); s != "" {
		if st.From, err = jid.Parse(s); err != nil {
			return st, stanza.Error{Type: stanza.Modify, Condition: stanza.JIDMalformed}
		}
	}
	return st, nil
}

// Kind is message, presence or iq.
func (st *Stanza) Kind() string { return st.Name.Local }

// Type is the stanza's type attribute ("" for a normal message or an
// available presence).
func (st *Stanza) Type() string { return st.Get("type") }

// ID is the stanza's id attribute.
func (st *Stanza) ID() string { return st.Get("id") }

// IsIQRequest tells whether st is an IQ that needs an answer.
func (st *Stanza) IsIQRequest() bool {
	if st.Kind() != KindIQ {
		return false
	}
	t := st.Type()
	return t == "get" || t == "set"
}

// SetFrom sets the from address (attribute and parsed form).
func (st *Stanza) SetFrom(j jid.JID) {
	st.From = j
	st.SetAttr("from", j.String())
}

// StampFrom sets the from address from a JID and its string form, which a
// session computes once at bind instead of once per stanza.
func (st *Stanza) StampFrom(j jid.JID, s string) {
	st.From = j
	st.SetAttr("from", s)
}

// SetTo sets the to address (attribute and parsed form).
func (st *Stanza) SetTo(j jid.JID) {
	st.To = j
	st.SetAttr("to", j.String())
}

// Copy returns a deep copy of the stanza.
func (st *Stanza) Copy() *Stanza {
	return &Stanza{Element: st.Element.Copy(), From: st.From, To: st.To, serial: st.serial}
}

// Reply returns an IQ result (or an empty stanza of the same kind) addressed
// back to the sender, with the payload elements given.
func (st *Stanza) Reply(payload ...*Element) *Stanza {
	e := NewElement("", st.Kind(), "id", st.ID())
	if st.Kind() == KindIQ {
		e.SetAttr("type", "result")
	}
	e.Append(payload...)
	r := &Stanza{Element: e}
	r.swap(st)
	return r
}

// ErrorReply returns the stanza error answer to st (RFC 6120 §8.3): the same
// kind and id, addresses swapped, type error, with the condition given. The
// original payload is not echoed, so errors stay small.
func (st *Stanza) ErrorReply(typ stanza.ErrorType, cond stanza.Condition, text string) *Stanza {
	e := NewElement("", st.Kind(), "id", st.ID(), "type", "error")
	errEl := NewElement("", "error", "type", string(typ))
	errEl.Append(NewElement(NSStanzas, string(cond)))
	if text != "" {
		errEl.Append(NewElement(NSStanzas, "text").AppendText(text))
	}
	e.Append(errEl)
	r := &Stanza{Element: e}
	r.swap(st)
	return r
}

// ErrorFrom is ErrorReply for a mellium stanza.Error value.
func (st *Stanza) ErrorFrom(se stanza.Error) *Stanza {
	text := ""
	for _, t := range se.Text {
		text = t
		break
	}
	typ := se.Type
	if typ == "" {
		typ = DefaultErrorType(se.Condition)
	}
	return st.ErrorReply(typ, se.Condition, text)
}

// swap addresses r to st's sender, from st's recipient.
func (r *Stanza) swap(st *Stanza) {
	if !st.From.Equal(jid.JID{}) {
		r.SetTo(st.From)
	}
	if !st.To.Equal(jid.JID{}) {
		r.SetFrom(st.To)
	}
}

// DefaultErrorType is the error type RFC 6120 §8.3.3 gives each condition.
func DefaultErrorType(c stanza.Condition) stanza.ErrorType {
	switch c {
	case stanza.BadRequest, stanza.JIDMalformed, stanza.NotAcceptable, stanza.PolicyViolation, stanza.Redirect:
		return stanza.Modify
	case stanza.NotAuthorized, stanza.Forbidden, stanza.RegistrationRequired, stanza.SubscriptionRequired:
		return stanza.Auth
	case stanza.RecipientUnavailable, stanza.ResourceConstraint, stanza.RemoteServerTimeout, stanza.UnexpectedRequest:
		return stanza.Wait
	}
	return stanza.Cancel
}

// NewID returns a random stanza or stream id.
func NewID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("router: crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b[:])
}
