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

	"golang.org/x/net/ipv4"

	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/turn"
)

// BenchmarkRelay sends 1200-byte UDP packets as ChannelData through
// allocations of a TURN relay (a channel bound to the peer, as call
// clients do, and sendmmsg batches: see channel) to a peer on loopback
// that counts them, and reports what
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

// relayTarget is the relay a benchmark measures and how to get credentials
// for it: the one named by XMPPD_BENCH_TURN*, or the built-in one of a
// server started in this process, with a known secret and no bandwidth
// bound.
type relayTarget struct {
	server, realm string
	secret        []byte
}

func target(b *testing.B) relayTarget {
	if server := os.Getenv("XMPPD_BENCH_TURN"); server != "" {
		return relayTarget{server, os.Getenv("XMPPD_BENCH_TURN_REALM"), []byte(os.Getenv("XMPPD_BENCH_TURN_SECRET"))}
	}
	o := turn.DefaultOptions()
	o.Bandwidth = 0
	o.Secret = "benchmark secret"
	_, alice := start(b, &o)
	s := find(b, services(b, alice, "turn"), "turn", "udp")
	return relayTarget{addr(s), testserver.Domain, []byte(o.Secret)}
}

// benchUsers numbers the accounts of the benchmarks' allocations: each
// allocation is for an account of its own, so that no per-account quota
// (xmppd's max_allocations) bounds a benchmark that runs its body several
// times.
var benchUsers atomic.Int64

func benchRelay(b *testing.B, allocations int) {
	t := target(b)
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer peer.Close()
	// Room for the window and more, so that what is lost is lost in the
	// relay, not in the peer's socket.
	if err := peer.(*net.UDPConn).SetReadBuffer(4 << 20); err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	go func() { // ends when peer is closed
		msgs := make([]ipv4.Message, 64)
		for i := range msgs {
			msgs[i].Buffers = [][]byte{make([]byte, 1500)}
		}
		pc := ipv4.NewPacketConn(peer)
		for {
			n, err := pc.ReadBatch(msgs, 0)
			if err != nil {
				return
			}
			got.Add(int64(n))
		}
	}()
	channels := make([]*channel, allocations)
	for i := range channels {
		c, err := t.bindChannel(peer.LocalAddr().(*net.UDPAddr))
		if err != nil {
			b.Fatalf("allocation %d: %v", i, err)
		}
		defer func() { _ = c.close() }() // what deallocation answers is not measured here
		channels[i] = c
	}
	cpu0 := serverCPU(b)
	b.SetBytes(1200)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var sent atomic.Int64
	per := b.N / allocations / burst * burst
	senders := min(allocations, runtime.GOMAXPROCS(0))
	for k := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			packet := make([]byte, 1200)
			var mine []*channel
			for i := k; i < len(channels); i += senders {
				mine = append(mine, channels[i])
			}
			batches := make([][]ipv4.Message, len(mine))
			for i, c := range mine {
				batches[i] = make([]ipv4.Message, burst)
				for j := range batches[i] {
					batches[i][j] = ipv4.Message{Buffers: [][]byte{c.header[:], packet}, Addr: c.server}
				}
			}
			for range per / burst {
				for i, c := range mine {
					inFlight(sent.Add(burst), &got)
					if _, err := ipv4.NewPacketConn(c.conn).WriteBatch(batches[i], 0); err != nil {
						b.Error(err)
						return
					}
				}
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

// BenchmarkAllocate measures the allocation rate: each operation is what
// a client does to get a relay for a call (a new socket, an Allocate with
// its 401 round trip and credentials, then a deallocation, as raw STUN
// messages: see channel), from
// GOMAXPROCS×4 clients at once; it reports allocations per second and,
// for a relay in another process (XMPPD_BENCH_TURN_PID), that process's
// CPU per allocation.
func BenchmarkAllocate(b *testing.B) {
	t := target(b)
	cpu0 := serverCPU(b)
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c, err := t.open()
			if err != nil {
				b.Error(err)
				return
			}
			if err := c.close(); err != nil {
				b.Errorf("deallocate: %v", err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "allocs/s")
	if cpu := serverCPU(b) - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "server-cpu-µs/alloc")
	}
}

// window is how many packets may be on their way through the relay: the
// senders keep the relay busy without flooding the sockets' buffers, so
// that the figure is the relay's rate, not a measure of overload. burst is
// how many packets one sendmmsg call sends on one channel.
const (
	window = 512
	burst  = 16
)

// inFlight waits until the packets up to number n (counting from 1) may
// leave: while more than window packets before them are on their way, or until none
// has arrived for 2 ms (those are lost; sending goes on). Numbering each
// packet before it waits keeps the senders of many allocations together
// within the window.
func inFlight(n int64, got *atomic.Int64) {
	var since time.Time
	last := got.Load()
	for n-got.Load() > window {
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
