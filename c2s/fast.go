package c2s

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xmppd/xmppd/c2s/sasl"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// FAST (XEP-0484): a client that logged in with its password asks, inline
// in SASL2, for a token, and logs in with it next time in one round trip
// and two HMACs instead of SCRAM's PBKDF2-keyed exchange. Tokens are bound
// to the account, the SASL2 user-agent id and the mechanism, valid for
// auth.fast_token_ttl, replaced when half of that has passed, and dropped
// on a password change, when the account is deleted, and when the client
// asks with invalidate.
//
// The mechanisms are the HT-SHA-256 ones of draft-schmaus-kitten-sasl-ht
// (c2s/sasl ht.go): -EXPR and -ENDP, which mix the connection's
// tls-exporter or our certificate's tls-server-end-point into the proof,
// where the connection has them, and -NONE. A token is derived from a
// random id with Options.FastKey, a key kept outside the database
// (sasl.FastToken); storage keeps the id, never the token nor anything
// that checks a proof, so that a copy of the database lets nobody log in.
// A login derives the token of each of the agent's (at most two) ids
// again and checks the proof over this connection's channel binding.
//
// TLS 0-RTT is not accepted (Go's TLS server has none), so a count is not
// required; one that a client sends must grow, which storage checks.

// nsFAST is the namespace of XEP-0484.
const nsFAST = "urn:xmpp:fast:0"

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

// fastOn says whether FAST is offered at all: it needs a token store and
// the key tokens are derived with.
func (s *Server) fastOn() bool { return s.opts.Tokens != nil && len(s.opts.FastKey) > 0 }

// fastMechanisms lists the FAST mechanisms offered on this connection,
// strongest first: none without TLS or FAST, the channel-binding ones
// where the connection's binding has their type (sasl.HTOffered).
func (c *conn) fastMechanisms() []string {
	if !c.secure() || !c.srv.fastOn() {
		return nil
	}
	return sasl.HTOffered(c.binding())
}

// isFASTMechanism tells an HT mechanism, which only FAST tokens can
// authenticate.
func isFASTMechanism(mech string) bool {
	_, ok := sasl.HTBindingType(mech)
	return ok
}

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
		if offered := c.fastMechanisms(); !slices.Contains(offered, mech) {
			return failure{cond: "invalid-mechanism", text: "FAST tokens are offered for " + strings.Join(offered, ", ") + " only"}
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

// fastAuth checks an HT initial response of mechanism mech against the
// tokens of the account's agent: the newest first, as XEP-0484
// §"Server-side handling of multiple active tokens" describes, each
// derived again from its id and compared in constant time over this
// connection's channel binding, and only with the mechanism it was issued
// for. A token that has expired gets credentials-expired, a count that
// does not grow not-authorized; only a proof that matches no token is a
// wrong credential.
func (c *conn) fastAuth(ctx context.Context, mech string, msg []byte, fr fastRequest) (res exchangeResult, err error) {
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
	cbData, err := c.htBindingData(mech)
	if err != nil {
		// Offered only where the binding is: this is our fault.
		c.log.Error("c2s fast channel binding", slog.String("mechanism", mech), slog.Any("err", err))
		res.f = failure{cond: "temporary-auth-failure"}
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
	var found *storage.FastToken
	var responder []byte
	for i := range tokens {
		// Every token is checked, so that the time does not tell which
		// matched.
		initiator, resp := sasl.HTMessages([]byte(sasl.FastToken(c.srv.opts.FastKey, tokens[i])), cbData)
		if hmac.Equal(initiator, proof) && tokens[i].Mechanism == mech && found == nil {
			found, responder = &tokens[i], resp
		}
	}
	switch {
	case found == nil:
		res.f = badCredential(account)
		return res, nil
	case !time.Now().Before(found.Expires):
		res.f = failure{cond: "credentials-expired", text: "the FAST token has expired; log in with the password"}
		return res, nil
	}
	err = c.srv.opts.Tokens.Use(ctx, c.host, local, fr.agent, found.ID, fr.count)
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
	res.user, res.data, res.token = local, responder, found
	return res, nil
}

// htBindingData is the channel binding data the HT mechanism mech mixes
// into its messages on this connection: nil for -NONE.
func (c *conn) htBindingData(mech string) ([]byte, error) {
	cbType, _ := sasl.HTBindingType(mech)
	if cbType == "" {
		return nil, nil
	}
	cb := c.binding()
	if cb == nil {
		return nil, fmt.Errorf("%s: no TLS channel binding: %w", mech, sasl.ErrUnsupportedBinding)
	}
	return cb(cbType)
}

// fastInline does what an authenticated <authenticate/> asks of FAST and
// returns the <token/> for <success/>, nil if none: the token used is
// invalidated if asked; a new token is issued if asked, or, unless the
// used one was invalidated, if the one used has run half its time
// (XEP-0484 §"Server initiates token rotation"). A failure to store a
// token is logged: the login itself has succeeded.
func (c *conn) fastInline(ctx context.Context, fr fastRequest, used *storage.FastToken) *router.Element {
	tokens := c.srv.opts.Tokens
	if !c.srv.fastOn() || fr.agent == "" {
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
	t := storage.FastToken{
		Domain: c.host, Local: c.user, Agent: fr.agent, Mechanism: mech,
		ID:      make([]byte, sasl.TokenIDSize),
		Expires: time.Now().Add(c.srv.opts.Config.Auth.FastTokenTTL).UTC().Truncate(time.Second),
	}
	rand.Read(t.ID) // never fails (crypto/rand)
	if err := tokens.Issue(ctx, t); err != nil {
		c.log.Error("c2s issue fast token", slog.Any("err", err))
		return nil
	}
	c.log.Info("c2s fast token issued", slog.String("agent", fr.agent), slog.String("mechanism", mech), slog.Time("expiry", t.Expires))
	return router.NewElement(nsFAST, "token", "expiry", t.Expires.Format(time.RFC3339), "token", sasl.FastToken(c.srv.opts.FastKey, t))
}
