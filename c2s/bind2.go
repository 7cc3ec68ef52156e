package c2s

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"log/slog"
	"strings"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
)

// Bind 2 (XEP-0386): resource binding inside SASL2, with the session's
// features enabled in the same step: stream management (sm.go), CSI
// (csi.go), and what modules register with router.AddBindFeature
// (carbons). The session is made and bound by the code of resource
// binding (bind.go); only the resource and the answer differ.

// nsBind2 is the namespace of XEP-0386.
const nsBind2 = "urn:xmpp:bind:0"

// bind2Feature is the <bind/> inline feature of SASL2, listing the
// features a client may enable in it.
func (c *conn) bind2Feature() *router.Element {
	inline := router.NewElement(nsBind2, "inline")
	vars := append([]string{nsSM, nsCSI}, c.srv.opts.Router.BindFeatures()...)
	for _, v := range vars {
		inline.Append(router.NewElement(nsBind2, "feature", "var", v))
	}
	return router.NewElement(nsBind2, "bind").Append(inline)
}

// bind2 binds a session as the Bind 2 request b asks, enables the features
// it asks for inline, and sends <success/> with <bound/>. XEP-0386 has the
// server bind before <success/> and defines no bind error, and XEP-0388
// knows only <success/> and <failure/>; so a session that cannot be bound
// (too many sessions) fails the whole <authenticate/> with <failure/>:
// temporary-auth-failure with RFC 6120's bind condition (§7.6.2.1
// resource-constraint) as the application-specific one, and a text. The
// stream stays unauthenticated; the client may try again.
func (c *conn) bind2(ctx context.Context, b *router.Element, succ *sasl2Success) (Outcome, error) {
	tag := ""
	if t := b.Child(nsBind2, "tag"); t != nil {
		tag = strings.TrimSpace(t.Text())
	}
	sess, refused := c.bindSession(ctx, c.bind2Resource(ctx, tag))
	if refused != nil {
		c.log.Info("c2s bind 2 refused", slog.String("condition", string(refused.cond)))
		c.srv.stats.login(succ.mech, "failure")
		return Continue, c.saslFailure(saslV2, refused.saslFailure())
	}
	result := router.NewElement(nsBind2, "bound")
	for _, e := range b.Elements() {
		if answer := sess.enableInline(ctx, e); answer != nil {
			result.Append(answer)
		}
	}
	succ.extra = append(succ.extra, result)
	if err := succ.send(ctx, sess.jidString, true); err != nil {
		c.srv.opts.Router.Sessions().Unbind(sess)
		return Continue, err
	}
	return bound, c.attachBound(sess)
}

// enableInline enables one feature a Bind 2 request asks for and returns
// what answers it in <bound/>, if anything. Elements of features we do not
// offer are ignored, as SASL2 ignores inline requests it does not know.
func (s *Session) enableInline(ctx context.Context, e *router.Element) *router.Element {
	switch {
	case e.Name.Space == nsSM && e.Name.Local == "enable":
		cmd, err := parseSMCommand(e)
		if err != nil {
			return smFailed(stanza.BadRequest)
		}
		return s.enableSM(cmd, true)
	case e.Name.Space == nsCSI && e.Name.Local == "inactive":
		s.csiInactive()
	case e.Name.Space == nsCSI && e.Name.Local == "active":
		// Where a session starts anyway.
	case e.Name.Space == nsBind2:
		// <tag/>: the resource's.
	default:
		answer, _ := s.srv.opts.Router.EnableBindFeature(ctx, s, e)
		return answer
	}
	return nil
}

// bind2Resource is the resource of a Bind 2 session: the client's tag, a
// slash and a suffix of the server's (XEP-0386 §"Resource identifier
// generation"). The suffix is a keyed hash of the account, the SASL2
// user-agent id and the tag, so that an installation gets the same
// resource every time (and its new session replaces its old one), while
// the id itself cannot be read from it; without an id it is random. A tag
// that makes no valid resource is left out.
func (c *conn) bind2Resource(ctx context.Context, tag string) string {
	var suffix string
	if c.agent.ID == "" {
		suffix = router.NewID()
	} else {
		m := hmac.New(sha256.New, c.srv.resourceKey(ctx))
		m.Write([]byte(c.user + "@" + c.host + "\x00" + c.agent.ID + "\x00" + tag))
		suffix = strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(m.Sum(nil)[:10]))
	}
	if tag != "" {
		if _, err := jid.New(c.user, c.host, tag+"/"+suffix); err == nil {
			return tag + "/" + suffix
		}
	}
	return suffix
}

// resourceKeyName names the server secret that keys the Bind 2 suffixes.
const resourceKeyName = "bind2-resource"

// resourceKey is the key of the Bind 2 resource suffixes: a secret kept in
// the database so that resources stay the same across restarts, or, if
// there is none, one of this process.
func (s *Server) resourceKey(ctx context.Context) []byte {
	s.resourceKeyOnce.Do(func() {
		if s.opts.Secrets != nil {
			key, err := s.opts.Secrets.Secret(ctx, resourceKeyName)
			if err == nil {
				s.resourceKeyBytes = key
				return
			}
			s.opts.Log.Error("c2s bind 2 resource key; using one of this process", slog.Any("err", err))
		}
		s.resourceKeyBytes = make([]byte, 32)
		rand.Read(s.resourceKeyBytes)
	})
	return s.resourceKeyBytes
}

// resumeInline handles a SASL2 inline <resume/> (XEP-0198 in XEP-0388):
// <resumed/> goes in <success/>, sent at once; <failed/> too, but the
// success waits for what comes next (Bind 2).
func (c *conn) resumeInline(ctx context.Context, e *router.Element, succ *sasl2Success) (Outcome, error) {
	cmd, err := parseSMCommand(e)
	if err != nil {
		succ.extra = append(succ.extra, smFailed(stanza.BadRequest))
		return Continue, nil
	}
	return c.resume(ctx, cmd, func(answer *router.Element, resumed *Session) error {
		succ.extra = append(succ.extra, answer)
		if resumed == nil {
			return nil
		}
		return succ.send(ctx, resumed.jidString, true)
	})
}
