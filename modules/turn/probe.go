package turn

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/pion/logging"
	pionturn "github.com/pion/turn/v3"
)

// Probe is one test of a TURN server the way a calling client uses it:
// allocate a relayed address with credentials, send a packet through it to
// an echo peer, and read the echo back through it. `xmppd check turn` and
// the tests run it.
type Probe struct {
	// Server is the relay's host:port.
	Server string
	// Transport is "udp", "tcp" or "tls": how the client reaches the
	// relay (the relayed address is UDP either way, RFC 8656).
	Transport string
	// TLS configures the client side of "tls".
	TLS                *tls.Config
	Username, Password string
	Realm              string
	// Peer is the echo peer's address; empty starts one on 127.0.0.1
	// for the probe's time (the relay must allow loopback peers then).
	Peer string
	// Timeout bounds the whole probe; 0 means 5 s.
	Timeout time.Duration
	// Logger receives pion's client log; nil discards it.
	Logger logging.LoggerFactory
}

// ProbeResult is what a probe found.
type ProbeResult struct {
	// Relayed is the relayed transport address the server allocated.
	Relayed net.Addr
	// Reflexive is the client's address as the server saw it (STUN).
	Reflexive net.Addr
	// RTT is the time of the echo through the relay.
	RTT time.Duration
}

// Run runs the probe.
func (p Probe) Run() (ProbeResult, error) {
	var res ProbeResult
	timeout := p.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	deadline := time.Now().Add(timeout)
	peer := p.Peer
	if peer == "" {
		echo, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return res, fmt.Errorf("start echo peer: %w", err)
		}
		defer echo.Close()
		go echoPackets(echo) // ends when echo is closed, above
		peer = echo.LocalAddr().String()
	}
	peerAddr, err := net.ResolveUDPAddr("udp", peer)
	if err != nil {
		return res, fmt.Errorf("echo peer %s: %w", peer, err)
	}
	var conn net.PacketConn
	switch p.Transport {
	case "udp", "":
		c, err := net.ListenPacket("udp4", "0.0.0.0:0")
		if err != nil {
			return res, fmt.Errorf("client socket: %w", err)
		}
		conn = c
	case "tcp":
		c, err := net.DialTimeout("tcp", p.Server, timeout)
		if err != nil {
			return res, fmt.Errorf("connect to %s over tcp: %w", p.Server, err)
		}
		conn = pionturn.NewSTUNConn(c)
	case "tls":
		d := &net.Dialer{Timeout: timeout}
		c, err := tls.DialWithDialer(d, "tcp", p.Server, p.TLS)
		if err != nil {
			return res, fmt.Errorf("connect to %s over tls: %w", p.Server, err)
		}
		conn = pionturn.NewSTUNConn(c)
	default:
		return res, fmt.Errorf("transport %q is not udp, tcp or tls", p.Transport)
	}
	defer conn.Close()
	logger := p.Logger
	if logger == nil {
		logger = slogFactory{discard}
	}
	client, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: p.Server, TURNServerAddr: p.Server, Conn: conn,
		Username: p.Username, Password: p.Password, Realm: p.Realm, LoggerFactory: logger,
	})
	if err != nil {
		return res, fmt.Errorf("turn client: %w", err)
	}
	defer client.Close()
	if err := client.Listen(); err != nil {
		return res, fmt.Errorf("turn client: %w", err)
	}
	if res.Reflexive, err = client.SendBindingRequest(); err != nil {
		return res, fmt.Errorf("STUN binding: %w", err)
	}
	relay, err := client.Allocate()
	if err != nil {
		return res, fmt.Errorf("allocate: %w", err)
	}
	defer relay.Close()
	res.Relayed = relay.LocalAddr()
	msg := []byte("xmppd turn probe " + time.Now().Format(time.RFC3339Nano))
	start := time.Now()
	if _, err := relay.WriteTo(msg, peerAddr); err != nil {
		return res, fmt.Errorf("send to peer %s through the relay: %w", peerAddr, err)
	}
	if err := relay.SetReadDeadline(deadline); err != nil {
		return res, err
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := relay.ReadFrom(buf)
		if err != nil {
			return res, fmt.Errorf("read the echo through the relay: %w", err)
		}
		if bytes.Equal(buf[:n], msg) && from.String() == peerAddr.String() {
			res.RTT = time.Since(start)
			return res, nil
		}
	}
}

// echoPackets sends every packet back to where it came from until conn is
// closed.
func echoPackets(conn net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return // closed by the probe
		}
		conn.WriteTo(buf[:n], from) //nolint:errcheck // a lost echo shows as the probe's timeout
	}
}
