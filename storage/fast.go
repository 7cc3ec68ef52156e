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
// itself is not kept, nor anything that checks a client's proof of it: the
// server derives the token from ID with a key it keeps outside the
// database (c2s), so that a copy of the database lets nobody log in, and
// derives it again to check a login, whatever channel binding data the
// mechanism mixes into the proof.
type FastToken struct {
	// Domain and Local are the account.
	Domain, Local string
	// Agent is the SASL2 user-agent id of the installation the token was
	// issued to; it is valid for that one only.
	Agent string
	// Mechanism is the HT mechanism the token was issued for, the only one
	// it is valid with.
	Mechanism string
	// ID is the random part of the token, which names it among the
	// agent's; without the server's key it is no credential.
	ID []byte
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
	// Use records that the client authenticated with the agent's token
	// id, with count (0 if the client sent none): the token is marked
	// used, and the agent's token used before it and those that expire
	// before it are dropped (a newer one, not used yet, stays). ErrReplay
	// if count is not above the count the token was last used with;
	// ErrNotFound if the token is gone.
	Use(ctx context.Context, domain, local, agent string, id []byte, count int64) error
	// Revoke drops the tokens of the account's agent.
	Revoke(ctx context.Context, domain, local, agent string) error
}
