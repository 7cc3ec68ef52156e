// Package private stores XML fragments for their owner (XEP-0049), one per
// namespace: old clients keep preferences and bookmarks (XEP-0048) there.
// Only the account itself may read or write its private XML. With the pep
// module running, bookmarks stored here are handed to PEP, which keeps
// them in step with Bookmarks 2 (XEP-0402 #compat) and writes the
// Bookmarks 2 changes back here.
package private

import (
	"bytes"
	"context"
	"errors"
	"strings"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// NS is the jabber:iq:private namespace.
const NS = "jabber:iq:private"

func init() {
	modules.Register("private", func() *Private { return new(Private) })
}

// Private is the private XML storage module.
type Private struct {
	h *modules.Host
}

var _ modules.Starter = (*Private)(nil)

// Start implements modules.Starter.
func (p *Private) Start(_ context.Context, h *modules.Host) error {
	p.h = h
	if err := h.HandleIQ(router.ToAccount, stanza.GetIQ, NS, p.get); err != nil {
		return err
	}
	return h.HandleIQ(router.ToAccount, stanza.SetIQ, NS, p.set)
}

// reserved tells whether private XML may not be stored in namespace ns: the
// namespaces XEP-0049 calls reserved (jabber:*, which includes
// jabber:iq:private itself, http://jabber.org/*, vcard-temp), and the
// stream's own namespace, which an element without xmlns is in.
func reserved(ns string) bool {
	return ns == "" || ns == "vcard-temp" || strings.HasPrefix(ns, "jabber:") || strings.HasPrefix(ns, "http://jabber.org/")
}

// check applies the rules every request shares and returns the error reply,
// or nil. XEP-0049 "Error Conditions": another user's data is forbidden, a
// query without a child is not-acceptable (the "Bad Format" of the XEP is no
// RFC 6120 stanza condition; its example's code 406 is not-acceptable, which
// §2.3 also requires), a reserved namespace is not-acceptable.
func check(iq *router.Stanza) (children []*router.Element, reply *router.Stanza) {
	if iq.To.Domainpart() != "" && !iq.To.Bare().Equal(iq.From.Bare()) {
		return nil, iq.ErrorReply(stanza.Auth, stanza.Forbidden, "")
	}
	q := iq.FirstChild()
	if q.Name.Local != "query" {
		return nil, iq.ErrorReply(stanza.Modify, stanza.BadRequest, "")
	}
	children = q.Elements()
	if len(children) == 0 {
		return nil, iq.ErrorReply(stanza.Modify, stanza.NotAcceptable, "the query needs a child element in its own namespace")
	}
	for _, c := range children {
		if reserved(c.Name.Space) {
			return nil, iq.ErrorReply(stanza.Modify, stanza.NotAcceptable, "reserved namespace: "+c.Name.Space)
		}
	}
	return children, nil
}

// get returns the fragment stored for the namespace of the one child, or
// that child empty when nothing is stored.
func (p *Private) get(ctx context.Context, iq *router.Stanza) *router.Stanza {
	children, reply := check(iq)
	if reply != nil {
		return reply
	}
	if len(children) > 1 {
		// "A client MUST NOT query for more than one namespace in a
		// single IQ get request."
		return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "ask for one namespace at a time")
	}
	want := children[0]
	acct := iq.From.Bare()
	data, err := p.h.Store().PrivateXML().Get(ctx, acct, want.Name.Space)
	if errors.Is(err, storage.ErrNotFound) {
		return iq.Reply(router.NewElement(NS, "query").Append(router.NewElement(want.Name.Space, want.Name.Local)))
	}
	if err != nil {
		p.h.Logger().Error("private: load", "account", acct.String(), "namespace", want.Name.Space, "err", err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	// The fragment is one or more elements, as set stored them: parse them
	// inside a query element, which is the answer.
	var b bytes.Buffer
	b.WriteString(`<query xmlns="` + NS + `">`)
	b.Write(data)
	b.WriteString(`</query>`)
	q, err := router.ParseElement(b.Bytes(), router.NSClient)
	if err != nil {
		p.h.Logger().Error("private: stored fragment unreadable", "account", acct.String(), "namespace", want.Name.Space, "err", err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	return iq.Reply(q)
}

// set stores the children of the query, one fragment per namespace: "an IQ
// set ... MAY contain multiple elements qualified by the same namespace",
// which are then stored together and replace what that namespace held.
func (p *Private) set(ctx context.Context, iq *router.Stanza) *router.Stanza {
	children, reply := check(iq)
	if reply != nil {
		return reply
	}
	var order []string
	fragments := map[string][]byte{}
	for _, c := range children {
		ns := c.Name.Space
		if _, seen := fragments[ns]; !seen {
			order = append(order, ns)
		}
		fragments[ns] = c.AppendXML(fragments[ns], router.NSClient)
	}
	acct := iq.From.Bare()
	for _, ns := range order {
		if err := p.h.Store().PrivateXML().Set(ctx, acct, ns, fragments[ns]); err != nil {
			p.h.Logger().Error("private: store", "account", acct.String(), "namespace", ns, "err", err)
			return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
		}
	}
	if p.h.Enabled("pep") {
		for _, c := range children {
			if c.Name.Space == nsBookmarks && c.Name.Local == "storage" {
				p.toPEP(ctx, acct, c)
				break
			}
		}
	}
	return iq.Reply()
}

// nsBookmarks is the namespace of XEP-0048 bookmarks.
const nsBookmarks = "storage:bookmarks"

// toPEP hands XEP-0048 bookmarks an old client stored here to the
// account's PEP service as a publish to its storage:bookmarks node
// (XEP-0048 on XEP-0223, private: persist_items, whitelist): the pep
// module keeps that node, Bookmarks 2 (XEP-0402 #compat) and this storage
// in step, and notifies the clients of the rooms that changed. The
// bookmarks are stored whatever PEP answers; a failure is logged.
func (p *Private) toPEP(ctx context.Context, acct jid.JID, st *router.Element) {
	publish := func(options bool) *router.Stanza {
		ps := router.NewElement(nsPubSub, "pubsub").Append(router.NewElement(nsPubSub, "publish", "node", nsBookmarks).Append(
			router.NewElement(nsPubSub, "item", "id", "current").Append(st.Copy())))
		if options {
			x := router.NewElement(nsData, "x", "type", "submit")
			for _, f := range [][2]string{{"FORM_TYPE", nsPubSub + "#publish-options"}, {"pubsub#persist_items", "true"}, {"pubsub#access_model", "whitelist"}} {
				x.Append(router.NewElement(nsData, "field", "var", f[0]).Append(router.NewElement(nsData, "value").AppendText(f[1])))
			}
			ps.Append(router.NewElement(nsPubSub, "publish-options").Append(x))
		}
		iq := &router.Stanza{Element: router.NewElement("", "iq", "type", "set").Append(ps)}
		iq.SetFrom(acct)
		iq.SetTo(acct)
		return iq
	}
	resp, err := p.h.Router().SendIQ(ctx, publish(true))
	if e := errorOf(resp); err != nil && e != nil && e.Child(nsPubSub+"#errors", "precondition-not-met") != nil {
		// The owner configured the node otherwise: publish to it as it is.
		_, err = p.h.Router().SendIQ(ctx, publish(false))
	}
	if err != nil {
		p.h.Logger().Error("private: bookmarks to pep", "account", acct.String(), "err", err)
	}
}

// errorOf returns the <error/> of an IQ answer, or nil.
func errorOf(resp *router.Stanza) *router.Element {
	if resp == nil {
		return nil
	}
	return resp.Child("", "error")
}

// Namespaces of the publish toPEP makes.
const (
	nsPubSub = "http://jabber.org/protocol/pubsub"
	nsData   = "jabber:x:data"
)
