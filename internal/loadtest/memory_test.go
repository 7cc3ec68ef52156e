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
	"github.com/xmppd/xmppd/internal/loadtest"
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
// With XMPPD_MEMTEST_SM the clients enable stream management (XEP-0198)
// after binding and acknowledge what they got, so that the server holds
// nothing unacknowledged: "enable" without resumption, "resume" with it;
// "hibernate" is "resume", and then the clients drop their TCP connections
// (a reset, no stream close) and the server is measured again with the N
// sessions hibernating, waiting to be resumed. Their resumption timeout is
// XMPPD_MEMTEST_RESUME_TIMEOUT (default 60s): the "after close" figures are
// taken once it has ended them.
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
	smMode := os.Getenv("XMPPD_MEMTEST_SM")
	hibernate := smMode == "hibernate"
	switch smMode {
	case "", loadtest.SMEnable, loadtest.SMResume:
	case "hibernate":
		smMode = loadtest.SMResume
	default:
		t.Fatalf("XMPPD_MEMTEST_SM=%q: want enable, resume or hibernate", smMode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	srv := startMemServer(t, n)
	addUsers(t, srv, n)
	base := measure(srv)

	client := startClient(ctx, t, srv.Addr(config.ListenerC2SStartTLS).String(), n, smMode, hibernate)
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
	var hib snapshot
	if hibernate {
		if h, c := srv.C2S.Hibernating(), srv.Router.Sessions().Count(); h != n || c != n {
			t.Fatalf("%d sessions hibernating, %d in the registry, want %d of each", h, c, n)
		}
		time.Sleep(500 * time.Millisecond)
		hib = measure(srv)
		if path := os.Getenv("XMPPD_MEMTEST_HEAPPROFILE"); path != "" {
			writeHeapProfile(t, path+".hibernating")
		}
		if h := srv.C2S.Hibernating(); h != n {
			t.Fatalf("only %d of %d sessions still hibernating after the measurement: raise XMPPD_MEMTEST_RESUME_TIMEOUT (%v)", h, n, srv.Config.Limits.ResumeTimeout)
		}
		ending := time.Now()
		for srv.Router.Sessions().Count() > 0 || srv.C2S.Hibernating() > 0 {
			if time.Since(ending) > srv.Config.Limits.ResumeTimeout+90*time.Second {
				t.Fatalf("%d sessions (%d hibernating) left %v after the connections dropped", srv.Router.Sessions().Count(), srv.C2S.Hibernating(), time.Since(closing))
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("resumption timeout (%v) ended every hibernating session %v after the drop", srv.Config.Limits.ResumeTimeout, time.Since(closing).Round(time.Millisecond))
		// The timeouts fire together; each ends its session on the
		// timer's goroutine (offline routing, the roster's unavailable
		// write), which outlives the registry entry a while.
		ended := time.Now()
		for uint64(runtime.NumGoroutine()) > base.goroutines+2 && time.Since(ended) < 90*time.Second {
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("their goroutines ended %v later", time.Since(ended).Round(time.Millisecond))
	}
	time.Sleep(500 * time.Millisecond)
	after := measure(srv)
	if path := os.Getenv("XMPPD_MEMTEST_HEAPPROFILE"); path != "" {
		writeHeapProfile(t, path+".after")
	}

	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	t.Logf("sessions: %d (presence sent: %v, stream management: %q, outbound_queue %d), GOMAXPROCS %d, %s",
		n, presence(), os.Getenv("XMPPD_MEMTEST_SM"), srv.Config.Limits.OutboundQueue, runtime.GOMAXPROCS(0), runtime.Version())
	if hibernate {
		t.Logf("%-22s %12s %12s %12s %12s %12s %12s", "", "no session", "held", "per session", "hibernating", "per hib.", "after close")
	} else {
		t.Logf("%-22s %12s %12s %12s %12s", "", "no session", "held", "per session", "after close")
	}
	for _, row := range []struct {
		name                   string
		base, held, hib, after uint64
	}{
		{"live heap (HeapAlloc)", base.heapAlloc, held.heapAlloc, hib.heapAlloc, after.heapAlloc},
		{"heap in use", base.heapInuse, held.heapInuse, hib.heapInuse, after.heapInuse},
		{"goroutine stacks", base.stackInuse, held.stackInuse, hib.stackInuse, after.stackInuse},
		{"heap+stacks in use", base.heapInuse + base.stackInuse, held.heapInuse + held.stackInuse, hib.heapInuse + hib.stackInuse, after.heapInuse + after.stackInuse},
		{"RSS", base.rss, held.rss, hib.rss, after.rss},
		{"RSS after scavenge", base.rssScavenged, held.rssScavenged, hib.rssScavenged, after.rssScavenged},
		{"goroutines", base.goroutines, held.goroutines, hib.goroutines, after.goroutines},
		{"OS threads", base.threads, held.threads, hib.threads, after.threads},
	} {
		unit, div := "", 1.0
		if row.name != "goroutines" && row.name != "OS threads" {
			unit, div = "KiB", 1024
		}
		if hibernate {
			t.Logf("%-22s %10.0f%-3s %10.0f%-3s %10.2f%-3s %10.0f%-3s %10.2f%-3s %10.0f%-3s", row.name,
				float64(row.base)/div, unit, float64(row.held)/div, unit, per(row.held, row.base)/div, unit,
				float64(row.hib)/div, unit, per(row.hib, row.base)/div, unit, float64(row.after)/div, unit)
			continue
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
	return startMemServerWith(t, n, nil)
}

// startMemServerWith is startMemServer with mutate, if not nil, applied
// to the configuration before it is checked.
func startMemServerWith(t testing.TB, n int, mutate func(*config.Config)) *server.Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Storage = config.Storage{SQLite: filepath.Join(cfg.DataDir, "xmppd.db")}
	cfg.Listeners = []config.Listener{{Type: config.ListenerC2SStartTLS, Address: "127.0.0.1:0"}}
	cfg.Limits.MaxSessionsPerUser = n
	cfg.Limits.MaxHibernating = max(cfg.Limits.MaxHibernating, n)
	cfg.Limits.ResumeTimeout = time.Minute
	if s := os.Getenv("XMPPD_MEMTEST_RESUME_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("XMPPD_MEMTEST_RESUME_TIMEOUT=%q: %v", s, err)
		}
		cfg.Limits.ResumeTimeout = d
	}
	if s := os.Getenv("XMPPD_MEMTEST_QUEUE"); s != "" {
		q, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("XMPPD_MEMTEST_QUEUE=%q: %v", s, err)
		}
		cfg.Limits.OutboundQueue = q
	}
	if mutate != nil {
		mutate(cfg)
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
// until it reports every session bound; sm is its -sm mode, and with drop
// it drops the connections at the end instead of closing the streams.
func startClient(ctx context.Context, t *testing.T, addr string, n int, sm string, drop bool) *loadClient {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0],
		"-addr", addr, "-domain", "localhost", "-n", strconv.Itoa(n),
		"-user", "u%d", "-resource", "load", "-insecure", "-stdin-eof",
		"-presence="+strconv.FormatBool(presence()), "-hold", "5m",
		"-sm", sm, "-drop="+strconv.FormatBool(drop))
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
