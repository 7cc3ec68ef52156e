package c2s

import (
	"sync"

	"github.com/xmppd/xmppd/router"
)

// outQueue is a session's bounded outbound queue. Unlike a buffered
// channel it holds memory only while stanzas wait, so an idle session costs
// a few words instead of a slot per possible stanza (docs/PERFORMANCE.md).
type outQueue struct {
	mu    sync.Mutex
	items []*router.Stanza
	max   int
	// ready has a token whenever items may be non-empty.
	ready chan struct{}
}

func newOutQueue(max int) *outQueue {
	return &outQueue{max: max, ready: make(chan struct{}, 1)}
}

// push appends st unless the queue is full.
func (q *outQueue) push(st *router.Stanza) bool {
	q.mu.Lock()
	if q.max > 0 && len(q.items) >= q.max {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, st)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// take removes and returns everything queued, oldest first.
func (q *outQueue) take() []*router.Stanza {
	q.mu.Lock()
	items := q.items
	q.items = nil
	q.mu.Unlock()
	return items
}

// putBack returns items to the front of the queue, in order, ignoring the
// bound: they were queued before.
func (q *outQueue) putBack(items []*router.Stanza) {
	if len(items) == 0 {
		return
	}
	q.mu.Lock()
	q.items = append(items, q.items...)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}
