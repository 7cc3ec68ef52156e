package testserver

import (
	"bytes"
	"crypto/tls"
	"encoding/xml"
	"io"
	"net"
	"strings"
	"sync"

	"mellium.im/xmlstream"

	"github.com/xmppd/xmppd/router"
)

// Namespaces the helpers look for in what the server sends.
const (
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	nsStreams = "urn:ietf:params:xml:ns:xmpp-streams"
	nsPing    = "urn:xmpp:ping"

	nsDiscoInfo = "http://jabber.org/protocol/disco#info"
)

// streamLog keeps a copy of everything a client read after TLS, so that a
// test can see exactly which stream error or SASL failure the server sent:
// mellium reports those as errors that hide the condition (a SASL failure
// with text reports only its text), or loses them when it cannot echo a
// stream error back to a server that has already closed.
type streamLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *streamLog) write(p []byte) {
	l.mu.Lock()
	l.buf.Write(p)
	l.mu.Unlock()
}

func (l *streamLog) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.buf.Bytes())
}

// recordConn is a TLS connection whose reads are copied to a streamLog. It
// keeps ConnectionState visible, which mellium needs for channel binding.
type recordConn struct {
	*tls.Conn
	log *streamLog
}

func (c recordConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.log.write(p[:n])
	return n, err
}

// facts is what scanning a recorded stream found: the condition of the last
// SASL failure, of the stream error and of the last stanza error.
type facts struct {
	SASLFailure string
	StreamError string
	StanzaError string
}

// scan walks the XML the server sent (several stream headers, one per
// restart, none of them closed) and picks out the error conditions. It stops
// quietly at the end of the data or at the first syntax error.
func scan(b []byte) facts {
	var f facts
	d := xml.NewDecoder(bytes.NewReader(b))
	var stack []xml.Name
	for {
		tok, err := d.Token()
		if err != nil {
			return f
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				switch {
				case parent == xml.Name{Space: nsSASL, Local: "failure"} && t.Name.Local != "text":
					f.SASLFailure = t.Name.Local
				case parent == xml.Name{Space: router.NSStream, Local: "error"} && t.Name.Space == nsStreams && t.Name.Local != "text":
					f.StreamError = t.Name.Local
				case parent.Local == "error" && t.Name.Space == router.NSStanzas && t.Name.Local != "text":
					f.StanzaError = t.Name.Local
				}
			}
			stack = append(stack, t.Name)
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
}

// StreamErrorCondition returns the condition of a <stream:error/> element
// read with a router.Reader, or "" if e is not a stream error.
func StreamErrorCondition(e *router.Element) string {
	if e == nil || e.Name.Space != router.NSStream || e.Name.Local != "error" {
		return ""
	}
	for _, c := range e.Elements() {
		if c.Name.Space == nsStreams && c.Name.Local != "text" {
			return c.Name.Local
		}
	}
	return ""
}

// ErrorCondition returns the defined condition of a stanza error (RFC 6120
// §8.3) and its type, or empty strings if e carries no <error/>.
func ErrorCondition(e *router.Element) (cond, typ string) {
	if e == nil {
		return "", ""
	}
	errEl := e.Child("", "error")
	if errEl == nil {
		return "", ""
	}
	for _, c := range errEl.Elements() {
		if c.Name.Space == router.NSStanzas && c.Name.Local != "text" {
			return c.Name.Local, errEl.Get("type")
		}
	}
	return "", errEl.Get("type")
}

// readElement turns the tokens of one element, whose start has been read,
// into a router.Element. Namespace declarations are dropped from the tokens
// first, because xml.Encoder writes them again from each name's Space, and
// would otherwise write them twice.
func readElement(start xml.StartElement, r xml.TokenReader) (*router.Element, error) {
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	clean := func(tok xml.Token) xml.Token {
		if s, ok := tok.(xml.StartElement); ok {
			attrs := s.Attr[:0:0]
			for _, a := range s.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				attrs = append(attrs, a)
			}
			s.Attr = attrs
			return s
		}
		return tok
	}
	if err := enc.EncodeToken(clean(start)); err != nil {
		return nil, err
	}
	depth := 1
	for depth > 0 {
		tok, err := r.Token()
		if err == io.EOF && tok == nil {
			break
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if tok == nil {
			continue
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
		if err := enc.EncodeToken(clean(xml.CopyToken(tok))); err != nil {
			return nil, err
		}
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	return router.ParseElement(buf.Bytes(), router.NSClient)
}

// writeRaw writes XML text to a mellium session exactly as given, holding
// the session's output lock so that it cannot interleave with what the
// session itself writes (answers to the server's IQs).
func writeRaw(w xmlstream.TokenWriteFlushCloser, conn net.Conn, s string) error {
	defer w.Close()
	if err := w.Flush(); err != nil {
		return err
	}
	_, err := io.Copy(conn, strings.NewReader(s))
	return err
}
