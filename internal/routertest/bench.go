package routertest

import (
	"context"
	"io"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
)

// What the chat benchmarks of router and internal/loadtest share: the hot
// path of xmppd is one chat message read from one bound client and written
// to another.

// StreamHeader is what a client sends before its first stanza; a Reader is
// created after it, as c2s does after each stream restart.
const StreamHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0' xml:lang='en'>`

// ChatMessage is a chat message to the full JID to as a modern client sends
// it: about 330 bytes (with a to of about 20), with a body and a chat state.
func ChatMessage(to string) string {
	return `<message type='chat' id='5f3c9a0e-6d2b-4a8e-9c1f-2b7d4e8a1c35' to='` + to + `' xml:lang='en'>` +
		`<body>Hi Bob, are we still on for lunch tomorrow at noon? I booked the table by the window &amp; told them we would be two. Tell me if plans change!</body>` +
		`<active xmlns='http://jabber.org/protocol/chatstates'/></message>`
}

// loopChunk is the most a loopReader returns from one Read: a TLS record's
// worth, as a TLS connection would return them.
const loopChunk = 4096

// loopReader yields head once and then body forever.
type loopReader struct {
	head, body []byte
	off        int
}

// LoopReader returns a reader that yields header once and then stanza
// forever, in reads of at most 4096 bytes.
func LoopReader(header, stanza string) io.Reader {
	return &loopReader{head: []byte(header), body: []byte(stanza)}
}

func (l *loopReader) Read(p []byte) (int, error) {
	if len(l.head) > 0 {
		n := copy(p, l.head)
		l.head = l.head[n:]
		return n, nil
	}
	if len(p) > loopChunk {
		p = p[:loopChunk]
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.body[l.off:])
		n += c
		l.off = (l.off + c) % len(l.body)
	}
	return n, nil
}

// LoopClientReader returns a Reader with the server's default limits over
// StreamHeader and then stanza forever, positioned after the header, or
// fails tb.
func LoopClientReader(tb testing.TB, stanza string) *router.Reader {
	tb.Helper()
	rd := router.NewReader(LoopReader(StreamHeader, stanza), router.NSClient, 262144, 64)
	if _, err := rd.Header(); err != nil {
		tb.Fatal(err)
	}
	return rd
}

// RouteNext does what a client session's reading goroutine does with the
// next stanza of rd: parse it, stamp it from the full JID from and route it
// with r. It fails tb on a read or stanza error.
func RouteNext(tb testing.TB, ctx context.Context, r *router.Router, rd *router.Reader, from jid.JID) {
	e, err := rd.Next()
	if err != nil {
		tb.Fatal(err)
	}
	st, err := router.NewStanza(e)
	if err != nil {
		tb.Fatal(err)
	}
	st.SetFrom(from)
	r.Route(ctx, st)
}

// Sink is an available bound session whose Deliver does, synchronously,
// what the c2s writer goroutine does with a queued stanza: serialise it into
// a reused buffer.
type Sink struct {
	router.SessionState
	jid   jid.JID
	Buf   []byte // the last stanza delivered, serialised
	N     int    // stanzas delivered
	Bytes int64  // bytes serialised
}

var _ router.Session = (*Sink)(nil)

// NewSink returns a Sink for the full JID j.
func NewSink(j jid.JID) *Sink { return &Sink{jid: j} }

func (s *Sink) JID() jid.JID                 { return s.jid }
func (s *Sink) Available() bool              { return true }
func (s *Sink) Priority() int                { return 0 }
func (s *Sink) Close(error)                  {}
func (s *Sink) LastPresence() *router.Stanza { return nil }
func (s *Sink) Deliver(st *router.Stanza) bool {
	s.Buf = st.AppendXML(s.Buf[:0], router.NSClient)
	s.N++
	s.Bytes += int64(len(s.Buf))
	return true
}
