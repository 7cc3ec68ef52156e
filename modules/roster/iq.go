package roster

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strconv"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/router/subscription"
	"github.com/xmppd/xmppd/storage"
)

// Limits of one roster; RFC 6121 §2.3.3 lets a server refuse more.
const (
	maxNameLength  = 1023
	maxGroupLength = 1023
	maxGroups      = 64
)

// own tells whether a roster IQ concerns the sender's own roster: only the
// account itself may read or change it (RFC 6121 §2.1.5).
func own(iq *router.Stanza) bool {
	return iq.To.Domainpart() == "" || iq.To.Bare().Equal(iq.From.Bare())
}

// itemElement renders an item as clients see it (RFC 6121 §2.1.2).
func itemElement(it storage.RosterItem) *router.Element {
	sub, ask, approved := subscription.ClientView(it)
	e := router.NewElement(NS, "item", "jid", it.Contact.String(), "subscription", sub)
	if it.Name != "" {
		e.SetAttr("name", it.Name)
	}
	if ask != "" {
		e.SetAttr("ask", ask)
	}
	if approved {
		e.SetAttr("approved", "true")
	}
	for _, g := range it.Groups {
		e.Append(router.NewElement(NS, "group").AppendText(g))
	}
	return e
}

// get answers a roster get (RFC 6121 §2.1.3, XEP-0237 versioning) and marks
// the session as interested in roster pushes.
func (r *Roster) get(ctx context.Context, iq *router.Stanza) *router.Stanza {
	if !own(iq) {
		return iq.ErrorReply(stanza.Auth, stanza.Forbidden, "")
	}
	owner := iq.From.Bare()
	if s := r.h.Router().Session(iq.From); s != nil {
		if ss := r.track(s); ss != nil {
			ss.setInterested()
		}
	}
	items, ver, err := r.h.Store().Rosters().Get(ctx, owner)
	if err != nil {
		return r.internal(iq, "load roster", err)
	}
	q := iq.FirstChild()
	_, versioned := attr(q, "ver")
	if versioned && q.Get("ver") == strconv.FormatInt(ver, 10) {
		// Unchanged since the client's copy: an empty result, and pushes
		// will bring later changes (XEP-0237 §3).
		return iq.Reply()
	}
	out := router.NewElement(NS, "query")
	if versioned {
		out.SetAttr("ver", strconv.FormatInt(ver, 10))
	}
	for _, it := range items {
		out.Append(itemElement(it))
	}
	return iq.Reply(out)
}

// attr reports whether an attribute is present, even empty: an empty ver
// asks for versioning from scratch.
func attr(e *router.Element, name string) (string, bool) {
	for _, a := range e.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// set handles a roster set: add, update or remove one item (RFC 6121
// §2.3–2.5).
func (r *Roster) set(ctx context.Context, iq *router.Stanza) *router.Stanza {
	if !own(iq) {
		return iq.ErrorReply(stanza.Auth, stanza.Forbidden, "")
	}
	q := iq.FirstChild()
	items := q.Elements()
	if len(items) != 1 || items[0].Name.Space != NS || items[0].Name.Local != "item" {
		return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "a roster set carries exactly one item")
	}
	item := items[0]
	contact, err := jid.Parse(item.Get("jid"))
	if err != nil || item.Get("jid") == "" {
		return iq.ErrorReply(stanza.Modify, stanza.JIDMalformed, "")
	}
	contact = contact.Bare()
	owner := iq.From.Bare()
	if item.Get("subscription") == "remove" {
		return r.remove(ctx, iq, owner, contact)
	}
	name := item.Get("name")
	if len(name) > maxNameLength {
		return iq.ErrorReply(stanza.Modify, stanza.NotAcceptable, "name too long")
	}
	groups, cond := parseGroups(item)
	if cond != "" {
		return iq.ErrorReply(router.DefaultErrorType(cond), cond, "")
	}
	rosters := r.h.Store().Rosters()
	cur, err := rosters.Item(ctx, owner, contact)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		n, err := rosters.Count(ctx, owner)
		if err != nil {
			return r.internal(iq, "count roster", err)
		}
		if r.maxItems > 0 && n >= r.maxItems {
			return iq.ErrorReply(stanza.Cancel, stanza.NotAllowed, "roster is full")
		}
		cur = storage.RosterItem{Contact: contact, Subscription: storage.SubNone}
	case err != nil:
		return r.internal(iq, "load roster item", err)
	}
	// Only name and groups are the client's to set; the subscription
	// state belongs to the server (RFC 6121 §2.1.2.5).
	cur.Name, cur.Groups = name, groups
	ver, err := rosters.Put(ctx, owner, cur)
	if err != nil {
		return r.internal(iq, "store roster item", err)
	}
	r.push(ctx, owner, itemElement(cur), ver)
	return iq.Reply()
}

// parseGroups checks an item's groups: no duplicates (bad-request), none
// empty or too long (not-acceptable), per RFC 6121 §2.3.3.
func parseGroups(item *router.Element) ([]string, stanza.Condition) {
	seen := map[string]bool{}
	var groups []string
	for _, g := range item.Elements() {
		if g.Name.Space != NS || g.Name.Local != "group" {
			continue
		}
		name := g.Text()
		switch {
		case name == "" || len(name) > maxGroupLength:
			return nil, stanza.NotAcceptable
		case seen[name]:
			return nil, stanza.BadRequest
		}
		seen[name] = true
		groups = append(groups, name)
	}
	if len(groups) > maxGroups {
		return nil, stanza.NotAcceptable
	}
	sort.Strings(groups)
	return groups, ""
}

// remove deletes an item, cancelling the subscriptions both ways (RFC 6121
// §2.5.2).
func (r *Roster) remove(ctx context.Context, iq *router.Stanza, owner, contact jid.JID) *router.Stanza {
	rosters := r.h.Store().Rosters()
	cur, err := rosters.Item(ctx, owner, contact)
	if errors.Is(err, storage.ErrNotFound) {
		return iq.ErrorReply(stanza.Cancel, stanza.ItemNotFound, "")
	}
	if err != nil {
		return r.internal(iq, "load roster item", err)
	}
	ver, err := rosters.Remove(ctx, owner, contact)
	if err != nil {
		return r.internal(iq, "remove roster item", err)
	}
	if err := r.h.Store().SubscriptionRequests().Remove(ctx, owner, contact); err != nil {
		r.h.Logger().Error("remove subscription request", slog.String("owner", owner.String()), slog.Any("err", err))
	}
	r.push(ctx, owner, router.NewElement(NS, "item", "jid", contact.String(), "subscription", "remove"), ver)
	for _, typ := range subscription.Remove(cur) {
		if subscription.Outbound(cur, true, typ).SendUnavailable {
			// §3.2.2: the contact stops seeing the user, so it is told
			// the user is gone; nothing else would tell it, since the
			// user's later broadcasts no longer go to it.
			r.sendUnavailable(ctx, owner, contact)
		}
		p := router.NewElement("", "presence", "type", typ)
		st := &router.Stanza{Element: p}
		st.SetFrom(owner)
		st.SetTo(contact)
		r.h.Route(ctx, st)
	}
	return iq.Reply()
}

// push sends a roster push to every interested resource of owner (RFC 6121
// §2.1.6).
func (r *Roster) push(ctx context.Context, owner jid.JID, item *router.Element, ver int64) {
	for _, s := range r.h.Router().Sessions(owner) {
		// state, not track: the session may have ended since the
		// snapshot, and one that never asked for the roster has none.
		if ss := r.state(s); ss == nil || !ss.isInterested() {
			continue
		}
		q := router.NewElement(NS, "query", "ver", strconv.FormatInt(ver, 10)).Append(item.Copy())
		e := router.NewElement("", "iq", "type", "set", "id", "push-"+router.NewID())
		st := &router.Stanza{Element: e.Append(q)}
		st.SetTo(s.JID())
		r.h.Router().DeliverTo(ctx, s, st)
	}
}

// internal logs a storage failure and answers with internal-server-error.
func (r *Roster) internal(iq *router.Stanza, what string, err error) *router.Stanza {
	r.h.Logger().Error(what, slog.String("jid", iq.From.String()), slog.Any("err", err))
	return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
}
