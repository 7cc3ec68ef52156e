package turn

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	pionturn "github.com/pion/turn/v3"
)

// limitedGenerator allocates relayed addresses in the configured port
// range, each bounded to bandwidth bytes per second in each direction.
type limitedGenerator struct {
	pionturn.RelayAddressGeneratorPortRange
	bandwidth int
	log       *slog.Logger
	relay     netip.Addr // what guardedConn protects, if valid
}

// AllocatePacketConn implements pionturn.RelayAddressGenerator.
func (g *limitedGenerator) AllocatePacketConn(network string, port int) (net.PacketConn, net.Addr, error) {
	conn, addr, err := g.RelayAddressGeneratorPortRange.AllocatePacketConn(network, port)
	if err != nil {
		return conn, addr, err
	}
	sizeBuffers(conn)
	conn = readBatched(conn, relayedBatch)
	if g.relay.IsValid() {
		conn = &guardedConn{PacketConn: conn, relay: g.relay, minP: g.MinPort, maxP: g.MaxPort}
	}
	g.log.Info("turn: relayed", "relay", addr.String())
	if g.bandwidth <= 0 {
		return conn, addr, nil
	}
	return &limitedConn{PacketConn: conn, in: newBucket(g.bandwidth), out: newBucket(g.bandwidth)}, addr, nil
}

// limitedConn is a relayed address whose traffic is bounded: a packet
// beyond the rate is dropped, as a congested link would drop it (the
// media layer above adapts), rather than delayed.
type limitedConn struct {
	net.PacketConn
	in, out *bucket
}

// ReadFrom reads what peers send to the relayed address, dropping what is
// beyond the rate.
func (c *limitedConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.in.take(n, time.Now()) {
			return n, addr, err
		}
	}
}

// WriteTo sends to a peer, or drops the packet beyond the rate (reporting
// it sent, as UDP would).
func (c *limitedConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.out.take(len(p), time.Now()) {
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}

// bucket is a token bucket of rate bytes per second holding at most one
// second's worth.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func newBucket(rate int) *bucket {
	return &bucket{rate: float64(rate), tokens: float64(rate)}
}

// take spends n bytes if the bucket has them.
func (b *bucket) take(n int, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}
