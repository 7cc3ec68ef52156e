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
	full, err := jid.New(c.user, c.host, res)
	if err != nil {
		return false, c.writeElement(iq.ErrorReply(stanza.Modify, stanza.BadRequest, "invalid resource").Element)
	}
	log := c.log.With(slog.String("jid", full.String()))
	sess := newSession(ctx, c.srv, log, full)
	reg := c.srv.opts.Router.Sessions()
	old, err := reg.Bind(sess, c.srv.limits.MaxSessionsPerUser)
	if errors.Is(err, router.ErrTooManySessions) {
		return false, c.writeElement(iq.ErrorReply(stanza.Wait, stanza.ResourceConstraint, "too many sessions").Element)
	}
	if old != nil {
		old.Close(stream.Conflict)
	}
	result := router.NewElement("", "iq", "type", "result", "id", iq.ID())
	result.Append(router.NewElement(nsBind, "bind").Append(router.NewElement(nsBind, "jid").AppendText(full.String())))
	if err := c.writeElement(result); err != nil {
		reg.Unbind(sess)
		return false, err
	}
	if err := sess.Attach(c); err != nil {
		// Replaced or closed between Bind and here: it ends on its own.
		return false, sess.cause
	}
	c.sess, c.bound, c.log = sess, true, log
	c.log.Info("c2s session bound")
	return true, nil
}
