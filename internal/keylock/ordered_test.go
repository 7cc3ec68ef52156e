package keylock

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// hang bounds how long a test waits for what would never happen if Do
// deadlocked: generous, since it only bounds a failure.
const hang = 30 * time.Second

// within fails the test if f does not return in time: a hang detector.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(hang):
		t.Fatalf("%s: still running after %s (deadlock)", what, hang)
	}
}

// TestOrderedKeepsOrder: actions run in the order their decisions were
// made, one at a time per key, and every caller's actions have run when
// its Do returns, whichever goroutine ran them.
func TestOrderedKeepsOrder(t *testing.T) {
	var (
		o       Ordered
		mu      sync.Mutex
		decided = map[string][]int{}
		ran     = map[string][]int{}
		running = map[string]int{}
		overlap bool
		wg      sync.WaitGroup
	)
	for i := range 300 {
		wg.Go(func() {
			key := fmt.Sprint(i % 3)
			ok := false
			o.Do(context.Background(), key, func(queue func(func(context.Context))) {
				mu.Lock()
				decided[key] = append(decided[key], i)
				mu.Unlock()
				queue(func(context.Context) {
					mu.Lock()
					running[key]++
					overlap = overlap || running[key] > 1
					ran[key] = append(ran[key], i)
					mu.Unlock()
					time.Sleep(10 * time.Microsecond)
					mu.Lock()
					running[key]--
					mu.Unlock()
					ok = true
				})
			})
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				t.Errorf("Do for %d returned before its action ran", i)
			}
		})
	}
	wg.Wait()
	if overlap {
		t.Error("two actions of one key ran at once")
	}
	for key := range decided {
		if !slices.Equal(decided[key], ran[key]) {
			t.Errorf("key %s: decided %v\nran %v", key, decided[key], ran[key])
		}
	}
	if n := o.pending(); n != 0 {
		t.Errorf("%d queues left after all ran", n)
	}
	if n := o.locks.size(); n != 0 {
		t.Errorf("%d locks left after all ran", n)
	}
}

// TestOrderedReentry: an action that comes back to Do, for its own key or
// another one, does not wait for itself: what it queues runs after it, on
// the same goroutine; a caller outside waits for its actions.
func TestOrderedReentry(t *testing.T) {
	var (
		o   Ordered
		got []string
	)
	add := func(s string) func(func(func(context.Context))) {
		return func(queue func(func(context.Context))) {
			queue(func(context.Context) { got = append(got, s) })
		}
	}
	within(t, "a reentrant Do", func() {
		o.Do(context.Background(), "a", func(queue func(func(context.Context))) {
			queue(func(ctx context.Context) {
				got = append(got, "a1")
				o.Do(ctx, "a", add("a2"))
				o.Do(ctx, "b", add("b1")) // no one runs b: this goroutine does, now
				got = append(got, "a1 done")
			})
		})
	})
	if want := []string{"a1", "b1", "a1 done", "a2"}; !slices.Equal(got, want) {
		t.Errorf("ran %v, want %v", got, want)
	}
}

// TestOrderedPanic: a panicking action does not stop the actions queued
// behind it nor leave the key stuck; the panic reaches the goroutine that
// ran it.
func TestOrderedPanic(t *testing.T) {
	var (
		o     Ordered
		after bool
	)
	recovered := func() (v any) {
		defer func() { v = recover() }()
		o.Do(context.Background(), "k", func(queue func(func(context.Context))) {
			queue(func(context.Context) { panic("boom") })
			queue(func(context.Context) { after = true })
		})
		return nil
	}()
	if s, _ := recovered.(string); !strings.HasPrefix(s, "boom\n") {
		t.Errorf("recovered %v, want the panic with its stack", recovered)
	}
	if !after {
		t.Error("the action after the panicking one did not run")
	}
	within(t, "Do after a panic", func() {
		o.Do(context.Background(), "k", func(queue func(func(context.Context))) { queue(func(context.Context) {}) })
	})
}
