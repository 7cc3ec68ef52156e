package router

import "time"

// SetClock replaces the clock r's whitespace budget reads, so that tests
// move time instead of waiting for it.
func SetClock(r *Reader, now func() time.Time) { r.now = now }

// PendingIQs is the number of the server's IQ requests waiting for an
// answer.
func PendingIQs(r *Router) int { return r.requests.len() }
