package router_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/router"
)

const streamOpen = `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`

// blockingReader serves its text, then stands for a peer that sends nothing
// more: a read past the end, which on a connection would wait, is recorded
// in waited (and fails, so that the test does not hang).
type blockingReader struct {
	r      io.Reader
	waited bool
}

var errWouldWait = errors.New("reader waited for more input")

func (b *blockingReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.waited = true
		return n, errWouldWait
	}
	return n, err
}

// TestReaderHeader checks what comes before and in the stream header: text
// that is not XML fails at once (not after more input), and an encoding other
// than UTF-8 is unsupported-encoding.
func TestReaderHeader(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     error // nil: the header is read
	}{
		{"plain", streamOpen, nil},
		{"declaration", `<?xml version='1.0'?>` + streamOpen, nil},
		{"UTF-8", `<?xml version='1.0' encoding='UTF-8'?>` + streamOpen, nil},
		{"utf-8", `<?xml version="1.0" encoding="utf-8"?>` + "\n" + streamOpen, nil},
		{"whitespace first", "\r\n  " + streamOpen, nil},
		{"HTTP request line", "GET / HTTP/1.1\r\n", stream.NotWellFormed},
		{"HTTP after whitespace", "\r\nGET / HTTP/1.1\r\n", stream.NotWellFormed},
		{"text after declaration", `<?xml version='1.0'?> hello`, stream.NotWellFormed},
		{"Latin-1", `<?xml version='1.0' encoding='ISO-8859-1'?>` + streamOpen, stream.UnsupportedEncoding},
		{"UTF-16 named", `<?xml version='1.0' encoding='UTF-16'?>` + streamOpen, stream.UnsupportedEncoding},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := &blockingReader{r: strings.NewReader(tc.in)}
			r := router.NewReader(br, router.NSClient, 4096, 16)
			_, err := r.Header()
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("Header: %v", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("Header: %v; want %v", err, tc.want)
			case tc.want != nil && br.waited:
				t.Fatalf("Header waited for more input before failing with %v", err)
			}
		})
	}
}

// TestReaderNext checks the stanza-level cases: undeclared prefixes are
// not-well-formed, and whitespace between stanzas does not count toward the
// size limit however long the run.
func TestReaderNext(t *testing.T) {
	const maxSize = 1024
	spaces := func(n int) string { return strings.Repeat(" \n\t\r", n/4) }
	for _, tc := range []struct {
		name, in string
		want     error  // nil: one element is read
		out      string // what it serialises to
	}{
		{"undeclared element prefix", `<message><foo:bar/></message>`, stream.NotWellFormed, ""},
		{"undeclared top-level prefix", `<foo:message/>`, stream.NotWellFormed, ""},
		{"undeclared attribute prefix", `<message foo:x='1'/>`, stream.NotWellFormed, ""},
		{"undeclared nested attribute prefix", `<message><body foo:x='1'>hi</body></message>`, stream.NotWellFormed, ""},
		{"prefix out of scope", `<message><a xmlns:p='urn:p'/><p:b/></message>`, stream.NotWellFormed, ""},
		{"xmlns as element prefix", `<message><xmlns:b/></message>`, stream.NotWellFormed, ""},
		{"declared prefix", `<message><p:b xmlns:p='urn:p' p:x='1'/></message>`, nil, `<message><b xmlns="urn:p" xmlns:a1="urn:p" a1:x="1"/></message>`},
		{"prefix declared above", `<message xmlns:p='urn:p'><p:b/></message>`, nil, `<message><b xmlns="urn:p"/></message>`},
		{"xml prefix", `<message xml:lang='en'/>`, nil, `<message xml:lang="en"/>`},
		{"stream prefix from the header", `<stream:features/>`, nil, `<stream:features/>`},
		{"colon-less namespace name", `<message><p:b xmlns:p='foo'/></message>`, nil, `<message><b xmlns="foo"/></message>`},
		{"whitespace run longer than the limit", spaces(16*maxSize) + `<message/>`, nil, `<message/>`},
		{"text between stanzas", `hello<message/>`, stream.NotWellFormed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := router.NewReader(strings.NewReader(streamOpen+tc.in), router.NSClient, maxSize, 16)
			router.SetClock(r, steadyClock())
			e := firstElement(t, r, tc.want)
			if e == nil {
				return
			}
			if got := string(e.AppendXML(nil, router.NSClient)); tc.out != "" && got != tc.out {
				t.Errorf("got %s; want %s", got, tc.out)
			}
		})
	}
}

// firstElement reads r's header and first element. With want set, it
// checks that Next fails with want and returns nil; otherwise that Next
// succeeds.
func firstElement(t *testing.T, r *router.Reader, want error) *router.Element {
	t.Helper()
	if _, err := r.Header(); err != nil {
		t.Fatal(err)
	}
	e, err := r.Next()
	switch {
	case want != nil && !errors.Is(err, want):
		t.Fatalf("Next: %v, %v; want %v", e, err, want)
	case want == nil && err != nil:
		t.Fatalf("Next: %v", err)
	}
	if want != nil {
		return nil
	}
	return e
}

// steadyClock returns a clock that moves one second on every reading:
// time enough between reads for any whitespace budget to refill.
func steadyClock() func() time.Time {
	now := time.Unix(0, 0)
	return func() time.Time {
		now = now.Add(time.Second)
		return now
	}
}

// TestReaderWhitespaceRate checks the whitespace budget between stanzas:
// keepalives at the allowed rate pass for as long as they go on, never
// buffered; a flood faster than the rate is policy-violation.
func TestReaderWhitespaceRate(t *testing.T) {
	const maxSize = 1024
	for _, tc := range []struct {
		name  string
		chunk int           // bytes of whitespace per read
		step  time.Duration // clock advance per read
		want  error
	}{
		{"a limit's worth every second", maxSize, time.Second, nil},
		{"a byte a second", 1, time.Second, nil},
		{"flood", 512, time.Millisecond, stream.PolicyViolation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(0, 0)
			const reads = 200 // 200 KiB at most: far past the size limit
			src := &spaceSource{chunk: tc.chunk, left: reads, tick: func() { now = now.Add(tc.step) }}
			r := router.NewReader(io.MultiReader(strings.NewReader(streamOpen), src, strings.NewReader(`<message/>`)), router.NSClient, maxSize, 16)
			router.SetClock(r, func() time.Time { return now })
			if e := firstElement(t, r, tc.want); e != nil && e.Name.Local != "message" {
				t.Fatalf("Next: %v; want the message", e)
			}
		})
	}
}

// spaceSource yields left reads of chunk spaces each, calling tick before
// each read.
type spaceSource struct {
	chunk, left int
	tick        func()
}

func (s *spaceSource) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	s.left--
	s.tick()
	n := min(len(p), s.chunk)
	for i := range n {
		p[i] = ' '
	}
	return n, nil
}
