package loadtest_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/loadtest"
	"github.com/xmppd/xmppd/internal/testserver"
)

// TestMain lets the memory test run its load client as a child process of
// this very test binary (see startClient): with XMPPD_LOADTEST_CHILD set, the
// binary is xmppd-load.
func TestMain(m *testing.M) {
	if os.Getenv("XMPPD_LOADTEST_CHILD") == "1" {
		os.Exit(loadtest.Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestOpen checks the load client against a real server with each way in
// that it supports: sessions bind, the server counts them, and closing them
// ends them on the server.
func TestOpen(t *testing.T) {
	srv := testserver.Start(t, nil)
	srv.AddUser("alice", "pencil")
	for _, tc := range []struct {
		direct bool
		mech   string
	}{
		{false, ""}, {true, ""}, {false, "SCRAM-SHA-1"}, {false, "PLAIN"},
	} {
		addr := srv.StartTLSAddr()
		if tc.direct {
			addr = srv.DirectTLSAddr()
		}
		p := alicePlan(loadtest.Options{Addr: addr, Domain: testserver.Domain, TLS: srv.TLSConfig(),
			DirectTLS: tc.direct, Mechanism: tc.mech, Presence: true, Timeout: 10 * time.Second})
		sessions, err := loadtest.Open(context.Background(), p)
		if err != nil {
			t.Fatalf("direct TLS %v, mechanism %q: %v", tc.direct, tc.mech, err)
		}
		if got, want := sessions[1].JID, "alice@localhost/r1"; got != want {
			t.Errorf("bound %q, want %q", got, want)
		}
		if n := srv.Router.Sessions().Count(); n != 3 {
			t.Errorf("server has %d sessions, want 3", n)
		}
		loadtest.CloseAll(sessions)
		waitFor(t, func() bool { return srv.Router.Sessions().Count() == 0 }, "sessions to end")
	}
}

// alicePlan is three sessions of alice (password "pencil"), resources r0-r2.
func alicePlan(o loadtest.Options) loadtest.Plan {
	return loadtest.Plan{Options: o, Sessions: 3, User: "alice", Password: "pencil", Resource: "r%d"}
}

// TestOpenBadPassword checks that a failed login is reported, not hidden.
func TestOpenBadPassword(t *testing.T) {
	srv := testserver.Start(t, nil)
	srv.AddUser("alice", "pencil")
	p := loadtest.Plan{
		Options:  loadtest.Options{Addr: srv.StartTLSAddr(), Domain: testserver.Domain, TLS: srv.TLSConfig()},
		Sessions: 1, User: "alice", Password: "wrong",
	}
	if _, err := loadtest.Open(context.Background(), p); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
}

func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOpenStreamManagement checks the load client's stream management
// modes: with SMEnable no resumption id, with SMResume one; dropping the
// connections ends the SMEnable sessions and leaves the SMResume ones
// hibernating, bound but without a connection.
func TestOpenStreamManagement(t *testing.T) {
	for _, tc := range []struct {
		mode        string
		presence    bool
		hibernating int
	}{
		{loadtest.SMEnable, true, 0},
		{loadtest.SMResume, true, 3},
		{loadtest.SMResume, false, 3},
	} {
		srv := testserver.Start(t, nil)
		srv.AddUser("alice", "pencil")
		p := alicePlan(loadtest.Options{Addr: srv.StartTLSAddr(), Domain: testserver.Domain, TLS: srv.TLSConfig(),
			Presence: tc.presence, StreamManagement: tc.mode, Timeout: 10 * time.Second})
		sessions, err := loadtest.Open(context.Background(), p)
		if err != nil {
			t.Fatalf("%s: %v", tc.mode, err)
		}
		if got := sessions[0].SMID != ""; got != (tc.mode == loadtest.SMResume) {
			t.Errorf("%s: resumption id %q", tc.mode, sessions[0].SMID)
		}
		loadtest.DropAll(sessions)
		waitFor(t, func() bool { return srv.C2S.ConnCount() == 0 }, "connections to end")
		waitFor(t, func() bool {
			return srv.C2S.Hibernating() == tc.hibernating && srv.Router.Sessions().Count() == tc.hibernating
		}, "sessions to hibernate or end")
	}
}

// TestChat runs the chat scenario briefly against a real server: two
// steps, every message sent is received and measured, and the server's CPU
// (this process's, as the server runs in it) is reported per message.
func TestChat(t *testing.T) {
	srv := testserver.Start(t, nil)
	for i := range 4 {
		srv.AddUser(fmt.Sprintf("load%d", i), "pencil")
	}
	p := loadtest.ChatPlan{
		Plan: loadtest.Plan{
			Options:  loadtest.Options{Addr: srv.StartTLSAddr(), Domain: testserver.Domain, TLS: srv.TLSConfig(), Presence: true, Timeout: 10 * time.Second},
			Sessions: 4, User: "load%d", Password: "pencil", Resource: "r",
		},
		Rates: []int{200, 400}, Step: 250 * time.Millisecond, Drain: 10 * time.Second, ServerPID: os.Getpid(),
	}
	sessions, err := loadtest.Open(context.Background(), p.Plan)
	if err != nil {
		t.Fatal(err)
	}
	defer loadtest.CloseAll(sessions)
	results, err := loadtest.RunChat(context.Background(), p, sessions, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d steps, want 2", len(results))
	}
	for _, r := range results {
		if r.Sent == 0 || r.Lost() != 0 || r.P99 <= 0 || r.P50 > r.P99 || r.P99 > r.Max || r.CPUPerMessage < 0 {
			t.Errorf("step %s: want messages sent, none lost, 0 < p50 <= p99 <= max", r)
		}
	}
}

// TestLogin runs the login scenario briefly against a real server: every
// login of the two steps completes (roster and presence included), the
// sessions are closed again, and one with a wrong password counts as a
// failure that stops the ramp.
func TestLogin(t *testing.T) {
	srv := testserver.Start(t, nil)
	for i := range 3 {
		srv.AddUser(fmt.Sprintf("load%d", i), "pencil")
	}
	plan := func(password string) loadtest.LoginPlan {
		return loadtest.LoginPlan{
			Plan: loadtest.Plan{
				Options:  loadtest.Options{Addr: srv.StartTLSAddr(), Domain: testserver.Domain, TLS: srv.TLSConfig(), Mechanism: "SCRAM-SHA-1", Timeout: 10 * time.Second},
				Sessions: 3, User: "load%d", Password: password,
			},
			Rates: []int{20, 40}, Step: 250 * time.Millisecond, StopP99: time.Minute, ServerPID: os.Getpid(),
		}
	}
	results, err := loadtest.RunLogin(context.Background(), plan("pencil"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d steps, want 2", len(results))
	}
	for _, r := range results {
		if r.Started == 0 || r.Failed() != 0 || r.P99 <= 0 || r.P50 > r.P99 || r.P99 > r.Max || r.CPUPerLogin <= 0 {
			t.Errorf("step %s: want logins, none failed, 0 < p50 <= p99 <= max, CPU per login", r)
		}
	}
	waitFor(t, func() bool { return srv.Router.Sessions().Count() == 0 }, "the logins' sessions to end")
	results, err = loadtest.RunLogin(context.Background(), plan("wrong"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].OK != 0 || results[0].Failed() == 0 || results[0].FirstFailure == "" {
		t.Errorf("with a wrong password: %v, want one step of failures", results)
	}
}

// TestMUC runs the group chat scenario briefly against a real server:
// five sessions create and enter a room, two of them send, and every
// occupant gets a copy of every message (the senders their own too);
// then three more sessions (other resources of the same accounts, under
// other nicks) enter the room, which exists now, while the first five are
// still in it, and the steps count only their copies.
func TestMUC(t *testing.T) {
	srv := testserver.Start(t, nil)
	for i := range 5 {
		srv.AddUser(fmt.Sprintf("load%d", i), "pencil")
	}
	for _, tc := range []struct {
		n              int
		resource, nick string
	}{
		{5, "a", "a%d"}, // creates the room
		{3, "b", "b%d"}, // enters it as it is
	} {
		p := loadtest.MUCPlan{
			Plan: loadtest.Plan{
				Options:  loadtest.Options{Addr: srv.StartTLSAddr(), Domain: testserver.Domain, TLS: srv.TLSConfig(), Presence: true, Timeout: 10 * time.Second},
				Sessions: tc.n, User: "load%d", Password: "pencil", Resource: tc.resource, Parallel: 2,
			},
			Room: "bench@conference." + testserver.Domain, Nick: tc.nick, Senders: 2, Rates: []int{20, 40},
			Step: 250 * time.Millisecond, Drain: 10 * time.Second, ServerPID: os.Getpid(), JoinTimeout: 10 * time.Second,
		}
		sessions, err := loadtest.Open(context.Background(), p.Plan)
		if err != nil {
			t.Fatal(err)
		}
		defer loadtest.CloseAll(sessions)
		results, err := loadtest.RunMUC(context.Background(), p, sessions, nil)
		if err != nil {
			t.Fatalf("sessions %s: %v", tc.resource, err)
		}
		if len(results) != 2 {
			t.Fatalf("%d steps, want 2", len(results))
		}
		for _, r := range results {
			t.Log(r)
			if r.Sent == 0 || r.Occupants != tc.n || r.Got != r.Sent*int64(tc.n) || r.Lost() != 0 ||
				r.P99 <= 0 || r.P50 > r.P99 || r.P99 > r.Max || r.CPUPerMessage < 0 {
				t.Errorf("sessions %s: step %s: want %d copies of each message sent, none lost, 0 < p50 <= p99 <= max", tc.resource, r, tc.n)
			}
		}
	}
}

// TestMUCRefused checks that an occupant the room refuses fails the
// scenario with the room's error, here a room of at most three
// occupants (module_options.muc.max_occupants) and four sessions.
func TestMUCRefused(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) {
		c.SetModuleOptions("muc", map[string]any{"max_occupants": 3})
	})
	for i := range 4 {
		srv.AddUser(fmt.Sprintf("load%d", i), "pencil")
	}
	p := loadtest.MUCPlan{
		Plan: loadtest.Plan{
			Options:  loadtest.Options{Addr: srv.StartTLSAddr(), Domain: testserver.Domain, TLS: srv.TLSConfig(), Presence: true, Timeout: 10 * time.Second},
			Sessions: 4, User: "load%d", Password: "pencil", Resource: "r", Parallel: 1,
		},
		Room: "full@conference." + testserver.Domain, Rates: []int{20}, Step: 100 * time.Millisecond,
		JoinTimeout: 10 * time.Second,
	}
	sessions, err := loadtest.Open(context.Background(), p.Plan)
	if err != nil {
		t.Fatal(err)
	}
	defer loadtest.CloseAll(sessions)
	results, err := loadtest.RunMUC(context.Background(), p, sessions, nil)
	if err == nil || !strings.Contains(err.Error(), "service-unavailable") || len(results) != 0 {
		t.Fatalf("four sessions into a room of three: %v, %v; want a presence error service-unavailable and no step", results, err)
	}
}
