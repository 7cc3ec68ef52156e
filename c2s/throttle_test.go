package c2s

import (
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	th := NewThrottle(3, 100, time.Minute)
	th.now = func() time.Time { return now }
	fail := func(ip, account string, n int) {
		for range n {
			th.Fail(ip, account)
		}
	}
	fail("192.0.2.1", "alice", 2)
	if th.Blocked("192.0.2.1", "alice") {
		t.Fatal("blocked after 2 of 3 failures")
	}
	th.Fail("192.0.2.1", "alice")
	for _, tc := range []struct {
		ip, account string
		blocked     bool
	}{
		{"192.0.2.1", "alice", true},
		{"::ffff:192.0.2.1", "alice", true}, // the same IPv4 client seen as mapped
		{"192.0.2.1", "bob", false},         // a colleague behind the same address
		{"192.0.2.1", "", false},            // the address as a whole is far from its ceiling
		{"192.0.2.2", "alice", false},
		{"2001:db8::1", "alice", false},
	} {
		if got := th.Blocked(tc.ip, tc.account); got != tc.blocked {
			t.Errorf("Blocked(%s, %q) = %v, want %v", tc.ip, tc.account, got, tc.blocked)
		}
	}
	// IPv6 failures count per /64: changing the interface identifier does
	// not reset them, another /64 is not affected.
	fail("2001:db8::1", "alice", 1)
	fail("2001:db8::2", "alice", 1)
	fail("2001:db8::ffff:3", "alice", 1)
	if !th.Blocked("2001:db8::99", "alice") {
		t.Error("a /64 with 3 failures from different addresses is not blocked")
	}
	if th.Blocked("2001:db8:0:1::1", "alice") {
		t.Error("another /64 is blocked")
	}
	// Failures fade: still counted in the next window, gone after two.
	now = now.Add(time.Minute + time.Second)
	if !th.Blocked("192.0.2.1", "alice") {
		t.Error("unblocked one window later; the previous window still counts")
	}
	now = now.Add(time.Minute + time.Second)
	if th.Blocked("192.0.2.1", "alice") || th.Blocked("2001:db8::1", "alice") {
		t.Error("still blocked two windows later")
	}
	if n := len(th.cur) + len(th.prev); n != 0 {
		t.Errorf("%d entries kept after two windows", n)
	}
}

// TestThrottlePerAddress checks the per-address ceiling: failures spread
// over many accounts, none of them at its own limit, block the address for
// every account, and only that address.
func TestThrottlePerAddress(t *testing.T) {
	th := NewThrottle(3, 10, time.Hour)
	for i := range 10 {
		th.Fail("192.0.2.1", string(rune('a'+i)))
	}
	for _, tc := range []struct {
		ip, account string
		blocked     bool
	}{
		{"192.0.2.1", "", true},
		{"192.0.2.1", "zed", true},
		{"192.0.2.2", "a", false},
	} {
		if got := th.Blocked(tc.ip, tc.account); got != tc.blocked {
			t.Errorf("Blocked(%s, %q) = %v, want %v", tc.ip, tc.account, got, tc.blocked)
		}
	}
}

func TestThrottleDisabled(t *testing.T) {
	th := NewThrottle(0, 0, time.Minute)
	for range 100 {
		th.Fail("192.0.2.1", "alice")
	}
	if th.Blocked("192.0.2.1", "alice") || th.Blocked("192.0.2.1", "") {
		t.Error("a disabled throttle blocks")
	}
}
