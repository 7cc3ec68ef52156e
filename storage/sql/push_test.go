package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
)

// TestPushRegistrations checks the XEP-0357 registrations step by step on
// both backends: replace by service and node, the limit, removal of one
// node or of a whole service, another account's left alone, reopening
// keeps them, and deleting the account deletes them.
func TestPushRegistrations(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		cfg := b.Config(t)
		db, err := sqlstore.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		owners := newAccounts(t, db, "alice@example.org", "bob@example.org")
		alice, bob := owners[0], owners[1]
		push := db.PushRegistrations()
		reg := func(service, node, form string) storage.PushRegistration {
			r := storage.PushRegistration{Service: jid.MustParse(service), Node: node}
			if form != "" {
				r.Form = []byte(form)
			}
			return r
		}
		const limit = 3
		steps := []struct {
			name    string
			do      func() error
			wantErr error
			want    []string
		}{
			{"empty", func() error { return nil }, nil, nil},
			{"put", func() error { return push.Put(ctx, alice, reg("push.example", "n1", "<x/>"), limit) }, nil,
				[]string{"push.example n1 <x/>"}},
			{"put another node and service", func() error {
				if err := push.Put(ctx, alice, reg("push.example", "n2", ""), limit); err != nil {
					return err
				}
				return push.Put(ctx, alice, reg("app.example", "n1", "<y/>"), limit)
			}, nil, []string{"app.example n1 <y/>", "push.example n1 <x/>", "push.example n2 "}},
			{"over the limit", func() error { return push.Put(ctx, alice, reg("push.example", "n3", ""), limit) },
				storage.ErrLimit, []string{"app.example n1 <y/>", "push.example n1 <x/>", "push.example n2 "}},
			{"replacing at the limit", func() error { return push.Put(ctx, alice, reg("push.example", "n1", "<z/>"), limit) },
				nil, []string{"app.example n1 <y/>", "push.example n1 <z/>", "push.example n2 "}},
			{"bob's", func() error { return push.Put(ctx, bob, reg("push.example", "b", ""), limit) },
				nil, []string{"app.example n1 <y/>", "push.example n1 <z/>", "push.example n2 "}},
			{"remove one node", func() error { return push.Remove(ctx, alice, jid.MustParse("push.example"), "n2") },
				nil, []string{"app.example n1 <y/>", "push.example n1 <z/>"}},
			{"remove absent", func() error { return push.Remove(ctx, alice, jid.MustParse("none.example"), "") },
				nil, []string{"app.example n1 <y/>", "push.example n1 <z/>"}},
			{"remove a service", func() error {
				if err := push.Put(ctx, alice, reg("push.example", "n4", ""), limit); err != nil {
					return err
				}
				return push.Remove(ctx, alice, jid.MustParse("push.example"), "")
			}, nil, []string{"app.example n1 <y/>"}},
			{"no account", func() error {
				return push.Put(ctx, jid.MustParse("nobody@example.org"), reg("push.example", "n", ""), limit)
			}, storage.ErrNotFound, []string{"app.example n1 <y/>"}},
		}
		for _, step := range steps {
			t.Run(step.name, func(t *testing.T) {
				if err := step.do(); !errors.Is(err, step.wantErr) || (err != nil) != (step.wantErr != nil) {
					t.Fatalf("err = %v, want %v", err, step.wantErr)
				}
				checkPush(t, push, alice, step.want)
			})
		}
		checkPush(t, push, bob, []string{"push.example b "})

		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db2, err := sqlstore.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer db2.Close()
		checkPush(t, db2.PushRegistrations(), alice, []string{"app.example n1 <y/>"})
		if err := db2.Users().Delete(ctx, alice.Domainpart(), alice.Localpart()); err != nil {
			t.Fatal(err)
		}
		checkPush(t, db2.PushRegistrations(), alice, nil)
		checkPush(t, db2.PushRegistrations(), bob, []string{"push.example b "})
	})
}

func checkPush(t *testing.T, push storage.PushRegistrations, owner jid.JID, want []string) {
	t.Helper()
	list, err := push.List(context.Background(), owner)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range list {
		got = append(got, fmt.Sprintf("%s %s %s", r.Service, r.Node, r.Form))
	}
	if !slices.Equal(got, want) {
		t.Errorf("registrations = %q, want %q", got, want)
	}
}
