package roster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/roster"
	"github.com/xmppd/xmppd/router"
)

// limited starts a server whose accounts may have limit roster items.
func limited(t *testing.T, b storetest.Backend, limit int) *testserver.Server {
	t.Helper()
	return testserver.StartOn(t, b, func(c *config.Config) { c.Limits.MaxRosterItems = limit })
}

// subscribeFrom routes a subscription request from contact to a local
// account straight into the router, as the s2s listener hands over one
// from a remote contact.
func subscribeFrom(t *testing.T, s *testserver.Server, contact, to, payload string) {
	t.Helper()
	e, err := router.ParseElement([]byte(`<presence type='subscribe'>`+payload+`</presence>`), router.NSClient)
	if err != nil {
		t.Fatal(err)
	}
	st, err := router.NewStanza(e)
	if err != nil {
		t.Fatal(err)
	}
	st.SetFrom(jid.MustParse(contact))
	st.SetTo(jid.MustParse(to))
	s.Router.Route(context.Background(), st)
}

// storedRequests lists who has a subscription request stored for local.
func storedRequests(t *testing.T, s *testserver.Server, local string) []string {
	t.Helper()
	reqs, err := s.Store.SubscriptionRequests().List(context.Background(), jid.MustParse(bare(local)))
	if err != nil {
		t.Fatalf("list the requests of %s: %v", local, err)
	}
	var from []string
	for _, r := range reqs {
		from = append(from, r.From.String())
	}
	return from
}

// TestStoredRequestsAreBounded: every stored subscription request is
// delivered at each login (RFC 6121 §3.1.3), so a flood of requests from
// distinct contacts must not grow without bound, or the user's sessions
// would overflow their queue at every login. Beyond the roster limit a
// request from a new contact is not stored, but it still reaches the
// resources that are online; a contact that asks again keeps its place.
func TestStoredRequestsAreBounded(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		const limit = 5
		s := limited(t, b, limit)
		addUsers(s, "bob")
		contact := func(i int) string { return fmt.Sprintf("c%d@elsewhere.example", i) }
		for i := range 2 * limit {
			subscribeFrom(t, s, contact(i), bare("bob"), `<status>let me in</status>`)
		}
		var want []string
		for i := range limit {
			want = append(want, contact(i))
		}
		if got := storedRequests(t, s, "bob"); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("stored requests\n got %v\nwant %v", got, want)
		}

		// Asking again at the limit replaces the request; it is not
		// refused as a new one.
		subscribeFrom(t, s, contact(0), bare("bob"), `<status>me again</status>`)
		if got := storedRequests(t, s, "bob"); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("stored requests after a repeated request\n got %v\nwant %v", got, want)
		}

		bob := online(t, s, "bob", "desk")
		for i := range limit {
			bob.next("a stored request", isPresence(contact(i), "subscribe"))
		}
		bob.none("a request beyond the limit", isPresence("", "subscribe"))
		bob.expectRoster()

		// Online, a request beyond the limit is delivered all the same;
		// it is just not kept for the next login.
		subscribeFrom(t, s, contact(100), bare("bob"), "")
		bob.next("a live request beyond the limit", isPresence(contact(100), "subscribe"))
		if got := storedRequests(t, s, "bob"); len(got) != limit {
			t.Errorf("%d requests stored, want %d: %v", len(got), limit, got)
		}
	})
}

// TestStoredRequestIsTrimmed: a stored request keeps who asked, its status
// and its nickname (XEP-0172), each cut to 1024 bytes without splitting a
// character, and nothing else; the live request is delivered whole.
func TestStoredRequestIsTrimmed(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice", "bob")
		a := online(t, s, "alice", "phone")
		status := strings.Repeat("€", 1000) // 3 bytes each
		nick := strings.Repeat("n", 2000)
		a.send(`<presence to='bob@localhost' type='subscribe' id='ask'>` +
			`<status>` + status + `</status><status xml:lang='de'>zweiter</status>` +
			`<nick xmlns='` + roster.NSNick + `'>` + nick + `</nick>` +
			`<x xmlns='urn:example:junk'>` + strings.Repeat("j", 2000) + `</x></presence>`)
		a.awaitPush(item{JID: bare("bob"), Subscription: "none", Ask: "subscribe"})
		a.sync()

		reqs, err := s.Store.SubscriptionRequests().List(context.Background(), jid.MustParse(bare("bob")))
		if err != nil || len(reqs) != 1 {
			t.Fatalf("stored requests: %v, %v", reqs, err)
		}
		if n := len(reqs[0].Stanza); n > 3000 {
			t.Errorf("stored request of %d bytes", n)
		}
		wantStatus := strings.Repeat("€", 1024/3)
		check := func(what string, e *router.Element) {
			t.Helper()
			if e.Get("type") != "subscribe" || e.Get("from") != bare("alice") {
				t.Errorf("%s: not a request from alice: type %q from %q", what, e.Get("type"), e.Get("from"))
			}
			var names []string
			for _, c := range e.Elements() {
				names = append(names, c.Name.Local)
			}
			if fmt.Sprint(names) != "[status nick]" {
				t.Errorf("%s: children %v, want [status nick]", what, names)
			}
			if st := e.Child("", "status"); st == nil || st.Text() != wantStatus || !utf8.ValidString(st.Text()) {
				t.Errorf("%s: status not cut to the first 1024 bytes", what)
			}
			if n := e.Child(roster.NSNick, "nick"); n == nil || n.Text() != nick[:1024] {
				t.Errorf("%s: nick not cut to 1024 bytes", what)
			}
		}
		stored, err := router.ParseElement(reqs[0].Stanza, router.NSClient)
		if err != nil {
			t.Fatalf("parse the stored request: %v", err)
		}
		check("stored", stored)
		if to := stored.Get("to"); to != bare("bob") {
			t.Errorf("stored request to %q, want %s", to, bare("bob"))
		}

		bob := online(t, s, "bob", "desk")
		check("delivered at login", bob.next("the stored request", isPresence(bare("alice"), "subscribe")))
	})
}

// TestDirectedPresenceIsBounded: the directed presence a session must
// withdraw at logout (RFC 6121 §4.6.3) is remembered for no more
// addressees than the roster limit. Beyond it the presence still goes; only
// its withdrawal is given up. One withdrawn before logout frees its place.
func TestDirectedPresenceIsBounded(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		const limit = 3
		s := limited(t, b, limit)
		names := []string{"u0", "u1", "u2", "u3", "u4"}
		addUsers(s, "alice")
		addUsers(s, names...)
		others := map[string]*peer{}
		for _, n := range names {
			others[n] = online(t, s, n, "pc")
		}
		a := online(t, s, "alice", "phone")
		for _, n := range names {
			a.send(`<presence to='` + bare(n) + `'/>`)
			others[n].next("alice's directed presence", isPresence(a.full, ""))
		}
		// u0's is withdrawn by hand: u4, untracked so far, is tracked now
		// that there is room.
		a.send(`<presence to='` + bare("u0") + `' type='unavailable'/>`)
		others["u0"].next("alice's directed unavailable presence", isPresence(a.full, "unavailable"))
		a.send(`<presence to='` + bare("u4") + `'/>`)
		others["u4"].next("alice's directed presence again", isPresence(a.full, ""))
		a.sync()

		a.Close()
		for _, n := range []string{"u1", "u2", "u4"} {
			others[n].next("alice's unavailable presence at logout", isPresence(a.full, "unavailable"))
		}
		// As in TestDirectedPresence: once the last activity is stored,
		// every withdrawal owed was queued.
		eventually(t, "last activity of alice", func() bool {
			_, _, err := s.Store.LastActivity().Get(context.Background(), a.LocalAddr().Bare())
			return err == nil
		})
		others["u3"].none("a withdrawal beyond the limit", isPresence(a.full, "unavailable"))
		others["u0"].none("a second withdrawal", isPresence(a.full, "unavailable"))
	})
}
