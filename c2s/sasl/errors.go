package sasl

import "errors"

// Sentinel errors. Every error from this package wraps exactly one of them
// (ErrChannelBinding may also wrap ErrUnsupportedBinding), and the wrapping
// text says what went wrong for the log. The client only ever learns the
// RFC 6120 condition, so an attacker cannot tell an unknown account from a
// wrong password.
var (
	// ErrMalformed means the client's message does not follow the SCRAM or
	// PLAIN syntax, uses an unsupported mandatory extension (m=), or came
	// out of turn. Answer <malformed-request/>.
	ErrMalformed = errors.New("scram: malformed message")

	// ErrNotAuthorized means the proof or password was wrong, the account
	// does not exist, or the client answered a different nonce. These are
	// deliberately one error. Answer <not-authorized/>.
	ErrNotAuthorized = errors.New("scram: not authorized")

	// ErrInvalidAuthzid means the authorization identity is badly encoded.
	// The caller also uses it when the authenticated user may not act as the
	// authzid it asked for. Answer <invalid-authzid/>.
	ErrInvalidAuthzid = errors.New("scram: invalid authzid")

	// ErrChannelBinding means the client's channel binding cannot be
	// trusted: a binding type we cannot provide, binding data that does not
	// match our side of the TLS channel, a -PLUS mechanism without binding
	// or binding without -PLUS, or a "y" flag although we offered -PLUS
	// (a downgrade, RFC 5802 §6). RFC 5802 treats all of these as failed
	// authentication: answer <not-authorized/>.
	ErrChannelBinding = errors.New("scram: channel binding failed")

	// ErrInvalidMechanism means NewServer was asked for a mechanism this
	// package does not implement. Answer <invalid-mechanism/>.
	ErrInvalidMechanism = errors.New("scram: invalid mechanism")

	// ErrTemporary means the failure is ours: the credential store failed or
	// returned an unusable credential. Answer <temporary-auth-failure/> and
	// log the error.
	ErrTemporary = errors.New("scram: temporary failure")

	// ErrUnsupportedBinding is returned by a ChannelBinding for a binding
	// type that the connection cannot provide (or cannot provide safely).
	ErrUnsupportedBinding = errors.New("scram: channel binding type not supported")
)

// Condition names the RFC 6120 §6.5 SASL failure condition for an error from
// this package, so that every caller maps errors the same way. Errors from
// elsewhere map to "temporary-auth-failure": when unsure, blame the server
// rather than tell the client something false about its credentials.
func Condition(err error) string {
	switch {
	case errors.Is(err, ErrMalformed):
		return "malformed-request"
	case errors.Is(err, ErrInvalidAuthzid):
		return "invalid-authzid"
	case errors.Is(err, ErrInvalidMechanism):
		return "invalid-mechanism"
	case errors.Is(err, ErrNotAuthorized), errors.Is(err, ErrChannelBinding):
		return "not-authorized"
	default:
		return "temporary-auth-failure"
	}
}
