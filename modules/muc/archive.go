package muc

import (
	"context"
	"time"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// archive stores a groupchat message in the room's archive (XEP-0313
// §6.1.2), under the stanza-id the room gave it, with the sender's
// occupant JID as the other party.
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
	entry := storage.ArchiveEntry{Owner: r.jid, ArchivedMessage: storage.ArchivedMessage{
		ID: id, Stamp: at, With: r.occupantJID(o.nick), Stanza: stored.AppendXML(nil, router.NSClient),
		Text: childText(msg, "", "body"),
	}}
	if err := r.m.archives.Append(ctx, []storage.ArchiveEntry{entry}); err != nil {
		r.m.log.Error("muc: archive message", "room", r.jid, "err", err)
	}
}
