package loadtest_test

import (
	"context"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
)

// BenchmarkRouteChatModules is router's BenchmarkRouteChat/full on a real
// server with the default modules started (their filters and handlers run on
// every stanza, as in production): parse, stamp, route, and serialise in the
// receiver's Deliver. No network: the stanza is read from memory and the two
// sessions are fakes bound in the server's registry. The accounts u0 (sender)
// and u1 (receiver) exist, with empty rosters and block lists.
func BenchmarkRouteChatModules(b *testing.B) {
	srv := startMemServer(b, 10)
	addUsers(b, srv, 2)
	from := jid.MustParse("u0@localhost/laptop")
	to := &sink{jid: jid.MustParse("u1@localhost/phone")}
	for _, s := range []router.Session{&sink{jid: from}, to} {
		if _, err := srv.Router.Sessions().Bind(s, 10); err != nil {
			b.Fatal(err)
		}
	}
	rd := router.NewReader(&repeat{head: []byte(streamHeader), body: []byte(chatMessage)}, router.NSClient, 262144, 64)
	if _, err := rd.Header(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	route := func() {
		e, err := rd.Next()
		if err != nil {
			b.Fatal(err)
		}
		st, err := router.NewStanza(e)
		if err != nil {
			b.Fatal(err)
		}
		st.SetFrom(from)
		srv.Router.Route(ctx, st)
	}
	route() // the first message loads block lists and rosters
	b.SetBytes(int64(len(chatMessage)))
	b.ReportAllocs()
	for b.Loop() {
		route()
	}
	if to.n < 2 {
		b.Fatalf("%d messages delivered", to.n)
	}
}

const streamHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0' xml:lang='en'>`

// chatMessage is router's benchChat, addressed to u1.
const chatMessage = `<message type='chat' id='5f3c9a0e-6d2b-4a8e-9c1f-2b7d4e8a1c35' to='u1@localhost/phone' xml:lang='en'>` +
	`<body>Hi Bob, are we still on for lunch tomorrow at noon? I booked the table by the window &amp; told them we would be two. Tell me if plans change!</body>` +
	`<active xmlns='http://jabber.org/protocol/chatstates'/></message>`

// repeat yields head once, then body forever.
type repeat struct {
	head, body []byte
	off        int
}

func (r *repeat) Read(p []byte) (int, error) {
	if len(r.head) > 0 {
		n := copy(p, r.head)
		r.head = r.head[n:]
		return n, nil
	}
	n := 0
	for n < len(p) && n < 4096 {
		c := copy(p[n:min(len(p), 4096)], r.body[r.off:])
		n += c
		r.off = (r.off + c) % len(r.body)
	}
	return n, nil
}

// sink is an available session that serialises what it gets, as c2s's
// writer does.
type sink struct {
	jid jid.JID
	buf []byte
	n   int
}

func (s *sink) JID() jid.JID                 { return s.jid }
func (s *sink) Available() bool              { return true }
func (s *sink) Priority() int                { return 0 }
func (s *sink) Close(error)                  {}
func (s *sink) LastPresence() *router.Stanza { return nil }
func (s *sink) Deliver(st *router.Stanza) bool {
	s.buf = st.AppendXML(s.buf[:0], router.NSClient)
	s.n++
	return true
}
