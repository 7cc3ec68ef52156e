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
	// closed is set by drain: from then on push refuses, so that a stanza
	// is either taken by the final drain or refused to its sender, never
	// stranded in a queue nobody reads again.
	closed bool
	// ready has a token whenever items may be non-empty.
	ready chan struct{}
}

func newOutQueue(max int) *outQueue {
	return &outQueue{max: max, ready: make(chan struct{}, 1)}
}

// pushResult says what push did with a stanza.
type pushResult int

const (
	pushed     pushResult = iota // queued: it will be written or drained
	queueFull                    // refused: the client does not keep up
	queueEnded                   // refused: the session has ended
)

// push appends st unless the queue is full or drained. Accepting and
// refusing are decided under the same lock as drain, so either st is in
// what drain returns or push refused it.
func (q *outQueue) push(st *router.Stanza) pushResult {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return queueEnded
	}
	if q.max > 0 && len(q.items) >= q.max {
		q.mu.Unlock()
		return queueFull
	}
	q.items = append(q.items, st)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return pushed
}

// pushAll appends items, in order, ignoring the bound (they were accepted
// before: CSI's held stanzas), unless the queue is drained.
func (q *outQueue) pushAll(items []*router.Stanza) pushResult {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return queueEnded
	}
	q.items = append(q.items, items...)
	q.mu.Unlock()
	q.wake()
	return pushed
}

// drain closes the queue for good and returns what it still held, oldest
// first. Every later push is refused.
func (q *outQueue) drain() []*router.Stanza {
	q.mu.Lock()
	items := q.items
	q.items, q.closed = nil, true
	q.mu.Unlock()
	return items
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

// wake makes the writer look at the queue (and at whether it is still the
// session's writer).
// hold puts items back at the front like putBack, without waking the
// writer: they wait for something else to (an ack opening the stream
// management window).
func (q *outQueue) hold(items []*router.Stanza) {
	if len(items) == 0 {
		return
	}
	q.mu.Lock()
	q.items = append(items, q.items...)
	q.mu.Unlock()
}

func (q *outQueue) wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}
