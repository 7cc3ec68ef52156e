package mam_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/mam"
)

// fill has alice send n messages to bob, who is offline (so that nobody
// has to read them), with the bodies "msg 0" … and ids "p0" …; it returns
// alice's archive ids in order.
func fill(t *testing.T, alice *testserver.Client, to string, n int) []string {
	t.Helper()
	for i := range n {
		alice.MustSend(t, fmt.Sprintf(`<message to="%s" id="p%d" type="chat"><body>msg %d</body></message>`, to, i, i))
	}
	alice.MustSync(t)
	var ids []string
	after := ""
	for {
		rsm := "<max>90</max>"
		if after != "" {
			rsm += "<after>" + after + "</after>"
		}
		p := query(t, alice, q{rsm: rsm})
		ids = append(ids, p.ids()...)
		if p.complete() {
			break
		}
		after = p.last()
	}
	if len(ids) != n {
		t.Fatalf("archived %d messages, want %d", len(ids), n)
	}
	return ids
}

// TestPaging pages through a few hundred messages forwards and backwards,
// with and without flipped pages, and checks the RSM edges.
func TestPaging(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		// A small outbound queue lowers the page cap below MaxPage to
		// half of it, which keeps the pages within what the test
		// client buffers.
		const queue = 120
		s := start(t, b, func(c *config.Config) { c.Limits.OutboundQueue = queue }, "alice", "bob")
		alice := online(t, s, "alice", "phone")

		// An empty archive.
		p := query(t, alice, q{})
		if len(p.results) != 0 || !p.complete() || p.count() != "0" {
			t.Errorf("empty archive: %d results, fin %s", len(p.results), p.fin)
		}
		if id, _ := p.first(); id != "" {
			t.Errorf("empty archive has a first: %s", p.fin)
		}
		p = query(t, alice, q{rsm: "<max>10</max><before/>"})
		if len(p.results) != 0 || !p.complete() {
			t.Errorf("last page of an empty archive: fin %s", p.fin)
		}

		const n = 300
		all := fill(t, alice, "bob@localhost", n)
		if len(slices.Compact(slices.Clone(all))) != n {
			t.Fatal("duplicate archive ids")
		}

		// Forwards by <after/>, 40 at a time.
		var got []string
		after := ""
		for i := 0; ; i++ {
			rsm := "<max>40</max>"
			if after != "" {
				rsm += "<after>" + after + "</after>"
			}
			p := query(t, alice, q{rsm: rsm})
			if id, index := p.first(); id != p.ids()[0] || index != "" || p.last() != p.ids()[len(p.results)-1] {
				t.Fatalf("page %d: first %s index %s last %s, results %v", i, id, index, p.last(), p.ids())
			}
			if p.count() != strconv.Itoa(n) {
				t.Errorf("page %d: count %s, want %d", i, p.count(), n)
			}
			got = append(got, p.ids()...)
			if p.complete() {
				break
			}
			after = p.last()
		}
		if !slices.Equal(got, all) {
			t.Fatalf("paging forwards gave %d ids, not the archive's %d in order", len(got), len(all))
		}

		// Backwards from the last page, flipped: each page arrives newest
		// first, and its first/last still name its oldest/newest.
		got = nil
		before := ""
		for {
			p := query(t, alice, q{rsm: "<max>70</max><before>" + before + "</before>", flip: true})
			ids := p.ids()
			slices.Reverse(ids)
			if id, index := p.first(); id != ids[0] || p.last() != ids[len(ids)-1] || index != "" {
				t.Fatalf("flipped page: first %s (index %s), last %s, results %v", id, index, p.last(), p.ids())
			}
			got = append(ids, got...)
			if p.complete() {
				break
			}
			before = ids[0]
		}
		if !slices.Equal(got, all) {
			t.Fatalf("paging backwards gave %d ids, not the archive's %d in order", len(got), len(all))
		}

		// The last page, asked for backwards, is complete only if it
		// reaches the oldest message.
		p = query(t, alice, q{rsm: "<max>10</max><before/>"})
		if !slices.Equal(p.ids(), all[n-10:]) || p.complete() {
			t.Errorf("last page: %v complete=%v, want %v not complete", p.ids(), p.complete(), all[n-10:])
		}

		// max 0: only the count.
		p = query(t, alice, q{rsm: "<max>0</max>"})
		if len(p.results) != 0 || p.count() != strconv.Itoa(n) {
			t.Errorf("max 0: %d results, fin %s", len(p.results), p.fin)
		}

		// The server's cap, also without a max.
		for _, rsm := range []string{"<max>100000</max>", ""} {
			p = query(t, alice, q{rsm: rsm})
			if want := min(mam.MaxPage, queue/2); len(p.results) != want || p.complete() || !slices.Equal(p.ids(), all[:want]) {
				t.Errorf("%q: %d results (complete=%v), want the first %d", rsm, len(p.results), p.complete(), want)
			}
		}

		// Unknown ids.
		for _, qq := range []q{
			{rsm: "<after>nope</after>"},
			{rsm: "<before>nope</before>"},
			{fields: map[string][]string{"after-id": {"nope"}}},
			{fields: map[string][]string{"before-id": {"nope"}}},
		} {
			queryError(t, alice, qq, "item-not-found", "cancel")
		}
	})
}

// TestFilters checks each field of the query form.
func TestFilters(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob", "carol")
		alice := online(t, s, "alice", "phone")
		carol := online(t, s, "carol", "pc")
		send(t, alice, "bob@localhost", "a1", "apples and pears")
		send(t, alice, "carol@localhost/pc", "a2", "bananas")
		send(t, carol, "alice@localhost", "c1", "cherries and apples")
		send(t, alice, "bob@localhost/tablet", "a3", "dates")
		all := query(t, alice, q{}).ids()
		if len(all) != 4 {
			t.Fatalf("alice's archive holds %v, want 4 messages", all)
		}
		stamps := make([]string, 4)
		for i, r := range query(t, alice, q{}).results {
			stamps[i] = r.Child(mam.NSForward, "forwarded").Child(mam.NSDelay, "delay").Get("stamp")
		}
		pick := func(i ...int) []string {
			var out []string
			for _, j := range i {
				out = append(out, all[j])
			}
			return out
		}
		f := func(kv ...string) map[string][]string {
			m := map[string][]string{}
			for i := 0; i+1 < len(kv); i += 2 {
				m[kv[i]] = append(m[kv[i]], kv[i+1])
			}
			return m
		}
		cases := []struct {
			name   string
			fields map[string][]string
			want   []string
		}{
			{"with bare", f("with", "bob@localhost"), pick(0, 3)},
			{"with full", f("with", "bob@localhost/tablet"), pick(3)},
			{"with carol bare", f("with", "carol@localhost"), pick(1, 2)},
			{"with carol full", f("with", "carol@localhost/pc"), pick(1, 2)},
			{"with domain", f("with", "localhost"), nil},
			{"start", f("start", stamps[2]), pick(2, 3)},
			{"end", f("end", stamps[1]), pick(0, 1)},
			{"start and end", f("start", stamps[1], "end", stamps[2]), pick(1, 2)},
			{"after-id", f("after-id", all[0]), pick(1, 2, 3)},
			{"before-id", f("before-id", all[3]), pick(0, 1, 2)},
			{"between ids", f("after-id", all[0], "before-id", all[3]), pick(1, 2)},
			{"ids", f("ids", all[3], "ids", all[1]), pick(1, 3)},
			{"fulltext", f(mam.FieldText, "apples"), pick(0, 2)},
			{"fulltext and with", f(mam.FieldText, "apples", "with", "carol@localhost"), pick(2)},
			{"empty form", f(), all},
		}
		for _, c := range cases {
			if got := query(t, alice, q{fields: c.fields}).ids(); !slices.Equal(got, c.want) {
				t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			}
		}

		bad := []struct {
			name      string
			qq        q
			cond, typ string
		}{
			{"bad start", q{fields: f("start", "yesterday")}, "bad-request", "modify"},
			{"bad end", q{fields: f("end", "2020-13-01T00:00:00Z")}, "bad-request", "modify"},
			{"bad with", q{fields: f("with", "@@")}, "jid-malformed", "modify"},
			{"unknown field", q{fields: f("include-groupchat", "true")}, "feature-not-implemented", "cancel"},
			{"bad max", q{rsm: "<max>ten</max>"}, "bad-request", "modify"},
			{"negative max", q{rsm: "<max>-1</max>"}, "bad-request", "modify"},
			{"before and after", q{rsm: "<after>" + all[0] + "</after><before>" + all[3] + "</before>"}, "bad-request", "modify"},
			{"unknown ids", q{fields: f("ids", "nope")}, "item-not-found", "cancel"},
		}
		for _, c := range bad {
			t.Run(c.name, func(t *testing.T) { queryError(t, alice, c.qq, c.cond, c.typ) })
		}
		wrongType := `<iq type="set" id="wt"><query xmlns="urn:xmpp:mam:2"><x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>urn:xmpp:mam:1</value></field></x></query></iq>`
		testserver.WantIQError(t, alice.MustRequest(t, wrongType), "bad-request", "modify")
	})
}
