package turn

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// TestBatchReader checks that datagrams queued on a socket come out of a
// batchReader one per ReadFrom, in order, whole, with their sender,
// across more than one batch, and that one longer than the caller's buffer
// is cut as a plain read cuts it.
func TestBatchReader(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			loop := "127.0.0.1:0"
			if network == "udp6" {
				loop = "[::1]:0"
			}
			conn, err := net.ListenPacket(network, loop)
			if err != nil {
				t.Skipf("no %s loopback: %v", network, err)
			}
			r := readBatched(conn, 3)
			defer r.Close()
			sender, err := net.ListenPacket(network, loop)
			if err != nil {
				t.Fatal(err)
			}
			defer sender.Close()
			var sent [][]byte
			for i := range 7 {
				p := bytes.Repeat([]byte{byte('a' + i)}, 10+i)
				sent = append(sent, p)
				if _, err := sender.WriteTo(p, conn.LocalAddr()); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 14)
			for i, want := range sent {
				n, from, err := r.ReadFrom(buf)
				if err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
				if len(want) > len(buf) {
					want = want[:len(buf)]
				}
				if !bytes.Equal(buf[:n], want) {
					t.Errorf("datagram %d: %q, want %q", i, buf[:n], want)
				}
				if from.String() != sender.LocalAddr().String() {
					t.Errorf("datagram %d from %v, want %v", i, from, sender.LocalAddr())
				}
			}
		})
	}
}
