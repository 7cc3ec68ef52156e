package c2s

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/router"
)

func TestSplitElement(t *testing.T) {
	tests := []struct {
		in       string
		want     []string
		nameEnds []int
	}{
		{in: `<a/>`, want: []string{`<a/>`}, nameEnds: []int{2}},
		{in: `<message to="x"><body>a &lt;b&gt; c</body></message><r xmlns="urn:xmpp:sm:3"/>`,
			want: []string{`<message to="x"><body>a &lt;b&gt; c</body></message>`, `<r xmlns="urn:xmpp:sm:3"/>`}, nameEnds: []int{8, 2}},
		{in: `<stream:features><bind xmlns="b"/></stream:features>`, want: []string{`<stream:features><bind xmlns="b"/></stream:features>`}, nameEnds: []int{16}},
		{in: `<a><a><a/></a></a><b></b>`, want: []string{`<a><a><a/></a></a>`, `<b></b>`}, nameEnds: []int{2, 2}},
		{in: `junk`, want: []string{`junk`}, nameEnds: []int{0}},
	}
	for _, tt := range tests {
		b := []byte(tt.in)
		var got []string
		var ends []int
		for len(b) > 0 {
			end, nameEnd := splitElement(b)
			got = append(got, string(b[:end]))
			ends = append(ends, nameEnd)
			b = b[end:]
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("split %q = %q, want %q", tt.in, got, tt.want)
		}
		for i := range ends {
			if i < len(tt.nameEnds) && ends[i] != tt.nameEnds[i] {
				t.Errorf("split %q: name of %d ends at %d, want %d", tt.in, i, ends[i], tt.nameEnds[i])
			}
		}
	}
}

// FuzzSplitElement: whatever the serialiser writes (stanzas parsed from
// any input and written again), splitting finds each element whole.
func FuzzSplitElement(f *testing.F) {
	f.Add(`<message to="a@b"><body>x</body></message>`, `<presence/>`)
	f.Add(`<iq type="get" id="1"><query xmlns="q" a="&lt;&gt;/"/></iq>`, `<a>/&gt;</a>`)
	f.Fuzz(func(t *testing.T, a, b string) {
		ea, err1 := router.ParseElement([]byte(a), router.NSClient)
		eb, err2 := router.ParseElement([]byte(b), router.NSClient)
		if err1 != nil || err2 != nil {
			return
		}
		first := ea.AppendXML(nil, router.NSClient)
		buf := eb.AppendXML(append([]byte(nil), first...), router.NSClient)
		end, _ := splitElement(buf)
		if string(buf[:end]) != string(first) {
			t.Fatalf("split %q at %d, want after %q", buf, end, first)
		}
	})
}
