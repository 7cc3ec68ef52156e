// Package turn is xmppd's built-in STUN/TURN relay (RFC 8489, RFC 8656, on
// github.com/pion/turn/v3) and the XEP-0215 external service discovery
// that hands clients time-limited credentials for it, so that Jingle calls
// (XEP-0166/0167, set up with XEP-0353) connect through NAT without an
// operator running coturn beside the server.
//
// Credentials follow the TURN REST scheme coturn and ejabberd use
// (username "EXPIRY:USER", password base64(HMAC-SHA1(secret, username))),
// so the same secret also works with an external coturn. The relay refuses
// peers in the operator's own networks unless they are allowed, bounds the
// allocations of one account and the bandwidth of each allocation.
package turn

import (
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST scheme is HMAC-SHA1
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
	pionturn "github.com/pion/turn/v3"
	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/modules"
)

// ID is the module's ID.
const ID = "turn"

func init() { modules.RegisterWithOptions(ID, DefaultOptions(), New) }

// secretFile keeps the generated secret in data_dir.
const secretFile = "turn-secret"

// External is a STUN/TURN service elsewhere that XEP-0215 lists beside (or
// instead of) the built-in one: with a TURN REST Secret, clients get fresh
// credentials for it; with Username and Password, those.
type External struct {
	Type      string `yaml:"type"` // stun, turn or turns
	Host      string `yaml:"host"`
	Port      int    `yaml:"port"`
	Transport string `yaml:"transport"` // udp or tcp
	Secret    string `yaml:"secret"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

// Options are module_options.turn.
type Options struct {
	// Host is the name or address clients are told to reach the relay at;
	// empty: the turn listener's IP. (The relay listens where the
	// listener of type turn says; without one there is no relay and only
	// External services are listed.)
	Host string `yaml:"host"`
	// RelayAddress is the IP the relayed addresses are announced with
	// (the public IP of a NAT'd host); empty: the listener's IP.
	RelayAddress string `yaml:"relay_address"`
	// RelayPortMin and RelayPortMax bound the relayed ports.
	RelayPortMin int `yaml:"relay_port_min"`
	RelayPortMax int `yaml:"relay_port_max"`
	// Secret is the TURN REST secret; empty: generated into
	// data_dir/turn-secret on first start.
	Secret string `yaml:"secret"`
	// CredentialLifetime is how long handed-out credentials are valid.
	CredentialLifetime time.Duration `yaml:"credential_lifetime"`
	// MaxAllocations bounds the allocations of one account at once.
	MaxAllocations int `yaml:"max_allocations"`
	// Bandwidth bounds the bytes per second one allocation relays in each
	// direction; packets beyond it are dropped. 0: no bound.
	Bandwidth int `yaml:"bandwidth"`
	// AllowPeers are CIDRs the relay may send to although they are in a
	// denied range (loopback, private, link-local…): for tests and
	// private networks.
	AllowPeers []string `yaml:"allow_peers"`
	// External services to list.
	External []External `yaml:"external"`
}

// DefaultOptions suit a relay on a host with a public address; behind NAT
// an operator sets host and relay_address.
func DefaultOptions() Options {
	return Options{
		RelayPortMin:       49152,
		RelayPortMax:       65535,
		CredentialLifetime: 24 * time.Hour,
		MaxAllocations:     10,
		Bandwidth:          2 << 20, // 16 Mbit/s: several HD video streams
		AllowPeers:         []string{},
		External:           []External{},
	}
}

// Validate implements modules.Validator.
func (o *Options) Validate() error {
	var errs []error
	if o.RelayAddress != "" {
		if _, err := netip.ParseAddr(o.RelayAddress); err != nil {
			errs = append(errs, fmt.Errorf("relay_address: %w", err))
		}
	}
	if o.RelayPortMin < 1 || o.RelayPortMax > 65535 || o.RelayPortMin > o.RelayPortMax {
		errs = append(errs, fmt.Errorf("relay_port_min, relay_port_max: %d–%d is not a port range", o.RelayPortMin, o.RelayPortMax))
	}
	if o.Bandwidth < 0 {
		errs = append(errs, fmt.Errorf("bandwidth: must not be negative, not %d", o.Bandwidth))
	}
	errs = append(errs, modules.MustBePositive("credential_lifetime", o.CredentialLifetime),
		modules.MustBePositive("max_allocations", o.MaxAllocations))
	for _, c := range o.AllowPeers {
		if _, err := netip.ParsePrefix(c); err != nil {
			errs = append(errs, fmt.Errorf("allow_peers: %w", err))
		}
	}
	for i, e := range o.External {
		switch {
		case e.Type != "stun" && e.Type != "turn" && e.Type != "turns":
			errs = append(errs, fmt.Errorf("external[%d].type: %q is not stun, turn or turns", i, e.Type))
		case e.Host == "" || e.Port < 1 || e.Port > 65535:
			errs = append(errs, fmt.Errorf("external[%d]: host and port are required", i))
		case e.Transport != "" && e.Transport != "udp" && e.Transport != "tcp":
			errs = append(errs, fmt.Errorf("external[%d].transport: %q is not udp or tcp", i, e.Transport))
		}
	}
	return errors.Join(errs...)
}

// New returns an unstarted module with options o.
func New(o Options) *Turn { return &Turn{opts: o} }

// Turn is the module.
type Turn struct {
	opts   Options
	h      *modules.Host
	log    *slog.Logger
	secret []byte
	server *pionturn.Server
	allow  []netip.Prefix
	host   string
	port   int
	// tlsPort is the turns listener's port, 0 without one.
	tlsPort int
	quota   *quota
	// allowed is the peer check (Permit).
	allowed func(net.IP) bool
}

var (
	_ modules.Starter = (*Turn)(nil)
	_ modules.Stopper = (*Turn)(nil)
)

// Start implements modules.Starter.
func (t *Turn) Start(_ context.Context, h *modules.Host) error {
	t.h, t.log = h, h.Logger()
	secret, err := modules.LoadSecret(t.opts.Secret, filepath.Join(h.Config().DataDir, secretFile))
	if err != nil {
		return fmt.Errorf("turn: %w", err)
	}
	t.secret = secret
	for _, c := range t.opts.AllowPeers {
		t.allow = append(t.allow, netip.MustParsePrefix(c))
	}
	t.quota = newQuota(t.opts.MaxAllocations)
	if err := h.HandleIQ(targetServer, iqGet, NS, t.extdisco); err != nil {
		return err
	}
	h.AddFeature(targetServer, NS)
	var plain, secure string
	for _, l := range h.Config().Listeners {
		switch {
		case l.Type == config.ListenerTURN && plain == "":
			plain = l.Address
		case l.Type == config.ListenerTURNS && secure == "":
			secure = l.Address
		}
	}
	if plain == "" {
		if secure != "" {
			return errors.New("turn: a turns listener needs a turn listener beside it (STUN and TURN over UDP)")
		}
		return nil
	}
	var tlsLn net.Listener
	if secure != "" {
		cfg, err := h.TLSConfig()
		if err != nil {
			return fmt.Errorf("turn: turns listener: %w", err)
		}
		if tlsLn, err = tls.Listen("tcp", secure, cfg); err != nil {
			return fmt.Errorf("turn: listen turns %s: %w", secure, err)
		}
		t.tlsPort = tlsLn.Addr().(*net.TCPAddr).Port
	}
	if err := t.listen(plain, tlsLn); err != nil {
		if tlsLn != nil {
			tlsLn.Close()
		}
		return err
	}
	return nil
}

// listen starts the relay on UDP and TCP at address, and on tlsLn if not
// nil.
func (t *Turn) listen(address string, tlsLn net.Listener) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("turn: listener %q: an IP:PORT is needed: %w", address, err)
	}
	t.port = int(ap.Port())
	relayIP, err := relayAddress(ap.Addr(), t.opts.RelayAddress, interfaceAddrs())
	if err != nil {
		return err
	}
	t.host = t.opts.Host
	if t.host == "" && ap.Addr().IsUnspecified() {
		// Clients cannot reach 0.0.0.0: tell them the address relayed
		// addresses are announced at.
		t.host = relayIP.String()
	} else if t.host == "" {
		t.host = ap.Addr().String()
	}
	bind := ap.Addr().String()
	if ap.Addr().IsUnspecified() {
		bind = "0.0.0.0"
	}
	t.allowed = Permit(ap.Addr(), relayIP, t.allow)
	udp, tcp, err := listenBoth(ap)
	if err != nil {
		return err
	}
	t.port = udp.LocalAddr().(*net.UDPAddr).Port
	gen := func() pionturn.RelayAddressGenerator {
		return &limitedGenerator{
			RelayAddressGeneratorPortRange: pionturn.RelayAddressGeneratorPortRange{
				RelayAddress: net.IP(relayIP.AsSlice()),
				Address:      bind,
				MinPort:      uint16(t.opts.RelayPortMin),
				MaxPort:      uint16(t.opts.RelayPortMax),
			},
			bandwidth: t.opts.Bandwidth,
			log:       t.log,
			relay:     guarded(ap.Addr(), relayIP, t.allow),
		}
	}
	listeners := []pionturn.ListenerConfig{{Listener: tcp, RelayAddressGenerator: gen(), PermissionHandler: t.permit}}
	if tlsLn != nil {
		listeners = append(listeners, pionturn.ListenerConfig{Listener: tlsLn, RelayAddressGenerator: gen(), PermissionHandler: t.permit})
	}
	srv, err := pionturn.NewServer(pionturn.ServerConfig{
		Realm:             t.realm(),
		AuthHandler:       t.authenticate,
		LoggerFactory:     slogFactory{t.log},
		PacketConnConfigs: []pionturn.PacketConnConfig{{PacketConn: readBatched(udp, batchSize), RelayAddressGenerator: gen(), PermissionHandler: t.permit}},
		ListenerConfigs:   listeners,
	})
	if err != nil {
		udp.Close()
		tcp.Close()
		return fmt.Errorf("turn: start relay: %w", err)
	}
	t.server = srv
	t.log.Info("turn relay listening", "udp", udp.LocalAddr().String(), "tcp", tcp.Addr().String(), "tls_port", t.tlsPort,
		"relay_address", relayIP.String(), "ports", fmt.Sprintf("%d-%d", t.opts.RelayPortMin, t.opts.RelayPortMax))
	return nil
}

// listenBoth listens on UDP and TCP at ap. Port 0 (tests) picks a port
// free on both.
func listenBoth(ap netip.AddrPort) (net.PacketConn, net.Listener, error) {
	var err error
	for range 20 {
		var udp net.PacketConn
		udp, err = net.ListenPacket("udp", ap.String())
		if err != nil {
			return nil, nil, fmt.Errorf("turn: listen udp %s: %w", ap, err)
		}
		sizeBuffers(udp)
		port := udp.LocalAddr().(*net.UDPAddr).Port
		var tcp net.Listener
		tcp, err = net.Listen("tcp", netip.AddrPortFrom(ap.Addr(), uint16(port)).String())
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if ap.Port() != 0 {
			break
		}
	}
	return nil, nil, fmt.Errorf("turn: listen tcp %s: %w", ap, err)
}

// udpBuffer is the socket buffer size the relay asks for on its UDP
// sockets, each way. The kernel's default (about 200 kB, some 90 packets of
// media) overflows while the one goroutine reading the listening socket,
// which takes every client's packets, waits for a CPU: the benchmark lost
// half its packets through 50 allocations on a busy machine, all counted
// as RcvbufErrors. The kernel caps it at net.core.rmem_max/wmem_max.
const udpBuffer = 4 << 20

// sizeBuffers asks for udpBuffer on conn; a refusal leaves the kernel's
// default, which works with more loss under bursts, so it is not an error.
func sizeBuffers(conn net.PacketConn) {
	if u, ok := conn.(*net.UDPConn); ok {
		_ = u.SetReadBuffer(udpBuffer)
		_ = u.SetWriteBuffer(udpBuffer)
	}
}

// Stop implements modules.Stopper: it closes the listeners and every
// allocation.
func (t *Turn) Stop() error {
	if t.server == nil {
		return nil
	}
	if err := t.server.Close(); err != nil {
		return fmt.Errorf("turn: stop relay: %w", err)
	}
	return nil
}

// realm is the TURN realm: the server's first domain.
func (t *Turn) realm() string {
	if ds := t.h.Router().Domains(); len(ds) > 0 {
		return ds[0]
	}
	return "xmppd"
}

// Credentials returns TURN REST credentials for user valid for lifetime
// from now: what XEP-0215 hands out and what the relay checks.
func Credentials(secret []byte, user string, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + user
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// authenticate is pion's AuthHandler: it accepts an unexpired username of
// a local account, whose password it derives from the secret, within the
// account's allocation quota; pion checks the message integrity with the
// key returned.
func (t *Turn) authenticate(username, realm string, src net.Addr) ([]byte, bool) {
	stamp, user, ok := strings.Cut(username, ":")
	if !ok {
		return nil, false
	}
	exp, err := strconv.ParseInt(stamp, 10, 64)
	if err != nil || time.Now().Unix() > exp {
		t.log.Debug("turn: expired or malformed credentials", "client", src.String())
		return nil, false
	}
	if _, err := jid.Parse(user); err != nil {
		return nil, false
	}
	if ok, _ := t.quota.admit(user, src.String(), time.Now()); !ok {
		t.log.Info("turn: allocation quota reached", "account", user, "client", src.String())
		return nil, false
	}
	_, password := Credentials(t.secret, user, time.Unix(exp, 0))
	return pionturn.GenerateAuthKey(username, realm, password), true
}

// permit is pion's PermissionHandler: see Permit. pion asks only for an
// authenticated allocation, which confirms it for the quota.
func (t *Turn) permit(client net.Addr, peerIP net.IP) bool {
	if user, ok := t.quota.confirm(client.String(), time.Now()); ok {
		// The relayed address was logged as "turn: relayed" when
		// allocated.
		t.log.Info("turn: allocation", "account", user, "client", client.String())
	}
	if t.allowed(peerIP) {
		return true
	}
	t.log.Info("turn: peer refused", "client", client.String(), "peer", peerIP.String())
	return false
}

// Permit returns the peer check of a relay listening on listen and
// announcing relay, with the exceptions allow: peers in denied ranges and
// the server's own addresses are refused unless allowed (coturn's
// denied-peer-ip), so that the relay is no proxy into the operator's
// network. A relay listening on loopback may reach loopback peers, since
// only this machine reaches it. The relay address itself is a permitted
// peer: when both ends of a call relay through this server (two clients
// behind symmetric NATs, or clients that allow only relayed candidates),
// each one's peer is the other's relayed address. What may be sent there
// is bounded by guardedConn to the relay port range.
func Permit(listen, relay netip.Addr, allow []netip.Prefix) func(net.IP) bool {
	permitted := permitOthers(listen, relay, allow)
	return func(peerIP net.IP) bool {
		ip, ok := netip.AddrFromSlice(peerIP)
		if !ok {
			return false
		}
		ip = ip.Unmap()
		return permitted(ip) || ip == relay && !relay.IsUnspecified()
	}
}

// permitOthers is Permit without the exception for the relay address.
func permitOthers(listen, relay netip.Addr, allow []netip.Prefix) func(netip.Addr) bool {
	own := ownAddrs(listen, relay)
	loopbackOnly := listen.IsLoopback()
	return func(ip netip.Addr) bool {
		for _, p := range allow {
			if p.Contains(ip) {
				return true
			}
		}
		if loopbackOnly && ip.IsLoopback() {
			return true
		}
		return !denied(ip) && !own[ip]
	}
}

// guarded returns the relay address whose ports guardedConn must bound:
// relay, when only the exception of Permit lets peers reach it; else none
// (the zero Addr), since any port there was permitted anyway (a loopback
// relay, an allow_peers entry).
func guarded(listen, relay netip.Addr, allow []netip.Prefix) netip.Addr {
	if permitOthers(listen, relay, allow)(relay) {
		return netip.Addr{}
	}
	return relay
}

// guardedConn is a relayed address that sends to the relay's own address
// only at ports of the relay port range, that is, to other relayed
// addresses: the permission for the relay address (Permit) must not let a
// client reach the UDP services of this host (the TURN port itself, DNS,
// anything else bound there) from inside.
type guardedConn struct {
	net.PacketConn
	relay      netip.Addr
	minP, maxP uint16
}

// WriteTo drops, reporting it sent as UDP would, a packet to the relay
// address outside the relay port range.
func (c *guardedConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if u, ok := addr.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		if ap.Addr().Unmap() == c.relay && (ap.Port() < c.minP || ap.Port() > c.maxP) {
			return len(p), nil
		}
	}
	return c.PacketConn.WriteTo(p, addr)
}

// relayAddress is the IP relayed addresses are announced with: the
// configured one, else the listener's, else (a listener on every
// address) the machine's one global unicast address of the listener's
// family, which ifaces lists; several or none is a configuration the
// operator must settle with relay_address.
func relayAddress(listen netip.Addr, configured string, ifaces []netip.Addr) (netip.Addr, error) {
	if configured != "" {
		return netip.ParseAddr(configured)
	}
	if !listen.IsUnspecified() {
		return listen, nil
	}
	var found []netip.Addr
	for _, a := range ifaces {
		a = a.Unmap()
		if a.Is4() == listen.Is4() && a.IsGlobalUnicast() && !a.IsLinkLocalUnicast() {
			found = append(found, a)
		}
	}
	if len(found) != 1 {
		return netip.Addr{}, fmt.Errorf("turn: the turn listener %s listens on every address and this host has %d candidate addresses %v: set module_options.turn.relay_address to the IP clients reach the relay at", listen, len(found), found)
	}
	return found[0], nil
}

// interfaceAddrs lists the machine's interface addresses.
func interfaceAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}

// denied tells whether ip is in a range a public relay must not reach.
func denied(ip netip.Addr) bool {
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsUnspecified() ||
		cgnat.Contains(ip) || ip == broadcast
}

var (
	cgnat     = netip.MustParsePrefix("100.64.0.0/10")
	broadcast = netip.MustParseAddr("255.255.255.255")
)

// ownAddrs are the listen and relay addresses and, for an unspecified
// listen address, every address of the machine's interfaces.
func ownAddrs(listen, relay netip.Addr) map[netip.Addr]bool {
	own := map[netip.Addr]bool{listen: true, relay: true}
	if !listen.IsUnspecified() {
		return own
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return own
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			own[p.Addr().Unmap()] = true
		}
	}
	return own
}

// quota bounds the allocations of one account. pion asks for a user's key
// before it checks the request's integrity, so a request is only pending
// until the same client address shows it was authenticated: pion asks
// for a permission only on an allocation it authenticated (confirm).
// An allocation counts from then until its client address has been
// silent for an allocation lifetime; its refreshes keep it alive. So a
// forger who knows an account's name cannot use up its quota.
type quota struct {
	mu      sync.Mutex
	max     int
	users   map[string]map[string]time.Time // account → confirmed client address → last seen
	pending map[string]pendingClient        // client address → its account, until confirmed
}

type pendingClient struct {
	user string
	at   time.Time
}

// allocationLifetime is how long an address counts after its last
// request: pion's maximum allocation lifetime (an allocation not
// refreshed within it is gone).
const allocationLifetime = time.Hour

// maxPending bounds the addresses waiting for confirmation, which
// unauthenticated requests create.
const maxPending = 10000

func newQuota(max int) *quota {
	return &quota{max: max, users: map[string]map[string]time.Time{}, pending: map[string]pendingClient{}}
}

// admit records a request of user from client and tells whether it is
// within the quota, and whether the client address is new for the
// account.
func (q *quota) admit(user, client string, now time.Time) (ok, first bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	clients := q.users[user]
	for c, seen := range clients {
		if now.Sub(seen) > allocationLifetime {
			delete(clients, c)
		}
	}
	if _, seen := clients[client]; seen {
		clients[client] = now
		return true, false
	}
	if len(clients) >= q.max {
		return false, false
	}
	if len(q.pending) >= maxPending {
		for c, p := range q.pending {
			if now.Sub(p.at) > time.Minute {
				delete(q.pending, c)
			}
		}
		if len(q.pending) >= maxPending {
			clear(q.pending)
		}
	}
	_, waiting := q.pending[client]
	q.pending[client] = pendingClient{user, now}
	return true, !waiting
}

// confirm counts the allocation of client, whose request pion has
// authenticated, against its account, and returns the account when the
// allocation was not counted yet.
func (q *quota) confirm(client string, now time.Time) (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p, ok := q.pending[client]
	if !ok {
		return "", false
	}
	delete(q.pending, client)
	if q.users[p.user] == nil {
		q.users[p.user] = map[string]time.Time{}
	}
	q.users[p.user][client] = now
	return p.user, true
}

// discard is a logger of nothing, for pion clients without one.
var discard = slog.New(slog.DiscardHandler)

// slogFactory makes pion log through the module's logger: its info lines
// at debug level, its debug and trace lines (one per relayed packet) not
// at all.
type slogFactory struct{ log *slog.Logger }

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) logf(level slog.Level, format string, a ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, a...))
	}
}

func (l pionLogger) Trace(string)                   {}
func (l pionLogger) Tracef(string, ...any)          {}
func (l pionLogger) Debug(string)                   {}
func (l pionLogger) Debugf(string, ...any)          {}
func (l pionLogger) Info(msg string)                { l.log.Debug(msg) }
func (l pionLogger) Infof(format string, a ...any)  { l.logf(slog.LevelDebug, format, a...) }
func (l pionLogger) Warn(msg string)                { l.log.Warn(msg) }
func (l pionLogger) Warnf(format string, a ...any)  { l.logf(slog.LevelWarn, format, a...) }
func (l pionLogger) Error(msg string)               { l.log.Error(msg) }
func (l pionLogger) Errorf(format string, a ...any) { l.logf(slog.LevelError, format, a...) }
