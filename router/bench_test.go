package router_test

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/routertest"
	"github.com/xmppd/xmppd/router"
)

// The hot path of xmppd is one chat message read from one bound client and
// written to another. These benchmarks follow it step by step, with the same
// calls c2s makes: Reader.Next, NewStanza, SetFrom, Router.Route, and the
// writer's AppendXML. docs/PERFORMANCE.md records their figures.

// benchChat is the chat message of the benchmarks (about 330 bytes, with a
// body and a chat state), from alice@localhost/laptop to bob@localhost/phone.
var benchChat = routertest.ChatMessage("bob@localhost/phone")

// noAccounts says every account exists; the chat benchmark never asks.
type noAccounts struct{}

func (noAccounts) Exists(context.Context, jid.JID) (bool, error) { return true, nil }

// benchRouter returns a router for localhost with alice/laptop and
// bob/phone bound, as a server with two online users has. Bob's Deliver
// does, synchronously, what the c2s writer goroutine does with a queued
// stanza: serialise it into a reused buffer. The channel hop itself is
// measured separately (BenchmarkRouteChat/queue).
func benchRouter(tb testing.TB) (r *router.Router, alice jid.JID, bob *routertest.Sink) {
	tb.Helper()
	reg := router.NewLocalRegistry()
	r = router.New(slog.New(slog.DiscardHandler), reg, noAccounts{}, []string{"localhost"})
	alice = jid.MustParse("alice@localhost/laptop")
	bob = routertest.NewSink(jid.MustParse("bob@localhost/phone"))
	for _, s := range []router.Session{routertest.NewSink(alice), bob} {
		if _, err := reg.Bind(s, 10); err != nil {
			tb.Fatal(err)
		}
	}
	return r, alice, bob
}

// benchReader returns a Reader positioned after the stream header, with the
// default limits of the server, that reads benchChat forever.
func benchReader(tb testing.TB) *router.Reader {
	tb.Helper()
	return routertest.LoopClientReader(tb, benchChat)
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
			routertest.RouteNext(b, ctx, r, rd, alice)
		}
		if bob.Bytes == 0 {
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
		reg.Bind(routertest.NewSink(from), 10)
		reg.Bind(routertest.NewSink(to), 10)
		chat := bytes.Replace([]byte(benchChat), []byte("bob@localhost"), []byte("bob"+n+"@localhost"), 1)
		rd := router.NewReader(routertest.LoopReader(routertest.StreamHeader, string(chat)), router.NSClient, 262144, 64)
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
	router.SessionState
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
	st := routertest.Stanza(tb, benchChat)
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
		routertest.RouteNext(t, context.Background(), r, rd, alice)
		got, err := router.ParseElement(bob.Buf, router.NSClient)
		if err != nil {
			t.Fatalf("delivered XML does not parse: %v\n%s", err, bob.Buf)
		}
		if got.Get("from") != "alice@localhost/laptop" || got.Get("to") != "bob@localhost/phone" || got.Get("type") != "chat" {
			t.Errorf("delivered %s", bob.Buf)
		}
		if body := got.Child("", "body"); body == nil || body.Text() == "" {
			t.Errorf("no body in %s", bob.Buf)
		}
		if got.Child("http://jabber.org/protocol/chatstates", "active") == nil {
			t.Errorf("no chat state in %s", bob.Buf)
		}
	}
	if n := len(benchChat); n < 300 || n > 360 {
		t.Errorf("benchChat is %d bytes; keep it near 330 so figures compare with MELLIUM-NOTES", n)
	}
}
