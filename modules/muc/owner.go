package muc

import (
	"context"
	"strconv"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// Form types and fields of the room configuration (§15.5.3) and of
// Prosody's archiving switch, which clients show as "archive".
const (
	formRoomConfig = NS + "#roomconfig"
	formRoomInfo   = NS + "#roominfo"
	formRegister   = NS + "#register"

	fName          = "muc#roomconfig_roomname"
	fDesc          = "muc#roomconfig_roomdesc"
	fLang          = "muc#roomconfig_lang"
	fPersistent    = "muc#roomconfig_persistentroom"
	fPublic        = "muc#roomconfig_publicroom"
	fMembersOnly   = "muc#roomconfig_membersonly"
	fModerated     = "muc#roomconfig_moderatedroom"
	fPasswordProt  = "muc#roomconfig_passwordprotectedroom"
	fSecret        = "muc#roomconfig_roomsecret"
	fWhois         = "muc#roomconfig_whois"
	fMaxUsers      = "muc#roomconfig_maxusers"
	fAllowInvites  = "muc#roomconfig_allowinvites"
	fChangeSubject = "muc#roomconfig_changesubject"
	fHistoryLength = "muc#roomconfig_historylength"
	fMaxHistory    = "muc#maxhistoryfetch"
	fArchive       = "muc#roomconfig_enablearchiving"
	fAllowPM       = "muc#roomconfig_allowpm"
)

// ownerGet returns the configuration form to an owner (§10.1.3, §10.2).
func (r *room) ownerGet(st *router.Stanza) {
	if r.affiliation(st.From) != affOwner {
		r.fail(st, stanza.Forbidden, "Only owners may configure the room")
		return
	}
	r.send(st.Reply(router.NewElement(NSOwner, "query").Append(r.configForm())))
}

// configForm is the muc#roomconfig form with the current values.
func (r *room) configForm() *router.Element {
	c := r.cfg
	x := router.NewElement(nsData, "x", "type", "form")
	x.Append(router.NewElement(nsData, "title").AppendText("Configuration for " + r.jid.String()))
	x.Append(field("FORM_TYPE", "hidden", "", formRoomConfig))
	x.Append(field(fName, "text-single", "Title", c.Name))
	x.Append(field(fDesc, "text-single", "Description", c.Description))
	x.Append(field(fLang, "text-single", "Language tag for room (e.g. 'en', 'de', 'fr')", c.Language))
	x.Append(field(fPersistent, "boolean", "Persistent (room should remain even when it is empty)", boolValue(c.Persistent)))
	x.Append(field(fPublic, "boolean", "Include room information in public lists", boolValue(c.Public)))
	x.Append(field(fMembersOnly, "boolean", "Only allow members to join", boolValue(c.MembersOnly)))
	x.Append(field(fModerated, "boolean", "Moderated (only participants and moderators may speak)", boolValue(c.Moderated)))
	x.Append(field(fPasswordProt, "boolean", "Password protected", boolValue(c.PasswordProtected)))
	x.Append(field(fSecret, "text-private", "Password", c.Password))
	whois := field(fWhois, "list-single", "Addresses (JIDs) of room occupants may be viewed by", c.Whois)
	whois.Append(option("Moderators only", whoisModerators), option("Anyone", whoisAnyone))
	x.Append(whois)
	max := field(fMaxUsers, "list-single", "Maximum number of occupants", strconv.Itoa(r.maxUsers()))
	for _, n := range []int{10, 20, 30, 50, 100, 1000} {
		if n <= r.m.opts.MaxOccupants {
			max.Append(option(strconv.Itoa(n), strconv.Itoa(n)))
		}
	}
	x.Append(max)
	x.Append(field(fAllowInvites, "boolean", "Allow members to invite new members", boolValue(c.AllowInvites)))
	x.Append(field(fChangeSubject, "boolean", "Allow anyone to set the room's subject", boolValue(c.ChangeSubject)))
	x.Append(field(fHistoryLength, "text-single", "Maximum number of history messages returned by room", strconv.Itoa(r.historyLength())))
	x.Append(field(fArchive, "boolean", "Archive chat on server", boolValue(c.Archive)))
	pm := field(fAllowPM, "list-single", "Allow private messages from", c.AllowPM)
	pm.Append(option("Everyone", "anyone"), option("Participants", "participants"), option("Moderators", "moderators"), option("Nobody", "none"))
	x.Append(pm)
	return x
}

// ownerSet applies a configuration (§10.1.3, §10.2), an instant room's
// empty submission (§10.1.2), a cancellation, or a destruction (§10.9).
func (r *room) ownerSet(ctx context.Context, st *router.Stanza, q *router.Element) {
	if r.affiliation(st.From) != affOwner {
		r.fail(st, stanza.Forbidden, "Only owners may configure or destroy the room")
		return
	}
	if d := q.Child(NSOwner, "destroy"); d != nil {
		var alt jid.JID
		if s := d.Get("jid"); s != "" {
			j, err := jid.Parse(s)
			if err != nil {
				r.fail(st, stanza.JIDMalformed, "The alternate venue is not a JID")
				return
			}
			alt = j
		}
		if err := r.destroy(ctx, alt, childText(d, NSOwner, "reason"), childText(d, NSOwner, "password")); err != nil {
			r.m.log.Error("muc: destroy room", "room", r.jid, "err", err)
			r.fail(st, stanza.InternalServerError, "")
			return
		}
		r.send(st.Reply())
		return
	}
	x := q.Child(nsData, "x")
	if x == nil {
		r.fail(st, stanza.BadRequest, "Send a configuration form or a destroy request")
		return
	}
	switch x.Get("type") {
	case "cancel":
		if r.locked {
			if err := r.destroy(ctx, jid.JID{}, "", ""); err != nil {
				r.m.log.Error("muc: destroy cancelled room", "room", r.jid, "err", err)
			}
		}
		r.send(st.Reply())
		return
	case "submit":
	default:
		r.fail(st, stanza.BadRequest, "The form must be a submission")
		return
	}
	if ft := formType(x); ft != "" && ft != formRoomConfig {
		r.fail(st, stanza.BadRequest, "Not a room configuration form")
		return
	}
	cfg, ok := r.parseConfig(formValues(x))
	if !ok {
		r.fail(st, stanza.NotAcceptable, "A field has a value the room does not accept")
		return
	}
	if err := r.configure(ctx, cfg); err != nil {
		r.m.log.Error("muc: save configuration", "room", r.jid, "err", err)
		r.fail(st, stanza.InternalServerError, "")
		return
	}
	r.send(st.Reply())
}

// parseConfig returns the configuration a submitted form asks for:
// fields left out keep their value.
func (r *room) parseConfig(v map[string]string) (storage.RoomConfig, bool) {
	c := r.cfg
	text := func(k string, dst *string) {
		if s, ok := v[k]; ok {
			*dst = s
		}
	}
	ok := true
	flag := func(k string, dst *bool) {
		if s, present := v[k]; present {
			b, valid := parseBool(s)
			ok = ok && valid
			*dst = b
		}
	}
	number := func(k string, dst *int, max int) {
		if s, present := v[k]; present {
			if s == "none" || s == "" {
				*dst = 0
				return
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n > max {
				ok = false
				return
			}
			*dst = n
		}
	}
	text(fName, &c.Name)
	text(fDesc, &c.Description)
	text(fLang, &c.Language)
	text(fSecret, &c.Password)
	flag(fPersistent, &c.Persistent)
	flag(fPublic, &c.Public)
	flag(fMembersOnly, &c.MembersOnly)
	flag(fModerated, &c.Moderated)
	flag(fPasswordProt, &c.PasswordProtected)
	flag(fAllowInvites, &c.AllowInvites)
	flag(fChangeSubject, &c.ChangeSubject)
	flag(fArchive, &c.Archive)
	number(fMaxUsers, &c.MaxUsers, r.m.opts.MaxOccupants)
	number(fMaxHistory, &c.HistoryLength, r.m.opts.MaxHistory)
	number(fHistoryLength, &c.HistoryLength, r.m.opts.MaxHistory)
	if s, present := v[fWhois]; present {
		ok = ok && (s == whoisModerators || s == whoisAnyone)
		c.Whois = s
	}
	if s, present := v[fAllowPM]; present {
		ok = ok && (s == "anyone" || s == "participants" || s == "moderators" || s == "none")
		c.AllowPM = s
	}
	if _, given := v[fPasswordProt]; !given && c.Password != "" {
		c.PasswordProtected = true
	}
	if c.PasswordProtected && c.Password == "" {
		ok = false
	}
	return c, ok
}

// configure applies a new configuration: the room unlocks, is stored or
// forgotten by the store as it becomes persistent or not, non-members
// leave a room that became members-only (322), and occupants hear of the
// change (104, with 170-173 for logging and anonymity, §10.2.1).
func (r *room) configure(ctx context.Context, cfg storage.RoomConfig) error {
	old, wasLocked := r.cfg, r.locked
	r.cfg, r.locked = cfg, false
	if n := r.historyLength(); len(r.history) > n {
		r.history = append(r.history[:0:0], r.history[len(r.history)-n:]...)
	}
	switch {
	case cfg.Persistent:
		if err := r.m.store.PutRoom(ctx, r.stored()); err != nil {
			r.cfg, r.locked = old, wasLocked
			return err
		}
		if !old.Persistent {
			affs := make([]storage.RoomAffiliation, 0, len(r.affs))
			for _, a := range r.affs {
				affs = append(affs, a)
			}
			if err := r.m.store.SetAffiliations(ctx, r.jid, affs); err != nil {
				return err
			}
		}
	case old.Persistent:
		if err := r.m.store.DeleteRoom(ctx, r.jid); err != nil {
			return err
		}
	}
	if cfg.MembersOnly && !old.MembersOnly {
		for _, o := range r.occupants() {
			if affRank[r.affiliation(o.real)] < affRank[affMember] {
				r.remove(o, "", "", statusMembersOnly)
			}
		}
	}
	if wasLocked {
		return nil
	}
	codes := []int{statusConfigChanged}
	if cfg.Archive != old.Archive {
		if cfg.Archive {
			codes = append(codes, statusLogging)
		} else {
			codes = append(codes, statusNoLogging)
		}
	}
	if cfg.Whois != old.Whois {
		if cfg.Whois == whoisAnyone {
			codes = append(codes, statusNowNonAnon)
		} else {
			codes = append(codes, statusNowSemiAnon)
		}
	}
	for _, o := range r.occupants() {
		m := newStanza(router.KindMessage, r.jid, o.real, "type", "groupchat", "id", router.NewID())
		x := router.NewElement(NSUser, "x")
		addCodes(x, codes...)
		m.Append(x)
		r.send(m)
	}
	return nil
}

// destroy ends the room (§10.9): every occupant leaves with the
// destruction notice (alternate venue and reason), and the store forgets
// the room, its affiliations and its archive.
func (r *room) destroy(ctx context.Context, alt jid.JID, reason, password string) error {
	for _, o := range r.occupants() {
		p := newStanza(router.KindPresence, r.occupantJID(o.nick), o.real, "type", "unavailable")
		x := router.NewElement(NSUser, "x")
		x.Append(router.NewElement(NSUser, "item", "affiliation", affNone, "role", roleNone))
		d := router.NewElement(NSUser, "destroy")
		if alt.Domainpart() != "" {
			d.SetAttr("jid", alt.String())
		}
		if reason != "" {
			d.Append(router.NewElement(NSUser, "reason").AppendText(reason))
		}
		if password != "" {
			d.Append(router.NewElement(NSUser, "password").AppendText(password))
		}
		x.Append(d)
		p.Append(x)
		r.send(p)
		r.drop(o)
	}
	r.gone = true
	if err := r.m.store.DeleteRoom(ctx, r.jid); err != nil {
		return err
	}
	if _, err := r.m.archives.Purge(ctx, r.jid, time.Time{}); err != nil {
		return err
	}
	return nil
}

// field is a data form field with its values.
func field(v, typ, label string, values ...string) *router.Element {
	f := router.NewElement(nsData, "field", "var", v, "type", typ, "label", label)
	for _, val := range values {
		f.Append(router.NewElement(nsData, "value").AppendText(val))
	}
	return f
}

// option is a list field's option.
func option(label, value string) *router.Element {
	return router.NewElement(nsData, "option", "label", label).Append(router.NewElement(nsData, "value").AppendText(value))
}

// formType is a form's FORM_TYPE, "" if it has none.
func formType(x *router.Element) string { return formValues(x)["FORM_TYPE"] }

// formValues maps each field of a form to its first value ("" for a
// field without one).
func formValues(x *router.Element) map[string]string {
	out := map[string]string{}
	for _, f := range x.Elements() {
		if f.Name.Space != nsData || f.Name.Local != "field" || f.Get("var") == "" {
			continue
		}
		out[f.Get("var")] = childText(f, nsData, "value")
	}
	return out
}

// parseBool reads an XEP-0004 boolean.
func parseBool(s string) (value, ok bool) {
	switch s {
	case "1", "true":
		return true, true
	case "0", "false", "":
		return false, true
	}
	return false, false
}

// isTrue tells whether s is a true XEP-0004 boolean.
func isTrue(s string) bool { b, _ := parseBool(s); return b }

// boolValue writes an XEP-0004 boolean.
func boolValue(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
