package c2s

import (
	"sync"
	"time"
)

// Throttle counts failed logins per IP address: after max failures within
// window, further attempts from that address fail at once until the window
// has passed, which makes guessing passwords slow without locking accounts.
type Throttle struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu       sync.Mutex
	failures map[string]*failures
}

type failures struct {
	count int
	first time.Time
}

// maxTracked bounds the map; beyond it, expired entries are pruned.
const maxTracked = 10000

// NewThrottle returns a Throttle; max <= 0 disables it.
func NewThrottle(max int, window time.Duration) *Throttle {
	return &Throttle{max: max, window: window, now: time.Now, failures: map[string]*failures{}}
}

// Blocked tells whether ip has used up its failures.
func (t *Throttle) Blocked(ip string) bool {
	if t.max <= 0 {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.failures[ip]
	if !ok {
		return false
	}
	if t.now().Sub(f.first) > t.window {
		delete(t.failures, ip)
		return false
	}
	return f.count >= t.max
}

// Fail records a failed login from ip.
func (t *Throttle) Fail(ip string) {
	if t.max <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.failures) >= maxTracked {
		for k, f := range t.failures {
			if now.Sub(f.first) > t.window {
				delete(t.failures, k)
			}
		}
	}
	f, ok := t.failures[ip]
	if !ok || now.Sub(f.first) > t.window {
		t.failures[ip] = &failures{count: 1, first: now}
		return
	}
	f.count++
}
