package loadtest_test

import (
	"context"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/routertest"
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
	to := routertest.NewSink(jid.MustParse("u1@localhost/phone"))
	for _, s := range []router.Session{routertest.NewSink(from), to} {
		if _, err := srv.Router.Sessions().Bind(s, 10); err != nil {
			b.Fatal(err)
		}
	}
	rd := routertest.LoopClientReader(b, chatMessage)
	ctx := context.Background()
	// The first message loads block lists and rosters.
	routertest.RouteNext(b, ctx, srv.Router, rd, from)
	b.SetBytes(int64(len(chatMessage)))
	b.ReportAllocs()
	for b.Loop() {
		routertest.RouteNext(b, ctx, srv.Router, rd, from)
	}
	if to.N < 2 {
		b.Fatalf("%d messages delivered", to.N)
	}
}

// chatMessage is router's benchChat, addressed to u1.
var chatMessage = routertest.ChatMessage("u1@localhost/phone")
