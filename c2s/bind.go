package c2s

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/router"
)

// bind binds a resource (RFC 6120 §7): the client's choice if valid, else
// a generated one. A session already bound to the same full JID is replaced
// and closed with a conflict error (§7.7.2.2, first policy). On success the
// new Session is attached to this connection.
func (c *conn) bind(ctx context.Context, iq *router.Stanza, payload *router.Element) (bool, error) {
	res := ""
	if r := payload.Child(nsBind, "resource"); r != nil {
		res = strings.TrimSpace(r.Text())
	}
	if res == "" {
		res = "xmppd-" + router.NewID()
	}
	sess, refused := c.bindSession(ctx, res)
	if refused != nil {
		return false, c.writeElement(iq.ErrorReply(refused.typ, refused.cond, refused.text).Element)
	}
	result := router.NewElement("", "iq", "type", "result", "id", iq.ID())
	result.Append(router.NewElement(nsBind, "bind").Append(router.NewElement(nsBind, "jid").AppendText(sess.jidString)))
	if err := c.writeElement(result); err != nil {
		c.srv.opts.Router.Sessions().Unbind(sess)
		return false, err
	}
	return true, c.attachBound(sess)
}

// bindRefusal is why a resource could not be bound, as a stanza error.
type bindRefusal struct {
	typ  stanza.ErrorType
	cond stanza.Condition
	text string
}

// saslFailure is the SASL2 <failure/> of a Bind 2 request refused for r
// (bind2): temporary-auth-failure for a limit that may pass, else
// malformed-request, with r's stanza condition inside as the
// application-specific condition XEP-0388 §"Failure" allows.
func (r *bindRefusal) saslFailure() failure {
	cond := "malformed-request"
	if r.typ == stanza.Wait {
		cond = "temporary-auth-failure"
	}
	return failure{cond: cond, text: "resource binding refused: " + r.text,
		app: router.NewElement(router.NSStanzas, string(r.cond))}
}

// bindSession makes the session of resource res for the authenticated
// user and binds it in the registry, for resource binding and Bind 2. It
// is not attached yet: the caller answers the client first, and unbinds it
// if that fails.
func (c *conn) bindSession(ctx context.Context, res string) (*Session, *bindRefusal) {
	full, err := jid.New(c.user, c.host, res)
	if err != nil {
		return nil, &bindRefusal{stanza.Modify, stanza.BadRequest, "invalid resource"}
	}
	log := c.log.With(slog.String("jid", full.String()))
	sess := newSession(ctx, c.srv, log, full)
	sess.agent = c.agent
	reg := c.srv.opts.Router.Sessions()
	old, err := reg.Bind(sess, c.srv.limits.MaxSessionsPerUser)
	if errors.Is(err, router.ErrTooManySessions) {
		return nil, &bindRefusal{stanza.Wait, stanza.ResourceConstraint, "too many sessions"}
	}
	if old != nil {
		old.Close(stream.Conflict)
	}
	return sess, nil
}

// attachBound attaches a session bindSession made to this connection,
// which carries it from now on.
func (c *conn) attachBound(sess *Session) error {
	if err := sess.Attach(c); err != nil {
		// Replaced or closed between Bind and here: it ends on its own.
		return sess.cause
	}
	c.sess, c.bound, c.log = sess, true, sess.log
	c.log.Info("c2s session bound")
	return nil
}
