package push

import (
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

// TestCount checks the rate limit and the summary's count on a clock the
// test moves: one notification per min_interval per account, the
// messages between counted, the same message (its serial) counted once,
// what the interval held notified when it is over, and a reset starting
// again and dropping what was held.
func TestCount(t *testing.T) {
	p := New(DefaultOptions())
	p.jobs = make(chan job, 10)
	t.Cleanup(func() { p.Stop() })
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	p.now = func() time.Time { return now }
	alice, bob := jid.MustParse("alice@example.org"), jid.MustParse("bob@example.org")
	steps := []struct {
		name      string
		after     time.Duration
		owner     jid.JID
		serial    uint64
		reset     bool
		wantCount int
		wantDue   bool
		// wantHeld is the count of the notification that the
		// interval holds after the step, 0 for none.
		wantHeld int
	}{
		{"first", 0, alice, 1, false, 1, true, 0},
		{"same message again", 0, alice, 1, false, 1, false, 0},
		{"within the interval", time.Second, alice, 2, false, 2, false, 2},
		{"another account", 0, bob, 1, false, 1, true, 0},
		{"never routed is never a duplicate", time.Second, alice, 0, false, 3, false, 3},
		{"interval over", 10 * time.Second, alice, 3, false, 4, true, 0},
		{"an earlier message again", time.Second, alice, 1, false, 4, false, 0},
		{"within the next interval", 0, alice, 4, false, 5, false, 5},
		{"back online, then a message", 0, alice, 5, true, 1, true, 0},
	}
	for _, s := range steps {
		now = now.Add(s.after)
		if s.reset {
			p.reset(s.owner)
		}
		count, due := p.count(job{owner: s.owner, serial: s.serial, sender: s.name})
		if count != s.wantCount || due != s.wantDue {
			t.Errorf("%s: count %d due %v, want %d %v", s.name, count, due, s.wantCount, s.wantDue)
		}
		p.mu.Lock()
		a := p.accounts[s.owner.String()]
		held := a.held != nil && a.timer != nil
		p.mu.Unlock()
		if held != (s.wantHeld != 0) {
			t.Errorf("%s: held %v, want %v", s.name, held, s.wantHeld != 0)
		}
		if s.wantHeld != 0 && s.after > 0 {
			// The interval is over: what it held is notified, with
			// the last sender and the count of all.
			p.release(s.owner, a)
			select {
			case j := <-p.jobs:
				if j.count != s.wantHeld || j.sender != s.name {
					t.Errorf("%s: released count %d from %q, want %d from %q", s.name, j.count, j.sender, s.wantHeld, s.name)
				}
			default:
				t.Errorf("%s: nothing released", s.name)
			}
		}
	}
	select {
	case j := <-p.jobs:
		t.Errorf("released after a reset: %+v", j)
	default:
	}
}
