// Package last answers Last Activity queries (XEP-0012): for an account, how
// long ago it logged out and with which status, shown only to those allowed
// to see its presence; for the server, its uptime. The logout itself is
// recorded by the module that tracks presence; this one only reads it.
package last

import (
	"context"
	"errors"
	"strconv"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// NS is the jabber:iq:last namespace.
const NS = "jabber:iq:last"

func init() {
	modules.Register("last", func() *Last { return new(Last) })
}

// Last is the last activity module.
type Last struct {
	h       *modules.Host
	started time.Time
	now     func() time.Time
}

var _ modules.Starter = (*Last)(nil)

// Start implements modules.Starter.
func (l *Last) Start(_ context.Context, h *modules.Host) error {
	l.h, l.now = h, time.Now
	l.started = l.now()
	h.AddFeature(router.ToServer, NS)
	// §4 forbids passing an unauthorised query to a full JID on to the
	// client, which would reveal that the resource is online.
	h.AddFilter(router.PriorityFirst, l.filterFull)
	if err := h.HandleIQ(router.ToServer, stanza.GetIQ, NS, l.uptime); err != nil {
		return err
	}
	return h.HandleIQ(router.ToAccount, stanza.GetIQ, NS, l.account)
}

// query is the answer payload.
func query(seconds int64, status string) *router.Element {
	q := router.NewElement(NS, "query", "seconds", strconv.FormatInt(max(seconds, 0), 10))
	if status != "" {
		q.AppendText(status)
	}
	return q
}

// uptime answers a query to the server with how long it has been running
// (§5).
func (l *Last) uptime(_ context.Context, iq *router.Stanza) *router.Stanza {
	return iq.Reply(query(int64(l.now().Sub(l.started)/time.Second), ""))
}

// account answers a query to an account's bare JID (§3): 0 while it has a
// session, else the time since its last logout and the status it gave.
func (l *Last) account(ctx context.Context, iq *router.Stanza) *router.Stanza {
	owner := iq.To.Bare()
	if iq.To.Domainpart() == "" {
		owner = iq.From.Bare()
	}
	exists, err := l.h.Router().AccountExists(ctx, owner)
	if err != nil {
		l.h.Logger().Error("last: look up account", "account", owner.String(), "err", err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	if !exists {
		// RFC 6121 §8.5.1: an IQ to an account that does not exist.
		return iq.ErrorReply(stanza.Cancel, stanza.ServiceUnavailable, "")
	}
	allowed, err := l.allowed(ctx, owner, iq.From)
	if err != nil {
		l.h.Logger().Error("last: look up roster", "account", owner.String(), "err", err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	if !allowed {
		return iq.ErrorReply(stanza.Auth, stanza.Forbidden, "")
	}
	if len(l.h.Router().Sessions(owner)) > 0 {
		return iq.Reply(query(0, ""))
	}
	at, status, err := l.h.Store().LastActivity().Get(ctx, owner)
	if errors.Is(err, storage.ErrNotFound) {
		// Offline and never logged out since last activity was recorded:
		// there is nothing to tell, and "0" would claim it is online.
		return iq.ErrorReply(stanza.Cancel, stanza.ItemNotFound, "no last activity recorded")
	}
	if err != nil {
		l.h.Logger().Error("last: load", "account", owner.String(), "err", err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	return iq.Reply(query(int64(l.now().Sub(at)/time.Second), status))
}

// allowed tells whether requester may see owner's presence, which is what
// last activity needs (§3, §8): the account itself, the server, or a contact
// with a subscription to the owner's presence ('from' or 'both' in the
// owner's roster).
func (l *Last) allowed(ctx context.Context, owner, requester jid.JID) (bool, error) {
	if requester.Bare().Equal(owner) {
		return true, nil
	}
	if requester.Localpart() == "" && l.h.Router().ServesUsers(requester.Domainpart()) {
		return true, nil
	}
	item, err := l.h.Store().Rosters().Item(ctx, owner, requester.Bare())
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return item.Subscription == storage.SubFrom || item.Subscription == storage.SubBoth, nil
}

// filterFull stops a last activity query to a local full JID from someone
// not allowed to see the account's presence, answering forbidden (§4);
// allowed ones go on to the resource. Everything else passes at the cost of
// a few comparisons, since filters see every stanza.
func (l *Last) filterFull(ctx context.Context, st *router.Stanza) *router.Stanza {
	if st.Kind() != router.KindIQ || st.Type() != "get" || st.To.Resourcepart() == "" || st.To.Localpart() == "" {
		return st
	}
	p := st.FirstChild()
	if p == nil || p.Name.Space != NS || !l.h.Router().ServesUsers(st.To.Domainpart()) {
		return st
	}
	owner := st.To.Bare()
	allowed, err := l.allowed(ctx, owner, st.From)
	if err != nil {
		l.h.Logger().Error("last: look up roster", "account", owner.String(), "err", err)
		l.h.Router().Bounce(ctx, st, stanza.InternalServerError, "")
		return nil
	}
	if !allowed {
		l.h.Router().Bounce(ctx, st, stanza.Forbidden, "")
		return nil
	}
	return st
}
