package router_test

import (
	"sync"
	"testing"

	"github.com/xmppd/xmppd/router"
)

// stateSession is the least of a Session for the state slots.
type stateSession struct {
	router.Session
	router.SessionState
}

func (s *stateSession) State() *router.SessionState { return &s.SessionState }

// TestSessionKey checks that slots are typed, private to their key, and
// set, replaced and cleared independently.
func TestSessionKey(t *testing.T) {
	count := router.NewSessionKey[int]("test.count")
	name := router.NewSessionKey[string]("test.name")
	other := router.NewSessionKey[int]("test.other") // same type, other slot
	s := &stateSession{}
	for _, step := range []struct {
		what    string
		do      func()
		count   int
		hasName bool
	}{
		{"empty", func() {}, 0, false},
		{"set", func() { count.Set(s, 1) }, 1, false},
		{"another key of the same type", func() { other.Set(s, 7) }, 1, false},
		{"replace", func() { count.Set(s, 2) }, 2, false},
		{"get or set keeps", func() { count.GetOrSet(s, func() int { return 9 }) }, 2, false},
		{"set a key of another type", func() { name.Set(s, "x") }, 2, true},
		{"delete", func() { count.Delete(s) }, 0, true},
		{"get or set creates", func() { count.GetOrSet(s, func() int { return 3 }) }, 3, true},
		{"delete the other", func() { name.Delete(s) }, 3, false},
	} {
		step.do()
		got, ok := count.Get(s)
		if got != step.count || ok != (step.count != 0) {
			t.Errorf("%s: count %d %v; want %d", step.what, got, ok, step.count)
		}
		if _, ok := name.Get(s); ok != step.hasName {
			t.Errorf("%s: name set %v; want %v", step.what, ok, step.hasName)
		}
		if v, _ := other.Get(s); v != 7 && step.what != "empty" && step.what != "set" {
			t.Errorf("%s: the other slot is %d; want 7", step.what, v)
		}
	}
	if other.String() != "test.other" {
		t.Errorf("key name %q", other.String())
	}
}

// TestSessionKeyConcurrent sets slots from many goroutines (run with -race).
func TestSessionKeyConcurrent(t *testing.T) {
	s := &stateSession{}
	keys := make([]*router.SessionKey[int], 8)
	for i := range keys {
		keys[i] = router.NewSessionKey[int]("k")
	}
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 100 {
				k.Set(s, i*1000+n)
				k.Get(s)
			}
		}()
	}
	wg.Wait()
	for i, k := range keys {
		if v, ok := k.Get(s); !ok || v != i*1000+99 {
			t.Errorf("key %d: %d %v", i, v, ok)
		}
	}
}
