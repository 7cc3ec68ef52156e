package s2s

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// testZone is what the test DNS server knows: records by lower-case
// fully qualified name. Names in servfail answer SERVFAIL; names absent
// from both answer NXDOMAIN; a known name without records of the asked
// type answers NOERROR with no answers, as a real server does.
type testZone struct {
	records  map[string][]dnsmessage.Resource
	servfail map[string]bool
}

func zone(rrs ...dnsmessage.Resource) testZone {
	z := testZone{records: make(map[string][]dnsmessage.Resource), servfail: make(map[string]bool)}
	for _, rr := range rrs {
		name := strings.ToLower(rr.Header.Name.String())
		z.records[name] = append(z.records[name], rr)
	}
	return z
}

func srvRR(name string, priority, weight, port uint16, target string) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeSRV, Class: dnsmessage.ClassINET, TTL: 60},
		Body:   &dnsmessage.SRVResource{Priority: priority, Weight: weight, Port: port, Target: dnsmessage.MustNewName(target)},
	}
}

func aRR(name, ip string) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
		Body:   &dnsmessage.AResource{A: netip.MustParseAddr(ip).As4()},
	}
}

// testDNS is a small authoritative DNS server on 127.0.0.1, on UDP and
// on TCP at the same port, as a resolver pointed at "host:port" expects.
type testDNS struct {
	addr       string
	zone       testZone
	tcpQueries atomic.Int32
}

// maxUDPAnswer is the classic limit: the server sends no EDNS OPT record,
// so it may not rely on the larger size Go's resolver advertises.
const maxUDPAnswer = 512

func startDNS(t *testing.T, z testZone) *testDNS {
	t.Helper()
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	// The TCP port of the same number may be taken: try a few UDP ports.
	for range 20 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatalf("no port free on both UDP and TCP: %v", err)
	}
	s := &testDNS{addr: pc.LocalAddr().String(), zone: z}
	var wg sync.WaitGroup
	wg.Go(func() { s.serveUDP(t, pc) })
	wg.Go(func() { s.serveTCP(t, ln, &wg) })
	t.Cleanup(func() {
		pc.Close()
		ln.Close()
		wg.Wait()
	})
	return s
}

func (s *testDNS) serveUDP(t *testing.T, pc net.PacketConn) {
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if answer := s.answer(t, buf[:n], maxUDPAnswer); answer != nil {
			pc.WriteTo(answer, from)
		}
	}
}

func (s *testDNS) serveTCP(t *testing.T, ln net.Listener, wg *sync.WaitGroup) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			for {
				var size [2]byte
				if _, err := io.ReadFull(conn, size[:]); err != nil {
					return
				}
				query := make([]byte, binary.BigEndian.Uint16(size[:]))
				if _, err := io.ReadFull(conn, query); err != nil {
					return
				}
				s.tcpQueries.Add(1)
				answer := s.answer(t, query, 65535)
				if answer == nil {
					return
				}
				conn.Write(binary.BigEndian.AppendUint16(nil, uint16(len(answer))))
				conn.Write(answer)
			}
		})
	}
}

// answer builds the response to query, truncated (TC set, no answers)
// if it would exceed limit; nil for a query it cannot parse.
func (s *testDNS) answer(t *testing.T, query []byte, limit int) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	name := strings.ToLower(q.Name.String())
	rrs, known := s.zone.records[name]
	rcode := dnsmessage.RCodeSuccess
	switch {
	case s.zone.servfail[name]:
		rcode = dnsmessage.RCodeServerFailure
	case !known:
		rcode = dnsmessage.RCodeNameError
	}
	var answers []dnsmessage.Resource
	for _, rr := range rrs {
		if rr.Header.Type == q.Type {
			answers = append(answers, rr)
		}
	}
	msg := dnsmessage.Message{
		Header: dnsmessage.Header{
			ID: h.ID, Response: true, Authoritative: true,
			RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rcode,
		},
		Questions: []dnsmessage.Question{q},
		Answers:   answers,
	}
	packed, err := msg.Pack()
	if err != nil {
		t.Errorf("test DNS server: pack answer for %s: %v", name, err)
		return nil
	}
	if len(packed) > limit {
		msg.Header.Truncated = true
		msg.Answers = nil
		packed, _ = msg.Pack()
	}
	return packed
}

// groups is the expected order of targets: the groups in order, the
// targets within a group in any order (equal priority, random weights).
type groups [][]Target

func checkGroups(t *testing.T, got []Target, want groups) {
	t.Helper()
	rest := got
	for i, g := range want {
		if len(rest) < len(g) {
			t.Fatalf("targets = %v, want groups %v", got, want)
		}
		gotGroup := slices.Clone(rest[:len(g)])
		rest = rest[len(g):]
		sortTargets(gotGroup)
		wantGroup := slices.Clone(g)
		sortTargets(wantGroup)
		if !slices.Equal(gotGroup, wantGroup) {
			t.Fatalf("targets = %v: group %d is %v, want %v", got, i, gotGroup, wantGroup)
		}
	}
	if len(rest) > 0 {
		t.Fatalf("targets = %v, want groups %v (extra %v)", got, want, rest)
	}
}

func sortTargets(ts []Target) {
	slices.SortFunc(ts, func(a, b Target) int { return strings.Compare(a.String(), b.String()) })
}

func TestTargets(t *testing.T) {
	const (
		xmpp  = "_xmpp-server._tcp.example.test."
		xmpps = "_xmpps-server._tcp.example.test."
	)
	tcp := func(host string, port uint16) Target { return Target{Host: host, Port: port} }
	tls := func(host string, port uint16) Target { return Target{Host: host, Port: port, DirectTLS: true} }
	tests := []struct {
		name    string
		zone    testZone
		routes  map[string]string
		domain  string
		want    groups
		wantErr error
	}{{
		name: "priority ascending",
		zone: zone(
			srvRR(xmpp, 20, 0, 5269, "b.example.test."),
			srvRR(xmpp, 10, 0, 5269, "a.example.test."),
			srvRR(xmpp, 30, 0, 5270, "c.example.test."),
		),
		want: groups{{tcp("a.example.test.", 5269)}, {tcp("b.example.test.", 5269)}, {tcp("c.example.test.", 5270)}},
	}, {
		name: "equal priority stays together",
		zone: zone(
			srvRR(xmpp, 10, 5, 5269, "a.example.test."),
			srvRR(xmpp, 20, 0, 5269, "c.example.test."),
			srvRR(xmpp, 10, 5, 5269, "b.example.test."),
		),
		want: groups{{tcp("a.example.test.", 5269), tcp("b.example.test.", 5269)}, {tcp("c.example.test.", 5269)}},
	}, {
		name: "xmpps and xmpp merged by priority",
		zone: zone(
			srvRR(xmpps, 5, 0, 443, "tls.example.test."),
			srvRR(xmpp, 10, 1, 5269, "a.example.test."),
			srvRR(xmpps, 10, 1, 5270, "a.example.test."),
			srvRR(xmpp, 20, 0, 5269, "backup.example.test."),
		),
		want: groups{
			{tls("tls.example.test.", 443)},
			{tcp("a.example.test.", 5269), tls("a.example.test.", 5270)},
			{tcp("backup.example.test.", 5269)},
		},
	}, {
		name: "only xmpps",
		zone: zone(srvRR(xmpps, 0, 0, 5270, "x.example.test.")),
		want: groups{{tls("x.example.test.", 5270)}},
	}, {
		name:    "xmpp dot: no service",
		zone:    zone(srvRR(xmpp, 0, 0, 0, ".")),
		wantErr: ErrNoService,
	}, {
		name:    "both dot: no service",
		zone:    zone(srvRR(xmpp, 0, 0, 0, "."), srvRR(xmpps, 0, 0, 0, ".")),
		wantErr: ErrNoService,
	}, {
		name:    "xmpps dot and no xmpp records: no address fallback",
		zone:    zone(srvRR(xmpps, 0, 0, 0, ".")),
		wantErr: ErrNoService,
	}, {
		name: "xmpps dot: use xmpp",
		zone: zone(srvRR(xmpps, 0, 0, 0, "."), srvRR(xmpp, 10, 0, 5269, "a.example.test.")),
		want: groups{{tcp("a.example.test.", 5269)}},
	}, {
		name: "xmpp dot: use xmpps",
		zone: zone(srvRR(xmpp, 0, 0, 0, "."), srvRR(xmpps, 10, 0, 5223, "a.example.test.")),
		want: groups{{tls("a.example.test.", 5223)}},
	}, {
		name: "no SRV records: address fallback",
		zone: zone(aRR("example.test.", "127.0.0.1")),
		want: groups{{tcp("example.test.", 5269)}},
	}, {
		name: "unknown domain: address fallback",
		zone: zone(),
		want: groups{{tcp("example.test.", 5269)}},
	}, {
		name:   "trailing dot and case in the domain",
		zone:   zone(srvRR(xmpp, 0, 0, 5269, "a.example.test.")),
		domain: "Example.TEST.",
		want:   groups{{tcp("a.example.test.", 5269)}},
	}, {
		name:   "IPv4 domain: no SRV lookup",
		zone:   zone(srvRR("_xmpp-server._tcp.127.0.0.1.", 0, 0, 5999, "a.example.test.")),
		domain: "127.0.0.1",
		want:   groups{{tcp("127.0.0.1", 5269)}},
	}, {
		name:   "IPv6 domain",
		zone:   zone(),
		domain: "[::1]",
		want:   groups{{tcp("::1", 5269)}},
	}, {
		name:   "static route wins over DNS",
		zone:   zone(srvRR(xmpp, 0, 0, 5269, "a.example.test.")),
		routes: map[string]string{"Example.test": "127.0.0.1:15269"},
		want:   groups{{tcp("127.0.0.1", 15269)}},
	}, {
		name:   "static direct TLS route",
		zone:   zone(),
		routes: map[string]string{"example.test": "tls://xmpp.example.net:5270"},
		want:   groups{{tls("xmpp.example.net", 5270)}},
	}, {
		name:   "route to another domain is not used",
		zone:   zone(),
		routes: map[string]string{"other.test": "127.0.0.1:1"},
		want:   groups{{tcp("example.test.", 5269)}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dns := startDNS(t, tt.zone)
			r := NewResolver(tt.routes, dns.addr)
			domain := tt.domain
			if domain == "" {
				domain = "example.test"
			}
			got, err := r.Targets(t.Context(), domain)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Targets() = %v, %v; want error %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Targets(): %v", err)
			}
			checkGroups(t, got, tt.want)
		})
	}
}

// A SERVFAIL is not "no records": falling back to the address could
// connect somewhere the domain never meant.
func TestTargetsDNSFailure(t *testing.T) {
	z := zone()
	z.servfail["_xmpp-server._tcp.example.test."] = true
	z.servfail["_xmpps-server._tcp.example.test."] = true
	dns := startDNS(t, z)
	r := NewResolver(nil, dns.addr)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, err := r.Targets(ctx, "example.test")
	if err == nil || errors.Is(err, ErrNoService) {
		t.Fatalf("Targets() = %v, %v; want a lookup error", got, err)
	}
	if !strings.Contains(err.Error(), "_xmpp") {
		t.Errorf("error %q does not say which lookup failed", err)
	}
}

func TestTargetsBadRoute(t *testing.T) {
	r := NewResolver(map[string]string{"example.test": "nowhere"}, "127.0.0.1:1")
	if got, err := r.Targets(t.Context(), "example.test"); err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Fatalf("Targets() = %v, %v; want an error naming the route", got, err)
	}
}

// Both records of one priority must come first some of the time,
// including one of weight 0 (RFC 2782 gives it a small chance).
func TestTargetsWeights(t *testing.T) {
	const name = "_xmpp-server._tcp.example.test."
	for _, weights := range [][2]uint16{{1, 1}, {10, 30}, {0, 3}} {
		dns := startDNS(t, zone(
			srvRR(name, 10, weights[0], 5269, "a.example.test."),
			srvRR(name, 10, weights[1], 5269, "b.example.test."),
		))
		r := NewResolver(nil, dns.addr)
		first := make(map[string]int)
		for range 200 {
			got, err := r.Targets(t.Context(), "example.test")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 {
				t.Fatalf("targets = %v, want 2", got)
			}
			first[got[0].Host]++
		}
		if first["a.example.test."] == 0 || first["b.example.test."] == 0 {
			t.Errorf("weights %v: first target counts %v, want both to appear", weights, first)
		}
	}
}

// orderByWeight must follow the weights, not just shuffle: with weights
// 1 and 99 the heavy record is first nearly always.
func TestOrderByWeightBias(t *testing.T) {
	heavyFirst := 0
	const runs = 2000
	for range runs {
		cs := []srvCandidate{
			{target: Target{Host: "light"}, weight: 1},
			{target: Target{Host: "heavy"}, weight: 99},
		}
		orderSRV(cs)
		if cs[0].target.Host == "heavy" {
			heavyFirst++
		}
	}
	// Expected 99/101 ≈ 98%; allow a wide margin.
	if heavyFirst < runs*9/10 {
		t.Errorf("heavy record first %d of %d times, want about 98%%", heavyFirst, runs)
	}
}

// An answer too big for UDP is truncated, and Go's resolver must then ask
// again over TCP through our Dial function.
func TestTargetsTruncatedAnswerUsesTCP(t *testing.T) {
	const name = "_xmpp-server._tcp.example.test."
	var rrs []dnsmessage.Resource
	var want []Target
	for i := range 40 {
		host := "server-with-a-rather-long-name-" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ".example.test."
		rrs = append(rrs, srvRR(name, uint16(i), 0, 5269, host))
		want = append(want, Target{Host: host, Port: 5269})
	}
	dns := startDNS(t, zone(rrs...))
	got, err := NewResolver(nil, dns.addr).Targets(t.Context(), "example.test")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("targets = %v, want %v", got, want)
	}
	if dns.tcpQueries.Load() == 0 {
		t.Error("no query came over TCP: the answer was not truncated or the resolver did not retry")
	}
}

func TestParseRoute(t *testing.T) {
	tests := []struct {
		route   string
		want    Target
		wantErr bool
	}{
		{route: "127.0.0.1:5269", want: Target{Host: "127.0.0.1", Port: 5269}},
		{route: "xmpp.example.net:5270", want: Target{Host: "xmpp.example.net", Port: 5270}},
		{route: "[::1]:5269", want: Target{Host: "::1", Port: 5269}},
		{route: "tls://xmpp.example.net:443", want: Target{Host: "xmpp.example.net", Port: 443, DirectTLS: true}},
		{route: "xmpp.example.net", wantErr: true},
		{route: "xmpp.example.net:0", wantErr: true},
		{route: "xmpp.example.net:70000", wantErr: true},
		{route: ":5269", wantErr: true},
		{route: "tcp://xmpp.example.net:5269", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseRoute(tt.route)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseRoute(%q) = %v, %v; want %v, error %v", tt.route, got, err, tt.want, tt.wantErr)
		}
		if err == nil {
			if again, _ := ParseRoute(got.String()); again != got {
				t.Errorf("ParseRoute(%q).String() = %q does not read back", tt.route, got.String())
			}
		}
	}
}

// closedPort returns a loopback port that nothing listens on.
func closedPort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return uint16(port)
}

func TestDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	const name = "_xmpp-server._tcp.dial.test."
	dns := startDNS(t, zone(
		// Best first: a name with no address, then a closed port, then
		// the listener.
		srvRR(name, 10, 0, 5269, "ghost.dial.test."),
		srvRR(name, 20, 0, closedPort(t), "dead.dial.test."),
		srvRR(name, 30, 0, port, "xmpp.dial.test."),
		aRR("dead.dial.test.", "127.0.0.1"),
		aRR("xmpp.dial.test.", "127.0.0.1"),
	))
	r := NewResolver(nil, dns.addr)
	conn, target, err := r.Dial(t.Context(), "dial.test", &net.Dialer{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	if want := (Target{Host: "xmpp.dial.test.", Port: port}); target != want {
		t.Errorf("Dial reached %v, want %v", target, want)
	}
	select {
	case c := <-accepted:
		if c == nil {
			t.Fatal("listener did not accept")
		}
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("listener saw no connection")
	}
}

func TestDialStaticRoute(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	// The DNS server is unreachable: a route must not need it.
	r := NewResolver(map[string]string{"routed.test": ln.Addr().String()}, "127.0.0.1:1")
	conn, target, err := r.Dial(t.Context(), "routed.test", nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	conn.Close()
	if target.Host != "127.0.0.1" || target.DirectTLS {
		t.Errorf("Dial reached %v", target)
	}
}

func TestDialNothingReachable(t *testing.T) {
	const name = "_xmpp-server._tcp.dial.test."
	dns := startDNS(t, zone(
		srvRR(name, 10, 0, 5269, "ghost.dial.test."),
		srvRR(name, 20, 0, closedPort(t), "dead.dial.test."),
		aRR("dead.dial.test.", "127.0.0.1"),
	))
	r := NewResolver(nil, dns.addr)
	conn, _, err := r.Dial(t.Context(), "dial.test", nil)
	if err == nil {
		conn.Close()
		t.Fatal("Dial succeeded, want an error")
	}
	var dialErr *DialError
	if !errors.As(err, &dialErr) || len(dialErr.Attempts) != 2 {
		t.Fatalf("Dial error = %#v, want a DialError with 2 attempts", err)
	}
	// The lookup error must name the DNS server really asked, not the
	// system's.
	for _, want := range []string{"dial.test", "ghost.dial.test:5269", "on " + dns.addr, "dead.dial.test:", "127.0.0.1:", "refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestDialNoService(t *testing.T) {
	dns := startDNS(t, zone(srvRR("_xmpp-server._tcp.dial.test.", 0, 0, 0, ".")))
	_, _, err := NewResolver(nil, dns.addr).Dial(t.Context(), "dial.test", nil)
	if !errors.Is(err, ErrNoService) {
		t.Fatalf("Dial error = %v, want ErrNoService", err)
	}
}
