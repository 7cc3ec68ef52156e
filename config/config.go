// Package config holds xmppd's typed configuration: loaded from one strict
// YAML file (an unknown key is an error naming key and line), with ${VAR}
// expansion for secrets, defaults for everything, and validation.
package config

import "time"

// Config is the whole configuration of one xmppd process.
type Config struct {
	// DataDir holds the embedded database and generated certificates.
	DataDir   string     `yaml:"data_dir"`
	Hosts     []Host     `yaml:"hosts"`
	Listeners []Listener `yaml:"listeners"`
	Storage   Storage    `yaml:"storage"`
	// Modules lists the enabled modules by ID.
	Modules []string `yaml:"modules"`
	Auth    Auth     `yaml:"auth"`
	Limits  Limits   `yaml:"limits"`
	// Registration configures in-band account creation.
	Registration Registration `yaml:"registration"`
	Log          Log          `yaml:"log"`
}

// Host is one served (virtual) domain with its certificate.
type Host struct {
	Domain string `yaml:"domain"`
	// Cert and Key are PEM file paths. Both empty means a self-signed
	// certificate generated into DataDir (only sensible for development).
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Listener types.
const (
	ListenerC2SStartTLS  = "c2s"     // plain TCP, STARTTLS required
	ListenerC2SDirectTLS = "c2s_tls" // TLS from the first byte, ALPN xmpp-client
)

// Listener is one socket the server accepts connections on.
type Listener struct {
	Type    string `yaml:"type"`
	Address string `yaml:"address"`
}

// Storage selects the database: exactly one of SQLite and Postgres.
type Storage struct {
	// SQLite is a file path of the embedded database.
	SQLite string `yaml:"sqlite"`
	// Postgres is a lib/pq DSN, e.g. "postgres://user@host/db?sslmode=disable".
	Postgres string `yaml:"postgres"`
}

// Auth configures authentication.
type Auth struct {
	// ScramIterations is the PBKDF2 iteration count for new credentials.
	ScramIterations int `yaml:"scram_iterations"`
	// AllowPlain offers SASL PLAIN (always only over TLS).
	AllowPlain bool `yaml:"allow_plain"`
}

// Limits bound what one client can make the server do.
type Limits struct {
	MaxStanzaSize      int `yaml:"max_stanza_size"`
	MaxDepth           int `yaml:"max_depth"`
	MaxSessionsPerUser int `yaml:"max_sessions_per_user"`
	// OutboundQueue is how many stanzas may wait for a slow client before
	// its session is dropped.
	OutboundQueue int `yaml:"outbound_queue"`
	// LoginFailures failed authentications from one IP within LoginWindow
	// make further attempts from it fail until the window passes.
	LoginFailures int           `yaml:"login_failures"`
	LoginWindow   time.Duration `yaml:"login_window"`
	// PingInterval is how long a client may be silent before the server
	// pings it (XEP-0199); PingTimeout how long it then has to answer.
	PingInterval time.Duration `yaml:"ping_interval"`
	PingTimeout  time.Duration `yaml:"ping_timeout"`
	// MaxRosterItems bounds one roster (RFC 6121 §2.3.3 not-allowed).
	MaxRosterItems int `yaml:"max_roster_items"`
	// MaxOfflineMessages bounds one account's offline queue (XEP-0160);
	// over it, senders get service-unavailable.
	MaxOfflineMessages int `yaml:"max_offline_messages"`
	// MaxVCardSize bounds one vCard (XEP-0054), in bytes.
	MaxVCardSize int `yaml:"max_vcard_size"`
}

// Registration configures in-band registration (XEP-0077).
type Registration struct {
	// Enabled lets anyone create an account over XMPP. Off by default:
	// open registration invites spam accounts.
	Enabled bool `yaml:"enabled"`
	// PerIP accounts may be created from one IP address within Window.
	PerIP  int           `yaml:"per_ip"`
	Window time.Duration `yaml:"window"`
}

// Log configures log/slog output.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}
