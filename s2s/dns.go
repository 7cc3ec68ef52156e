package s2s

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// DefaultPort is where a server is reached when its domain publishes no
// SRV records at all (RFC 6120 §3.2.2).
const DefaultPort = 5269

// routeTLSPrefix marks a static route to a direct TLS port ("tls://host:port").
const routeTLSPrefix = "tls://"

// ErrNoService means the remote domain said in DNS that it does not serve
// XMPP server-to-server connections: an SRV record with the target "."
// (RFC 2782), which also forbids falling back to the domain's address
// (XEP-0368 §5). Retrying soon will not help; bounce with
// remote-server-not-found.
var ErrNoService = errors.New("domain offers no xmpp-server service")

// Target is one place to connect to for a remote domain.
type Target struct {
	// Host is a DNS name or an IP literal. Names that came from DNS (SRV
	// targets and the address fallback) are fully qualified, ending in a
	// dot, so that resolving them never appends the local search domains;
	// a static route's host is used as written. Host is never the name to
	// verify the peer's certificate against or to send as TLS SNI: that is
	// always the remote domain (RFC 6120 §13.7.2.1, XEP-0368 §3).
	Host string
	Port uint16
	// DirectTLS means TLS starts at once, with ALPN "xmpp-server", instead
	// of STARTTLS: the target came from an _xmpps-server record
	// (XEP-0368) or a "tls://" route.
	DirectTLS bool
}

// String writes the target in the syntax of a static route, so that
// what `xmppd s2s check` prints can be pasted into the configuration.
func (t Target) String() string {
	hostPort := net.JoinHostPort(strings.TrimSuffix(t.Host, "."), strconv.Itoa(int(t.Port)))
	if t.DirectTLS {
		return routeTLSPrefix + hostPort
	}
	return hostPort
}

// ParseRoute reads a static route: "host:port" is a STARTTLS port and
// "tls://host:port" a direct TLS port. Direct TLS routes exist because an
// operator who bypasses DNS still has to say which of the two kinds of
// port the peer listens on, and SRV is where that is said otherwise.
func ParseRoute(route string) (Target, error) {
	rest, direct := strings.CutPrefix(route, routeTLSPrefix)
	host, portText, err := net.SplitHostPort(rest)
	if err != nil {
		return Target{}, fmt.Errorf("s2s: route %q: %w", route, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 || host == "" {
		return Target{}, fmt.Errorf("s2s: route %q: want host:port or tls://host:port with a port from 1 to 65535", route)
	}
	return Target{Host: host, Port: uint16(port), DirectTLS: direct}, nil
}

// Resolver finds where to connect for a remote domain: a static route if
// the configuration has one, else DNS SRV records (RFC 6120 §3.2,
// XEP-0368), else the domain's own address.
type Resolver struct {
	routes map[string]parsedRoute
	dns    *net.Resolver
	server string // DNSServer, "" for the system's
}

type parsedRoute struct {
	target Target
	err    error
}

// NewResolver builds a resolver from config.S2S's Routes and DNSServer.
// An empty dnsServer uses the system resolver; otherwise every query (SRV
// and the address lookups of the targets) goes to that "host:port" with
// Go's own resolver, over UDP and over TCP when an answer is truncated,
// so that a test network or a private zone needs no change to the host.
// A malformed route is reported when its domain is looked up.
func NewResolver(routes map[string]string, dnsServer string) *Resolver {
	r := &Resolver{routes: make(map[string]parsedRoute, len(routes)), dns: net.DefaultResolver}
	for domain, route := range routes {
		t, err := ParseRoute(route)
		r.routes[routeKey(domain)] = parsedRoute{target: t, err: err}
	}
	if dnsServer != "" {
		r.server = dnsServer
		r.dns = &net.Resolver{
			PreferGo: true,
			// Go asks for "udp" first and "tcp" after a truncated answer:
			// keep the network, change only the server.
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, dnsServer)
			},
		}
	}
	return r
}

// routeKey is how route domains compare: DNS names are case-insensitive
// and a trailing dot changes nothing.
func routeKey(domain string) string {
	return strings.ToLower(strings.TrimSuffix(domain, "."))
}

// Targets lists where to connect for domain, best first. A static route
// is the only target. Otherwise the _xmpps-server._tcp (direct TLS) and
// _xmpp-server._tcp records are ordered as one set, by priority and then
// weighted at random (RFC 2782), because XEP-0368 §3 says both kinds
// SHOULD be treated as the same record so that the domain's operator,
// not we, chooses between STARTTLS and direct TLS. With no SRV records
// of either kind the target is domain:5269 over STARTTLS; a DNS failure
// other than "no such records" is returned rather than falling back,
// since records may exist that we could not see.
func (r *Resolver) Targets(ctx context.Context, domain string) ([]Target, error) {
	if route, ok := r.routes[routeKey(domain)]; ok {
		if route.err != nil {
			return nil, route.err
		}
		return []Target{route.target}, nil
	}
	// A JID's domainpart may be an IP address (RFC 7622 §3.2), IPv6 in
	// brackets: it has no SRV records and no name to qualify.
	if ip := net.ParseIP(strings.Trim(domain, "[]")); ip != nil {
		return []Target{{Host: ip.String(), Port: DefaultPort}}, nil
	}
	fqdn := strings.TrimSuffix(domain, ".") + "."
	var direct, starttls srvAnswer
	var wg sync.WaitGroup
	wg.Go(func() { direct = r.lookupSRV(ctx, "xmpps-server", fqdn, true) })
	wg.Go(func() { starttls = r.lookupSRV(ctx, "xmpp-server", fqdn, false) })
	wg.Wait()

	candidates := append(direct.candidates, starttls.candidates...)
	switch {
	case len(candidates) > 0:
		orderSRV(candidates)
		targets := make([]Target, len(candidates))
		for i, c := range candidates {
			targets[i] = c.target
		}
		return targets, nil
	case direct.err != nil:
		return nil, fmt.Errorf("s2s: look up _xmpps-server._tcp.%s: %w", fqdn, direct.err)
	case starttls.err != nil:
		return nil, fmt.Errorf("s2s: look up _xmpp-server._tcp.%s: %w", fqdn, starttls.err)
	case direct.refused || starttls.refused:
		// A "." record shows the domain uses SRV and has no (other)
		// usable port: XEP-0368 §5 forbids the address fallback.
		return nil, fmt.Errorf("s2s: %s: %w", strings.TrimSuffix(fqdn, "."), ErrNoService)
	default:
		return []Target{{Host: fqdn, Port: DefaultPort}}, nil
	}
}

// srvAnswer is what one SRV lookup said: usable records, a "." record
// (refused), or a failure other than "there are no such records".
type srvAnswer struct {
	candidates []srvCandidate
	refused    bool
	err        error
}

type srvCandidate struct {
	target   Target
	priority uint16
	weight   uint16
}

func (r *Resolver) lookupSRV(ctx context.Context, service, fqdn string, directTLS bool) srvAnswer {
	_, records, err := r.dns.LookupSRV(ctx, service, "tcp", fqdn)
	err = r.namingServer(err)
	// Go drops records with malformed targets and still returns the rest
	// along with an error: use what is usable.
	if len(records) == 0 {
		var dnsErr *net.DNSError
		if err != nil && !(errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
			return srvAnswer{err: err}
		}
		return srvAnswer{}
	}
	if len(records) == 1 && records[0].Target == "." {
		return srvAnswer{refused: true}
	}
	var a srvAnswer
	for _, rec := range records {
		if rec.Target == "." {
			continue // meaningless beside other records (RFC 2782)
		}
		a.candidates = append(a.candidates, srvCandidate{
			target:   Target{Host: rec.Target, Port: rec.Port, DirectTLS: directTLS},
			priority: rec.Priority,
			weight:   rec.Weight,
		})
	}
	return a
}

// orderSRV puts candidates in the order RFC 2782 says to try them. Go's
// LookupSRV already orders each lookup's records this way, but the two
// lookups must be ordered as one set (XEP-0368 §3), so it is done again.
func orderSRV(cs []srvCandidate) {
	// Shuffle first: RFC 2782 lets records of equal weight be in any
	// order, and zone order would always favour the same one.
	rand.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
	slices.SortStableFunc(cs, func(a, b srvCandidate) int {
		if a.priority != b.priority {
			return int(a.priority) - int(b.priority)
		}
		// Weight 0 first, as the selection below needs.
		return boolInt(a.weight != 0) - boolInt(b.weight != 0)
	})
	for start := 0; start < len(cs); {
		end := start + 1
		for end < len(cs) && cs[end].priority == cs[start].priority {
			end++
		}
		orderByWeight(cs[start:end])
		start = end
	}
}

// orderByWeight is RFC 2782's selection within one priority: pick a
// record with probability proportional to its weight (a weight-0 record,
// kept at the front, has a small chance too), move it to the front, and
// repeat with the rest.
func orderByWeight(cs []srvCandidate) {
	for len(cs) > 1 {
		sum := 0
		for _, c := range cs {
			sum += int(c.weight)
		}
		n := rand.IntN(sum + 1)
		running := 0
		for i, c := range cs {
			running += int(c.weight)
			if running >= n {
				// Shift rather than swap so that the remaining weight-0
				// records stay at the front.
				copy(cs[1:i+1], cs[:i])
				cs[0] = c
				break
			}
		}
		cs = cs[1:]
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// DialError says that no target of a domain could be reached, and what
// was tried, so that a log line or `xmppd s2s check` shows the operator
// which address failed how.
type DialError struct {
	Domain   string
	Attempts []DialAttempt
}

// DialAttempt is one failed try: a target whose name did not resolve
// (Addr empty) or one of its addresses that did not accept.
type DialAttempt struct {
	Target Target
	Addr   string
	Err    error
}

func (e *DialError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "s2s: cannot connect to %s: ", e.Domain)
	if len(e.Attempts) == 0 {
		b.WriteString("no targets")
	}
	for i, a := range e.Attempts {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(a.Target.String())
		if a.Addr != "" {
			fmt.Fprintf(&b, " (%s)", a.Addr)
		}
		fmt.Fprintf(&b, ": %v", a.Err)
	}
	return b.String()
}

// Unwrap gives the attempts' errors, so that errors.Is finds, say, a
// context deadline.
func (e *DialError) Unwrap() []error {
	errs := make([]error, len(e.Attempts))
	for i, a := range e.Attempts {
		errs[i] = a.Err
	}
	return errs
}

// Dial connects over TCP to the first reachable target of domain, trying
// the targets in order and each address of a target in turn (RFC 6120
// §3.2.1 steps 5–6), and says which target it reached so that the caller
// knows whether to start TLS at once. Target names are resolved with the
// same resolver as the SRV records. A nil dialer is a zero net.Dialer;
// its Timeout bounds each attempt and ctx bounds them all.
func (r *Resolver) Dial(ctx context.Context, domain string, dialer *net.Dialer) (net.Conn, Target, error) {
	targets, err := r.Targets(ctx, domain)
	if err != nil {
		return nil, Target{}, err
	}
	if dialer == nil {
		dialer = &net.Dialer{}
	}
	dialErr := &DialError{Domain: domain}
	for _, t := range targets {
		addrs, err := r.addresses(ctx, t.Host)
		if err != nil {
			dialErr.Attempts = append(dialErr.Attempts, DialAttempt{Target: t, Err: err})
		}
		for _, ip := range addrs {
			addr := net.JoinHostPort(ip, strconv.Itoa(int(t.Port)))
			conn, err := dialer.DialContext(ctx, "tcp", addr)
			if err == nil {
				return conn, t, nil
			}
			dialErr.Attempts = append(dialErr.Attempts, DialAttempt{Target: t, Addr: addr, Err: err})
			if ctx.Err() != nil {
				return nil, Target{}, dialErr
			}
		}
		if ctx.Err() != nil {
			return nil, Target{}, dialErr
		}
	}
	return nil, Target{}, dialErr
}

// addresses resolves a target's host; an IP literal (as in a static
// route) is its own address.
func (r *Resolver) addresses(ctx context.Context, host string) ([]string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []string{host}, nil
	}
	ips, err := r.dns.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, r.namingServer(err)
	}
	addrs := make([]string, len(ips))
	for i, ip := range ips {
		addrs[i] = ip.String()
	}
	return addrs, nil
}

// namingServer corrects the server that a DNS error names: with a custom
// Dial, Go still reports the first nameserver of /etc/resolv.conf, which
// would send an operator to look at the wrong machine.
func (r *Resolver) namingServer(err error) error {
	dnsErr, ok := err.(*net.DNSError)
	if !ok || r.server == "" {
		return err
	}
	fixed := *dnsErr
	fixed.Server = r.server
	return &fixed
}
