package core_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/xmppd/xmppd/modules/pubsub/core"
	"github.com/xmppd/xmppd/storage"
)

// TestConfigFormRoundTrip checks that every field of a NodeConfig survives
// being rendered as the node_config form and read back.
func TestConfigFormRoundTrip(t *testing.T) {
	for _, cfg := range []storage.NodeConfig{
		{AccessModel: storage.AccessPresence, PublishModel: storage.PublishPublishers, MaxItems: 1, PersistItems: true,
			SendLast: storage.SendLastOnSubAndPresence, NotifyRetract: true, DeliverNotifications: true, DeliverPayloads: true},
		{AccessModel: storage.AccessRoster, PublishModel: storage.PublishOpen, MaxItems: storage.MaxItemsMax,
			SendLast: storage.SendLastNever, NotifyDelete: true, NotifyConfig: true, NotifySub: true, PresenceBasedDelivery: true,
			Title: "Bookmarks", Type: "urn:xmpp:bookmarks:1", RosterGroupsAllowed: []string{"family", "friends"}},
		{AccessModel: storage.AccessWhitelist, PublishModel: storage.PublishSubscribers, MaxItems: 7, SendLast: storage.SendLastOnSub},
	} {
		f, ok := core.ParseForm(core.ConfigForm(cfg, "submit"))
		if !ok || f.Type != core.FormNodeConfig {
			t.Fatalf("form not parsed: %v", f)
		}
		var got storage.NodeConfig
		if err := f.Apply(&got, 10); err != nil {
			t.Fatalf("apply %v: %v", cfg, err)
		}
		if len(got.RosterGroupsAllowed) == 0 {
			got.RosterGroupsAllowed = nil
		}
		if !reflect.DeepEqual(got, cfg) {
			t.Errorf("round trip\n got %+v\nwant %+v", got, cfg)
		}
	}
}

// TestApplyRefuses checks the values a form may not set.
func TestApplyRefuses(t *testing.T) {
	for _, c := range []struct {
		field, value, cond string
	}{
		{core.FieldAccessModel, "everyone", "not-acceptable"},
		{core.FieldMaxItems, "11", "not-acceptable"},
		{core.FieldMaxItems, "0", "not-acceptable"},
		{core.FieldPersistItems, "yes", "not-acceptable"},
		{core.FieldItemExpire, "60", "not-acceptable"},
		{"pubsub#unknown", "1", "not-acceptable"},
	} {
		f := core.Form{Fields: map[string][]string{c.field: {c.value}}, Order: []string{c.field}}
		var cfg storage.NodeConfig
		err := f.Apply(&cfg, 10)
		if err == nil || string(err.Cond) != c.cond {
			t.Errorf("%s=%s: %v, want %s", c.field, c.value, err, c.cond)
		}
	}
	f := core.Form{Fields: map[string][]string{core.FieldItemExpire: {"0"}}, Order: []string{core.FieldItemExpire}}
	cfg := storage.NodeConfig{ItemExpire: time.Second}
	if err := f.Apply(&cfg, 10); err != nil || cfg.ItemExpire != 0 {
		t.Errorf("item_expire 0: %v, %v", err, cfg.ItemExpire)
	}
}

// TestAccess checks the access models against who asks.
func TestAccess(t *testing.T) {
	contact := core.Relation{Subscribed: true, Groups: []string{"friends"}}
	inRoster := core.Relation{Groups: []string{"work"}}
	for _, c := range []struct {
		model storage.AccessModel
		rel   core.Relation
		aff   storage.Affiliation
		app   string // "" for allowed
	}{
		{storage.AccessOpen, core.Relation{}, storage.AffiliationNone, ""},
		{storage.AccessOpen, core.Relation{}, storage.AffiliationOutcast, "-"},
		{storage.AccessPresence, contact, storage.AffiliationNone, ""},
		{storage.AccessPresence, inRoster, storage.AffiliationNone, "presence-subscription-required"},
		{storage.AccessPresence, core.Relation{Owner: true}, storage.AffiliationNone, ""},
		{storage.AccessRoster, contact, storage.AffiliationNone, ""},
		{storage.AccessRoster, inRoster, storage.AffiliationNone, "not-in-roster-group"},
		{storage.AccessWhitelist, contact, storage.AffiliationNone, "closed-node"},
		{storage.AccessWhitelist, core.Relation{}, storage.AffiliationMember, ""},
		{storage.AccessWhitelist, core.Relation{}, storage.AffiliationOwner, ""},
	} {
		cfg := storage.NodeConfig{AccessModel: c.model, RosterGroupsAllowed: []string{"friends"}}
		err := core.Access(cfg, c.rel, c.aff)
		switch {
		case c.app == "" && err != nil:
			t.Errorf("%s %+v %s: refused %v", c.model, c.rel, c.aff, err)
		case c.app == "-" && (err == nil || err.Cond != "forbidden"):
			t.Errorf("%s %+v %s: %v, want forbidden", c.model, c.rel, c.aff, err)
		case c.app != "" && c.app != "-" && (err == nil || err.App != c.app):
			t.Errorf("%s %+v %s: %v, want %s", c.model, c.rel, c.aff, err, c.app)
		}
	}
}
