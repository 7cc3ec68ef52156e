package muc

import (
	"context"
	"errors"
	"slices"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// NSTombstone is the feature of a service whose archive keeps tombstones
// of retracted messages (XEP-0424 §5).
const NSTombstone = NSRetract + "#tombstone"

// mayModerate tells whether the room keeps messages that a moderator can
// retract (XEP-0425): in its archive or in its discussion history. A
// retraction names a message the room knows, or is item-not-found.
func (r *room) mayModerate() bool { return r.cfg.Archive || r.historyLength() > 0 }

// posted is a message of the room found by its stanza-id: as archived
// (with the real JID of its sender) or as kept in the history.
type posted struct {
	msg      *router.Element
	archived bool // in the archive, which keeps its tombstone
}

// find looks for the message the room gave the stanza-id id: in the
// archive if the room archives, else (or if it is not there) in the
// history. ok is false if the room knows no such message.
func (r *room) find(ctx context.Context, id string) (p posted, ok bool, err error) {
	if r.cfg.Archive {
		page, err := r.m.archives.Query(ctx, r.jid, storage.ArchiveQuery{IDs: []string{id}, Max: 1})
		if err != nil {
			return posted{}, false, err
		}
		if len(page.Messages) == 1 {
			msg, err := router.ParseElement(page.Messages[0].Stanza, router.NSClient)
			if err != nil {
				return posted{}, false, err
			}
			return posted{msg: msg, archived: true}, true, nil
		}
	}
	for _, e := range r.history {
		if stanzaIDOf(e.msg, r) == id {
			return posted{msg: e.msg}, true, nil
		}
	}
	return posted{}, false, nil
}

// findLive finds the message id that st retracts, one not retracted
// yet; if there is none it answers st with the error and returns false.
func (r *room) findLive(ctx context.Context, st *router.Stanza, id string) (posted, bool) {
	orig, ok, err := r.find(ctx, id)
	switch {
	case err != nil:
		r.m.log.Error("muc: find message to retract", "room", r.jid, "id", id, "err", err)
		r.fail(st, stanza.InternalServerError, "")
		return posted{}, false
	case !ok || isRetracted(orig.msg):
		r.fail(st, stanza.ItemNotFound, "No such message in this room")
		return posted{}, false
	}
	return orig, true
}

// stanzaIDOf is the stanza-id by the room on msg, "" if none.
func stanzaIDOf(msg *router.Element, r *room) string {
	for _, c := range msg.Elements() {
		if c.Name.Space == NSStanzaID && c.Name.Local == "stanza-id" && c.Get("by") == r.jid.String() {
			return c.Get("id")
		}
	}
	return ""
}

// isRetracted tells whether msg is a tombstone already.
func isRetracted(msg *router.Element) bool { return msg.Child(NSRetract, "retracted") != nil }

// moderate handles a moderator's request to retract an occupant's message
// (XEP-0425 §4): the room tells every occupant with a XEP-0424 retraction
// from the room, marked moderated by the moderator's occupant JID and
// occupant id, archives that message, and puts a tombstone in the place
// of the original in its archive (§5) and takes it out of the history,
// so that newcomers do not get it again.
func (r *room) moderate(ctx context.Context, st *router.Stanza, q *router.Element) {
	o := r.byReal[st.From.String()]
	if o == nil || o.role != roleModerator {
		r.fail(st, stanza.Forbidden, "Only moderators may retract the messages of others")
		return
	}
	id := q.Get("id")
	if id == "" || q.Child(NSRetract, "retract") == nil {
		r.fail(st, stanza.BadRequest, "Name the message by its stanza-id and retract it")
		return
	}
	if !r.mayModerate() {
		r.fail(st, stanza.ItemNotFound, "This room keeps no messages")
		return
	}
	orig, ok := r.findLive(ctx, st, id)
	if !ok {
		return
	}
	now := r.m.now().UTC()
	moderated := router.NewElement(NSModerate, "moderated", "by", r.occupantJID(o.nick).String())
	moderated.Append(router.NewElement(NSOccupantID, "occupant-id", "id", r.occupantID(o.real)))
	retract := router.NewElement(NSRetract, "retract", "id", id).Append(moderated)
	reason := q.Child(NSModerate, "reason")
	if reason != nil {
		retract.Append(router.NewElement(NSRetract, "reason").AppendText(reason.Text()))
	}
	msg := router.NewElement("", "message", "type", "groupchat", "from", r.jid.String(), "id", router.NewID())
	msg.Append(retract)
	msg.Append(router.NewElement(NSStanzaID, "stanza-id", "id", storage.NewArchiveID(now), "by", r.jid.String()))

	gone := router.NewElement(NSRetract, "retracted", "id", msg.Get("id"), "stamp", now.Format(time.RFC3339Nano))
	gone.Append(moderated.Copy())
	if reason != nil {
		gone.Append(router.NewElement(NSRetract, "reason").AppendText(reason.Text()))
	}
	if err := r.retracted(ctx, id, orig, msg, nil, now, gone); err != nil {
		r.m.log.Error("muc: moderate message", "room", r.jid, "id", id, "err", err)
		r.fail(st, stanza.InternalServerError, "")
		return
	}
	r.broadcast(msg)
	r.send(st.Reply())
}

// retract handles an occupant's XEP-0424 retraction of its own message,
// named by the room's stanza-id: it is reflected like any groupchat
// message and archived as such, and the original is replaced by a
// tombstone in the archive (§5) and taken out of the history (§6). Only
// the author may retract a message: the same user, by its occupant id,
// whatever its nick or resource now; others get forbidden, as does a
// retraction that claims to be a moderator's (only the room sends those,
// XEP-0425 §6). An id the room does not know is item-not-found.
func (r *room) retract(ctx context.Context, st *router.Stanza, o *occupant, rt *router.Element) {
	id := rt.Get("id")
	if id == "" {
		r.fail(st, stanza.BadRequest, "Name the message to retract by its stanza-id")
		return
	}
	if rt.Child(NSModerate, "moderated") != nil {
		r.fail(st, stanza.Forbidden, "Moderators retract messages with the moderate request")
		return
	}
	orig, ok := r.findLive(ctx, st, id)
	if !ok {
		return
	}
	author := orig.msg.Child(NSOccupantID, "occupant-id")
	if author == nil || author.Get("id") != r.occupantID(o.real) {
		r.fail(st, stanza.Forbidden, "You may retract only your own messages")
		return
	}
	now := r.m.now().UTC()
	msg := r.reflect(st, o, now)
	gone := router.NewElement(NSRetract, "retracted", "id", msg.Get("id"), "stamp", now.Format(time.RFC3339Nano))
	if err := r.retracted(ctx, id, orig, msg, o, now, gone); err != nil {
		r.m.log.Error("muc: retract message", "room", r.jid, "id", id, "err", err)
		r.fail(st, stanza.InternalServerError, "")
		return
	}
	r.broadcast(msg)
}

// retracted records the retraction msg of the message id, sent by o (nil
// for the room itself): the retraction goes to the archive if the room
// archives, with the original replaced by its tombstone (gone inside) if
// it is archived, and to the history in the original's place.
func (r *room) retracted(ctx context.Context, id string, orig posted, msg *router.Element, o *occupant, at time.Time, gone *router.Element) error {
	if orig.archived {
		tomb := tombstone(orig.msg, gone)
		if err := r.m.archives.Replace(ctx, r.jid, id, tomb.AppendXML(nil, router.NSClient), ""); err != nil &&
			!errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	if r.cfg.Archive {
		r.archive(ctx, msg, o, at)
	}
	r.history = slices.DeleteFunc(r.history, func(e historyEntry) bool { return stanzaIDOf(e.msg, r) == id })
	r.remember(msg, at)
	return nil
}

// tombstone is what the archive keeps of a retracted message (XEP-0424
// §5, XEP-0425 §5): the message's attributes, its author's occupant id
// and the real JID the archive keeps, and gone, the <retracted/> element;
// nothing of what it said.
func tombstone(orig, gone *router.Element) *router.Element {
	t := &router.Element{Name: orig.Name, Attr: slices.Clone(orig.Attr)}
	for _, c := range orig.Elements() {
		switch {
		case c.Name.Space == NSOccupantID, c.Name.Space == NSUser && c.Name.Local == "x":
			t.Append(c.Copy())
		}
	}
	return t.Append(gone)
}

// broadcast sends a message of the room to every occupant.
func (r *room) broadcast(msg *router.Element) {
	for _, to := range r.occupants() {
		r.send(r.copyTo(msg, to.real))
	}
}
