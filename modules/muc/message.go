package muc

import (
	"context"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// Namespaces of the forms a room exchanges in messages.
const (
	formRequest = NS + "#request"
)

// message handles a message to the room itself: groupchat and subject
// changes (§7.4, §8.1), mediated invitations and declines (§7.8.2),
// voice requests and their approval (§7.13, §8.6).
func (r *room) message(ctx context.Context, st *router.Stanza) {
	if st.Type() == "error" {
		// The room's message bounced off an occupant: it is gone (§13.1).
		if o := r.byReal[st.From.String()]; o != nil {
			r.remove(o, "", "", statusKicked, statusTechnicalError)
		}
		return
	}
	if x := st.Child(NSUser, "x"); x != nil && st.Type() != "groupchat" {
		if inv := x.Child(NSUser, "invite"); inv != nil {
			r.invite(st, inv)
			return
		}
		if dec := x.Child(NSUser, "decline"); dec != nil {
			r.decline(st, dec)
			return
		}
	}
	if form := st.Child(nsData, "x"); form != nil && st.Type() != "groupchat" && formType(form) == formRequest {
		r.voiceForm(st, form)
		return
	}
	if st.Type() != "groupchat" {
		r.fail(st, stanza.BadRequest, "Send groupchat messages to the room")
		return
	}
	r.groupchat(ctx, st)
}

// groupchat reflects an occupant's groupchat message to every occupant
// (§7.4), or changes the subject (§8.1).
func (r *room) groupchat(ctx context.Context, st *router.Stanza) {
	o := r.byReal[st.From.String()]
	if o == nil {
		r.fail(st, stanza.NotAcceptable, "You are not in the room")
		return
	}
	if cond, text := r.limit(o, st); cond != "" {
		r.fail(st, cond, text)
		return
	}
	subject := st.Child("", "subject")
	if subject != nil && st.Child("", "body") == nil {
		r.changeSubject(ctx, st, o, subject.Text())
		return
	}
	if o.role == roleVisitor || o.role == roleNone {
		r.fail(st, stanza.Forbidden, "You have no voice in this room")
		return
	}
	now := r.m.now().UTC()
	msg := r.reflect(st, o, now)
	if st.Child("", "body") != nil {
		r.remember(msg, now)
		if r.cfg.Archive {
			r.archive(ctx, msg, o, now)
		}
	}
	for _, to := range r.occupants() {
		r.send(r.copyTo(msg, to.real))
	}
}

// reflect is the message as the room sends it: from the sender's
// occupant JID, with its id kept (muc#stable_id), the room's XEP-0359
// stanza-id and the sender's XEP-0421 occupant id, without any of those
// the sender put on it.
func (r *room) reflect(st *router.Stanza, o *occupant, now time.Time) *router.Element {
	msg := router.NewElement("", "message", "type", "groupchat", "from", r.occupantJID(o.nick).String())
	id := st.ID()
	if id == "" {
		id = router.NewID()
	}
	msg.SetAttr("id", id)
	if lang := st.Get("xml:lang"); lang != "" {
		msg.SetAttr("xml:lang", lang)
	}
	for _, n := range st.Children {
		if c, ok := n.(*router.Element); ok {
			switch {
			case c.Name.Space == NSOccupantID:
				continue
			case c.Name.Space == NSStanzaID && c.Name.Local == "stanza-id" && c.Get("by") == r.jid.String():
				continue
			}
			msg.Append(c.Copy())
		}
	}
	msg.Append(router.NewElement(NSStanzaID, "stanza-id", "id", storage.NewArchiveID(now), "by", r.jid.String()))
	msg.Append(router.NewElement(NSOccupantID, "occupant-id", "id", r.occupantID(o.real)))
	return msg
}

// remember adds a message to the discussion history, keeping at most
// the configured length.
func (r *room) remember(msg *router.Element, at time.Time) {
	n := r.historyLength()
	if n == 0 {
		r.history = nil
		return
	}
	r.history = append(r.history, historyEntry{msg: msg, at: at})
	if len(r.history) > n {
		r.history = append(r.history[:0:0], r.history[len(r.history)-n:]...)
	}
}

// historyLength is how many messages the room keeps for newcomers.
func (r *room) historyLength() int {
	n := r.cfg.HistoryLength
	if n > r.m.opts.MaxHistory {
		n = r.m.opts.MaxHistory
	}
	if n < 0 {
		n = 0
	}
	return n
}

// changeSubject sets the subject if o may (§8.1) and tells everyone.
func (r *room) changeSubject(ctx context.Context, st *router.Stanza, o *occupant, text string) {
	if !(o.role == roleModerator || r.cfg.ChangeSubject && o.role == roleParticipant) {
		r.fail(st, stanza.Forbidden, "You may not change the subject")
		return
	}
	r.subject.text, r.subject.by, r.subject.at = text, o.nick, r.m.now().UTC()
	if err := r.save(ctx); err != nil {
		r.m.log.Error("muc: save subject", "room", r.jid, "err", err)
	}
	for _, to := range r.occupants() {
		m := newStanza(router.KindMessage, r.occupantJID(o.nick), to.real, "type", "groupchat", "id", st.ID())
		if st.ID() == "" {
			m.SetAttr("id", router.NewID())
		}
		m.Append(router.NewElement("", "subject").AppendText(text))
		r.send(m)
	}
}

// private passes a private message from one occupant to another (§7.5),
// marked with an empty muc#user <x/> so that the recipient's server
// applies the carbons rules of XEP-0280 §6 for MUC private messages.
func (r *room) private(ctx context.Context, st *router.Stanza) {
	if st.Type() == "error" {
		if o := r.byReal[st.From.String()]; o != nil {
			r.remove(o, "", "", statusKicked, statusTechnicalError)
		}
		return
	}
	o := r.byReal[st.From.String()]
	if o == nil {
		r.fail(st, stanza.NotAcceptable, "You are not in the room")
		return
	}
	if st.Type() == "groupchat" {
		r.fail(st, stanza.BadRequest, "Private messages are not groupchat")
		return
	}
	to := r.occ[st.To.Resourcepart()]
	if to == nil {
		r.fail(st, stanza.ItemNotFound, "No such occupant")
		return
	}
	if !r.mayPM(o) {
		r.fail(st, stanza.Forbidden, "Private messages are not allowed in this room")
		return
	}
	if cond, text := r.limit(o, st); cond != "" {
		r.fail(st, cond, text)
		return
	}
	m := newStanza(router.KindMessage, r.occupantJID(o.nick), to.real)
	for _, a := range st.Attr {
		switch a.Name.Local {
		case "from", "to":
		default:
			m.Attr = append(m.Attr, a)
		}
	}
	hasX := false
	for _, n := range st.Children {
		if c, ok := n.(*router.Element); ok {
			if c.Name.Space == NSOccupantID {
				continue
			}
			hasX = hasX || c.Name.Space == NSUser && c.Name.Local == "x"
			m.Append(c.Copy())
		}
	}
	if !hasX {
		m.Append(router.NewElement(NSUser, "x"))
	}
	m.Append(router.NewElement(NSOccupantID, "occupant-id", "id", r.occupantID(o.real)))
	r.send(m)
}

// mayPM applies muc#roomconfig_allowpm to a sender.
func (r *room) mayPM(o *occupant) bool {
	switch r.cfg.AllowPM {
	case "none":
		return false
	case "moderators":
		return o.role == roleModerator
	case "participants":
		return roleRank[o.role] >= roleRank[roleParticipant]
	}
	return true
}

// limit applies the service's limits on messages to an occupant's
// message: its size, and the occupant's token bucket (one token per
// message, refilled at MessageRate per minute up to MessageBurst).
func (r *room) limit(o *occupant, st *router.Stanza) (stanza.Condition, string) {
	if len(st.String()) > r.m.opts.MaxMessageSize {
		return stanza.PolicyViolation, "The message is too large"
	}
	if !o.take(r.m.now(), float64(r.m.opts.MessageRate)/60, float64(r.m.opts.MessageBurst)) {
		return stanza.ResourceConstraint, "You are sending messages too fast"
	}
	return "", ""
}

// take takes one token from the bucket refilled at rate per second up to
// burst, and tells whether there was one.
func (o *occupant) take(now time.Time, rate, burst float64) bool {
	if elapsed := now.Sub(o.filled).Seconds(); elapsed > 0 {
		o.tokens += elapsed * rate
		if o.tokens > burst {
			o.tokens = burst
		}
	}
	o.filled = now
	if o.tokens < 1 {
		return false
	}
	o.tokens--
	return true
}

// invite passes a mediated invitation on (§7.8.2) from an occupant who
// may invite, and makes the invitee a member of a members-only room.
func (r *room) invite(st *router.Stanza, inv *router.Element) {
	o := r.byReal[st.From.String()]
	if o == nil {
		r.fail(st, stanza.NotAcceptable, "You are not in the room")
		return
	}
	to, err := jid.Parse(inv.Get("to"))
	if err != nil || inv.Get("to") == "" {
		r.fail(st, stanza.JIDMalformed, "The invitee's JID is not valid")
		return
	}
	aff := r.affiliation(o.real)
	if r.cfg.MembersOnly && !r.cfg.AllowInvites && affRank[aff] < affRank[affAdmin] {
		r.fail(st, stanza.Forbidden, "Only admins may invite to this room")
		return
	}
	if cond, text := r.limit(o, st); cond != "" {
		r.fail(st, cond, text)
		return
	}
	if r.cfg.MembersOnly && affRank[r.affiliation(to)] < affRank[affMember] {
		r.affs[to.Bare().String()] = affiliationOf(to.Bare(), affMember)
		if err := r.saveAffiliations(context.Background(), []storage.RoomAffiliation{r.affs[to.Bare().String()]}); err != nil {
			r.m.log.Error("muc: invitee membership", "room", r.jid, "err", err)
		}
	}
	r.invited[to.Bare().String()] = o.real
	m := newStanza(router.KindMessage, r.jid, to, "id", router.NewID())
	x := router.NewElement(NSUser, "x")
	out := router.NewElement(NSUser, "invite", "from", o.real.String())
	if reason := inv.Child(NSUser, "reason"); reason != nil {
		out.Append(reason.Copy())
	}
	x.Append(out)
	if r.cfg.PasswordProtected {
		x.Append(router.NewElement(NSUser, "password").AppendText(r.cfg.Password))
	}
	m.Append(x)
	r.send(m)
}

// decline passes an invitee's decline back to whoever invited it
// (§7.8.2); declines of invitations the room did not send are dropped.
func (r *room) decline(st *router.Stanza, dec *router.Element) {
	inviter, ok := r.invited[st.From.Bare().String()]
	if !ok {
		r.fail(st, stanza.NotAcceptable, "You were not invited")
		return
	}
	delete(r.invited, st.From.Bare().String())
	m := newStanza(router.KindMessage, r.jid, inviter, "id", router.NewID())
	x := router.NewElement(NSUser, "x")
	out := router.NewElement(NSUser, "decline", "from", st.From.Bare().String())
	if reason := dec.Child(NSUser, "reason"); reason != nil {
		out.Append(reason.Copy())
	}
	x.Append(out)
	m.Append(x)
	r.send(m)
}

// voiceForm handles the muc#request form: a visitor's request for voice
// (§7.13), passed to the moderators, or a moderator's approval (§8.6).
func (r *room) voiceForm(st *router.Stanza, form *router.Element) {
	o := r.byReal[st.From.String()]
	if o == nil {
		r.fail(st, stanza.NotAcceptable, "You are not in the room")
		return
	}
	fields := formValues(form)
	if form.Get("type") == "submit" && o.role == roleModerator && fields["muc#request_allow"] != "" {
		if !isTrue(fields["muc#request_allow"]) {
			return
		}
		target := r.occ[fields["muc#roomnick"]]
		if target == nil || target.role != roleVisitor {
			return
		}
		target.role = roleParticipant
		r.broadcastPresence(target, nil)
		return
	}
	if o.role != roleVisitor {
		r.fail(st, stanza.NotAcceptable, "You have voice already")
		return
	}
	if cond, text := r.limit(o, st); cond != "" {
		r.fail(st, cond, text)
		return
	}
	for _, mod := range r.occupants() {
		if mod.role != roleModerator {
			continue
		}
		m := newStanza(router.KindMessage, r.jid, mod.real, "id", router.NewID())
		x := router.NewElement(nsData, "x", "type", "form")
		x.Append(router.NewElement(nsData, "title").AppendText("Voice request"))
		x.Append(router.NewElement(nsData, "instructions").AppendText("To approve this request for voice, select the \"Grant voice to this person?\" checkbox and click OK. To skip this request, click the cancel button."))
		x.Append(field("FORM_TYPE", "hidden", "", formRequest))
		x.Append(field("muc#role", "list-single", "Requested role", roleParticipant))
		x.Append(field("muc#jid", "jid-single", "User ID", o.real.String()))
		x.Append(field("muc#roomnick", "text-single", "Room Nickname", o.nick))
		x.Append(field("muc#request_allow", "boolean", "Grant voice to this person?", "false"))
		m.Append(x)
		r.send(m)
	}
}
