package c2s

import (
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	th := NewThrottle(3, time.Minute)
	th.now = func() time.Time { return now }
	fail := func(ip string, n int) {
		for range n {
			th.Fail(ip)
		}
	}
	fail("192.0.2.1", 2)
	if th.Blocked("192.0.2.1") {
		t.Fatal("blocked after 2 of 3 failures")
	}
	th.Fail("192.0.2.1")
	for _, tc := range []struct {
		ip      string
		blocked bool
	}{
		{"192.0.2.1", true},
		{"::ffff:192.0.2.1", true}, // the same IPv4 client seen as mapped
		{"192.0.2.2", false},
		{"2001:db8::1", false},
	} {
		if got := th.Blocked(tc.ip); got != tc.blocked {
			t.Errorf("Blocked(%s) = %v, want %v", tc.ip, got, tc.blocked)
		}
	}
	// IPv6 failures count per /64: changing the interface identifier does
	// not reset them, another /64 is not affected.
	fail("2001:db8::1", 1)
	fail("2001:db8::2", 1)
	fail("2001:db8::ffff:3", 1)
	if !th.Blocked("2001:db8::99") {
		t.Error("a /64 with 3 failures from different addresses is not blocked")
	}
	if th.Blocked("2001:db8:0:1::1") {
		t.Error("another /64 is blocked")
	}
	// Failures fade: still counted in the next window, gone after two.
	now = now.Add(time.Minute + time.Second)
	if !th.Blocked("192.0.2.1") {
		t.Error("unblocked one window later; the previous window still counts")
	}
	now = now.Add(time.Minute + time.Second)
	if th.Blocked("192.0.2.1") || th.Blocked("2001:db8::1") {
		t.Error("still blocked two windows later")
	}
	if n := len(th.cur) + len(th.prev); n != 0 {
		t.Errorf("%d entries kept after two windows", n)
	}
}

func TestThrottleDisabled(t *testing.T) {
	th := NewThrottle(0, time.Minute)
	for range 100 {
		th.Fail("192.0.2.1")
	}
	if th.Blocked("192.0.2.1") {
		t.Error("a disabled throttle blocks")
	}
}
