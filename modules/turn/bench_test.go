package turn_test

import (
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v3"

	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/turn"
)

// BenchmarkRelay sends 1200-byte UDP packets through allocations of a
// TURN relay to a peer on loopback that counts them, and reports what
// arrived, with at most a window of packets on their way at once:
// relayed packets/s, Mbit/s, the share lost, and, when the
// relay is another process, its CPU per relayed packet. Sub-benchmarks:
// one allocation, and 50 at once (the packets spread over them).
//
// By default the relay is the built-in one in this process (bandwidth
// bound off). To measure a relay in its own process, xmppd serve or
// coturn, set XMPPD_BENCH_TURN=HOST:PORT, XMPPD_BENCH_TURN_SECRET (its
// TURN REST secret), XMPPD_BENCH_TURN_REALM and XMPPD_BENCH_TURN_PID (for
// its CPU). scripts/bench/turn.sh runs both side by side.
//
//	go test ./modules/turn -run '^$' -bench Relay -benchtime 200000x
func BenchmarkRelay(b *testing.B) {
	for _, n := range []int{1, 50} {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchRelay(b, n) })
	}
}

func benchRelay(b *testing.B, allocations int) {
	server, realm := os.Getenv("XMPPD_BENCH_TURN"), os.Getenv("XMPPD_BENCH_TURN_REALM")
	var username, password string
	if server != "" {
		username, password = turn.Credentials([]byte(os.Getenv("XMPPD_BENCH_TURN_SECRET")), "bench@"+realm, time.Now().Add(time.Hour))
	} else {
		o := turn.DefaultOptions()
		o.Bandwidth = 0
		o.MaxAllocations = allocations
		_, alice := start(b, &o)
		s := find(b, services(b, alice, "turn"), "turn", "udp")
		server, realm, username, password = addr(s), testserver.Domain, s.username, s.password
	}
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer peer.Close()
	var got atomic.Int64
	go func() { // ends when peer is closed
		buf := make([]byte, 1500)
		for {
			if _, _, err := peer.ReadFrom(buf); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	relays := make([]net.PacketConn, allocations)
	for i := range relays {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		client, err := pionturn.NewClient(&pionturn.ClientConfig{STUNServerAddr: server, TURNServerAddr: server,
			Conn: conn, Username: username, Password: password, Realm: realm})
		if err != nil {
			b.Fatal(err)
		}
		defer client.Close()
		if err := client.Listen(); err != nil {
			b.Fatal(err)
		}
		relay, err := client.Allocate()
		if err != nil {
			b.Fatalf("allocation %d: %v", i, err)
		}
		defer relay.Close()
		// The first packet creates the permission.
		if _, err := relay.WriteTo(make([]byte, 1200), peer.LocalAddr()); err != nil {
			b.Fatal(err)
		}
		relays[i] = relay
	}
	time.Sleep(200 * time.Millisecond)
	got.Store(0)
	cpu0 := serverCPU(b)
	b.SetBytes(1200)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var sent atomic.Int64
	per := b.N / allocations
	for _, relay := range relays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			packet := make([]byte, 1200)
			for range per {
				inFlight(&sent, &got)
				if _, err := relay.WriteTo(packet, peer.LocalAddr()); err != nil {
					b.Error(err)
					return
				}
				sent.Add(1)
			}
		}()
	}
	wg.Wait()
	// Let what is in flight arrive.
	for last := int64(-1); got.Load() != last; {
		last = got.Load()
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	n := got.Load()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "pkts/s")
	b.ReportMetric(float64(n*1200*8)/elapsed.Seconds()/1e6, "Mbit/s")
	b.ReportMetric(100*(1-float64(n)/float64(per*allocations)), "%lost")
	if cpu := serverCPU(b) - cpu0; cpu > 0 && n > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "server-cpu-µs/pkt")
	}
}

// window is how many packets may be on their way through the relay: the
// senders keep the relay busy without flooding the sockets' buffers, so
// that the figure is the relay's rate, not a measure of overload.
const window = 64

// inFlight waits while window packets are on their way, or until none has
// arrived for 2 ms (those are lost; sending goes on).
func inFlight(sent, got *atomic.Int64) {
	var since time.Time
	last := got.Load()
	for sent.Load()-got.Load() > window {
		if g := got.Load(); g != last {
			last, since = g, time.Time{}
		} else if since.IsZero() {
			since = time.Now()
		} else if time.Since(since) > 2*time.Millisecond {
			return
		}
		runtime.Gosched()
	}
}

// serverCPU is the user and system time so far of the relay process named
// by XMPPD_BENCH_TURN_PID, or 0.
func serverCPU(b *testing.B) time.Duration {
	pid := os.Getenv("XMPPD_BENCH_TURN_PID")
	if pid == "" {
		return 0
	}
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command's closing parenthesis; utime and stime
	// are the 12th and 13th of them, in clock ticks (100 per second).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
