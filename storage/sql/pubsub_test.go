package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/storage"
	sqlstore "github.com/xmppd/xmppd/storage/sql"
)

// pubsubBase is the creation time of the test nodes and the time of the
// first test item.
var pubsubBase = time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.UTC)

// Two configurations that differ in every field (TestNodeConfigsDiffer), so
// that a round trip of both catches a field that is not stored, or stored
// in another's column.
var (
	configA = storage.NodeConfig{
		AccessModel:           storage.AccessWhitelist,
		PublishModel:          storage.PublishPublishers,
		MaxItems:              storage.MaxItemsMax,
		PersistItems:          true,
		SendLast:              storage.SendLastOnSubAndPresence,
		NotifyRetract:         true,
		NotifyDelete:          false,
		NotifyConfig:          true,
		NotifySub:             false,
		DeliverNotifications:  true,
		DeliverPayloads:       false,
		PresenceBasedDelivery: true,
		Title:                 "Bookmarks",
		Type:                  "urn:xmpp:bookmarks:1",
		RosterGroupsAllowed:   []string{"Family", "friends", "Ünïcode"},
		ItemExpire:            0,
	}
	configB = storage.NodeConfig{
		AccessModel:           storage.AccessRoster,
		PublishModel:          storage.PublishOpen,
		MaxItems:              3,
		PersistItems:          false,
		SendLast:              storage.SendLastNever,
		NotifyRetract:         false,
		NotifyDelete:          true,
		NotifyConfig:          false,
		NotifySub:             true,
		DeliverNotifications:  false,
		DeliverPayloads:       true,
		PresenceBasedDelivery: false,
		Title:                 "",
		Type:                  "",
		RosterGroupsAllowed:   nil,
		ItemExpire:            36 * time.Hour,
	}
)

// TestNodeConfigsDiffer checks that configA and configB differ in every
// field, so that a field added to NodeConfig is added to them, and to the
// store, before the round trip passes.
func TestNodeConfigsDiffer(t *testing.T) {
	a, b := reflect.ValueOf(configA), reflect.ValueOf(configB)
	for i := range a.NumField() {
		if reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			t.Errorf("configA and configB have the same %s", a.Type().Field(i).Name)
		}
	}
}

// pubsubItem returns test item i: id m<i> (as ids names it), published i minutes after
// pubsubBase by publisher, with a payload naming it and what.
func pubsubItem(i int, publisher, what string) storage.PubSubItem {
	id := fmt.Sprintf("m%02d", i)
	return storage.PubSubItem{
		ID:        id,
		Publisher: jid.MustParse(publisher),
		Payload:   []byte(`<entry xmlns="urn:test" n="` + id + `">` + what + `</entry>`),
		Published: pubsubBase.Add(time.Duration(i) * time.Minute),
	}
}

// itemIDs returns the ids of items.
func itemIDs(items []storage.PubSubItem) []string {
	var list []string
	for _, it := range items {
		list = append(list, it.ID)
	}
	return list
}

// createNode creates the node with config and creator, created at
// pubsubBase.
func createNode(t *testing.T, ps storage.PubSub, service jid.JID, name string, config storage.NodeConfig, creator jid.JID) {
	t.Helper()
	err := ps.CreateNode(context.Background(), storage.PubSubNode{
		Service: service, Name: name, Config: config, Creator: creator, Created: pubsubBase,
	})
	if err != nil {
		t.Fatal(err)
	}
}

// publish publishes items to the node without a limit.
func publish(t *testing.T, ps storage.PubSub, service jid.JID, node string, items ...storage.PubSubItem) {
	t.Helper()
	for _, it := range items {
		if trimmed, err := ps.Publish(context.Background(), service, node, it, storage.MaxItemsMax); err != nil || trimmed != nil {
			t.Fatalf("Publish %s = %v, %v; want nothing trimmed", it.ID, trimmed, err)
		}
	}
}

// allItems returns the ids of the node's items, newest first.
func allItems(t *testing.T, ps storage.PubSub, service jid.JID, node string) []string {
	t.Helper()
	items, err := ps.Items(context.Background(), service, node, storage.PubSubItemQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return itemIDs(items)
}

func checkNode(t *testing.T, got, want storage.PubSubNode) {
	t.Helper()
	if !got.Service.Equal(want.Service) || got.Name != want.Name || !got.Creator.Equal(want.Creator) ||
		!got.Created.Equal(want.Created) || !reflect.DeepEqual(got.Config, want.Config) {
		t.Errorf("node = %+v\nwant %+v", got, want)
	}
}

func TestPubSubNodes(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		ps := db.PubSub()
		ctx := context.Background()
		alice, bob := jid.MustParse("alice@example.org"), jid.MustParse("bob@example.org")
		service := jid.MustParse("pubsub.example.org")

		// Alice's PEP node, and nodes of the same name on Bob's and
		// the generic service, created by a full JID.
		createNode(t, ps, alice, "urn:xmpp:bookmarks:1", configA, alice)
		createNode(t, ps, bob, "urn:xmpp:bookmarks:1", configB, bob)
		createNode(t, ps, service, "urn:xmpp:bookmarks:1", configB, jid.MustParse("carol@example.org/phone"))
		createNode(t, ps, service, "a-news", configB, jid.JID{})
		if err := ps.CreateNode(ctx, storage.PubSubNode{Service: jid.MustParse("alice@example.org/laptop"),
			Name: "urn:xmpp:bookmarks:1", Config: configB}); !errors.Is(err, storage.ErrExists) {
			t.Errorf("CreateNode again, through a full JID: err = %v, want ErrExists", err)
		}

		wantAlice := storage.PubSubNode{Service: alice, Name: "urn:xmpp:bookmarks:1", Config: configA,
			Creator: alice, Created: pubsubBase.Truncate(time.Microsecond)}
		got, err := ps.Node(ctx, alice, "urn:xmpp:bookmarks:1")
		if err != nil {
			t.Fatal(err)
		}
		checkNode(t, got, wantAlice)
		// The failed CreateNode changed nothing.
		if got, err := ps.Node(ctx, jid.MustParse("alice@example.org/x"), "urn:xmpp:bookmarks:1"); err != nil || got.Config.AccessModel != storage.AccessWhitelist {
			t.Errorf("Node through a full JID = %+v, %v; want alice's", got, err)
		}

		nodes, err := ps.Nodes(ctx, service)
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) != 2 {
			t.Fatalf("Nodes(%s) = %+v, want 2", service, nodes)
		}
		checkNode(t, nodes[0], storage.PubSubNode{Service: service, Name: "a-news", Config: configB,
			Created: pubsubBase.Truncate(time.Microsecond)})
		checkNode(t, nodes[1], storage.PubSubNode{Service: service, Name: "urn:xmpp:bookmarks:1", Config: configB,
			Creator: jid.MustParse("carol@example.org"), Created: pubsubBase.Truncate(time.Microsecond)})

		// The creator, as a bare JID, is the only owner; a node without
		// a creator has no affiliations.
		for _, tt := range []struct {
			service jid.JID
			node    string
			want    []storage.PubSubAffiliation
		}{
			{alice, "urn:xmpp:bookmarks:1", []storage.PubSubAffiliation{{Node: "urn:xmpp:bookmarks:1", JID: alice, Affiliation: storage.AffiliationOwner}}},
			{service, "urn:xmpp:bookmarks:1", []storage.PubSubAffiliation{{Node: "urn:xmpp:bookmarks:1", JID: jid.MustParse("carol@example.org"), Affiliation: storage.AffiliationOwner}}},
			{service, "a-news", nil},
		} {
			affs, err := ps.Affiliations(ctx, tt.service, tt.node)
			if err != nil || !equalAffiliations(affs, tt.want) {
				t.Errorf("Affiliations(%s, %s) = %v, %v; want %v", tt.service, tt.node, affs, err, tt.want)
			}
		}

		counts := []struct {
			service jid.JID
			want    int
		}{{alice, 1}, {bob, 1}, {service, 2}, {jid.MustParse("dave@example.org"), 0}}
		for _, c := range counts {
			if n, err := ps.NodeCount(ctx, c.service); err != nil || n != c.want {
				t.Errorf("NodeCount(%s) = %d, %v; want %d", c.service, n, err, c.want)
			}
		}
		if nodes, err := ps.Nodes(ctx, jid.MustParse("dave@example.org")); err != nil || len(nodes) != 0 {
			t.Errorf("Nodes of a service without nodes = %v, %v; want none", nodes, err)
		}

		// Configuring replaces every field, both ways.
		for _, c := range []storage.NodeConfig{configB, configA} {
			if err := ps.ConfigureNode(ctx, alice, "urn:xmpp:bookmarks:1", c); err != nil {
				t.Fatal(err)
			}
			got, err := ps.Node(ctx, alice, "urn:xmpp:bookmarks:1")
			if err != nil {
				t.Fatal(err)
			}
			want := wantAlice
			want.Config = c
			checkNode(t, got, want)
		}
		// Bob's node of the same name kept its configuration.
		if got, err := ps.Node(ctx, bob, "urn:xmpp:bookmarks:1"); err != nil || !reflect.DeepEqual(got.Config, configB) {
			t.Errorf("bob's node = %+v, %v; want configB", got, err)
		}

		// Roster groups come back sorted, once each.
		dup := configA
		dup.RosterGroupsAllowed = []string{"b", "a", "b"}
		if err := ps.ConfigureNode(ctx, alice, "urn:xmpp:bookmarks:1", dup); err != nil {
			t.Fatal(err)
		}
		if got, err := ps.Node(ctx, alice, "urn:xmpp:bookmarks:1"); err != nil || !slices.Equal(got.Config.RosterGroupsAllowed, []string{"a", "b"}) {
			t.Errorf("roster groups = %q, %v; want [a b]", got.Config.RosterGroupsAllowed, err)
		}
	})
}

func equalAffiliations(a, b []storage.PubSubAffiliation) bool {
	return slices.EqualFunc(a, b, func(x, y storage.PubSubAffiliation) bool {
		return x.Node == y.Node && x.JID.Equal(y.JID) && x.Affiliation == y.Affiliation
	})
}

// TestPubSubInvalid checks that the store refuses values the XEP does not
// have, and stores nothing for them.
func TestPubSubInvalid(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		ps := db.PubSub()
		ctx := context.Background()
		alice := jid.MustParse("alice@example.org")
		createNode(t, ps, alice, "n", configB, alice)
		with := func(f func(c *storage.NodeConfig)) storage.NodeConfig {
			c := configB
			f(&c)
			return c
		}
		configs := []struct {
			name   string
			config storage.NodeConfig
		}{
			{"zero", storage.NodeConfig{}},
			{"access model", with(func(c *storage.NodeConfig) { c.AccessModel = "everyone" })},
			{"publish model", with(func(c *storage.NodeConfig) { c.PublishModel = "" })},
			{"send last", with(func(c *storage.NodeConfig) { c.SendLast = "always" })},
			{"max items", with(func(c *storage.NodeConfig) { c.MaxItems = -2 })},
			{"item expire", with(func(c *storage.NodeConfig) { c.ItemExpire = -time.Second })},
		}
		for _, tt := range configs {
			t.Run(tt.name, func(t *testing.T) {
				if err := ps.CreateNode(ctx, storage.PubSubNode{Service: alice, Name: "new", Config: tt.config}); err == nil {
					t.Error("CreateNode succeeded")
				}
				if err := ps.ConfigureNode(ctx, alice, "n", tt.config); err == nil {
					t.Error("ConfigureNode succeeded")
				}
			})
		}
		if n, err := ps.NodeCount(ctx, alice); err != nil || n != 1 {
			t.Errorf("NodeCount = %d, %v; want 1", n, err)
		}
		if got, err := ps.Node(ctx, alice, "n"); err != nil || !reflect.DeepEqual(got.Config, configB) {
			t.Errorf("node = %+v, %v; want configB", got, err)
		}
		if err := ps.SetAffiliation(ctx, alice, "n", alice, "admin"); err == nil {
			t.Error("SetAffiliation admin succeeded")
		}
		if _, _, err := ps.Subscribe(ctx, alice, "n", alice, "none"); err == nil {
			t.Error("Subscribe in state none succeeded")
		}
		if _, err := ps.Publish(ctx, alice, "n", pubsubItem(1, "alice@example.org", ""), -2); err == nil {
			t.Error("Publish with max items -2 succeeded")
		}
		if _, err := ps.Publish(ctx, alice, "n", storage.PubSubItem{}, 5); err == nil {
			t.Error("Publish without an id succeeded")
		}
		if n, err := ps.ItemCount(ctx, alice, "n"); err != nil || n != 0 {
			t.Errorf("ItemCount after a refused publish = %d, %v; want 0", n, err)
		}
	})
}

// TestPubSubNoNode checks that every call about a node that does not exist
// says so, and names it.
func TestPubSubNoNode(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		ps := db.PubSub()
		ctx := context.Background()
		alice, bob := jid.MustParse("alice@example.org"), jid.MustParse("bob@example.org")
		// Bob has the node; alice does not.
		createNode(t, ps, bob, "n", configB, bob)
		item := pubsubItem(1, "alice@example.org/x", "")
		calls := []struct {
			name string
			call func() error
		}{
			{"Node", func() error { _, err := ps.Node(ctx, alice, "n"); return err }},
			{"ConfigureNode", func() error { return ps.ConfigureNode(ctx, alice, "n", configA) }},
			{"DeleteNode", func() error { return ps.DeleteNode(ctx, alice, "n") }},
			{"Publish", func() error { _, err := ps.Publish(ctx, alice, "n", item, 5); return err }},
			{"Trim", func() error { _, err := ps.Trim(ctx, alice, "n", 5); return err }},
			{"Items", func() error { _, err := ps.Items(ctx, alice, "n", storage.PubSubItemQuery{}); return err }},
			{"LastItem", func() error { _, err := ps.LastItem(ctx, alice, "n"); return err }},
			{"ItemCount", func() error { _, err := ps.ItemCount(ctx, alice, "n"); return err }},
			{"Retract", func() error { _, err := ps.Retract(ctx, alice, "n", "m01"); return err }},
			{"Purge", func() error { _, err := ps.Purge(ctx, alice, "n"); return err }},
			{"Affiliation", func() error { _, err := ps.Affiliation(ctx, alice, "n", bob); return err }},
			{"SetAffiliation", func() error { return ps.SetAffiliation(ctx, alice, "n", bob, storage.AffiliationMember) }},
			{"Affiliations", func() error { _, err := ps.Affiliations(ctx, alice, "n"); return err }},
			{"Subscribe", func() error {
				_, _, err := ps.Subscribe(ctx, alice, "n", bob, storage.SubscriptionSubscribed)
				return err
			}},
			{"Subscription", func() error { _, err := ps.Subscription(ctx, alice, "n", bob); return err }},
			{"SetSubscriptionState", func() error {
				return ps.SetSubscriptionState(ctx, alice, "n", bob, storage.SubscriptionSubscribed)
			}},
			{"Unsubscribe", func() error { return ps.Unsubscribe(ctx, alice, "n", bob, "") }},
			{"Subscriptions", func() error { _, err := ps.Subscriptions(ctx, alice, "n"); return err }},
		}
		for _, tt := range calls {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.call()
				if !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound", err)
				}
				if want := `node "n" on alice@example.org`; !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			})
		}
		// None of them created anything.
		if n, err := ps.NodeCount(ctx, alice); err != nil || n != 0 {
			t.Errorf("NodeCount(alice) = %d, %v; want 0", n, err)
		}
		if affs, err := ps.AffiliationsOf(ctx, alice, bob); err != nil || affs != nil {
			t.Errorf("AffiliationsOf(alice, bob) = %v, %v; want none", affs, err)
		}
		if subs, err := ps.SubscriptionsOf(ctx, alice, bob); err != nil || subs != nil {
			t.Errorf("SubscriptionsOf(alice, bob) = %v, %v; want none", subs, err)
		}
	})
}

func TestPubSubPublish(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		ps := db.PubSub()
		ctx := context.Background()
		alice, bob := jid.MustParse("alice@example.org"), jid.MustParse("bob@example.org")
		createNode(t, ps, alice, "n", configB, alice)
		createNode(t, ps, alice, "other", configB, alice)
		createNode(t, ps, bob, "n", configB, bob)
		// Bob's node and alice's other node have items of the same ids.
		publish(t, ps, bob, "n", pubsubItem(1, "bob@example.org", "bob's"), pubsubItem(2, "bob@example.org", "bob's"))
		publish(t, ps, alice, "other", pubsubItem(3, "alice@example.org", "other"))

		if _, err := ps.LastItem(ctx, alice, "n"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("LastItem of an empty node: err = %v, want ErrNotFound", err)
		}
		if got := allItems(t, ps, alice, "n"); got != nil {
			t.Errorf("items of an empty node = %v, want none", got)
		}

		// The steps run in order on alice's node n; each checks the
		// items after it, newest first.
		steps := []struct {
			name     string
			item     storage.PubSubItem
			max      int
			trimmed  []string
			want     []string
			retract  string // instead of publishing: retract this id
			found    bool
			trimOnly bool // instead of publishing: Trim to max
		}{
			{name: "first", item: pubsubItem(1, "alice@example.org/phone", "one"), max: 3, want: mIDs(1)},
			{name: "second", item: pubsubItem(2, "alice@example.org/phone", "two"), max: 3, want: mIDs(2, 1)},
			{name: "third, to the limit", item: pubsubItem(3, "alice@example.org", "three"), max: 3, want: mIDs(3, 2, 1)},
			{name: "replace the oldest: it becomes the newest", item: pubsubItem(1, "alice@example.org/laptop", "one again"), max: 3,
				want: mIDs(1, 3, 2)},
			{name: "replace the newest, at the limit", item: pubsubItem(1, "alice@example.org/laptop", "one, third time"), max: 3,
				want: mIDs(1, 3, 2)},
			{name: "beyond the limit trims the oldest", item: pubsubItem(4, "alice@example.org", "four"), max: 3,
				trimmed: mIDs(2), want: mIDs(4, 1, 3)},
			{name: "a lower limit trims several", item: pubsubItem(5, "alice@example.org", "five"), max: 2,
				trimmed: mIDs(3, 1), want: mIDs(5, 4)},
			{name: "no limit", item: pubsubItem(6, "alice@example.org", "six"), max: storage.MaxItemsMax, want: mIDs(6, 5, 4)},
			{name: "retract the middle", retract: "m05", found: true, want: mIDs(6, 4)},
			{name: "retract again", retract: "m05", found: false, want: mIDs(6, 4)},
			{name: "retract an id of another node", retract: "m03", found: false, want: mIDs(6, 4)},
			{name: "publish after a retraction", item: pubsubItem(7, "alice@example.org", "seven"), max: 10, want: mIDs(7, 6, 4)},
			{name: "trim", trimOnly: true, max: 1, trimmed: mIDs(4, 6), want: mIDs(7)},
			{name: "trim, nothing beyond", trimOnly: true, max: 1, want: mIDs(7)},
			{name: "max 0 keeps nothing", item: pubsubItem(8, "alice@example.org", "eight"), max: 0,
				trimmed: mIDs(7, 8)},
			{name: "publish to the emptied node", item: pubsubItem(9, "alice@example.org", "nine"), max: 1, want: mIDs(9)},
		}
		for _, st := range steps {
			var (
				trimmed []string
				err     error
			)
			switch {
			case st.retract != "":
				var found bool
				found, err = ps.Retract(ctx, alice, "n", st.retract)
				if err == nil && found != st.found {
					t.Errorf("%s: Retract(%s) found = %v, want %v", st.name, st.retract, found, st.found)
				}
			case st.trimOnly:
				trimmed, err = ps.Trim(ctx, alice, "n", st.max)
			default:
				trimmed, err = ps.Publish(ctx, alice, "n", st.item, st.max)
			}
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if !slices.Equal(trimmed, st.trimmed) {
				t.Errorf("%s: trimmed %v, want %v", st.name, trimmed, st.trimmed)
			}
			if got := allItems(t, ps, alice, "n"); !slices.Equal(got, st.want) {
				t.Errorf("%s: items %v, want %v", st.name, got, st.want)
			}
			if n, err := ps.ItemCount(ctx, alice, "n"); err != nil || n != len(st.want) {
				t.Errorf("%s: ItemCount = %d, %v; want %d", st.name, n, err, len(st.want))
			}
		}

		// Other nodes were not touched.
		if got := allItems(t, ps, bob, "n"); !slices.Equal(got, mIDs(2, 1)) {
			t.Errorf("bob's items = %v, want %v", got, mIDs(2, 1))
		}
		if got := allItems(t, ps, alice, "other"); !slices.Equal(got, mIDs(3)) {
			t.Errorf("alice's other items = %v, want %v", got, mIDs(3))
		}

		// A replaced item has the new publisher, payload and time.
		createNode(t, ps, alice, "replace", configB, alice)
		publish(t, ps, alice, "replace", pubsubItem(1, "alice@example.org/a", "old"), pubsubItem(2, "alice@example.org", "x"))
		newer := pubsubItem(1, "alice@example.org/b", "new")
		newer.Published = pubsubBase.Add(time.Hour)
		publish(t, ps, alice, "replace", newer)
		last, err := ps.LastItem(ctx, alice, "replace")
		if err != nil {
			t.Fatal(err)
		}
		checkItem(t, last, newer)

		// A zero time is the time of publishing; a zero publisher and an
		// empty payload are kept as such.
		before := time.Now().Truncate(time.Microsecond)
		publish(t, ps, alice, "replace", storage.PubSubItem{ID: "bare"})
		last, err = ps.LastItem(ctx, alice, "replace")
		if err != nil {
			t.Fatal(err)
		}
		if last.ID != "bare" || !last.Publisher.Equal(jid.JID{}) || len(last.Payload) != 0 ||
			last.Published.Before(before) || last.Published.After(time.Now()) {
			t.Errorf("item without time, publisher or payload = %+v", last)
		}
	})
}

func checkItem(t *testing.T, got, want storage.PubSubItem) {
	t.Helper()
	if got.ID != want.ID || !got.Publisher.Equal(want.Publisher) || string(got.Payload) != string(want.Payload) ||
		!got.Published.Equal(want.Published.Truncate(time.Microsecond)) {
		t.Errorf("item = %+v (payload %s)\nwant %+v (payload %s)", got, got.Payload, want, want.Payload)
	}
}

func TestPubSubItems(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		ps := db.PubSub()
		ctx := context.Background()
		alice, bob := jid.MustParse("alice@example.org"), jid.MustParse("bob@example.org")
		createNode(t, ps, alice, "n", configA, alice)
		createNode(t, ps, bob, "n", configA, bob)
		var published []storage.PubSubItem
		for i := 1; i <= 6; i++ {
			published = append(published, pubsubItem(i, "alice@example.org/phone", fmt.Sprint("item ", i)))
		}
		publish(t, ps, alice, "n", published...)
		publish(t, ps, bob, "n", pubsubItem(7, "bob@example.org", "bob's"))

		tests := []struct {
			name string
			q    storage.PubSubItemQuery
			want []string
		}{
			{"all", storage.PubSubItemQuery{}, mIDs(6, 5, 4, 3, 2, 1)},
			{"newest 2", storage.PubSubItemQuery{Max: 2}, mIDs(6, 5)},
			{"newest 1", storage.PubSubItemQuery{Max: 1}, mIDs(6)},
			{"newest 6", storage.PubSubItemQuery{Max: 6}, mIDs(6, 5, 4, 3, 2, 1)},
			{"newest 100", storage.PubSubItemQuery{Max: 100}, mIDs(6, 5, 4, 3, 2, 1)},
			{"by ids, in publication order", storage.PubSubItemQuery{IDs: mIDs(2, 5, 3)}, mIDs(5, 3, 2)},
			{"by ids, unknown skipped", storage.PubSubItemQuery{IDs: []string{"m04", "nope", "m07"}}, mIDs(4)},
			{"by ids, none known", storage.PubSubItemQuery{IDs: []string{"nope"}}, nil},
			{"by ids and max", storage.PubSubItemQuery{IDs: mIDs(1, 2, 3), Max: 2}, mIDs(3, 2)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				items, err := ps.Items(ctx, alice, "n", tt.q)
				if err != nil {
					t.Fatal(err)
				}
				if got := itemIDs(items); !slices.Equal(got, tt.want) {
					t.Errorf("items = %v, want %v", got, tt.want)
				}
			})
		}

		// Items round-trip.
		items, err := ps.Items(ctx, alice, "n", storage.PubSubItemQuery{})
		if err != nil {
			t.Fatal(err)
		}
		for i, it := range items {
			checkItem(t, it, published[len(published)-1-i])
		}
		last, err := ps.LastItem(ctx, alice, "n")
		if err != nil {
			t.Fatal(err)
		}
		checkItem(t, last, published[5])

		// Purge empties the node, and only it.
		if n, err := ps.Purge(ctx, alice, "n"); err != nil || n != 6 {
			t.Errorf("Purge = %d, %v; want 6", n, err)
		}
		if got := allItems(t, ps, alice, "n"); got != nil {
			t.Errorf("items after Purge = %v, want none", got)
		}
		if n, err := ps.Purge(ctx, alice, "n"); err != nil || n != 0 {
			t.Errorf("Purge of an empty node = %d, %v; want 0", n, err)
		}
		if _, err := ps.Node(ctx, alice, "n"); err != nil {
			t.Errorf("node after Purge: %v", err)
		}
		if got := allItems(t, ps, bob, "n"); !slices.Equal(got, mIDs(7)) {
			t.Errorf("bob's items after alice's Purge = %v, want %v", got, mIDs(7))
		}
	})
}

func TestPubSubLastItems(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		ps := db.PubSub()
		ctx := context.Background()
		alice, bob := jid.MustParse("alice@example.org"), jid.MustParse("bob@example.org")
		for _, n := range []string{"a", "b", "empty"} {
			createNode(t, ps, alice, n, configA, alice)
		}
		createNode(t, ps, bob, "a", configA, bob)
		// In a, m01 replaced after m02 is the last; in b, the last
		// published remains after the newest is retracted.
		publish(t, ps, alice, "a", pubsubItem(1, "alice@example.org", "old"), pubsubItem(2, "alice@example.org", ""),
			pubsubItem(1, "alice@example.org", "new"))
		publish(t, ps, alice, "b", pubsubItem(3, "alice@example.org", ""), pubsubItem(4, "alice@example.org", ""))
		if _, err := ps.Retract(ctx, alice, "b", "m04"); err != nil {
			t.Fatal(err)
		}
		publish(t, ps, bob, "a", pubsubItem(5, "bob@example.org", ""))

		last, err := ps.LastItems(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		if len(last) != 2 {
			t.Errorf("LastItems = %v, want a and b", last)
		}
		checkItem(t, last["a"], pubsubItem(1, "alice@example.org", "new"))
		checkItem(t, last["b"], pubsubItem(3, "alice@example.org", ""))
		for n, want := range last {
			if one, err := ps.LastItem(ctx, alice, n); err != nil || one.ID != want.ID {
				t.Errorf("LastItem(%s) = %v, %v; want %s as LastItems", n, one.ID, err, want.ID)
			}
		}
		if last, err := ps.LastItems(ctx, jid.MustParse("carol@example.org")); err != nil || len(last) != 0 {
			t.Errorf("LastItems of a service without nodes = %v, %v; want none", last, err)
		}
	})
}

func TestPubSubExpireItems(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		ps := db.PubSub()
		ctx := context.Background()
		alice, bob := jid.MustParse("alice@example.org"), jid.MustParse("bob@example.org")
		hour := configB
		hour.ItemExpire = time.Hour
		day := configB
		day.ItemExpire = 24 * time.Hour
		createNode(t, ps, alice, "hour", hour, alice)
		createNode(t, ps, bob, "hour", hour, bob)
		createNode(t, ps, alice, "day", day, alice)
		createNode(t, ps, alice, "never", configA, alice)
		at := func(i int, after time.Duration) storage.PubSubItem {
			it := pubsubItem(i, "alice@example.org", "")
			it.Published = pubsubBase.Add(after)
			return it
		}
		// Published 0, 30 and 90 minutes after pubsubBase, in that
		// order; then m01 republished at 100 minutes.
		for _, n := range []struct {
			service jid.JID
			node    string
		}{{alice, "hour"}, {bob, "hour"}, {alice, "day"}, {alice, "never"}} {
			publish(t, ps, n.service, n.node, at(1, 0), at(2, 30*time.Minute), at(3, 90*time.Minute))
		}
		publish(t, ps, alice, "hour", at(1, 100*time.Minute))

		// At 2h: in the hour nodes, what was published before 1h.
		now := pubsubBase.Add(2 * time.Hour)
		var expired []int64
		for {
			n, err := ps.ExpireItems(ctx, now, 1)
			if err != nil {
				t.Fatal(err)
			}
			expired = append(expired, n)
			if n < 1 || len(expired) > 10 {
				break
			}
		}
		// alice's m02, bob's m01 and m02: one at a time.
		if !slices.Equal(expired, []int64{1, 1, 1, 0}) {
			t.Errorf("ExpireItems, 1 at a time = %v, want [1 1 1 0]", expired)
		}
		for _, tt := range []struct {
			service jid.JID
			node    string
			want    []string
		}{
			{alice, "hour", mIDs(1, 3)},
			{bob, "hour", mIDs(3)},
			{alice, "day", mIDs(3, 2, 1)},
			{alice, "never", mIDs(3, 2, 1)},
		} {
			if got := allItems(t, ps, tt.service, tt.node); !slices.Equal(got, tt.want) {
				t.Errorf("%s %s after expiry = %v, want %v", tt.service, tt.node, got, tt.want)
			}
		}
		// A day later, all but the never node's.
		if n, err := ps.ExpireItems(ctx, pubsubBase.Add(26*time.Hour), 100); err != nil || n != 6 {
			t.Errorf("ExpireItems a day later = %d, %v; want 6", n, err)
		}
		if got := allItems(t, ps, alice, "never"); !slices.Equal(got, mIDs(3, 2, 1)) {
			t.Errorf("never after expiry = %v, want %v", got, mIDs(3, 2, 1))
		}
		if n, err := ps.ExpireItems(ctx, pubsubBase.Add(1000*time.Hour), 0); err != nil || n != 0 {
			t.Errorf("ExpireItems with limit 0 = %d, %v; want 0", n, err)
		}
	})
}

func TestPubSubAffiliations(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		ps := db.PubSub()
		ctx := context.Background()
		service := jid.MustParse("pubsub.example.org")
		owner := jid.MustParse("owner@example.org")
		bob, carol := jid.MustParse("bob@example.org"), jid.MustParse("carol@example.net")
		createNode(t, ps, service, "a", configA, owner)
		createNode(t, ps, service, "b", configA, owner)
		createNode(t, ps, jid.MustParse("owner@example.org"), "a", configA, owner)

		aff := func(node string, who jid.JID, a storage.Affiliation) storage.PubSubAffiliation {
			return storage.PubSubAffiliation{Node: node, JID: who, Affiliation: a}
		}
		steps := []struct {
			name string
			node string
			who  jid.JID
			set  storage.Affiliation
		}{
			{"publisher", "a", bob, storage.AffiliationPublisher},
			{"by a full JID, kept bare", "a", jid.MustParse("carol@example.net/desk"), storage.AffiliationPublishOnly},
			{"on another node", "b", bob, storage.AffiliationOutcast},
			{"change", "a", bob, storage.AffiliationMember},
			{"none removes", "b", bob, storage.AffiliationNone},
			{"none of none", "b", carol, storage.AffiliationNone},
			{"second owner", "b", carol, storage.AffiliationOwner},
		}
		for _, st := range steps {
			if err := ps.SetAffiliation(ctx, service, st.node, st.who, st.set); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		for _, tt := range []struct {
			node string
			who  jid.JID
			want storage.Affiliation
		}{
			{"a", bob, storage.AffiliationMember},
			{"a", jid.MustParse("bob@example.org/any"), storage.AffiliationMember},
			{"a", carol, storage.AffiliationPublishOnly},
			{"a", owner, storage.AffiliationOwner},
			{"b", bob, storage.AffiliationNone},
			{"b", carol, storage.AffiliationOwner},
			{"b", jid.MustParse("dave@example.org"), storage.AffiliationNone},
		} {
			if got, err := ps.Affiliation(ctx, service, tt.node, tt.who); err != nil || got != tt.want {
				t.Errorf("Affiliation(%s, %s) = %q, %v; want %q", tt.node, tt.who, got, err, tt.want)
			}
		}
		lists := []struct {
			name string
			call func() ([]storage.PubSubAffiliation, error)
			want []storage.PubSubAffiliation
		}{
			{"of node a", func() ([]storage.PubSubAffiliation, error) { return ps.Affiliations(ctx, service, "a") },
				[]storage.PubSubAffiliation{aff("a", bob, storage.AffiliationMember), aff("a", carol, storage.AffiliationPublishOnly),
					aff("a", owner, storage.AffiliationOwner)}},
			{"of node b", func() ([]storage.PubSubAffiliation, error) { return ps.Affiliations(ctx, service, "b") },
				[]storage.PubSubAffiliation{aff("b", carol, storage.AffiliationOwner), aff("b", owner, storage.AffiliationOwner)}},
			{"of owner", func() ([]storage.PubSubAffiliation, error) { return ps.AffiliationsOf(ctx, service, owner) },
				[]storage.PubSubAffiliation{aff("a", owner, storage.AffiliationOwner), aff("b", owner, storage.AffiliationOwner)}},
			{"of owner on its PEP service", func() ([]storage.PubSubAffiliation, error) { return ps.AffiliationsOf(ctx, owner, owner) },
				[]storage.PubSubAffiliation{aff("a", owner, storage.AffiliationOwner)}},
			{"of carol, by a full JID", func() ([]storage.PubSubAffiliation, error) {
				return ps.AffiliationsOf(ctx, service, jid.MustParse("carol@example.net/other"))
			}, []storage.PubSubAffiliation{aff("a", carol, storage.AffiliationPublishOnly), aff("b", carol, storage.AffiliationOwner)}},
			{"of bob", func() ([]storage.PubSubAffiliation, error) { return ps.AffiliationsOf(ctx, service, bob) },
				[]storage.PubSubAffiliation{aff("a", bob, storage.AffiliationMember)}},
			{"of nobody", func() ([]storage.PubSubAffiliation, error) {
				return ps.AffiliationsOf(ctx, service, jid.MustParse("dave@example.org"))
			}, nil},
		}
		for _, tt := range lists {
			got, err := tt.call()
			if err != nil || !equalAffiliations(got, tt.want) {
				t.Errorf("%s = %v, %v; want %v", tt.name, got, err, tt.want)
			}
		}
	})
}

func equalSubscriptions(a, b []storage.PubSubSubscription) bool {
	return slices.EqualFunc(a, b, func(x, y storage.PubSubSubscription) bool {
		return x.Node == y.Node && x.JID.Equal(y.JID) && x.SubID == y.SubID && x.State == y.State
	})
}

func TestPubSubSubscriptions(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		ps := db.PubSub()
		ctx := context.Background()
		service := jid.MustParse("pubsub.example.org")
		owner := jid.MustParse("owner@example.org")
		createNode(t, ps, service, "a", configA, owner)
		createNode(t, ps, service, "b", configA, owner)
		createNode(t, ps, owner, "a", configA, owner)

		subs := map[string]storage.PubSubSubscription{} // by node and JID
		subscribe := func(node, who string, state storage.SubscriptionState) storage.PubSubSubscription {
			t.Helper()
			sub, created, err := ps.Subscribe(ctx, service, node, jid.MustParse(who), state)
			if err != nil || !created {
				t.Fatalf("Subscribe(%s, %s) = %+v, %v, %v; want created", node, who, sub, created, err)
			}
			if sub.Node != node || sub.JID.String() != who || sub.State != state || len(sub.SubID) < 16 {
				t.Errorf("Subscribe(%s, %s) = %+v", node, who, sub)
			}
			subs[node+" "+who] = sub
			return sub
		}
		subscribe("a", "bob@example.org", storage.SubscriptionSubscribed)
		subscribe("a", "bob@example.org/phone", storage.SubscriptionPending)
		subscribe("a", "bob@example.org/laptop", storage.SubscriptionUnconfigured)
		subscribe("a", "carol@example.net", storage.SubscriptionSubscribed)
		subscribe("b", "bob@example.org/phone", storage.SubscriptionSubscribed)
		subscribe("b", "example.net", storage.SubscriptionSubscribed)
		// Bob on owner's PEP node is another service.
		if _, _, err := ps.Subscribe(ctx, owner, "a", jid.MustParse("bob@example.org"), storage.SubscriptionSubscribed); err != nil {
			t.Fatal(err)
		}

		ids := map[string]bool{}
		for _, s := range subs {
			if ids[s.SubID] {
				t.Errorf("SubID %s given twice", s.SubID)
			}
			ids[s.SubID] = true
		}

		// Subscribing again returns the subscription as it is.
		again, created, err := ps.Subscribe(ctx, service, "a", jid.MustParse("bob@example.org/phone"), storage.SubscriptionSubscribed)
		if err != nil || created || !equalSubscriptions([]storage.PubSubSubscription{again}, []storage.PubSubSubscription{subs["a bob@example.org/phone"]}) {
			t.Errorf("Subscribe again = %+v, %v, %v; want %+v, not created", again, created, err, subs["a bob@example.org/phone"])
		}

		// The owner approves the pending subscription.
		if err := ps.SetSubscriptionState(ctx, service, "a", jid.MustParse("bob@example.org/phone"), storage.SubscriptionSubscribed); err != nil {
			t.Fatal(err)
		}
		approved := subs["a bob@example.org/phone"]
		approved.State = storage.SubscriptionSubscribed
		subs["a bob@example.org/phone"] = approved
		got, err := ps.Subscription(ctx, service, "a", jid.MustParse("bob@example.org/phone"))
		if err != nil || !equalSubscriptions([]storage.PubSubSubscription{got}, []storage.PubSubSubscription{approved}) {
			t.Errorf("Subscription after approval = %+v, %v; want %+v", got, err, approved)
		}
		for _, who := range []string{"bob@example.org/tv", "dave@example.org"} {
			if _, err := ps.Subscription(ctx, service, "a", jid.MustParse(who)); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Subscription(%s): err = %v, want ErrNotFound", who, err)
			}
			if err := ps.SetSubscriptionState(ctx, service, "a", jid.MustParse(who), storage.SubscriptionSubscribed); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("SetSubscriptionState(%s): err = %v, want ErrNotFound", who, err)
			}
		}

		// Unsubscribing: with a wrong subid, nothing; with the right one
		// or none, the one subscription.
		laptop := subs["a bob@example.org/laptop"]
		if err := ps.Unsubscribe(ctx, service, "a", laptop.JID, subs["a bob@example.org"].SubID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Unsubscribe with another's subid: err = %v, want ErrNotFound", err)
		}
		if err := ps.Unsubscribe(ctx, service, "a", laptop.JID, laptop.SubID); err != nil {
			t.Errorf("Unsubscribe with its subid: %v", err)
		}
		delete(subs, "a bob@example.org/laptop")
		if err := ps.Unsubscribe(ctx, service, "a", laptop.JID, ""); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Unsubscribe again: err = %v, want ErrNotFound", err)
		}
		if err := ps.Unsubscribe(ctx, service, "a", jid.MustParse("carol@example.net"), ""); err != nil {
			t.Errorf("Unsubscribe without subid: %v", err)
		}
		delete(subs, "a carol@example.net")

		want := func(keys ...string) []storage.PubSubSubscription {
			var list []storage.PubSubSubscription
			for _, k := range keys {
				s, ok := subs[k]
				if !ok {
					t.Fatalf("no subscription %s", k)
				}
				list = append(list, s)
			}
			return list
		}
		lists := []struct {
			name string
			call func() ([]storage.PubSubSubscription, error)
			want []storage.PubSubSubscription
		}{
			{"to a", func() ([]storage.PubSubSubscription, error) { return ps.Subscriptions(ctx, service, "a") },
				want("a bob@example.org", "a bob@example.org/phone")},
			{"to b", func() ([]storage.PubSubSubscription, error) { return ps.Subscriptions(ctx, service, "b") },
				want("b bob@example.org/phone", "b example.net")},
			{"of bob, bare", func() ([]storage.PubSubSubscription, error) {
				return ps.SubscriptionsOf(ctx, service, jid.MustParse("bob@example.org"))
			}, want("a bob@example.org", "a bob@example.org/phone", "b bob@example.org/phone")},
			{"of bob, from any resource", func() ([]storage.PubSubSubscription, error) {
				return ps.SubscriptionsOf(ctx, service, jid.MustParse("bob@example.org/tv"))
			}, want("a bob@example.org", "a bob@example.org/phone", "b bob@example.org/phone")},
			{"of a domain", func() ([]storage.PubSubSubscription, error) {
				return ps.SubscriptionsOf(ctx, service, jid.MustParse("example.net"))
			}, want("b example.net")},
			{"of carol, unsubscribed", func() ([]storage.PubSubSubscription, error) {
				return ps.SubscriptionsOf(ctx, service, jid.MustParse("carol@example.net"))
			}, nil},
		}
		for _, tt := range lists {
			got, err := tt.call()
			if err != nil || !equalSubscriptions(got, tt.want) {
				t.Errorf("%s = %+v, %v\nwant %+v", tt.name, got, err, tt.want)
			}
		}
		if got, err := ps.SubscriptionsOf(ctx, owner, jid.MustParse("bob@example.org")); err != nil || len(got) != 1 || got[0].Node != "a" {
			t.Errorf("bob's subscriptions on owner's PEP service = %+v, %v; want one to a", got, err)
		}
	})
}

// TestPubSubDelete checks that deleting a node deletes its items,
// affiliations and subscriptions, that a node of the same name starts
// empty, and that DeleteService deletes one service's nodes only.
func TestPubSubDelete(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		ps := db.PubSub()
		ctx := context.Background()
		service := jid.MustParse("pubsub.example.org")
		other := jid.MustParse("pubsub.example.net")
		owner, bob := jid.MustParse("owner@example.org"), jid.MustParse("bob@example.org")
		fill := func(service jid.JID, node string) {
			t.Helper()
			createNode(t, ps, service, node, configA, owner)
			publish(t, ps, service, node, pubsubItem(1, "owner@example.org", ""), pubsubItem(2, "owner@example.org", ""))
			if err := ps.SetAffiliation(ctx, service, node, bob, storage.AffiliationPublisher); err != nil {
				t.Fatal(err)
			}
			if _, _, err := ps.Subscribe(ctx, service, node, bob, storage.SubscriptionSubscribed); err != nil {
				t.Fatal(err)
			}
		}
		fill(service, "a")
		fill(service, "b")
		fill(other, "a")

		if err := ps.DeleteNode(ctx, service, "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := ps.Node(ctx, service, "a"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Node after DeleteNode: err = %v, want ErrNotFound", err)
		}
		if err := ps.DeleteNode(ctx, service, "a"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("DeleteNode again: err = %v, want ErrNotFound", err)
		}
		createNode(t, ps, service, "a", configB, jid.JID{})
		if got := allItems(t, ps, service, "a"); got != nil {
			t.Errorf("items of the new node a = %v, want none", got)
		}
		if affs, err := ps.Affiliations(ctx, service, "a"); err != nil || affs != nil {
			t.Errorf("affiliations of the new node a = %v, %v; want none", affs, err)
		}
		if subs, err := ps.Subscriptions(ctx, service, "a"); err != nil || subs != nil {
			t.Errorf("subscriptions to the new node a = %v, %v; want none", subs, err)
		}
		if got, err := ps.Node(ctx, service, "a"); err != nil || !reflect.DeepEqual(got.Config, configB) {
			t.Errorf("new node a = %+v, %v; want configB", got, err)
		}
		checkFilled := func(service jid.JID, node string) {
			t.Helper()
			if got := allItems(t, ps, service, node); !slices.Equal(got, mIDs(2, 1)) {
				t.Errorf("items of %s %s = %v", service, node, got)
			}
			if a, err := ps.Affiliation(ctx, service, node, bob); err != nil || a != storage.AffiliationPublisher {
				t.Errorf("bob's affiliation with %s %s = %q, %v", service, node, a, err)
			}
			if _, err := ps.Subscription(ctx, service, node, bob); err != nil {
				t.Errorf("bob's subscription to %s %s: %v", service, node, err)
			}
		}
		checkFilled(service, "b")
		checkFilled(other, "a")

		if err := ps.DeleteService(ctx, service); err != nil {
			t.Fatal(err)
		}
		if n, err := ps.NodeCount(ctx, service); err != nil || n != 0 {
			t.Errorf("NodeCount after DeleteService = %d, %v; want 0", n, err)
		}
		if affs, err := ps.AffiliationsOf(ctx, service, bob); err != nil || affs != nil {
			t.Errorf("bob's affiliations after DeleteService = %v, %v; want none", affs, err)
		}
		if subs, err := ps.SubscriptionsOf(ctx, service, bob); err != nil || subs != nil {
			t.Errorf("bob's subscriptions after DeleteService = %v, %v; want none", subs, err)
		}
		if err := ps.DeleteService(ctx, service); err != nil {
			t.Errorf("DeleteService of an empty service: %v", err)
		}
		checkFilled(other, "a")
	})
}

// TestPubSubUserDeleteReopen checks that nodes and the order of their items
// outlive a restart, and that deleting an account deletes its PEP service
// and its affiliations and subscriptions elsewhere, and nobody else's.
func TestPubSubUserDeleteReopen(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		cfg := b.Config(t)
		db, err := sqlstore.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		accounts := newAccounts(t, db, "alice@example.org", "bob@example.org")
		alice, bob := accounts[0], accounts[1]
		service := jid.MustParse("pubsub.example.org")
		ps := db.PubSub()
		for _, owner := range accounts {
			createNode(t, ps, owner, "urn:xmpp:avatar:data", configA, owner)
			createNode(t, ps, owner, "urn:xmpp:avatar:metadata", configB, owner)
			// Replacing i01 makes the order differ from the ids'.
			publish(t, ps, owner, "urn:xmpp:avatar:data",
				pubsubItem(1, owner.String(), ""), pubsubItem(2, owner.String(), ""), pubsubItem(1, owner.String()+"/x", ""))
		}
		// Each has an affiliation and a subscription with the other's
		// node, and with a node of the generic service.
		createNode(t, ps, service, "news", configA, jid.MustParse("carol@example.org"))
		for _, pair := range [][2]jid.JID{{alice, bob}, {bob, alice}} {
			who, with := pair[0], pair[1]
			for _, n := range []struct {
				service jid.JID
				node    string
			}{{with, "urn:xmpp:avatar:data"}, {service, "news"}} {
				if err := ps.SetAffiliation(ctx, n.service, n.node, who, storage.AffiliationMember); err != nil {
					t.Fatal(err)
				}
				if _, _, err := ps.Subscribe(ctx, n.service, n.node, who, storage.SubscriptionSubscribed); err != nil {
					t.Fatal(err)
				}
				full, _ := who.WithResource("phone")
				if _, _, err := ps.Subscribe(ctx, n.service, n.node, full, storage.SubscriptionPending); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}

		db, err = sqlstore.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ps = db.PubSub()
		got, err := ps.Node(ctx, alice, "urn:xmpp:avatar:data")
		if err != nil {
			t.Fatal(err)
		}
		checkNode(t, got, storage.PubSubNode{Service: alice, Name: "urn:xmpp:avatar:data", Config: configA,
			Creator: alice, Created: pubsubBase.Truncate(time.Microsecond)})
		if got := allItems(t, ps, alice, "urn:xmpp:avatar:data"); !slices.Equal(got, mIDs(1, 2)) {
			t.Errorf("after reopening, alice's items = %v, want %v", got, mIDs(1, 2))
		}
		// New items go after the old ones.
		publish(t, ps, alice, "urn:xmpp:avatar:data", pubsubItem(3, "alice@example.org", ""))
		if got := allItems(t, ps, alice, "urn:xmpp:avatar:data"); !slices.Equal(got, mIDs(3, 1, 2)) {
			t.Errorf("after reopening and publishing, alice's items = %v, want %v", got, mIDs(3, 1, 2))
		}

		if err := db.Users().Delete(ctx, "example.org", "alice"); err != nil {
			t.Fatal(err)
		}
		if nodes, err := ps.Nodes(ctx, alice); err != nil || nodes != nil {
			t.Errorf("alice's nodes after deletion = %v, %v; want none", nodes, err)
		}
		for _, s := range []jid.JID{bob, service} {
			if affs, err := ps.AffiliationsOf(ctx, s, alice); err != nil || affs != nil {
				t.Errorf("alice's affiliations on %s after deletion = %v, %v; want none", s, affs, err)
			}
			if subs, err := ps.SubscriptionsOf(ctx, s, alice); err != nil || subs != nil {
				t.Errorf("alice's subscriptions on %s after deletion = %v, %v; want none", s, subs, err)
			}
		}
		// Bob's data is all there.
		if nodes, err := ps.Nodes(ctx, bob); err != nil || len(nodes) != 2 {
			t.Errorf("bob's nodes = %v, %v; want 2", nodes, err)
		}
		if got := allItems(t, ps, bob, "urn:xmpp:avatar:data"); !slices.Equal(got, mIDs(1, 2)) {
			t.Errorf("bob's items = %v, want %v", got, mIDs(1, 2))
		}
		if affs, err := ps.AffiliationsOf(ctx, bob, bob); err != nil || len(affs) != 2 {
			t.Errorf("bob's own affiliations = %v, %v; want his 2 nodes", affs, err)
		}
		if affs, err := ps.AffiliationsOf(ctx, service, bob); err != nil || len(affs) != 1 {
			t.Errorf("bob's affiliations on %s = %v, %v; want 1", service, affs, err)
		}
		if subs, err := ps.SubscriptionsOf(ctx, service, bob); err != nil || len(subs) != 2 {
			t.Errorf("bob's subscriptions on %s = %v, %v; want 2", service, subs, err)
		}
		if affs, err := ps.Affiliations(ctx, service, "news"); err != nil || len(affs) != 2 {
			t.Errorf("affiliations of news = %v, %v; want carol's and bob's", affs, err)
		}
		// A new account of the same name starts without PEP data.
		newAccounts(t, db, "alice@example.org")
		if n, err := ps.NodeCount(ctx, alice); err != nil || n != 0 {
			t.Errorf("new alice's NodeCount = %d, %v; want 0", n, err)
		}
	})
}

// mIDs returns m<n> for each n: the item ids of the tests.
func mIDs(ns ...int) []string {
	var list []string
	for _, n := range ns {
		list = append(list, fmt.Sprintf("m%02d", n))
	}
	return list
}
