package loadtest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/routertest"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/server"
)

// BenchmarkMUCFanout routes one groupchat message per op into a room of
// 100 or 1,000 occupants on a real server with the default modules started
// (muc among them, its message rate limit out of the way): parse, stamp,
// route to the room, and the room's reflection to every occupant, each
// copy serialised in its receiver's Deliver. No network: the occupants are
// fake sessions bound in the server's registry, so the figure is the
// server's fan-out without TLS and system calls; ns/copy is the time per
// delivered copy, cpu-ns/copy the process's CPU time per copy (garbage
// collection included, and less disturbed by other load on the machine).
// Profile it to see where modules/muc spends a fan-out.
func BenchmarkMUCFanout(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("occupants=%d", n), func(b *testing.B) { benchMUCFanout(b, n) })
	}
}

const benchRoom = "bench@conference.localhost"

func benchMUCFanout(b *testing.B, n int) {
	srv := startMemServerWith(b, 10, func(c *config.Config) {
		c.SetModuleOptions("muc", map[string]any{"message_rate": 1 << 30, "message_burst": 1 << 30})
	})
	addUsers(b, srv, n)
	ctx := context.Background()
	sinks := enterBenchRoom(b, ctx, srv, n)
	rd := routertest.LoopClientReader(b, `<message type='groupchat' to='`+benchRoom+`' id='m1'><body>Hello, room! Has anyone seen the release notes for tomorrow's update?</body></message>`)
	from := sinks[0].JID()
	routertest.RouteNext(b, ctx, srv.Router, rd, from)
	before := sinks[n-1].N
	b.ReportAllocs()
	cpu := processCPU(b)
	for b.Loop() {
		routertest.RouteNext(b, ctx, srv.Router, rd, from)
	}
	cpu = processCPU(b) - cpu
	if got := sinks[n-1].N - before; got != b.N {
		b.Fatalf("the last occupant got %d copies of %d messages", got, b.N)
	}
	copies := float64(b.N) * float64(n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/copies, "ns/copy")
	b.ReportMetric(float64(cpu.Nanoseconds())/copies, "cpu-ns/copy")
}

// BenchmarkMUCEnter has one more session enter a room of 100 or 1,000
// occupants and leave it again per op, as BenchmarkMUCFanout routes a
// message: the presence fan-out of XEP-0045 §7.2 (the newcomer gets every
// occupant's presence, every occupant the newcomer's, then its exit).
// ns/presence is the time per presence delivered.
func BenchmarkMUCEnter(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("occupants=%d", n), func(b *testing.B) { benchMUCEnter(b, n) })
	}
}

func benchMUCEnter(b *testing.B, n int) {
	srv := startMemServerWith(b, 10, func(c *config.Config) {
		// Room for the guest beside the occupants.
		c.SetModuleOptions("muc", map[string]any{"max_occupants": n + 1})
	})
	addUsers(b, srv, n+1)
	ctx := context.Background()
	sinks := enterBenchRoom(b, ctx, srv, n)
	guest := routertest.NewSink(jid.MustParse(fmt.Sprintf("u%d@localhost/r", n)))
	if _, err := srv.Router.Sessions().Bind(guest, 10); err != nil {
		b.Fatal(err)
	}
	enter := routertest.Stanza(b, `<presence to='`+benchRoom+`/guest'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`)
	leave := routertest.Stanza(b, `<presence to='`+benchRoom+`/guest' type='unavailable'/>`)
	all := append([]*routertest.Sink{guest}, sinks...)
	delivered := func() (total int) {
		for _, s := range all {
			total += s.N
		}
		return total
	}
	before, last := delivered(), sinks[n-1].N
	b.ReportAllocs()
	for b.Loop() {
		for _, st := range []*router.Stanza{enter, leave} {
			c := st.Copy()
			c.SetFrom(guest.JID())
			srv.Router.Route(ctx, c)
		}
	}
	if got := sinks[n-1].N - last; got != 2*b.N {
		b.Fatalf("an occupant got %d presences for %d entries and exits", got, b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(delivered()-before), "ns/presence")
}

// enterBenchRoom binds n fake sessions u<i>@localhost/r and has them
// enter benchRoom as n<i>, the first creating it as an instant room; it
// returns the sessions.
func enterBenchRoom(b *testing.B, ctx context.Context, srv *server.Server, n int) []*routertest.Sink {
	b.Helper()
	sinks := make([]*routertest.Sink, n)
	for i := range sinks {
		sinks[i] = routertest.NewSink(jid.MustParse(fmt.Sprintf("u%d@localhost/r", i)))
		if _, err := srv.Router.Sessions().Bind(sinks[i], 10); err != nil {
			b.Fatal(err)
		}
	}
	route := func(i int, xml string) {
		st := routertest.Stanza(b, xml)
		st.SetFrom(sinks[i].JID())
		srv.Router.Route(ctx, st)
	}
	for i := range sinks {
		got := sinks[i].N
		route(i, fmt.Sprintf(`<presence to='%s/n%d'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`, benchRoom, i))
		if sinks[i].N == got {
			b.Fatalf("u%d got no presence from the room", i)
		}
		if i == 0 {
			route(0, `<iq type='set' id='create' to='`+benchRoom+`'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`)
			if e := string(sinks[0].Buf); !strings.HasPrefix(e, "<iq") || !strings.Contains(e, `type="result"`) {
				b.Fatalf("instant room: got %s", e)
			}
		}
	}
	return sinks
}
