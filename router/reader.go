package router

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
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
	br        *bufio.Reader // below d: whitespace between elements is skipped here
	lim       *limitedReader
	contentNS string
	maxSize   int64
	maxDepth  int

	// bare holds the in-scope namespace names that contain no colon
	// (rare: real ones are URIs), innermost last; see unbound.
	bare []string

	// Whitespace budget between elements (see chargeSpace).
	now      func() time.Time
	wsTokens int64
	wsLast   time.Time
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
	br := bufio.NewReaderSize(lim, readBufferSize)
	d := xml.NewDecoder(br)
	d.Strict = true
	// XMPP is UTF-8 only (RFC 6120 §11.6): any other declared encoding is
	// answered with unsupported-encoding rather than a bare close.
	d.CharsetReader = func(string, io.Reader) (io.Reader, error) { return nil, errUnsupportedEncoding }
	return &Reader{d: d, br: br, lim: lim, contentNS: contentNS, maxSize: maxSize, maxDepth: maxDepth, now: time.Now}
}

// errUnsupportedEncoding is returned by the decoder's CharsetReader and
// turned into unsupported-encoding.
var errUnsupportedEncoding = errors.New("encoding other than UTF-8")

// skipSpace discards whitespace at the reader's position, straight from the
// buffer below the decoder, so that a run of keepalives is never held in
// memory and does not count toward the element size limit, and then checks
// that what follows can start markup: anything but '<' there is not XML
// (an HTTP request line, say), reported at once instead of after the
// decoder has waited for the next '<'. It must only be called where the
// decoder holds no byte read ahead: before the first token and after a
// complete top-level element or processing instruction.
func (r *Reader) skipSpace() error {
	for {
		if r.br.Buffered() == 0 {
			r.lim.start = r.lim.n // whitespace discarded so far does not count
		}
		if _, err := r.br.Peek(1); err != nil {
			if errors.Is(err, errTooLarge) {
				return stream.PolicyViolation
			}
			return err
		}
		buf, _ := r.br.Peek(r.br.Buffered())
		i := 0
		for i < len(buf) && isSpaceByte(buf[i]) {
			i++
		}
		if i > 0 {
			r.br.Discard(i)
			if err := r.chargeSpace(int64(i)); err != nil {
				return err
			}
		}
		if i < len(buf) {
			if buf[i] != '<' {
				return fmt.Errorf("%w: text where markup must start", stream.NotWellFormed)
			}
			// The element starts here: the size limit counts from it.
			r.lim.start = r.lim.n - int64(r.br.Buffered())
			return nil
		}
	}
}

// chargeSpace takes n bytes of whitespace between elements from a token
// bucket that holds twice the stanza size limit and refills by the limit
// every second: keepalives of any total length pass, while a peer that
// streams nothing but whitespace at full speed gets policy-violation. With
// no size limit there is no budget either.
func (r *Reader) chargeSpace(n int64) error {
	if r.maxSize <= 0 {
		return nil
	}
	burst := 2 * r.maxSize
	now := r.now()
	if r.wsLast.IsZero() {
		r.wsTokens = burst
	} else if el := now.Sub(r.wsLast); el > 0 {
		if el >= 2*time.Second {
			r.wsTokens = burst
		} else {
			r.wsTokens = min(burst, r.wsTokens+int64(el)*r.maxSize/int64(time.Second))
		}
	}
	r.wsLast = now
	r.wsTokens -= n
	if r.wsTokens < 0 {
		return fmt.Errorf("%w: whitespace between stanzas faster than the limit", stream.PolicyViolation)
	}
	return nil
}

// Header reads the stream header: the first start element, which must be
// <stream:stream>. It returns the header for the caller to check (to, from,
// version, the default namespace).
func (r *Reader) Header() (xml.StartElement, error) {
	return r.Open(NSStream, "stream")
}

// Open reads the stream's root element, which must be space's local: the
// <stream:stream> header, or a BOSH <body/> wrapper, whose children are
// then read with Next like a stream's.
func (r *Reader) Open(space, local string) (xml.StartElement, error) {
	for {
		if err := r.skipSpace(); err != nil {
			return xml.StartElement{}, err
		}
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
			// skipSpace saw '<' next, so the decoder returns no text here.
			return xml.StartElement{}, stream.NotWellFormed
		case xml.StartElement:
			if t.Name.Local != local {
				return t, stream.NotWellFormed
			}
			if t.Name.Space != space {
				return t, stream.InvalidNamespace
			}
			for _, a := range t.Attr {
				r.declare(a)
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
	for {
		if err := r.skipSpace(); err != nil {
			return nil, err
		}
		tok, err := r.token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			// skipSpace saw '<' next, so the decoder returns no text here.
			return nil, stream.NotWellFormed
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
	mark := len(r.bare)
	e := &Element{Name: r.name(start.Name)}
	// encoding/xml gives every start element a fresh Attr slice and keeps
	// none of it, so filter it in place instead of copying.
	attrs := start.Attr[:0]
	for _, a := range start.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			r.declare(a)
			continue // namespace declarations are regenerated on output
		}
		attrs = append(attrs, a)
	}
	// Checked once this element's own declarations are in scope.
	if r.unbound(start.Name.Space) {
		return nil, fmt.Errorf("%w: element prefix %q is not declared", stream.NotWellFormed, start.Name.Space)
	}
	for _, a := range attrs {
		if r.unbound(a.Name.Space) {
			return nil, fmt.Errorf("%w: attribute prefix %q is not declared", stream.NotWellFormed, a.Name.Space)
		}
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
			r.bare = r.bare[:mark]
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

// declare records a namespace declaration (xmlns or xmlns:p) whose
// namespace name has no colon, for unbound.
func (r *Reader) declare(a xml.Attr) {
	if (a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns")) &&
		a.Value != "" && strings.IndexByte(a.Value, ':') < 0 {
		r.bare = append(r.bare, a.Value)
	}
}

// unbound reports a name whose prefix is not declared. encoding/xml does
// not fail on <foo:bar/>: it leaves the prefix itself as Name.Space, and
// written out that would be <bar xmlns='foo'/>, a different element.
// A prefix is an NCName, so has no colon, while a namespace name is a URI
// and has one; so a colon-less Space is an undeclared prefix unless it is
// a (colon-less, rare) namespace name declared in scope. The common case
// costs one IndexByte. (A prefix equal to such an in-scope namespace name
// cannot be told apart and is let through; its output is well-formed.)
func (r *Reader) unbound(space string) bool {
	if space == "" || strings.IndexByte(space, ':') >= 0 {
		return false
	}
	for _, s := range r.bare {
		if s == space {
			return false
		}
	}
	return true
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
	case errors.Is(err, errUnsupportedEncoding):
		return nil, fmt.Errorf("%w: %v", stream.UnsupportedEncoding, err)
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

func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
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
