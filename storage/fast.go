package storage

import (
	"context"
	"errors"
	"time"
)

// ErrReplay is returned (wrapped) by FastTokens.Use when the client's
// count is not above the last one the token was used with: the request is
// a replay (XEP-0484 §"Client authenticates using FAST").
var ErrReplay = errors.New("replayed")

// FastToken is a FAST token (XEP-0484) as the server keeps it. The token
// itself is not kept: only the SHA-256 of the proof a client makes of it,
// which cannot be turned back into the proof, so that reading the database
// lets nobody log in; and the mechanism's answer, which proves the server
// to the client and is no secret of the client's.
type FastToken struct {
	// Domain and Local are the account.
	Domain, Local string
	// Agent is the SASL2 user-agent id of the installation the token was
	// issued to; it is valid for that one only.
	Agent string
	// Mechanism is the HT mechanism the token was issued for, the only one
	// it is valid with.
	Mechanism string
	// Verifier is the SHA-256 of the client's proof of the token; it
	// names the token among the agent's.
	Verifier []byte
	// Responder is the mechanism's message for <success/>.
	Responder []byte
	// Expires is when the token stops being valid.
	Expires time.Time
	// Count is the highest count the client has used the token with, 0 if
	// it sent none.
	Count int64
	// Used says a client has authenticated with the token.
	Used bool
}

// FastTokens holds FAST tokens: per account and agent at most the one the
// client authenticated with last and one issued since, as XEP-0484
// §"Server-side handling of multiple active tokens" describes. Changing an
// account's credentials drops its tokens (Users.SetCredentials), and so
// does deleting the account.
type FastTokens interface {
	// Tokens returns the tokens of the account's agent, the latest expiry
	// first.
	Tokens(ctx context.Context, domain, local, agent string) ([]FastToken, error)
	// Issue keeps t as its agent's newest token. The agent's tokens that
	// were never used and those that have expired are dropped: a new token
	// supersedes an unused one, but the one in use stays valid until t is
	// used, in case t never reaches the client. ErrNotFound if the account
	// does not exist.
	Issue(ctx context.Context, t FastToken) error
	// Use records that the client authenticated with the agent's token of
	// verifier, with count (0 if the client sent none): the token is
	// marked used, and the agent's token used before it and those that
	// expire before it are dropped (a newer one, not used yet, stays). ErrReplay if count is not above the count the token was
	// last used with; ErrNotFound if the token is gone.
	Use(ctx context.Context, domain, local, agent string, verifier []byte, count int64) error
	// Revoke drops the tokens of the account's agent.
	Revoke(ctx context.Context, domain, local, agent string) error
}
