package config

// Example returns a commented xmppd.yaml with every option set to its
// default, for `xmppd config example`: the documentation an operator edits
// instead of reads. A test loads it, so it cannot drift from the code.
func Example() string {
	return example
}

const example = `# xmppd configuration. Every option is shown with its default value.
# Unknown keys are errors. Relative paths are relative to this file's
# directory. A value may read an environment variable as ${VAR} (an unset
# one is an error); write $${ for a literal "${".

# Holds the embedded database and generated certificates.
data_dir: ./xmppd-data

# The XMPP domains this server serves; at least one.
hosts:
  - domain: localhost   # lowercase, e.g. example.org; no user@ or /resource
    cert: ""            # PEM certificate chain; empty with key for a self-signed one in data_dir
    key: ""             # PEM private key of cert

# Sockets that accept client connections.
listeners:
  - type: c2s           # plain TCP, STARTTLS required (RFC 6120)
    address: ":5222"
  - type: c2s_tls       # TLS from the first byte (XEP-0368)
    address: ":5223"
  - type: http          # the web server: WebSocket at /xmpp-websocket, host-meta
    address: "127.0.0.1:5280"
  - type: https         # the same over TLS with the hosts' certificates, HTTP/2
    address: "127.0.0.1:5281"
  - type: turn          # the STUN/TURN relay of module turn: UDP and TCP on this port (0.0.0.0:3478 in production; open it in the firewall)
    address: "127.0.0.1:3478"
  # - type: turns       # the relay over TLS with the hosts' certificates (turns:), usually 0.0.0.0:5349
  #   address: "0.0.0.0:5349"

# The database: set one of sqlite and postgres; with neither, SQLite at
# <data_dir>/xmppd.db.
storage:
  # sqlite: ./xmppd-data/xmppd.db   # file of the embedded SQLite database
  # postgres: "postgres://xmppd:${XMPPD_DB_PASSWORD}@localhost/xmppd?sslmode=disable"   # lib/pq DSN

# Enabled modules, by ID.
modules: [disco, ping, version, time, roster, offline, blocking, carbons, vcard, private, last, register, push, mam, pep, pubsub, muc, upload, turn]

# Each module's own settings, under its ID; only enabled modules may have a
# block, and a module without one uses these defaults.
module_options:
  register:                    # in-band registration (XEP-0077)
    allow_registration: false  # let anyone create an account over XMPP; off: open registration invites spam
    per_ip: 3                  # accounts one IP address may create within window
    window: 1h
  roster:
    max_items: 1000            # contacts in one roster
  offline:
    max_messages: 1000         # messages kept for an offline account; more bounce
  vcard:
    max_size: 65536            # bytes in one vCard (XEP-0054)
  blocking:
    max_items: 1000            # JIDs in one blocklist (XEP-0191)
  push:                        # push notifications to app servers (XEP-0357)
    include_body: false        # put the message text in notifications; off: the app server and the phone vendor would read it
    min_interval: 10s          # least time between two notifications for one account
    max_registrations: 10      # app servers one account may register
    queue: 1000                # notifications waiting to be published; more are dropped
    workers: 4                 # notifications published at once
    timeout: 30s               # how long to wait for an app server's answer
  pep:                         # personal eventing (XEP-0163): OMEMO keys, avatars, bookmarks, nicknames
    max_items: 1000            # items one node keeps; also what pubsub#max_items "max" means
    max_item_bytes: 131072     # bytes in one item's payload; larger ones get payload-too-big
    max_nodes: 1000            # nodes one account may have
  pubsub:                      # publish-subscribe service (XEP-0060) at PREFIX.DOMAIN for each domain
    prefix: pubsub             # pubsub.example.org
    creators: local            # who may create nodes: local (any account of this server) or domain (the service's domain's)
    max_items: 1000            # items one node keeps; also what pubsub#max_items "max" means
    max_item_bytes: 131072     # bytes in one item's payload
    max_nodes: 10000           # nodes one service may have
  muc:                         # multi-user chat (XEP-0045) at PREFIX.DOMAIN for each domain
    prefix: conference         # conference.example.org
    creators: local            # who may create rooms: local (accounts of this server), domain (the service's domain's) or anyone
    max_rooms_per_user: 100    # rooms one user may have created and that still exist
    max_occupants: 1000        # occupants of one room, whatever its configuration says
    max_history: 100           # the longest discussion history a room may keep
    default_history: 20        # messages of history a new room keeps and sends on entering
    message_rate: 60           # messages per minute one occupant may send on average; more get resource-constraint
    message_burst: 10          # messages one occupant may send at once
    max_message_size: 65536    # bytes in one message to a room; larger ones get policy-violation
  upload:                      # HTTP File Upload (XEP-0363), a service at upload.DOMAIN; files in data_dir/upload
    domains: []                # served domains whose accounts may upload, each with upload.DOMAIN; empty: all
    max_file_size: 104857600   # bytes in one file; larger requests get file-too-large (also the disco max-file-size)
    quota: 1073741824          # bytes one account's files may take at once; 0: no quota
    daily_quota: 1073741824    # bytes one account may upload within 24 hours; 0: no daily limit
    expire_after: 7d           # delete files this long after upload (e.g. 30d, 12h); 0 keeps them
    slot_timeout: 5m           # how long a PUT URL is valid
    transfer_timeout: 10m      # the longest one PUT or GET may take (exempt from web's read/write timeouts)
    expire_every: 1h           # how often expired files are looked for
    secret: ""                 # HMAC key of the URLs, e.g. ${XMPPD_UPLOAD_SECRET}; empty: generated into data_dir/upload-secret
    public_url: ""             # base of the URLs behind a proxy, e.g. https://upload.example.org; empty: web.public_url, else https://DOMAIN:PORT of the https listener

  turn:                        # STUN/TURN relay for calls (RFC 8656) with XEP-0215 credentials
    host: ""                   # name or IP clients reach the relay at; empty: the turn listener's IP
    relay_address: ""          # public IP announced for relayed addresses (NAT'd hosts); empty: the turn listener's IP
    relay_port_min: 49152      # relayed UDP ports: open this range in the firewall
    relay_port_max: 65535
    secret: ""                 # TURN REST shared secret (also for a coturn elsewhere); empty: generated into data_dir/turn-secret
    credential_lifetime: 24h   # how long credentials handed out by XEP-0215 are valid
    max_allocations: 10        # relay allocations one account may hold at once
    bandwidth: 2097152         # bytes per second one allocation relays each way; more is dropped; 0: no bound
    allow_peers: []            # CIDRs the relay may reach although private/loopback/link-local (denied by default); a loopback-only relay may reach loopback
    external: []               # other services to list, e.g. {type: turn, host: turn.example.org, port: 3478, transport: udp, secret: S}

auth:
  scram_iterations: 4096   # PBKDF2 rounds for new SCRAM credentials, 4096 to 1000000
  allow_plain: true        # offer SASL PLAIN (never without TLS)
  fast_token_ttl: 504h     # FAST (XEP-0484) tokens log an installation in without its password this long; renewed at half
  fast_secret: ""          # key FAST tokens are derived with, the same on every node, e.g. ${XMPPD_FAST_SECRET}; empty: generated into data_dir/fast-secret

limits:
  max_stanza_size: 262144     # bytes in one stanza; a larger one closes the stream
  max_depth: 64               # XML nesting depth of one stanza
  max_sessions_per_user: 10   # resources one account may have bound at once
  outbound_queue: 1024        # stanzas waiting for a slow client before it is dropped
  login_failures: 5           # failed logins at one account from one IP within login_window before it is refused
  login_failures_per_ip: 50   # failed logins from one IP at any accounts within login_window before it is refused
  login_window: 1m            # durations are written like 30s, 5m, 1h
  ping_interval: 5m           # client silence before the server pings it (XEP-0199)
  ping_timeout: 1m            # how long the client then has to answer
  max_pending_per_ip: 32      # unauthenticated connections from one IP (IPv6: one /64)
  # Stream management (XEP-0198) on client connections.
  resume_timeout: 5m          # how long a dropped session waits to be resumed (the advertised max)
  sm_ack_after: 5             # stanzas sent before the server asks the client for an ack
  sm_ack_interval: 30s        # how long a stanza may stay unacked before the server asks anyway
  sm_max_unacked: 500         # stanzas sent and not acked; at this many the server waits for an ack
  sm_max_unacked_bytes: 2097152 # bytes of those stanzas; likewise; and most a hibernating session holds
  max_hibernating_per_user: 5 # sessions of one account waiting to be resumed; the oldest makes room
  max_hibernating: 10000      # sessions waiting to be resumed, in all
  csi_max_held: 256           # stanzas held back for an inactive client (XEP-0352); one more flushes them

# Federation with other domains (server-to-server). Add listeners of type
# s2s (STARTTLS, port 5269) and s2s_tls (direct TLS, ALPN xmpp-server, port
# 5270) to accept connections from other servers.
s2s:
  enabled: true             # reach other domains; false bounces their stanzas
  routes: {}                # remote domain -> "host:port" (or "tls://host:port" for direct TLS), bypassing DNS
  dns_server: ""            # "host:port" of the DNS server for SRV lookups; empty = system
  ca_file: ""               # extra CAs (PEM) trusted for peer certificates
  auth: allow_dialback      # allow_dialback or require_cert
  domain_auth: {}           # per remote domain: allow_dialback or require_cert
  dialback_secret: ""       # XEP-0185 key secret; empty = random at each start
  plaintext_domains: []     # domains allowed without TLS: tests only
  connect_timeout: 30s      # connecting and authenticating to a remote server
  idle_timeout: 10m         # close a stream that carried nothing this long

# Message archives (XEP-0313), kept by the mam module. The retention job
# (expire_after) runs only while the mam module is enabled; the "xmppd
# archive" commands work either way.
archive:
  default: always             # mode of an account with no preferences: always, never or roster (contacts only)
  allowed: [always, never, roster] # modes accounts may choose; must include default
  expire_after: 0             # delete messages older than this: e.g. 365d, 52w, 1y, 720h ("m" is minutes); 0 keeps them forever
  expire_batch: 1000          # messages deleted per transaction, so that routing never waits long
  expire_every: 1h            # how often expired messages are looked for

log:
  level: info    # debug, info, warn or error
  format: text   # text or json

# The web server of the http and https listeners, shared by WebSocket,
# BOSH, host-meta, upload and metrics.
web:
  public_url: ""              # base URL behind a reverse proxy, e.g. https://chat.example.org; empty: from each request
  trusted_proxies: []         # IPs or CIDRs whose X-Forwarded-For/-Proto/-Host are believed, e.g. [127.0.0.1, 10.0.0.0/8]
  max_body_size: 1048576      # bytes in a request body; more gets 413
  max_header_bytes: 16384     # bytes of request line and headers
  read_header_timeout: 10s    # time to send the headers (slowloris guard)
  read_timeout: 1m            # time to send a whole request (WebSocket is exempt)
  write_timeout: 1m           # time to take a whole response (WebSocket is exempt)
  idle_timeout: 2m            # a kept-alive connection between requests
  access_log: false           # log every request at info level
  websocket:                  # XMPP over WebSocket (RFC 7395) at /xmpp-websocket
    disabled: false
    origins: []               # allowed Origin hosts (example.org, *.example.org, *); empty: the request's own host
    allow_insecure: false     # accept plain-HTTP WebSocket from anywhere, not just loopback or a trusted HTTPS proxy
  bosh:                       # XMPP over BOSH (XEP-0124, XEP-0206) for web clients without WebSocket
    disabled: false
    path: /http-bind
    origins: []               # allowed Origin hosts, as for websocket
    allow_insecure: false     # accept plain-HTTP BOSH from anywhere, not just loopback or a trusted HTTPS proxy
    max_wait: 1m              # the longest a request is held with nothing to send (caps the client's wait)
    max_hold: 1               # requests held at once (caps the client's hold)
    inactivity: 1m            # a session with no request for this long is disconnected (stream management may keep it)
    max_pause: 0s             # the longest pause a client may ask for; 0 offers none
    polling: 0s               # shortest interval between empty polls; 0 does not check
  metrics:                    # Prometheus text format at /metrics
    enabled: false
    allow: []                 # client IPs or CIDRs that may read it, others get 403; empty: loopback (127.0.0.0/8, ::1)
`
