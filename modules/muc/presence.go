package muc

import (
	"context"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// Status codes of XEP-0045 §15 that the service sends.
const (
	statusNonAnonymous   = 100
	statusConfigChanged  = 104
	statusSelf           = 110
	statusLogging        = 170
	statusNoLogging      = 171
	statusNowNonAnon     = 172
	statusNowSemiAnon    = 173
	statusCreated        = 201
	statusNickModified   = 210
	statusNewNick        = 303
	statusBanned         = 301
	statusKicked         = 307
	statusAffiliation    = 321
	statusMembersOnly    = 322
	statusShutdown       = 332
	statusTechnicalError = 333
)

// presence handles presence to an occupant JID (§7.2, §7.6, §7.7, §7.14).
func (r *room) presence(ctx context.Context, st *router.Stanza) {
	nick := st.To.Resourcepart()
	o := r.byReal[st.From.String()]
	switch st.Type() {
	case "":
		switch {
		case nick == "":
			r.fail(st, stanza.JIDMalformed, "A nick is needed to enter")
		case o == nil:
			r.join(ctx, st)
		case o.nick != nick:
			r.changeNick(st, o)
		default:
			o.pres = st.Element.Copy()
			r.broadcastPresence(o, nil)
		}
	case "unavailable":
		if o != nil {
			r.leave(o, st)
		}
	case "error":
		// An occupant's client or server refused what the room sent:
		// it is gone (§13.1).
		if o != nil {
			r.remove(o, "", "", statusKicked, statusTechnicalError)
		}
	}
}

// join is a non-occupant's available presence: enter the room, or create
// it if it is fresh (§7.2, §10.1).
func (r *room) join(ctx context.Context, st *router.Stanza) {
	x := st.Child(NS, "x")
	if x == nil {
		// Groupchat 1.0 or a desynchronised client (§7.2.24): tell it
		// plainly that it is not in the room.
		r.kickStranger(st)
		return
	}
	nick, real := st.To.Resourcepart(), st.From
	var codes []int
	if r.fresh {
		if cond, text := r.m.mayCreate(r.jid.Domainpart(), real); cond != "" {
			r.fail(st, cond, text)
			return
		}
		r.fresh, r.locked = false, true
		r.creator = real.Bare().String()
		r.m.countCreated(r.creator)
		r.affs[real.Bare().String()] = affiliationOf(real.Bare(), affOwner)
		codes = append(codes, statusCreated)
	} else {
		aff := r.affiliation(real)
		if cond, text := r.mayEnter(st, x, aff); cond != "" {
			r.fail(st, cond, text)
			return
		}
	}
	aff := r.affiliation(real)
	o := &occupant{nick: nick, real: real, role: r.defaultRole(aff), pres: st.Element.Copy(),
		tokens: float64(r.m.opts.MessageBurst), filled: r.m.now()}
	// The presence of those already in, then the newcomer's own, last
	// to itself (§7.2.3).
	for _, other := range r.occupants() {
		r.send(r.presenceOf(other, o, nil, nil))
	}
	r.occ[nick] = o
	r.byReal[real.String()] = o
	if r.nonAnonymous() {
		codes = append(codes, statusNonAnonymous)
	}
	if r.cfg.Archive {
		codes = append(codes, statusLogging)
	}
	if nickModified(st) {
		codes = append(codes, statusNickModified)
	}
	r.broadcastPresence(o, codes)
	r.sendHistory(ctx, o, x.Child(NS, "history"))
	r.sendSubject(o)
}

// mayEnter checks a join to an existing room (§7.2.6-7.2.11) and returns
// the error condition that refuses it, "" if none does.
func (r *room) mayEnter(st *router.Stanza, x *router.Element, aff string) (stanza.Condition, string) {
	nick := st.To.Resourcepart()
	switch {
	case r.locked && aff != affOwner:
		return stanza.ItemNotFound, "The room is locked until its owner configures it"
	case aff == affOutcast:
		return stanza.Forbidden, "You are banned from this room"
	case r.cfg.MembersOnly && affRank[aff] < affRank[affMember]:
		return stanza.RegistrationRequired, "The room is members-only"
	case r.cfg.PasswordProtected && affRank[aff] < affRank[affAdmin] && childText(x, NS, "password") != r.cfg.Password:
		return stanza.NotAuthorized, "A password is required to enter"
	}
	if _, taken := r.occ[nick]; taken {
		return stanza.Conflict, "That nick is in use"
	}
	if by, reserved := r.reservedBy(nick); reserved && by != st.From.Bare().String() {
		return stanza.Conflict, "That nick is registered by another user"
	}
	if len(r.occ) >= r.maxUsers() && affRank[aff] < affRank[affAdmin] {
		return stanza.ServiceUnavailable, "The room is full"
	}
	return "", ""
}

// kickStranger answers presence without the MUC <x/> from a non-occupant
// with the kick of §7.2.24 (110, 307, 333).
func (r *room) kickStranger(st *router.Stanza) {
	p := newStanza(router.KindPresence, st.To, st.From, "type", "unavailable")
	x := router.NewElement(NSUser, "x")
	item := router.NewElement(NSUser, "item", "affiliation", affNone, "role", roleNone)
	item.Append(router.NewElement(NSUser, "reason").AppendText("You are not in the room."))
	x.Append(item)
	addCodes(x, statusSelf, statusKicked, statusTechnicalError)
	p.Append(x)
	r.send(p)
}

// nickModified tells whether the service changed the nick the client
// asked for: the JID's resourcepart is the nick after PRECIS
// normalisation, which may differ from what the 'to' attribute spelled.
func nickModified(st *router.Stanza) bool {
	raw := st.Get("to")
	i := strings.IndexByte(raw, '/')
	return i >= 0 && raw[i+1:] != st.To.Resourcepart()
}

// changeNick is presence from an occupant to another nick (§7.6).
func (r *room) changeNick(st *router.Stanza, o *occupant) {
	nick := st.To.Resourcepart()
	if _, taken := r.occ[nick]; taken {
		r.fail(st, stanza.Conflict, "That nick is in use")
		return
	}
	if by, reserved := r.reservedBy(nick); reserved && by != o.real.Bare().String() {
		r.fail(st, stanza.Conflict, "That nick is registered by another user")
		return
	}
	old := o.nick
	// Unavailable from the old nick with the new one and 303, to all.
	for _, to := range r.occupants() {
		p := r.presenceOf(o, to, []int{statusNewNick}, func(item *router.Element) { item.SetAttr("nick", nick) })
		p.SetAttr("type", "unavailable")
		stripPresencePayload(p.Element)
		if to == o {
			p.SetAttr("id", st.ID()) // this presence answers st, not the last one
		}
		r.send(p)
	}
	delete(r.occ, old)
	o.nick = nick
	o.pres = st.Element.Copy()
	r.occ[nick] = o
	var codes []int
	if nickModified(st) {
		codes = append(codes, statusNickModified)
	}
	r.broadcastPresence(o, codes)
}

// leave is an occupant's unavailable presence (§7.14).
func (r *room) leave(o *occupant, st *router.Stanza) {
	o.role = roleNone
	for _, to := range r.occupants() {
		p := r.presenceOf(o, to, nil, nil)
		p.SetAttr("type", "unavailable")
		stripPresencePayload(p.Element)
		if to == o {
			p.SetAttr("id", st.ID())
		}
		if s := st.Child("", "status"); s != nil {
			p.Children = append([]router.Node{s.Copy()}, p.Children...)
		}
		r.send(p)
	}
	r.drop(o)
}

// drop forgets an occupant.
func (r *room) drop(o *occupant) {
	delete(r.occ, o.nick)
	delete(r.byReal, o.real.String())
}

// remove takes an occupant out of the room for a reason (kick, ban,
// affiliation change, shutdown): unavailable presence with the status
// codes given to all, the occupant included, and the actor's nick and the
// reason in the item (§8.2, §9.1).
func (r *room) remove(o *occupant, actor, reason string, codes ...int) {
	o.role = roleNone
	for _, to := range r.occupants() {
		p := r.presenceOf(o, to, codes, func(item *router.Element) {
			if actor != "" {
				item.Append(router.NewElement(NSUser, "actor", "nick", actor))
			}
			if reason != "" {
				item.Append(router.NewElement(NSUser, "reason").AppendText(reason))
			}
		})
		p.SetAttr("type", "unavailable")
		stripPresencePayload(p.Element)
		p.SetAttr("id", "") // the occupant sent nothing this answers
		r.send(p)
	}
	r.drop(o)
}

// shutdown removes every occupant with status 332 (§13.2).
func (r *room) shutdown() {
	for _, o := range r.occupants() {
		r.remove(o, "", "", statusShutdown)
	}
}

// broadcastPresence sends o's presence to every occupant, with codes (and
// 110) to o itself only.
func (r *room) broadcastPresence(o *occupant, selfCodes []int) {
	for _, to := range r.occupants() {
		var codes []int
		if to == o {
			codes = selfCodes
		}
		r.send(r.presenceOf(o, to, codes, nil))
	}
}

// presenceOf is o's presence as occupant to receives it: o's own presence
// (show, status, caps) from its occupant JID with the muc#user item, the
// real JID where to may see it, the status codes (110 added when to is o),
// and o's occupant id.
func (r *room) presenceOf(o, to *occupant, codes []int, item func(*router.Element)) *router.Stanza {
	p := newStanza(router.KindPresence, r.occupantJID(o.nick), to.real)
	if o.pres != nil {
		for _, n := range o.pres.Children {
			if c, ok := n.(*router.Element); ok {
				switch c.Name.Space {
				case NS, NSUser, NSOccupantID:
					continue
				}
				p.Append(c.Copy())
			} else {
				p.Children = append(p.Children, n)
			}
		}
		if id := o.pres.Get("id"); id != "" && to == o {
			p.SetAttr("id", id)
		}
	}
	x := router.NewElement(NSUser, "x")
	it := router.NewElement(NSUser, "item", "affiliation", r.affiliation(o.real), "role", o.role)
	if r.nonAnonymous() || to.role == roleModerator || to == o {
		it.SetAttr("jid", o.real.String())
	}
	if item != nil {
		item(it)
	}
	x.Append(it)
	if to == o {
		codes = append([]int{statusSelf}, codes...)
	}
	addCodes(x, codes...)
	p.Append(x)
	p.Append(router.NewElement(NSOccupantID, "occupant-id", "id", r.occupantID(o.real)))
	return p
}

// stripPresencePayload removes what an unavailable presence does not
// carry from a presence presenceOf built: show, priority, status, caps.
func stripPresencePayload(p *router.Element) {
	kept := p.Children[:0]
	for _, n := range p.Children {
		if c, ok := n.(*router.Element); ok && (c.Name.Space == NSUser || c.Name.Space == NSOccupantID) {
			kept = append(kept, c)
		}
	}
	p.Children = kept
}

// addCodes appends <status code='N'/> elements to x, sorted.
func addCodes(x *router.Element, codes ...int) {
	sorted := append([]int(nil), codes...)
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && sorted[j] < sorted[j-1]; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	for _, c := range sorted {
		x.Append(router.NewElement(NSUser, "status", "code", strconv.Itoa(c)))
	}
}

// sendHistory sends o the discussion history that h (the <history/> of
// the join, or nil) asks for (§7.2.14, §7.2.15): from the archive if the
// room archives, so that it survives a restart, else from memory.
func (r *room) sendHistory(ctx context.Context, o *occupant, h *router.Element) {
	maxStanzas, maxChars := r.historyLength(), -1
	var since time.Time
	if h != nil {
		if v, err := strconv.Atoi(h.Get("maxstanzas")); err == nil && v >= 0 && v < maxStanzas {
			maxStanzas = v
		}
		if v, err := strconv.Atoi(h.Get("maxchars")); err == nil && v >= 0 {
			maxChars = v
		}
		if v, err := strconv.Atoi(h.Get("seconds")); err == nil && v >= 0 {
			since = r.m.now().Add(-time.Duration(v) * time.Second)
		}
		if v := h.Get("since"); v != "" {
			if t, err := time.Parse(time.RFC3339, v); err == nil && t.After(since) {
				since = t
			}
		}
	}
	if maxStanzas == 0 || maxChars == 0 {
		return
	}
	entries := r.history
	if r.cfg.Archive {
		var err error
		if entries, err = r.archivedHistory(ctx, maxStanzas, since); err != nil {
			r.m.log.Error("muc: history from the archive", "room", r.jid, "err", err)
			entries = r.history
		}
	}
	// Newest first until a limit is reached, then sent oldest first.
	var picked []*router.Stanza
	chars := 0
	for i := len(entries) - 1; i >= 0 && len(picked) < maxStanzas; i-- {
		e := entries[i]
		if !since.IsZero() && !e.at.After(since) {
			break
		}
		m := r.copyTo(e.msg, o.real)
		m.Append(r.delay(e.at))
		if maxChars >= 0 {
			chars += len(m.String())
			if chars > maxChars {
				break
			}
		}
		picked = append(picked, m)
	}
	for i := len(picked) - 1; i >= 0; i-- {
		r.send(picked[i])
	}
}

// archivedHistory reads the last max messages archived after since (all
// for a zero since) as history entries, oldest first: as the room
// broadcast them, with the stanza-id they had and without the real JID
// the archive keeps. Tombstones of retracted messages are left out
// (XEP-0424 §6: a retracted message is not replayed to newcomers).
func (r *room) archivedHistory(ctx context.Context, max int, since time.Time) ([]historyEntry, error) {
	page, err := r.m.archives.Query(ctx, r.jid, storage.ArchiveQuery{LastPage: true, Max: max, Start: since})
	if err != nil {
		return nil, err
	}
	entries := make([]historyEntry, 0, len(page.Messages))
	for _, am := range page.Messages {
		msg, err := router.ParseElement(am.Stanza, router.NSClient)
		if err != nil {
			r.m.log.Error("muc: unreadable archived message", "room", r.jid, "id", am.ID, "err", err)
			continue
		}
		if msg.Child(NSRetract, "retracted") != nil {
			continue
		}
		hideRealJID(msg)
		msg.Append(router.NewElement(NSStanzaID, "stanza-id", "id", am.ID, "by", r.jid.String()))
		entries = append(entries, historyEntry{msg: msg, at: am.Stamp})
	}
	return entries, nil
}

// sendSubject sends o the subject, empty if none was ever set (§7.2.16).
func (r *room) sendSubject(o *occupant) {
	from := r.jid
	if r.subject.by != "" {
		from = r.occupantJID(r.subject.by)
	}
	m := newStanza(router.KindMessage, from, o.real, "type", "groupchat", "id", router.NewID())
	m.Append(router.NewElement("", "subject").AppendText(r.subject.text))
	if !r.subject.at.IsZero() {
		m.Append(r.delay(r.subject.at))
	}
	r.send(m)
}

// childText is the text of e's child space:local, "" if none.
func childText(e *router.Element, space, local string) string {
	if e == nil {
		return ""
	}
	if c := e.Child(space, local); c != nil {
		return c.Text()
	}
	return ""
}
