package turn_test

import (
	"crypto/tls"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/turn"
)

const password = "secret"

// start starts a server with the relay on a free loopback port and the
// module options o (nil: defaults), and logs alice in.
func start(t testing.TB, o *turn.Options) (*testserver.Server, *testserver.Client) {
	t.Helper()
	s := testserver.StartOn(t, storetest.Backend{Name: "sqlite"}, func(c *config.Config) {
		c.Listeners = append(c.Listeners, config.Listener{Type: config.ListenerTURN, Address: "127.0.0.1:0"})
		if o != nil {
			c.SetModuleOptions("turn", *o)
		}
	})
	s.AddUser("alice", password)
	s.AddUser("bob", password)
	return s, s.Login("alice", password, testserver.LoginOptions{Resource: "phone"})
}

// service is one <service/> of an extdisco answer.
type service struct {
	typ, host, transport, username, password, expires, restricted string
	port                                                          int
}

// services asks the server for its external services (XEP-0215).
func services(t testing.TB, c *testserver.Client, typ string) []service {
	t.Helper()
	attr := ""
	if typ != "" {
		attr = ` type='` + typ + `'`
	}
	e := c.MustRequest(t, `<iq type='get' id='x1' to='`+testserver.Domain+`'><services xmlns='`+turn.NS+`'`+attr+`/></iq>`)
	testserver.WantResult(t, e)
	var out []service
	for _, s := range e.Child(turn.NS, "services").Elements() {
		port, _ := strconv.Atoi(s.Get("port"))
		out = append(out, service{typ: s.Get("type"), host: s.Get("host"), transport: s.Get("transport"), port: port,
			username: s.Get("username"), password: s.Get("password"), expires: s.Get("expires"), restricted: s.Get("restricted")})
	}
	return out
}

// find returns the service of type typ over transport.
func find(t testing.TB, list []service, typ, transport string) service {
	t.Helper()
	for _, s := range list {
		if s.typ == typ && s.transport == transport {
			return s
		}
	}
	t.Fatalf("no %s over %s in %+v", typ, transport, list)
	return service{}
}

func addr(s service) string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// TestRelayWithExtdiscoCredentials is the path of a call: a logged-in
// client gets credentials over XMPP and allocates a relay with them over
// UDP and over TCP, and data goes both ways between the relay and a peer.
func TestRelayWithExtdiscoCredentials(t *testing.T) {
	_, alice := start(t, nil)
	list := services(t, alice, "")
	stun := find(t, list, "stun", "udp")
	if stun.username != "" {
		t.Errorf("STUN with credentials: %+v", stun)
	}
	for _, transport := range []string{"udp", "tcp"} {
		s := find(t, list, "turn", transport)
		if s.restricted != "1" || !strings.HasSuffix(s.username, ":alice@localhost") || s.password == "" {
			t.Fatalf("turn service: %+v", s)
		}
		exp, err := time.Parse(time.RFC3339, s.expires)
		if err != nil || exp.Before(time.Now().Add(23*time.Hour)) {
			t.Fatalf("expires %q: %v", s.expires, err)
		}
		res, err := turn.Probe{Server: addr(s), Transport: transport, Username: s.username, Password: s.password, Realm: testserver.Domain}.Run()
		if err != nil {
			t.Fatalf("%s: %v", transport, err)
		}
		if res.Relayed == nil || res.Reflexive == nil {
			t.Fatalf("%s: %+v", transport, res)
		}
	}
	if got := services(t, alice, "stun"); len(got) != 1 || got[0].typ != "stun" {
		t.Errorf("services of type stun: %+v", got)
	}
	cred := alice.MustRequest(t, `<iq type='get' id='c1' to='`+testserver.Domain+`'><credentials xmlns='`+turn.NS+`'><service type='turn' host='127.0.0.1'/></credentials></iq>`)
	testserver.WantResult(t, cred)
	if n := len(cred.Child(turn.NS, "credentials").Elements()); n != 2 {
		t.Errorf("credentials for the turn host: %d services: %s", n, cred)
	}
	testserver.WantIQError(t, alice.MustRequest(t, `<iq type='get' id='c2' to='`+testserver.Domain+`'><credentials xmlns='`+turn.NS+`'><service type='turn' host='turn.elsewhere.example'/></credentials></iq>`), "item-not-found", "cancel")
}

// TestRefusedCredentials checks that the relay takes only unexpired
// credentials made with its secret.
func TestRefusedCredentials(t *testing.T) {
	_, alice := start(t, nil)
	good := find(t, services(t, alice, "turn"), "turn", "udp")
	forged, forgedPass := turn.Credentials([]byte("not the secret"), "alice@localhost", time.Now().Add(time.Hour))
	stamp, user, _ := strings.Cut(good.username, ":")
	n, _ := strconv.ParseInt(stamp, 10, 64)
	tests := []struct{ name, user, pass string }{
		{"forged", forged, forgedPass},
		{"wrong password", good.username, "AAAA" + good.password[4:]},
		{"other account", strconv.FormatInt(n, 10) + ":bob@localhost", good.password},
		{"expired", strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10) + ":" + user, good.password},
		{"no expiry", user, good.password},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := turn.Probe{Server: addr(good), Username: tt.user, Password: tt.pass, Realm: testserver.Domain, Timeout: 2 * time.Second}.Run()
			if err == nil || !strings.Contains(err.Error(), "allocate") {
				t.Fatalf("allocation with %s credentials: %v", tt.name, err)
			}
		})
	}
}

// TestDeniedPeers checks that a relay reachable from outside refuses
// peers in the operator's networks, and that allow_peers lets some in.
func TestDeniedPeers(t *testing.T) {
	o := turn.DefaultOptions()
	o.AllowPeers = []string{"10.9.8.0/24"}
	_, alice := start(t, &o)
	s := find(t, services(t, alice, "turn"), "turn", "udp")
	for _, peer := range []string{"10.1.2.3:9", "192.168.1.1:9", "169.254.1.1:9", "224.0.0.1:9", "100.64.0.1:9"} {
		_, err := turn.Probe{Server: addr(s), Username: s.username, Password: s.password, Realm: testserver.Domain, Peer: peer, Timeout: 2 * time.Second}.Run()
		if err == nil || !strings.Contains(err.Error(), "send to peer") {
			t.Errorf("peer %s: %v, want the permission refused", peer, err)
		}
	}
	// Allowed: the permission is granted; nothing answers at 10.9.8.7,
	// so the probe ends waiting for an echo.
	_, err := turn.Probe{Server: addr(s), Username: s.username, Password: s.password, Realm: testserver.Domain, Peer: "10.9.8.7:9", Timeout: time.Second}.Run()
	if err == nil || !strings.Contains(err.Error(), "read the echo") {
		t.Errorf("allowed peer: %v, want a permission and no echo", err)
	}
}

// TestPermit checks the peer ranges of a relay listening on a public
// address: denied ranges, the server's own address, allowed exceptions.
func TestPermit(t *testing.T) {
	// Listening on one address, relaying on another (relay_address).
	permit := turn.Permit(netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("203.0.113.9"), []netip.Prefix{netip.MustParsePrefix("192.168.7.0/24")})
	for _, tt := range []struct {
		peer string
		ok   bool
	}{
		{"198.51.100.7", true}, {"2001:db8::1", true},
		{"127.0.0.1", false}, {"::1", false}, {"10.0.0.1", false}, {"172.16.0.1", false}, {"192.168.1.1", false},
		{"169.254.0.1", false}, {"fe80::1", false}, {"fc00::1", false}, {"224.0.0.1", false}, {"ff02::1", false},
		{"0.0.0.0", false}, {"255.255.255.255", false}, {"100.64.1.1", false}, {"::ffff:10.0.0.1", false},
		{"203.0.113.5", false}, {"192.168.7.9", true},
		// Another allocation's relayed address: both ends of a call on
		// this relay (the ports are guarded, see guardedConn).
		{"203.0.113.9", true},
	} {
		if got := permit(net.ParseIP(tt.peer)); got != tt.ok {
			t.Errorf("peer %s: permitted %v, want %v", tt.peer, got, tt.ok)
		}
	}
}

// TestQuota checks that an account holds at most max_allocations.
func TestQuota(t *testing.T) {
	o := turn.DefaultOptions()
	o.MaxAllocations = 1
	_, alice := start(t, &o)
	s := find(t, services(t, alice, "turn"), "turn", "udp")
	probe := turn.Probe{Server: addr(s), Username: s.username, Password: s.password, Realm: testserver.Domain, Timeout: 2 * time.Second}
	if _, err := probe.Run(); err != nil {
		t.Fatalf("first allocation: %v", err)
	}
	// The first allocation's client address still counts (it was not
	// refreshed away): a second client address is over the quota.
	if _, err := probe.Run(); err == nil || !strings.Contains(err.Error(), "allocate") {
		t.Fatalf("second allocation: %v, want refused", err)
	}
}

// TestRelayOverTLS allocates through the turns listener, which serves the
// host's certificate, with credentials from XEP-0215.
func TestRelayOverTLS(t *testing.T) {
	s := testserver.StartOn(t, storetest.Backend{Name: "sqlite"}, func(c *config.Config) {
		c.Listeners = append(c.Listeners,
			config.Listener{Type: config.ListenerTURN, Address: "127.0.0.1:0"},
			config.Listener{Type: config.ListenerTURNS, Address: "127.0.0.1:0"})
	})
	s.AddUser("alice", password)
	alice := s.Login("alice", password, testserver.LoginOptions{})
	svc := find(t, services(t, alice, "turns"), "turns", "tcp")
	if svc.username == "" || svc.port == 0 {
		t.Fatalf("turns service: %+v", svc)
	}
	res, err := turn.Probe{Server: addr(svc), Transport: "tls", TLS: &tls.Config{RootCAs: s.Roots, ServerName: testserver.Domain},
		Username: svc.username, Password: svc.password, Realm: testserver.Domain}.Run()
	if err != nil || res.Relayed == nil {
		t.Fatalf("over TLS: %+v, %v", res, err)
	}
}
