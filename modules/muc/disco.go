package muc

import (
	"context"
	"sort"
	"strconv"

	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/modules/mam/query"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// nodeReservedNick is the disco node of §7.12: the nick the asker
// registered with the room.
const nodeReservedNick = "x-roomuser-item"

// ServiceFeatures are the disco features of each service (§6.2): what
// every room of it implements.
func ServiceFeatures() []string {
	return []string{nsDiscoInfo, nsDiscoItems, NS, NSStableID, NSSelfPing, NSOccupantID}
}

// serviceInfo answers disco#info on the service.
func (m *MUC) serviceInfo(_ context.Context, iq *router.Stanza) *router.Stanza {
	if q := iq.FirstChild(); q != nil && q.Get("node") != "" {
		return iq.ErrorReply(stanza.Cancel, stanza.ItemNotFound, "")
	}
	out := router.NewElement(nsDiscoInfo, "query")
	out.Append(router.NewElement(nsDiscoInfo, "identity", "category", "conference", "type", "text", "name", "Chatrooms"))
	for _, f := range ServiceFeatures() {
		out.Append(router.NewElement(nsDiscoInfo, "feature", "var", f))
	}
	return iq.Reply(out)
}

// serviceItems lists the service's public rooms (§6.3): not the hidden
// ones, nor those still locked.
func (m *MUC) serviceItems(_ context.Context, iq *router.Stanza) *router.Stanza {
	if q := iq.FirstChild(); q != nil && q.Get("node") != "" {
		return iq.ErrorReply(stanza.Cancel, stanza.ItemNotFound, "")
	}
	type item struct{ jid, name string }
	var items []item
	for _, r := range m.roomsOf(iq.To.Domainpart()) {
		r.mu.Lock()
		if !r.gone && !r.fresh && !r.locked && r.cfg.Public {
			items = append(items, item{r.jid.String(), r.cfg.Name})
		}
		r.mu.Unlock()
	}
	sort.Slice(items, func(i, j int) bool { return items[i].jid < items[j].jid })
	out := router.NewElement(nsDiscoItems, "query")
	for _, it := range items {
		e := router.NewElement(nsDiscoItems, "item", "jid", it.jid)
		if it.name != "" {
			e.SetAttr("name", it.name)
		}
		out.Append(e)
	}
	return iq.Reply(out)
}

// features are the room's disco#info features (§6.4): what it is, by
// its configuration, and what it implements.
func (r *room) features() []string {
	c := r.cfg
	pick := func(b bool, yes, no string) string {
		if b {
			return yes
		}
		return no
	}
	fs := []string{NS, NSStableID, NSSelfPing, NSOccupantID, NSRegister, nsDiscoInfo,
		pick(c.Persistent, "muc_persistent", "muc_temporary"),
		pick(c.Public, "muc_public", "muc_hidden"),
		pick(c.MembersOnly, "muc_membersonly", "muc_open"),
		pick(c.Moderated, "muc_moderated", "muc_unmoderated"),
		pick(c.PasswordProtected, "muc_passwordprotected", "muc_unsecured"),
		pick(r.nonAnonymous(), "muc_nonanonymous", "muc_semianonymous"),
	}
	if c.Archive {
		// Queries on the room's archive, with the #extended fields.
		fs = append(fs, query.NS, query.NSExtended, NSTombstone)
	}
	if r.mayModerate() {
		fs = append(fs, NSModerate)
	}
	return fs
}

// discoInfo answers disco#info on the room (§6.4) with the muc#roominfo
// form, and on the reserved-nick node (§7.12).
func (r *room) discoInfo(st *router.Stanza, node string) *router.Stanza {
	out := router.NewElement(nsDiscoInfo, "query")
	switch node {
	case "":
	case nodeReservedNick:
		out.SetAttr("node", node)
		if a, ok := r.affs[st.From.Bare().String()]; ok && a.Nick != "" {
			out.Append(router.NewElement(nsDiscoInfo, "identity", "category", "conference", "type", "text", "name", a.Nick))
		}
		return st.Reply(out)
	default:
		return errorFrom(st, r.jid, stanza.ItemNotFound, "")
	}
	name := r.cfg.Name
	if name == "" {
		name = r.jid.Localpart()
	}
	out.Append(router.NewElement(nsDiscoInfo, "identity", "category", "conference", "type", "text", "name", name))
	for _, f := range r.features() {
		out.Append(router.NewElement(nsDiscoInfo, "feature", "var", f))
	}
	x := router.NewElement(nsData, "x", "type", "result")
	x.Append(field("FORM_TYPE", "hidden", "", formRoomInfo))
	x.Append(field("muc#roominfo_description", "text-single", "Description", r.cfg.Description))
	x.Append(field("muc#roominfo_subject", "text-single", "Current Discussion Topic", r.subject.text))
	x.Append(field("muc#roominfo_occupants", "text-single", "Number of occupants", strconv.Itoa(len(r.occ))))
	x.Append(field("muc#roominfo_lang", "text-single", "Language of discussion", r.cfg.Language))
	x.Append(field("muc#roomconfig_roomname", "text-single", "Title", r.cfg.Name))
	x.Append(field("muc#roomconfig_changesubject", "boolean", "Subject can be modified", boolValue(r.cfg.ChangeSubject)))
	x.Append(field("muc#maxhistoryfetch", "text-single", "Maximum Number of History Messages Returned by Room", strconv.Itoa(r.historyLength())))
	var owners []string
	for _, a := range r.withAffiliation(affOwner) {
		owners = append(owners, a.JID.String())
	}
	if r.nonAnonymous() {
		x.Append(field("muc#roominfo_contactjid", "jid-multi", "Contact Addresses", owners...))
	}
	out.Append(x)
	return st.Reply(out)
}

// registerGet answers a registration request (§7.10): the registered
// nick, or the muc#register form.
func (r *room) registerGet(st *router.Stanza) {
	aff := r.affiliation(st.From)
	q := router.NewElement(NSRegister, "query")
	if a, ok := r.affs[st.From.Bare().String()]; ok && a.Nick != "" && affRank[aff] >= affRank[affMember] {
		q.Append(router.NewElement(NSRegister, "registered"), router.NewElement(NSRegister, "username").AppendText(a.Nick))
		r.send(st.Reply(q))
		return
	}
	if cond, text := r.mayRegister(aff); cond != "" {
		r.fail(st, cond, text)
		return
	}
	q.Append(router.NewElement(NSRegister, "instructions").AppendText("To register with this room, choose the nickname reserved for you."))
	x := router.NewElement(nsData, "x", "type", "form")
	x.Append(router.NewElement(nsData, "title").AppendText("Registration with " + r.jid.String()))
	x.Append(field("FORM_TYPE", "hidden", "", formRegister))
	nick := field("muc#register_roomnick", "text-single", "Desired Nickname")
	nick.Append(router.NewElement(nsData, "required"))
	x.Append(nick)
	q.Append(x)
	r.send(st.Reply(q))
}

// mayRegister refuses registration to outcasts and, in a members-only
// room, to anyone who is not a member already: registering makes a
// member, which only admins may do there.
func (r *room) mayRegister(aff string) (stanza.Condition, string) {
	switch {
	case aff == affOutcast:
		return stanza.Forbidden, "You are banned from this room"
	case r.cfg.MembersOnly && affRank[aff] < affRank[affMember]:
		return stanza.NotAllowed, "Only members may register with this room"
	}
	return "", ""
}

// registerSet registers a nick (and membership) with the room, or
// removes the registration (§7.10).
func (r *room) registerSet(ctx context.Context, st *router.Stanza, q *router.Element) {
	who := st.From.Bare()
	aff := r.affiliation(st.From)
	entry, had := r.affs[who.String()]
	if !had {
		entry = affiliationOf(who, affNone)
	}
	if q.Child(NSRegister, "remove") != nil {
		if !had {
			r.fail(st, stanza.ItemNotFound, "You are not registered")
			return
		}
		entry.Nick = ""
		if entry.Affiliation == affMember {
			entry.Affiliation = affNone
		}
		r.setEntry(ctx, st, entry)
		return
	}
	if cond, text := r.mayRegister(aff); cond != "" {
		r.fail(st, cond, text)
		return
	}
	x := q.Child(nsData, "x")
	if x == nil || x.Get("type") != "submit" || formType(x) != formRegister {
		r.fail(st, stanza.BadRequest, "Submit the muc#register form")
		return
	}
	nick := formValues(x)["muc#register_roomnick"]
	if nick == "" {
		r.fail(st, stanza.NotAcceptable, "A nickname is required")
		return
	}
	if _, err := r.occupantJIDChecked(nick); err != nil {
		r.fail(st, stanza.NotAcceptable, "That nickname is not valid")
		return
	}
	if by, reserved := r.reservedBy(nick); reserved && by != who.String() {
		r.fail(st, stanza.Conflict, "That nickname is registered by another user")
		return
	}
	if o, inUse := r.occ[nick]; inUse && o.real.Bare().String() != who.String() {
		r.fail(st, stanza.Conflict, "That nickname is in use")
		return
	}
	entry.Nick = nick
	if affRank[entry.Affiliation] < affRank[affMember] {
		entry.Affiliation = affMember
	}
	r.setEntry(ctx, st, entry)
}

// setEntry stores one list entry and answers st.
func (r *room) setEntry(ctx context.Context, st *router.Stanza, entry storage.RoomAffiliation) {
	old, had := r.affs[entry.JID.String()]
	if entry.Affiliation == affNone {
		delete(r.affs, entry.JID.String())
	} else {
		r.affs[entry.JID.String()] = entry
	}
	if err := r.saveAffiliations(ctx, []storage.RoomAffiliation{entry}); err != nil {
		r.m.log.Error("muc: save registration", "room", r.jid, "err", err)
		if had {
			r.affs[entry.JID.String()] = old
		} else {
			delete(r.affs, entry.JID.String())
		}
		r.fail(st, stanza.InternalServerError, "")
		return
	}
	if old.Affiliation != entry.Affiliation && (had || entry.Affiliation != affNone) {
		for _, o := range r.occupants() {
			if o.real.Bare().String() == entry.JID.String() {
				if r.cfg.MembersOnly && affRank[entry.Affiliation] < affRank[affMember] {
					r.remove(o, "", "", statusAffiliation)
					continue
				}
				o.role = r.defaultRole(entry.Affiliation)
				r.broadcastPresence(o, nil)
			}
		}
	}
	r.send(st.Reply())
}
