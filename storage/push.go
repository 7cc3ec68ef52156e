package storage

import (
	"context"

	"mellium.im/xmpp/jid"
)

// PushRegistration is one app server an account asked to be notified
// through (XEP-0357 §5): while the account's sessions cannot receive, the
// server publishes a summary to Node at Service.
type PushRegistration struct {
	// Service is the app server's JID, as the client gave it.
	Service jid.JID
	// Node is the pubsub node on Service that stands for the device.
	Node string
	// Form is the publish-options data form (XEP-0004 XML) the client sent
	// with enable, published along with every notification; empty for
	// none. It often holds the device's secret, so it is kept verbatim.
	Form []byte
}

// PushRegistrations holds each account's push registrations. They outlive
// restarts: a phone that registered once stays reachable until it
// disables the registration or its app server refuses a notification.
type PushRegistrations interface {
	// Put adds the registration, or replaces the form of the one with the
	// same service and node. A new one beyond limit registrations of the
	// owner returns ErrLimit (limit <= 0: no limit); a missing account
	// returns ErrNotFound.
	Put(ctx context.Context, owner jid.JID, reg PushRegistration, limit int) error
	// Remove deletes the registration of service and node, or with node ""
	// every registration of service (XEP-0357 §6); no error if absent.
	Remove(ctx context.Context, owner, service jid.JID, node string) error
	// List returns the owner's registrations sorted by service then node.
	List(ctx context.Context, owner jid.JID) ([]PushRegistration, error)
}
