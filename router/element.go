package router

import (
	"encoding/xml"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Element is one XML element of a stanza: a small tree in the manner of
// Prosody's util.stanza, so that handlers read and build stanzas the way the
// XEPs print them instead of declaring a struct per payload.
//
// Name.Space is empty for elements in the stream's content namespace
// (jabber:client or jabber:server): a stanza read from a client stream and
// written to a server stream then needs no rewriting.
type Element struct {
	Name     xml.Name
	Attr     []xml.Attr
	Children []Node
}

// Node is a child of an Element: either *Element or Text.
type Node interface{ node() }

// Text is character data inside an element.
type Text string

func (Text) node()     {}
func (*Element) node() {}

// NewElement returns an element with the given namespace and local name.
// Attributes are given as name, value pairs.
func NewElement(space, local string, attrs ...string) *Element {
	e := &Element{Name: xml.Name{Space: space, Local: local}}
	for i := 0; i+1 < len(attrs); i += 2 {
		e.SetAttr(attrs[i], attrs[i+1])
	}
	return e
}

// Get returns the value of an unqualified attribute, or "".
func (e *Element) Get(name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// SetAttr sets an unqualified attribute; an empty value removes it.
func (e *Element) SetAttr(name, value string) *Element {
	for i, a := range e.Attr {
		if a.Name.Local == name && a.Name.Space == "" {
			if value == "" {
				e.Attr = append(e.Attr[:i], e.Attr[i+1:]...)
			} else {
				e.Attr[i].Value = value
			}
			return e
		}
	}
	if value != "" {
		e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Local: name}, Value: value})
	}
	return e
}

// Append adds child elements and returns e, so trees build in one expression.
func (e *Element) Append(children ...*Element) *Element {
	for _, c := range children {
		e.Children = append(e.Children, c)
	}
	return e
}

// AppendText adds character data.
func (e *Element) AppendText(s string) *Element {
	e.Children = append(e.Children, Text(s))
	return e
}

// Child returns the first child element with the given namespace and local
// name; an empty local name matches any name in the namespace.
func (e *Element) Child(space, local string) *Element {
	for _, n := range e.Children {
		if c, ok := n.(*Element); ok && c.Name.Space == space && (local == "" || c.Name.Local == local) {
			return c
		}
	}
	return nil
}

// FirstChild returns the first child element, or nil. An IQ's payload is its
// first child.
func (e *Element) FirstChild() *Element {
	for _, n := range e.Children {
		if c, ok := n.(*Element); ok {
			return c
		}
	}
	return nil
}

// Elements returns the child elements, skipping character data.
func (e *Element) Elements() []*Element {
	var out []*Element
	for _, n := range e.Children {
		if c, ok := n.(*Element); ok {
			out = append(out, c)
		}
	}
	return out
}

// Text returns the concatenated character data directly inside e.
func (e *Element) Text() string {
	var b strings.Builder
	for _, n := range e.Children {
		if t, ok := n.(Text); ok {
			b.WriteString(string(t))
		}
	}
	return b.String()
}

// Copy returns a deep copy, for the cases where one stanza goes to several
// receivers that may each change it.
func (e *Element) Copy() *Element {
	c := &Element{Name: e.Name}
	if len(e.Attr) > 0 {
		c.Attr = append([]xml.Attr(nil), e.Attr...)
	}
	if len(e.Children) > 0 {
		c.Children = make([]Node, len(e.Children))
		for i, n := range e.Children {
			if el, ok := n.(*Element); ok {
				c.Children[i] = el.Copy()
			} else {
				c.Children[i] = n
			}
		}
	}
	return c
}

// xmlNS is the namespace bound to the xml: prefix.
const xmlNS = "http://www.w3.org/XML/1998/namespace"

// AppendXML serialises e onto buf. contentNS is the stream's content
// namespace (jabber:client or jabber:server), which elements with an empty
// Name.Space belong to; e is assumed to be a direct child of the stream.
func (e *Element) AppendXML(buf []byte, contentNS string) []byte {
	if e.Name.Space == NSStream {
		// Stream-level elements (features, error) are written with the
		// stream: prefix the header declares: some servers (ejabberd)
		// ignore <features xmlns='http://etherx.jabber.org/streams'/>
		// although it means the same.
		return e.appendPrefixed(buf, "stream", contentNS)
	}
	return e.appendXML(buf, "", contentNS)
}

// appendPrefixed writes e as prefix:local, relying on the prefix being
// declared by the stream header; the default namespace in scope stays the
// stream's content namespace.
func (e *Element) appendPrefixed(buf []byte, prefix, contentNS string) []byte {
	inner := *e
	inner.Name.Local = prefix + ":" + e.Name.Local
	inner.Name.Space = ""
	// Children are written relative to the content namespace, as they
	// would be under the stream element itself.
	return inner.appendXML(buf, "", contentNS)
}

// String serialises e as it would be written on a client stream.
func (e *Element) String() string {
	return string(e.AppendXML(nil, NSClient))
}

// appendXML writes e given the default namespace in scope at its parent
// (parentNS; "" means the stream content namespace).
func (e *Element) appendXML(buf []byte, parentNS, contentNS string) []byte {
	buf = append(buf, '<')
	buf = append(buf, e.Name.Local...)
	if e.Name.Space != parentNS {
		ns := e.Name.Space
		if ns == "" {
			ns = contentNS
		}
		buf = append(buf, ` xmlns="`...)
		buf = appendEscaped(buf, ns, true)
		buf = append(buf, '"')
	}
	prefixes := 0
	for _, a := range e.Attr {
		buf = append(buf, ' ')
		switch a.Name.Space {
		case "":
		case xmlNS, "xml":
			buf = append(buf, "xml:"...)
		default:
			// A namespaced attribute other than xml:*: declare a prefix
			// for it on this element, a1, a2, …, each one unique, since a
			// prefix declared twice on one element is not well-formed.
			prefixes++
			buf = append(buf, "xmlns:a"...)
			buf = strconv.AppendInt(buf, int64(prefixes), 10)
			buf = append(buf, `="`...)
			buf = appendEscaped(buf, a.Name.Space, true)
			buf = append(buf, `" a`...)
			buf = strconv.AppendInt(buf, int64(prefixes), 10)
			buf = append(buf, ':')
		}
		buf = append(buf, a.Name.Local...)
		buf = append(buf, `="`...)
		buf = appendEscaped(buf, a.Value, true)
		buf = append(buf, '"')
	}
	if len(e.Children) == 0 {
		return append(buf, "/>"...)
	}
	buf = append(buf, '>')
	for _, n := range e.Children {
		switch c := n.(type) {
		case Text:
			buf = appendEscaped(buf, string(c), false)
		case *Element:
			buf = c.appendXML(buf, e.Name.Space, contentNS)
		}
	}
	buf = append(buf, "</"...)
	buf = append(buf, e.Name.Local...)
	return append(buf, '>')
}

// appendEscaped escapes XML special characters; attribute values also get
// quotes and whitespace escaped so they survive attribute normalisation.
func appendEscaped(buf []byte, s string, attr bool) []byte {
	last := 0
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch r {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			if attr {
				esc = "&quot;"
			}
		case '\'':
			if attr {
				esc = "&apos;"
			}
		case '\r':
			esc = "&#xD;"
		case '\n':
			if attr {
				esc = "&#xA;"
			}
		case '\t':
			if attr {
				esc = "&#x9;"
			}
		}
		if esc != "" {
			buf = append(buf, s[last:i]...)
			buf = append(buf, esc...)
			last = i + w
		}
		i += w
	}
	return append(buf, s[last:]...)
}

// AppendEscaped appends s escaped for use in an attribute value.
func AppendEscaped(buf []byte, s string) []byte { return appendEscaped(buf, s, true) }
