package blocking

import (
	"context"
	"slices"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
)

// own tells whether iq is a user's request about their own account: sent
// with no 'to' as XEP-0191 shows, or to their own bare JID. Anybody else
// gets service-unavailable, as for any namespace an account does not answer
// for others, which also hides whether the account exists.
func own(iq *router.Stanza) bool {
	return iq.From.Localpart() != "" &&
		(iq.To.Domainpart() == "" || iq.To.Bare().Equal(iq.From.Bare()))
}

// get returns the blocklist (XEP-0191 §3.2) and marks the asking session as
// one that gets pushes.
func (b *Blocking) get(ctx context.Context, iq *router.Stanza) *router.Stanza {
	if !own(iq) {
		return iq.ErrorReply(stanza.Cancel, stanza.ServiceUnavailable, "")
	}
	if iq.FirstChild().Name.Local != "blocklist" {
		return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "")
	}
	// Marked before the list is read, so that a change made meanwhile is
	// pushed: a push of a change already in the answer does no harm, a
	// lost one would.
	b.markInterested(iq.From)
	owner := iq.From.Bare()
	items, err := b.h.Store().Blocklists().List(ctx, owner)
	if err != nil {
		b.logErr("blocking: read blocklist", owner, err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	return iq.Reply(itemsElement("blocklist", items))
}

// interested marks the sessions that asked for the blocklist: only they
// get pushes (XEP-0191 §3.3). The mark lives in the session, and goes with
// it.
var interested = router.NewSessionKey[struct{}]("blocking.interested")

// markInterested remembers that the session bound to full asked for the
// blocklist.
func (b *Blocking) markInterested(full jid.JID) {
	if s := b.h.Router().Session(full); s != nil {
		interested.Set(s, struct{}{})
	}
}

// set blocks or unblocks JIDs (XEP-0191 §3.3–3.5).
func (b *Blocking) set(ctx context.Context, iq *router.Stanza) *router.Stanza {
	if !own(iq) {
		return iq.ErrorReply(stanza.Cancel, stanza.ServiceUnavailable, "")
	}
	cmd := iq.FirstChild()
	items, cond := parseItems(cmd)
	if cond != "" {
		return iq.ErrorReply(router.DefaultErrorType(cond), cond, "")
	}
	switch cmd.Name.Local {
	case "block":
		if len(items) == 0 {
			// §3.3: a block needs at least one item.
			return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "nothing to block")
		}
		b.inOrder(ctx, iq, func(ctx context.Context) *router.Stanza { return b.block(ctx, iq, items) })
		return nil
	case "unblock":
		b.inOrder(ctx, iq, func(ctx context.Context) *router.Stanza { return b.unblock(ctx, iq, items) })
		return nil
	}
	return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "")
}

// inOrder runs change after the changes to the same account's list asked
// for before it, holding no lock (see keylock.Ordered), and routes the
// error it returns. A change asked for from inside another one (a filter
// reached by its routing) runs once that one is done, and answers then.
func (b *Blocking) inOrder(ctx context.Context, iq *router.Stanza, change func(context.Context) *router.Stanza) {
	b.changes.Do(ctx, iq.From.Bare().String(), func(queue func(func(context.Context))) {
		queue(func(ctx context.Context) {
			if resp := change(ctx); resp != nil {
				b.h.Route(ctx, resp)
			}
		})
	})
}

// parseItems reads the <item jid='…'/> children of a command, normalised and
// without duplicates. An item without a jid is a bad-request; a jid that is
// not a valid JID is jid-malformed (RFC 6120 §8.3.3.8).
func parseItems(cmd *router.Element) ([]jid.JID, stanza.Condition) {
	var items []jid.JID
	seen := map[string]bool{}
	for _, c := range cmd.Elements() {
		if c.Name.Space != NS || c.Name.Local != "item" {
			continue
		}
		s := c.Get("jid")
		if s == "" {
			return nil, stanza.BadRequest
		}
		j, err := jid.Parse(s)
		if err != nil {
			return nil, stanza.JIDMalformed
		}
		if k := j.String(); !seen[k] {
			seen[k] = true
			items = append(items, j)
		}
	}
	return items, ""
}

// block adds items to the user's list; it runs in inOrder, and returns an
// error answer or nil once it has answered. The contacts that receive the user's
// presence are sent unavailable presence first (§3.3), while the filter
// still lets it through; then the list is stored, what the server keeps
// from the blocked JIDs is dropped, and only then are the requester
// answered and the interested sessions pushed to.
func (b *Blocking) block(ctx context.Context, iq *router.Stanza, items []jid.JID) *router.Stanza {
	owner := iq.From.Bare()
	current, err := b.h.Store().Blocklists().List(ctx, owner)
	if err != nil {
		b.logErr("blocking: read blocklist", owner, err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	old := newList(current)
	var added []jid.JID
	for _, j := range items {
		if !old.has(j.String()) {
			added = append(added, j)
		}
	}
	if b.maxItems > 0 && len(current)+len(added) > b.maxItems {
		return iq.ErrorReply(stanza.Cancel, stanza.NotAllowed, "the blocklist is full")
	}
	b.sendPresence(ctx, owner, added, unavailablePresence)
	if err := b.h.Store().Blocklists().Add(ctx, owner, items); err != nil {
		b.logErr("blocking: store blocklist", owner, err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	b.invalidate(owner)
	// After the change, so that nothing from the blocked JIDs is stored
	// once the purge has looked.
	if err := b.purgeStored(ctx, owner, newList(items)); err != nil {
		b.logErr("blocking: purge stored stanzas of blocked JIDs", owner, err)
	}
	b.h.Route(ctx, iq.Reply())
	b.push(ctx, owner, itemsElement("block", items))
	return nil
}

// unblock removes items from the user's list, or every item if none is
// given (§3.4, §3.5), in inOrder like block, then sends the user's current presence to the
// unblocked contacts that receive it.
func (b *Blocking) unblock(ctx context.Context, iq *router.Stanza, items []jid.JID) *router.Stanza {
	owner := iq.From.Bare()
	current, err := b.h.Store().Blocklists().List(ctx, owner)
	if err != nil {
		b.logErr("blocking: read blocklist", owner, err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	removed := current
	if len(items) > 0 {
		removed = slices.DeleteFunc(slices.Clone(items), func(j jid.JID) bool {
			return !slices.ContainsFunc(current, j.Equal)
		})
	}
	if err := b.h.Store().Blocklists().Remove(ctx, owner, items); err != nil {
		b.logErr("blocking: store blocklist", owner, err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	b.invalidate(owner)
	b.h.Route(ctx, iq.Reply())
	b.push(ctx, owner, itemsElement("unblock", items))
	// After the change, so that the filter lets the presence through to
	// contacts that no other item still blocks.
	b.sendPresence(ctx, owner, removed, currentPresence)
	return nil
}

// itemsElement builds <name xmlns='urn:xmpp:blocking'> with one item per
// JID.
func itemsElement(name string, items []jid.JID) *router.Element {
	e := router.NewElement(NS, name)
	for _, j := range items {
		e.Append(router.NewElement(NS, "item", "jid", j.String()))
	}
	return e
}

// push sends a change to every session of owner that asked for the
// blocklist (§3.3–3.5), each in its own IQ set as the XEP shows.
func (b *Blocking) push(ctx context.Context, owner jid.JID, payload *router.Element) {
	for _, s := range b.h.Router().Sessions(owner) {
		if _, ok := interested.Get(s); !ok {
			continue
		}
		iq := &router.Stanza{Element: router.NewElement("", "iq", "type", "set", "id", "block-"+router.NewID())}
		iq.SetTo(s.JID())
		iq.Append(payload.Copy())
		b.h.Router().DeliverTo(ctx, s, iq)
	}
}
