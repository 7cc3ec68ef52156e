package router_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"

	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/router"
)

// fuzzHeader is the stream header every FuzzReader input follows, as a
// client would send it.
const fuzzHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`

// FuzzReader feeds arbitrary bytes after a valid stream header to the
// stanza reader, with limits set as the server sets them. The reader must
// never panic, must report every failure the input causes as a stream error,
// and every element it returns must survive writing and reading again: the
// output is well-formed, parses back to an equal tree, and writing that tree
// gives the same bytes.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		`<message to='bob@localhost' type='chat' id='m1'><body>Hello &amp; welcome</body></message>`,
		`<presence><show>away</show><status xml:lang='en'>out</status><priority>5</priority></presence>`,
		`<iq type='get' id='i1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
		`<iq type='set' id='i2'><query xmlns='jabber:iq:roster'><item jid='a@b' name='A &quot;B&quot;'><group>Friends</group></item></query></iq>`,
		`<iq type='get' id='i3'><p:pubsub xmlns:p='http://jabber.org/protocol/pubsub'><p:items node='n'/></p:pubsub></iq>`,
		`<message xmlns:foo='urn:foo' foo:bar='baz' xml:lang='fr'><body>x</body></message>`,
		`<message><body>a<![CDATA[<b>]]>c&#x1F600;</body></message>`,
		`<message><body>mixed <b xmlns='urn:b'>content</b> text</body></message>`,
		`<message><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='a@b/c'><body>hi</body></message></forwarded></received></message>`,
		"<message>\r\n<body a='x\ty\nz'>line\r\nbreak</body></message>",
		" \n\t<presence/> </stream:stream>",
		`<stream:features/><message/>`,
		`<message><!-- c --></message>`,
		`<message><p:x xmlns:p='urn:p' p:y='1'/><q:z xmlns:q='urn:p'/></message>`,
		"<message><p:\u02d0x xmlns:p='urn:p'/></message>",
		`<message><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></message>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := append([]byte(fuzzHeader), data...)
		r := router.NewReader(bytes.NewReader(in), router.NSClient, 4096, 16)
		if _, err := r.Header(); err != nil {
			t.Fatalf("header: %v", err)
		}
		for {
			e, err := r.Next()
			if err != nil {
				var se stream.Error
				if !errors.As(err, &se) && !errors.Is(err, router.ErrStreamEnd) && !errors.Is(err, io.EOF) {
					t.Fatalf("Next failed with %v (%T), not a stream error", err, err)
				}
				return
			}
			out := e.AppendXML(nil, router.NSClient)
			if err := uniqueAttrs(out); err != nil {
				t.Fatalf("output %q is not well-formed: %v", out, err)
			}
			again, err := router.ParseElement(out, router.NSClient)
			if err != nil {
				t.Fatalf("output %q does not parse: %v", out, err)
			}
			if !reflect.DeepEqual(e, again) {
				t.Fatalf("round trip changed the tree:\nread    %s\nwritten %q\nreread  %s", dump(e), out, dump(again))
			}
			if out2 := again.AppendXML(nil, router.NSClient); !bytes.Equal(out, out2) {
				t.Fatalf("writing is not stable:\n%q\n%q", out, out2)
			}
		}
	})
}

// uniqueAttrs checks what encoding/xml does not: no attribute, namespace
// declarations included, appears twice on one element.
func uniqueAttrs(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if s, ok := tok.(xml.StartElement); ok {
			seen := map[xml.Name]bool{}
			for _, a := range s.Attr {
				if seen[a.Name] {
					return errors.New("attribute " + a.Name.Space + ":" + a.Name.Local + " twice on <" + s.Name.Local + ">")
				}
				seen[a.Name] = true
			}
		}
	}
}

// dump shows a tree with its text nodes and namespaces, which the XML
// output would hide.
func dump(e *router.Element) string {
	var b bytes.Buffer
	var walk func(*router.Element)
	walk = func(e *router.Element) {
		fmt.Fprintf(&b, "{%q %q %v [", e.Name.Space, e.Name.Local, e.Attr)
		for _, n := range e.Children {
			switch c := n.(type) {
			case router.Text:
				fmt.Fprintf(&b, "%q ", string(c))
			case *router.Element:
				walk(c)
			}
		}
		b.WriteString("]} ")
	}
	walk(e)
	return b.String()
}

// TestReaderNCNames checks the reader's answer to names that encoding/xml
// accepts but that are not namespace-well-formed, found by FuzzReader: the
// prefix would be dropped on output, leaving a name that is not well-formed.
func TestReaderNCNames(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`<message><p:x xmlns:p='urn:p' p:y='1'/></message>`, true},
		{"<message><p:\u00e9x xmlns:p='urn:p'/></message>", true},
		{`<message><p:_x xmlns:p='urn:p'/></message>`, true},
		{`<stream:0/>`, false},
		{`<message><p:0 xmlns:p='urn:p'/></message>`, false},
		{`<message><p:-x xmlns:p='urn:p'/></message>`, false},
		{`<message><p:.x xmlns:p='urn:p'/></message>`, false},
		{"<message><p:\u02d0x xmlns:p='urn:p'/></message>", false}, // a letter, but not one that may start a name
		{`<message xmlns:p='urn:p' p:0='x'/>`, false},
		{`<message><:a/></message>`, false},
		{`<message :a='x'/>`, false},
	} {
		r := router.NewReader(bytes.NewReader([]byte(fuzzHeader+tc.in)), router.NSClient, 0, 0)
		if _, err := r.Header(); err != nil {
			t.Fatal(err)
		}
		e, err := r.Next()
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case !tc.ok && !errors.Is(err, stream.NotWellFormed):
			t.Errorf("%s: got %v, %v; want not-well-formed", tc.in, e, err)
		}
	}
}
