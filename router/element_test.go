package router_test

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/router"
)

const xmlNS = "http://www.w3.org/XML/1998/namespace"

func TestAppendXMLEscaping(t *testing.T) {
	tests := []struct {
		name string
		el   *router.Element
		want string
	}{
		{
			name: "attribute with quotes, markup and whitespace",
			el:   router.NewElement("", "message", "id", "a\"b'c<d>e&f\ng\th\ri"),
			want: `<message id="a&quot;b&apos;c&lt;d&gt;e&amp;f&#xA;g&#x9;h&#xD;i"/>`,
		},
		{
			name: "text with markup, CDATA end and newlines",
			el:   router.NewElement("", "body").AppendText("1 < 2 && ]]> \"q\" 'a'\nline\r\n\ttab"),
			want: "<body>1 &lt; 2 &amp;&amp; ]]&gt; \"q\" 'a'\nline&#xD;\n\ttab</body>",
		},
		{
			name: "entity-like text is escaped, not passed through",
			el:   router.NewElement("", "body").AppendText("&lt;&#60;"),
			want: `<body>&amp;lt;&amp;#60;</body>`,
		},
		{
			name: "non-ASCII is written as it is",
			el:   router.NewElement("", "body", "title", "Grüße ☃").AppendText("日本語 🎉"),
			want: `<body title="Grüße ☃">日本語 🎉</body>`,
		},
		{
			name: "namespace values are escaped",
			el:   router.NewElement(`urn:x"y`, "q"),
			want: `<q xmlns="urn:x&quot;y"/>`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(tt.el.AppendXML(nil, router.NSClient))
			if got != tt.want {
				t.Errorf("AppendXML:\n got %s\nwant %s", got, tt.want)
			}
			// What was written parses back to the same tree.
			back, err := router.ParseElement([]byte(got), router.NSClient)
			if err != nil {
				t.Fatalf("parse %s: %v", got, err)
			}
			if !reflect.DeepEqual(back, tt.el) {
				t.Errorf("round trip changed the element:\n got %#v\nwant %#v", back, tt.el)
			}
		})
	}
}

func TestAppendXMLAppends(t *testing.T) {
	buf := []byte("prefix:")
	buf = router.NewElement("", "presence").AppendXML(buf, router.NSClient)
	if got := string(buf); got != "prefix:<presence/>" {
		t.Errorf("got %q", got)
	}
}

// withAttr adds a namespaced attribute, which NewElement cannot.
func withAttr(e *router.Element, space, local, value string) *router.Element {
	e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Space: space, Local: local}, Value: value})
	return e
}

func TestAppendXMLNamespaces(t *testing.T) {
	// A message carrying a forwarded message (XEP-0297), the case where a
	// content-namespace element sits inside a foreign one.
	forwarded := func() *router.Element {
		inner := router.NewElement("", "message", "from", "a@x/r", "type", "chat").
			Append(router.NewElement("", "body").AppendText("hi"))
		return router.NewElement("", "message", "to", "b@x").Append(
			router.NewElement("urn:xmpp:carbons:2", "received").Append(
				router.NewElement("urn:xmpp:forward:0", "forwarded").Append(
					router.NewElement("urn:xmpp:delay", "delay", "stamp", "2024-01-01T00:00:00Z"),
					inner)))
	}
	tests := []struct {
		name      string
		el        *router.Element
		contentNS string
		want      string
	}{
		{
			name:      "content namespace needs no declaration",
			el:        router.NewElement("", "message").Append(router.NewElement("", "body").AppendText("x")),
			contentNS: router.NSClient,
			want:      `<message><body>x</body></message>`,
		},
		{
			name: "a child in a foreign namespace declares it; its children inherit it",
			el: router.NewElement("", "iq", "type", "result").Append(
				router.NewElement("jabber:iq:roster", "query").Append(
					router.NewElement("jabber:iq:roster", "item", "jid", "a@x").Append(
						router.NewElement("jabber:iq:roster", "group").AppendText("g")))),
			contentNS: router.NSClient,
			want:      `<iq type="result"><query xmlns="jabber:iq:roster"><item jid="a@x"><group>g</group></item></query></iq>`,
		},
		{
			name: "siblings in different namespaces each declare theirs",
			el: router.NewElement("", "message").Append(
				router.NewElement("urn:a", "a"),
				router.NewElement("urn:b", "b"),
				router.NewElement("", "body")),
			contentNS: router.NSClient,
			want:      `<message><a xmlns="urn:a"/><b xmlns="urn:b"/><body/></message>`,
		},
		{
			name:      "content namespace inside a foreign parent is declared (client)",
			el:        forwarded(),
			contentNS: router.NSClient,
			want: `<message to="b@x"><received xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0">` +
				`<delay xmlns="urn:xmpp:delay" stamp="2024-01-01T00:00:00Z"/>` +
				`<message xmlns="jabber:client" from="a@x/r" type="chat"><body>hi</body></message>` +
				`</forwarded></received></message>`,
		},
		{
			name:      "content namespace inside a foreign parent is declared (server)",
			el:        forwarded(),
			contentNS: router.NSServer,
			want: `<message to="b@x"><received xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0">` +
				`<delay xmlns="urn:xmpp:delay" stamp="2024-01-01T00:00:00Z"/>` +
				`<message xmlns="jabber:server" from="a@x/r" type="chat"><body>hi</body></message>` +
				`</forwarded></received></message>`,
		},
		{
			name:      "a top-level element in a foreign namespace declares it",
			el:        router.NewElement(router.NSStream, "features").Append(router.NewElement("urn:ietf:params:xml:ns:xmpp-bind", "bind")),
			contentNS: router.NSClient,
			want:      `<stream:features><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></stream:features>`,
		},
		{
			// Both forms of the name: the reader's (the namespace) and the
			// prefix a module might write.
			name: "xml:lang",
			el: withAttr(router.NewElement("", "message"), xmlNS, "lang", "de").Append(
				withAttr(router.NewElement("", "body"), "xml", "lang", "en").AppendText("x")),
			contentNS: router.NSClient,
			want:      `<message xml:lang="de"><body xml:lang="en">x</body></message>`,
		},
		{
			name:      "namespaced attributes get a prefix each",
			el:        withAttr(withAttr(router.NewElement("", "x"), "urn:p", "a", "1"), "urn:q", "b", "2"),
			contentNS: router.NSClient,
			want:      `<x xmlns:a1="urn:p" a1:a="1" xmlns:a2="urn:q" a2:b="2"/>`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(tt.el.AppendXML(nil, tt.contentNS))
			if got != tt.want {
				t.Errorf("AppendXML:\n got %s\nwant %s", got, tt.want)
			}
			if _, err := router.ParseElement([]byte(got), tt.contentNS); err != nil {
				t.Errorf("output does not parse: %v", err)
			}
		})
	}
}

// TestRoundTrip parses stanzas as a client stream delivers them, writes
// them, and parses the output again: the trees must be equal, whatever
// prefixes the input used.
func TestRoundTrip(t *testing.T) {
	tests := []string{
		`<message to="bob@localhost" type="chat" id="1" xml:lang="en"><body>Hello &amp; &lt;welcome&gt;</body><thread>t1</thread></message>`,
		`<message xmlns="jabber:client" to="bob@localhost"><body xml:lang="de">Grüße</body></message>`,
		`<iq type="set" id="2"><query xmlns="jabber:iq:roster"><item jid="a@b" name="A &quot;B&quot;"><group>Friends</group></item></query></iq>`,
		`<iq type="get" id="3"><p:pubsub xmlns:p="http://jabber.org/protocol/pubsub"><p:items node="n"/></p:pubsub></iq>`,
		`<message><received xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client" from="a@b/c"><body>hi</body></message></forwarded></received></message>`,
		`<message><x xmlns="jabber:x:data" type="submit"><field var="a"><value>1</value><value>2</value></field></x></message>`,
		`<message id="n" xmlns:foo="urn:foo" foo:bar="baz" xml:lang="fr"><body>x</body></message>`,
		`<presence><status>multi
line	with tab</status><priority>5</priority></presence>`,
		`<message><body>mixed <b xmlns="urn:b">content</b> text</body></message>`,
		`<message><body></body></message>`,
	}
	// Many namespaced attributes on one element, each a prefix of its own.
	var many strings.Builder
	many.WriteString(`<message`)
	for i := range 12 {
		fmt.Fprintf(&many, ` xmlns:p%d="urn:p%d" p%d:a="%d"`, i, i, i, i)
	}
	many.WriteString(`/>`)
	tests = append(tests, many.String())

	for _, in := range tests {
		t.Run(in, func(t *testing.T) {
			for _, contentNS := range []string{router.NSClient, router.NSServer} {
				first, err := router.ParseElement([]byte(strings.ReplaceAll(in, `"jabber:client"`, `"`+contentNS+`"`)), contentNS)
				if err != nil {
					t.Fatalf("parse input: %v", err)
				}
				out := first.AppendXML(nil, contentNS)
				if err := wellFormed(out); err != nil {
					t.Fatalf("output %s is not well-formed: %v", out, err)
				}
				second, err := router.ParseElement(out, contentNS)
				if err != nil {
					t.Fatalf("parse output %s: %v", out, err)
				}
				if !reflect.DeepEqual(first, second) {
					t.Errorf("%s: round trip changed the tree\n in %s\nout %s", contentNS, in, out)
				}
			}
		})
	}
}

// wellFormed checks what encoding/xml lets pass: no attribute (in
// particular no namespace declaration) appears twice on one element.
func wellFormed(b []byte) error {
	d := xml.NewDecoder(strings.NewReader(string(b)))
	d.Strict = true
	for {
		tok, err := d.RawToken()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if se, ok := tok.(xml.StartElement); ok {
			seen := map[xml.Name]bool{}
			for _, a := range se.Attr {
				if seen[a.Name] {
					return fmt.Errorf("<%s> has attribute %s:%s twice", se.Name.Local, a.Name.Space, a.Name.Local)
				}
				seen[a.Name] = true
			}
		}
	}
}

func TestParseElementRejects(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{`<message to="a@b" to="c@d"/>`, stream.NotWellFormed},
		{`<message from="a@b/c" id="1" from="admin@b/x"/>`, stream.NotWellFormed},
		{`<message><body xml:lang="en" xml:lang="de"/></message>`, stream.NotWellFormed},
		{`<message xmlns:x="urn:x" xmlns:y="urn:x" x:a="1" y:a="2"/>`, stream.NotWellFormed},
		{`<message><!-- comment --></message>`, stream.RestrictedXML},
		{`<message><?pi x?></message>`, stream.RestrictedXML},
		{`<message><body>x</message>`, stream.NotWellFormed},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := router.ParseElement([]byte(tt.in), router.NSClient)
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestElementHelpers(t *testing.T) {
	e := router.NewElement("", "message", "to", "a@b", "type", "chat")
	e.Append(router.NewElement("", "body").AppendText("hi"), router.NewElement("urn:x", "x"), router.NewElement("urn:x", "y"))
	e.AppendText(" ")
	if got := e.Get("type"); got != "chat" {
		t.Errorf("Get(type) = %q", got)
	}
	if got := e.Get("missing"); got != "" {
		t.Errorf("Get(missing) = %q", got)
	}
	e.SetAttr("type", "normal")
	if got := e.Get("type"); got != "normal" {
		t.Errorf("after SetAttr, Get(type) = %q", got)
	}
	e.SetAttr("type", "")
	if got := e.String(); strings.Contains(got, "type=") {
		t.Errorf("SetAttr(type, \"\") left %s", got)
	}
	e.SetAttr("missing", "") // removing an absent attribute is a no-op
	if c := e.Child("urn:x", ""); c == nil || c.Name.Local != "x" {
		t.Errorf("Child(urn:x, any) = %v, want x", c)
	}
	if c := e.Child("urn:x", "y"); c == nil || c.Name.Local != "y" {
		t.Errorf("Child(urn:x, y) = %v", c)
	}
	if c := e.Child("", "x"); c != nil {
		t.Errorf("Child(\"\", x) = %v, want nil: the namespace must match", c)
	}
	if c := e.FirstChild(); c == nil || c.Name.Local != "body" {
		t.Errorf("FirstChild() = %v", c)
	}
	if got := len(e.Elements()); got != 3 {
		t.Errorf("len(Elements()) = %d, want 3", got)
	}
	if got := e.Child("", "body").Text(); got != "hi" {
		t.Errorf("body Text() = %q", got)
	}
	if got := router.NewElement("", "x").FirstChild(); got != nil {
		t.Errorf("FirstChild of an empty element = %v", got)
	}
}

func TestElementCopy(t *testing.T) {
	orig, err := router.ParseElement([]byte(`<message id="1"><body>hi</body><x xmlns="urn:x" a="b"/></message>`), router.NSClient)
	if err != nil {
		t.Fatal(err)
	}
	want := orig.String()
	c := orig.Copy()
	if !reflect.DeepEqual(c, orig) {
		t.Fatal("copy differs")
	}
	c.SetAttr("id", "2")
	c.Child("", "body").Children[0] = router.Text("changed")
	c.Child("urn:x", "x").SetAttr("a", "c")
	c.Append(router.NewElement("", "extra"))
	if got := orig.String(); got != want {
		t.Errorf("changing the copy changed the original:\n got %s\nwant %s", got, want)
	}
}

func TestNewStanza(t *testing.T) {
	tests := []struct {
		in       string
		wantErr  bool
		wantTo   string
		wantFrom string
	}{
		{in: `<message to="Bob@LocalHost/Res" from="a@b/c"/>`, wantTo: "bob@localhost/Res", wantFrom: "a@b/c"},
		{in: `<presence/>`},
		{in: `<message to="a@@b"/>`, wantErr: true},
		{in: `<message from="@b"/>`, wantErr: true},
		{in: `<iq to="a@b/" type="get"/>`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := router.ParseElement([]byte(tt.in), router.NSClient)
			if err != nil {
				t.Fatal(err)
			}
			st, err := router.NewStanza(e)
			if tt.wantErr {
				var se stanza.Error
				if !errors.As(err, &se) || se.Condition != stanza.JIDMalformed {
					t.Errorf("err = %v, want jid-malformed", err)
				}
				if st == nil {
					t.Error("no stanza returned with the error; the caller needs it to answer")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.To.String() != tt.wantTo || st.From.String() != tt.wantFrom {
				t.Errorf("to %q from %q, want %q %q", st.To, st.From, tt.wantTo, tt.wantFrom)
			}
		})
	}
}

func TestStanzaAccessors(t *testing.T) {
	for _, tt := range []struct {
		in        string
		kind, typ string
		request   bool
	}{
		{`<iq type="get" id="x"/>`, router.KindIQ, "get", true},
		{`<iq type="set" id="x"/>`, router.KindIQ, "set", true},
		{`<iq type="result" id="x"/>`, router.KindIQ, "result", false},
		{`<iq type="error" id="x"/>`, router.KindIQ, "error", false},
		{`<message id="x"/>`, router.KindMessage, "", false},
		{`<presence type="get" id="x"/>`, router.KindPresence, "get", false},
	} {
		st := parse(t, tt.in)
		if st.Kind() != tt.kind || st.Type() != tt.typ || st.ID() != "x" || st.IsIQRequest() != tt.request {
			t.Errorf("%s: kind %q type %q id %q request %v", tt.in, st.Kind(), st.Type(), st.ID(), st.IsIQRequest())
		}
	}
	st := parse(t, `<message/>`)
	st.SetTo(jid.MustParse("a@b"))
	st.SetFrom(jid.MustParse("c@d/e"))
	if st.Get("to") != "a@b" || st.Get("from") != "c@d/e" || st.To.String() != "a@b" || st.From.String() != "c@d/e" {
		t.Errorf("SetTo/SetFrom: %s, to %s from %s", st, st.To, st.From)
	}
}

func TestReply(t *testing.T) {
	req := parse(t, `<iq from="alice@localhost/a" to="localhost" type="get" id="v1"><query xmlns="jabber:iq:version"/></iq>`)
	res := req.Reply(router.NewElement("jabber:iq:version", "query").Append(router.NewElement("jabber:iq:version", "name").AppendText("xmppd")))
	want := `<iq id="v1" type="result" to="alice@localhost/a" from="localhost"><query xmlns="jabber:iq:version"><name>xmppd</name></query></iq>`
	if got := res.String(); got != want {
		t.Errorf("Reply:\n got %s\nwant %s", got, want)
	}
	if res.To.String() != "alice@localhost/a" || res.From.String() != "localhost" {
		t.Errorf("parsed addresses to %s from %s", res.To, res.From)
	}

	// A stanza from a client has no 'to' when it is for the account; the
	// reply then has no 'from'.
	noTo := parse(t, `<presence from="alice@localhost/a" id="p"/>`)
	if got, want := noTo.Reply().String(), `<presence id="p" to="alice@localhost/a"/>`; got != want {
		t.Errorf("Reply without to:\n got %s\nwant %s", got, want)
	}
}

func TestErrorReply(t *testing.T) {
	req := parse(t, `<message from="alice@localhost/a" to="bob@localhost" type="chat" id="m1"><body>secret</body></message>`)
	tests := []struct {
		typ  stanza.ErrorType
		cond stanza.Condition
		text string
		want string
	}{
		{
			typ: stanza.Cancel, cond: stanza.ServiceUnavailable,
			want: `<message id="m1" type="error" to="alice@localhost/a" from="bob@localhost">` +
				`<error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`,
		},
		{
			typ: stanza.Modify, cond: stanza.BadRequest, text: `no <body> & "no" good`,
			want: `<message id="m1" type="error" to="alice@localhost/a" from="bob@localhost">` +
				`<error type="modify"><bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>` +
				`<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">no &lt;body&gt; &amp; "no" good</text></error></message>`,
		},
	}
	for _, tt := range tests {
		t.Run(string(tt.cond), func(t *testing.T) {
			got := req.ErrorReply(tt.typ, tt.cond, tt.text)
			if s := got.String(); s != tt.want {
				t.Errorf("ErrorReply:\n got %s\nwant %s", s, tt.want)
			}
			if got.To.String() != "alice@localhost/a" || got.From.String() != "bob@localhost" || got.Type() != "error" {
				t.Errorf("to %s from %s type %s", got.To, got.From, got.Type())
			}
		})
	}
	// The request is unchanged.
	if got := req.String(); !strings.Contains(got, "<body>secret</body>") || req.Type() != "chat" {
		t.Errorf("ErrorReply changed the request: %s", got)
	}
}

func TestErrorFrom(t *testing.T) {
	req := parse(t, `<iq from="a@b/c" to="b" type="set" id="1"><query xmlns="urn:x"/></iq>`)
	tests := []struct {
		se       stanza.Error
		wantType string
		wantText string
	}{
		{stanza.Error{Condition: stanza.Forbidden}, "auth", ""},
		{stanza.Error{Condition: stanza.Forbidden, Type: stanza.Cancel}, "cancel", ""},
		{stanza.Error{Condition: stanza.NotAcceptable, Text: map[string]string{"en": "too long"}}, "modify", "too long"},
	}
	for _, tt := range tests {
		got := req.ErrorFrom(tt.se)
		e := got.Child("", "error")
		if e == nil {
			t.Fatalf("no <error/> in %s", got)
		}
		if e.Get("type") != tt.wantType {
			t.Errorf("%v: type %q, want %q", tt.se, e.Get("type"), tt.wantType)
		}
		if e.Child(router.NSStanzas, string(tt.se.Condition)) == nil {
			t.Errorf("%v: condition missing in %s", tt.se, got)
		}
		text := ""
		if te := e.Child(router.NSStanzas, "text"); te != nil {
			text = te.Text()
		}
		if text != tt.wantText {
			t.Errorf("%v: text %q, want %q", tt.se, text, tt.wantText)
		}
	}
}

func TestDefaultErrorType(t *testing.T) {
	// RFC 6120 §8.3.3.
	want := map[stanza.Condition]stanza.ErrorType{
		stanza.BadRequest:            stanza.Modify,
		stanza.Conflict:              stanza.Cancel,
		stanza.FeatureNotImplemented: stanza.Cancel,
		stanza.Forbidden:             stanza.Auth,
		stanza.Gone:                  stanza.Cancel,
		stanza.InternalServerError:   stanza.Cancel,
		stanza.ItemNotFound:          stanza.Cancel,
		stanza.JIDMalformed:          stanza.Modify,
		stanza.NotAcceptable:         stanza.Modify,
		stanza.NotAllowed:            stanza.Cancel,
		stanza.NotAuthorized:         stanza.Auth,
		stanza.PolicyViolation:       stanza.Modify,
		stanza.RecipientUnavailable:  stanza.Wait,
		stanza.Redirect:              stanza.Modify,
		stanza.RegistrationRequired:  stanza.Auth,
		stanza.RemoteServerNotFound:  stanza.Cancel,
		stanza.RemoteServerTimeout:   stanza.Wait,
		stanza.ResourceConstraint:    stanza.Wait,
		stanza.ServiceUnavailable:    stanza.Cancel,
		stanza.SubscriptionRequired:  stanza.Auth,
		stanza.UndefinedCondition:    stanza.Cancel,
		stanza.UnexpectedRequest:     stanza.Wait,
	}
	for cond, typ := range want {
		if got := router.DefaultErrorType(cond); got != typ {
			t.Errorf("DefaultErrorType(%s) = %s, want %s", cond, got, typ)
		}
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := router.NewID()
		if len(id) != 16 || seen[id] {
			t.Fatalf("NewID() = %q (len %d, seen before %v)", id, len(id), seen[id])
		}
		seen[id] = true
	}
}
