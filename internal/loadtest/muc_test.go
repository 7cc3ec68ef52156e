package loadtest

import (
	"errors"
	"slices"
	"testing"
)

// TestSplitter feeds streams cut at every byte and checks that the
// top-level elements come out whole and in order, whatever the cut:
// nested and self-closing elements, quoted '>' and quotes of the other
// kind in attribute values, whitespace between stanzas, and the end of
// the stream.
func TestSplitter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stream  string
		want    []string
		wantErr error
	}{
		{
			name:   "stanzas",
			stream: `<presence from="r@c/n1"><x xmlns="http://jabber.org/protocol/muc#user"><item role="participant"/><status code="110"/></x></presence> <message type='groupchat'><body>0 1 2 3</body></message>`,
			want: []string{
				`<presence from="r@c/n1"><x xmlns="http://jabber.org/protocol/muc#user"><item role="participant"/><status code="110"/></x></presence>`,
				`<message type='groupchat'><body>0 1 2 3</body></message>`,
			},
		},
		{
			name:   "self-closing top level, quotes and > in values",
			stream: "<presence from='a' id=\"x'>y\"/>\n<iq type='result' id='q\">'/><r xmlns='urn:xmpp:sm:3'/>",
			want:   []string{`<presence from='a' id="x'>y"/>`, `<iq type='result' id='q">'/>`, `<r xmlns='urn:xmpp:sm:3'/>`},
		},
		{
			name:    "end of stream",
			stream:  `<message><body>hi</body></message></stream:stream>`,
			want:    []string{`<message><body>hi</body></message>`},
			wantErr: errStreamClosed,
		},
	} {
		for cut := 0; cut <= len(tc.stream); cut++ {
			var sp splitter
			var got []string
			each := func(el []byte) error { got = append(got, string(el)); return nil }
			err := sp.feed([]byte(tc.stream[:cut]), each)
			if err == nil {
				err = sp.feed([]byte(tc.stream[cut:]), each)
			}
			if !errors.Is(err, tc.wantErr) || !slices.Equal(got, tc.want) {
				t.Fatalf("%s, cut at %d: got %q, %v; want %q, %v", tc.name, cut, got, err, tc.want, tc.wantErr)
			}
		}
	}
}

// TestElementAttr checks how the group chat reader reads names and
// attributes of the stanzas it looks at, with either kind of quote.
func TestElementAttr(t *testing.T) {
	for _, tc := range []struct {
		el, name, attr, want string
	}{
		{`<iq type='result' id='load-muc-create'/>`, "iq", "id", "load-muc-create"},
		{`<iq type="error" id="load-muc-create"><error/></iq>`, "iq", "type", "error"},
		{`<presence from='r@c/n' type='error'><x id='inner'/></presence>`, "presence", "id", ""},
		{`<presence xml:lang='en' type='unavailable'>`, "presence", "lang", ""},
		{`<stream:error><conflict/></stream:error>`, "stream:error", "type", ""},
		{"<message\ttype='groupchat'>", "message", "type", "groupchat"},
	} {
		if got := elementName([]byte(tc.el)); got != tc.name {
			t.Errorf("elementName(%s) = %q, want %q", tc.el, got, tc.name)
		}
		if got := attr([]byte(tc.el), tc.attr); got != tc.want {
			t.Errorf("attr(%s, %s) = %q, want %q", tc.el, tc.attr, got, tc.want)
		}
	}
}
