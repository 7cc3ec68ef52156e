package push

import (
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

// TestCount checks the rate limit and the summary's count on a clock the
// test moves: one notification per min_interval per account, the
// messages between counted, the same message (from and id) counted once,
// and a reset starting again.
func TestCount(t *testing.T) {
	p := New(DefaultOptions())
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	p.now = func() time.Time { return now }
	alice, bob := jid.MustParse("alice@example.org"), jid.MustParse("bob@example.org")
	steps := []struct {
		name      string
		after     time.Duration
		owner     jid.JID
		key       string
		reset     bool
		wantCount int
		wantDue   bool
	}{
		{"first", 0, alice, "a", false, 1, true},
		{"same message again", 0, alice, "a", false, 1, false},
		{"within the interval", time.Second, alice, "b", false, 2, false},
		{"another account", 0, bob, "a", false, 1, true},
		{"no id is never a duplicate", time.Second, alice, "", false, 3, false},
		{"interval over", 10 * time.Second, alice, "c", false, 4, true},
		{"an earlier message again", 20 * time.Second, alice, "a", false, 4, false},
		{"back online, then a message", 0, alice, "d", true, 1, true},
	}
	for _, s := range steps {
		now = now.Add(s.after)
		if s.reset {
			p.reset(s.owner)
		}
		count, due := p.count(job{owner: s.owner, key: s.key})
		if count != s.wantCount || due != s.wantDue {
			t.Errorf("%s: count %d due %v, want %d %v", s.name, count, due, s.wantCount, s.wantDue)
		}
	}
}
