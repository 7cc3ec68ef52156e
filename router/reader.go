package router

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/stream"
)

// Namespaces of the stream layer.
const (
	NSClient = "jabber:client"
	NSServer = "jabber:server"
	NSStream = "http://etherx.jabber.org/streams"
)

// ErrStreamEnd is returned by Reader.Next when the peer closed its stream
// with </stream:stream>.
var ErrStreamEnd = errors.New("stream closed by peer")

// Reader reads one top-level element at a time from an XML stream whose
// header has already been consumed, enforcing the size and depth limits and
// RFC 6120's restricted XML. Errors that the peer caused are mellium
// stream.Error values, ready to be sent as the stream error.
type Reader struct {
	d         *xml.Decoder
	lim       *limitedReader
	contentNS string
	maxSize   int64
	maxDepth  int
}

// limitedReader fails reads once more than max bytes have been consumed
// since the start of the current element; it stops a peer that sends one
// endless token, which the decoder would otherwise buffer whole.
type limitedReader struct {
	r     io.Reader
	n     int64 // bytes read in total
	start int64 // value of n where the current element started
	max   int64
}

// errTooLarge is returned by limitedReader and turned into policy-violation.
var errTooLarge = errors.New("element exceeds the size limit")

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.max > 0 && l.n-l.start > l.max {
		return 0, errTooLarge
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}

// readBufferSize is the decoder's read buffer.
const readBufferSize = 512

// readSlack is how far the raw reader may run ahead of the decoder's
// position: the decoder's own buffer.
const readSlack = 8192

// NewReader returns a Reader over r. contentNS is the namespace the stream
// header declared as default (NSClient or NSServer); maxSize and maxDepth of
// zero mean no limit.
func NewReader(r io.Reader, contentNS string, maxSize int64, maxDepth int) *Reader {
	lim := &limitedReader{r: r}
	if maxSize > 0 {
		lim.max = maxSize + readSlack
	}
	// A small read buffer: the decoder keeps it for the life of the
	// stream, and TLS already buffers whole records below it, so a larger
	// one only costs memory per idle session (docs/PERFORMANCE.md).
	d := xml.NewDecoder(bufio.NewReaderSize(lim, readBufferSize))
	d.Strict = true
	return &Reader{d: d, lim: lim, contentNS: contentNS, maxSize: maxSize, maxDepth: maxDepth}
}

// Header reads the stream header: the first start element, which must be
// <stream:stream>. It returns the header for the caller to check (to, from,
// version, the default namespace).
func (r *Reader) Header() (xml.StartElement, error) {
	for {
		tok, err := r.token()
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if t.Target != "xml" {
				return xml.StartElement{}, stream.RestrictedXML
			}
		case xml.CharData:
			if !isSpace(t) {
				return xml.StartElement{}, stream.NotWellFormed
			}
		case xml.StartElement:
			if t.Name.Local != "stream" {
				return t, stream.NotWellFormed
			}
			if t.Name.Space != NSStream {
				return t, stream.InvalidNamespace
			}
			return t.Copy(), nil
		default:
			return xml.StartElement{}, stream.RestrictedXML
		}
	}
}

// Next returns the next top-level element. Whitespace between elements
// (keepalives) is skipped. It returns ErrStreamEnd when the stream closes.
func (r *Reader) Next() (*Element, error) {
	r.lim.start = r.d.InputOffset()
	for {
		tok, err := r.token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if !isSpace(t) {
				return nil, stream.NotWellFormed
			}
			r.lim.start = r.d.InputOffset()
		case xml.StartElement:
			start := r.d.InputOffset()
			return r.element(t, start, 1)
		case xml.EndElement:
			return nil, ErrStreamEnd
		default:
			return nil, stream.RestrictedXML
		}
	}
}

// element reads the rest of the element that start opened.
func (r *Reader) element(start xml.StartElement, offset int64, depth int) (*Element, error) {
	if r.maxDepth > 0 && depth > r.maxDepth {
		return nil, stream.PolicyViolation
	}
	if hasDuplicateAttr(start.Attr) || hasBadName(start) {
		return nil, stream.NotWellFormed
	}
	e := &Element{Name: r.name(start.Name)}
	// encoding/xml gives every start element a fresh Attr slice and keeps
	// none of it, so filter it in place instead of copying.
	attrs := start.Attr[:0]
	for _, a := range start.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue // namespace declarations are regenerated on output
		}
		attrs = append(attrs, a)
	}
	if len(attrs) > 0 {
		e.Attr = attrs
	}
	for {
		if r.maxSize > 0 && r.d.InputOffset()-offset > r.maxSize {
			return nil, stream.PolicyViolation
		}
		tok, err := r.token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			c, err := r.element(t, offset, depth+1)
			if err != nil {
				return nil, err
			}
			e.Children = append(e.Children, c)
		case xml.EndElement:
			if r.maxSize > 0 && r.d.InputOffset()-offset > r.maxSize {
				return nil, stream.PolicyViolation
			}
			return e, nil
		case xml.CharData:
			// The decoder splits text at CDATA sections; join the pieces so
			// that the tree does not depend on how the sender quoted it
			// (written out, it is one run of text either way).
			if n := len(e.Children); n > 0 {
				if prev, ok := e.Children[n-1].(Text); ok {
					e.Children[n-1] = prev + Text(t)
					continue
				}
			}
			e.Children = append(e.Children, Text(t))
		default:
			// Comments, processing instructions and DTDs are not allowed
			// in XMPP (RFC 6120 §11.1).
			return nil, stream.RestrictedXML
		}
	}
}

// name maps the stream's content namespace to "" (see Element).
func (r *Reader) name(n xml.Name) xml.Name {
	if n.Space == r.contentNS {
		n.Space = ""
	}
	return n
}

// token reads one token, turning decoder failures into stream errors.
func (r *Reader) token() (xml.Token, error) {
	tok, err := r.d.Token()
	if err == nil {
		return tok, nil
	}
	var syn *xml.SyntaxError
	switch {
	case errors.Is(err, errTooLarge):
		return nil, stream.PolicyViolation
	case errors.As(err, &syn):
		return nil, fmt.Errorf("%w: %v", stream.NotWellFormed, syn)
	case errors.Is(err, io.EOF):
		return nil, io.EOF
	}
	return nil, err
}

// hasDuplicateAttr reports an attribute given twice on one element, which
// encoding/xml accepts but XML forbids (Unique Att Spec, and its namespace
// form): relayed, a second 'from' after the one c2s stamps would show a
// forged sender to parsers that keep the last value, and break the
// receiver's stream for parsers that check.
func hasDuplicateAttr(attrs []xml.Attr) bool {
	if len(attrs) <= 8 {
		for i := range attrs {
			for j := range i {
				if attrs[i].Name == attrs[j].Name {
					return true
				}
			}
		}
		return false
	}
	seen := make(map[xml.Name]bool, len(attrs))
	for _, a := range attrs {
		if seen[a.Name] {
			return true
		}
		seen[a.Name] = true
	}
	return false
}

// hasBadName reports an element or attribute whose local name is not an
// NCName (Namespaces in XML §3). encoding/xml checks only the qualified name,
// so it accepts <p:0 xmlns:p='urn:x'/> or <:a/>; written out without the
// prefix, as <0 xmlns='urn:x'/>, such an element would not be well-formed
// and would break the stream of whoever receives it.
func hasBadName(start xml.StartElement) bool {
	if !isNCName(start.Name.Local) {
		return true
	}
	for _, a := range start.Attr {
		if a.Name.Space != "xmlns" && !isNCName(a.Name.Local) {
			return true
		}
	}
	return false
}

// isNCName tells whether s, which encoding/xml has read as (part of) a
// name, is a name without a colon that may also stand first in a name.
func isNCName(s string) bool {
	if s == "" || strings.IndexByte(s, ':') >= 0 {
		return false
	}
	switch c := s[0]; {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		return true
	case c < utf8.RuneSelf:
		return false
	}
	// A name that starts with a non-ASCII character (rare): let
	// encoding/xml, which decides what the receiving end accepts, judge it
	// as a whole name.
	_, err := xml.NewDecoder(strings.NewReader("<" + s + "/>")).RawToken()
	return err == nil
}

func isSpace(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return false
		}
	}
	return true
}

// ParseElement parses one element from b, as if it had been read on a
// stream whose content namespace is contentNS. Tests and tools use it to
// build stanzas from their XML text.
func ParseElement(b []byte, contentNS string) (*Element, error) {
	// Inside a stream header, as on the wire, so that the stream: prefix
	// of <stream:features/> and <stream:error/> is bound.
	hdr := `<stream:stream xmlns="` + contentNS + `" xmlns:stream="` + NSStream + `">`
	r := NewReader(io.MultiReader(strings.NewReader(hdr), bytes.NewReader(b)), contentNS, 0, 0)
	if _, err := r.Header(); err != nil {
		return nil, err
	}
	return r.Next()
}
