package c2s

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/c2s/sasl"
	"github.com/xmppd/xmppd/internal/connlimit"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/credential"
)

// maxSASLFailures is how many wrong credentials (a failed SCRAM proof or
// PLAIN password) one stream gets before it is closed (RFC 6120 §6.4.5 asks
// for a configurable number between 2 and 5).
const maxSASLFailures = 3

// failure is why one SASL attempt failed: the RFC 6120 §6.5 condition, a
// human-readable <text/> and whether a credential was checked and found
// wrong. Only such a failure is a failed login (per-stream limit and
// throttle): a refused channel-binding type, an unknown mechanism or a
// malformed message says nothing about the password, and a stock client
// (slixmpp) makes several of them while it looks for a mechanism both
// sides support.
type failure struct {
	cond, text string
	credential bool
	account    string // the account a wrong credential was for, for the throttle
	// app is an application-specific condition for a SASL2 <failure/>
	// (XEP-0388 §"Failure"), nil if none.
	app *router.Element
}

// badCredential is the failure of a wrong proof or password for account.
func badCredential(account string) failure {
	return failure{cond: "not-authorized", credential: true, account: account}
}

// throttled is the failure of a login the throttle refuses. It is the same
// whether the account exists or not.
var throttled = failure{cond: "temporary-auth-failure", text: "too many failed logins; try again later"}

// errThrottled is returned by the SCRAM credential lookup when the throttle
// refuses the account, so that the exchange ends before any proof is
// checked.
var errThrottled = errors.New("c2s: login throttled")

// accountKey is the name the throttle counts failures for: the normalised
// local part, or the name as sent if it is not a valid one (it then fails
// like an unknown account).
func (c *conn) accountKey(authcid string) string {
	if local, err := c.localpart(authcid); err == nil {
		return local
	}
	return authcid
}

// blocked tells whether the throttle refuses a login at account (or, with
// account "", any login from this address), and logs it.
func (c *conn) blocked(account string) bool {
	if !c.srv.throttle.Blocked(c.ip, account) {
		return false
	}
	c.log.Warn("c2s login throttled", slog.String("ip", c.ip), slog.String("account", account))
	return true
}

// maxOtherFailures bounds the failures that are not wrong credentials on one
// stream: one attempt per offered mechanism and one more, so that a client
// can walk down the whole list, but an endless loop of bad attempts still
// ends with policy-violation.
func (c *conn) maxOtherFailures() int {
	return max(len(c.mechanisms()), maxSASLFailures) + 1
}

// mechanisms lists the SASL mechanisms offered on this connection, strongest
// first. Nothing is offered before TLS.
func (c *conn) mechanisms() []string {
	if !c.secure() {
		return nil
	}
	var m []string
	if len(c.binding().Types()) > 0 {
		m = append(m, sasl.SHA256Plus, sasl.SHA1Plus)
	}
	m = append(m, sasl.SHA256, sasl.SHA1)
	if c.srv.opts.Config.Auth.AllowPlain {
		m = append(m, "PLAIN")
	}
	return m
}

// offer is what the stream features advertise for SASL (and SASL2, which
// offers the same): the mechanisms and the XEP-0440 binding types, signed
// into SCRAM's server-first message (XEP-0474).
func (c *conn) offer() *sasl.Offer {
	o := &sasl.Offer{Mechanisms: c.mechanisms()}
	if types := c.binding().Types(); len(types) > 0 {
		o.ChannelBindings = types
	}
	return o
}

// binding is the channel binding of the TLS connection; none on a
// WebSocket, whose TLS may end at a proxy.
func (c *conn) binding() sasl.ChannelBinding {
	if c.tls == nil {
		return nil
	}
	cs := c.tls.ConnectionState()
	return sasl.TLSBinding(&cs, c.leaf)
}

// profile is an XMPP profile of SASL: RFC 6120's, or XEP-0388's SASL2. The
// mechanisms, their server code and the failure conditions are the same;
// the namespace of the elements and how their data is carried differ.
type profile struct {
	ns string
	// name is the profile in logs and Stats.
	name string
}

var (
	saslV1 = profile{ns: nsSASL, name: "sasl"}
	saslV2 = profile{ns: nsSASL2, name: "sasl2"}
)

// authenticate runs one SASL exchange that began with auth. restart is true
// on success, when the stream must be restarted.
func (c *conn) authenticate(ctx context.Context, auth *router.Element) (restart bool, err error) {
	mech := auth.Get("mechanism")
	res, err := c.exchange(ctx, saslV1, exchangeRequest{mech: mech, initial: auth.Text(), hasInitial: auth.Text() != ""})
	if err != nil {
		return false, err
	}
	if res.f.cond != "" {
		return false, c.saslFailure(saslV1, res.f)
	}
	succ := router.NewElement(nsSASL, "success")
	if res.data != nil {
		succ.AppendText(base64.StdEncoding.EncodeToString(res.data))
	}
	if err := c.writeElement(succ); err != nil {
		return false, err
	}
	c.loggedIn(saslV1, res.user, mech)
	return true, nil
}

// exchangeRequest is what a client asked to authenticate with.
type exchangeRequest struct {
	mech string
	// initial is the initial response as sent, in base64; hasInitial
	// says whether there was one.
	initial    string
	hasInitial bool
	// fast is the FAST part of a SASL2 <authenticate/> (fast.go), for the
	// HT mechanisms.
	fast fastRequest
}

// exchangeResult is how an exchange ended: the user who authenticated
// and the mechanism's additional data for <success/>, or the failure.
type exchangeResult struct {
	user string
	data []byte
	f    failure
	// token is the FAST token that authenticated (fast.go), nil for a
	// password.
	token *storage.FastToken
}

// exchange runs the mechanism of req to its outcome, in either profile:
// the check that it is offered, the throttle, the challenges and
// responses, and the accounting of a failure. It sends neither <success/>
// nor <failure/>: that is the profile's. An error ends the stream.
func (c *conn) exchange(ctx context.Context, p profile, req exchangeRequest) (res exchangeResult, err error) {
	mech := req.mech
	offered := slices.Contains(c.mechanisms(), mech) || (p == saslV2 && slices.Contains(c.fastMechanisms(), mech))
	if !offered {
		res.f = failure{cond: "invalid-mechanism",
			text: fmt.Sprintf("mechanism %q is not offered; offered: %s", mech, strings.Join(c.mechanisms(), ", "))}
		return res, nil
	}
	// The per-address ceiling can be checked at once; the per-account one
	// once the client has named the account (plain, scram).
	if c.blocked("") {
		res.f = throttled
		return res, nil
	}
	initial, err := p.decode(req.initial)
	if err != nil {
		res.f = failure{cond: "incorrect-encoding", text: "the initial response is not base64"}
		return res, nil
	}
	var authzid string
	switch {
	case mech == "PLAIN":
		res.user, authzid, res.f = c.plain(ctx, initial)
	case isFASTMechanism(mech):
		res, err = c.fastAuth(ctx, mech, initial, req.fast)
	default:
		res.user, authzid, res.data, res.f, err = c.scram(ctx, p, mech, initial, req.hasInitial)
	}
	if err != nil {
		return res, err
	}
	if res.f.cond == "" {
		if f := c.authzidFailure(p, authzid, res.user); f.cond != "" {
			res = exchangeResult{f: f}
		}
	}
	if f := res.f; f.cond != "" {
		if f.credential {
			c.srv.throttle.Fail(c.ip, f.account)
		}
		c.srv.stats.login(mech, "failure")
		c.log.Info("c2s login failed", slog.String("profile", p.name), slog.String("mechanism", mech), slog.String("condition", f.cond),
			slog.Bool("credential", f.credential), slog.String("host", c.host))
	}
	return res, nil
}

// mayAuthenticate checks that an exchange of profile p may begin: a
// second authentication is a policy-violation, and before TLS there is no
// SASL, and so no PLAIN (RFC 6120 §6.4.5). After these checks the attempt
// counts as progress of the pending connection (an <auth> in plaintext is
// none).
func (c *conn) mayAuthenticate(p profile) (ok bool, err error) {
	if c.authed {
		return false, stream.PolicyViolation
	}
	if !c.secure() {
		return false, c.saslFailure(p, failure{cond: "encryption-required", text: "negotiate TLS first"})
	}
	c.pending.Progress(connlimit.Auth)
	return true, nil
}

// mechanismsElement lists mechs in an element name of namespace ns, each
// a <mechanism/>: SASL's and SASL2's features and FAST's.
func mechanismsElement(ns, name string, mechs []string) *router.Element {
	e := router.NewElement(ns, name)
	for _, m := range mechs {
		e.Append(router.NewElement(ns, "mechanism").AppendText(m))
	}
	return e
}

// loggedIn marks the connection authenticated as user.
func (c *conn) loggedIn(p profile, user, mech string) {
	c.authed, c.user = true, user
	c.srv.stats.login(mech, "success")
	c.releasePending()
	c.log.Info("c2s authenticated", slog.String("user", user+"@"+c.host), slog.String("mechanism", mech), slog.String("profile", p.name))
}

// saslFailure sends a SASL <failure/> of profile p; past the retry limit
// of its kind (wrong credentials or anything else) it returns the stream
// error that closes the stream. The condition is RFC 6120's in both
// profiles (XEP-0388 §"Failure").
func (c *conn) saslFailure(p profile, f failure) error {
	e := router.NewElement(p.ns, "failure").Append(router.NewElement(nsSASL, f.cond))
	if f.app != nil && p == saslV2 {
		e.Append(f.app)
	}
	if f.text != "" {
		e.Append(router.NewElement(p.ns, "text").AppendText(f.text))
	}
	if err := c.writeElement(e); err != nil {
		return err
	}
	if f.credential {
		c.saslFailures++
		if c.saslFailures >= maxSASLFailures {
			return stream.PolicyViolation
		}
		return nil
	}
	c.otherFailures++
	if c.otherFailures >= c.maxOtherFailures() {
		return stream.PolicyViolation
	}
	return nil
}

// localpart normalises an authentication identity as the local part of an
// account on this host.
func (c *conn) localpart(authcid string) (string, error) {
	j, err := jid.New(authcid, c.host, "")
	if err != nil || j.Localpart() == "" {
		return "", fmt.Errorf("invalid username %q: %w", authcid, storage.ErrNotFound)
	}
	return j.Localpart(), nil
}

// credential loads the stored credential of a user for one SCRAM family.
func (c *conn) credential(ctx context.Context, authcid, family string) (storage.Credential, error) {
	local, err := c.localpart(authcid)
	if err != nil {
		return storage.Credential{}, err
	}
	u, err := c.srv.opts.Users.Get(ctx, c.host, local)
	if err != nil {
		return storage.Credential{}, err
	}
	for _, cr := range u.Credentials {
		if cr.Mechanism == family {
			return cr, nil
		}
	}
	return storage.Credential{}, fmt.Errorf("no %s credential: %w", family, storage.ErrNotFound)
}

// decoy makes unknown accounts look like real ones: same iteration count,
// a salt fixed per name.
func (c *conn) decoy() sasl.Decoy {
	return sasl.Decoy{Iterations: c.srv.opts.Config.Auth.ScramIterations}
}

// authzidFailure checks the authorization identity a mechanism carried
// (PLAIN's, SCRAM's a=) for the user who authenticated, in both profiles:
// empty, or the user's own bare JID, since nobody may act as another
// account (RFC 6120 §6.4.6); and in SASL2 also the stream's from, if the
// client sent one (XEP-0388 §"Initiation"). A mismatch is invalid-authzid.
func (c *conn) authzidFailure(p profile, authzid, local string) failure {
	if authzid == "" {
		return failure{}
	}
	j, err := jid.Parse(authzid)
	if err != nil || j.Resourcepart() != "" || j.Localpart() != local || j.Domainpart() != c.host {
		return failure{cond: "invalid-authzid", text: "you may only act as your own account"}
	}
	if p == saslV2 && c.peer != "" {
		if from, err := jid.Parse(c.peer); err != nil || !from.Bare().Equal(j) {
			return failure{cond: "invalid-authzid", text: "the authorization identity is not the stream's from"}
		}
	}
	return failure{}
}

// plain checks a PLAIN login (RFC 4616) against the stored SCRAM keys. The
// authorization identity is the caller's to check.
func (c *conn) plain(ctx context.Context, msg []byte) (user, authzid string, f failure) {
	authzid, authcid, password, err := sasl.ParsePlain(msg)
	if err != nil {
		return "", "", failure{cond: "malformed-request", text: "not a PLAIN message (RFC 4616)"}
	}
	account := c.accountKey(authcid)
	if c.blocked(account) {
		return "", "", throttled
	}
	cred, err := c.credential(ctx, authcid, sasl.SHA256)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		c.log.Error("c2s load credentials", slog.Any("err", err))
		return "", "", failure{cond: "temporary-auth-failure"}
	}
	if err != nil {
		// Spend the same work as a real check so timing does not tell
		// whether the account exists.
		credential.VerifyPlain(c.decoy().Credential(sasl.SHA256, authcid), password)
		return "", "", badCredential(account)
	}
	if !credential.VerifyPlain(cred, password) {
		return "", "", badCredential(account)
	}
	local, _ := c.localpart(authcid)
	return local, authzid, failure{}
}

// scram runs a SCRAM exchange: challenges and responses until success or
// failure, which is the caller's to send; data is the server-final message
// for <success/>. hasInitial says whether the client sent an initial
// response. The authorization identity (a=) is the caller's to check.
func (c *conn) scram(ctx context.Context, p profile, mech string, initial []byte, hasInitial bool) (user, authzid string, data []byte, f failure, err error) {
	family := mech
	if len(mech) > 5 && mech[len(mech)-5:] == "-PLUS" {
		family = mech[:len(mech)-5]
	}
	var account string
	srv, err := sasl.NewServer(mech, func(authcid string) (storage.Credential, error) {
		// Checked before the account is looked up: the answer is the same
		// whether it exists or not.
		account = c.accountKey(authcid)
		if c.blocked(account) {
			return storage.Credential{}, errThrottled
		}
		return c.credential(ctx, authcid, family)
	}, c.binding())
	if err != nil {
		return "", "", nil, failure{cond: "invalid-mechanism"}, nil
	}
	srv.PlusOffered = len(c.binding().Types()) > 0
	srv.Decoy = c.decoy()
	srv.Offer = c.offer()
	msg := initial
	if !hasInitial {
		// No initial response: ask for it with an empty challenge.
		if msg, f, err = c.challenge(p, nil); f.cond != "" || err != nil {
			return "", "", nil, f, err
		}
	}
	first := msg
	for {
		out, done, serr := srv.Step(msg)
		if serr != nil {
			if errors.Is(serr, errThrottled) {
				return "", "", nil, throttled, nil
			}
			if errors.Is(serr, sasl.ErrTemporary) {
				c.log.Error("c2s scram", slog.Any("err", serr))
			}
			f := c.scramFailure(first, serr)
			f.account = account
			return "", "", nil, f, nil
		}
		if done {
			local, lerr := c.localpart(srv.Username())
			if lerr != nil {
				return "", "", nil, failure{cond: "invalid-authzid", text: "you may only act as your own account"}, nil
			}
			return local, srv.Authzid(), out, failure{}, nil
		}
		if msg, f, err = c.challenge(p, out); f.cond != "" || err != nil {
			return "", "", nil, f, err
		}
	}
}

// scramFailure turns an error of the SCRAM server into the failure sent to
// the client. Only a wrong proof is a wrong credential; the channel-binding
// refusals keep RFC 5802's not-authorized but say why, so that the client
// can move on to its next mechanism.
// first is the client-first-message, which names the binding type.
func (c *conn) scramFailure(first []byte, err error) failure {
	cond := sasl.Condition(err)
	switch {
	case errors.Is(err, sasl.ErrNotAuthorized):
		return badCredential("")
	case errors.Is(err, sasl.ErrUnsupportedBinding):
		supported := "none"
		if types := c.binding().Types(); len(types) > 0 {
			supported = strings.Join(types, ", ")
		}
		return failure{cond: cond, text: fmt.Sprintf("channel binding type %s is not supported on this connection; supported: %s",
			gs2BindingType(first), supported)}
	case errors.Is(err, sasl.ErrChannelBinding):
		return failure{cond: cond, text: "channel binding refused: " + strings.TrimPrefix(err.Error(), sasl.ErrChannelBinding.Error()+": ")}
	case errors.Is(err, sasl.ErrMalformed):
		return failure{cond: cond, text: "malformed SCRAM message"}
	}
	return failure{cond: cond}
}

// gs2BindingType is the channel binding type a client-first-message asks
// for ("p=type,..."), for the failure text.
func gs2BindingType(first []byte) string {
	flag, _, _ := strings.Cut(string(first), ",")
	if t, ok := strings.CutPrefix(flag, "p="); ok {
		return t
	}
	return "(none)"
}

// challenge sends a <challenge/> of profile p and reads the client's
// <response/>.
func (c *conn) challenge(p profile, data []byte) (resp []byte, f failure, err error) {
	ch := router.NewElement(p.ns, "challenge")
	if len(data) > 0 {
		ch.AppendText(base64.StdEncoding.EncodeToString(data))
	}
	if err := c.writeElement(ch); err != nil {
		return nil, failure{}, err
	}
	e, err := c.next()
	if err != nil {
		return nil, failure{}, err
	}
	switch {
	case e.Name.Space == p.ns && e.Name.Local == "response":
		resp, err := p.decode(e.Text())
		if err != nil {
			return nil, failure{cond: "incorrect-encoding", text: "the response is not base64"}, nil
		}
		return resp, failure{}, nil
	case e.Name.Space == p.ns && e.Name.Local == "abort":
		return nil, failure{cond: "aborted"}, nil
	}
	return nil, failure{}, stream.NotAuthorized
}

// decode decodes a SASL payload of the profile: in SASL2 an empty element
// is empty data (XEP-0388 §"SASL Data Encoding"), the "=" of RFC 6120 is
// not.
func (p profile) decode(s string) ([]byte, error) {
	if p == saslV1 {
		return decodeSASL(s)
	}
	return base64.StdEncoding.DecodeString(strings.TrimSpace(s))
}

// decodeSASL decodes a SASL payload; "=" is an empty response (RFC 6120
// §6.4.2).
func decodeSASL(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(s)
}
