package core

import (
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
)

// Error is a XEP-0060 error: a stanza error condition with, most of the
// time, a pubsub#errors condition that says which rule was broken (§7, §8).
type Error struct {
	Type stanza.ErrorType
	Cond stanza.Condition
	// App is the pubsub#errors condition, or "".
	App string
	// Feature names the unsupported feature of App "unsupported".
	Feature string
	Text    string
}

func (e *Error) Error() string {
	s := string(e.Cond)
	if e.App != "" {
		s += "/" + e.App
	}
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Reply answers iq with the error.
func (e *Error) Reply(iq *router.Stanza) *router.Stanza {
	typ := e.Type
	if typ == "" {
		typ = router.DefaultErrorType(e.Cond)
	}
	r := iq.ErrorReply(typ, e.Cond, e.Text)
	if e.App != "" {
		app := router.NewElement(NSErrors, e.App)
		if e.Feature != "" {
			app.SetAttr("feature", e.Feature)
		}
		r.Child("", "error").Append(app)
	}
	return r
}

func perr(cond stanza.Condition, app string) *Error { return &Error{Cond: cond, App: app} }

// The errors the handlers return, by the XEP's sections.
var (
	errNodeRequired    = perr(stanza.BadRequest, "nodeid-required")
	errItemRequired    = perr(stanza.BadRequest, "item-required")
	errPayloadRequired = perr(stanza.BadRequest, "payload-required")
	errInvalidPayload  = perr(stanza.BadRequest, "invalid-payload")
	errPayloadTooBig   = perr(stanza.NotAcceptable, "payload-too-big")
	errNotFound        = perr(stanza.ItemNotFound, "")
	errForbidden       = perr(stanza.Forbidden, "")
	errPrecondition    = perr(stanza.Conflict, "precondition-not-met")
	errMaxNodes        = perr(stanza.NotAllowed, "max-nodes-exceeded")
	errInvalidJID      = perr(stanza.BadRequest, "invalid-jid")
	errNotSubscribed   = &Error{Type: stanza.Cancel, Cond: stanza.UnexpectedRequest, App: "not-subscribed"}
	errNodeExists      = perr(stanza.Conflict, "")
	errInternal        = &Error{Type: stanza.Wait, Cond: stanza.InternalServerError}
	errBadRequest      = perr(stanza.BadRequest, "")
)

// unsupported is feature-not-implemented with the feature named
// (every "not supported" case of XEP-0060 §6, §7 and §8).
func unsupported(feature string) *Error {
	return &Error{Cond: stanza.FeatureNotImplemented, App: "unsupported", Feature: feature}
}

// notAcceptable is a configuration value the service refuses.
func notAcceptable(text string) *Error { return &Error{Cond: stanza.NotAcceptable, Text: text} }
