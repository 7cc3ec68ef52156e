package connlimit

import "testing"

func TestBlock(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "::ffff:192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},
		{"2001:db8::1", "2001:db8::ffff:2", true},
		{"2001:db8::1", "2001:db8:0:1::1", false},
	} {
		if got := Block(tc.a) == Block(tc.b); got != tc.same {
			t.Errorf("Block(%s) == Block(%s) is %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

func TestPerIP(t *testing.T) {
	p := New(2)
	r1, ok1 := p.Acquire("2001:db8::1", nil)
	_, ok2 := p.Acquire("2001:db8::2", nil)
	if !ok1 || !ok2 {
		t.Fatalf("acquire in one /64: %v %v, want true true", ok1, ok2)
	}
	if _, ok := p.Acquire("2001:db8::3", nil); ok {
		t.Error("a full block of unevictable holders accepted one more")
	}
	if _, ok := p.Acquire("192.0.2.1", nil); !ok {
		t.Error("another block refused")
	}
	r1.Release()
	r1.Release() // a second release must not count
	if n := p.Held("2001:db8::9"); n != 1 {
		t.Errorf("held after release: %d, want 1", n)
	}
	if _, ok := p.Acquire("2001:db8::4", nil); !ok {
		t.Error("refused after a release")
	}
	u := New(0)
	for range 100 {
		if _, ok := u.Acquire("192.0.2.1", func(Stage) { t.Error("an unlimited PerIP evicted") }); !ok {
			t.Fatal("an unlimited PerIP refused")
		}
	}
}

// TestEvict checks which holder a full block gives up to a newcomer.
func TestEvict(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stages []Stage // of the holders, oldest first; -1: not evictable
		want   int     // index of the holder evicted; -1: the newcomer is refused
	}{
		{"oldest of all new", []Stage{Connected, Connected, Connected}, 0},
		{"least progress", []Stage{Auth, Connected, Header}, 1},
		{"oldest of the least progress", []Stage{TLS, Header, Header}, 1},
		{"all past connected", []Stage{Auth, TLS, TLS}, 1},
		{"all authenticating", []Stage{Auth, Auth, Auth}, 0},
		{"only evictable ones", []Stage{-1, Header, -1}, 1},
		{"none evictable", []Stage{-1, -1, -1}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := New(len(tc.stages))
			evicted := -1
			var got []Stage
			tickets := make([]*Ticket, len(tc.stages))
			for i, s := range tc.stages {
				var evict func(Stage)
				if s >= 0 {
					evict = func(at Stage) {
						evicted = i
						got = append(got, at)
					}
				}
				tickets[i], _ = p.Acquire("192.0.2.1", evict)
				tickets[i].Progress(s)
				tickets[i].Progress(Connected) // never goes back
			}
			_, ok := p.Acquire("192.0.2.1", nil)
			if evicted != tc.want || ok != (tc.want >= 0) {
				t.Fatalf("evicted %d (ok %v), want %d", evicted, ok, tc.want)
			}
			if tc.want >= 0 {
				if len(got) != 1 || got[0] != tc.stages[tc.want] {
					t.Errorf("evict called with %v, want [%v]", got, tc.stages[tc.want])
				}
				tickets[tc.want].Release() // after an eviction: no effect
			}
			want := len(tc.stages)
			if n := p.Held("192.0.2.1"); n != want {
				t.Errorf("held %d, want %d", n, want)
			}
		})
	}
}
