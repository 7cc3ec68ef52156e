package storage

import (
	"context"
	"errors"
	"time"

	"mellium.im/xmpp/jid"
)

// The interfaces below hold per-account data. Their owner argument is the
// account's JID (a resource in it is ignored); other JIDs are compared by
// their normalised string form. Storing data for an account that does not
// exist returns ErrNotFound; reading finds nothing. Deleting an account
// (Users.Delete) deletes all of its data.

// ErrLimit is returned (wrapped) when storing would exceed a per-account
// limit, e.g. the offline queue is full.
var ErrLimit = errors.New("limit reached")

// Subscription states of a roster item (RFC 6121 §2.1.2.5).
const (
	SubNone = "none"
	SubTo   = "to"
	SubFrom = "from"
	SubBoth = "both"
)

// RosterItem is one contact of an account's roster with the state of the
// presence subscriptions between them (RFC 6121 §2.1.2 and Appendix A).
type RosterItem struct {
	// Contact is the contact's bare JID.
	Contact jid.JID
	Name    string
	// Groups are unique and sorted.
	Groups []string
	// Subscription is one of SubNone, SubTo, SubFrom, SubBoth.
	Subscription string
	// PendingOut: the owner asked to subscribe to the contact and has no
	// answer yet (shown to clients as ask='subscribe').
	PendingOut bool
	// PendingIn: the contact asked to subscribe to the owner, who has not
	// answered yet.
	PendingIn bool
	// Approved: the owner pre-approved a subscription request from the
	// contact (RFC 6121 §3.4).
	Approved bool
}

// Rosters holds each account's roster, with a version per roster (XEP-0237)
// that grows by exactly one with every change, in the same transaction as
// the change, and never on a read.
type Rosters interface {
	// Get returns the items, sorted bytewise by contact, and the roster
	// version (0 for a roster never changed), both read at one instant.
	Get(ctx context.Context, owner jid.JID) (items []RosterItem, version int64, err error)
	// Item returns one item; ErrNotFound if the contact is not in the roster.
	Item(ctx context.Context, owner, contact jid.JID) (RosterItem, error)
	// Put inserts or replaces an item and returns the new roster version.
	// Its Subscription must be one of SubNone, SubTo, SubFrom, SubBoth; its
	// Groups are stored sorted and without duplicates.
	Put(ctx context.Context, owner jid.JID, item RosterItem) (version int64, err error)
	// Remove deletes an item and returns the new roster version;
	// ErrNotFound if absent, and then the version does not change.
	Remove(ctx context.Context, owner, contact jid.JID) (version int64, err error)
	// Version returns the roster version, as Get does.
	Version(ctx context.Context, owner jid.JID) (int64, error)
	// Count returns the number of items, for the item limit.
	Count(ctx context.Context, owner jid.JID) (int, error)
}

// SubscriptionRequest is an inbound subscription request kept until the
// owner answers it, so that it is delivered again at each login (RFC 6121
// §3.1.3).
type SubscriptionRequest struct {
	From jid.JID
	// Stanza is the presence stanza as received (XML), status included.
	Stanza []byte
}

// SubscriptionRequests holds unanswered inbound subscription requests.
type SubscriptionRequests interface {
	// Add stores the request from a contact. A contact that asks again
	// while its request is pending replaces the stanza, which keeps its
	// place in List.
	Add(ctx context.Context, owner jid.JID, req SubscriptionRequest) error
	// Remove deletes it; no error if absent.
	Remove(ctx context.Context, owner, from jid.JID) error
	// List returns the pending requests, oldest first.
	List(ctx context.Context, owner jid.JID) ([]SubscriptionRequest, error)
}

// OfflineMessage is a message stored while its recipient had no available
// resource (XEP-0160).
type OfflineMessage struct {
	// ID grows with each message stored and is never reused.
	ID int64
	// Stored is when Push stored it, in UTC to the microsecond.
	Stored time.Time
	// Stanza is the message as it was routed (XML).
	Stanza []byte
}

// Offline holds messages for accounts that were offline.
type Offline interface {
	// Push stores a message unless the owner already has limit messages, in
	// which case it returns ErrLimit (limit <= 0: no limit). Concurrent
	// pushes to one account never store more than limit messages.
	Push(ctx context.Context, owner jid.JID, stanza []byte, limit int) error
	// List returns the stored messages, oldest first.
	List(ctx context.Context, owner jid.JID) ([]OfflineMessage, error)
	// Delete removes the given messages once they were delivered; ids
	// that name no message of the owner are ignored.
	Delete(ctx context.Context, owner jid.JID, ids []int64) error
	// Count returns how many messages are stored.
	Count(ctx context.Context, owner jid.JID) (int, error)
}

// Blocklists holds each account's blocked JIDs (XEP-0191). Entries are
// normalised JIDs of any form: domain, bare or full.
type Blocklists interface {
	// List returns the blocked JIDs, sorted bytewise by string form.
	List(ctx context.Context, owner jid.JID) ([]jid.JID, error)
	// Add blocks JIDs; already blocked ones are ignored.
	Add(ctx context.Context, owner jid.JID, items []jid.JID) error
	// Remove unblocks JIDs; with none given it empties the list.
	Remove(ctx context.Context, owner jid.JID, items []jid.JID) error
}

// VCards holds each account's vcard-temp (XEP-0054) as XML.
type VCards interface {
	// Get returns the vCard XML; ErrNotFound if none was stored.
	Get(ctx context.Context, owner jid.JID) ([]byte, error)
	// Set stores the vCard XML, replacing the old one.
	Set(ctx context.Context, owner jid.JID, vcard []byte) error
}

// PrivateXML holds XEP-0049 private XML, one fragment per namespace.
type PrivateXML interface {
	// Get returns the fragment stored for a namespace; ErrNotFound if none.
	Get(ctx context.Context, owner jid.JID, namespace string) ([]byte, error)
	// Set stores the fragment for its namespace.
	Set(ctx context.Context, owner jid.JID, namespace string, fragment []byte) error
}

// LastActivity remembers when each account was last online and the status
// of its last unavailable presence (XEP-0012).
type LastActivity interface {
	// Set records the logout of an account, replacing the one before.
	Set(ctx context.Context, owner jid.JID, at time.Time, status string) error
	// Get returns it, in UTC to the microsecond; ErrNotFound if the
	// account never logged out.
	Get(ctx context.Context, owner jid.JID) (at time.Time, status string, err error)
}
