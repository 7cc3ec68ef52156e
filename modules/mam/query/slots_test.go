package query

import (
	"context"
	"testing"
)

// TestQuerySlots: one query per account at a time; a waiter whose context
// ends gives up; other accounts do not wait; a slot goes once nobody holds
// or waits for it.
func TestQuerySlots(t *testing.T) {
	var q Slots
	ctx := context.Background()
	release, err := q.Acquire(ctx, "alice@localhost")
	if err != nil {
		t.Fatal(err)
	}
	other, err := q.Acquire(ctx, "bob@localhost")
	if err != nil {
		t.Fatalf("another account waited: %v", err)
	}
	other()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := q.Acquire(cancelled, "alice@localhost"); err == nil {
		t.Fatal("a second query of alice's ran beside the first")
	}
	got := make(chan error, 1)
	go func() {
		r, err := q.Acquire(ctx, "alice@localhost")
		if err == nil {
			r()
		}
		got <- err
	}()
	release()
	if err := <-got; err != nil {
		t.Fatalf("the waiting query: %v", err)
	}
	if n := q.size(); n != 0 {
		t.Errorf("%d slots left, want none", n)
	}
}
