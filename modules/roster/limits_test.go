package roster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

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
	return testserver.StartOn(t, b, func(c *config.Config) { c.SetModuleOptions("roster", roster.Options{MaxItems: limit}) })
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

// TestStoredRequestIsKeptWhole: a request stored for an offline user is
// delivered at login with every child it came with (RFC 6121 §3.1.3): the
// status in each language, the XEP-0172 nickname, the XEP-0379 pre-auth
// token and an extension the server does not know, from the contact's bare
// JID. What bounds it is the stanza size limit, which a request larger than
// a stream accepts exceeds: it is not stored.
func TestStoredRequestIsKeptWhole(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		const maxStanza = 16 << 10
		s := testserver.StartOn(t, b, func(c *config.Config) { c.Limits.MaxStanzaSize = maxStanza })
		addUsers(s, "alice", "bob")
		a := online(t, s, "alice", "phone")
		status := strings.Repeat("€", 1000) // 3 bytes each, beyond any cut at 1024 bytes
		a.send(`<presence to='bob@localhost' type='subscribe' id='ask'>` +
			`<status>` + status + `</status><status xml:lang='de'>zweiter</status>` +
			`<nick xmlns='http://jabber.org/protocol/nick'>Alice</nick>` +
			`<preauth xmlns='urn:xmpp:pars:0' token='1tMFqYDdKhfe2pwp'/>` +
			`<x xmlns='urn:example:extra'>` + strings.Repeat("j", 2000) + `</x></presence>`)
		a.awaitPush(item{JID: bare("bob"), Subscription: "none", Ask: "subscribe"})
		a.sync()

		bob := online(t, s, "bob", "desk")
		e := bob.next("the stored request", isPresence(bare("alice"), "subscribe"))
		var children []string
		for _, c := range e.Elements() {
			children = append(children, c.Name.Space+" "+c.Name.Local)
		}
		want := []string{" status", " status", "http://jabber.org/protocol/nick nick", "urn:xmpp:pars:0 preauth", "urn:example:extra x"}
		if fmt.Sprint(children) != fmt.Sprint(want) {
			t.Errorf("children\n got %q\nwant %q", children, want)
		}
		if st := e.Child("", "status"); st == nil || st.Text() != status {
			t.Errorf("status cut: %s", e)
		}
		if p := e.Child("urn:xmpp:pars:0", "preauth"); p == nil || p.Get("token") != "1tMFqYDdKhfe2pwp" {
			t.Errorf("pre-auth token lost: %s", e)
		}
		if n := e.Child("http://jabber.org/protocol/nick", "nick"); n == nil || n.Text() != "Alice" {
			t.Errorf("nickname lost: %s", e)
		}
		if x := e.Child("urn:example:extra", "x"); x == nil || len(x.Text()) != 2000 {
			t.Errorf("extension cut: %s", e)
		}
		if e.Get("id") != "ask" || e.Get("to") != bare("bob") {
			t.Errorf("request id %q to %q, want ask to %s", e.Get("id"), e.Get("to"), bare("bob"))
		}

		// Larger than any stream accepts: only a stanza made inside the
		// server can be, and it is not kept.
		subscribeFrom(t, s, "big@elsewhere.example", bare("bob"), `<status>`+strings.Repeat("b", maxStanza)+`</status>`)
		bob.next("the live request", isPresence("big@elsewhere.example", "subscribe"))
		if got := storedRequests(t, s, "bob"); fmt.Sprint(got) != "["+bare("alice")+"]" {
			t.Errorf("stored requests %v, want only alice's", got)
		}
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
