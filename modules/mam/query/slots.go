package query

import (
	"context"
	"sync"
)

// Slots lets one query per key run at a time; a query waits for its key's
// slot as long as its context lets it. A slot lives while someone holds or
// waits for it. The zero Slots is ready to use.
type Slots struct {
	mu sync.Mutex
	m  map[string]*slot
}

type slot struct {
	ch   chan struct{} // holds a token while the slot is taken
	refs int           // holders and waiters
}

// Acquire takes key's slot, or fails when ctx ends first; release gives
// it back.
func (q *Slots) Acquire(ctx context.Context, key string) (release func(), err error) {
	q.mu.Lock()
	if q.m == nil {
		q.m = map[string]*slot{}
	}
	s := q.m[key]
	if s == nil {
		s = &slot{ch: make(chan struct{}, 1)}
		q.m[key] = s
	}
	s.refs++
	q.mu.Unlock()
	leave := func() {
		q.mu.Lock()
		if s.refs--; s.refs == 0 {
			delete(q.m, key)
		}
		q.mu.Unlock()
	}
	select {
	case s.ch <- struct{}{}:
		return func() { <-s.ch; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}

// size is the number of live slots, for tests.
func (q *Slots) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.m)
}
