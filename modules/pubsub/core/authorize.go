package core

import (
	"context"
	"errors"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// FormSubscribeAuthorization is the FORM_TYPE of the form an owner gets for
// each pending subscription and sends back to approve or deny it (XEP-0060
// §8.6, §16.4.2).
const FormSubscribeAuthorization = NS + "#subscribe_authorization"

// AuthorizeFeatures are the pubsub#… features a service with Authorize
// adds to Features.
var AuthorizeFeatures = []string{NS + "#access-authorize", NS + "#manage-subscriptions"}

// askOwners sends each owner of node the authorization form for a pending
// subscription (§8.6.1).
func (s *Service) askOwners(ctx context.Context, service jid.JID, node storage.PubSubNode, sub storage.PubSubSubscription) {
	if s.Send == nil {
		return
	}
	affs, err := s.Store.Affiliations(ctx, service, node.Name)
	if err != nil {
		s.Log.Error("pubsub: load affiliations", "err", err)
		return
	}
	for _, a := range affs {
		if a.Affiliation != storage.AffiliationOwner {
			continue
		}
		x := router.NewElement(nsData, "x", "type", "form")
		x.Append(router.NewElement(nsData, "title").AppendText("PubSub subscriber request"))
		x.Append(field("FORM_TYPE", "hidden", "", FormSubscribeAuthorization))
		x.Append(field("pubsub#subid", "hidden", "", sub.SubID))
		x.Append(field("pubsub#node", "text-single", "Node ID", node.Name))
		x.Append(field("pubsub#subscriber_jid", "jid-single", "Subscriber Address", sub.JID.String()))
		x.Append(field("pubsub#allow", "boolean", "Allow this JID to subscribe to this pubsub node?", "false"))
		st := &router.Stanza{Element: router.NewElement("", "message", "id", router.NewID())}
		st.SetFrom(service)
		st.SetTo(a.JID)
		st.Append(x)
		s.Send(ctx, st)
	}
}

// HandleAuthorization takes an owner's answer to a subscription
// authorization form (§8.6.2): a message to the service with the submitted
// form. It approves or denies the pending subscription and tells the
// subscriber, and reports whether msg was such an answer. An answer from
// someone who is not an owner, or about no pending subscription, is
// dropped, as a message gets no error reply for it.
func (s *Service) HandleAuthorization(ctx context.Context, service jid.JID, msg *router.Stanza) bool {
	var form Form
	found := false
	for _, x := range msg.Elements() {
		if x.Name.Space != nsData || x.Name.Local != "x" {
			continue
		}
		if f, ok := ParseForm(x); ok && f.Type == FormSubscribeAuthorization && x.Get("type") == "submit" {
			form, found = f, true
			break
		}
	}
	if !found {
		return false
	}
	value := func(name string) string {
		if v := form.Fields[name]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	name := value("pubsub#node")
	subscriber, err := jid.Parse(value("pubsub#subscriber_jid"))
	if err != nil || name == "" {
		return true
	}
	node, aff, perr := s.load(ctx, service, name, msg.From)
	if perr != nil || aff != storage.AffiliationOwner {
		return true
	}
	sub, err := s.Store.Subscription(ctx, service, name, subscriber)
	if err != nil || sub.State != storage.SubscriptionPending {
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.Log.Error("pubsub: load subscription", "err", err)
		}
		return true
	}
	allow, _ := parseBool(value("pubsub#allow"))
	if allow {
		if err := s.Store.SetSubscriptionState(ctx, service, name, subscriber, storage.SubscriptionSubscribed); err != nil {
			s.Log.Error("pubsub: approve subscription", "err", err)
			return true
		}
		sub.State = storage.SubscriptionSubscribed
	} else {
		if err := s.Store.Unsubscribe(ctx, service, name, subscriber, ""); err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.Log.Error("pubsub: deny subscription", "err", err)
			return true
		}
		sub.State = "none"
	}
	s.tellSubscriber(ctx, service, node, sub)
	return true
}

// tellSubscriber notifies an entity of its subscription's new state
// (§8.6.2 approval and denial, §8.8.2 changes by an owner), and sends the
// last item to a subscriber just approved.
func (s *Service) tellSubscriber(ctx context.Context, service jid.JID, node storage.PubSubNode, sub storage.PubSubSubscription) {
	if s.Send == nil {
		return
	}
	e := router.NewElement(NSEvent, "subscription", "node", node.Name, "jid", sub.JID.String(), "subscription", string(sub.State))
	if sub.State != "none" && sub.SubID != "" {
		e.SetAttr("subid", sub.SubID)
	}
	s.Send(ctx, Message(service, sub.JID, router.NewElement(NSEvent, "event").Append(e)))
	if sub.State == storage.SubscriptionSubscribed && node.Config.SendLast != storage.SendLastNever {
		s.SendLast(ctx, service, node, sub.JID)
	}
}

// subscriptionsGet lists a node's subscriptions to an owner (§8.8.1),
// pending ones included.
func (s *Service) subscriptionsGet(ctx context.Context, service, who jid.JID, op *router.Element) (*router.Element, *Error) {
	node, perr := s.owner(ctx, service, op, who)
	if perr != nil {
		return nil, perr
	}
	subs, err := s.Store.Subscriptions(ctx, service, node.Name)
	if err != nil {
		return nil, s.fail("subscriptions", err)
	}
	out := router.NewElement(NSOwner, "subscriptions", "node", node.Name)
	for _, sub := range subs {
		out.Append(router.NewElement(NSOwner, "subscription", "jid", sub.JID.String(),
			"subscription", string(sub.State), "subid", sub.SubID))
	}
	return router.NewElement(NSOwner, "pubsub").Append(out), nil
}

// subscriptionsSet lets an owner subscribe, approve or remove entities
// (§8.8.2): every item is checked before any is applied, and each entity
// whose subscription changed is told.
func (s *Service) subscriptionsSet(ctx context.Context, service, who jid.JID, op *router.Element) (*router.Element, *Error) {
	node, perr := s.owner(ctx, service, op, who)
	if perr != nil {
		return nil, perr
	}
	type change struct {
		j     jid.JID
		state storage.SubscriptionState
	}
	var changes []change
	for _, e := range op.Elements() {
		if e.Name.Local != "subscription" {
			continue
		}
		j, err := jid.Parse(e.Get("jid"))
		if err != nil {
			return nil, errBadRequest
		}
		state := storage.SubscriptionState(e.Get("subscription"))
		switch state {
		case storage.SubscriptionSubscribed, storage.SubscriptionPending, "none":
		default:
			return nil, errBadRequest
		}
		changes = append(changes, change{j, state})
	}
	for _, c := range changes {
		sub, err := s.Store.Subscription(ctx, service, node.Name, c.j)
		had := err == nil
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, s.fail("load subscription", err)
		}
		switch {
		case c.state == "none" && !had, had && sub.State == c.state:
			continue
		case c.state == "none":
			if err := s.Store.Unsubscribe(ctx, service, node.Name, c.j, ""); err != nil {
				return nil, s.fail("unsubscribe", err)
			}
			sub.State = "none"
		case had:
			if err := s.Store.SetSubscriptionState(ctx, service, node.Name, c.j, c.state); err != nil {
				return nil, s.fail("set subscription", err)
			}
			sub.State = c.state
		default:
			if sub, _, err = s.Store.Subscribe(ctx, service, node.Name, c.j, c.state); err != nil {
				return nil, s.fail("subscribe", err)
			}
		}
		s.tellSubscriber(ctx, service, node, sub)
	}
	return nil, nil
}
