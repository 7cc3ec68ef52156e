package loadtest_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/server"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/credential"
)

// TestIdleSessionMemory measures what one idle, authenticated TLS session
// costs the server: heap, goroutine stacks, RSS and goroutines. It is
// skipped unless XMPPD_MEMTEST=1, because it opens thousands of connections.
//
// The server runs in this process, so the Go runtime's own accounting
// (runtime.ReadMemStats after a forced GC) gives its live heap exactly. The
// clients run in a child process (this test binary re-executed as
// xmppd-load, see TestMain), so none of their memory is counted. The figures
// are the differences between the server idle with no session and the server
// holding N bound sessions, divided by N.
//
// Environment: XMPPD_MEMTEST_N (sessions, default 2000),
// XMPPD_MEMTEST_PRESENCE=0 to bind without sending presence,
// XMPPD_MEMTEST_QUEUE (limits.outbound_queue, default the server's default),
// XMPPD_MEMTEST_HEAPPROFILE (a file for a heap profile taken with the
// sessions held, and FILE.after once they are closed; it samples every
// 4 KiB, which costs a little heap itself).
func TestIdleSessionMemory(t *testing.T) {
	if os.Getenv("XMPPD_MEMTEST") != "1" {
		t.Skip("set XMPPD_MEMTEST=1 to measure memory per idle session")
	}
	n := 2000
	if s := os.Getenv("XMPPD_MEMTEST_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 || v > 20000 {
			t.Fatalf("XMPPD_MEMTEST_N=%q: want 1 to 20000", s)
		}
		n = v
	}
	if os.Getenv("XMPPD_MEMTEST_HEAPPROFILE") != "" {
		old := runtime.MemProfileRate
		runtime.MemProfileRate = 4096
		defer func() { runtime.MemProfileRate = old }()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	srv := startMemServer(t, n)
	addUsers(t, srv, n)
	base := measure(srv)

	client := startClient(ctx, t, srv.Addr(config.ListenerC2SStartTLS).String(), n)
	waitFor(t, func() bool { return srv.Router.Sessions().Count() == n }, "every session to be bound")
	// Let the last writer goroutines start and the negotiation garbage die.
	time.Sleep(time.Second)
	held := measure(srv)
	if path := os.Getenv("XMPPD_MEMTEST_HEAPPROFILE"); path != "" {
		writeHeapProfile(t, path)
	}

	client.stop(t)
	closing := time.Now()
	for srv.C2S.ConnCount() > 0 {
		if time.Since(closing) > 90*time.Second {
			t.Fatalf("%d of %d connections still open %v after the client closed them", srv.C2S.ConnCount(), n, time.Since(closing))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("server ended every connection %v after the client closed them", time.Since(closing).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	after := measure(srv)
	if path := os.Getenv("XMPPD_MEMTEST_HEAPPROFILE"); path != "" {
		writeHeapProfile(t, path+".after")
	}

	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	t.Logf("sessions: %d (presence sent: %v, outbound_queue %d), GOMAXPROCS %d, %s",
		n, presence(), srv.Config.Limits.OutboundQueue, runtime.GOMAXPROCS(0), runtime.Version())
	t.Logf("%-22s %12s %12s %12s %12s", "", "no session", "held", "per session", "after close")
	for _, row := range []struct {
		name              string
		base, held, after uint64
	}{
		{"live heap (HeapAlloc)", base.heapAlloc, held.heapAlloc, after.heapAlloc},
		{"heap in use", base.heapInuse, held.heapInuse, after.heapInuse},
		{"goroutine stacks", base.stackInuse, held.stackInuse, after.stackInuse},
		{"heap+stacks in use", base.heapInuse + base.stackInuse, held.heapInuse + held.stackInuse, after.heapInuse + after.stackInuse},
		{"RSS", base.rss, held.rss, after.rss},
		{"RSS after scavenge", base.rssScavenged, held.rssScavenged, after.rssScavenged},
		{"goroutines", base.goroutines, held.goroutines, after.goroutines},
		{"OS threads", base.threads, held.threads, after.threads},
	} {
		unit, div := "", 1.0
		if row.name != "goroutines" && row.name != "OS threads" {
			unit, div = "KiB", 1024
		}
		t.Logf("%-22s %10.0f%-3s %10.0f%-3s %10.2f%-3s %10.0f%-3s", row.name,
			float64(row.base)/div, unit, float64(row.held)/div, unit, per(row.held, row.base)/div, unit, float64(row.after)/div, unit)
	}
	// Correctness, not speed: every goroutine a session started has ended.
	if after.goroutines > base.goroutines+2 {
		t.Errorf("%d goroutines after all sessions closed, %d before: a session leaks goroutines", after.goroutines, base.goroutines)
	}
}

// startMemServer starts xmppd in this process on loopback, logging at info
// level as in production but to nowhere, with per-user limits out of the way.
func startMemServer(t testing.TB, n int) *server.Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Storage = config.Storage{SQLite: filepath.Join(cfg.DataDir, "xmppd.db")}
	cfg.Listeners = []config.Listener{{Type: config.ListenerC2SStartTLS, Address: "127.0.0.1:0"}}
	cfg.Limits.MaxSessionsPerUser = n
	if s := os.Getenv("XMPPD_MEMTEST_QUEUE"); s != "" {
		q, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("XMPPD_MEMTEST_QUEUE=%q: %v", s, err)
		}
		cfg.Limits.OutboundQueue = q
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := server.Start(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv
}

const memPassword = "load-test-password"

// addUsers creates u0 … u(n-1). They share one set of SCRAM credentials,
// derived once, so that creating thousands of accounts takes seconds.
func addUsers(t testing.TB, srv *server.Server, n int) {
	t.Helper()
	creds, err := credential.NewCredentials(memPassword, srv.Config.Auth.ScramIterations)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range n {
		u := storage.User{Local: fmt.Sprintf("u%d", i), Domain: "localhost", Created: time.Now(), Credentials: creds}
		if err := srv.Store.Users().Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
}

func presence() bool { return os.Getenv("XMPPD_MEMTEST_PRESENCE") != "0" }

// snapshot is the server process's memory at one moment.
type snapshot struct {
	heapAlloc, heapInuse, stackInuse uint64
	rss, rssScavenged                uint64
	goroutines, threads              uint64
}

// measure collects garbage, then reads the runtime's figures and the
// process's resident set; then returns freed pages to the OS and reads the
// resident set again, since the Go runtime keeps freed memory a while.
func measure(srv *server.Server) snapshot {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := snapshot{
		heapAlloc:  ms.HeapAlloc,
		heapInuse:  ms.HeapInuse,
		stackInuse: ms.StackInuse,
		rss:        procStatus("VmRSS") * 1024,
		goroutines: uint64(runtime.NumGoroutine()),
		threads:    procStatus("Threads"),
	}
	debug.FreeOSMemory()
	s.rssScavenged = procStatus("VmRSS") * 1024
	return s
}

// procStatus reads a number from this process's /proc status (Linux):
// VmRSS in KiB, Threads as a count.
func procStatus(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func writeHeapProfile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}

// loadClient is the child process holding the sessions.
type loadClient struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// startClient runs this test binary as xmppd-load against addr and waits
// until it reports every session bound.
func startClient(ctx context.Context, t *testing.T, addr string, n int) *loadClient {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0],
		"-addr", addr, "-domain", "localhost", "-n", strconv.Itoa(n),
		"-user", "u%d", "-resource", "load", "-insecure", "-stdin-eof",
		"-presence="+strconv.FormatBool(presence()), "-hold", "5m")
	cmd.Env = append(os.Environ(), "XMPPD_LOADTEST_CHILD=1", "XMPPD_LOAD_PASSWORD="+memPassword)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &loadClient{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	t.Cleanup(func() {
		stdin.Close()
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	if !c.out.Scan() || !strings.HasPrefix(c.out.Text(), "ready ") {
		t.Fatalf("load client did not get ready: %q %v", c.out.Text(), c.out.Err())
	}
	t.Logf("load client: %s", c.out.Text())
	return c
}

// stop tells the client to close its sessions and waits for it to exit.
func (c *loadClient) stop(t *testing.T) {
	t.Helper()
	c.stdin.Close()
	for c.out.Scan() {
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("load client: %v", err)
	}
}
