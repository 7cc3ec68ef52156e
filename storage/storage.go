// Package storage declares what xmppd keeps on disk, one interface per kind
// of data, so that the server and its modules depend on what they need and
// not on a database. storage/sql implements every interface for PostgreSQL
// and SQLite.
package storage

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned (wrapped) when the record asked for does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is returned (wrapped) when a record to be created already exists.
var ErrExists = errors.New("already exists")

// Credential is what a SCRAM server needs to check one mechanism without
// knowing the password (RFC 5802 §3). PLAIN logins are checked against it
// too, so no password is ever stored.
type Credential struct {
	// Mechanism is the SCRAM family name without -PLUS, e.g. "SCRAM-SHA-256".
	Mechanism  string
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// User is one account of a served domain.
type User struct {
	Local   string
	Domain  string
	Created time.Time
	// Credentials holds one entry per SCRAM mechanism the account can use.
	Credentials []Credential
}

// Users holds accounts and their credentials. Local parts and domains are
// passed already normalised (PRECIS), so the store compares them bytewise.
type Users interface {
	// Create adds an account; ErrExists if it is there already.
	Create(ctx context.Context, u User) error
	// Get returns an account with its credentials; ErrNotFound if absent.
	Get(ctx context.Context, domain, local string) (User, error)
	// SetCredentials replaces an account's credentials and drops its FAST
	// tokens (a new password must log out what the old one let in);
	// ErrNotFound if absent.
	SetCredentials(ctx context.Context, domain, local string, creds []Credential) error
	// Delete removes an account and all its data (credentials, roster,
	// pending subscription requests, offline messages, vCard, private XML,
	// blocklist, last activity, push registrations, FAST tokens, message archive and
	// archiving preferences, its PEP service with every node, item,
	// affiliation and subscription of it, its own affiliations and
	// subscriptions with the nodes of every other pubsub service, and the
	// records of its uploaded files, whose bytes the upload module
	// removes);
	// ErrNotFound if absent.
	Delete(ctx context.Context, domain, local string) error
	// List returns the accounts of one domain, or of all domains when domain
	// is empty, sorted by domain then local part. Credentials are not filled.
	List(ctx context.Context, domain string) ([]User, error)
}

// Secrets holds the server's own random keys, each made on first use and
// kept, so that what is derived from one (the stable Bind 2 resources of
// XEP-0386) stays the same across restarts and on every node sharing the
// database.
type Secrets interface {
	// Secret returns the 32-byte key called name, making it if there is
	// none; every caller gets the same key.
	Secret(ctx context.Context, name string) ([]byte, error)
}

// Store is an open database with every kind of data xmppd keeps.
type Store interface {
	Users() Users
	Rosters() Rosters
	SubscriptionRequests() SubscriptionRequests
	Offline() Offline
	Blocklists() Blocklists
	VCards() VCards
	PrivateXML() PrivateXML
	LastActivity() LastActivity
	PushRegistrations() PushRegistrations
	Archives() Archives
	PubSub() PubSub
	Uploads() Uploads
	Rooms() Rooms
	Secrets() Secrets
	FastTokens() FastTokens
	// Close releases the database connection(s).
	Close() error
}
