// Package core is the XEP-0060 protocol that xmppd's pubsub services share:
// the personal eventing service of every account (modules/pep, XEP-0163)
// and, later, generic services such as pubsub.DOMAIN. It parses and
// answers the pubsub, pubsub#owner requests, renders and reads the
// node_config and publish-options forms, checks access models and limits,
// and builds notifications; a Service is configured by its module with a
// Policy (who is an owner, how an entity relates to the service's owner)
// and a Notify function (who gets a notification), which are what differ
// between services. It registers nothing.
package core

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// Namespaces of XEP-0060.
const (
	NS       = "http://jabber.org/protocol/pubsub"
	NSOwner  = NS + "#owner"
	NSEvent  = NS + "#event"
	NSErrors = NS + "#errors"
)

// Limits bound what one service may hold; a request beyond them gets the
// XEP's error. Zero values are no limit, except MaxItems, which must be
// positive: it is what pubsub#max_items "max" means.
type Limits struct {
	MaxItems     int // items per node
	MaxItemBytes int // bytes of one item's payload
	MaxNodes     int // nodes per service
}

// Relation is what an entity is to the owner of a service, for the
// presence and roster access models (XEP-0060 §4.5).
type Relation struct {
	// Owner: the entity is (a resource of) the service's owner.
	Owner bool
	// Subscribed: the owner's roster has the entity with a presence
	// subscription from it (from or both).
	Subscribed bool
	// Groups are the roster groups the owner put the entity in.
	Groups []string
}

// Policy is what differs between services.
type Policy interface {
	// Relation says what who is to the owner of node on service: the
	// account for PEP, the node's creator on a generic service.
	Relation(ctx context.Context, service jid.JID, node storage.PubSubNode, who jid.JID) (Relation, error)
	// MayCreate tells whether who may create nodes on service.
	MayCreate(service, who jid.JID) bool
}

// Service answers the XEP-0060 requests to pubsub services. Its fields are
// set once, before the first request.
type Service struct {
	Store  storage.PubSub
	Policy Policy
	Limits Limits
	// Default is the configuration of a node created without one.
	Default storage.NodeConfig
	// AutoCreate makes publish create a missing node (pubsub#auto-create).
	AutoCreate bool
	// Authorize allows the authorize access model (§4.5): a subscription
	// stays pending until an owner approves it with the subscription
	// authorization form the service sends (§6.1.3, §8.6), which reaches
	// the service as a message (HandleAuthorization). A service whose
	// owners' answers do not come back to it leaves it off.
	Authorize bool
	// Notify sends a notification to whom the service chooses; nil sends
	// none.
	Notify func(ctx context.Context, n Notification)
	// Send delivers one stanza the service made (the last item to a new
	// subscriber).
	Send func(ctx context.Context, st *router.Stanza)
	Log  *slog.Logger
}

// Features are the pubsub#… disco features that Service implements, for
// the module to advertise (XEP-0060 §10).
var Features = []string{
	NS,
	NS + "#access-open", NS + "#access-presence", NS + "#access-roster", NS + "#access-whitelist",
	NS + "#auto-create", NS + "#auto-subscribe", NS + "#config-node", NS + "#create-and-configure",
	NS + "#create-nodes", NS + "#delete-items", NS + "#delete-nodes", NS + "#filtered-notifications",
	NS + "#instant-nodes", NS + "#item-ids", NS + "#last-published", NS + "#member-affiliation",
	NS + "#modify-affiliations", NS + "#outcast-affiliation", NS + "#persistent-items",
	NS + "#publish", NS + "#publish-options", NS + "#publisher-affiliation", NS + "#purge-nodes",
	NS + "#retract-items", NS + "#retrieve-affiliations", NS + "#retrieve-default",
	NS + "#retrieve-items", NS + "#retrieve-subscriptions", NS + "#subscribe",
}

// Handle answers an IQ request in NS or NSOwner to the service named.
func (s *Service) Handle(ctx context.Context, service jid.JID, iq *router.Stanza) *router.Stanza {
	q := iq.FirstChild()
	var children []*router.Element
	if q != nil {
		children = q.Elements()
	}
	// The request is the first child but the options that go with it
	// (publish-options beside publish, configure beside create).
	var op *router.Element
	for _, c := range children {
		if c.Name.Local != "publish-options" && c.Name.Local != "configure" || q.Name.Space == NSOwner {
			op = c
			break
		}
	}
	if op == nil {
		return errBadRequest.Reply(iq)
	}
	var resp *router.Element
	var perr *Error
	switch key := q.Name.Space + " " + iq.Type() + " " + op.Name.Local; key {
	case NS + " set publish":
		resp, perr = s.publish(ctx, service, iq.From, op, q.Child(NS, "publish-options"))
	case NS + " set retract":
		resp, perr = s.retract(ctx, service, iq.From, op)
	case NS + " set create":
		resp, perr = s.create(ctx, service, iq.From, op, q.Child(NS, "configure"))
	case NS + " set subscribe":
		resp, perr = s.subscribe(ctx, service, iq.From, op)
	case NS + " set unsubscribe":
		resp, perr = s.unsubscribe(ctx, service, iq.From, op)
	case NS + " get affiliations":
		resp, perr = s.ownAffiliations(ctx, service, iq.From, op)
	case NS + " get subscriptions":
		resp, perr = s.ownSubscriptions(ctx, service, iq.From, op)
	case NS + " get items":
		resp, perr = s.items(ctx, service, iq.From, op)
	case NSOwner + " get configure":
		resp, perr = s.configureGet(ctx, service, iq.From, op)
	case NSOwner + " set configure":
		resp, perr = s.configureSet(ctx, service, iq.From, op)
	case NSOwner + " set delete":
		resp, perr = s.deleteNode(ctx, service, iq.From, op)
	case NSOwner + " set purge":
		resp, perr = s.purge(ctx, service, iq.From, op)
	case NSOwner + " get affiliations":
		resp, perr = s.affiliationsGet(ctx, service, iq.From, op)
	case NSOwner + " set affiliations":
		resp, perr = s.affiliationsSet(ctx, service, iq.From, op)
	case NSOwner + " get subscriptions":
		resp, perr = s.subscriptionsGet(ctx, service, iq.From, op)
	case NSOwner + " set subscriptions":
		resp, perr = s.subscriptionsSet(ctx, service, iq.From, op)
	case NSOwner + " get default":
		resp = router.NewElement(NSOwner, "pubsub").Append(
			router.NewElement(NSOwner, "default").Append(ConfigForm(s.Default, "form")))
	default:
		perr = unsupported(op.Name.Local)
	}
	if perr != nil {
		return perr.Reply(iq)
	}
	if resp == nil {
		return iq.Reply()
	}
	return iq.Reply(resp)
}

// fail logs a store error and returns the error the requester gets.
func (s *Service) fail(what string, err error) *Error {
	if errors.Is(err, storage.ErrNotFound) {
		return errNotFound
	}
	s.Log.Error("pubsub: "+what, "err", err)
	return errInternal
}

// MaxItems is what the node keeps: its pubsub#max_items, with "max" and
// anything above the limit meaning the limit.
func (s *Service) MaxItems(cfg storage.NodeConfig) int {
	if cfg.MaxItems == storage.MaxItemsMax || cfg.MaxItems > s.Limits.MaxItems {
		return s.Limits.MaxItems
	}
	return cfg.MaxItems
}

// nodeName reads the node attribute every request but create needs.
func nodeName(op *router.Element) (string, *Error) {
	n := op.Get("node")
	if n == "" {
		return "", errNodeRequired
	}
	return n, nil
}

// load returns a node and who's affiliation with it.
func (s *Service) load(ctx context.Context, service jid.JID, name string, who jid.JID) (storage.PubSubNode, storage.Affiliation, *Error) {
	node, err := s.Store.Node(ctx, service, name)
	if err != nil {
		return node, "", s.fail("load node "+name, err)
	}
	aff, err := s.Store.Affiliation(ctx, service, name, who)
	if err != nil {
		return node, "", s.fail("load affiliation", err)
	}
	return node, aff, nil
}

// owner loads a node for a request only its owners may make.
func (s *Service) owner(ctx context.Context, service jid.JID, op *router.Element, who jid.JID) (storage.PubSubNode, *Error) {
	name, perr := nodeName(op)
	if perr != nil {
		return storage.PubSubNode{}, perr
	}
	node, aff, perr := s.load(ctx, service, name, who)
	if perr != nil {
		return node, perr
	}
	if aff != storage.AffiliationOwner {
		return node, errForbidden
	}
	return node, nil
}

// Access tells whether an entity with relation rel and affiliation aff may
// retrieve the items of, and subscribe to, a node configured with cfg
// (XEP-0060 §4.5), and if not, the error it gets (§6.1.3, §6.5.9).
func Access(cfg storage.NodeConfig, rel Relation, aff storage.Affiliation) *Error {
	switch aff {
	case storage.AffiliationOwner, storage.AffiliationPublisher:
		return nil
	case storage.AffiliationOutcast:
		return errForbidden
	}
	if rel.Owner {
		return nil
	}
	switch cfg.AccessModel {
	case storage.AccessOpen:
		return nil
	case storage.AccessPresence:
		if rel.Subscribed {
			return nil
		}
		return perr(stanza.NotAuthorized, "presence-subscription-required")
	case storage.AccessRoster:
		for _, g := range rel.Groups {
			if slices.Contains(cfg.RosterGroupsAllowed, g) {
				return nil
			}
		}
		return perr(stanza.NotAuthorized, "not-in-roster-group")
	case storage.AccessWhitelist:
		if aff == storage.AffiliationMember {
			return nil
		}
		return perr(stanza.NotAllowed, "closed-node")
	}
	return perr(stanza.NotAuthorized, "not-subscribed")
}

// access checks who's access to a node.
func (s *Service) access(ctx context.Context, service jid.JID, node storage.PubSubNode, aff storage.Affiliation, who jid.JID) *Error {
	rel, err := s.Policy.Relation(ctx, service, node, who)
	if err != nil {
		return s.fail("relation", err)
	}
	perr := Access(node.Config, rel, aff)
	if perr != nil && node.Config.AccessModel == storage.AccessAuthorize && s.subscribed(ctx, service, node.Name, who) {
		// An approved subscriber (its full or bare JID) may read.
		return nil
	}
	return perr
}

// subscribed tells whether who, as given or as its bare JID, has an
// approved subscription to the node.
func (s *Service) subscribed(ctx context.Context, service jid.JID, node string, who jid.JID) bool {
	for _, j := range []jid.JID{who, who.Bare()} {
		sub, err := s.Store.Subscription(ctx, service, node, j)
		if err == nil && sub.State == storage.SubscriptionSubscribed {
			return true
		}
	}
	return false
}

// newNode creates a node with cfg for who, within the node limit.
func (s *Service) newNode(ctx context.Context, service, who jid.JID, name string, cfg storage.NodeConfig) (storage.PubSubNode, *Error) {
	if !s.Policy.MayCreate(service, who) {
		return storage.PubSubNode{}, errForbidden
	}
	if s.Limits.MaxNodes > 0 {
		n, err := s.Store.NodeCount(ctx, service)
		if err != nil {
			return storage.PubSubNode{}, s.fail("count nodes", err)
		}
		if n >= s.Limits.MaxNodes {
			return storage.PubSubNode{}, errMaxNodes
		}
	}
	node := storage.PubSubNode{Service: service, Name: name, Config: cfg, Creator: who.Bare()}
	if err := s.Store.CreateNode(ctx, node); err != nil {
		if errors.Is(err, storage.ErrExists) {
			return node, errNodeExists
		}
		return node, s.fail("create node", err)
	}
	return node, nil
}

// configFrom applies a submitted form (publish-options or node_config)
// over base.
func (s *Service) configFrom(base storage.NodeConfig, x *router.Element, formType string) (storage.NodeConfig, *Error) {
	cfg := base
	cfg.RosterGroupsAllowed = slices.Clone(base.RosterGroupsAllowed)
	if x == nil {
		return cfg, nil
	}
	f, ok := ParseForm(x)
	if !ok || (f.Type != "" && f.Type != formType) {
		return cfg, errBadRequest
	}
	if perr := f.Apply(&cfg, s.Limits.MaxItems); perr != nil {
		return cfg, perr
	}
	if cfg.AccessModel == storage.AccessAuthorize && !s.Authorize {
		return cfg, unsupported("access-authorize")
	}
	return cfg, nil
}

// sameConfig compares two configurations field by field.
func sameConfig(a, b storage.NodeConfig) bool {
	if !slices.Equal(a.RosterGroupsAllowed, b.RosterGroupsAllowed) {
		return false
	}
	a.RosterGroupsAllowed, b.RosterGroupsAllowed = nil, nil
	return reflect.DeepEqual(a, b)
}

func (s *Service) create(ctx context.Context, service, who jid.JID, op, configure *router.Element) (*router.Element, *Error) {
	name := op.Get("node")
	instant := name == ""
	if instant {
		name = router.NewID()
	}
	var x *router.Element
	if configure != nil {
		x = configure.Child(nsData, "x")
	}
	cfg, perr := s.configFrom(s.Default, x, FormNodeConfig)
	if perr != nil {
		return nil, perr
	}
	if _, perr := s.newNode(ctx, service, who, name, cfg); perr != nil {
		return nil, perr
	}
	if !instant {
		return nil, nil
	}
	return router.NewElement(NS, "pubsub").Append(router.NewElement(NS, "create", "node", name)), nil
}

func (s *Service) publish(ctx context.Context, service, who jid.JID, op, options *router.Element) (*router.Element, *Error) {
	name, perr := nodeName(op)
	if perr != nil {
		return nil, perr
	}
	var itemEl *router.Element
	for _, c := range op.Elements() {
		if c.Name.Local != "item" {
			continue
		}
		if itemEl != nil {
			return nil, unsupported("multi-items") // batch publish (§7.1.5)
		}
		itemEl = c
	}
	if itemEl == nil {
		return nil, errItemRequired
	}
	payloads := itemEl.Elements()
	switch {
	case len(payloads) == 0:
		return nil, errPayloadRequired
	case len(payloads) > 1:
		return nil, errInvalidPayload
	}
	payload := payloads[0].AppendXML(nil, "")
	if s.Limits.MaxItemBytes > 0 && len(payload) > s.Limits.MaxItemBytes {
		return nil, errPayloadTooBig
	}
	var x *router.Element
	if options != nil {
		if x = options.Child(nsData, "x"); x == nil {
			return nil, errBadRequest
		}
	}
	node, aff, perr := s.load(ctx, service, name, who)
	switch {
	case perr == errNotFound:
		if !s.AutoCreate {
			return nil, errNotFound
		}
		cfg, perr := s.configFrom(s.Default, x, FormPublishOptions)
		if perr != nil {
			return nil, perr
		}
		created, perr := s.newNode(ctx, service, who, name, cfg)
		if perr == errNodeExists {
			// Created by a concurrent publish: publish to it as it is.
			return s.publish(ctx, service, who, op, options)
		}
		if perr != nil {
			return nil, perr
		}
		node = created
	case perr != nil:
		return nil, perr
	default:
		if !s.mayPublish(ctx, service, node, aff, who) {
			return nil, errForbidden
		}
		if x != nil {
			want, perr := s.configFrom(node.Config, x, FormPublishOptions)
			if perr != nil {
				if perr.Cond == stanza.NotAcceptable {
					// A precondition the node cannot meet.
					return nil, errPrecondition
				}
				return nil, perr
			}
			if !sameConfig(want, node.Config) {
				return nil, errPrecondition
			}
		}
	}
	id := itemEl.Get("id")
	if id == "" {
		id = router.NewID()
	}
	item := storage.PubSubItem{ID: id, Publisher: who, Payload: payload}
	if _, err := s.Store.Publish(ctx, service, name, item, s.MaxItems(node.Config)); err != nil {
		return nil, s.fail("publish", err)
	}
	if node.Config.DeliverNotifications {
		s.notify(ctx, service, node, EventItems, ItemsEvent(name, []storage.PubSubItem{item}, node.Config.DeliverPayloads, s.Log))
	}
	return router.NewElement(NS, "pubsub").Append(
		router.NewElement(NS, "publish", "node", name).Append(router.NewElement(NS, "item", "id", id))), nil
}

// mayPublish applies the node's publish model (XEP-0060 §16.4.4).
func (s *Service) mayPublish(ctx context.Context, service jid.JID, node storage.PubSubNode, aff storage.Affiliation, who jid.JID) bool {
	switch aff {
	case storage.AffiliationOwner, storage.AffiliationPublisher, storage.AffiliationPublishOnly:
		return true
	case storage.AffiliationOutcast:
		return false
	}
	switch node.Config.PublishModel {
	case storage.PublishOpen:
		return true
	case storage.PublishSubscribers:
		sub, err := s.Store.Subscription(ctx, service, node.Name, who)
		return err == nil && sub.State == storage.SubscriptionSubscribed
	}
	return false
}

// notify hands a notification to the service's Notify, with the node's
// subscribers and affiliations as they are now.
func (s *Service) notify(ctx context.Context, service jid.JID, node storage.PubSubNode, kind EventKind, event *router.Element) {
	if s.Notify == nil {
		return
	}
	subs, err := s.Store.Subscriptions(ctx, service, node.Name)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.Log.Error("pubsub: load subscriptions", "err", err)
	}
	affs, err := s.Store.Affiliations(ctx, service, node.Name)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.Log.Error("pubsub: load affiliations", "err", err)
	}
	s.Notify(ctx, Notification{Service: service, Node: node, Kind: kind, Event: event, Subscribers: subs, Affiliations: affs})
}

func (s *Service) retract(ctx context.Context, service, who jid.JID, op *router.Element) (*router.Element, *Error) {
	name, perr := nodeName(op)
	if perr != nil {
		return nil, perr
	}
	itemEl := op.Child(NS, "item")
	if itemEl == nil || itemEl.Get("id") == "" {
		return nil, errItemRequired
	}
	node, aff, perr := s.load(ctx, service, name, who)
	if perr != nil {
		return nil, perr
	}
	if aff != storage.AffiliationOwner && aff != storage.AffiliationPublisher {
		return nil, errForbidden
	}
	id := itemEl.Get("id")
	found, err := s.Store.Retract(ctx, service, name, id)
	if err != nil {
		return nil, s.fail("retract", err)
	}
	if !found {
		return nil, errNotFound
	}
	notify, _ := parseBool(op.Get("notify"))
	if node.Config.DeliverNotifications && (notify || node.Config.NotifyRetract) {
		s.notify(ctx, service, node, EventRetract, RetractEvent(name, id))
	}
	return nil, nil
}

func (s *Service) items(ctx context.Context, service, who jid.JID, op *router.Element) (*router.Element, *Error) {
	name, perr := nodeName(op)
	if perr != nil {
		return nil, perr
	}
	node, aff, perr := s.load(ctx, service, name, who)
	if perr != nil {
		return nil, perr
	}
	if perr := s.access(ctx, service, node, aff, who); perr != nil {
		return nil, perr
	}
	var q storage.PubSubItemQuery
	for _, it := range op.Elements() {
		if it.Name.Local == "item" && it.Get("id") != "" {
			q.IDs = append(q.IDs, it.Get("id"))
		}
	}
	if m := op.Get("max_items"); m != "" && len(q.IDs) == 0 {
		n, ok := positive(m)
		if !ok {
			return nil, errBadRequest
		}
		q.Max = n
	}
	items, err := s.Store.Items(ctx, service, name, q)
	if err != nil {
		return nil, s.fail("items", err)
	}
	if len(q.IDs) > 0 && len(items) == 0 {
		return nil, errNotFound
	}
	out := router.NewElement(NS, "items", "node", name)
	for _, it := range items {
		out.Append(ItemElement(NS, it, true, s.Log))
	}
	return router.NewElement(NS, "pubsub").Append(out), nil
}

// positive reads a positive decimal number.
func positive(s string) (int, bool) {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' || n > 1<<20 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n > 0
}

func (s *Service) subscribe(ctx context.Context, service, who jid.JID, op *router.Element) (*router.Element, *Error) {
	name, perr := nodeName(op)
	if perr != nil {
		return nil, perr
	}
	sj, err := jid.Parse(op.Get("jid"))
	if err != nil || !sj.Bare().Equal(who.Bare()) {
		return nil, errInvalidJID
	}
	node, aff, perr := s.load(ctx, service, name, who)
	if perr != nil {
		return nil, perr
	}
	state := storage.SubscriptionSubscribed
	if perr := s.access(ctx, service, node, aff, who); perr != nil {
		if node.Config.AccessModel != storage.AccessAuthorize || aff == storage.AffiliationOutcast {
			return nil, perr
		}
		// Authorize: pending until an owner approves (§6.1.3 and §8.6).
		state = storage.SubscriptionPending
	}
	sub, created, err := s.Store.Subscribe(ctx, service, name, sj, state)
	if err != nil {
		return nil, s.fail("subscribe", err)
	}
	if created && sub.State == storage.SubscriptionPending {
		s.askOwners(ctx, service, node, sub)
	}
	if created && sub.State == storage.SubscriptionSubscribed && node.Config.SendLast != storage.SendLastNever && s.Send != nil {
		s.SendLast(ctx, service, node, sj)
	}
	return router.NewElement(NS, "pubsub").Append(router.NewElement(NS, "subscription",
		"node", name, "jid", sj.String(), "subid", sub.SubID, "subscription", string(sub.State))), nil
}

// SendLast sends to the node's last item, if it has one (XEP-0060 §6.1.7).
func (s *Service) SendLast(ctx context.Context, service jid.JID, node storage.PubSubNode, to jid.JID) {
	it, err := s.Store.LastItem(ctx, service, node.Name)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			s.Log.Error("pubsub: last item", "err", err)
		}
		return
	}
	s.Send(ctx, Message(service, to, ItemsEvent(node.Name, []storage.PubSubItem{it}, node.Config.DeliverPayloads, s.Log)))
}

func (s *Service) unsubscribe(ctx context.Context, service, who jid.JID, op *router.Element) (*router.Element, *Error) {
	name, perr := nodeName(op)
	if perr != nil {
		return nil, perr
	}
	sj, err := jid.Parse(op.Get("jid"))
	if err != nil || !sj.Bare().Equal(who.Bare()) {
		return nil, errInvalidJID
	}
	if _, err := s.Store.Node(ctx, service, name); err != nil {
		return nil, s.fail("load node", err)
	}
	if err := s.Store.Unsubscribe(ctx, service, name, sj, op.Get("subid")); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, errNotSubscribed
		}
		return nil, s.fail("unsubscribe", err)
	}
	return nil, nil
}

func (s *Service) configureGet(ctx context.Context, service, who jid.JID, op *router.Element) (*router.Element, *Error) {
	node, perr := s.owner(ctx, service, op, who)
	if perr != nil {
		return nil, perr
	}
	return router.NewElement(NSOwner, "pubsub").Append(
		router.NewElement(NSOwner, "configure", "node", node.Name).Append(ConfigForm(node.Config, "form"))), nil
}

func (s *Service) configureSet(ctx context.Context, service, who jid.JID, op *router.Element) (*router.Element, *Error) {
	node, perr := s.owner(ctx, service, op, who)
	if perr != nil {
		return nil, perr
	}
	x := op.Child(nsData, "x")
	if x == nil {
		return nil, errBadRequest
	}
	if x.Get("type") == "cancel" {
		return nil, nil
	}
	cfg, perr := s.configFrom(node.Config, x, FormNodeConfig)
	if perr != nil {
		return nil, perr
	}
	if err := s.Store.ConfigureNode(ctx, service, node.Name, cfg); err != nil {
		return nil, s.fail("configure", err)
	}
	if _, err := s.Store.Trim(ctx, service, node.Name, s.MaxItems(cfg)); err != nil {
		return nil, s.fail("trim", err)
	}
	node.Config = cfg
	if cfg.DeliverNotifications && cfg.NotifyConfig {
		s.notify(ctx, service, node, EventConfig, NodeEvent("configuration", node.Name))
	}
	return nil, nil
}

func (s *Service) deleteNode(ctx context.Context, service, who jid.JID, op *router.Element) (*router.Element, *Error) {
	node, perr := s.owner(ctx, service, op, who)
	if perr != nil {
		return nil, perr
	}
	var subs []storage.PubSubSubscription
	var affs []storage.PubSubAffiliation
	if node.Config.DeliverNotifications && node.Config.NotifyDelete && s.Notify != nil {
		subs, _ = s.Store.Subscriptions(ctx, service, node.Name)
		affs, _ = s.Store.Affiliations(ctx, service, node.Name)
	}
	if err := s.Store.DeleteNode(ctx, service, node.Name); err != nil {
		return nil, s.fail("delete node", err)
	}
	if node.Config.DeliverNotifications && node.Config.NotifyDelete && s.Notify != nil {
		event := NodeEvent("delete", node.Name)
		if r := op.Child(NSOwner, "redirect"); r != nil && r.Get("uri") != "" {
			// §8.4.1: subscribers are told where the node went.
			event.FirstChild().Append(router.NewElement(NSEvent, "redirect", "uri", r.Get("uri")))
		}
		s.Notify(ctx, Notification{Service: service, Node: node, Kind: EventDelete, Event: event, Subscribers: subs, Affiliations: affs})
	}
	return nil, nil
}

func (s *Service) purge(ctx context.Context, service, who jid.JID, op *router.Element) (*router.Element, *Error) {
	node, perr := s.owner(ctx, service, op, who)
	if perr != nil {
		return nil, perr
	}
	if _, err := s.Store.Purge(ctx, service, node.Name); err != nil {
		return nil, s.fail("purge", err)
	}
	if node.Config.DeliverNotifications && node.Config.NotifyRetract {
		s.notify(ctx, service, node, EventPurge, NodeEvent("purge", node.Name))
	}
	return nil, nil
}

func (s *Service) affiliationsGet(ctx context.Context, service, who jid.JID, op *router.Element) (*router.Element, *Error) {
	node, perr := s.owner(ctx, service, op, who)
	if perr != nil {
		return nil, perr
	}
	affs, err := s.Store.Affiliations(ctx, service, node.Name)
	if err != nil {
		return nil, s.fail("affiliations", err)
	}
	out := router.NewElement(NSOwner, "affiliations", "node", node.Name)
	for _, a := range affs {
		out.Append(router.NewElement(NSOwner, "affiliation", "jid", a.JID.String(), "affiliation", string(a.Affiliation)))
	}
	return router.NewElement(NSOwner, "pubsub").Append(out), nil
}

func (s *Service) affiliationsSet(ctx context.Context, service, who jid.JID, op *router.Element) (*router.Element, *Error) {
	node, perr := s.owner(ctx, service, op, who)
	if perr != nil {
		return nil, perr
	}
	type change struct {
		j   jid.JID
		aff storage.Affiliation
	}
	var changes []change
	for _, a := range op.Elements() {
		if a.Name.Local != "affiliation" {
			continue
		}
		j, err := jid.Parse(a.Get("jid"))
		if err != nil {
			return nil, errBadRequest
		}
		aff := storage.Affiliation(a.Get("affiliation"))
		switch aff {
		case storage.AffiliationOwner, storage.AffiliationPublisher, storage.AffiliationPublishOnly,
			storage.AffiliationMember, storage.AffiliationNone, storage.AffiliationOutcast:
		default:
			return nil, errBadRequest
		}
		if j.Bare().Equal(who.Bare()) && aff != storage.AffiliationOwner {
			// The owner may not give up its own ownership (§8.9.2.4).
			return nil, notAcceptable("an owner cannot change its own affiliation")
		}
		changes = append(changes, change{j.Bare(), aff})
	}
	for _, c := range changes {
		if err := s.Store.SetAffiliation(ctx, service, node.Name, c.j, c.aff); err != nil {
			return nil, s.fail("set affiliation", err)
		}
	}
	return nil, nil
}

// ownAffiliations answers an entity's request for its own affiliations
// (XEP-0060 §5.7), with a node attribute for one node only.
func (s *Service) ownAffiliations(ctx context.Context, service, who jid.JID, op *router.Element) (*router.Element, *Error) {
	affs, err := s.Store.AffiliationsOf(ctx, service, who)
	if err != nil {
		return nil, s.fail("affiliations of", err)
	}
	out := router.NewElement(NS, "affiliations")
	for _, a := range affs {
		if n := op.Get("node"); n == "" || n == a.Node {
			out.Append(router.NewElement(NS, "affiliation", "node", a.Node, "affiliation", string(a.Affiliation)))
		}
	}
	return router.NewElement(NS, "pubsub").Append(out), nil
}

// ownSubscriptions answers an entity's request for its own subscriptions
// (XEP-0060 §5.6), with a node attribute for one node only.
func (s *Service) ownSubscriptions(ctx context.Context, service, who jid.JID, op *router.Element) (*router.Element, *Error) {
	subs, err := s.Store.SubscriptionsOf(ctx, service, who)
	if err != nil {
		return nil, s.fail("subscriptions of", err)
	}
	out := router.NewElement(NS, "subscriptions")
	for _, sub := range subs {
		if n := op.Get("node"); n == "" || n == sub.Node {
			out.Append(router.NewElement(NS, "subscription", "node", sub.Node, "jid", sub.JID.String(),
				"subid", sub.SubID, "subscription", string(sub.State)))
		}
	}
	return router.NewElement(NS, "pubsub").Append(out), nil
}
