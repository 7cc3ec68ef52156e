package pep_test

import (
	"context"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/caps"
	"github.com/xmppd/xmppd/storage"
)

// subscribe stores a one-way presence subscription: who is subscribed to
// owner's presence (from, in owner's roster; to, in who's), and not the
// other way round.
func subscribe(t *testing.T, s *testserver.Server, owner, who string) {
	t.Helper()
	for _, it := range []struct {
		roster, contact string
		sub             string
	}{{owner, who, storage.SubFrom}, {who, owner, storage.SubTo}} {
		item := storage.RosterItem{Contact: jid.MustParse(bare(it.contact)), Subscription: it.sub}
		if _, err := s.Store.Rosters().Put(context.Background(), jid.MustParse(bare(it.roster)), item); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSubscriptionFrom checks XEP-0060 §4.5's presence access model for a
// contact with a subscription of type "from" in the owner's roster (the
// owner does not get its presence): its interested resource gets the last
// item when it comes online and new items, like a contact with "both";
// the owner, who is only subscribed the other way ("to"), gets nothing
// of the contact's presence node.
func TestSubscriptionFrom(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob")
		subscribe(t, s, "alice", "bob")
		alice, bob := bare("alice"), bare("bob")
		a := online(t, s, "alice", "phone", caps.Notify(nsAvatar))
		testserver.WantResult(t, a.iq("set", "", publishXML(nsAvatar, "v1", avatarMeta("v1"))))
		a.MustNext(t, "its own avatar", isEvent(alice, nsAvatar, "item", "v1"))

		bc := online(t, s, "bob", "pc", caps.Notify(nsAvatar))
		bc.MustNext(t, "alice's last avatar on coming online", isEvent(alice, nsAvatar, "item", "v1"))
		testserver.WantResult(t, a.iq("set", "", publishXML(nsAvatar, "v2", avatarMeta("v2"))))
		bc.MustNext(t, "alice's new avatar", isEvent(alice, nsAvatar, "item", "v2"))

		testserver.WantResult(t, bc.iq("set", "", publishXML(nsAvatar, "b1", avatarMeta("b1"))))
		bc.MustNext(t, "its own avatar", isEvent(bob, nsAvatar, "item", "b1"))
		a.MustSync(t)
		a.ExpectNone(t, "the avatar of a contact it is only subscribed to by 'to'", isEvent(bob, nsAvatar, "item", "b1"))
		wantError(t, a.iq("get", bob, itemsXML(nsAvatar, "")), "not-authorized", "auth", "presence-subscription-required")
	})
}
