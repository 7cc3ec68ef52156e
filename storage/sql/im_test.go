package sqlstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
)

func TestBlocklist(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		blocklists := db.Blocklists()
		ctx := context.Background()
		owners := newAccounts(t, db, "alice@example.org", "bob@example.org")
		alice, bob := owners[0], owners[1]
		jids := func(ss ...string) []jid.JID {
			var list []jid.JID
			for _, s := range ss {
				list = append(list, jid.MustParse(s))
			}
			return list
		}
		steps := []struct {
			name string
			do   func() error
			want []string
		}{
			{"empty", func() error { return nil }, nil},
			{"add every form", func() error {
				return blocklists.Add(ctx, alice, jids("spam.example", "émile@b.example", "eve@a.example/phone", "eve@a.example", "eve@a.example"))
			}, []string{"eve@a.example", "eve@a.example/phone", "spam.example", "émile@b.example"}},
			{"add duplicates", func() error {
				return blocklists.Add(ctx, alice, jids("spam.example", "mallory@a.example"))
			}, []string{"eve@a.example", "eve@a.example/phone", "mallory@a.example", "spam.example", "émile@b.example"}},
			{"add none", func() error { return blocklists.Add(ctx, alice, nil) },
				[]string{"eve@a.example", "eve@a.example/phone", "mallory@a.example", "spam.example", "émile@b.example"}},
			{"remove some, and one not blocked", func() error {
				return blocklists.Remove(ctx, alice, jids("eve@a.example", "spam.example", "nobody@a.example"))
			}, []string{"eve@a.example/phone", "mallory@a.example", "émile@b.example"}},
			{"block bob's", func() error { return blocklists.Add(ctx, bob, jids("zed@a.example")) },
				[]string{"eve@a.example/phone", "mallory@a.example", "émile@b.example"}},
			{"remove all", func() error { return blocklists.Remove(ctx, alice, nil) }, nil},
		}
		for _, step := range steps {
			t.Run(step.name, func(t *testing.T) {
				if err := step.do(); err != nil {
					t.Fatal(err)
				}
				got, err := blocklists.List(ctx, alice)
				if err != nil {
					t.Fatal(err)
				}
				checkJIDs(t, got, step.want)
			})
		}
		got, err := blocklists.List(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		checkJIDs(t, got, []string{"zed@a.example"})
	})
}

func TestVCards(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		vcards := db.VCards()
		ctx := context.Background()
		owners := newAccounts(t, db, "alice@example.org", "bob@example.org")
		alice, bob := owners[0], owners[1]
		if _, err := vcards.Get(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get before Set: err = %v, want ErrNotFound", err)
		}
		for _, vcard := range []string{`<vCard xmlns="vcard-temp"><FN>Alice</FN></vCard>`, `<vCard xmlns="vcard-temp"><FN>Alice «A»</FN></vCard>`, ""} {
			if err := vcards.Set(ctx, alice, []byte(vcard)); err != nil {
				t.Fatal(err)
			}
			got, err := vcards.Get(ctx, alice)
			if err != nil || string(got) != vcard {
				t.Errorf("Get after Set(%q) = %q, %v", vcard, got, err)
			}
		}
		if _, err := vcards.Get(ctx, bob); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get of another account: err = %v, want ErrNotFound", err)
		}
	})
}

func TestPrivateXML(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		private := db.PrivateXML()
		ctx := context.Background()
		owners := newAccounts(t, db, "alice@example.org", "bob@example.org")
		alice, bob := owners[0], owners[1]
		const bookmarks, roster = "storage:bookmarks", "roster:delimiter"
		steps := []struct {
			owner     jid.JID
			namespace string
			fragment  string
		}{
			{alice, bookmarks, `<storage xmlns="storage:bookmarks"/>`},
			{alice, roster, `<roster xmlns="roster:delimiter">::</roster>`},
			{bob, bookmarks, `<storage xmlns="storage:bookmarks"><url name="bob"/></storage>`},
			{alice, bookmarks, `<storage xmlns="storage:bookmarks"><conference jid="room@muc.example"/></storage>`},
		}
		want := map[string]map[string]string{alice.String(): {}, bob.String(): {}}
		for _, step := range steps {
			if err := private.Set(ctx, step.owner, step.namespace, []byte(step.fragment)); err != nil {
				t.Fatal(err)
			}
			want[step.owner.String()][step.namespace] = step.fragment
			for _, owner := range owners {
				fragments := want[owner.String()]
				for _, ns := range []string{bookmarks, roster} {
					got, err := private.Get(ctx, owner, ns)
					if w, ok := fragments[ns]; !ok {
						if !errors.Is(err, storage.ErrNotFound) {
							t.Errorf("Get(%s, %s): err = %v, want ErrNotFound", owner, ns, err)
						}
					} else if err != nil || string(got) != w {
						t.Errorf("Get(%s, %s) = %q, %v; want %q", owner, ns, got, err, w)
					}
				}
			}
		}
	})
}

func TestLastActivity(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		last := db.LastActivity()
		ctx := context.Background()
		owners := newAccounts(t, db, "alice@example.org", "bob@example.org")
		alice, bob := owners[0], owners[1]
		if _, _, err := last.Get(ctx, alice); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get before Set: err = %v, want ErrNotFound", err)
		}
		paris := time.FixedZone("CET", 3600)
		tests := []struct {
			at     time.Time
			status string
		}{
			{time.Date(2024, 2, 29, 12, 30, 45, 123456789, time.UTC), "Gone fishing"},
			{time.Date(2025, 1, 1, 0, 0, 0, 999, paris), ""},
		}
		for _, tt := range tests {
			if err := last.Set(ctx, alice, tt.at, tt.status); err != nil {
				t.Fatal(err)
			}
			at, status, err := last.Get(ctx, alice)
			want := tt.at.Truncate(time.Microsecond).UTC()
			if err != nil || at != want || status != tt.status {
				t.Errorf("Get after Set(%v, %q) = %v, %q, %v; want %v", tt.at, tt.status, at, status, err, want)
			}
		}
		if _, _, err := last.Get(ctx, bob); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get of another account: err = %v, want ErrNotFound", err)
		}
	})
}

// TestWriteWithoutAccount checks that data cannot be stored for an account
// that does not exist.
func TestWriteWithoutAccount(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		ctx := context.Background()
		ghost, bob := jid.MustParse("ghost@example.org"), jid.MustParse("bob@example.org")
		tests := []struct {
			name  string
			write func() error
		}{
			{"roster put", func() error {
				_, err := db.Rosters().Put(ctx, ghost, storage.RosterItem{Contact: bob, Subscription: storage.SubNone})
				return err
			}},
			{"subscription request", func() error {
				return db.SubscriptionRequests().Add(ctx, ghost, storage.SubscriptionRequest{From: bob, Stanza: []byte("<presence/>")})
			}},
			{"offline push", func() error { return db.Offline().Push(ctx, ghost, []byte("<message/>"), 0) }},
			{"offline push with limit", func() error { return db.Offline().Push(ctx, ghost, []byte("<message/>"), 10) }},
			{"block", func() error { return db.Blocklists().Add(ctx, ghost, []jid.JID{bob}) }},
			{"vcard", func() error { return db.VCards().Set(ctx, ghost, []byte("<vCard/>")) }},
			{"private XML", func() error { return db.PrivateXML().Set(ctx, ghost, "ns", []byte("<x/>")) }},
			{"last activity", func() error { return db.LastActivity().Set(ctx, ghost, time.Now(), "") }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := tt.write(); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("err = %v, want ErrNotFound", err)
				}
			})
		}
		if _, v, err := db.Rosters().Get(ctx, ghost); err != nil || v != 0 {
			t.Errorf("roster version after failed Put = %d, %v; want 0", v, err)
		}
	})
}

// fillAccount stores one of every kind of data for owner.
func fillAccount(t *testing.T, db *sqlstore.DB, owner jid.JID) {
	t.Helper()
	ctx := context.Background()
	contact := jid.MustParse("contact@example.net")
	if _, err := db.Rosters().Put(ctx, owner, storage.RosterItem{Contact: contact,
		Subscription: storage.SubBoth, Groups: []string{"Friends"}}); err != nil {
		t.Fatal(err)
	}
	if err := db.SubscriptionRequests().Add(ctx, owner, storage.SubscriptionRequest{
		From: jid.MustParse("stranger@example.net"), Stanza: []byte("<presence type='subscribe'/>")}); err != nil {
		t.Fatal(err)
	}
	if err := db.Offline().Push(ctx, owner, []byte("<message/>"), 0); err != nil {
		t.Fatal(err)
	}
	if err := db.Blocklists().Add(ctx, owner, []jid.JID{jid.MustParse("spam.example")}); err != nil {
		t.Fatal(err)
	}
	if err := db.VCards().Set(ctx, owner, []byte("<vCard/>")); err != nil {
		t.Fatal(err)
	}
	if err := db.PrivateXML().Set(ctx, owner, "storage:bookmarks", []byte("<storage/>")); err != nil {
		t.Fatal(err)
	}
	if err := db.LastActivity().Set(ctx, owner, time.Now(), "away"); err != nil {
		t.Fatal(err)
	}
}

// accountData says, for each kind of data, whether owner has any.
func accountData(t *testing.T, db *sqlstore.DB, owner jid.JID) map[string]bool {
	t.Helper()
	ctx := context.Background()
	has := map[string]bool{}
	found := func(err error) bool {
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	items, version, err := db.Rosters().Get(ctx, owner)
	found(err)
	has["roster items"] = len(items) > 0
	has["roster version"] = version > 0
	_, err = db.Rosters().Item(ctx, owner, jid.MustParse("contact@example.net"))
	has["roster item"] = found(err)
	reqs, err := db.SubscriptionRequests().List(ctx, owner)
	found(err)
	has["subscription requests"] = len(reqs) > 0
	n, err := db.Offline().Count(ctx, owner)
	found(err)
	has["offline messages"] = n > 0
	blocked, err := db.Blocklists().List(ctx, owner)
	found(err)
	has["blocklist"] = len(blocked) > 0
	_, err = db.VCards().Get(ctx, owner)
	has["vcard"] = found(err)
	_, err = db.PrivateXML().Get(ctx, owner, "storage:bookmarks")
	has["private XML"] = found(err)
	_, _, err = db.LastActivity().Get(ctx, owner)
	has["last activity"] = found(err)
	return has
}

// TestDeleteAccountCascades checks that deleting an account deletes every
// kind of its data, and nobody else's: an account created again under the
// same name starts empty.
func TestDeleteAccountCascades(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		ctx := context.Background()
		owners := newAccounts(t, db, "alice@example.org", "bob@example.org")
		alice, bob := owners[0], owners[1]
		fillAccount(t, db, alice)
		fillAccount(t, db, bob)
		for kind, has := range accountData(t, db, alice) {
			if !has {
				t.Fatalf("alice has no %s after fillAccount", kind)
			}
		}
		if err := db.Users().Delete(ctx, alice.Domainpart(), alice.Localpart()); err != nil {
			t.Fatal(err)
		}
		newAccounts(t, db, alice.String())
		for kind, has := range accountData(t, db, alice) {
			if has {
				t.Errorf("%s survived the deletion of the account", kind)
			}
		}
		for kind, has := range accountData(t, db, bob) {
			if !has {
				t.Errorf("bob lost his %s when alice was deleted", kind)
			}
		}
	})
}

// TestReopenIM checks that every kind of account data is in the database,
// not in the DB value.
func TestReopenIM(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		cfg := b.Config(t)
		db := openDB(t, cfg)
		alice := newAccounts(t, db, "alice@example.org")[0]
		fillAccount(t, db, alice)
		want := accountData(t, db, alice)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}

		db = openDB(t, cfg)
		defer db.Close()
		for kind, has := range accountData(t, db, alice) {
			if has != want[kind] {
				t.Errorf("%s: present = %v after reopening, %v before", kind, has, want[kind])
			}
		}
		if _, version, err := db.Rosters().Get(ctx, alice); err != nil || version != 1 {
			t.Errorf("roster version after reopening = %d, %v; want 1", version, err)
		}
		if err := db.Offline().Push(ctx, alice, []byte("<message/>"), 1); !errors.Is(err, storage.ErrLimit) {
			t.Errorf("Push past the limit after reopening: err = %v, want ErrLimit", err)
		}
	})
}

func checkJIDs(t *testing.T, got []jid.JID, want []string) {
	t.Helper()
	var strs []string
	for _, j := range got {
		strs = append(strs, j.String())
	}
	if !slices.Equal(strs, want) {
		t.Errorf("JIDs = %q, want %q", strs, want)
	}
}
