package s2s

import (
	"testing"
	"time"
)

// SetMaxQueueBytes sets the byte limit of an outbound queue for the
// Servers made after it, until t ends. Call it before starting them, so
// that t's cleanup restores the limit after they have shut down.
func SetMaxQueueBytes(t testing.TB, n int) {
	old := maxQueueBytes
	maxQueueBytes = n
	t.Cleanup(func() { maxQueueBytes = old })
}

// SetMinBackoff sets the shortest backoff after a failed connection for
// the Servers made after it, until t ends, as SetMaxQueueBytes does.
func SetMinBackoff(t testing.TB, d time.Duration) {
	old := minBackoff
	minBackoff = d
	t.Cleanup(func() { minBackoff = old })
}

// WorkerOf is the worker of an inbound stream that routes the stanzas to
// a bare JID.
func WorkerOf(bare string) int { return workerOf(bare, inWorkers) }
