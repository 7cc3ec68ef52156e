package blocking

import (
	"context"
	"fmt"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/router"
)

// TestFilter checks XEP-0191 §3.3's handling of stanzas between a user and
// the JIDs they blocked, in both directions, with the JID matching of §6.
func TestFilter(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		alice := jid.MustParse("alice@localhost")
		items := []jid.JID{
			jid.MustParse("bob@localhost"),
			jid.MustParse("carol@localhost/phone"),
			jid.MustParse("evil.example"),
			jid.MustParse("svc.example/res"),
		}
		if err := h.store.Blocklists().Add(context.Background(), alice, items); err != nil {
			t.Fatal(err)
		}
		sessions := map[string]*fakeSession{}
		for full, presence := range map[string]string{
			"alice@localhost/a":      `<presence/>`,
			"alice@localhost/b":      "", // bound, unavailable: bare messages go to /a
			"bob@localhost/x":        `<presence/>`,
			"carol@localhost/phone":  `<presence/>`,
			"carol@localhost/laptop": `<presence/>`,
			"dave@localhost/d":       `<presence/>`,
		} {
			sessions[full] = h.bind(full, presence)
		}
		for i, tc := range []struct {
			name string
			from string
			xml  string
			// deliveredTo is the full JID of the session that gets the
			// stanza, "remote" for s2s, "" for nobody.
			deliveredTo string
			// errorTo gets an error with cond (and <blocked/> if blocked).
			errorTo string
			cond    string
			blocked bool
		}{
			// Inbound: from blocked JIDs to the user.
			{name: "chat to bare", from: "bob@localhost/x", xml: `<message type="chat" to="alice@localhost"><body>hi</body></message>`,
				errorTo: "bob@localhost/x", cond: "service-unavailable"},
			{name: "normal to full", from: "bob@localhost/x", xml: `<message to="alice@localhost/a"><body>hi</body></message>`,
				errorTo: "bob@localhost/x", cond: "service-unavailable"},
			{name: "headline dropped", from: "bob@localhost/x", xml: `<message type="headline" to="alice@localhost"><body>news</body></message>`},
			{name: "error dropped", from: "bob@localhost/x", xml: `<message type="error" to="alice@localhost/a"><error type="cancel"><gone xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`},
			{name: "presence dropped", from: "bob@localhost/x", xml: `<presence to="alice@localhost"/>`},
			{name: "subscribe dropped", from: "bob@localhost/x", xml: `<presence type="subscribe" to="alice@localhost"/>`},
			{name: "probe dropped", from: "bob@localhost/x", xml: `<presence type="probe" to="alice@localhost"/>`},
			{name: "iq get", from: "bob@localhost/x", xml: `<iq type="get" to="alice@localhost/a"><query xmlns="jabber:iq:version"/></iq>`,
				errorTo: "bob@localhost/x", cond: "service-unavailable"},
			{name: "iq get to bare", from: "bob@localhost/x", xml: `<iq type="get" to="alice@localhost"><vCard xmlns="vcard-temp"/></iq>`,
				errorTo: "bob@localhost/x", cond: "service-unavailable"},
			{name: "iq result dropped", from: "bob@localhost/x", xml: `<iq type="result" to="alice@localhost/a"/>`},
			{name: "blocked full jid", from: "carol@localhost/phone", xml: `<message to="alice@localhost/a"><body>hi</body></message>`,
				errorTo: "carol@localhost/phone", cond: "service-unavailable"},
			{name: "other resource of blocked full jid", from: "carol@localhost/laptop", xml: `<message to="alice@localhost/a"><body>hi</body></message>`,
				deliveredTo: "alice@localhost/a"},
			{name: "user at blocked domain", from: "x@evil.example/r", xml: `<message to="alice@localhost/a"><body>hi</body></message>`,
				errorTo: "remote", cond: "service-unavailable"},
			{name: "blocked domain itself", from: "evil.example", xml: `<message to="alice@localhost/a"><body>hi</body></message>`,
				errorTo: "remote", cond: "service-unavailable"},
			{name: "blocked domain/resource", from: "svc.example/res", xml: `<message to="alice@localhost/a"><body>hi</body></message>`,
				errorTo: "remote", cond: "service-unavailable"},
			{name: "other resource of blocked domain/resource", from: "svc.example/other", xml: `<message to="alice@localhost/a"><body>hi</body></message>`,
				deliveredTo: "alice@localhost/a"},
			{name: "user at domain of blocked domain/resource", from: "u@svc.example/res", xml: `<message to="alice@localhost/a"><body>hi</body></message>`,
				deliveredTo: "alice@localhost/a"},
			{name: "own other resource", from: "alice@localhost/b", xml: `<message to="alice@localhost/a"><body>hi</body></message>`,
				deliveredTo: "alice@localhost/a"},
			{name: "unblocked sender", from: "dave@localhost/d", xml: `<message to="alice@localhost"><body>hi</body></message>`,
				deliveredTo: "alice@localhost/a"},

			// Outbound: from the user to blocked JIDs.
			{name: "out chat", from: "alice@localhost/a", xml: `<message type="chat" to="bob@localhost"><body>hi</body></message>`,
				errorTo: "alice@localhost/a", cond: "not-acceptable", blocked: true},
			{name: "out iq get", from: "alice@localhost/a", xml: `<iq type="get" to="bob@localhost/x"><ping xmlns="urn:xmpp:ping"/></iq>`,
				errorTo: "alice@localhost/a", cond: "not-acceptable", blocked: true},
			{name: "out iq result dropped", from: "alice@localhost/a", xml: `<iq type="result" to="bob@localhost/x"/>`},
			{name: "out error dropped", from: "alice@localhost/a", xml: `<message type="error" to="bob@localhost/x"><error type="cancel"><gone xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`},
			{name: "out presence dropped", from: "alice@localhost/a", xml: `<presence to="bob@localhost"/>`},
			{name: "out to blocked domain", from: "alice@localhost/a", xml: `<message to="dave@evil.example"><body>hi</body></message>`,
				errorTo: "alice@localhost/a", cond: "not-acceptable", blocked: true},
			{name: "out to blocked full jid", from: "alice@localhost/a", xml: `<message to="carol@localhost/phone"><body>hi</body></message>`,
				errorTo: "alice@localhost/a", cond: "not-acceptable", blocked: true},
			{name: "out to other resource", from: "alice@localhost/a", xml: `<message to="carol@localhost/laptop"><body>hi</body></message>`,
				deliveredTo: "carol@localhost/laptop"},
			{name: "out to remote", from: "alice@localhost/a", xml: `<message to="dave@good.example"><body>hi</body></message>`,
				deliveredTo: "remote"},
			{name: "out unblocked", from: "alice@localhost/a", xml: `<message to="dave@localhost/d"><body>hi</body></message>`,
				deliveredTo: "dave@localhost/d"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				id := fmt.Sprintf("t%d", i)
				st := h.stanza(tc.xml)
				st.SetAttr("id", id)
				st.SetFrom(jid.MustParse(tc.from))
				h.r.Route(context.Background(), st)
				got := map[string][]*router.Stanza{"remote": h.remote.take()}
				for full, s := range sessions {
					got[full] = s.take()
				}
				for who, list := range got {
					for _, g := range list {
						switch {
						case who == tc.deliveredTo && g.ID() == id && g.Type() == st.Type():
						case who == tc.errorTo && g.ID() == id && g.Type() == "error":
							cond, blocked := errorCondition(g)
							if cond != tc.cond || blocked != tc.blocked {
								t.Errorf("%s got error %s (blocked %v), want %s (blocked %v)", who, cond, blocked, tc.cond, tc.blocked)
							}
						default:
							t.Errorf("%s got unexpected %s", who, g)
						}
					}
				}
				if tc.deliveredTo != "" && !hasID(got[tc.deliveredTo], id, st.Type()) {
					t.Errorf("%s did not get the stanza", tc.deliveredTo)
				}
				if tc.errorTo != "" && !hasID(got[tc.errorTo], id, "error") {
					t.Errorf("%s got no error", tc.errorTo)
				}
			})
		}
	})
}

func hasID(list []*router.Stanza, id, typ string) bool {
	for _, st := range list {
		if st.ID() == id && st.Type() == typ {
			return true
		}
	}
	return false
}

// TestFilterCache checks that an online user's list is read from storage
// once, not per stanza, and is forgotten with the user's last session.
func TestFilterCache(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		alice := jid.MustParse("alice@localhost")
		bob := h.bind("bob@localhost/x", `<presence/>`)
		a1 := h.bind("alice@localhost/a", `<presence/>`)
		a2 := h.bind("alice@localhost/b", `<presence/>`)
		base := h.lists.reads.Load()
		for range 50 {
			h.send("bob@localhost/x", `<message to="alice@localhost/a"><body>hi</body></message>`)
		}
		// One read for alice; bob's list is read once too (outbound check).
		if n := h.lists.reads.Load() - base; n != 2 {
			t.Errorf("%d blocklist reads for 50 messages between online users, want 2", n)
		}
		if !h.b.cached(alice) {
			t.Error("alice's list is not in memory while she is online")
		}
		if n := len(a1.take()); n != 50 {
			t.Errorf("alice got %d messages, want 50", n)
		}
		bob.take()

		h.end(a1)
		if !h.b.cached(alice) {
			t.Error("alice's list was dropped while she still has a session")
		}
		h.end(a2)
		if h.b.cached(alice) {
			t.Error("alice's list is still in memory after her last session ended")
		}
		base = h.lists.reads.Load()
		for range 3 {
			h.send("bob@localhost/x", `<message to="alice@localhost"><body>hi</body></message>`)
		}
		if n := h.lists.reads.Load() - base; n != 3 {
			t.Errorf("%d blocklist reads for 3 messages to an offline user, want 3 (storage, not memory)", n)
		}
		if h.b.cached(alice) {
			t.Error("an offline user's list was kept in memory")
		}
	})
}

// TestBlockUpdatesFilter checks that a block or unblock takes effect at
// once for an online user whose list is in memory, and that pushes reach
// exactly the sessions that asked for the list.
func TestBlockUpdatesFilter(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		bob := h.bind("bob@localhost/x", `<presence/>`)
		a := h.bind("alice@localhost/a", `<presence/>`)
		other := h.bind("alice@localhost/b", `<presence/>`)
		silent := h.bind("alice@localhost/c", `<presence/>`)
		msg := `<message to="alice@localhost/a"><body>hi</body></message>`

		h.send("bob@localhost/x", msg) // loads alice's (empty) list
		if n := len(a.take()); n != 1 {
			t.Fatalf("before block: alice got %d messages, want 1", n)
		}
		for _, s := range []*fakeSession{a, other} {
			if res := h.request(s, `<iq type="get" id="l1"><blocklist xmlns="urn:xmpp:blocking"/></iq>`); res.Type() != "result" {
				t.Fatalf("blocklist: %s", res)
			}
		}
		if res := h.request(a, `<iq type="set" id="b1"><block xmlns="urn:xmpp:blocking"><item jid="bob@localhost"/></block></iq>`); res.Type() != "result" {
			t.Fatalf("block: %s", res)
		}
		checkPush(t, other.take(), "block", "bob@localhost")
		if got := silent.take(); len(got) != 0 {
			t.Errorf("a session that never asked for the list got %v", got)
		}

		h.send("bob@localhost/x", msg)
		if got := a.take(); len(got) != 0 {
			t.Errorf("after block: alice got %v", got)
		}
		if got := bob.take(); len(got) != 1 || got[0].Type() != "error" {
			t.Errorf("after block: bob got %v, want one error", got)
		}

		if res := h.request(a, `<iq type="set" id="u1"><unblock xmlns="urn:xmpp:blocking"/></iq>`); res.Type() != "result" {
			t.Fatalf("unblock: %s", res)
		}
		checkPush(t, other.take(), "unblock")
		h.send("bob@localhost/x", msg)
		if n := len(a.take()); n != 1 {
			t.Errorf("after unblock: alice got %d messages, want 1", n)
		}
	})
}

// checkPush checks that got is one block or unblock push with the items.
func checkPush(t *testing.T, got []*router.Stanza, cmd string, items ...string) {
	t.Helper()
	if len(got) != 1 || got[0].Type() != "set" {
		t.Fatalf("got %v, want one %s push", got, cmd)
	}
	p := got[0].Child(NS, cmd)
	if p == nil {
		t.Fatalf("push %s has no %s", got[0], cmd)
	}
	var jids []string
	for _, it := range p.Elements() {
		jids = append(jids, it.Get("jid"))
	}
	if fmt.Sprint(jids) != fmt.Sprint(items) && !(len(jids) == 0 && len(items) == 0) {
		t.Errorf("push %s items %v, want %v", cmd, jids, items)
	}
}
