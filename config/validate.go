package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
)

// SCRAM iteration bounds: RFC 7677 asks for at least 4096; the ceiling keeps
// one login from costing the server seconds of CPU.
const (
	minScramIterations = 4096
	maxScramIterations = 1_000_000
)

// minFastSecret is the shortest auth.fast_secret: as many characters as
// the generated one has bytes, 256 bits if they are random.
const minFastSecret = 32

// problem is one invalid setting, named by its path in the file
// ("hosts[1].domain") so that Load can point at the line.
type problem struct {
	path string
	msg  string
}

type problems []problem

func (ps *problems) add(path, format string, args ...any) {
	*ps = append(*ps, problem{path: path, msg: fmt.Sprintf(format, args...)})
}

// Validate reports every invalid setting at once (not just the first), so
// that `xmppd config check` shows an operator the whole list in one go. It
// checks the values only and touches no file or socket: a missing
// certificate is found when the server loads it.
func (c *Config) Validate() error {
	var errs []error
	for _, p := range c.problems() {
		errs = append(errs, fmt.Errorf("config: %s: %s", p.path, p.msg))
	}
	return errors.Join(errs...)
}

func (c *Config) problems() problems {
	var ps problems
	c.checkHosts(&ps)
	c.checkListeners(&ps)
	c.checkStorage(&ps)
	c.checkModules(&ps)
	c.checkAuth(&ps)
	c.checkLimits(&ps)
	c.checkArchive(&ps)
	c.checkLog(&ps)
	c.checkWeb(&ps)
	c.checkDeprecated(&ps)
	return ps
}

func (c *Config) checkHosts(ps *problems) {
	if len(c.Hosts) == 0 {
		ps.add("hosts", "at least one host is required")
	}
	seen := make(map[string]bool)
	for i, h := range c.Hosts {
		path := fmt.Sprintf("hosts[%d]", i)
		if msg := domainProblem(h.Domain); msg != "" {
			ps.add(path+".domain", "%s", msg)
		} else if seen[h.Domain] {
			ps.add(path+".domain", "%q is listed twice", h.Domain)
		}
		seen[h.Domain] = true
		if (h.Cert == "") != (h.Key == "") {
			ps.add(path, "set both cert and key, or neither (for a self-signed certificate)")
		}
	}
}

// domainProblem says what is wrong with a host's domain, or "" if nothing.
// The domain must already be in the normal form that JIDs compare in, so
// that the router can match it against a JID's domainpart byte for byte.
func domainProblem(domain string) string {
	if domain == "" {
		return "a domain is required"
	}
	j, err := jid.Parse(domain)
	if err != nil {
		return fmt.Sprintf("%q is not a valid domain: %v", domain, err)
	}
	if j.Localpart() != "" || j.Resourcepart() != "" {
		return fmt.Sprintf("%q is not a valid domain: it must have no user@ or /resource", domain)
	}
	if j.Domainpart() != domain {
		return fmt.Sprintf("%q is not in normal form: write %q", domain, j.Domainpart())
	}
	return ""
}

func (c *Config) checkListeners(ps *problems) {
	if len(c.Listeners) == 0 {
		ps.add("listeners", "at least one listener is required")
	}
	seen := make(map[string]bool)
	for i, l := range c.Listeners {
		path := fmt.Sprintf("listeners[%d]", i)
		switch l.Type {
		case ListenerC2SStartTLS, ListenerC2SDirectTLS, ListenerS2SStartTLS, ListenerS2SDirectTLS, ListenerHTTP, ListenerHTTPS:
		case ListenerTURN, ListenerTURNS: // module turn binds them; without the module they are unused
		default:
			ps.add(path+".type", "unknown listener type %q (want %s, %s, %s, %s, %s, %s, %s or %s)",
				l.Type, ListenerC2SStartTLS, ListenerC2SDirectTLS, ListenerS2SStartTLS, ListenerS2SDirectTLS, ListenerHTTP, ListenerHTTPS, ListenerTURN, ListenerTURNS)
		}
		if msg := addressProblem(l.Address); msg != "" {
			ps.add(path+".address", "%s", msg)
		} else if seen[l.Address] && !strings.HasSuffix(l.Address, ":0") {
			// Port 0 asks the system for a free port, different each time.
			ps.add(path+".address", "%q is used by another listener", l.Address)
		}
		seen[l.Address] = true
	}
}

// addressProblem accepts what net.Listen accepts for TCP, with a numeric
// port; port 0 (any free port) is allowed because tests use it.
func addressProblem(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not a host:port address: %v", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Sprintf("%q: port must be a number from 0 to 65535", addr)
	}
	return ""
}

func (c *Config) checkStorage(ps *problems) {
	switch {
	case c.Storage.SQLite != "" && c.Storage.Postgres != "":
		ps.add("storage", "set only one of sqlite and postgres")
	case c.Storage.SQLite == "" && c.Storage.Postgres == "":
		ps.add("storage", "set one of sqlite and postgres")
	}
}

// checkModules only rejects what is wrong whatever modules exist; whether
// an ID names a module is for the module registry to say.
func (c *Config) checkModules(ps *problems) {
	seen := make(map[string]bool)
	for i, m := range c.Modules {
		path := fmt.Sprintf("modules[%d]", i)
		switch {
		case m == "":
			ps.add(path, "empty module ID")
		case seen[m]:
			ps.add(path, "%q is listed twice", m)
		}
		seen[m] = true
	}
}

func (c *Config) checkAuth(ps *problems) {
	n := c.Auth.ScramIterations
	if n < minScramIterations || n > maxScramIterations {
		ps.add("auth.scram_iterations", "%d is out of range %d to %d (RFC 7677 asks for at least %d)",
			n, minScramIterations, maxScramIterations, minScramIterations)
	}
	if ttl := c.Auth.FastTokenTTL; ttl < time.Minute {
		ps.add("auth.fast_token_ttl", "%s is too short: at least 1m", ttl)
	}
	if n := len(c.Auth.FastSecret); n > 0 && n < minFastSecret {
		ps.add("auth.fast_secret", "%d characters is too short: at least %d", n, minFastSecret)
	}
}

func (c *Config) checkLimits(ps *problems) {
	l := c.Limits
	for _, v := range []struct {
		key string
		n   int
	}{
		{"max_stanza_size", l.MaxStanzaSize},
		{"max_depth", l.MaxDepth},
		{"max_sessions_per_user", l.MaxSessionsPerUser},
		{"outbound_queue", l.OutboundQueue},
		{"login_failures", l.LoginFailures},
		{"login_failures_per_ip", l.LoginFailuresPerIP},
		{"max_pending_per_ip", l.MaxPendingPerIP},
		{"sm_ack_after", l.SMAckAfter},
		{"sm_max_unacked", l.SMMaxUnacked},
		{"sm_max_unacked_bytes", l.SMMaxUnackedBytes},
		{"max_hibernating_per_user", l.MaxHibernatingPerUser},
		{"max_hibernating", l.MaxHibernating},
		{"csi_max_held", l.CSIMaxHeld},
	} {
		if v.n <= 0 {
			ps.add("limits."+v.key, "must be positive, not %d", v.n)
		}
	}
	positiveDurations(ps, "limits.", []namedDuration{
		{"login_window", l.LoginWindow},
		{"ping_interval", l.PingInterval},
		{"ping_timeout", l.PingTimeout},
		{"resume_timeout", l.ResumeTimeout},
		{"sm_ack_interval", l.SMAckInterval},
	})
	c.checkS2S(ps)
}

func (c *Config) checkLog(ps *problems) {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		ps.add("log.level", "unknown level %q (want debug, info, warn or error)", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		ps.add("log.format", "unknown format %q (want text or json)", c.Log.Format)
	}
}

func (c *Config) checkS2S(ps *problems) {
	s := c.S2S
	policy := func(key, v string) {
		if v != S2SAuthAllowDialback && v != S2SAuthRequireCert {
			ps.add(key, "unknown policy %q (want %s or %s)", v, S2SAuthAllowDialback, S2SAuthRequireCert)
		}
	}
	policy("s2s.auth", s.Auth)
	for _, d := range sortedKeys(s.DomainAuth) {
		policy("s2s.domain_auth."+d, s.DomainAuth[d])
	}
	for _, d := range sortedKeys(s.Routes) {
		// "tls://host:port" asks for direct TLS (XEP-0368).
		route := s.Routes[d]
		if len(route) > 6 && strings.EqualFold(route[:6], "tls://") {
			route = route[6:]
		}
		if msg := addressProblem(route); msg != "" {
			ps.add("s2s.routes."+d, "%s", msg)
		}
	}
	if s.DNSServer != "" {
		if msg := addressProblem(s.DNSServer); msg != "" {
			ps.add("s2s.dns_server", "%s", msg)
		}
	}
	if s.ConnectTimeout <= 0 {
		ps.add("s2s.connect_timeout", "must be positive, not %s", s.ConnectTimeout)
	}
	if s.IdleTimeout <= 0 {
		ps.add("s2s.idle_timeout", "must be positive, not %s", s.IdleTimeout)
	}
}

func (c *Config) checkArchive(ps *problems) {
	a := c.Archive
	modes := strings.Join(ArchiveModes, ", ")
	if !slices.Contains(ArchiveModes, a.Default) {
		ps.add("archive.default", "unknown mode %q (want %s)", a.Default, modes)
	} else if !a.Allows(a.Default) && len(a.Allowed) > 0 {
		ps.add("archive.default", "%q is not among archive.allowed (%s): add it there", a.Default, strings.Join(a.Allowed, ", "))
	}
	if len(a.Allowed) == 0 {
		ps.add("archive.allowed", "at least one mode is required (%s); it must include archive.default", modes)
	}
	seen := make(map[string]bool)
	for i, m := range a.Allowed {
		path := fmt.Sprintf("archive.allowed[%d]", i)
		switch {
		case !slices.Contains(ArchiveModes, m):
			ps.add(path, "unknown mode %q (want %s)", m, modes)
		case seen[m]:
			ps.add(path, "%q is listed twice", m)
		}
		seen[m] = true
	}
	if a.ExpireAfter < 0 {
		ps.add("archive.expire_after", "must not be negative, not %s (0 keeps messages forever)", a.ExpireAfter.Duration())
	}
	if a.ExpireBatch <= 0 {
		ps.add("archive.expire_batch", "must be positive, not %d", a.ExpireBatch)
	}
	if a.ExpireEvery <= 0 {
		ps.add("archive.expire_every", "must be positive, not %s", a.ExpireEvery)
	}
}

func (c *Config) checkWeb(ps *problems) {
	w := c.Web
	if w.PublicURL != "" {
		u, err := url.Parse(w.PublicURL)
		switch {
		case err != nil:
			ps.add("web.public_url", "%q is not a URL: %v", w.PublicURL, err)
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			ps.add("web.public_url", "%q must be an absolute http:// or https:// URL", w.PublicURL)
		case u.RawQuery != "" || u.Fragment != "":
			ps.add("web.public_url", "%q must have no query or fragment", w.PublicURL)
		}
	}
	addressesOrPrefixes(ps, "web.trusted_proxies", w.TrustedProxies)
	for i, o := range w.WebSocket.Origins {
		if o == "" || strings.Contains(o, "/") {
			ps.add(fmt.Sprintf("web.websocket.origins[%d]", i), "%q must be a host pattern such as example.org, *.example.org or *", o)
		}
	}
	if w.MaxBodySize <= 0 {
		ps.add("web.max_body_size", "must be positive, not %d", w.MaxBodySize)
	}
	if w.MaxHeaderBytes <= 0 {
		ps.add("web.max_header_bytes", "must be positive, not %d", w.MaxHeaderBytes)
	}
	positiveDurations(ps, "web.", []namedDuration{
		{"read_header_timeout", w.ReadHeaderTimeout},
		{"read_timeout", w.ReadTimeout},
		{"write_timeout", w.WriteTimeout},
		{"idle_timeout", w.IdleTimeout},
	})
	addressesOrPrefixes(ps, "web.metrics.allow", w.Metrics.Allow)
}

// addressesOrPrefixes checks that every entry of the list at key is an IP
// address or a CIDR block.
func addressesOrPrefixes(ps *problems, key string, list []string) {
	for i, p := range list {
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err != nil {
			ps.add(fmt.Sprintf("%s[%d]", key, i), "%q is neither an IP address nor a CIDR block", p)
		}
	}
}

// namedDuration is a duration setting and its key.
type namedDuration struct {
	key string
	d   time.Duration
}

// positiveDurations reports each setting that is not positive.
func positiveDurations(ps *problems, prefix string, ds []namedDuration) {
	for _, v := range ds {
		if v.d <= 0 {
			ps.add(prefix+v.key, "must be positive, not %s", v.d)
		}
	}
}
