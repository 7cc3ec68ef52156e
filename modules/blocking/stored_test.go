package blocking

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
)

// TestBlockPurgesStored checks that a block drops the offline messages and
// subscription requests the server keeps from the blocked JIDs, and only
// those, since they reach the user at login without passing the filter.
func TestBlockPurgesStored(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		ctx := context.Background()
		alice := jid.MustParse("alice@localhost")
		for _, from := range []string{"bob@localhost/x", "dave@localhost/d", "x@evil.example/r", "bob@localhost/y"} {
			msg := `<message from="` + from + `" to="alice@localhost"><body>hi</body></message>`
			if err := h.store.Offline().Push(ctx, alice, []byte(msg), 0); err != nil {
				t.Fatal(err)
			}
		}
		for _, from := range []string{"bob@localhost", "dave@localhost", "carol@evil.example"} {
			req := storage.SubscriptionRequest{From: jid.MustParse(from), Stanza: []byte(`<presence type="subscribe" from="` + from + `"/>`)}
			if err := h.store.SubscriptionRequests().Add(ctx, alice, req); err != nil {
				t.Fatal(err)
			}
		}
		a := h.bind("alice@localhost/a", "")
		res := h.request(a, `<iq type="set" id="b1"><block xmlns="urn:xmpp:blocking"><item jid="bob@localhost"/><item jid="evil.example"/></block></iq>`)
		if res.Type() != "result" {
			t.Fatalf("block: %s", res)
		}

		msgs, err := h.store.Offline().List(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		var froms []string
		for _, m := range msgs {
			st, err := parseStored(m.Stanza)
			if err != nil {
				t.Fatal(err)
			}
			froms = append(froms, st.From.String())
		}
		if want := []string{"dave@localhost/d"}; !slices.Equal(froms, want) {
			t.Errorf("offline messages left from %v, want %v", froms, want)
		}
		reqs, err := h.store.SubscriptionRequests().List(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		froms = froms[:0]
		for _, r := range reqs {
			froms = append(froms, r.From.String())
		}
		if want := []string{"dave@localhost"}; !slices.Equal(froms, want) {
			t.Errorf("subscription requests left from %v, want %v", froms, want)
		}
	})
}

// TestBlocklistFull checks that a list cannot grow past module_options.blocking.max_items, and that
// blocking what is blocked already does not count.
func TestBlocklistFull(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		alice := jid.MustParse("alice@localhost")
		var items []jid.JID
		for i := range DefaultOptions().MaxItems {
			items = append(items, jid.MustParse(fmt.Sprintf("u%d@spam.example", i)))
		}
		if err := h.store.Blocklists().Add(context.Background(), alice, items); err != nil {
			t.Fatal(err)
		}
		a := h.bind("alice@localhost/a", "")
		res := h.request(a, `<iq type="set" id="b1"><block xmlns="urn:xmpp:blocking"><item jid="u0@spam.example"/></block></iq>`)
		if res.Type() != "result" {
			t.Errorf("blocking a blocked JID in a full list: %s", res)
		}
		res = h.request(a, `<iq type="set" id="b2"><block xmlns="urn:xmpp:blocking"><item jid="one@more.example"/></block></iq>`)
		if cond, _ := errorCondition(res); cond != "not-allowed" {
			t.Errorf("blocking one more: %s, want not-allowed", res)
		}
	})
}
