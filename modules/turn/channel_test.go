package turn_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/pion/stun/v2"

	"github.com/xmppd/xmppd/modules/turn"
)

// TURN methods and attributes (RFC 8656 §17, §18) that pion/stun does not
// name.
const (
	methodAllocate    stun.Method   = 0x003
	methodRefresh     stun.Method   = 0x004
	methodChannelBind stun.Method   = 0x009
	attrChannelNumber stun.AttrType = 0x000C
	attrLifetime      stun.AttrType = 0x000D
	attrXORPeer       stun.AttrType = 0x0012
	attrXORRelayed    stun.AttrType = 0x0016
	attrTransport     stun.AttrType = 0x0019
	firstChannel                    = 0x4000
)

// channel is a TURN allocation with a channel bound to one peer, driven
// with raw STUN messages and ChannelData (RFC 8656 §12): the benchmark's
// generator, which must cost less per packet than the relay it measures.
// pion's client takes a goroutine hop, a lock and a Send indication or
// ChannelData copy per packet, and was what the first side-by-side run
// measured; here a packet is one prepared buffer in a sendmmsg batch.
type channel struct {
	conn    *net.UDPConn
	server  *net.UDPAddr
	relayed *net.UDPAddr
	header  [4]byte // the ChannelData header of a 1200-byte packet

	username, realm, nonce string
	integrity              stun.MessageIntegrity
}

// open allocates a relay for a fresh account of t from a client address
// of its own (clientSocket).
func (t relayTarget) open() (*channel, error) {
	server, err := net.ResolveUDPAddr("udp4", t.server)
	if err != nil {
		return nil, err
	}
	n, conn, err := clientSocket()
	if err != nil {
		return nil, err
	}
	c := &channel{conn: conn, server: server, realm: t.realm}
	if err := c.allocate(t.secret, "bench"+strconv.FormatInt(n, 10)+"@"+t.realm); err != nil {
		conn.Close()
		return nil, fmt.Errorf("allocate: %w", err)
	}
	return c, nil
}

// bindChannel allocates a relay (open) and binds a channel from it to
// peer.
func (t relayTarget) bindChannel(peer *net.UDPAddr) (*channel, error) {
	c, err := t.open()
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint16(c.header[0:], firstChannel)
	binary.BigEndian.PutUint16(c.header[2:], 1200)
	_, err = c.request(methodChannelBind,
		stun.RawAttribute{Type: attrChannelNumber, Value: []byte{firstChannel >> 8, firstChannel & 0xff, 0, 0}},
		xorAddr{peer, attrXORPeer})
	if err != nil {
		c.close()
		return nil, fmt.Errorf("channel bind: %w", err)
	}
	return c, nil
}

// allocate asks for a UDP relay, answering the 401 with the long-term
// credentials of the TURN REST scheme.
func (c *channel) allocate(secret []byte, user string) error {
	transport := stun.RawAttribute{Type: attrTransport, Value: []byte{17, 0, 0, 0}}
	first, err := c.roundTrip(stun.MustBuild(stun.TransactionID, stun.NewType(methodAllocate, stun.ClassRequest), transport, stun.Fingerprint))
	if err != nil {
		return err
	}
	var nonce stun.Nonce
	if err := nonce.GetFrom(first); err != nil {
		var code stun.ErrorCodeAttribute
		_ = code.GetFrom(first)
		return fmt.Errorf("no nonce in the answer to the first Allocate (%v %v): %w", first.Type, code, err)
	}
	c.nonce = nonce.String()
	var password string
	c.username, password = turn.Credentials(secret, user, time.Now().Add(time.Hour))
	c.integrity = stun.NewLongTermIntegrity(c.username, c.realm, password)
	resp, err := c.request(methodAllocate, transport)
	if err != nil {
		return err
	}
	var relayed stun.XORMappedAddress
	if err := relayed.GetFromAs(resp, attrXORRelayed); err != nil {
		return err
	}
	c.relayed = &net.UDPAddr{IP: relayed.IP, Port: relayed.Port}
	return nil
}

// request sends an authenticated request of method with attrs and returns
// the success response.
func (c *channel) request(method stun.Method, attrs ...stun.Setter) (*stun.Message, error) {
	setters := append([]stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}, attrs...)
	setters = append(setters, stun.NewUsername(c.username), stun.NewRealm(c.realm), stun.NewNonce(c.nonce), c.integrity, stun.Fingerprint)
	resp, err := c.roundTrip(stun.MustBuild(setters...))
	if err != nil {
		return nil, err
	}
	if resp.Type.Class != stun.ClassSuccessResponse {
		var code stun.ErrorCodeAttribute
		_ = code.GetFrom(resp)
		return nil, fmt.Errorf("%v: %v", resp.Type, code)
	}
	return resp, nil
}

// roundTrip sends req and returns the response with its transaction ID,
// retransmitting after 500 ms, three times at most.
func (c *channel) roundTrip(req *stun.Message) (*stun.Message, error) {
	buf := make([]byte, 1500)
	for range 3 {
		if _, err := c.conn.WriteToUDP(req.Raw, c.server); err != nil {
			return nil, err
		}
		if err := c.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
			return nil, err
		}
		for {
			n, err := c.conn.Read(buf)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				break
			}
			if err != nil {
				return nil, err
			}
			resp := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if resp.Decode() == nil && resp.TransactionID == req.TransactionID {
				return resp, c.conn.SetReadDeadline(time.Time{})
			}
		}
	}
	return nil, fmt.Errorf("no answer to %v", req.Type)
}

// close deallocates (a Refresh with lifetime 0) and closes the socket.
func (c *channel) close() error {
	defer c.conn.Close()
	_, err := c.request(methodRefresh, stun.RawAttribute{Type: attrLifetime, Value: []byte{0, 0, 0, 0}})
	return err
}

// clientSocket returns a socket on a client address (127.0.0.2–251, ports
// 20000–49999) that this process has not used before, and its number,
// which also names the account. A relay may keep a deallocated 5-tuple for
// a while: coturn answers a new allocation from a reused address with 437
// Allocation Mismatch, and at thousands of allocations a second the
// kernel's random ports repeat often enough to fail a run. The numbering
// starts at a random point, so that runs one after the other against the
// same relay do not reuse each other's addresses either.
func clientSocket() (int64, *net.UDPConn, error) {
	var err error
	for range 100 {
		n := benchUsers.Add(1) + benchOffset
		addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(2+n%250)), Port: 20000 + int(n/250%30000)}
		var conn *net.UDPConn
		if conn, err = net.ListenUDP("udp4", addr); err == nil {
			return n, conn, nil
		}
	}
	return 0, nil, fmt.Errorf("no free client address: %w", err)
}

var benchOffset = rand.Int64N(250 * 30000)

// xorAddr is an XOR address attribute of type t.
type xorAddr struct {
	addr *net.UDPAddr
	t    stun.AttrType
}

func (a xorAddr) AddTo(m *stun.Message) error {
	return stun.XORMappedAddress{IP: a.addr.IP.To4(), Port: a.addr.Port}.AddToAs(m, a.t)
}
