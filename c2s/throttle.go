package c2s

import (
	"net/netip"
	"sync"
	"time"

	"github.com/xmppd/xmppd/internal/connlimit"
)

// Throttle counts failed logins per (client address, account) and per
// client address. After perAccount failures for one account from one
// address within about one window, further attempts at that account from
// that address fail at once, which makes guessing a password slow without
// locking the account for everybody: a colleague behind the same NAT still
// logs in to their own account. The per-address count has its own, higher
// ceiling, which stops one address from guessing across many names
// (spraying). IPv6 clients are counted per /64, the block one subscriber
// usually gets, so that changing addresses inside it does not reset the
// count.
//
// Counts live in two generations of one window each: the current one and
// the one before. A window's worth of failures blocks; the previous
// generation is dropped whole when a window passes, so memory stays bounded
// by the failures of two windows (two entries per failure at most) and no
// operation scans the table.
type Throttle struct {
	perAccount int
	perAddress int
	window     time.Duration
	now        func() time.Time

	mu      sync.Mutex
	started time.Time // when cur began
	cur     map[throttleKey]int
	prev    map[throttleKey]int
}

// throttleKey is one count: an address block and an account, or only the
// block (account "") for the per-address count.
type throttleKey struct {
	block   netip.Prefix
	account string
}

// NewThrottle returns a Throttle that allows perAccount failures per
// (address, account) and perAddress failures per address within window; a
// limit <= 0 turns that limit off.
func NewThrottle(perAccount, perAddress int, window time.Duration) *Throttle {
	return &Throttle{perAccount: perAccount, perAddress: perAddress, window: window, now: time.Now,
		cur: map[throttleKey]int{}, prev: map[throttleKey]int{}}
}

// rotate moves to a new generation when a window has passed; the caller
// holds mu.
func (t *Throttle) rotate() {
	now := t.now()
	switch elapsed := now.Sub(t.started); {
	case elapsed < t.window:
		return
	case elapsed < 2*t.window:
		t.prev, t.cur = t.cur, map[throttleKey]int{}
	default:
		t.prev, t.cur = map[throttleKey]int{}, map[throttleKey]int{}
	}
	t.started = now
}

// count is the failures recorded for k in both generations; the caller
// holds mu.
func (t *Throttle) count(k throttleKey) int { return t.cur[k] + t.prev[k] }

// Blocked tells whether ip has used up its failures for account, or its
// failures as a whole. With account "" only the per-address ceiling is
// checked, which can be done before the client has named an account.
func (t *Throttle) Blocked(ip, account string) bool {
	if t.perAccount <= 0 && t.perAddress <= 0 {
		return false
	}
	b := connlimit.Block(ip)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rotate()
	if t.perAddress > 0 && t.count(throttleKey{block: b}) >= t.perAddress {
		return true
	}
	return account != "" && t.perAccount > 0 && t.count(throttleKey{b, account}) >= t.perAccount
}

// Fail records a failed login at account from ip.
func (t *Throttle) Fail(ip, account string) {
	if t.perAccount <= 0 && t.perAddress <= 0 {
		return
	}
	b := connlimit.Block(ip)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rotate()
	if t.perAddress > 0 {
		t.cur[throttleKey{block: b}]++
	}
	if t.perAccount > 0 && account != "" {
		t.cur[throttleKey{b, account}]++
	}
}
