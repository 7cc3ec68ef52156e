package blocking

import (
	"context"
	"slices"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/routertest"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// reentryID registers routertest's Reactor, whose filter routes another
// stanza from inside the routing of the one the test picks.
const reentryID = "blocking-reentry"

var reactor = routertest.Reactors(reentryID)

// TestChangeReentry checks that a blocklist change reached from inside
// the routing of another change of the same account does not deadlock
// (issue 8: no per-account lock held across Route): it is answered after
// the change it was reached from, and both take effect.
func TestChangeReentry(t *testing.T) {
	tests := []struct {
		name string
		// first is what alice sends; on the stanza that when picks, the
		// filter routes second from alice.
		first, second string
		when          func(*router.Stanza) bool
		// bobBlocked is whether alice has blocked bob before.
		bobBlocked bool
		wantList   []string
	}{{
		name:   "a block re-entered from the answer to a block",
		first:  `<iq type="set" id="c1"><block xmlns="urn:xmpp:blocking"><item jid="bob@localhost"/></block></iq>`,
		second: `<iq type="set" id="c2"><block xmlns="urn:xmpp:blocking"><item jid="carol@localhost"/></block></iq>`,
		when: func(st *router.Stanza) bool {
			return st.Kind() == router.KindIQ && st.ID() == "c1" && st.Type() == "result"
		},
		wantList: []string{"bob@localhost", "carol@localhost"},
	}, {
		name:     "an unblock re-entered from the unavailable presence a block sends",
		first:    `<iq type="set" id="c1"><block xmlns="urn:xmpp:blocking"><item jid="bob@localhost"/></block></iq>`,
		second:   `<iq type="set" id="c2"><unblock xmlns="urn:xmpp:blocking"><item jid="bob@localhost"/></unblock></iq>`,
		when:     func(st *router.Stanza) bool { return st.Kind() == router.KindPresence && st.Type() == "unavailable" },
		wantList: nil,
	}, {
		name:       "a block re-entered from the presence an unblock sends",
		first:      `<iq type="set" id="c1"><unblock xmlns="urn:xmpp:blocking"/></iq>`,
		second:     `<iq type="set" id="c2"><block xmlns="urn:xmpp:blocking"><item jid="dave@localhost"/></block></iq>`,
		when:       func(st *router.Stanza) bool { return st.Kind() == router.KindPresence && st.Type() == "" },
		bobBlocked: true,
		wantList:   []string{"dave@localhost"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, b storetest.Backend) {
				h := newHarnessWith(t, b, []string{testID, reentryID})
				m := reactor()
				alice := jid.MustParse("alice@localhost")
				// bob sees alice's presence, so that a block or an
				// unblock of bob sends some.
				bob := jid.MustParse("bob@localhost")
				if _, err := h.store.Rosters().Put(context.Background(), alice, storage.RosterItem{Contact: bob, Subscription: storage.SubBoth}); err != nil {
					t.Fatal(err)
				}
				if tt.bobBlocked {
					if err := h.store.Blocklists().Add(context.Background(), alice, []jid.JID{bob}); err != nil {
						t.Fatal(err)
					}
				}
				a := h.bind("alice@localhost/a", `<presence/>`)
				h.bind("bob@localhost/b", `<presence/>`)
				m.On(func(st *router.Stanza) *router.Stanza {
					if !tt.when(st) {
						return nil
					}
					out := h.stanza(tt.second)
					out.SetFrom(a.jid)
					return out
				})
				h.send(a.jid.String(), tt.first)

				var answers []string
				for _, st := range a.take() {
					if st.Kind() == router.KindIQ && st.Type() != "set" {
						answers = append(answers, st.ID()+":"+st.Type())
					}
				}
				if want := []string{"c1:result", "c2:result"}; !slices.Equal(answers, want) {
					t.Errorf("alice got answers %q, want %q", answers, want)
				}
				items, err := h.store.Blocklists().List(context.Background(), alice)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, j := range items {
					got = append(got, j.String())
				}
				slices.Sort(got)
				if !slices.Equal(got, tt.wantList) {
					t.Errorf("blocklist %q, want %q", got, tt.wantList)
				}
			})
		})
	}
}
