package mam

import (
	"context"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/modules/mam/query"
	"github.com/xmppd/xmppd/router"
)

// owner returns the account whose archive iq asks for, and false if the
// asker may not have it. Only a client of the account itself may: the
// archive is private (XEP-0313 §7.1), and the answer to anyone else is
// forbidden, which that section recommends; it tells nothing of whether
// the account exists, since every account has an archive.
func (m *MAM) owner(iq *router.Stanza) (jid.JID, bool) {
	from := iq.From.Bare()
	if iq.From.Localpart() == "" || !m.h.Router().ServesUsers(iq.From.Domainpart()) {
		return jid.JID{}, false
	}
	if iq.To.Domainpart() != "" && !iq.To.Equal(from) {
		return jid.JID{}, false
	}
	return from, true
}

// set answers IQ sets of the namespace: a query, or new preferences.
func (m *MAM) set(ctx context.Context, iq *router.Stanza) *router.Stanza {
	owner, ok := m.owner(iq)
	if !ok {
		return iq.ErrorReply(stanza.Auth, stanza.Forbidden, "")
	}
	if el := iq.FirstChild(); el.Name.Local == "prefs" {
		return m.setPrefs(ctx, iq, owner, el)
	}
	return m.queries.Serve(ctx, m.request(iq, owner))
}

// get answers IQ gets of the namespace: the query form, the preferences,
// the archive's metadata.
func (m *MAM) get(ctx context.Context, iq *router.Stanza) *router.Stanza {
	owner, ok := m.owner(iq)
	if !ok {
		return iq.ErrorReply(stanza.Auth, stanza.Forbidden, "")
	}
	if iq.FirstChild().Name.Local == "prefs" {
		return m.getPrefs(ctx, iq, owner)
	}
	return m.queries.Serve(ctx, m.request(iq, owner))
}

// request is iq to the account's archive: an account's queries run one at
// a time, whichever of its resources asks, and the results go to the
// querying resource only, straight to its session.
func (m *MAM) request(iq *router.Stanza, owner jid.JID) query.Request {
	rt := m.h.Router()
	var s router.Session
	return query.Request{IQ: iq, Owner: owner, Slot: owner.String(),
		Deliver: func(ctx context.Context, res *router.Stanza) bool {
			if s == nil {
				if s = rt.Session(iq.From); s == nil {
					return false // the resource is gone; nobody to answer
				}
			}
			return rt.DeliverTo(ctx, s, res)
		}}
}
