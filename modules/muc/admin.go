package muc

import (
	"context"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// iq handles an IQ request to the room itself.
func (r *room) iq(ctx context.Context, st *router.Stanza) {
	q := st.FirstChild()
	if q == nil {
		r.fail(st, stanza.BadRequest, "")
		return
	}
	switch q.Name.Space {
	case nsDiscoInfo:
		if st.Type() == "get" {
			r.send(r.discoInfo(st, q.Get("node")))
			return
		}
	case nsDiscoItems:
		if st.Type() == "get" {
			r.send(st.Reply(router.NewElement(nsDiscoItems, "query")))
			return
		}
	case NSAdmin:
		if st.Type() == "get" {
			r.adminGet(st, q)
		} else {
			r.adminSet(ctx, st, q)
		}
		return
	case NSOwner:
		if st.Type() == "get" {
			r.ownerGet(st)
		} else {
			r.ownerSet(ctx, st, q)
		}
		return
	case NSModerate:
		if st.Type() == "set" && q.Name.Local == "moderate" {
			r.moderate(ctx, st, q)
			return
		}
	case NSRegister:
		if st.Type() == "get" {
			r.registerGet(st)
		} else {
			r.registerSet(ctx, st, q)
		}
		return
	}
	r.fail(st, stanza.ServiceUnavailable, "")
}

// occupantIQ handles an IQ request to an occupant JID. The service
// answers an XEP-0410 self-ping itself: success when the sender is the
// occupant it pings, not-acceptable when it is not in the room under that
// nick. Other IQs to occupants are not passed on.
func (r *room) occupantIQ(st *router.Stanza) {
	o := r.byReal[st.From.String()]
	if q := st.FirstChild(); q != nil && q.Name.Space == NSPing && q.Name.Local == "ping" && st.Type() == "get" {
		if o != nil && o.nick == st.To.Resourcepart() {
			r.send(st.Reply())
			return
		}
		// XEP-0410 §3.2 gives this error the type cancel.
		r.send(typedErrorFrom(st, r.jid, stanza.Cancel, stanza.NotAcceptable, "You are not in the room under this nick"))
		return
	}
	if o == nil {
		r.fail(st, stanza.NotAcceptable, "You are not in the room")
		return
	}
	r.fail(st, stanza.ServiceUnavailable, "")
}

// affiliationOf is a new list entry.
func affiliationOf(j jid.JID, aff string) storage.RoomAffiliation {
	return storage.RoomAffiliation{JID: j, Affiliation: aff}
}

// saveAffiliations writes changed entries if the room is persistent.
func (r *room) saveAffiliations(ctx context.Context, affs []storage.RoomAffiliation) error {
	if !r.cfg.Persistent || len(affs) == 0 {
		return nil
	}
	return r.m.store.SetAffiliations(ctx, r.jid, affs)
}

// adminGet returns a role list (moderators, participants) to a moderator
// or an affiliation list to whom §9.5, §9.8, §10.5 and §10.8 allow.
func (r *room) adminGet(st *router.Stanza, q *router.Element) {
	me := r.affiliation(st.From)
	item := q.Child(NSAdmin, "item")
	if item == nil {
		r.fail(st, stanza.BadRequest, "Ask for a role or an affiliation")
		return
	}
	out := router.NewElement(NSAdmin, "query")
	switch role, aff := item.Get("role"), item.Get("affiliation"); {
	case role == roleModerator || role == roleParticipant || role == roleVisitor:
		if o := r.byReal[st.From.String()]; o == nil || o.role != roleModerator {
			r.fail(st, stanza.Forbidden, "Only moderators may see role lists")
			return
		}
		for _, o := range r.occupants() {
			if o.role == role {
				out.Append(router.NewElement(NSAdmin, "item", "affiliation", r.affiliation(o.real), "role", o.role,
					"nick", o.nick, "jid", o.real.String()))
			}
		}
	case aff == affMember || aff == affOutcast || aff == affAdmin || aff == affOwner:
		need := affAdmin
		if aff == affAdmin || aff == affOwner {
			need = affOwner
		}
		if affRank[me] < affRank[need] {
			r.fail(st, stanza.Forbidden, "You may not see this list")
			return
		}
		for _, a := range r.withAffiliation(aff) {
			it := router.NewElement(NSAdmin, "item", "affiliation", aff, "jid", a.JID.String())
			if a.Nick != "" {
				it.SetAttr("nick", a.Nick)
			}
			if a.Reason != "" {
				it.Append(router.NewElement(NSAdmin, "reason").AppendText(a.Reason))
			}
			out.Append(it)
		}
	default:
		r.fail(st, stanza.BadRequest, "No such role or affiliation")
		return
	}
	r.send(st.Reply(out))
}

// change is one item of an admin request, checked.
type change struct {
	// target is the occupant of a role change.
	target *occupant
	role   string
	// who is the bare JID of an affiliation change.
	who    jid.JID
	aff    string
	nick   string
	reason string
}

// adminSet applies the items of a muc#admin request (§8, §9, §10): role
// changes by nick, affiliation changes by JID, all or none of them.
func (r *room) adminSet(ctx context.Context, st *router.Stanza, q *router.Element) {
	actor := r.byReal[st.From.String()]
	me := r.affiliation(st.From)
	var changes []change
	for _, item := range q.Elements() {
		if item.Name.Space != NSAdmin || item.Name.Local != "item" {
			continue
		}
		c, cond, text := r.checkItem(actor, me, item)
		if cond != "" {
			r.fail(st, cond, text)
			return
		}
		changes = append(changes, c)
	}
	if len(changes) == 0 {
		r.fail(st, stanza.BadRequest, "No items")
		return
	}
	if cond := r.checkOwnersLeft(changes); cond != "" {
		r.fail(st, cond, "A room needs an owner")
		return
	}
	actorNick := ""
	if actor != nil {
		actorNick = actor.nick
	}
	var saved []storage.RoomAffiliation
	for _, c := range changes {
		if c.target != nil {
			r.applyRole(c, actorNick)
		} else {
			saved = append(saved, r.applyAffiliation(c, actorNick))
		}
	}
	if err := r.saveAffiliations(ctx, saved); err != nil {
		r.m.log.Error("muc: save affiliations", "room", r.jid, "err", err)
		r.fail(st, stanza.InternalServerError, "")
		return
	}
	r.send(st.Reply())
}

// checkItem checks one item of an admin request from actor (nil if not
// an occupant) with affiliation me.
func (r *room) checkItem(actor *occupant, me string, item *router.Element) (change, stanza.Condition, string) {
	c := change{reason: childText(item, NSAdmin, "reason")}
	if role := item.Get("role"); role != "" {
		if _, ok := roleRank[role]; !ok {
			return c, stanza.BadRequest, "No such role"
		}
		if actor == nil || actor.role != roleModerator {
			return c, stanza.Forbidden, "Only moderators may change roles"
		}
		target := r.occ[item.Get("nick")]
		if target == nil {
			return c, stanza.ItemNotFound, "No such occupant"
		}
		taff := r.affiliation(target.real)
		switch {
		case role == roleModerator || target.role == roleModerator && role != roleModerator:
			// Granting or revoking moderator is for admins (§9.6, §9.7),
			// and never of an admin or owner.
			if affRank[me] < affRank[affAdmin] || (role != roleModerator && affRank[taff] >= affRank[affAdmin]) {
				return c, stanza.NotAllowed, "You may not change this occupant's moderator status"
			}
		case affRank[taff] >= affRank[affAdmin] || affRank[taff] > affRank[me]:
			return c, stanza.NotAllowed, "You may not change the role of this occupant"
		}
		c.target, c.role = target, role
		return c, "", ""
	}
	aff := item.Get("affiliation")
	if _, ok := affRank[aff]; !ok {
		return c, stanza.BadRequest, "Give a role or an affiliation"
	}
	who, err := jid.Parse(item.Get("jid"))
	if err != nil || item.Get("jid") == "" {
		return c, stanza.BadRequest, "Give the JID of an affiliation change"
	}
	who = who.Bare()
	old := r.affiliation(who)
	if a, ok := r.affs[who.String()]; ok {
		c.nick = a.Nick
	}
	switch {
	case me == affOwner:
	case me == affAdmin && affRank[old] < affRank[affAdmin] && affRank[aff] < affRank[affAdmin]:
	default:
		return c, stanza.NotAllowed, "You may not make this affiliation change"
	}
	c.who, c.aff = who, aff
	return c, "", ""
}

// checkOwnersLeft refuses a request that would leave a room without
// owners (§10.9).
func (r *room) checkOwnersLeft(changes []change) stanza.Condition {
	owners := map[string]bool{}
	for k, a := range r.affs {
		if a.Affiliation == affOwner {
			owners[k] = true
		}
	}
	for _, c := range changes {
		if c.target != nil {
			continue
		}
		if c.aff == affOwner {
			owners[c.who.String()] = true
		} else {
			delete(owners, c.who.String())
		}
	}
	if len(owners) == 0 {
		return stanza.Conflict
	}
	return ""
}

// applyRole changes an occupant's role: none is a kick (307), anything
// else a presence broadcast with the new role (§8.2-8.5, §9.6, §9.7).
func (r *room) applyRole(c change, actor string) {
	if c.role == roleNone {
		r.remove(c.target, actor, c.reason, statusKicked)
		return
	}
	c.target.role = c.role
	r.broadcastPresenceWith(c.target, actor, c.reason)
}

// broadcastPresenceWith is broadcastPresence with the actor and reason
// of a change in the item.
func (r *room) broadcastPresenceWith(o *occupant, actor, reason string) {
	for _, to := range r.occupants() {
		r.send(r.presenceOf(o, to, nil, func(item *router.Element) {
			if actor != "" {
				item.Append(router.NewElement(NSUser, "actor", "nick", actor))
			}
			if reason != "" {
				item.Append(router.NewElement(NSUser, "reason").AppendText(reason))
			}
		}))
	}
}

// applyAffiliation changes an affiliation and what it means for the
// occupants of that user: a ban removes them (301), losing membership of
// a members-only room removes them (321), other changes give them the
// role of the new affiliation. It returns the entry to store.
func (r *room) applyAffiliation(c change, actor string) storage.RoomAffiliation {
	entry := storage.RoomAffiliation{JID: c.who, Affiliation: c.aff, Nick: c.nick, Reason: c.reason}
	if c.aff == affNone {
		delete(r.affs, c.who.String())
	} else {
		r.affs[c.who.String()] = entry
	}
	for _, o := range r.occupants() {
		if o.real.Bare().String() != c.who.String() {
			continue
		}
		switch {
		case c.aff == affOutcast:
			r.remove(o, actor, c.reason, statusBanned)
		case r.cfg.MembersOnly && affRank[c.aff] < affRank[affMember]:
			r.remove(o, actor, c.reason, statusAffiliation)
		default:
			o.role = r.defaultRole(c.aff)
			r.broadcastPresenceWith(o, actor, c.reason)
		}
	}
	return entry
}
