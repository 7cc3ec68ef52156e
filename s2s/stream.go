package s2s

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/router"
)

// Namespaces of server-to-server streams.
const (
	nsTLS         = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL        = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsStreams     = "urn:ietf:params:xml:ns:xmpp-streams"
	nsDialback    = "jabber:server:dialback"     // XEP-0220 elements (db:)
	nsDialbackFea = "urn:xmpp:features:dialback" // XEP-0220 stream feature
	nsStanzas     = "urn:ietf:params:xml:ns:xmpp-stanzas"
	alpnServer    = "xmpp-server" // XEP-0368
)

// writeTimeout bounds one write to a peer server.
const writeTimeout = 30 * time.Second

// conn is the transport of one s2s stream and what both directions share:
// writing (serialised by a lock), the XML reader, the closing stream error.
type conn struct {
	nc  net.Conn
	tls *tls.Conn
	in  *router.Reader

	maxSize  int64
	maxDepth int

	// streamID is the id the peer gave the stream (outbound), or we gave
	// it (inbound); dialback keys are bound to it.
	streamID string
	// features are the peer's stream features (outbound).
	features *router.Element

	writeMu    sync.Mutex
	headerSent bool
	closeOnce  sync.Once
}

// newReader starts reading a (re)started stream.
func (c *conn) newReader() {
	c.in = router.NewReader(c.nc, router.NSServer, c.maxSize, c.maxDepth)
}

// write sends raw bytes.
func (c *conn) write(b []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("write to peer: %w", err)
	}
	return nil
}

// writeElement writes one element.
func (c *conn) writeElement(e *router.Element) error {
	return c.write(e.AppendXML(nil, router.NSServer))
}

// writeDialback writes a dialback element with the db: prefix, which
// XEP-0220 §2 requires and some servers insist on (§2.4.1); the element
// declares the prefix itself, so that it is bound even on a stream whose
// header does not declare it.
func (c *conn) writeDialback(e *router.Element) error {
	return c.write(appendDialback(nil, e))
}

func appendDialback(buf []byte, e *router.Element) []byte {
	buf = append(buf, "<db:"...)
	buf = append(buf, e.Name.Local...)
	buf = append(buf, ` xmlns:db="`+nsDialback+`"`...)
	for _, a := range e.Attr {
		buf = append(buf, ' ')
		buf = append(buf, a.Name.Local...)
		buf = append(buf, `="`...)
		buf = router.AppendEscaped(buf, a.Value)
		buf = append(buf, '"')
	}
	if len(e.Children) == 0 {
		return append(buf, "/>"...)
	}
	buf = append(buf, '>')
	for _, n := range e.Children {
		switch c := n.(type) {
		case router.Text:
			buf = router.AppendEscaped(buf, string(c))
		case *router.Element:
			// Unprefixed children (<error/>) are in jabber:server, the
			// default namespace the stream header declared.
			buf = c.AppendXML(buf, router.NSServer)
		}
	}
	buf = append(buf, "</db:"...)
	buf = append(buf, e.Name.Local...)
	return append(buf, '>')
}

// header returns a stream header in the jabber:server namespace. With
// dialback, it declares the dialback namespace, which tells the peer that
// we support dialback (XEP-0220 §2.4.1): a receiving server must not say
// so to a peer whose domain its policy forbids dialback for.
func header(from, to, id string, dialback bool) []byte {
	b := []byte(`<?xml version='1.0'?><stream:stream xmlns="jabber:server" xmlns:stream="http://etherx.jabber.org/streams"`)
	if dialback {
		b = append(b, ` xmlns:db="`+nsDialback+`"`...)
	}
	b = append(b, ` version="1.0"`...)
	for _, a := range [][2]string{{"from", from}, {"to", to}, {"id", id}} {
		if a[1] == "" {
			continue
		}
		b = append(b, ' ')
		b = append(b, a[0]...)
		b = append(b, `="`...)
		b = router.AppendEscaped(b, a[1])
		b = append(b, '"')
	}
	return append(b, '>')
}

// close ends the stream with cause (a stream.Error is sent) and closes the
// transport. It runs once.
func (c *conn) close(cause error) {
	c.closeOnce.Do(func() {
		var se stream.Error
		var buf []byte
		if errors.As(cause, &se) {
			buf = append(buf, `<stream:error><`...)
			buf = append(buf, se.Err...)
			buf = append(buf, ` xmlns="`+nsStreams+`"/></stream:error>`...)
		}
		buf = append(buf, `</stream:stream>`...)
		c.writeMu.Lock()
		c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c.nc.Write(buf)
		c.writeMu.Unlock()
		c.nc.Close()
	})
}

// headerInfo is what a peer's stream header says.
type headerInfo struct {
	from, to, id, version, ns string
	dialback                  bool // xmlns:db declared
}

// readHeader reads and checks the peer's stream header.
func (c *conn) readHeader() (headerInfo, error) {
	hdr, err := c.in.Header()
	if err != nil {
		return headerInfo{}, err
	}
	var h headerInfo
	for _, a := range hdr.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "from":
			h.from = a.Value
		case a.Name.Space == "" && a.Name.Local == "to":
			h.to = a.Value
		case a.Name.Space == "" && a.Name.Local == "id":
			h.id = a.Value
		case a.Name.Space == "" && a.Name.Local == "version":
			h.version = a.Value
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			h.ns = a.Value
		case a.Name.Space == "xmlns" && a.Name.Local == "db" && a.Value == nsDialback:
			h.dialback = true
		}
	}
	if h.ns != router.NSServer {
		return h, stream.InvalidNamespace
	}
	return h, nil
}

// isTimeout tells timeouts apart, for remote-server-timeout bounces.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// isEOF tells an orderly close apart from a failure.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, router.ErrStreamEnd) || errors.Is(err, net.ErrClosed)
}

// streamErrorOf returns the condition of a <stream:error/> element.
func streamErrorOf(e *router.Element) string {
	for _, c := range e.Elements() {
		if c.Name.Space == nsStreams && c.Name.Local != "text" {
			return c.Name.Local
		}
	}
	return "undefined-condition"
}

// isStreamError tells whether e is <stream:error/>.
func isStreamError(e *router.Element) bool {
	return e.Name.Space == router.NSStream && e.Name.Local == "error"
}
