package muc

import (
	"context"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/modules/mam/query"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// archive stores a groupchat message in the room's archive (XEP-0313
// §6.1.2), under the stanza-id the room gave it, with the sender's
// occupant JID as the other party. The stored copy carries the sender's
// real JID in a muc#user <x/> (reflect stripped any the sender put in),
// which a query shows only to whom may see real JIDs (XEP-0313 §8.2.2)
// and history never shows.
func (r *room) archive(ctx context.Context, msg *router.Element, o *occupant, at time.Time) {
	stored := msg.Copy()
	id := ""
	kept := stored.Children[:0]
	for _, n := range stored.Children {
		if c, ok := n.(*router.Element); ok && c.Name.Space == NSStanzaID && c.Get("by") == r.jid.String() {
			id = c.Get("id")
			continue
		}
		kept = append(kept, n)
	}
	stored.Children = kept
	with := r.jid
	if o != nil {
		with = r.occupantJID(o.nick)
		stored.Append(router.NewElement(NSUser, "x").Append(router.NewElement(NSUser, "item", "jid", o.real.String())))
	}
	entry := storage.ArchiveEntry{Owner: r.jid, ArchivedMessage: storage.ArchivedMessage{
		ID: id, Stamp: at, With: with, Stanza: stored.AppendXML(nil, router.NSClient),
		Text: childText(msg, "", "body"),
	}}
	if err := r.m.archives.Append(ctx, []storage.ArchiveEntry{entry}); err != nil {
		r.m.log.Error("muc: archive message", "room", r.jid, "err", err)
	}
}

// hideRealJID removes the muc#user <x/> that archive stores with the
// sender's real JID, from a message read back from the archive.
func hideRealJID(inner *router.Element) {
	kept := inner.Children[:0]
	for _, n := range inner.Children {
		if c, ok := n.(*router.Element); ok && c.Name.Space == NSUser && c.Name.Local == "x" {
			continue
		}
		kept = append(kept, n)
	}
	clear(inner.Children[len(kept):])
	inner.Children = kept
}

// isArchiveIQ tells whether st is an IQ request of XEP-0313 to a room,
// which archiveIQ serves outside the room's lock.
func isArchiveIQ(st *router.Stanza) bool {
	if st.Kind() != router.KindIQ || !st.IsIQRequest() || st.To.Resourcepart() != "" {
		return false
	}
	q := st.FirstChild()
	return q != nil && q.Name.Space == query.NS
}

// archiveIQ serves a query, the query form or the metadata of a room's
// archive (XEP-0313 §6.1.2, on the room's bare JID). Whoever may enter the
// room may read its archive (§8.2.2): in a members-only room its members,
// admins and owners, in an open room anyone but outcasts, as Prosody's
// mod_muc_mam does; a room that does not archive answers
// service-unavailable, as for a feature it does not have. The room's lock
// is held only to decide that, not while the archive is read.
func (m *MUC) archiveIQ(ctx context.Context, st *router.Stanza) {
	r := m.room(st.To)
	if r == nil {
		m.noRoom(ctx, st)
		return
	}
	r.mu.Lock()
	cond, text := r.mayReadArchive(st)
	seeReal := r.seesRealJIDs(st)
	r.mu.Unlock()
	if cond != "" {
		m.h.Route(ctx, errorFrom(st, r.jid, cond, text))
		return
	}
	answer := m.queries.Serve(ctx, query.Request{IQ: st, Owner: r.jid, Slot: st.From.Bare().String(),
		Deliver: func(ctx context.Context, res *router.Stanza) bool { m.h.Route(ctx, res); return true },
		Present: func(inner *router.Element, _ storage.ArchivedMessage) {
			if !seeReal {
				hideRealJID(inner)
			}
		}})
	if answer != nil {
		m.h.Route(ctx, answer)
	}
}

// mayReadArchive tells why st's sender may not read the archive, "" if it
// may.
func (r *room) mayReadArchive(st *router.Stanza) (stanza.Condition, string) {
	aff := r.affiliation(st.From)
	switch {
	case r.gone || r.fresh || r.locked && aff != affOwner:
		return stanza.ItemNotFound, ""
	case !r.cfg.Archive:
		return stanza.ServiceUnavailable, "This room is not archived"
	case aff == affOutcast:
		return stanza.Forbidden, "You are banned from this room"
	case r.cfg.MembersOnly && affRank[aff] < affRank[affMember]:
		return stanza.Forbidden, "Only members may read the archive of this room"
	}
	return "", ""
}

// seesRealJIDs tells whether st's sender may see the real JIDs of
// occupants at the time of its query: in a non-anonymous room everyone,
// else admins and owners (moderators whenever they are in the room), and
// whoever is in the room as a moderator now.
func (r *room) seesRealJIDs(st *router.Stanza) bool {
	if r.nonAnonymous() || affRank[r.affiliation(st.From)] >= affRank[affAdmin] {
		return true
	}
	o := r.byReal[st.From.String()]
	return o != nil && o.role == roleModerator
}
