package main

import (
	"context"
	"fmt"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/router/subscription"
	"github.com/xmppd/xmppd/storage"
)

// TestRosterCLI runs `xmppd roster` and the roster side of `xmppd user
// del` as an operator would: a mutual subscription set up by add, shown by
// list, cancelled on both sides by del and by deleting an account.
func TestRosterCLI(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		t.Parallel()
		cfg := writeConfig(t, b.Config(t))
		c := func(args ...string) []string { return append([]string{"-c", cfg}, args...) }
		for _, u := range []string{"alice@localhost", "bob@localhost", "carol@localhost", "dave@example.org"} {
			xmppd(t, "", "pw\n", c("user", "add", u, "--password-stdin")...).check(t, "created "+u+"\n", "")
		}
		steps := []struct {
			name             string
			args             []string
			wantOut, wantErr string
		}{
			{name: "empty roster", args: c("roster", "list", "alice@localhost")},
			{
				name: "add", args: c("roster", "add", "alice@localhost", "bob@localhost", "--name", "Bob", "--group", "Team", "--group", "Friends"),
				wantOut: "alice@localhost and bob@localhost are now subscribed to each other\n",
			},
			{name: "list the account", args: c("roster", "list", "alice@localhost"), wantOut: "bob@localhost\tsubscription=both\tname=\"Bob\"\tgroups=Friends,Team\n"},
			{name: "list the contact", args: c("roster", "list", "bob@localhost"), wantOut: "alice@localhost\tsubscription=both\n"},
			{
				name: "add across domains", args: c("roster", "add", "Carol@LocalHost", "dave@example.org", "--group", "Partners"),
				wantOut: "Carol@LocalHost and dave@example.org are now subscribed to each other\n",
			},
			{name: "list across domains", args: c("roster", "list", "dave@example.org"), wantOut: "carol@localhost\tsubscription=both\n"},
			{name: "add a remote contact", args: c("roster", "add", "alice@localhost", "zoe@example.com"), wantErr: "not an account on this server"},
			{name: "add a missing contact", args: c("roster", "add", "alice@localhost", "zoe@localhost"), wantErr: "user zoe@localhost does not exist"},
			{name: "add to a missing account", args: c("roster", "add", "zoe@localhost", "alice@localhost"), wantErr: "user zoe@localhost does not exist"},
			{name: "add oneself", args: c("roster", "add", "alice@localhost", "Alice@localhost"), wantErr: "its own contact"},
			{name: "add a full JID", args: c("roster", "add", "alice@localhost", "bob@localhost/phone"), wantErr: "bare JIDs"},
			{name: "add without contact", args: c("roster", "add", "alice@localhost"), wantErr: "accepts 2 arg(s)"},
			{name: "list a missing account", args: c("roster", "list", "zoe@localhost"), wantErr: "user zoe@localhost does not exist"},
			{name: "del", args: c("roster", "del", "alice@localhost", "bob@localhost"), wantOut: "removed bob@localhost from the roster of alice@localhost\n"},
			{name: "list after del", args: c("roster", "list", "alice@localhost")},
			{name: "the contact's item after del", args: c("roster", "list", "bob@localhost"), wantOut: "alice@localhost\tsubscription=none\n"},
			{name: "del again", args: c("roster", "del", "alice@localhost", "bob@localhost"), wantErr: "bob@localhost is not in the roster of alice@localhost"},
			{name: "add back", args: c("roster", "add", "bob@localhost", "alice@localhost"), wantOut: "bob@localhost and alice@localhost are now subscribed to each other\n"},
			{name: "add back sets up both sides", args: c("roster", "list", "alice@localhost"), wantOut: "bob@localhost\tsubscription=both\n"},
			{name: "delete the account", args: c("user", "del", "alice@localhost"), wantOut: "deleted alice@localhost\n"},
			{name: "the contact's item after user del", args: c("roster", "list", "bob@localhost"), wantOut: "alice@localhost\tsubscription=none\n"},
			{name: "the deleted account's roster", args: c("roster", "list", "alice@localhost"), wantErr: "user alice@localhost does not exist"},
			{name: "others untouched", args: c("roster", "list", "carol@localhost"), wantOut: "dave@example.org\tsubscription=both\tgroups=Partners\n"},
		}
		for _, s := range steps {
			t.Run(s.name, func(t *testing.T) {
				xmppd(t, "", "", s.args...).check(t, s.wantOut, s.wantErr)
			})
		}
	})
}

// TestRosterAdminDelete: deleting an account (admin.Users.Delete with a
// store, as `xmppd user del` does it) leaves no local contact with a
// subscription to it, nor waiting for its answer, whatever state the pair
// was in (RFC 6121 Appendix A); the operator's roster del does the same for
// one contact.
func TestRosterAdminDelete(t *testing.T) {
	t.Parallel()
	for _, state := range []struct {
		name string
		// alice's item for bob and bob's for alice (nil: no item), and
		// whether a request from bob waits at alice.
		alice, bob *storage.RosterItem
		request    bool
	}{
		{name: "both", alice: &storage.RosterItem{Subscription: storage.SubBoth}, bob: &storage.RosterItem{Subscription: storage.SubBoth}},
		{name: "to", alice: &storage.RosterItem{Subscription: storage.SubTo}, bob: &storage.RosterItem{Subscription: storage.SubFrom}},
		{name: "from", alice: &storage.RosterItem{Subscription: storage.SubFrom}, bob: &storage.RosterItem{Subscription: storage.SubTo}},
		{name: "alice asked", alice: &storage.RosterItem{Subscription: storage.SubNone, PendingOut: true}, bob: &storage.RosterItem{Subscription: storage.SubNone, PendingIn: true}},
		{name: "bob asked, in alice's roster", alice: &storage.RosterItem{Subscription: storage.SubNone, PendingIn: true}, bob: &storage.RosterItem{Subscription: storage.SubNone, PendingOut: true}},
		{name: "bob asked, not in alice's roster", bob: &storage.RosterItem{Subscription: storage.SubNone, PendingOut: true}, request: true},
		{name: "to, bob asked back", alice: &storage.RosterItem{Subscription: storage.SubTo, PendingIn: true}, bob: &storage.RosterItem{Subscription: storage.SubFrom, PendingOut: true}},
	} {
		t.Run(state.name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T, b storetest.Backend) {
				ctx := context.Background()
				db := storetest.Open(t, b)
				cfg := config.Default()
				users := admin.Users{Config: cfg, Users: db.Users(), Store: db}
				rosters := admin.Rosters{Users: users, Store: db}
				for _, u := range []string{"alice@localhost", "bob@localhost"} {
					if _, err := users.Add(ctx, u, "pw"); err != nil {
						t.Fatal(err)
					}
				}
				alice, bob := jid.MustParse("alice@localhost"), jid.MustParse("bob@localhost")
				put := func(owner, contact jid.JID, it *storage.RosterItem) {
					if it == nil {
						return
					}
					it.Contact = contact
					if _, err := db.Rosters().Put(ctx, owner, *it); err != nil {
						t.Fatal(err)
					}
				}
				put(alice, bob, state.alice)
				put(bob, alice, state.bob)
				if state.request {
					req := storage.SubscriptionRequest{From: bob, Stanza: []byte(`<presence xmlns='jabber:client' from='bob@localhost' to='alice@localhost' type='subscribe'/>`)}
					if err := db.SubscriptionRequests().Add(ctx, alice, req); err != nil {
						t.Fatal(err)
					}
				}
				// The operator's roster del, where alice has an item.
				if state.alice != nil {
					if err := rosters.Delete(ctx, "alice@localhost", "bob@localhost"); err != nil {
						t.Fatalf("roster del: %v", err)
					}
					checkCancelled(t, db, bob, alice, "after roster del")
					put(bob, alice, state.bob) // as it was, for the account deletion
					put(alice, bob, state.alice)
				}
				if _, err := users.Delete(ctx, "alice@localhost"); err != nil {
					t.Fatalf("delete alice: %v", err)
				}
				checkCancelled(t, db, bob, alice, "after deleting alice")
			})
		})
	}
}

// checkCancelled checks that owner's item for contact, if any, has neither
// a subscription nor a request pending either way, and that no request
// from contact waits at owner.
func checkCancelled(t *testing.T, db storage.Store, owner, contact jid.JID, when string) {
	t.Helper()
	ctx := context.Background()
	it, err := db.Rosters().Item(ctx, owner, contact)
	switch {
	case err == nil:
		sub, ask, _ := subscription.ClientView(it)
		if got := fmt.Sprintf("subscription=%s ask=%q pending-in=%v", sub, ask, it.PendingIn); got != `subscription=none ask="" pending-in=false` {
			t.Errorf("%s: %s's item for %s: %s", when, owner, contact, got)
		}
	case err != storage.ErrNotFound:
		t.Fatal(err)
	}
	reqs, err := db.SubscriptionRequests().List(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		if r.From.Equal(contact) {
			t.Errorf("%s: a request from %s still waits at %s", when, contact, owner)
		}
	}
}
