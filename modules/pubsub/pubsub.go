// Package pubsub is the generic publish-subscribe service of XEP-0060 at
// pubsub.DOMAIN, one for each served domain: nodes that accounts create
// and own, items their publishers publish, subscribers anywhere on the
// network. It is a service on its own subdomain (router.AddService) with
// its own disco, on the same protocol code as PEP (modules/pubsub/core),
// and adds what only a shared service needs: nodes whose owner is whoever
// created them, the authorize access model with its approval form, and
// owners managing subscriptions.
package pubsub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/modules/pubsub/core"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// ID is the module's ID.
const ID = "pubsub"

func init() { modules.RegisterWithOptions(ID, DefaultOptions(), New) }

// Creators say who may create nodes.
const (
	// CreatorsLocal lets every account of this server create nodes.
	CreatorsLocal = "local"
	// CreatorsDomain lets only the accounts of the service's own domain
	// (alice@example.org on pubsub.example.org).
	CreatorsDomain = "domain"
)

// Options are module_options.pubsub.
type Options struct {
	// Prefix names the service of each domain: Prefix.DOMAIN.
	Prefix string `yaml:"prefix"`
	// Creators is CreatorsLocal or CreatorsDomain.
	Creators string `yaml:"creators"`
	// MaxItems is the most items one node keeps, and what
	// pubsub#max_items "max" means.
	MaxItems int `yaml:"max_items"`
	// MaxItemBytes bounds one item's payload (payload-too-big).
	MaxItemBytes int `yaml:"max_item_bytes"`
	// MaxNodes bounds the nodes of one service (max-nodes-exceeded).
	MaxNodes int `yaml:"max_nodes"`
}

// DefaultOptions are what Prosody's mod_pubsub allows by default, with
// bounds so that one account cannot fill the disk.
func DefaultOptions() Options {
	return Options{Prefix: "pubsub", Creators: CreatorsLocal, MaxItems: 1000, MaxItemBytes: 128 << 10, MaxNodes: 10000}
}

// Validate implements modules.Validator.
func (o *Options) Validate() error {
	var errs []error
	errs = append(errs, modules.CheckServicePrefix("prefix", o.Prefix))
	if o.Creators != CreatorsLocal && o.Creators != CreatorsDomain {
		errs = append(errs, fmt.Errorf("creators: %q is neither %s nor %s", o.Creators, CreatorsLocal, CreatorsDomain))
	}
	errs = append(errs, modules.MustBePositive("max_items", o.MaxItems),
		modules.MustBePositive("max_item_bytes", o.MaxItemBytes),
		modules.MustBePositive("max_nodes", o.MaxNodes))
	return errors.Join(errs...)
}

// New returns an unstarted module with options o.
func New(o Options) *PubSub { return &PubSub{opts: o} }

// PubSub is the module.
type PubSub struct {
	opts Options
	h    *modules.Host
	svc  *core.Service
	// parent maps each service address to the domain it serves.
	parent map[string]string
}

var _ modules.Starter = (*PubSub)(nil)

// DefaultConfig is the configuration of a node created without one: open
// to all, as on Prosody and ejabberd, and the last item not sent on
// subscription.
func DefaultConfig() storage.NodeConfig {
	return storage.NodeConfig{
		AccessModel:          storage.AccessOpen,
		PublishModel:         storage.PublishPublishers,
		MaxItems:             10,
		PersistItems:         true,
		SendLast:             storage.SendLastNever,
		NotifyRetract:        true,
		NotifyDelete:         true,
		NotifyConfig:         false,
		DeliverNotifications: true,
		DeliverPayloads:      true,
	}
}

// Features are the disco features of each service.
func Features() []string {
	fs := []string{nsDiscoInfo, nsDiscoItems}
	for _, f := range core.Features {
		switch f {
		case core.NS + "#auto-create", core.NS + "#auto-subscribe", core.NS + "#filtered-notifications":
			// PEP's: a generic service creates no node on publish and
			// reads no caps.
			continue
		}
		fs = append(fs, f)
	}
	return append(fs, core.AuthorizeFeatures...)
}

// Start implements modules.Starter.
func (p *PubSub) Start(_ context.Context, h *modules.Host) error {
	p.h = h
	p.parent = map[string]string{}
	p.svc = &core.Service{
		Store:     h.Store().PubSub(),
		Policy:    policy{p},
		Limits:    core.Limits{MaxItems: p.opts.MaxItems, MaxItemBytes: p.opts.MaxItemBytes, MaxNodes: p.opts.MaxNodes},
		Default:   DefaultConfig(),
		Authorize: true,
		Notify:    p.notify,
		Send:      func(ctx context.Context, st *router.Stanza) { h.Route(ctx, st) },
		Log:       h.Logger(),
	}
	for _, d := range h.Router().Domains() {
		addr := p.opts.Prefix + "." + d
		p.parent[addr] = d
		if err := h.AddService(addr, p.stanza); err != nil {
			return err
		}
		for _, reg := range []struct {
			typ stanza.IQType
			ns  string
			fn  router.IQHandler
		}{
			{stanza.GetIQ, core.NS, p.handle}, {stanza.SetIQ, core.NS, p.handle},
			{stanza.GetIQ, core.NSOwner, p.handle}, {stanza.SetIQ, core.NSOwner, p.handle},
			{stanza.GetIQ, nsDiscoInfo, p.discoInfo}, {stanza.GetIQ, nsDiscoItems, p.discoItems},
		} {
			if err := h.HandleServiceIQ(addr, reg.typ, reg.ns, reg.fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// handle answers the pubsub requests to a service.
func (p *PubSub) handle(ctx context.Context, iq *router.Stanza) *router.Stanza {
	return p.svc.Handle(ctx, iq.To.Bare(), iq)
}

// stanza takes the messages to a service: owners' answers to
// subscription authorization forms. Anything else is the router's to
// answer (service-unavailable for what asks for an answer).
func (p *PubSub) stanza(ctx context.Context, st *router.Stanza) bool {
	if st.Kind() != router.KindMessage || st.Type() == "error" || st.To.Localpart() != "" || st.To.Resourcepart() != "" {
		return false
	}
	return p.svc.HandleAuthorization(ctx, st.To.Bare(), st)
}

// policy is the generic service's core.Policy: a node's creator is its
// owner, and the creator's roster says who is subscribed to it for the
// presence and roster access models (XEP-0060 §4.5).
type policy struct{ p *PubSub }

func (pol policy) MayCreate(service, who jid.JID) bool {
	if who.Localpart() == "" || !pol.p.h.Router().ServesUsers(who.Domainpart()) {
		return false
	}
	if pol.p.opts.Creators == CreatorsDomain {
		return who.Domainpart() == pol.p.parent[service.String()]
	}
	return true
}

func (pol policy) Relation(ctx context.Context, _ jid.JID, node storage.PubSubNode, who jid.JID) (core.Relation, error) {
	owner := node.Creator
	if owner.Domainpart() == "" {
		return core.Relation{}, nil
	}
	if who.Bare().Equal(owner.Bare()) {
		return core.Relation{Owner: true}, nil
	}
	if !pol.p.h.Router().ServesUsers(owner.Domainpart()) {
		return core.Relation{}, nil
	}
	it, err := pol.p.h.Store().Rosters().Item(ctx, owner.Bare(), who.Bare())
	if errors.Is(err, storage.ErrNotFound) {
		return core.Relation{}, nil
	}
	if err != nil {
		return core.Relation{}, err
	}
	return core.Relation{
		Subscribed: it.Subscription == storage.SubFrom || it.Subscription == storage.SubBoth,
		Groups:     it.Groups,
	}, nil
}

// notify sends a notification to each approved subscriber that the node's
// access model still lets in (an owner may have narrowed it since).
func (p *PubSub) notify(ctx context.Context, n core.Notification) {
	affs := map[string]storage.Affiliation{}
	for _, a := range n.Affiliations {
		affs[a.JID.String()] = a.Affiliation
	}
	for _, sub := range n.Subscribers {
		if sub.State != storage.SubscriptionSubscribed {
			continue
		}
		aff, ok := affs[sub.JID.Bare().String()]
		if !ok {
			aff = storage.AffiliationNone
		}
		if n.Node.Config.AccessModel != storage.AccessAuthorize {
			rel, err := policy{p}.Relation(ctx, n.Service, n.Node, sub.JID)
			if err != nil {
				p.h.Logger().Error("pubsub: relation", "node", n.Node.Name, "err", err)
				continue
			}
			if core.Access(n.Node.Config, rel, aff) != nil {
				continue
			}
		} else if aff == storage.AffiliationOutcast {
			continue
		}
		p.h.Route(ctx, core.Message(n.Service, sub.JID, n.Event.Copy()))
	}
}

// Namespaces of XEP-0030.
const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsData       = "jabber:x:data"
)

// queriedNode is the node a disco query names, "" for the service.
func queriedNode(iq *router.Stanza) string {
	if q := iq.FirstChild(); q != nil {
		return q.Get("node")
	}
	return ""
}

// discoInfo answers disco#info on the service (its identity and features)
// and on a node (a leaf, with the pubsub#meta-data form, §5.4).
func (p *PubSub) discoInfo(ctx context.Context, iq *router.Stanza) *router.Stanza {
	service, name := iq.To.Bare(), queriedNode(iq)
	out := router.NewElement(nsDiscoInfo, "query")
	if name == "" {
		out.Append(router.NewElement(nsDiscoInfo, "identity", "category", "pubsub", "type", "service", "name", "Publish-Subscribe"))
		for _, f := range Features() {
			out.Append(router.NewElement(nsDiscoInfo, "feature", "var", f))
		}
		return iq.Reply(out)
	}
	node, err := p.svc.Store.Node(ctx, service, name)
	if errors.Is(err, storage.ErrNotFound) {
		return iq.ErrorReply(stanza.Cancel, stanza.ItemNotFound, "")
	}
	if err != nil {
		p.h.Logger().Error("pubsub: load node", "node", name, "err", err)
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	out.SetAttr("node", name)
	out.Append(router.NewElement(nsDiscoInfo, "identity", "category", "pubsub", "type", "leaf"))
	out.Append(router.NewElement(nsDiscoInfo, "feature", "var", core.NS))
	x := router.NewElement(nsData, "x", "type", "result")
	add := func(v string, values ...string) {
		f := router.NewElement(nsData, "field", "var", v)
		for _, val := range values {
			f.Append(router.NewElement(nsData, "value").AppendText(val))
		}
		x.Append(f)
	}
	add("FORM_TYPE", core.NS+"#meta-data")
	add("pubsub#title", node.Config.Title)
	add("pubsub#type", node.Config.Type)
	add("pubsub#creator", node.Creator.String())
	add("pubsub#creation_date", node.Created.UTC().Format(time.RFC3339))
	add("pubsub#access_model", string(node.Config.AccessModel))
	add("pubsub#publish_model", string(node.Config.PublishModel))
	if affs, err := p.svc.Store.Affiliations(ctx, service, name); err == nil {
		var owners, publishers []string
		for _, a := range affs {
			switch a.Affiliation {
			case storage.AffiliationOwner:
				owners = append(owners, a.JID.String())
			case storage.AffiliationPublisher:
				publishers = append(publishers, a.JID.String())
			}
		}
		add("pubsub#owner", owners...)
		add("pubsub#publisher", publishers...)
	}
	out.Append(x)
	return iq.Reply(out)
}

// discoItems lists the service's nodes (§5.2) and a node's item ids to
// whom the node's access model lets read them (§5.5).
func (p *PubSub) discoItems(ctx context.Context, iq *router.Stanza) *router.Stanza {
	service, name := iq.To.Bare(), queriedNode(iq)
	out := router.NewElement(nsDiscoItems, "query")
	if name == "" {
		nodes, err := p.svc.Store.Nodes(ctx, service)
		if err != nil {
			p.h.Logger().Error("pubsub: list nodes", "err", err)
			return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
		}
		for _, n := range nodes {
			it := router.NewElement(nsDiscoItems, "item", "jid", service.String(), "node", n.Name)
			if n.Config.Title != "" {
				it.SetAttr("name", n.Config.Title)
			}
			out.Append(it)
		}
		return iq.Reply(out)
	}
	// The same access as items has, through the protocol code: ask it for
	// the items and list their ids.
	req := &router.Stanza{Element: router.NewElement("", "iq", "type", "get", "id", iq.ID())}
	req.SetFrom(iq.From)
	req.SetTo(iq.To)
	req.Append(router.NewElement(core.NS, "pubsub").Append(router.NewElement(core.NS, "items", "node", name)))
	resp := p.svc.Handle(ctx, service, req)
	if resp.Type() == "error" {
		return resp
	}
	out.SetAttr("node", name)
	if ps := resp.FirstChild(); ps != nil {
		if items := ps.FirstChild(); items != nil {
			for _, it := range items.Elements() {
				out.Append(router.NewElement(nsDiscoItems, "item", "jid", service.String(), "name", it.Get("id")))
			}
		}
	}
	return iq.Reply(out)
}
