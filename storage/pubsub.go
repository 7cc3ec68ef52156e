package storage

import (
	"context"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"
)

// A pubsub service (XEP-0060) is named by a bare JID: an account's for its
// personal eventing service (PEP, XEP-0163), a domain such as
// pubsub.example.org for a generic service. Nodes are leaf nodes named by
// any string, unique in their service. JIDs are compared by their
// normalised string form. The store checks what makes its data
// consistent (a node exists, a name is free, an enumerated value is
// known); access, publish and subscription policies, and limits other
// than Publish's maxItems, are the caller's, with the counts it exposes.

// AccessModel says who may subscribe to a node and retrieve its items
// (XEP-0060 §4.5, pubsub#access_model).
type AccessModel string

// The access models of XEP-0060 §4.5.
const (
	AccessOpen      AccessModel = "open"
	AccessPresence  AccessModel = "presence"
	AccessRoster    AccessModel = "roster"
	AccessAuthorize AccessModel = "authorize"
	AccessWhitelist AccessModel = "whitelist"
)

// PublishModel says who may publish to a node (pubsub#publish_model).
type PublishModel string

// The publish models of XEP-0060 §16.4.4.
const (
	PublishPublishers  PublishModel = "publishers"
	PublishSubscribers PublishModel = "subscribers"
	PublishOpen        PublishModel = "open"
)

// SendLastPublished says when the last published item is sent to a
// subscriber (pubsub#send_last_published_item).
type SendLastPublished string

// The values of pubsub#send_last_published_item (XEP-0060 §16.4.4).
const (
	SendLastNever            SendLastPublished = "never"
	SendLastOnSub            SendLastPublished = "on_sub"
	SendLastOnSubAndPresence SendLastPublished = "on_sub_and_presence"
)

// MaxItemsMax is NodeConfig.MaxItems for pubsub#max_items "max": no limit
// but the server's. Publish and Trim do not trim for it, so a caller
// passes the server's limit instead.
const MaxItemsMax = -1

// NodeConfig is a node's configuration: the fields of the
// pubsub#node_config form (XEP-0060 §16.4.4) that xmppd implements. The
// store keeps every field as given; defaults are the caller's.
type NodeConfig struct {
	AccessModel  AccessModel
	PublishModel PublishModel
	// MaxItems is how many items the node keeps, or MaxItemsMax.
	MaxItems     int
	PersistItems bool
	SendLast     SendLastPublished
	// NotifyRetract, NotifyDelete and NotifyConfig say whether
	// subscribers are told of retracted items, the node's deletion and
	// changes of this configuration; NotifySub whether owners are told of
	// subscriptions and unsubscriptions.
	NotifyRetract bool
	NotifyDelete  bool
	NotifyConfig  bool
	NotifySub     bool
	// DeliverNotifications says whether notifications are sent at all,
	// DeliverPayloads whether they carry the items' payloads, and
	// PresenceBasedDelivery whether only to available subscribers.
	DeliverNotifications  bool
	DeliverPayloads       bool
	PresenceBasedDelivery bool
	// Title is the node's friendly name (pubsub#title).
	Title string
	// Type is the namespace of the node's payloads (pubsub#type).
	Type string
	// RosterGroupsAllowed are the roster groups the roster access model
	// lets in (pubsub#roster_groups_allowed); the store returns them
	// sorted, without duplicates.
	RosterGroupsAllowed []string
	// ItemExpire is after how long items are deleted (pubsub#item_expire),
	// kept to the second; 0 for never.
	ItemExpire time.Duration
}

// Check returns an error naming the first field whose value is not one of
// the XEP's, or a negative count other than MaxItemsMax.
func (c NodeConfig) Check() error {
	switch c.AccessModel {
	case AccessOpen, AccessPresence, AccessRoster, AccessAuthorize, AccessWhitelist:
	default:
		return fmt.Errorf("pubsub#access_model %q unknown", c.AccessModel)
	}
	switch c.PublishModel {
	case PublishPublishers, PublishSubscribers, PublishOpen:
	default:
		return fmt.Errorf("pubsub#publish_model %q unknown", c.PublishModel)
	}
	switch c.SendLast {
	case SendLastNever, SendLastOnSub, SendLastOnSubAndPresence:
	default:
		return fmt.Errorf("pubsub#send_last_published_item %q unknown", c.SendLast)
	}
	if c.MaxItems < 0 && c.MaxItems != MaxItemsMax {
		return fmt.Errorf("pubsub#max_items %d negative", c.MaxItems)
	}
	if c.ItemExpire < 0 {
		return fmt.Errorf("pubsub#item_expire %v negative", c.ItemExpire)
	}
	return nil
}

// PubSubNode is one node of a service.
type PubSubNode struct {
	// Service is the bare JID of the service the node is on.
	Service jid.JID
	Name    string
	Config  NodeConfig
	// Creator is the bare JID that created the node; CreateNode makes it
	// an owner.
	Creator jid.JID
	// Created is when the node was created, in UTC to the microsecond.
	Created time.Time
}

// PubSubItem is one item published to a node.
type PubSubItem struct {
	// ID is the item's id, unique in its node; never empty (the caller
	// generates one when the publisher gave none).
	ID string
	// Publisher is who published it, full or bare JID as given.
	Publisher jid.JID
	// Payload is the XML of the item's child element(s), without the
	// <item/> around them; empty for an item without payload.
	Payload []byte
	// Published is when it was published, in UTC to the microsecond.
	Published time.Time
}

// PubSubItemQuery selects items of a node. The zero query selects all.
type PubSubItemQuery struct {
	// IDs keeps only the items with these ids (XEP-0060 §6.5.8); ids not
	// in the node are skipped.
	IDs []string
	// Max keeps only the newest Max items (max_items, §6.5.7); 0 keeps
	// all.
	Max int
}

// Affiliation is an entity's affiliation with a node (XEP-0060 §4.1).
type Affiliation string

// The affiliations of XEP-0060 §4.1.
const (
	AffiliationOwner       Affiliation = "owner"
	AffiliationPublisher   Affiliation = "publisher"
	AffiliationPublishOnly Affiliation = "publish-only"
	AffiliationMember      Affiliation = "member"
	AffiliationNone        Affiliation = "none"
	AffiliationOutcast     Affiliation = "outcast"
)

// PubSubAffiliation is the affiliation of a bare JID with a node of a
// service.
type PubSubAffiliation struct {
	Node        string
	JID         jid.JID
	Affiliation Affiliation
}

// SubscriptionState is the state of a pubsub subscription (XEP-0060 §4.2);
// "none" is no subscription at all.
type SubscriptionState string

// The states of a stored subscription.
const (
	SubscriptionSubscribed   SubscriptionState = "subscribed"
	SubscriptionPending      SubscriptionState = "pending"
	SubscriptionUnconfigured SubscriptionState = "unconfigured"
)

// PubSubSubscription is one subscription to a node. An entity has at most
// one subscription per node (no pubsub#multi-subscribe); a bare JID and
// each of its full JIDs are different entities (§6.1.6).
type PubSubSubscription struct {
	Node string
	// JID is the subscribed JID, bare or full, as the subscriber gave it.
	JID jid.JID
	// SubID is the store's random id of the subscription (§6.1.6).
	SubID string
	State SubscriptionState
}

// PubSub holds the nodes, items, affiliations and subscriptions of pubsub
// services: the PEP service of each account and generic services. An
// account's PEP service is deleted with the account (Users.Delete). Every
// call about a node that does not exist returns ErrNotFound.
type PubSub interface {
	// CreateNode creates the node, on node.Service, and gives its Creator
	// (unless zero) the owner affiliation, in one transaction; ErrExists
	// if the service has a node of that name. A zero Created is now.
	CreateNode(ctx context.Context, node PubSubNode) error
	// Node returns one node of the service.
	Node(ctx context.Context, service jid.JID, node string) (PubSubNode, error)
	// Nodes returns the service's nodes sorted by name; none for an
	// unknown service.
	Nodes(ctx context.Context, service jid.JID) ([]PubSubNode, error)
	// NodeCount says how many nodes the service has, for a limit.
	NodeCount(ctx context.Context, service jid.JID) (int, error)
	// ConfigureNode replaces the node's configuration. It does not trim
	// items to a lower MaxItems: Trim does.
	ConfigureNode(ctx context.Context, service jid.JID, node string, cfg NodeConfig) error
	// DeleteNode deletes the node with its items, affiliations and
	// subscriptions. A caller that notifies subscribers reads them first.
	DeleteNode(ctx context.Context, service jid.JID, node string) error
	// DeleteService deletes every node of the service, as DeleteNode
	// does; no error for a service without nodes.
	DeleteService(ctx context.Context, service jid.JID) error

	// Publish stores the item as the node's newest: a new one, or one
	// replacing the item with the same ID (which moves to the newest
	// place, with the new publisher, payload and time). In the same
	// transaction it deletes the oldest items beyond the maxItems newest
	// and returns their ids, oldest first; with maxItems 0 the item itself
	// is among them, with MaxItemsMax none is. Trimmed items are not
	// retracted: whether to notify is the caller's choice. A zero
	// Published is now.
	Publish(ctx context.Context, service jid.JID, node string, item PubSubItem, maxItems int) (trimmed []string, err error)
	// Trim deletes the oldest items beyond the maxItems newest, as
	// Publish does, e.g. after a configuration lowered MaxItems.
	Trim(ctx context.Context, service jid.JID, node string, maxItems int) (trimmed []string, err error)
	// Items returns the items q selects, newest first (XEP-0060 §6.5.7
	// asks for the newest N).
	Items(ctx context.Context, service jid.JID, node string, q PubSubItemQuery) ([]PubSubItem, error)
	// LastItem returns the newest item; ErrNotFound also when the node
	// has none.
	LastItem(ctx context.Context, service jid.JID, node string) (PubSubItem, error)
	// LastItems returns the newest item of each of the service's nodes
	// that has one, by node name, in one query: what a PEP service sends
	// a contact that comes online (XEP-0163 §6.2).
	LastItems(ctx context.Context, service jid.JID) (map[string]PubSubItem, error)
	// ExpireItems deletes at most limit items, of every service, that are
	// older than their node's ItemExpire at the time given, and says how
	// many: a job calls it until it deletes fewer than limit, so that no
	// transaction holds the database for long. Expired items are not
	// retracted.
	ExpireItems(ctx context.Context, now time.Time, limit int) (int64, error)
	// ItemCount says how many items the node has.
	ItemCount(ctx context.Context, service jid.JID, node string) (int, error)
	// Retract deletes one item and says whether it was there.
	Retract(ctx context.Context, service jid.JID, node, id string) (found bool, err error)
	// Purge deletes all of the node's items and says how many.
	Purge(ctx context.Context, service jid.JID, node string) (int64, error)

	// Affiliation returns who's affiliation with the node,
	// AffiliationNone when it has none. Affiliations are of bare JIDs
	// (XEP-0060 §4.1): a resource in who is ignored, here and below.
	Affiliation(ctx context.Context, service jid.JID, node string, who jid.JID) (Affiliation, error)
	// SetAffiliation sets who's affiliation with the node; AffiliationNone
	// removes it.
	SetAffiliation(ctx context.Context, service jid.JID, node string, who jid.JID, aff Affiliation) error
	// Affiliations returns the node's affiliations sorted by JID.
	Affiliations(ctx context.Context, service jid.JID, node string) ([]PubSubAffiliation, error)
	// AffiliationsOf returns who's affiliations with nodes of the service,
	// sorted by node; none for an unknown service.
	AffiliationsOf(ctx context.Context, service, who jid.JID) ([]PubSubAffiliation, error)

	// Subscribe subscribes who, bare or full JID as given, in the state
	// given, with a new random SubID, and returns the subscription with
	// created true. If who has a subscription to the node already, it is
	// left as it is and returned with created false (§6.1.6).
	Subscribe(ctx context.Context, service jid.JID, node string, who jid.JID, state SubscriptionState) (sub PubSubSubscription, created bool, err error)
	// Subscription returns who's subscription to the node, matching who
	// exactly; ErrNotFound if it has none.
	Subscription(ctx context.Context, service jid.JID, node string, who jid.JID) (PubSubSubscription, error)
	// SetSubscriptionState changes the state of who's subscription, e.g.
	// from pending to subscribed when an owner approves it; ErrNotFound
	// if who has none.
	SetSubscriptionState(ctx context.Context, service jid.JID, node string, who jid.JID, state SubscriptionState) error
	// Unsubscribe deletes who's subscription, if its SubID is subID or
	// subID is ""; ErrNotFound if there is no such subscription.
	Unsubscribe(ctx context.Context, service jid.JID, node string, who jid.JID, subID string) error
	// Subscriptions returns the node's subscriptions sorted by JID.
	Subscriptions(ctx context.Context, service jid.JID, node string) ([]PubSubSubscription, error)
	// SubscriptionsOf returns the subscriptions of who's bare JID and of
	// each of its full JIDs (XEP-0060 §5.6) to nodes of the service,
	// sorted by node then JID; none for an unknown service.
	SubscriptionsOf(ctx context.Context, service, who jid.JID) ([]PubSubSubscription, error)
}
