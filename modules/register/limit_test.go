package register

import (
	"testing"
	"time"
)

func TestRegistrationLimit(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newRegistrationLimit(2, time.Hour)
	l.now = func() time.Time { return now }
	for i, want := range []bool{true, true, false} {
		if got := l.reserve("192.0.2.1"); got != want {
			t.Fatalf("reservation %d: %v, want %v", i, got, want)
		}
	}
	if !l.reserve("192.0.2.2") {
		t.Error("another address is limited too")
	}
	// A released reservation can be taken again.
	l.release("192.0.2.1")
	if !l.reserve("192.0.2.1") || l.reserve("192.0.2.1") {
		t.Error("release did not give exactly one back")
	}
	// The window slides: the first reservations expire first.
	now = now.Add(30 * time.Minute)
	if l.reserve("192.0.2.1") {
		t.Error("limit lifted before the window passed")
	}
	now = now.Add(31 * time.Minute)
	if !l.reserve("192.0.2.1") {
		t.Error("limit not lifted after the window")
	}
}
