// Package config holds xmppd's typed configuration: loaded from one strict
// YAML file (an unknown key is an error naming key and line), with ${VAR}
// expansion for secrets, defaults for everything, and validation.
//
// Each module's own settings are a block under module_options, which this
// package keeps as YAML with its lines and decodes, as strictly, into the
// options type the module registry hands it (modules.go): the modules
// import config, so config cannot know their types. Settings that moved
// into those blocks are still read at their old place, with a warning
// (deprecated.go).
package config

import (
	"slices"
	"time"
)

// Config is the whole configuration of one xmppd process.
type Config struct {
	// DataDir holds the embedded database and generated certificates.
	DataDir   string     `yaml:"data_dir"`
	Hosts     []Host     `yaml:"hosts"`
	Listeners []Listener `yaml:"listeners"`
	Storage   Storage    `yaml:"storage"`
	// Modules lists the enabled modules by ID.
	Modules []string `yaml:"modules"`
	// ModuleOptions holds each module's own block, by module ID, for the
	// module registry to decode into the module's options type (see
	// ModuleOptions): a module's settings live with the module.
	ModuleOptions map[string]*ModuleOptions `yaml:"module_options"`
	Auth          Auth                      `yaml:"auth"`
	Limits        Limits                    `yaml:"limits"`
	// Registration is read from old files only.
	//
	// Deprecated: in-band registration is module_options.register
	// (allow_registration, per_ip, window); Load moves these there.
	Registration Registration `yaml:"registration"`
	// S2S configures federation with other domains.
	S2S S2S `yaml:"s2s"`
	// Archive configures the message archives (XEP-0313) that the mam
	// module keeps, their retention and the archive commands: a section of
	// its own, not a module block, because the CLI's purge and stats and
	// the retention job work on the archives whether the module runs or not.
	Archive Archive `yaml:"archive"`
	Log     Log     `yaml:"log"`
	// Web configures the HTTP(S) server of the http and https listeners
	// and the WebSocket transport on it.
	Web Web `yaml:"web"`

	// Warnings are what Load found questionable but not wrong, such as
	// deprecated keys, each placed like an error ("xmppd.yaml:7: ...");
	// `xmppd config check` and `xmppd serve` print them.
	Warnings []string `yaml:"-"`

	// src is the file the configuration was loaded from, with the line
	// of each setting, for Errorf; nil for one built in code.
	src *file
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
	ListenerS2SStartTLS  = "s2s"     // server-to-server, STARTTLS
	ListenerS2SDirectTLS = "s2s_tls" // server-to-server, TLS first, ALPN xmpp-server
	ListenerHTTP         = "http"    // the web server (WebSocket, host-meta), plain HTTP
	ListenerHTTPS        = "https"   // the web server over TLS with the hosts' certificates, HTTP/2
	ListenerTURN         = "turn"    // the STUN/TURN relay of module turn, UDP and TCP on the same port
	ListenerTURNS        = "turns"   // the same relay over TLS (TCP) with the hosts' certificates
)

// Web configures the one HTTP(S) server that every web feature shares
// (package web): its limits, the proxies it trusts and the WebSocket
// transport (RFC 7395) served on it.
type Web struct {
	// PublicURL is the base URL clients reach the web server at, as
	// host-meta (XEP-0156) announces it ("https://chat.example.org"),
	// when a reverse proxy puts it elsewhere than the listener; empty:
	// built from each request.
	PublicURL string `yaml:"public_url"`
	// TrustedProxies are the addresses or CIDR blocks of reverse proxies
	// whose X-Forwarded-For, -Proto and -Host headers are believed; from
	// anyone else they are ignored.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MaxBodySize bounds a request body, in bytes (413 beyond); a route
	// may set its own.
	MaxBodySize int64 `yaml:"max_body_size"`
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// ReadHeaderTimeout is how long a client has to send its headers: the
	// slowloris guard. ReadTimeout and WriteTimeout bound a whole request
	// and response (long-lived routes such as WebSocket are exempt);
	// IdleTimeout a kept-alive connection between requests.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// AccessLog logs every request (method, path, status, bytes, time,
	// client) at info level.
	AccessLog bool `yaml:"access_log"`
	// WebSocket is the XMPP-over-WebSocket transport.
	WebSocket WebSocket `yaml:"websocket"`
	// BOSH is the XMPP-over-BOSH transport (XEP-0124, XEP-0206).
	BOSH BOSH `yaml:"bosh"`
	// Metrics is the Prometheus endpoint.
	Metrics Metrics `yaml:"metrics"`
}

// Metrics configures /metrics, the server's counters in the Prometheus
// text format. It is off unless enabled, and then answers only the
// addresses in Allow, because the figures (accounts online, login
// failures) are for the operator, not for the world.
type Metrics struct {
	// Enabled serves /metrics on the http and https listeners.
	Enabled bool `yaml:"enabled"`
	// Allow are the client addresses or CIDR blocks that may read it
	// (others get 403); the client is the one web.trusted_proxies
	// determine. Empty: loopback only.
	Allow []string `yaml:"allow"`
}

// BOSH configures XMPP over BOSH (XEP-0124, XEP-0206), for web clients
// that cannot use WebSocket.
type BOSH struct {
	// Disabled leaves the BOSH path unserved.
	Disabled bool `yaml:"disabled"`
	// Path is where it is served, "/http-bind" by default.
	Path string `yaml:"path"`
	// Origins and AllowInsecure are as for WebSocket.
	Origins       []string `yaml:"origins"`
	AllowInsecure bool     `yaml:"allow_insecure"`
	// MaxWait caps how long a request is held with nothing to send (the
	// client's wait); MaxHold how many are held at once (its hold).
	MaxWait time.Duration `yaml:"max_wait"`
	MaxHold int           `yaml:"max_hold"`
	// Inactivity is how long a session may go without a request before
	// it is treated as disconnected (stream management may keep it).
	Inactivity time.Duration `yaml:"inactivity"`
	// MaxPause is the longest pause a client may ask for; 0 offers none.
	MaxPause time.Duration `yaml:"max_pause"`
	// Polling is the shortest interval allowed between empty polls; 0
	// does not check.
	Polling time.Duration `yaml:"polling"`
}

// WebSocket configures XMPP over WebSocket (RFC 7395) at /xmpp-websocket.
type WebSocket struct {
	// Disabled leaves /xmpp-websocket unserved.
	Disabled bool `yaml:"disabled"`
	// Origins are the Origin header values allowed to connect, as
	// patterns of the origin's host ("example.org", "*.example.org") or
	// "*" for any; empty: only pages of the host the request is for.
	// Clients that send no Origin (not browsers) are always allowed.
	Origins []string `yaml:"origins"`
	// AllowInsecure accepts WebSocket logins over plain HTTP from any
	// address; by default plain HTTP is accepted only from loopback or
	// from a trusted proxy that says the client used HTTPS.
	AllowInsecure bool `yaml:"allow_insecure"`
}

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
	// FastTokenTTL is how long a FAST token (XEP-0484) is valid: the
	// longest an installation may stay offline and still log in without
	// its password. A token is replaced when half of it has passed.
	FastTokenTTL time.Duration `yaml:"fast_token_ttl"`
	// FastSecret is the key FAST tokens are derived with, which must stay
	// out of the database and be the same on every node sharing it; write
	// it as ${VAR}. Empty: generated into data_dir/fast-secret on first
	// start.
	FastSecret string `yaml:"fast_secret"`
}

// Limits bound what one client can make the server do.
type Limits struct {
	MaxStanzaSize      int `yaml:"max_stanza_size"`
	MaxDepth           int `yaml:"max_depth"`
	MaxSessionsPerUser int `yaml:"max_sessions_per_user"`
	// OutboundQueue is how many stanzas may wait for a slow client before
	// its session is dropped.
	OutboundQueue int `yaml:"outbound_queue"`
	// LoginFailures failed authentications at one account from one IP
	// (IPv6: one /64) within LoginWindow make further attempts at that
	// account from there fail until the window passes; other accounts
	// behind the same address are not affected.
	LoginFailures int `yaml:"login_failures"`
	// LoginFailuresPerIP failed authentications from one IP at any
	// accounts within LoginWindow make every further attempt from there
	// fail: a higher ceiling that stops guessing across many names.
	LoginFailuresPerIP int           `yaml:"login_failures_per_ip"`
	LoginWindow        time.Duration `yaml:"login_window"`
	// PingInterval is how long a client may be silent before the server
	// pings it (XEP-0199); PingTimeout how long it then has to answer.
	PingInterval time.Duration `yaml:"ping_interval"`
	PingTimeout  time.Duration `yaml:"ping_timeout"`
	// The module limits below are read from old files only.
	//
	// Deprecated: they are module_options.roster.max_items,
	// .offline.max_messages, .vcard.max_size and .blocking.max_items;
	// Load moves them there.
	MaxRosterItems     int `yaml:"max_roster_items"`
	MaxOfflineMessages int `yaml:"max_offline_messages"`
	MaxVCardSize       int `yaml:"max_vcard_size"`
	MaxBlocklistItems  int `yaml:"max_blocklist_items"`
	// MaxPendingPerIP bounds the connections from one IP address (IPv6:
	// one /64) that have not authenticated yet, on client and on server
	// listeners. Authenticated connections are not counted, so that many
	// users behind one NAT are not limited.
	MaxPendingPerIP int `yaml:"max_pending_per_ip"`
	// ResumeTimeout is how long a session with stream management
	// resumption (XEP-0198) outlives its dropped connection, waiting for
	// the client to resume it; it is the 'max' the server advertises, and
	// a client may ask for less. Phones lose TCP often: Prosody and
	// ejabberd keep such sessions for minutes.
	ResumeTimeout time.Duration `yaml:"resume_timeout"`
	// SMAckAfter is how many stanzas the server sends a stream management
	// client before it asks for an acknowledgement (<r/>); SMAckInterval
	// how long a stanza may stay unacknowledged before it asks anyway, so
	// that a quiet stream learns of a dead connection too.
	SMAckAfter    int           `yaml:"sm_ack_after"`
	SMAckInterval time.Duration `yaml:"sm_ack_interval"`
	// SMMaxUnacked and SMMaxUnackedBytes bound what a stream management
	// session keeps sent but unacknowledged: a window, so that when it is
	// full the server asks for an ack and writes nothing more until one
	// comes; what waits stays in the session's bounded queue.
	// SMMaxUnackedBytes also bounds what a hibernating session holds.
	SMMaxUnacked      int `yaml:"sm_max_unacked"`
	SMMaxUnackedBytes int `yaml:"sm_max_unacked_bytes"`
	// MaxHibernatingPerUser and MaxHibernating bound the sessions waiting
	// to be resumed, per account and in all. At the first, the account's
	// oldest waiting session ends to make room; at the second, a session
	// whose connection drops ends instead of waiting.
	MaxHibernatingPerUser int `yaml:"max_hibernating_per_user"`
	MaxHibernating        int `yaml:"max_hibernating"`
	// CSIMaxHeld bounds the stanzas held back for a client that said it
	// is inactive (XEP-0352): presence updates, chat states and pubsub
	// notifications wait until something important comes or the client
	// is active again; one more than this flushes them all at once, so
	// that an idle phone costs bounded memory. Prosody's csi_simple
	// holds as many.
	CSIMaxHeld int `yaml:"csi_max_held"`
}

// Registration is the old place of the in-band registration settings
// (XEP-0077).
//
// Deprecated: they are module_options.register now.
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

// S2S authentication policies for a remote domain.
const (
	// S2SAuthAllowDialback accepts a valid certificate (SASL EXTERNAL) and
	// falls back to Server Dialback (XEP-0220) when the certificate cannot
	// be validated: what most of the federated network needs today.
	S2SAuthAllowDialback = "allow_dialback"
	// S2SAuthRequireCert accepts only a certificate that validates for
	// the domain.
	S2SAuthRequireCert = "require_cert"
)

// S2S configures server-to-server connections (federation).
type S2S struct {
	// Enabled lets local users reach other domains; when false, stanzas to
	// other domains bounce with remote-server-not-found.
	Enabled bool `yaml:"enabled"`
	// Routes maps a remote domain to a "host:port" to connect to instead of
	// what DNS says: private networks and tests.
	Routes map[string]string `yaml:"routes"`
	// DNSServer is the "host:port" of the DNS server asked for SRV and
	// address records; empty uses the system resolver.
	DNSServer string `yaml:"dns_server"`
	// CAFile is a PEM bundle of CAs trusted for peer certificates in
	// addition to the system roots.
	CAFile string `yaml:"ca_file"`
	// Auth is the default policy: allow_dialback or require_cert.
	Auth string `yaml:"auth"`
	// DomainAuth overrides Auth for single remote domains.
	DomainAuth map[string]string `yaml:"domain_auth"`
	// DialbackSecret keys dialback (XEP-0185); empty means a random secret
	// at each start. Set it when several nodes serve one domain.
	DialbackSecret string `yaml:"dialback_secret"`
	// PlaintextDomains may be reached and accepted without TLS. Only for
	// tests: their traffic and their authentication are unprotected.
	PlaintextDomains []string `yaml:"plaintext_domains"`
	// ConnectTimeout bounds connecting and authenticating to a remote
	// server; IdleTimeout closes a stream that carried nothing that long.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	IdleTimeout    time.Duration `yaml:"idle_timeout"`
}

// The archiving modes of XEP-0313 §6, as config.Archive names them (the
// same strings as storage.ArchiveMode; config cannot import storage).
const (
	ArchiveAlways = "always" // archive every message
	ArchiveNever  = "never"  // archive none
	ArchiveRoster = "roster" // archive messages with roster contacts only
)

// ArchiveModes are the valid modes, in the order the docs list them.
var ArchiveModes = []string{ArchiveAlways, ArchiveNever, ArchiveRoster}

// Archive configures message archives (XEP-0313).
type Archive struct {
	// Default is the archiving mode of an account that has set no
	// preferences: always (as Prosody's default_archive_policy = true),
	// never or roster.
	Default string `yaml:"default"`
	// Allowed are the modes an account may choose in its preferences;
	// Default must be one of them. All three unless set.
	Allowed []string `yaml:"allowed"`
	// ExpireAfter is how long a message stays archived; zero keeps
	// messages forever. Written like "365d", "52w", "1y" or "720h".
	ExpireAfter Period `yaml:"expire_after"`
	// ExpireBatch is how many messages one delete of the retention job
	// removes at most: small transactions do not hold the database for
	// long while messages are being archived.
	ExpireBatch int `yaml:"expire_batch"`
	// ExpireEvery is how often the retention job looks for expired
	// messages.
	ExpireEvery time.Duration `yaml:"expire_every"`
}

// Allows says whether an account may choose mode in its preferences.
func (a Archive) Allows(mode string) bool {
	return slices.Contains(a.Allowed, mode)
}
