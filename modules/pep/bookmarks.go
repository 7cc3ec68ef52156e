package pep

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/modules/pubsub/core"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// Bookmarks live in three places that clients of different ages read
// (XEP-0402 §5.3): Bookmarks 2, one item per room in NSBookmarks2; XEP-0048
// bookmarks in private XML storage (XEP-0049, the module "private"), one
// <storage/> for all rooms; and the same <storage/> as the one item of the
// PEP node NSLegacyBookmarks (XEP-0048 1.1 on XEP-0223). The owner's change
// to one of them is carried to the others here, after the request that made
// it succeeded: Bookmarks 2 is rebuilt into the <storage/> of the other two
// (#compat, #compat-pep), and a <storage/> published to the legacy node or
// stored in private XML (which the private module hands to this one as a
// publish to the legacy node) updates, adds and retracts Bookmarks 2 items,
// with notifications for the changed items only. What this module
// publishes or retracts itself goes to the core service directly, not
// through handle, so that a change is carried once and never comes back.
const (
	// NSBookmarks2 is the node and namespace of XEP-0402.
	NSBookmarks2 = "urn:xmpp:bookmarks:1"
	// NSLegacyBookmarks is the namespace of XEP-0048 bookmarks, and the
	// private XML and PEP node they are stored in.
	NSLegacyBookmarks = "storage:bookmarks"
	// FeatureBookmarksCompat and FeatureBookmarksCompatPEP are the
	// features of XEP-0402 §5.3 that announce the conversions.
	FeatureBookmarksCompat    = NSBookmarks2 + "#compat"
	FeatureBookmarksCompatPEP = NSBookmarks2 + "#compat-pep"
)

// bookmarks2Options are the publish-options XEP-0402 §3.3 gives, used for
// the Bookmarks 2 items made from legacy bookmarks.
var bookmarks2Options = [][2]string{
	{core.FieldPersistItems, "true"}, {core.FieldMaxItems, "max"},
	{core.FieldSendLast, "never"}, {core.FieldAccessModel, "whitelist"},
}

// legacyOptions are XEP-0223's, for the legacy node.
var legacyOptions = [][2]string{{core.FieldPersistItems, "true"}, {core.FieldAccessModel, "whitelist"}}

// bookmark is one room's bookmark in the terms both formats share.
type bookmark struct {
	name, nick, password string
	autojoin             bool
	// extensions are the XEP-0402 <extensions/> children, which XEP-0048
	// conferences carry as children of their own.
	extensions []*router.Element
}

// equal tells whether two bookmarks say the same, extensions compared as
// XML.
func (b bookmark) equal(o bookmark) bool {
	if b.name != o.name || b.nick != o.nick || b.password != o.password || b.autojoin != o.autojoin || len(b.extensions) != len(o.extensions) {
		return false
	}
	for i := range b.extensions {
		if b.extensions[i].String() != o.extensions[i].String() {
			return false
		}
	}
	return true
}

// parseBool reads an XML Schema boolean.
func parseBool(s string) bool { return s == "true" || s == "1" }

// fromConference reads a bookmark of namespace ns (either format): name
// and autojoin attributes, nick and password children, and the extensions
// (the <extensions/> children in XEP-0402, the foreign children in
// XEP-0048).
func fromConference(c *router.Element, ns string) bookmark {
	b := bookmark{name: c.Get("name"), autojoin: parseBool(c.Get("autojoin"))}
	for _, ch := range c.Elements() {
		switch {
		case ch.Name.Space == ns && ch.Name.Local == "nick":
			b.nick = ch.Text()
		case ch.Name.Space == ns && ch.Name.Local == "password":
			b.password = ch.Text()
		case ns == NSBookmarks2 && ch.Name.Space == ns && ch.Name.Local == "extensions":
			b.extensions = append(b.extensions, ch.Elements()...)
		case ns == NSLegacyBookmarks && ch.Name.Space != ns:
			b.extensions = append(b.extensions, ch)
		}
	}
	return b
}

// conference renders b in namespace ns; a legacy conference gets the room
// JID as its jid attribute.
func (b bookmark) conference(ns, room string) *router.Element {
	c := router.NewElement(ns, "conference")
	if ns == NSLegacyBookmarks {
		c.SetAttr("jid", room)
	}
	c.SetAttr("name", b.name)
	if b.autojoin {
		c.SetAttr("autojoin", "true")
	}
	if b.nick != "" {
		c.Append(router.NewElement(ns, "nick").AppendText(b.nick))
	}
	if b.password != "" {
		c.Append(router.NewElement(ns, "password").AppendText(b.password))
	}
	if len(b.extensions) == 0 {
		return c
	}
	if ns == NSLegacyBookmarks {
		for _, e := range b.extensions {
			c.Append(e.Copy())
		}
		return c
	}
	ext := router.NewElement(ns, "extensions")
	for _, e := range b.extensions {
		ext.Append(e.Copy())
	}
	return c.Append(ext)
}

// bookmarksChanged carries a successful change the owner made to a
// bookmarks node to the other stores. req is the request's operation
// element (publish, retract, purge, delete).
func (p *PEP) bookmarksChanged(ctx context.Context, owner jid.JID, node string, req *router.Element) {
	var err error
	switch {
	case node == NSBookmarks2:
		err = p.fromBookmarks2(ctx, owner)
	case node == NSLegacyBookmarks && req.Name.Space == core.NS && req.Name.Local == "publish":
		st := req.Child(core.NS, "item").Child(NSLegacyBookmarks, "storage")
		if st == nil {
			return // not XEP-0048 bookmarks: nothing to convert
		}
		err = p.fromLegacy(ctx, owner, st)
	}
	if err != nil {
		p.h.Logger().Error("pep: bookmarks compat", "owner", owner, "node", node, "err", err)
	}
}

// bookmarks2 loads the Bookmarks 2 items, oldest first, by room.
func (p *PEP) bookmarks2(ctx context.Context, owner jid.JID) ([]string, map[string]bookmark, error) {
	items, err := p.svc.Store.Items(ctx, owner, NSBookmarks2, storage.PubSubItemQuery{})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, nil, fmt.Errorf("load bookmarks: %w", err)
	}
	var rooms []string
	out := map[string]bookmark{}
	for _, it := range slices.Backward(items) {
		e, err := router.ParseElement(it.Payload, "")
		if err != nil || e.Name.Space != NSBookmarks2 || e.Name.Local != "conference" {
			continue
		}
		rooms = append(rooms, it.ID)
		out[it.ID] = fromConference(e, NSBookmarks2)
	}
	return rooms, out, nil
}

// fromBookmarks2 rebuilds the legacy <storage/> from the Bookmarks 2
// items, keeping the URL bookmarks XEP-0402 dropped, into private XML (if
// the private module runs) and the legacy node (if it exists).
func (p *PEP) fromBookmarks2(ctx context.Context, owner jid.JID) error {
	rooms, marks, err := p.bookmarks2(ctx, owner)
	if err != nil {
		return err
	}
	st := router.NewElement(NSLegacyBookmarks, "storage")
	for _, room := range rooms {
		st.Append(marks[room].conference(NSLegacyBookmarks, room))
	}
	old, err := p.privateBookmarks(ctx, owner)
	if err != nil {
		return err
	}
	if old != nil {
		for _, e := range old.Elements() {
			if e.Name.Space != NSLegacyBookmarks || e.Name.Local != "conference" {
				st.Append(e)
			}
		}
	}
	if p.compatPrivate {
		if err := p.h.Store().PrivateXML().Set(ctx, owner, NSLegacyBookmarks, st.AppendXML(nil, router.NSClient)); err != nil {
			return fmt.Errorf("store private bookmarks: %w", err)
		}
	}
	if _, err := p.svc.Store.Node(ctx, owner, NSLegacyBookmarks); errors.Is(err, storage.ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("load legacy node: %w", err)
	}
	return p.ownPublish(ctx, owner, NSLegacyBookmarks, "current", st, legacyOptions)
}

// privateBookmarks returns the <storage/> in private XML, or nil.
func (p *PEP) privateBookmarks(ctx context.Context, owner jid.JID) (*router.Element, error) {
	if !p.compatPrivate {
		return nil, nil
	}
	data, err := p.h.Store().PrivateXML().Get(ctx, owner, NSLegacyBookmarks)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load private bookmarks: %w", err)
	}
	wrapped := append(append([]byte(`<query xmlns="jabber:iq:private">`), data...), `</query>`...)
	q, err := router.ParseElement(wrapped, router.NSClient)
	if err != nil {
		return nil, fmt.Errorf("stored private bookmarks: %w", err)
	}
	return q.Child(NSLegacyBookmarks, "storage"), nil
}

// fromLegacy applies a legacy <storage/> to the Bookmarks 2 items, and
// keeps it in private XML: a room that is new or changed is published,
// one that is gone is retracted with notify, one that is the same is left
// alone (XEP-0402 §5.3.2). Extensions a legacy client could not keep
// stay on the item unless the conference brings its own.
func (p *PEP) fromLegacy(ctx context.Context, owner jid.JID, st *router.Element) error {
	if p.compatPrivate {
		if err := p.h.Store().PrivateXML().Set(ctx, owner, NSLegacyBookmarks, st.AppendXML(nil, router.NSClient)); err != nil {
			return fmt.Errorf("store private bookmarks: %w", err)
		}
	}
	_, current, err := p.bookmarks2(ctx, owner)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var errs []error
	for _, c := range st.Elements() {
		if c.Name.Space != NSLegacyBookmarks || c.Name.Local != "conference" {
			continue
		}
		room, err := jid.Parse(c.Get("jid"))
		if err != nil || room.Domainpart() == "" {
			continue
		}
		id := room.String()
		if seen[id] {
			continue
		}
		seen[id] = true
		b := fromConference(c, NSLegacyBookmarks)
		old, had := current[id]
		if had && len(b.extensions) == 0 {
			b.extensions = old.extensions
		}
		if had && b.equal(old) {
			continue
		}
		errs = append(errs, p.ownPublish(ctx, owner, NSBookmarks2, id, b.conference(NSBookmarks2, id), bookmarks2Options))
	}
	for id := range current {
		if !seen[id] {
			errs = append(errs, p.ownRequest(ctx, owner, router.NewElement(core.NS, "pubsub").Append(
				router.NewElement(core.NS, "retract", "node", NSBookmarks2, "notify", "true").Append(router.NewElement(core.NS, "item", "id", id)))))
		}
	}
	return errors.Join(errs...)
}

// ownPublish publishes payload as item id to owner's node with the
// publish-options given, or, if the node is configured otherwise
// (precondition-not-met), as the owner configured it.
func (p *PEP) ownPublish(ctx context.Context, owner jid.JID, node, id string, payload *router.Element, options [][2]string) error {
	publish := func(withOptions bool) *router.Element {
		ps := router.NewElement(core.NS, "pubsub").Append(
			router.NewElement(core.NS, "publish", "node", node).Append(router.NewElement(core.NS, "item", "id", id).Append(payload.Copy())))
		if withOptions {
			x := router.NewElement("jabber:x:data", "x", "type", "submit").Append(
				router.NewElement("jabber:x:data", "field", "var", "FORM_TYPE", "type", "hidden").Append(
					router.NewElement("jabber:x:data", "value").AppendText(core.FormPublishOptions)))
			for _, o := range options {
				x.Append(router.NewElement("jabber:x:data", "field", "var", o[0]).Append(router.NewElement("jabber:x:data", "value").AppendText(o[1])))
			}
			ps.Append(router.NewElement(core.NS, "publish-options").Append(x))
		}
		return ps
	}
	err := p.ownRequest(ctx, owner, publish(true))
	if errors.Is(err, errPrecondition) {
		err = p.ownRequest(ctx, owner, publish(false))
	}
	return err
}

// errPrecondition is ownRequest's error for precondition-not-met.
var errPrecondition = errors.New("precondition-not-met")

// ownRequest makes a pubsub set request of the owner's to its own
// service, straight to the core service.
func (p *PEP) ownRequest(ctx context.Context, owner jid.JID, payload *router.Element) error {
	iq := &router.Stanza{Element: router.NewElement("", "iq", "type", "set", "id", router.NewID()).Append(payload)}
	iq.SetFrom(owner)
	iq.SetTo(owner)
	resp := p.svc.Handle(ctx, owner, iq)
	if resp.Type() == "result" {
		return nil
	}
	if e := resp.Child("", "error"); e != nil && e.Child(core.NSErrors, "precondition-not-met") != nil {
		return errPrecondition
	}
	return fmt.Errorf("%s: %s", payload.FirstChild().Name.Local, resp)
}
