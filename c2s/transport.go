package c2s

import (
	"crypto/tls"
	"errors"
	"net"

	"github.com/xmppd/xmppd/router"
)

// Transport is what carries a Session's stream: a TCP connection with
// STARTTLS, a direct TLS connection (XEP-0368), a WebSocket (RFC 7395) or
// a BOSH session (XEP-0124/0206), all of them the conn type with its
// framing. The session does not know which it has: it reads
// elements, writes serialised stanzas and ends the stream through it, so
// that it can be detached from one transport and attached to another
// (stream management resumption, XEP-0198) without noticing.
//
// A transport is negotiated (TLS, SASL, bind) before it carries a session;
// that part is the transport's own, see conn and Step.
type Transport interface {
	// Next reads the next top-level element of the stream. It returns an
	// error once the stream has ended or Close was called; the error is
	// then the cause given to Close.
	Next() (*router.Element, error)
	// Write writes bytes (whole serialised elements) to the client. It may
	// block up to the transport's write timeout.
	Write(b []byte) error
	// Close asks the transport to end with cause: a Next blocked in
	// another goroutine returns promptly. It writes nothing, so that the
	// session can still flush what must precede the end; Finish does the
	// writing. Safe from any goroutine, any number of times; the first
	// cause wins.
	Close(cause error)
	// Finish writes final (if the cause is a stream error, the stanzas
	// that must reach the client before it), the stream error for the
	// cause given to Close, and the end of the stream in the transport's
	// framing (</stream:stream> for TCP, <close/> for WebSocket), then
	// closes the connection. It runs once; Close must have been called.
	Finish(final []byte)
	// TLSState is the TLS connection state, for channel binding (nil
	// without TLS, or when the TLS is terminated elsewhere).
	TLSState() *tls.ConnectionState
	// RemoteAddr is the client's network address.
	RemoteAddr() net.Addr
}

// writeInterrupter is implemented by transports whose writes can block
// (a TCP socket whose peer vanished): when their session is resumed on
// another transport, the old one's writer is stopped at once instead of
// after the write timeout.
type writeInterrupter interface{ interruptWrites() }

var (
	_ Transport        = (*conn)(nil)
	_ writeInterrupter = (*conn)(nil)
)

// Next implements Transport.
func (c *conn) Next() (*router.Element, error) {
	e, err := c.next()
	if err != nil && errors.Is(err, errClosing) && c.cause != nil {
		return nil, c.cause
	}
	return e, err
}

// Write implements Transport.
func (c *conn) Write(b []byte) error { return c.write(b) }

// Finish implements Transport.
func (c *conn) Finish(final []byte) { c.finish(final) }

// TLSState implements Transport.
func (c *conn) TLSState() *tls.ConnectionState {
	if c.tls == nil {
		return nil
	}
	cs := c.tls.ConnectionState()
	return &cs
}

// RemoteAddr implements Transport.
func (c *conn) RemoteAddr() net.Addr { return c.addr }
