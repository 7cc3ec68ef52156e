package turn

import (
	"net"
	"sync"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchSize is how many datagrams one recvmmsg takes at most on the
// listening socket, which receives every client's packets; relayedBatch on
// a relayed address, which receives one peer's (its buffers are held for
// as long as the allocation lives).
const (
	batchSize    = 32
	relayedBatch = 8
	// datagramMax is the size of each buffer: more than pion's own read
	// buffers (1600 bytes), so that a datagram pion would have taken
	// whole is not cut here.
	datagramMax = 2048
)

// batchReader is a UDP socket whose ReadFrom is served from batches read
// with recvmmsg: pion reads one datagram per call, so each relayed packet
// cost a system call and a wake-up of the reading goroutine; under load,
// when datagrams queue, one call now takes all that are waiting. Writes go
// to the socket unchanged.
type batchReader struct {
	net.PacketConn
	read func([]ipv4.Message) (int, error) // ReadBatch of the socket's family

	mu    sync.Mutex // pion has one reader per socket; this keeps a second one safe
	msgs  []ipv4.Message
	next  int // index of the next datagram to hand out
	ready int // datagrams in msgs from the last batch
}

// readBatched wraps conn with a batchReader of n datagrams, or returns it
// as it is when it is not a UDP socket.
func readBatched(conn net.PacketConn, n int) net.PacketConn {
	udp, ok := conn.(*net.UDPConn)
	if !ok {
		return conn
	}
	b := &batchReader{PacketConn: conn, msgs: make([]ipv4.Message, n)}
	for i := range b.msgs {
		b.msgs[i].Buffers = [][]byte{make([]byte, datagramMax)}
	}
	if a, ok := udp.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		p := ipv6.NewPacketConn(udp)
		b.read = func(m []ipv4.Message) (int, error) { return p.ReadBatch(m, 0) }
	} else {
		p := ipv4.NewPacketConn(udp)
		b.read = func(m []ipv4.Message) (int, error) { return p.ReadBatch(m, 0) }
	}
	return b
}

// ReadFrom implements net.PacketConn: the next datagram of the current
// batch, reading a new batch (blocking until at least one datagram) when
// it is used up. A datagram longer than p is cut, as a plain read cuts it.
func (b *batchReader) ReadFrom(p []byte) (int, net.Addr, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next == b.ready {
		n, err := b.read(b.msgs)
		if err != nil {
			return 0, nil, err
		}
		b.next, b.ready = 0, n
	}
	m := &b.msgs[b.next]
	b.next++
	return copy(p, m.Buffers[0][:m.N]), m.Addr, nil
}
