package turn

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestBucket checks the bandwidth bound: a second's worth at once, then
// what the rate refills.
func TestBucket(t *testing.T) {
	start := time.Unix(1000, 0)
	b := newBucket(1000)
	steps := []struct {
		at   time.Duration
		n    int
		want bool
	}{
		{0, 600, true}, {0, 400, true}, {0, 1, false},
		{100 * time.Millisecond, 100, true}, {100 * time.Millisecond, 1, false},
		{10 * time.Second, 1000, true}, {10 * time.Second, 1, false},
		{20 * time.Second, 1001, false}, // never more than a second's worth
	}
	for i, s := range steps {
		if got := b.take(s.n, start.Add(s.at)); got != s.want {
			t.Errorf("step %d (%v, %d bytes): %v, want %v", i, s.at, s.n, got, s.want)
		}
	}
}

// TestQuotaAdmit checks that an account's allocations count once
// confirmed, until they fall silent for an allocation lifetime, and that
// unconfirmed requests (forged ones) use up nothing.
func TestQuotaAdmit(t *testing.T) {
	q := newQuota(2)
	now := time.Unix(1000, 0)
	type step struct {
		user, client string
		after        time.Duration
		confirm      bool
		ok, first    bool
	}
	for i, s := range []step{
		{"a", "forged1", 0, false, true, true}, {"a", "forged2", 0, false, true, true}, {"a", "forged3", 0, false, true, true},
		{"a", "c1", 0, true, true, true}, {"a", "c1", 0, false, true, false}, {"a", "c2", 0, true, true, true},
		{"a", "c3", 0, false, false, false}, {"b", "c3", 0, true, true, true},
		{"a", "c3", allocationLifetime + time.Second, true, true, true},
	} {
		ok, first := q.admit(s.user, s.client, now.Add(s.after))
		if ok != s.ok || first != s.first {
			t.Errorf("step %d: %v %v, want %v %v", i, ok, first, s.ok, s.first)
		}
		if s.confirm {
			q.confirm(s.client, now.Add(s.after))
		}
	}
}

// TestRelayAddress checks the IP relayed addresses are announced with.
func TestRelayAddress(t *testing.T) {
	any4, any6 := netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("::")
	lo, pub, priv := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("198.51.100.4"), netip.MustParseAddr("10.0.0.4")
	v6 := netip.MustParseAddr("2001:db8::4")
	ll := netip.MustParseAddr("fe80::1")
	tests := []struct {
		name       string
		listen     netip.Addr
		configured string
		ifaces     []netip.Addr
		want       string // "" for an error
	}{
		{"configured", any4, "203.0.113.10", []netip.Addr{lo, pub}, "203.0.113.10"},
		{"listener's own", pub, "", []netip.Addr{lo, pub, priv}, "198.51.100.4"},
		{"every address, one candidate", any4, "", []netip.Addr{lo, pub, v6, ll}, "198.51.100.4"},
		{"every address, a private one", any4, "", []netip.Addr{lo, priv}, "10.0.0.4"},
		{"every address, two candidates", any4, "", []netip.Addr{lo, pub, priv}, ""},
		{"every address, none", any4, "", []netip.Addr{lo}, ""},
		{"every IPv6 address", any6, "", []netip.Addr{lo, pub, v6, ll}, "2001:db8::4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := relayAddress(tt.listen, tt.configured, tt.ifaces)
			switch {
			case tt.want == "" && (err == nil || !strings.Contains(err.Error(), "relay_address")):
				t.Errorf("got %v, %v; want an error naming relay_address", got, err)
			case tt.want != "" && (err != nil || got.String() != tt.want):
				t.Errorf("got %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// TestGuardedConn checks that a relayed address sends to the relay's own
// address only within the relay port range.
func TestGuardedConn(t *testing.T) {
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	inRange, outside, raw := listen(), listen(), listen()
	port := uint16(inRange.LocalAddr().(*net.UDPAddr).Port)
	g := &guardedConn{PacketConn: raw, relay: netip.MustParseAddr("127.0.0.1"), minP: port, maxP: port}
	for _, w := range []struct {
		to   *net.UDPConn
		data string
	}{{outside, "dropped"}, {inRange, "to another allocation"}} {
		if n, err := g.WriteTo([]byte(w.data), w.to.LocalAddr()); err != nil || n != len(w.data) {
			t.Fatalf("write %q: %d, %v", w.data, n, err)
		}
	}
	// A marker sent unguarded: if the dropped packet had gone out, it
	// would be read first.
	if _, err := raw.WriteTo([]byte("marker"), outside.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for _, r := range []struct {
		from *net.UDPConn
		want string
	}{{inRange, "to another allocation"}, {outside, "marker"}} {
		r.from.SetReadDeadline(time.Now().Add(10 * time.Second)) // a hang guard only
		n, _, err := r.from.ReadFrom(buf)
		if err != nil || string(buf[:n]) != r.want {
			t.Errorf("read %q, %v; want %q", buf[:n], err, r.want)
		}
	}
}

// TestGuarded checks when relayed addresses need guardedConn: only when
// Permit's exception for the relay address is what lets peers reach it.
func TestGuarded(t *testing.T) {
	lo, pub := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("198.51.100.4")
	any4 := netip.MustParseAddr("0.0.0.0")
	tests := []struct {
		name           string
		listen, relay  netip.Addr
		allow          []netip.Prefix
		wantGuardedFor netip.Addr // the zero Addr: none
	}{
		{"loopback relay", lo, lo, nil, netip.Addr{}},
		{"public relay", pub, pub, nil, pub},
		{"every address", any4, pub, nil, pub},
		{"allowed by allow_peers", pub, pub, []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, netip.Addr{}},
	}
	for _, tt := range tests {
		if got := guarded(tt.listen, tt.relay, tt.allow); got != tt.wantGuardedFor {
			t.Errorf("%s: guarded %v, want %v", tt.name, got, tt.wantGuardedFor)
		}
	}
}
