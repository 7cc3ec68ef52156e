package sqlstore_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
)

// newAccounts creates an account for each JID and returns the JIDs.
func newAccounts(t *testing.T, db *sqlstore.DB, jids ...string) []jid.JID {
	t.Helper()
	var owners []jid.JID
	for _, s := range jids {
		j := jid.MustParse(s)
		if err := db.Users().Create(context.Background(), storage.User{Domain: j.Domainpart(), Local: j.Localpart()}); err != nil {
			t.Fatal(err)
		}
		owners = append(owners, j)
	}
	return owners
}

func TestRosterPutGet(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		rosters := db.Rosters()
		ctx := context.Background()
		owners := newAccounts(t, db, "alice@example.org", "bob@example.org")
		alice, bob := owners[0], owners[1]
		items, version, err := rosters.Get(ctx, alice)
		if err != nil || len(items) != 0 || version != 0 {
			t.Fatalf("Get of a new roster = %v, %d, %v; want none, 0, nil", items, version, err)
		}

		tests := []struct {
			name string
			put  storage.RosterItem
			// want is the stored item when it differs from put.
			want *storage.RosterItem
		}{
			{
				name: "plain",
				put:  storage.RosterItem{Contact: jid.MustParse("zoe@b.example"), Subscription: storage.SubNone},
			},
			{
				name: "all fields",
				put: storage.RosterItem{
					Contact: jid.MustParse("bob@a.example"), Name: "Bob «the builder»",
					Groups:       []string{"Friends", "Work"},
					Subscription: storage.SubBoth, PendingOut: true, PendingIn: true, Approved: true,
				},
			},
			{
				name: "groups normalised, names kept exactly",
				put: storage.RosterItem{
					Contact: jid.MustParse("émile@b.example"), Subscription: storage.SubTo,
					Groups: []string{"b", `["json"]`, "a", "b", "line\nbreak", " spaced ", "ünï", ""},
				},
				want: &storage.RosterItem{
					Contact: jid.MustParse("émile@b.example"), Subscription: storage.SubTo,
					Groups: []string{"", " spaced ", `["json"]`, "a", "b", "line\nbreak", "ünï"},
				},
			},
			{
				name: "domain contact",
				put:  storage.RosterItem{Contact: jid.MustParse("a.example"), Subscription: storage.SubFrom, PendingIn: true},
			},
			{
				name: "replace",
				put: storage.RosterItem{
					Contact: jid.MustParse("zoe@b.example"), Name: "Zoe",
					Groups: []string{"New"}, Subscription: storage.SubTo, Approved: true,
				},
			},
			{
				name: "replace dropping groups",
				put:  storage.RosterItem{Contact: jid.MustParse("bob@a.example"), Subscription: storage.SubFrom},
			},
		}
		stored := map[string]storage.RosterItem{}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				want := tt.put
				if tt.want != nil {
					want = *tt.want
				}
				v, err := rosters.Put(ctx, alice, tt.put)
				if err != nil {
					t.Fatal(err)
				}
				if v != int64(i+1) {
					t.Errorf("Put returned version %d, want %d", v, i+1)
				}
				got, err := rosters.Item(ctx, alice, tt.put.Contact)
				if err != nil {
					t.Fatal(err)
				}
				checkItems(t, []storage.RosterItem{got}, []storage.RosterItem{want})
				stored[want.Contact.String()] = want
			})
		}

		// Sorted bytewise: a domain before the JIDs at it, non-ASCII last.
		var want []storage.RosterItem
		for _, c := range []string{"a.example", "bob@a.example", "zoe@b.example", "émile@b.example"} {
			want = append(want, stored[c])
		}
		items, version, err = rosters.Get(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		checkItems(t, items, want)
		if version != int64(len(tests)) {
			t.Errorf("version = %d, want %d", version, len(tests))
		}
		if n, err := rosters.Count(ctx, alice); err != nil || n != len(want) {
			t.Errorf("Count = %d, %v; want %d", n, err, len(want))
		}

		// Bob's roster is his own.
		items, version, err = rosters.Get(ctx, bob)
		if err != nil || len(items) != 0 || version != 0 {
			t.Errorf("Get of another roster = %v, %d, %v; want none, 0, nil", items, version, err)
		}
		if _, err := rosters.Item(ctx, bob, jid.MustParse("zoe@b.example")); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Item of another roster: err = %v, want ErrNotFound", err)
		}
	})
}

// TestRosterVersion checks that each change raises the version by one, and
// that reads and failed changes leave it alone.
func TestRosterVersion(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		rosters := db.Rosters()
		ctx := context.Background()
		alice := newAccounts(t, db, "alice@example.org")[0]
		bob, carol := jid.MustParse("bob@example.org"), jid.MustParse("carol@example.org")
		item := func(c jid.JID) storage.RosterItem {
			return storage.RosterItem{Contact: c, Subscription: storage.SubNone}
		}
		steps := []struct {
			name    string
			change  func() (int64, error)
			wantErr error
			// bumps: the step is a change and must raise the version.
			bumps bool
		}{
			{"put bob", func() (int64, error) { return rosters.Put(ctx, alice, item(bob)) }, nil, true},
			{"put bob again, unchanged", func() (int64, error) { return rosters.Put(ctx, alice, item(bob)) }, nil, true},
			{"put carol", func() (int64, error) { return rosters.Put(ctx, alice, item(carol)) }, nil, true},
			{"get", func() (int64, error) { _, v, err := rosters.Get(ctx, alice); return v, err }, nil, false},
			{"item", func() (int64, error) { _, err := rosters.Item(ctx, alice, bob); return -1, err }, nil, false},
			{"count", func() (int64, error) { _, err := rosters.Count(ctx, alice); return -1, err }, nil, false},
			{"version", func() (int64, error) { return rosters.Version(ctx, alice) }, nil, false},
			{"remove bob", func() (int64, error) { return rosters.Remove(ctx, alice, bob) }, nil, true},
			{"remove bob again", func() (int64, error) { return rosters.Remove(ctx, alice, bob) }, storage.ErrNotFound, false},
			{"put invalid subscription", func() (int64, error) {
				return rosters.Put(ctx, alice, storage.RosterItem{Contact: bob, Subscription: "sometimes"})
			}, errAny, false},
			{"put empty subscription", func() (int64, error) {
				return rosters.Put(ctx, alice, storage.RosterItem{Contact: bob})
			}, errAny, false},
			{"remove carol", func() (int64, error) { return rosters.Remove(ctx, alice, carol) }, nil, true},
		}
		var want int64
		for _, step := range steps {
			t.Run(step.name, func(t *testing.T) {
				v, err := step.change()
				switch {
				case step.wantErr == nil && err != nil,
					step.wantErr == errAny && err == nil,
					step.wantErr != nil && step.wantErr != errAny && !errors.Is(err, step.wantErr):
					t.Fatalf("err = %v, want %v", err, step.wantErr)
				}
				if step.bumps {
					want++
					if v != want {
						t.Errorf("returned version %d, want %d", v, want)
					}
				} else if err == nil && v != -1 && v != want {
					t.Errorf("returned version %d, want %d", v, want)
				}
				if got, err := rosters.Version(ctx, alice); err != nil || got != want {
					t.Errorf("Version = %d, %v; want %d", got, err, want)
				}
			})
		}
	})
}

// errAny stands for any error in tables of expected errors.
var errAny = errors.New("any error")

// TestRosterConcurrentPut checks that concurrent changes of one roster each
// get a version of their own.
func TestRosterConcurrentPut(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		rosters := db.Rosters()
		ctx := context.Background()
		alice := newAccounts(t, db, "alice@example.org")[0]
		const writers = 8
		versions := make([]int64, writers)
		errs := make([]error, writers)
		contacts := make([]jid.JID, writers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range writers {
			contacts[i] = jid.MustParse("contact" + string(rune('a'+i)) + "@example.net")
			wg.Go(func() {
				<-start
				item := storage.RosterItem{Contact: contacts[i], Subscription: storage.SubNone, Groups: []string{"g"}}
				versions[i], errs[i] = rosters.Put(ctx, alice, item)
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		slices.Sort(versions)
		for i, v := range versions {
			if v != int64(i+1) {
				t.Fatalf("versions returned = %v, want 1 to %d once each", versions, writers)
			}
		}
		items, version, err := rosters.Get(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != writers || version != writers {
			t.Errorf("Get = %d items, version %d; want %d, %d", len(items), version, writers, writers)
		}
	})
}

func TestSubscriptionRequests(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		reqs := db.SubscriptionRequests()
		ctx := context.Background()
		owners := newAccounts(t, db, "alice@example.org", "bob@example.org")
		alice, bob := owners[0], owners[1]
		req := func(from, status string) storage.SubscriptionRequest {
			return storage.SubscriptionRequest{From: jid.MustParse(from),
				Stanza: []byte(`<presence type="subscribe" from="` + from + `"><status>` + status + `</status></presence>`)}
		}
		steps := []struct {
			name string
			do   func() error
			want []storage.SubscriptionRequest
		}{
			{"empty", func() error { return nil }, nil},
			// Not in byte order, to tell arrival order from sorting.
			{"add zoe", func() error { return reqs.Add(ctx, alice, req("zoe@example.net", "hi")) },
				[]storage.SubscriptionRequest{req("zoe@example.net", "hi")}},
			{"add carol", func() error { return reqs.Add(ctx, alice, req("carol@example.net", "hello")) },
				[]storage.SubscriptionRequest{req("zoe@example.net", "hi"), req("carol@example.net", "hello")}},
			{"add dave", func() error { return reqs.Add(ctx, alice, req("dave@example.net", "")) },
				[]storage.SubscriptionRequest{req("zoe@example.net", "hi"), req("carol@example.net", "hello"), req("dave@example.net", "")}},
			{"zoe asks again", func() error { return reqs.Add(ctx, alice, req("zoe@example.net", "again")) },
				[]storage.SubscriptionRequest{req("zoe@example.net", "again"), req("carol@example.net", "hello"), req("dave@example.net", "")}},
			{"remove carol", func() error { return reqs.Remove(ctx, alice, jid.MustParse("carol@example.net")) },
				[]storage.SubscriptionRequest{req("zoe@example.net", "again"), req("dave@example.net", "")}},
			{"remove absent", func() error { return reqs.Remove(ctx, alice, jid.MustParse("nobody@example.net")) },
				[]storage.SubscriptionRequest{req("zoe@example.net", "again"), req("dave@example.net", "")}},
			{"carol asks again", func() error { return reqs.Add(ctx, alice, req("carol@example.net", "back")) },
				[]storage.SubscriptionRequest{req("zoe@example.net", "again"), req("dave@example.net", ""), req("carol@example.net", "back")}},
			{"to bob", func() error { return reqs.Add(ctx, bob, req("zoe@example.net", "bob?")) },
				[]storage.SubscriptionRequest{req("zoe@example.net", "again"), req("dave@example.net", ""), req("carol@example.net", "back")}},
		}
		for _, step := range steps {
			t.Run(step.name, func(t *testing.T) {
				if err := step.do(); err != nil {
					t.Fatal(err)
				}
				got, err := reqs.List(ctx, alice)
				if err != nil {
					t.Fatal(err)
				}
				checkRequests(t, got, step.want)
			})
		}
		got, err := reqs.List(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		checkRequests(t, got, []storage.SubscriptionRequest{req("zoe@example.net", "bob?")})
	})
}

func checkItems(t *testing.T, got, want []storage.RosterItem) {
	t.Helper()
	equal := slices.EqualFunc(got, want, func(a, b storage.RosterItem) bool {
		return a.Contact.Equal(b.Contact) && a.Name == b.Name && slices.Equal(a.Groups, b.Groups) &&
			a.Subscription == b.Subscription && a.PendingOut == b.PendingOut &&
			a.PendingIn == b.PendingIn && a.Approved == b.Approved
	})
	if !equal {
		t.Errorf("items = %+v, want %+v", got, want)
	}
}

func checkRequests(t *testing.T, got, want []storage.SubscriptionRequest) {
	t.Helper()
	equal := slices.EqualFunc(got, want, func(a, b storage.SubscriptionRequest) bool {
		return a.From.Equal(b.From) && string(a.Stanza) == string(b.Stanza)
	})
	if !equal {
		t.Errorf("requests = %+v, want %+v", got, want)
	}
}
