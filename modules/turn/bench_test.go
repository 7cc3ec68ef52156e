package turn_test

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v3"

	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/turn"
)

// BenchmarkRelay sends 1200-byte UDP packets through one allocation of the
// built-in relay (bandwidth bound off) to a peer on loopback that counts
// them, and reports what arrived: relayed packets/s, Mbit/s and the share
// lost. Client, relay and peer share this process, so the figures are a
// lower bound of the relay's own capacity; compare with coturn by running
// the same client against it (docs/PERFORMANCE.md).
//
//	go test ./modules/turn -run '^$' -bench Relay -benchtime 200000x
func BenchmarkRelay(b *testing.B) {
	o := turn.DefaultOptions()
	o.Bandwidth = 0
	_, alice := start(b, &o)
	s := find(b, services(b, alice, "turn"), "turn", "udp")

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
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	client, err := pionturn.NewClient(&pionturn.ClientConfig{STUNServerAddr: addr(s), TURNServerAddr: addr(s),
		Conn: conn, Username: s.username, Password: s.password, Realm: testserver.Domain})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	if err := client.Listen(); err != nil {
		b.Fatal(err)
	}
	relay, err := client.Allocate()
	if err != nil {
		b.Fatal(err)
	}
	defer relay.Close()
	packet := make([]byte, 1200)
	// The first packet creates the permission (and a channel binding).
	if _, err := relay.WriteTo(packet, peer.LocalAddr()); err != nil {
		b.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	got.Store(0)
	b.SetBytes(int64(len(packet)))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := relay.WriteTo(packet, peer.LocalAddr()); err != nil {
			b.Fatal(err)
		}
	}
	// Let what is in flight arrive.
	for last := int64(-1); got.Load() != last; {
		last = got.Load()
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	n := got.Load()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "pkts/s")
	b.ReportMetric(float64(n*int64(len(packet))*8)/elapsed.Seconds()/1e6, "Mbit/s")
	b.ReportMetric(100*(1-float64(n)/float64(b.N)), "%lost")
}
