package c2s_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
)

// TestPendingPerIP checks limits.max_pending_per_ip: connections from one
// address that have not authenticated are bounded, a full address makes
// room for a newcomer by evicting the connection with the least progress
// (the oldest among equals), an evicted open stream gets
// connection-timeout, and an authenticated connection no longer counts.
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
	// …and now two are pending again: a third evicts the older of the two.
	silent, err := s.DialRaw()
	if err != nil {
		t.Fatal(err)
	}
	if cond, err := idle1.WaitStreamError(rawTimeout); err != nil || cond != "connection-timeout" {
		t.Fatalf("oldest pending connection: %q, %v; want connection-timeout", cond, err)
	}
	// A fourth evicts the silent third, which has made less progress than
	// idle2: with no stream open, it is just closed.
	if _, err := s.DialRaw(); err != nil {
		t.Fatal(err)
	}
	if err := waitClosed(silent.Conn); err != nil {
		t.Fatalf("silent pending connection: %v", err)
	}
	// The authenticated session still works.
	if _, err := auth.Request(`<iq type="get" id="p1" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`); err != nil {
		t.Fatalf("authenticated session: %v", err)
	}
}

// rawTimeout bounds the wait for what the server must do at once; only a
// hung server reaches it.
const rawTimeout = 10 * time.Second

// waitClosed checks that the server closes nc without sending anything.
func waitClosed(nc net.Conn) error {
	nc.SetReadDeadline(time.Now().Add(rawTimeout))
	var buf [1]byte
	n, err := nc.Read(buf[:])
	if n > 0 {
		return fmt.Errorf("read %q, want the connection closed", buf[:n])
	}
	if !errors.Is(err, io.EOF) {
		var ne net.Error
		if !errors.As(err, &ne) || ne.Timeout() {
			return fmt.Errorf("read %v, want the connection closed", err)
		}
	}
	return nil
}

// TestSlowConnectionsCannotLockOut checks that connections from one address
// that stall in negotiation, far more than limits.max_pending_per_ip (the
// default), do not keep a client from that address out: each newcomer
// evicts the one with the least progress, so a normal login still gets in.
func TestSlowConnectionsCannotLockOut(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stall func(*testserver.Raw) error
	}{
		{"silent TCP", func(*testserver.Raw) error { return nil }},
		{"header then silence", func(c *testserver.Raw) error {
			_, err := c.Open(testserver.Header)
			return err
		}},
		{"TLS then silence", func(c *testserver.Raw) error {
			if _, err := c.Open(testserver.Header); err != nil {
				return err
			}
			return c.StartTLS(nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testserver.Start(t, nil)
			s.AddUser("alice", "pw")
			for i := range 300 {
				c, err := s.DialRaw()
				if err != nil {
					t.Fatalf("slow connection %d: %v", i, err)
				}
				// An evicted connection may fail its stalling step:
				// the point is only that it gets as far as it can.
				tc.stall(c)
			}
			if _, err := s.Dial("alice", "pw", testserver.LoginOptions{}); err != nil {
				t.Fatalf("login after 300 slow connections from its address: %v", err)
			}
		})
	}
}
