package turn

import (
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
