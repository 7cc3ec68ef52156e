package router

import "time"

// SetClock replaces the clock r's whitespace budget reads, so that tests
// move time instead of waiting for it.
func SetClock(r *Reader, now func() time.Time) { r.now = now }
