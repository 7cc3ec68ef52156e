package core

import (
	"log/slog"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// EventKind says what a notification is about.
type EventKind int

// The notifications of XEP-0060 §7.1.2, §7.2.2.1, §8.2.2, §8.4.2, §8.5.2.
const (
	EventItems EventKind = iota
	EventRetract
	EventConfig
	EventDelete
	EventPurge
)

// Notification is what a change to a node tells its subscribers: the
// service that sends it (Service.Notify) chooses the recipients, since
// who they are is the service's own matter (PEP adds the contacts whose
// caps ask for the node).
type Notification struct {
	Service jid.JID
	Node    storage.PubSubNode
	Kind    EventKind
	// Event is the <event/> to send inside a headline message.
	Event *router.Element
	// Subscribers are the node's subscriptions as they were before the
	// change (a deleted node has none left).
	Subscribers []storage.PubSubSubscription
	// Affiliations are the node's affiliations, for access checks of
	// whitelist nodes.
	Affiliations []storage.PubSubAffiliation
}

// ItemsEvent builds the <event/> of published items (XEP-0060 §7.1.2.1),
// with their payloads when withPayload (pubsub#deliver_payloads).
func ItemsEvent(node string, items []storage.PubSubItem, withPayload bool, log *slog.Logger) *router.Element {
	its := router.NewElement(NSEvent, "items", "node", node)
	for _, it := range items {
		its.Append(ItemElement(NSEvent, it, withPayload, log))
	}
	return router.NewElement(NSEvent, "event").Append(its)
}

// RetractEvent builds the <event/> of retracted items (§7.2.2.1).
func RetractEvent(node string, ids ...string) *router.Element {
	its := router.NewElement(NSEvent, "items", "node", node)
	for _, id := range ids {
		its.Append(router.NewElement(NSEvent, "retract", "id", id))
	}
	return router.NewElement(NSEvent, "event").Append(its)
}

// NodeEvent builds the <event/> of a deleted or purged node, or of a
// changed configuration (local "delete", "purge", "configuration").
func NodeEvent(local, node string) *router.Element {
	return router.NewElement(NSEvent, "event").Append(router.NewElement(NSEvent, local, "node", node))
}

// ItemElement builds an <item/> in namespace ns (NS in items results,
// NSEvent in notifications) with its payload when withPayload. A stored
// payload that does not parse is logged and left out.
func ItemElement(ns string, it storage.PubSubItem, withPayload bool, log *slog.Logger) *router.Element {
	e := router.NewElement(ns, "item", "id", it.ID)
	if ns == NSEvent && it.Publisher.Domainpart() != "" {
		e.SetAttr("publisher", it.Publisher.Bare().String())
	}
	if withPayload && len(it.Payload) > 0 {
		p, err := router.ParseElement(it.Payload, "")
		if err != nil {
			if log != nil {
				log.Error("pubsub: stored payload", "item", it.ID, "err", err)
			}
			return e
		}
		e.Append(p)
	}
	return e
}

// Message wraps an <event/> in the headline message a service sends
// (XEP-0163 §4.3.1, XEP-0060 §7.1.2.1).
func Message(from, to jid.JID, event *router.Element) *router.Stanza {
	st := &router.Stanza{Element: router.NewElement("", "message", "type", "headline", "id", router.NewID())}
	st.SetFrom(from)
	st.SetTo(to)
	st.Append(event)
	return st
}
