package c2s_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
)

// TestPendingPerIP checks limits.max_pending_per_ip: connections from one
// address that have not authenticated are bounded, a refused one is closed
// at once, and an authenticated connection no longer counts.
func TestPendingPerIP(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) { c.Limits.MaxPendingPerIP = 2 })
	s.AddUser("alice", "pw")

	idle1, err := s.DialRaw()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idle1.Open(testserver.Header); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	auth := s.LoginRaw("alice", "pw", "r") // the second, then authenticated

	// Two were pending; one authenticated, so a new one is accepted…
	idle2, err := s.DialRaw()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idle2.Open(testserver.Header); err != nil {
		t.Fatalf("connection after one authenticated: %v", err)
	}
	// …and now two are pending again: the next is refused.
	refused, err := net.Dial("tcp", s.StartTLSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	refused.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf [1]byte
	if _, err := refused.Read(buf[:]); !errors.Is(err, io.EOF) {
		var ne net.Error
		if !errors.As(err, &ne) || ne.Timeout() {
			t.Fatalf("third pending connection: read %v, want it closed", err)
		}
	}
	// The authenticated session still works.
	if _, err := auth.Request(`<iq type="get" id="p1" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`); err != nil {
		t.Fatalf("authenticated session: %v", err)
	}
	// Closing a pending connection frees its place.
	idle1.Conn.Close()
	if err := eventuallyAccepted(s); err != nil {
		t.Fatal(err)
	}
}

// eventuallyAccepted retries until a new connection gets stream features:
// the server notices the closed connection asynchronously.
func eventuallyAccepted(s *testserver.Server) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := s.DialRaw()
		if err != nil {
			return err
		}
		_, err = c.Open(testserver.Header)
		c.Conn.Close()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("no connection accepted after a pending one closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
