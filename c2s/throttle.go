package c2s

import (
	"net/netip"
	"sync"
	"time"

	"github.com/xmppd/xmppd/internal/connlimit"
)

// Throttle counts failed logins per client address: after max failures
// within about one window, further attempts from that address fail at once,
// which makes guessing passwords slow without locking accounts. IPv6 clients
// are counted per /64, the block one subscriber usually gets, so that
// changing addresses inside it does not reset the count.
//
// Counts live in two generations of one window each: the current one and
// the one before. A window's worth of failures blocks; the previous
// generation is dropped whole when a window passes, so memory stays bounded
// by the failures of two windows and no operation scans the table.
type Throttle struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	started time.Time // when cur began
	cur     map[netip.Prefix]int
	prev    map[netip.Prefix]int
}

// NewThrottle returns a Throttle; max <= 0 disables it.
func NewThrottle(max int, window time.Duration) *Throttle {
	return &Throttle{max: max, window: window, now: time.Now, cur: map[netip.Prefix]int{}, prev: map[netip.Prefix]int{}}
}

// rotate moves to a new generation when a window has passed; the caller
// holds mu.
func (t *Throttle) rotate() {
	now := t.now()
	switch elapsed := now.Sub(t.started); {
	case elapsed < t.window:
		return
	case elapsed < 2*t.window:
		t.prev, t.cur = t.cur, map[netip.Prefix]int{}
	default:
		t.prev, t.cur = map[netip.Prefix]int{}, map[netip.Prefix]int{}
	}
	t.started = now
}

// Blocked tells whether ip has used up its failures.
func (t *Throttle) Blocked(ip string) bool {
	if t.max <= 0 {
		return false
	}
	k := connlimit.Block(ip)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rotate()
	return t.cur[k]+t.prev[k] >= t.max
}

// Fail records a failed login from ip.
func (t *Throttle) Fail(ip string) {
	if t.max <= 0 {
		return
	}
	k := connlimit.Block(ip)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rotate()
	t.cur[k]++
}
