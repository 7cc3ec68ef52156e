// Package pep is the Personal Eventing Protocol (XEP-0163): a pubsub
// service (XEP-0060, modules/pubsub/core) on every account's bare JID,
// whose nodes are created on first publish, whose owner is the account,
// and whose notifications go to the owner's resources and to the contacts
// the node's access model allows, each resource only if it advertises
// NODE+notify in its entity capabilities (XEP-0115, resolved by a
// caps.Resolver this module owns and feeds with the presence the account
// receives and broadcasts). A resource that becomes available, or whose
// caps become known, gets the last item of each node it is interested in
// (XEP-0163 §4.3.4, pubsub#send_last_published_item on_sub_and_presence).
package pep

import (
	"context"
	"errors"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/modules/caps"
	"github.com/xmppd/xmppd/modules/pubsub/core"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// ID is the module's ID.
const ID = "pep"

func init() { modules.RegisterWithOptions(ID, DefaultOptions(), New) }

// Options are the module's limits, module_options.pep.
type Options struct {
	// MaxItems is the most items one node keeps, which is also what
	// pubsub#max_items "max" means.
	MaxItems int `yaml:"max_items"`
	// MaxItemBytes bounds one item's payload (payload-too-big).
	MaxItemBytes int `yaml:"max_item_bytes"`
	// MaxNodes bounds the nodes of one account (max-nodes-exceeded).
	MaxNodes int `yaml:"max_nodes"`
}

// DefaultOptions leave room for what clients keep in PEP: OMEMO needs a
// bundle node per device and a devicelist, avatars some 100 KiB of base64
// data, Bookmarks 2 one item per room (hence "max" of some hundreds).
func DefaultOptions() Options {
	return Options{MaxItems: 1000, MaxItemBytes: 128 << 10, MaxNodes: 1000}
}

// Validate implements modules.Validator.
func (o *Options) Validate() error {
	return errors.Join(modules.MustBePositive("max_items", o.MaxItems),
		modules.MustBePositive("max_item_bytes", o.MaxItemBytes),
		modules.MustBePositive("max_nodes", o.MaxNodes))
}

// New returns an unstarted module with options o.
func New(o Options) *PEP { return &PEP{opts: o} }

// PEP is the module.
type PEP struct {
	opts Options
	h    *modules.Host
	svc  *core.Service
	caps *caps.Resolver
	// compatPrivate: the private module runs, so bookmarks are kept in
	// its XML storage too (XEP-0402 #compat).
	compatPrivate bool
	avatars       avatarHashes
}

var (
	_ modules.Starter = (*PEP)(nil)
	_ modules.Stopper = (*PEP)(nil)
)

// DefaultConfig is the configuration of a node created by a publish
// without options (XEP-0163 §5: presence access, the last item sent on presence; one item, as the singleton nodes clients use expect).
func DefaultConfig() storage.NodeConfig {
	return storage.NodeConfig{
		AccessModel:          storage.AccessPresence,
		PublishModel:         storage.PublishPublishers,
		MaxItems:             1,
		PersistItems:         true,
		SendLast:             storage.SendLastOnSubAndPresence,
		NotifyRetract:        true,
		NotifyDelete:         true,
		DeliverNotifications: true,
		DeliverPayloads:      true,
	}
}

// Start implements modules.Starter.
func (p *PEP) Start(ctx context.Context, h *modules.Host) error {
	p.h = h
	res, err := caps.New(caps.Options{Query: h.Router().SendIQ, OnResolved: p.resolved, Logger: h.Logger()})
	if err != nil {
		return err
	}
	p.caps = res
	p.svc = &core.Service{
		Store:      h.Store().PubSub(),
		Policy:     policy{p},
		Limits:     core.Limits{MaxItems: p.opts.MaxItems, MaxItemBytes: p.opts.MaxItemBytes, MaxNodes: p.opts.MaxNodes},
		Default:    DefaultConfig(),
		AutoCreate: true,
		Notify:     p.notify,
		Send:       p.send,
		Log:        h.Logger(),
	}
	for _, reg := range []struct {
		typ stanza.IQType
		ns  string
	}{{stanza.GetIQ, core.NS}, {stanza.SetIQ, core.NS}, {stanza.GetIQ, core.NSOwner}, {stanza.SetIQ, core.NSOwner}} {
		if err := h.HandleIQ(router.ToAccount, reg.typ, reg.ns, p.handle); err != nil {
			return err
		}
	}
	h.AddIdentity(router.ToAccount, router.Identity{Category: "pubsub", Type: "pep"})
	for _, f := range core.Features {
		h.AddFeature(router.ToAccount, f)
	}
	h.AddFeature(router.ToAccount, FeatureBookmarksCompatPEP)
	if p.compatPrivate = h.Enabled("private"); p.compatPrivate {
		h.AddFeature(router.ToAccount, FeatureBookmarksCompat)
	}
	h.HandleStanza(router.ToAccount, router.KindPresence, router.PriorityFirst, p.presence)
	h.OnSessionEnd(router.PriorityDefault, func(_ context.Context, s router.Session) {
		res.Forget(s.JID())
		if len(h.Router().Sessions(s.JID().Bare())) == 0 {
			p.avatars.forget(s.JID().Bare())
		}
	})
	if h.Enabled("vcard") {
		// XEP-0398 §4: the avatar hash in every available presence,
		// routed (broadcast copies, directed presence, probe answers)
		// or handed straight to the account's own resources.
		h.AddFilter(router.PriorityDefault, p.withAvatarHash)
		h.AddDeliveryHook(router.PriorityDefault, func(ctx context.Context, _ router.Session, st *router.Stanza) *router.Stanza {
			return p.withAvatarHash(ctx, st)
		})
	}
	res.Start(context.WithoutCancel(ctx))
	return nil
}

// Stop implements modules.Stopper.
func (p *PEP) Stop() error {
	if p.caps != nil {
		p.caps.Stop()
	}
	return nil
}

// handle answers the pubsub requests to an account's bare JID (or with no
// 'to': the sender's own).
func (p *PEP) handle(ctx context.Context, iq *router.Stanza) *router.Stanza {
	service := iq.To.Bare()
	if iq.To.Domainpart() == "" {
		service = iq.From.Bare()
	}
	if !service.Equal(iq.From.Bare()) {
		ok, err := p.h.Router().AccountExists(ctx, service)
		if err != nil {
			p.h.Logger().Error("pep: look up account", "err", err)
			return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
		}
		if !ok {
			return iq.ErrorReply(stanza.Cancel, stanza.ServiceUnavailable, "")
		}
	}
	resp := p.svc.Handle(ctx, service, iq)
	if resp.Type() == "result" && iq.Type() == "set" && service.Equal(iq.From.Bare()) {
		p.changed(ctx, service, iq)
	}
	return resp
}

// changed carries what the owner's successful set request changed to the
// stores that mirror some nodes: bookmarks (bookmarks.go) and the avatar
// hash of presence (avatar.go).
func (p *PEP) changed(ctx context.Context, owner jid.JID, iq *router.Stanza) {
	q := iq.FirstChild()
	for _, op := range q.Elements() {
		if op.Name.Local == "publish-options" || op.Name.Local == "configure" && q.Name.Space == core.NS {
			continue
		}
		switch node := op.Get("node"); node {
		case NSBookmarks2, NSLegacyBookmarks:
			p.bookmarksChanged(ctx, owner, node, op)
		case NSAvatarMetadata:
			p.avatars.invalidate(owner)
		}
		return
	}
}

// presence feeds the caps resolver with what the account receives: a
// contact's presence to it, and its own broadcast (which its resources
// receive). It never handles the presence.
func (p *PEP) presence(_ context.Context, st *router.Stanza) bool {
	observer := st.To.Bare()
	if st.To.Domainpart() == "" {
		observer = st.From.Bare()
	}
	p.caps.Presence(observer, st)
	return false
}

// policy is the PEP service's core.Policy: the account owns its service,
// and the owner's roster says who is subscribed and in which groups.
type policy struct{ p *PEP }

func (pol policy) MayCreate(service, who jid.JID) bool { return who.Bare().Equal(service) }

func (pol policy) Relation(ctx context.Context, service jid.JID, _ storage.PubSubNode, who jid.JID) (core.Relation, error) {
	if who.Bare().Equal(service) {
		return core.Relation{Owner: true}, nil
	}
	if !pol.p.h.Router().ServesUsers(service.Domainpart()) {
		return core.Relation{}, nil
	}
	it, err := pol.p.h.Store().Rosters().Item(ctx, service, who.Bare())
	if errors.Is(err, storage.ErrNotFound) {
		return core.Relation{}, nil
	}
	if err != nil {
		return core.Relation{}, err
	}
	return relation(it), nil
}

// relation is what a roster item makes its contact.
func relation(it storage.RosterItem) core.Relation {
	return core.Relation{
		Subscribed: it.Subscription == storage.SubFrom || it.Subscription == storage.SubBoth,
		Groups:     it.Groups,
	}
}

// send routes a stanza of the service through the filters, as if the
// account had sent it, so that the owner's blocklist holds for
// notifications as XEP-0163 §4.3.3 requires (XEP-0191), and a full JID
// that has gone gets nothing.
func (p *PEP) send(ctx context.Context, st *router.Stanza) { p.h.Route(ctx, st) }

// affiliation returns who's affiliation in affs.
func affiliation(affs []storage.PubSubAffiliation, who jid.JID) storage.Affiliation {
	for _, a := range affs {
		if a.JID.Equal(who.Bare()) {
			return a.Affiliation
		}
	}
	return storage.AffiliationNone
}

// notify sends a notification to the owner's interested resources, to
// the interested resources of each contact the access model allows that
// are available to the owner, and to the explicit subscribers allowed.
func (p *PEP) notify(ctx context.Context, n core.Notification) {
	owner, node := n.Service, n.Node.Name
	sent := map[string]bool{}
	to := func(j jid.JID) {
		if sent[j.String()] {
			return
		}
		sent[j.String()] = true
		p.send(ctx, core.Message(owner, j, n.Event.Copy()))
	}
	for _, full := range p.caps.InterestedResources(owner, node) {
		to(full)
	}
	items, _, err := p.h.Store().Rosters().Get(ctx, owner)
	if err != nil {
		p.h.Logger().Error("pep: load roster", "owner", owner, "err", err)
	}
	for _, it := range items {
		if core.Access(n.Node.Config, relation(it), affiliation(n.Affiliations, it.Contact)) != nil {
			continue
		}
		for _, full := range p.caps.InterestedResources(it.Contact, node) {
			if p.seen(owner, full) {
				to(full)
			}
		}
	}
	for _, sub := range n.Subscribers {
		if sub.State != storage.SubscriptionSubscribed {
			continue
		}
		rel, err := policy{p}.Relation(ctx, owner, n.Node, sub.JID)
		if err != nil {
			p.h.Logger().Error("pep: relation", "err", err)
			continue
		}
		if core.Access(n.Node.Config, rel, affiliation(n.Affiliations, sub.JID)) == nil {
			to(sub.JID)
		}
	}
}

// seen tells whether the server sees full available for owner's
// notifications: full sent owner available presence (a contact with a
// subscription both ways, or directed presence), or full is a local
// resource, whose own broadcast the server sees. The latter is what lets a
// local contact with a subscription of type "from" in the owner's roster
// (it gets the owner's presence, the owner not its) have the notifications
// the presence access model gives it (XEP-0060 §4.5), as XEP-0163 §4.3
// asks of a contact that "shares presence" with the owner.
func (p *PEP) seen(owner, full jid.JID) bool {
	if p.caps.AvailableTo(owner, full) {
		return true
	}
	return p.h.Router().ServesUsers(full.Domainpart()) && p.caps.AvailableTo(full.Bare(), full)
}

// resolved sends a resource whose features became known the last item of
// each of observer's nodes it is interested in and allowed to have
// (XEP-0163 §4.3.4, on_sub_and_presence). A local resource that became
// known through its own broadcast also gets the last items of the local
// accounts it is subscribed to whose presence it does not send them
// (subscription "to" in its roster): nothing else would tell them it came
// online.
func (p *PEP) resolved(observer, full jid.JID, f caps.Features) {
	ctx := context.Background()
	if !p.h.Router().ServesUsers(observer.Domainpart()) {
		return
	}
	if observer.Equal(full.Bare()) {
		p.lastOfSubscriptions(ctx, full, f)
	}
	p.sendLast(ctx, observer, full, f)
}

// lastOfSubscriptions sends full the last items of the local accounts its
// account has a subscription of type "to" to.
func (p *PEP) lastOfSubscriptions(ctx context.Context, full jid.JID, f caps.Features) {
	items, _, err := p.h.Store().Rosters().Get(ctx, full.Bare())
	if err != nil {
		p.h.Logger().Error("pep: load roster", "owner", full.Bare(), "err", err)
		return
	}
	for _, it := range items {
		if it.Subscription == storage.SubTo && p.h.Router().ServesUsers(it.Contact.Domainpart()) {
			p.sendLast(ctx, it.Contact.Bare(), full, f)
		}
	}
}

// sendLast sends full the last item of each of owner's nodes that f has
// +notify for and that full may have.
func (p *PEP) sendLast(ctx context.Context, observer, full jid.JID, f caps.Features) {
	last, err := p.svc.Store.LastItems(ctx, observer)
	if err != nil || len(last) == 0 {
		if err != nil {
			p.h.Logger().Error("pep: last items", "owner", observer, "err", err)
		}
		return
	}
	rel, err := policy{p}.Relation(ctx, observer, storage.PubSubNode{}, full)
	if err != nil {
		p.h.Logger().Error("pep: relation", "err", err)
		return
	}
	for name, it := range last {
		if !f.Has(caps.Notify(name)) {
			continue
		}
		node, err := p.svc.Store.Node(ctx, observer, name)
		if err != nil {
			continue
		}
		if node.Config.SendLast != storage.SendLastOnSubAndPresence || !node.Config.DeliverNotifications {
			continue
		}
		aff, err := p.svc.Store.Affiliation(ctx, observer, name, full)
		if err != nil || core.Access(node.Config, rel, aff) != nil {
			continue
		}
		p.send(ctx, core.Message(observer, full, core.ItemsEvent(name, []storage.PubSubItem{it}, node.Config.DeliverPayloads, p.h.Logger())))
	}
}
