package c2s

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// FAST (XEP-0484): a client that logged in with its password asks, inline
// in SASL2, for a token, and logs in with it next time in one round trip
// and one HMAC instead of SCRAM's PBKDF2-keyed exchange. Tokens are bound
// to the account and the SASL2 user-agent id, kept hashed (storage
// FastTokens), valid for auth.fast_token_ttl, replaced when half of that
// has passed, and dropped on a password change, when the account is
// deleted, and when the client asks with invalidate.
//
// The mechanism is HT-SHA-256-NONE (draft-schmaus-kitten-sasl-ht): the
// client sends authcid NUL HMAC(token, "Initiator"), the server answers
// HMAC(token, "Responder"). Without channel binding both messages are the
// same for every login with a token, so the server keeps only the SHA-256
// of the first, which does not let a reader of the database log in, and
// the second. The channel-binding forms (-ENDP, -EXPR) would need the
// token itself on every login, and are not offered.
//
// TLS 0-RTT is not accepted (Go's TLS server has none), so a count is not
// required; one that a client sends must grow, which storage checks.

// nsFAST is the namespace of XEP-0484.
const nsFAST = "urn:xmpp:fast:0"

// htSHA256None is the one FAST mechanism offered.
const htSHA256None = "HT-SHA-256-NONE"

// fastRequest is the FAST part of an <authenticate/>.
type fastRequest struct {
	// agent is the user-agent id the tokens are bound to.
	agent string
	// count and invalidate are <fast/>'s attributes.
	count      int64
	invalidate bool
	// requestToken is <request-token/>'s mechanism, "" for none.
	requestToken string
}

// fastMechanisms lists the FAST mechanisms offered on this connection:
// none without TLS or without a token store.
func (c *conn) fastMechanisms() []string {
	if !c.secure() || c.srv.opts.Tokens == nil {
		return nil
	}
	return []string{htSHA256None}
}

// isFASTMechanism tells an HT mechanism, which only FAST tokens can
// authenticate.
func isFASTMechanism(mech string) bool { return mech == htSHA256None }

// fastFeature is the <fast/> inline feature of SASL2, nil when FAST is
// not offered.
func (c *conn) fastFeature() *router.Element {
	mechs := c.fastMechanisms()
	if len(mechs) == 0 {
		return nil
	}
	return mechanismsElement(nsFAST, "fast", mechs)
}

// parseFAST reads the FAST elements of an <authenticate/> (e is a child
// in nsFAST) into req.
func (c *conn) parseFAST(req *sasl2Request, e *router.Element) failure {
	switch e.Name.Local {
	case "fast":
		if s := e.Get("count"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 1 {
				return failure{cond: "malformed-request", text: "the FAST count must be a positive integer"}
			}
			req.fast.count = n
		}
		switch e.Get("invalidate") {
		case "1", "true":
			req.fast.invalidate = true
		}
	case "request-token":
		mech := e.Get("mechanism")
		if !slices.Contains(c.fastMechanisms(), mech) {
			return failure{cond: "invalid-mechanism", text: "FAST tokens are offered for " + htSHA256None + " only"}
		}
		req.fast.requestToken = mech
	}
	return failure{}
}

// checkFAST applies the rule that FAST needs a user-agent id (XEP-0484
// §"Client responsibilities"): the tokens are bound to it.
func checkFAST(req *sasl2Request) failure {
	needs := req.fast.requestToken != "" || isFASTMechanism(req.exchange.mech)
	if needs && req.agent.ID == "" {
		return failure{cond: "malformed-request", text: "FAST needs a user-agent id"}
	}
	req.fast.agent = req.agent.ID
	return failure{}
}

// htMessages are the HT-SHA-256-NONE messages of a token: what the client
// sends after NUL, and what the server answers.
func htMessages(token []byte) (initiator, responder []byte) {
	m := hmac.New(sha256.New, token)
	m.Write([]byte("Initiator"))
	initiator = m.Sum(nil)
	m = hmac.New(sha256.New, token)
	m.Write([]byte("Responder"))
	return initiator, m.Sum(nil)
}

// fastAuth checks an HT-SHA-256-NONE initial response against the tokens
// of the account's agent: the newest first, as XEP-0484 §"Server-side
// handling of multiple active tokens" describes, each compared in constant
// time, and only with the mechanism it was issued for. A token that has
// expired gets credentials-expired, a count that does not grow
// not-authorized; only a proof that matches no token is a wrong
// credential.
func (c *conn) fastAuth(ctx context.Context, msg []byte, fr fastRequest) (res exchangeResult, err error) {
	authcid, proof, ok := bytes.Cut(msg, []byte{0})
	if !ok || len(authcid) == 0 {
		res.f = failure{cond: "malformed-request", text: "not an HT message: authcid NUL hashed token"}
		return res, nil
	}
	account := c.accountKey(string(authcid))
	if c.blocked(account) {
		res.f = throttled
		return res, nil
	}
	local, err := c.localpart(string(authcid))
	if err != nil {
		res.f = badCredential(account)
		return res, nil
	}
	tokens, err := c.srv.opts.Tokens.Tokens(ctx, c.host, local, fr.agent)
	if err != nil {
		c.log.Error("c2s load fast tokens", slog.Any("err", err))
		res.f = failure{cond: "temporary-auth-failure"}
		return res, nil
	}
	sum := sha256.Sum256(proof)
	var found *storage.FastToken
	for i := range tokens {
		// Every token is compared, so that the time does not tell which.
		if subtle.ConstantTimeCompare(tokens[i].Verifier, sum[:]) == 1 && found == nil {
			found = &tokens[i]
		}
	}
	switch {
	case found == nil || found.Mechanism != htSHA256None:
		res.f = badCredential(account)
		return res, nil
	case !time.Now().Before(found.Expires):
		res.f = failure{cond: "credentials-expired", text: "the FAST token has expired; log in with the password"}
		return res, nil
	}
	err = c.srv.opts.Tokens.Use(ctx, c.host, local, fr.agent, found.Verifier, fr.count)
	switch {
	case errors.Is(err, storage.ErrReplay):
		res.f = failure{cond: "not-authorized", text: "the FAST count must grow with every login"}
		return res, nil
	case errors.Is(err, storage.ErrNotFound):
		// Replaced or revoked meanwhile.
		res.f = badCredential(account)
		return res, nil
	case err != nil:
		c.log.Error("c2s use fast token", slog.Any("err", err))
		res.f = failure{cond: "temporary-auth-failure"}
		return res, nil
	}
	res.user, res.data, res.token = local, found.Responder, found
	return res, nil
}

// fastInline does what an authenticated <authenticate/> asks of FAST and
// returns the <token/> for <success/>, nil if none: the token used is
// invalidated if asked; a new token is issued if asked, or, unless the
// used one was invalidated, if the one used has run half its time
// (XEP-0484 §"Server initiates token rotation"). A failure to store a
// token is logged: the login itself has succeeded.
func (c *conn) fastInline(ctx context.Context, fr fastRequest, used *storage.FastToken) *router.Element {
	tokens := c.srv.opts.Tokens
	if tokens == nil || fr.agent == "" {
		return nil
	}
	mech := fr.requestToken
	if used != nil {
		if fr.invalidate {
			if err := tokens.Revoke(ctx, c.host, c.user, fr.agent); err != nil {
				c.log.Error("c2s invalidate fast token", slog.Any("err", err))
			}
		} else if mech == "" && time.Until(used.Expires) < c.srv.opts.Config.Auth.FastTokenTTL/2 {
			mech = used.Mechanism
		}
	}
	if mech == "" {
		return nil
	}
	token := []byte(rand.Text() + rand.Text())
	initiator, responder := htMessages(token)
	verifier := sha256.Sum256(initiator)
	t := storage.FastToken{
		Domain: c.host, Local: c.user, Agent: fr.agent, Mechanism: mech,
		Verifier: verifier[:], Responder: responder,
		Expires: time.Now().Add(c.srv.opts.Config.Auth.FastTokenTTL).UTC().Truncate(time.Second),
	}
	if err := tokens.Issue(ctx, t); err != nil {
		c.log.Error("c2s issue fast token", slog.Any("err", err))
		return nil
	}
	c.log.Info("c2s fast token issued", slog.String("agent", fr.agent), slog.Time("expiry", t.Expires))
	return router.NewElement(nsFAST, "token", "expiry", t.Expires.Format(time.RFC3339), "token", string(token))
}
