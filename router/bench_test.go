package router_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
)

// The hot path of xmppd is one chat message read from one bound client and
// written to another. These benchmarks follow it step by step, with the same
// calls c2s makes: Reader.Next, NewStanza, SetFrom, Router.Route, and the
// writer's AppendXML. docs/PERFORMANCE.md records their figures.

// benchHeader is what a client sends before its first stanza; the reader is
// created after it, as c2s does after each stream restart.
const benchHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0' xml:lang='en'>`

// benchChat is a chat message as a modern client sends it: about 330
// bytes, with a body and a chat state.
const benchChat = `<message type='chat' id='5f3c9a0e-6d2b-4a8e-9c1f-2b7d4e8a1c35' to='bob@localhost/phone' xml:lang='en'>` +
	`<body>Hi Bob, are we still on for lunch tomorrow at noon? I booked the table by the window &amp; told them we would be two. Tell me if plans change!</body>` +
	`<active xmlns='http://jabber.org/protocol/chatstates'/></message>`

// loopReader yields the stream header once and then the stanza forever, in
// reads of at most chunk bytes (a TLS record's worth at most, as a TLS
// connection would return them).
type loopReader struct {
	head  []byte
	body  []byte
	off   int
	chunk int
}

func newLoopReader(header, stanza string) *loopReader {
	return &loopReader{head: []byte(header), body: []byte(stanza), chunk: 4096}
}

func (l *loopReader) Read(p []byte) (int, error) {
	if len(l.head) > 0 {
		n := copy(p, l.head)
		l.head = l.head[n:]
		return n, nil
	}
	if len(p) > l.chunk {
		p = p[:l.chunk]
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.body[l.off:])
		n += c
		l.off = (l.off + c) % len(l.body)
	}
	return n, nil
}

var _ io.Reader = (*loopReader)(nil)

// benchSession is a bound session whose Deliver does, synchronously, what the
// c2s writer goroutine does with a queued stanza: serialise it into a reused
// buffer. The channel hop itself is measured separately
// (BenchmarkRouteChat/queue).
type benchSession struct {
	jid   jid.JID
	buf   []byte
	bytes int64
}

func (s *benchSession) JID() jid.JID                 { return s.jid }
func (s *benchSession) Available() bool              { return true }
func (s *benchSession) Priority() int                { return 0 }
func (s *benchSession) Close(error)                  {}
func (s *benchSession) LastPresence() *router.Stanza { return nil }
func (s *benchSession) Deliver(st *router.Stanza) bool {
	s.buf = st.AppendXML(s.buf[:0], router.NSClient)
	s.bytes += int64(len(s.buf))
	return true
}

var _ router.Session = (*benchSession)(nil)

// noAccounts says every account exists; the chat benchmark never asks.
type noAccounts struct{}

func (noAccounts) Exists(context.Context, jid.JID) (bool, error) { return true, nil }

// benchRouter returns a router for localhost with alice/laptop and
// bob/phone bound, as a server with two online users has.
func benchRouter(tb testing.TB) (r *router.Router, alice jid.JID, bob *benchSession) {
	tb.Helper()
	reg := router.NewLocalRegistry()
	r = router.New(slog.New(slog.DiscardHandler), reg, noAccounts{}, []string{"localhost"})
	alice = jid.MustParse("alice@localhost/laptop")
	bob = &benchSession{jid: jid.MustParse("bob@localhost/phone")}
	for _, s := range []router.Session{&benchSession{jid: alice}, bob} {
		if _, err := reg.Bind(s, 10); err != nil {
			tb.Fatal(err)
		}
	}
	return r, alice, bob
}

// benchReader returns a Reader positioned after the stream header, with the
// default limits of the server.
func benchReader(tb testing.TB) *router.Reader {
	tb.Helper()
	rd := router.NewReader(newLoopReader(benchHeader, benchChat), router.NSClient, 262144, 64)
	if _, err := rd.Header(); err != nil {
		tb.Fatal(err)
	}
	return rd
}

func BenchmarkRouteChat(b *testing.B) {
	ctx := context.Background()

	// full: read → stanza → stamp → route → serialise, as one session's
	// reading goroutine and the receiver's writer do it.
	b.Run("full", func(b *testing.B) {
		r, alice, bob := benchRouter(b)
		rd := benchReader(b)
		b.SetBytes(int64(len(benchChat)))
		b.ReportAllocs()
		for b.Loop() {
			e, err := rd.Next()
			if err != nil {
				b.Fatal(err)
			}
			st, err := router.NewStanza(e)
			if err != nil {
				b.Fatal(err)
			}
			st.SetFrom(alice)
			r.Route(ctx, st)
		}
		if bob.bytes == 0 {
			b.Fatal("nothing delivered")
		}
	})

	// parse: Reader.Next alone, the encoding/xml part.
	b.Run("parse", func(b *testing.B) {
		rd := benchReader(b)
		b.SetBytes(int64(len(benchChat)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rd.Next(); err != nil {
				b.Fatal(err)
			}
		}
	})

	// stanza: NewStanza (two JIDs parsed) and SetFrom.
	b.Run("stanza", func(b *testing.B) {
		e, err := router.ParseElement([]byte(benchChat), router.NSClient)
		if err != nil {
			b.Fatal(err)
		}
		alice := jid.MustParse("alice@localhost/laptop")
		b.ReportAllocs()
		for b.Loop() {
			// Clients rarely write 'from'; take away the one the last
			// SetFrom stamped, so NewStanza parses only 'to' as in c2s.
			e.SetAttr("from", "")
			st, err := router.NewStanza(e)
			if err != nil {
				b.Fatal(err)
			}
			st.SetFrom(alice)
		}
	})

	// route: Router.Route of a parsed, stamped stanza to a session whose
	// Deliver does nothing, so only the routing decision and the registry
	// lookup are measured.
	b.Run("route", func(b *testing.B) {
		reg := router.NewLocalRegistry()
		r := router.New(slog.New(slog.DiscardHandler), reg, noAccounts{}, []string{"localhost"})
		alice := jid.MustParse("alice@localhost/laptop")
		bob := &nopSession{jid: jid.MustParse("bob@localhost/phone")}
		reg.Bind(&nopSession{jid: alice}, 10)
		reg.Bind(bob, 10)
		st := parsedChat(b, alice)
		b.ReportAllocs()
		for b.Loop() {
			r.Route(ctx, st)
		}
		if bob.n == 0 {
			b.Fatal("nothing delivered")
		}
	})

	// serialise: AppendXML into a reused buffer, as the writer does.
	b.Run("serialise", func(b *testing.B) {
		st := parsedChat(b, jid.MustParse("alice@localhost/laptop"))
		buf := st.AppendXML(nil, router.NSClient)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			buf = st.AppendXML(buf[:0], router.NSClient)
		}
	})

	// queue: the hop from the reading goroutine to the receiver's writer
	// goroutine through a buffered channel, as c2s's Deliver and writeLoop
	// do (the writer serialises, the TLS write is left out).
	b.Run("queue", func(b *testing.B) {
		st := parsedChat(b, jid.MustParse("alice@localhost/laptop"))
		out := make(chan *router.Stanza, 1024)
		done := make(chan struct{})
		go func() {
			defer close(done)
			var buf []byte
			for st := range out {
				buf = st.AppendXML(buf[:0], router.NSClient)
			}
		}()
		b.ReportAllocs()
		for b.Loop() {
			out <- st
		}
		close(out)
		<-done
	})
}

// BenchmarkRouteChatParallel runs the full path on every CPU at once, one
// sender/receiver pair per goroutine, to show contention on shared state
// (the registry, the router's domain lock, the allocator).
func BenchmarkRouteChatParallel(b *testing.B) {
	ctx := context.Background()
	reg := router.NewLocalRegistry()
	r := router.New(slog.New(slog.DiscardHandler), reg, noAccounts{}, []string{"localhost"})
	b.SetBytes(int64(len(benchChat)))
	b.ReportAllocs()
	var pairs atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		n := strconv.FormatInt(pairs.Add(1), 10)
		from := jid.MustParse("alice" + n + "@localhost/laptop")
		to := jid.MustParse("bob" + n + "@localhost/phone")
		reg.Bind(&benchSession{jid: from}, 10)
		reg.Bind(&benchSession{jid: to}, 10)
		chat := bytes.Replace([]byte(benchChat), []byte("bob@localhost"), []byte("bob"+n+"@localhost"), 1)
		rd := router.NewReader(newLoopReader(benchHeader, string(chat)), router.NSClient, 262144, 64)
		if _, err := rd.Header(); err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			e, err := rd.Next()
			if err != nil {
				b.Error(err)
				return
			}
			st, _ := router.NewStanza(e)
			st.SetFrom(from)
			r.Route(ctx, st)
		}
	})
}

// nopSession accepts every stanza and does nothing with it.
type nopSession struct {
	jid jid.JID
	n   int
}

func (s *nopSession) JID() jid.JID                 { return s.jid }
func (s *nopSession) Available() bool              { return true }
func (s *nopSession) Priority() int                { return 0 }
func (s *nopSession) LastPresence() *router.Stanza { return nil }
func (s *nopSession) Close(error)                  {}
func (s *nopSession) Deliver(*router.Stanza) bool  { s.n++; return true }

// parsedChat returns benchChat parsed and stamped from 'from'.
func parsedChat(tb testing.TB, from jid.JID) *router.Stanza {
	tb.Helper()
	e, err := router.ParseElement([]byte(benchChat), router.NSClient)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := router.NewStanza(e)
	if err != nil {
		tb.Fatal(err)
	}
	st.SetFrom(from)
	return st
}

// TestBenchChatRoundTrip checks that the benchmark's stanza survives the
// path it measures: what the receiver's writer produces parses back to the
// same message, stamped with the sender.
func TestBenchChatRoundTrip(t *testing.T) {
	r, alice, bob := benchRouter(t)
	rd := benchReader(t)
	for range 3 {
		e, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		st, err := router.NewStanza(e)
		if err != nil {
			t.Fatal(err)
		}
		st.SetFrom(alice)
		r.Route(context.Background(), st)
		got, err := router.ParseElement(bob.buf, router.NSClient)
		if err != nil {
			t.Fatalf("delivered XML does not parse: %v\n%s", err, bob.buf)
		}
		if got.Get("from") != "alice@localhost/laptop" || got.Get("to") != "bob@localhost/phone" || got.Get("type") != "chat" {
			t.Errorf("delivered %s", bob.buf)
		}
		if body := got.Child("", "body"); body == nil || body.Text() == "" {
			t.Errorf("no body in %s", bob.buf)
		}
		if got.Child("http://jabber.org/protocol/chatstates", "active") == nil {
			t.Errorf("no chat state in %s", bob.buf)
		}
	}
	if n := len(benchChat); n < 300 || n > 360 {
		t.Errorf("benchChat is %d bytes; keep it near 330 so figures compare with MELLIUM-NOTES", n)
	}
}
