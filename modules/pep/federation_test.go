package pep_test

import (
	"context"
	"slices"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/caps"
	"github.com/xmppd/xmppd/modules/pubsub/core"
	"github.com/xmppd/xmppd/storage"
)

// TestFederation runs the OMEMO set-up across two federated domains: a
// remote contact whose resource advertises the device list's +notify gets
// the last device list when it comes online and the next one when it is
// published, both over s2s after its caps were resolved over s2s, and
// fetches the bundle; a remote stranger may read the open nodes, not a
// presence one.
func TestFederation(t *testing.T) { storetest.Run(t, testFederation) }

func testFederation(t *testing.T, backend storetest.Backend) {
	servers := testserver.StartFederationOn(t, backend, nil, "a.test", "b.test")
	a, b := servers[0], servers[1]
	a.AddUser("alice", password)
	b.AddUser("bob", password)
	b.AddUser("mallory", password)
	for _, f := range []struct {
		s             *testserver.Server
		owner, friend string
	}{{a, "alice@a.test", "bob@b.test"}, {b, "bob@b.test", "alice@a.test"}} {
		// A subscription both ways, as after a completed exchange.
		item := storage.RosterItem{Contact: jid.MustParse(f.friend), Subscription: storage.SubBoth}
		if _, err := f.s.Store.Rosters().Put(context.Background(), jid.MustParse(f.owner), item); err != nil {
			t.Fatal(err)
		}
	}
	const alice = "alice@a.test"
	open := []string{core.FieldAccessModel, "open"}
	al := login(t, a, "alice", "phone")
	testserver.WantResult(t, al.iq("set", "", publishXML(nsDeviceList, "current", `<list xmlns='`+nsAxolotl+`'><device id='1'/></list>`, open...)))
	testserver.WantResult(t, al.iq("set", "", publishXML(nsAxolotl+".bundles:1", "current", `<bundle xmlns='`+nsAxolotl+`'><identityKey>BWlk</identityKey></bundle>`, open...)))
	testserver.WantResult(t, al.iq("set", "", publishXML(nsNick, "n1", nick("Alice"))))

	bob := online(t, b, "bob", "x", caps.Notify(nsDeviceList))
	bob.MustNext(t, "the last device list over s2s", isEvent(alice, nsDeviceList, "item", "current"))
	testserver.WantResult(t, al.iq("set", "", publishXML(nsDeviceList, "current", `<list xmlns='`+nsAxolotl+`'><device id='1'/><device id='2'/></list>`, open...)))
	ev := bob.MustNext(t, "the new device list over s2s", isEvent(alice, nsDeviceList, "item", "current"))
	if n := len(eventItem(ev).Child(nsAxolotl, "list").Elements()); n != 2 {
		t.Fatalf("notified list has %d devices: %s", n, ev)
	}
	if ids := itemIDs(t, bob.iq("get", alice, itemsXML(nsAxolotl+".bundles:1", ""))); len(ids) != 1 {
		t.Fatalf("bundle items %v", ids)
	}
	if ids := itemIDs(t, bob.iq("get", alice, itemsXML(nsNick, ""))); len(ids) != 1 {
		t.Fatalf("a remote contact reads a presence node: %v", ids)
	}

	mallory := login(t, b, "mallory", "x")
	if ids := itemIDs(t, mallory.iq("get", alice, itemsXML(nsDeviceList, ""))); len(ids) != 1 {
		t.Fatalf("device list for a remote stranger %v", ids)
	}
	wantError(t, mallory.iq("get", alice, itemsXML(nsNick, "")), "not-authorized", "auth", "presence-subscription-required")

	// Contact discovery over s2s (XEP-0163 §6.2): the subscribed contact
	// learns that alice is a PEP service and lists her nodes; a remote
	// stranger learns nothing.
	e := bob.iq("get", alice, `<query xmlns='`+nsDiscoInfo+`'/>`)
	if testserver.WantResult(t, e); !hasPEPIdentity(e) || !testserver.HasFeature(e, core.NS+"#publish-options") {
		t.Errorf("remote contact's disco#info: %s", e)
	}
	if nodes := discoItems(t, bob.iq("get", alice, `<query xmlns='`+nsDiscoItems+`'/>`), alice); !slices.Equal(nodes, []string{nsAxolotl + ".bundles:1", nsDeviceList, nsNick}) {
		t.Errorf("remote contact's disco#items: %v", nodes)
	}
	testserver.WantIQError(t, mallory.iq("get", alice, `<query xmlns='`+nsDiscoInfo+`'/>`), "service-unavailable", "cancel")
}
