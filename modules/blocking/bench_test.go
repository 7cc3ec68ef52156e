package blocking

import (
	"context"
	"fmt"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/storetest"
)

// BenchmarkRoute measures what the blocking filter adds to routing a chat
// message between two online users: nothing blocked (the common case), and
// a sender and a recipient with 100 blocked JIDs each that do not match.
// The lists are in memory after the first message, so no iteration reads
// the database.
func BenchmarkRoute(b *testing.B) {
	backend := storetest.Backend{Name: "sqlite"}
	for _, bc := range []struct {
		name    string
		modules []string
		blocked int
	}{
		{"without blocking", nil, 0},
		{"empty lists", []string{testID}, 0},
		{"100 items each", []string{testID}, 100},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newHarnessWith(b, backend, bc.modules)
			var items []jid.JID
			for i := range bc.blocked {
				items = append(items, jid.MustParse(fmt.Sprintf("spammer%d@spam.example", i)))
			}
			for _, owner := range []string{"alice@localhost", "bob@localhost"} {
				if err := h.store.Blocklists().Add(context.Background(), jid.MustParse(owner), items); err != nil {
					b.Fatal(err)
				}
			}
			h.bind("bob@localhost/x", `<presence/>`).discard = true
			h.bind("alice@localhost/a", `<presence/>`).discard = true
			msg := h.stanza(`<message type="chat" to="alice@localhost/a"><body>hello</body></message>`)
			msg.SetFrom(jid.MustParse("bob@localhost/x"))
			ctx := context.Background()
			h.r.Route(ctx, msg.Copy()) // loads the lists
			b.ReportAllocs()
			for b.Loop() {
				h.r.Route(ctx, msg)
			}
		})
	}
}
