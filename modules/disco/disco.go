// Package disco answers XEP-0030 service discovery for the server and for
// accounts. Its feature lists are collected from the modules that are
// enabled, and the server's items are the service addresses those modules
// own, so disco never advertises what this server does not run. A service
// answers disco for its own address (router.HandleServiceIQ). The server's
// own entity capabilities (XEP-0115, caps.go) hash the same answer.
package disco

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/modules/pubsub/core"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// Namespaces of XEP-0030.
const (
	NSInfo  = "http://jabber.org/protocol/disco#info"
	NSItems = "http://jabber.org/protocol/disco#items"
)

func init() {
	modules.Register("disco", func() *Disco { return new(Disco) })
}

// Disco is the service discovery module.
type Disco struct {
	h    *modules.Host
	caps atomic.Pointer[capsCache] // the server's XEP-0115 ver
}

var _ modules.Starter = (*Disco)(nil)

// Start implements modules.Starter.
func (d *Disco) Start(_ context.Context, h *modules.Host) error {
	d.h = h
	for _, t := range []router.Target{router.ToServer, router.ToAccount} {
		h.AddFeature(t, NSInfo)
		h.AddFeature(t, NSItems)
	}
	h.AddFeature(router.ToServer, NSCaps)
	h.AddStreamFeatureFunc(d.capsFeature)
	for _, reg := range []struct {
		target router.Target
		ns     string
		fn     router.IQHandler
	}{
		{router.ToServer, NSInfo, d.serverInfo},
		{router.ToServer, NSItems, d.serverItems},
		{router.ToAccount, NSInfo, d.accountInfo},
		{router.ToAccount, NSItems, d.accountItems},
	} {
		if err := h.HandleIQ(reg.target, stanza.GetIQ, reg.ns, reg.fn); err != nil {
			return err
		}
	}
	return nil
}

// query returns an empty answer payload echoing the request's node.
func query(iq *router.Stanza, ns string) *router.Element {
	q := router.NewElement(ns, "query")
	if node := iq.FirstChild().Get("node"); node != "" {
		q.SetAttr("node", node)
	}
	return q
}

// hasNode reports a request for a node; no disco node is offered yet (PEP
// nodes are items, not nodes with items of their own), so any node of
// disco#items is item-not-found (XEP-0030 §4.1), as is any of disco#info
// but the server's caps node (info).
func hasNode(iq *router.Stanza) bool { return iq.FirstChild().Get("node") != "" }

// info answers disco#info for target. The caps node NODE#VER, when
// target has one, is answered like no node (XEP-0115 §6.2).
func (d *Disco) info(iq *router.Stanza, target router.Target, capsNode string) *router.Stanza {
	if node := iq.FirstChild().Get("node"); node != "" && node != capsNode {
		return iq.ErrorReply(stanza.Cancel, stanza.ItemNotFound, "")
	}
	q := d.infoQuery(target)
	q.SetAttr("node", iq.FirstChild().Get("node"))
	return iq.Reply(q)
}

// infoQuery is the disco#info answer for target, without node: what
// disco#info answers and what the server's caps ver hashes.
func (d *Disco) infoQuery(target router.Target) *router.Element {
	q := router.NewElement(NSInfo, "query")
	if target == router.ToServer {
		q.Append(router.NewElement(NSInfo, "identity", "category", "server", "type", "im", "name", "xmppd"))
	} else {
		q.Append(router.NewElement(NSInfo, "identity", "category", "account", "type", "registered"))
	}
	for _, id := range d.h.Router().Identities(target) {
		e := router.NewElement(NSInfo, "identity", "category", id.Category, "type", id.Type)
		if id.Name != "" {
			e.SetAttr("name", id.Name)
		}
		q.Append(e)
	}
	for _, f := range d.h.Router().Features(target) {
		q.Append(router.NewElement(NSInfo, "feature", "var", f))
	}
	return q
}

func (d *Disco) serverInfo(_ context.Context, iq *router.Stanza) *router.Stanza {
	return d.info(iq, router.ToServer, d.capsNode())
}

func (d *Disco) serverItems(_ context.Context, iq *router.Stanza) *router.Stanza {
	if hasNode(iq) {
		return iq.ErrorReply(stanza.Cancel, stanza.ItemNotFound, "")
	}
	q := query(iq, NSItems)
	for _, svc := range d.services(iq.To.Domainpart()) {
		q.Append(router.NewElement(NSItems, "item", "jid", svc))
	}
	return iq.Reply(q)
}

// services lists the service addresses that the items of domain name:
// those whose nearest served parent domain is domain (conference.DOMAIN;
// conference.chat.example.org only under chat.example.org when both are
// served), and on every domain those under none of the served domains (a
// component's own domain). Only running modules own addresses, so only
// enabled services are listed.
func (d *Disco) services(domain string) []string {
	rt := d.h.Router()
	var out []string
	for _, svc := range rt.Services() {
		if parent := nearestDomain(svc, rt.Domains()); parent == domain || parent == "" {
			out = append(out, svc)
		}
	}
	return out
}

// nearestDomain returns the longest of domains that svc is under, or "".
func nearestDomain(svc string, domains []string) string {
	best := ""
	for _, d := range domains {
		if strings.HasSuffix(svc, "."+d) && len(d) > len(best) {
			best = d
		}
	}
	return best
}

// allowed tells whether the requester may discover the account: the
// account itself, and, as Prosody does, a contact (local or remote) with a
// subscription to the account's presence (from or both in its roster,
// XEP-0163 §6.2); anybody else gets service-unavailable, which also hides
// whether the account exists (RFC 6121 §8.5.1).
func (d *Disco) allowed(ctx context.Context, iq *router.Stanza) (bool, error) {
	owner := iq.To
	if owner.Domainpart() == "" {
		owner = iq.From
	}
	owner = owner.Bare()
	if !owner.Equal(iq.From.Bare()) {
		rel, err := d.relation(ctx, owner, iq.From)
		if err != nil || !rel.Subscribed {
			return false, err
		}
	}
	_, err := d.h.Store().Users().Get(ctx, owner.Domainpart(), owner.Localpart())
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// relation is what who is to owner by owner's roster, for the pubsub
// access models of the PEP nodes listed (XEP-0060 §4.5).
func (d *Disco) relation(ctx context.Context, owner, who jid.JID) (core.Relation, error) {
	if who.Bare().Equal(owner) {
		return core.Relation{Owner: true}, nil
	}
	it, err := d.h.Store().Rosters().Item(ctx, owner, who.Bare())
	if errors.Is(err, storage.ErrNotFound) {
		return core.Relation{}, nil
	}
	if err != nil {
		return core.Relation{}, fmt.Errorf("disco: roster of %s: %w", owner, err)
	}
	return core.Relation{Subscribed: it.Subscription == storage.SubFrom || it.Subscription == storage.SubBoth, Groups: it.Groups}, nil
}

func (d *Disco) accountInfo(ctx context.Context, iq *router.Stanza) *router.Stanza {
	ok, err := d.allowed(ctx, iq)
	if err != nil {
		d.h.Logger().Error("disco: look up account", "err", err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	if !ok {
		return iq.ErrorReply(stanza.Cancel, stanza.ServiceUnavailable, "")
	}
	return d.info(iq, router.ToAccount, "")
}

func (d *Disco) accountItems(ctx context.Context, iq *router.Stanza) *router.Stanza {
	ok, err := d.allowed(ctx, iq)
	if err != nil {
		d.h.Logger().Error("disco: look up account", "err", err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	if !ok {
		return iq.ErrorReply(stanza.Cancel, stanza.ServiceUnavailable, "")
	}
	if hasNode(iq) {
		return iq.ErrorReply(stanza.Cancel, stanza.ItemNotFound, "")
	}
	q := query(iq, NSItems)
	items, err := d.pepNodes(ctx, iq)
	if err != nil {
		d.h.Logger().Error("disco: pep nodes", "err", err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	for _, it := range items {
		q.Append(it)
	}
	return iq.Reply(q)
}

// pepNodes lists, when the account is a PEP service (the pep module
// added the pubsub/pep identity), the nodes of it that the requester may
// retrieve items of (XEP-0060 §5.2, XEP-0163 §6.2), each as an item
// with the account's JID and the node's name and title.
func (d *Disco) pepNodes(ctx context.Context, iq *router.Stanza) ([]*router.Element, error) {
	if !slices.Contains(d.h.Router().Identities(router.ToAccount), router.Identity{Category: "pubsub", Type: "pep"}) {
		return nil, nil
	}
	owner := iq.To.Bare()
	if iq.To.Domainpart() == "" {
		owner = iq.From.Bare()
	}
	nodes, err := d.h.Store().PubSub().Nodes(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("disco: nodes of %s: %w", owner, err)
	}
	rel, err := d.relation(ctx, owner, iq.From)
	if err != nil {
		return nil, err
	}
	var out []*router.Element
	for _, n := range nodes {
		aff, err := d.h.Store().PubSub().Affiliation(ctx, owner, n.Name, iq.From)
		if err != nil {
			return nil, fmt.Errorf("disco: affiliation with %s: %w", n.Name, err)
		}
		if core.Access(n.Config, rel, aff) != nil {
			continue
		}
		it := router.NewElement(NSItems, "item", "jid", owner.String(), "node", n.Name)
		if n.Config.Title != "" {
			it.SetAttr("name", n.Config.Title)
		}
		out = append(out, it)
	}
	return out, nil
}
