package pep_test

import (
	"context"
	"testing"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/caps"
	"github.com/xmppd/xmppd/modules/pubsub/core"
	"github.com/xmppd/xmppd/router"
)

func nick(name string) string { return `<nick xmlns='` + nsNick + `'>` + name + `</nick>` }

func avatarMeta(id string) string {
	return `<metadata xmlns='` + nsAvatar + `'><info bytes='1' id='` + id + `' type='image/png'/></metadata>`
}

// TestNotifications checks +notify filtering and the last item: a contact
// resource that advertises NODE+notify gets the node's last item when it
// comes online and each new item, one that does not advertise it gets
// neither (it gets the node it does advertise, which shows that its caps
// were resolved); the owner's own interested resource is notified too, and
// retractions with notify reach the interested resources.
func TestNotifications(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob", "carol")
		befriend(t, s, "alice", "bob")
		alice := bare("alice")
		a := login(t, s, "alice", "phone")
		testserver.WantResult(t, a.iq("set", "", publishXML(nsAvatar, "v1", avatarMeta("v1"))))
		testserver.WantResult(t, a.iq("set", "", publishXML(nsNick, "n1", nick("Alice"))))

		withNotify := online(t, s, "bob", "avatar", caps.Notify(nsAvatar))
		withNotify.MustNext(t, "the last avatar on coming online", isEvent(alice, nsAvatar, "item", "v1"))
		without := online(t, s, "bob", "nick", caps.Notify(nsNick))
		without.MustNext(t, "the last nick on coming online", isEvent(alice, nsNick, "item", "n1"))
		// A stranger advertising +notify gets nothing of a presence node,
		// even with directed presence.
		stranger := online(t, s, "carol", "x", caps.Notify(nsAvatar))
		owner := online(t, s, "alice", "laptop", caps.Notify(nsAvatar))
		owner.MustNext(t, "its own last avatar", isEvent(alice, nsAvatar, "item", "v1"))
		stranger.MustSend(t, `<presence to='`+alice+`'><c xmlns='`+caps.NS+`' hash='sha-1' node='x' ver='y'/></presence>`)
		stranger.MustSync(t)

		testserver.WantResult(t, a.iq("set", "", publishXML(nsAvatar, "v2", avatarMeta("v2"))))
		ev := withNotify.MustNext(t, "the new avatar", isEvent(alice, nsAvatar, "item", "v2"))
		if eventItem(ev).Child(nsAvatar, "metadata") == nil {
			t.Errorf("notification without its payload: %s", ev)
		}
		owner.MustNext(t, "its own new avatar", isEvent(alice, nsAvatar, "item", "v2"))
		without.ExpectNone(t, "an avatar it did not ask for", isEvent(alice, nsAvatar, "item", "v2"))
		stranger.ExpectNone(t, "an avatar of a presence node", isEvent(alice, nsAvatar, "item", "v2"))
		if a.ExpectNone(t, "a notification without caps", isEvent(alice, nsAvatar, "item", "v2")); t.Failed() {
			return
		}
		testserver.WantResult(t, a.iq("set", "", `<pubsub xmlns='`+core.NS+`'><retract node='`+nsAvatar+`' notify='1'><item id='v2'/></retract></pubsub>`))
		withNotify.MustNext(t, "the retraction", isEvent(alice, nsAvatar, "retract", "v2"))
		without.ExpectNone(t, "a retraction it did not ask for", isEvent(alice, nsAvatar, "retract", "v2"))

		// pubsub#deliver_payloads false: the notification names the item only.
		testserver.WantResult(t, a.iq("set", "", ownerXML("configure", nsAvatar, form(core.FormNodeConfig, "submit", core.FieldDeliverPay, "0"))))
		testserver.WantResult(t, a.iq("set", "", publishXML(nsAvatar, "v3", avatarMeta("v3"))))
		ev = withNotify.MustNext(t, "the avatar without payload", isEvent(alice, nsAvatar, "item", "v3"))
		if len(eventItem(ev).Elements()) != 0 {
			t.Errorf("payload delivered with deliver_payloads off: %s", ev)
		}

		// A contact the owner blocked gets no notification (XEP-0163
		// §4.3.3, XEP-0191).
		testserver.WantResult(t, a.iq("set", "", `<block xmlns='urn:xmpp:blocking'><item jid='`+bare("bob")+`'/></block>`))
		testserver.WantResult(t, a.iq("set", "", publishXML(nsAvatar, "v4", avatarMeta("v4"))))
		owner.MustNext(t, "its own avatar", isEvent(alice, nsAvatar, "item", "v4"))
		withNotify.ExpectNone(t, "an avatar of an owner who blocked it", isEvent(alice, nsAvatar, "item", "v4"))
		testserver.WantResult(t, a.iq("set", "", `<unblock xmlns='urn:xmpp:blocking'/>`))

		// Purge and delete are notified to the interested resources.
		for _, op := range []string{"purge", "delete"} {
			testserver.WantResult(t, a.iq("set", "", ownerXML(op, nsAvatar, "")))
			withNotify.MustNext(t, "the "+op, isNodeEvent(alice, op, nsAvatar))
			without.ExpectNone(t, "a "+op+" it did not ask for", isNodeEvent(alice, op, nsAvatar))
		}
	})
}

// TestOMEMO replays the stanzas Conversations sends to set up OMEMO on two
// accounts of one server: each publishes its device list with
// publish-options access_model=open and its bundle on
// eu.siacs.conversations.axolotl.bundles:ID, and the contact, not
// subscribed to the nodes, fetches the list and the bundle; a new device
// list is notified to the contact's interested resource. It also
// publishes the OMEMO 2 nodes (urn:xmpp:omemo:2), whose bundles node keeps
// one item per device (max_items max).
func TestOMEMO(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "alice", "bob", "mallory")
		befriend(t, s, "alice", "bob")
		alice := bare("alice")
		a := online(t, s, "alice", "conversations", caps.Notify(nsDeviceList))
		bobc := online(t, s, "bob", "conversations", caps.Notify(nsDeviceList))
		a.MustSync(t)
		bobc.MustSync(t)

		devicelist := func(ids ...string) string {
			s := `<list xmlns='` + nsAxolotl + `'>`
			for _, id := range ids {
				s += `<device id='` + id + `'/>`
			}
			return s + `</list>`
		}
		open := []string{core.FieldAccessModel, "open"}
		// Conversations: publish the device list, then the bundle.
		testserver.WantResult(t, a.iq("set", "", publishXML(nsDeviceList, "current", devicelist("1111"), open...)))
		bundle := `<bundle xmlns='` + nsAxolotl + `'><signedPreKeyPublic signedPreKeyId='1'>BQ==</signedPreKeyPublic><signedPreKeySignature>c2ln</signedPreKeySignature><identityKey>BWlk</identityKey><prekeys><preKeyPublic preKeyId='1'>BXA=</preKeyPublic></prekeys></bundle>`
		testserver.WantResult(t, a.iq("set", "", publishXML(nsAxolotl+".bundles:1111", "current", bundle, open...)))
		bobc.MustNext(t, "alice's device list", isEvent(alice, nsDeviceList, "item", "current"))

		for _, who := range []*client{bobc, {login(t, s, "mallory", "x").Client, t}} {
			e := who.iq("get", alice, itemsXML(nsDeviceList, ""))
			if ids := itemIDs(t, e); len(ids) != 1 {
				t.Fatalf("device list items %v", ids)
			}
			list := e.Child(core.NS, "pubsub").Child(core.NS, "items").Child(core.NS, "item").Child(nsAxolotl, "list")
			if list == nil || list.Child(nsAxolotl, "device").Get("id") != "1111" {
				t.Fatalf("device list %s", e)
			}
			e = who.iq("get", alice, itemsXML(nsAxolotl+".bundles:1111", " max_items='1'"))
			if it := e.Child(core.NS, "pubsub").Child(core.NS, "items").Child(core.NS, "item"); it == nil || it.Child(nsAxolotl, "bundle").Child(nsAxolotl, "identityKey").Text() != "BWlk" {
				t.Fatalf("bundle %s", e)
			}
		}
		// A second device: the list is republished with the same options.
		testserver.WantResult(t, a.iq("set", "", publishXML(nsDeviceList, "current", devicelist("1111", "2222"), open...)))
		// The last item may come again first, when bob's caps were
		// resolved for alice after her first publish: wait for the new one.
		devices := func(ev *router.Element) int {
			return len(ev.Child(core.NSEvent, "event").Child(core.NSEvent, "items").Child(core.NSEvent, "item").Child(nsAxolotl, "list").Elements())
		}
		isList := isEvent(alice, nsDeviceList, "item", "current")
		ev := bobc.MustNext(t, "the new device list", func(e *router.Element) bool { return isList(e) && devices(e) != 1 })
		if n := devices(ev); n != 2 {
			t.Fatalf("notified list has %d devices: %s", n, ev)
		}

		// OMEMO 2 (XEP-0384 0.8): devices, and bundles with one item per device.
		const ns2 = "urn:xmpp:omemo:2"
		testserver.WantResult(t, a.iq("set", "", publishXML(ns2+":devices", "current", `<devices xmlns='`+ns2+`'><device id='1111'/></devices>`, open...)))
		for _, id := range []string{"1111", "2222"} {
			testserver.WantResult(t, a.iq("set", "", publishXML(ns2+":bundles", id, `<bundle xmlns='`+ns2+`'><spk id='1'>AA==</spk><spks>AA==</spks><ik>AA==</ik><prekeys><pk id='1'>AA==</pk></prekeys></bundle>`,
				core.FieldAccessModel, "open", core.FieldMaxItems, "max")))
		}
		if ids := itemIDs(t, bobc.iq("get", alice, itemsXML(ns2+":bundles", "", "2222"))); len(ids) != 1 || ids[0] != "2222" {
			t.Fatalf("omemo 2 bundle %v", ids)
		}
		if ids := itemIDs(t, bobc.iq("get", alice, itemsXML(ns2+":bundles", ""))); len(ids) != 2 {
			t.Fatalf("omemo 2 bundles %v", ids)
		}
	})
}

// TestRestartAndDelete checks that nodes and items survive a restart, and
// that deleting the account deletes its PEP data.
func TestRestartAndDelete(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		var storage config.Storage
		s := start(t, b, func(c *config.Config) { storage = c.Storage }, "alice")
		a := login(t, s, "alice", "phone")
		testserver.WantResult(t, a.iq("set", "", publishXML(nsNick, "n1", nick("Alice"), core.FieldAccessModel, "open")))
		a.Close()
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		s2 := start(t, b, func(c *config.Config) { c.Storage = storage })
		a = login(t, s2, "alice", "phone")
		if ids := itemIDs(t, a.iq("get", "", itemsXML(nsNick, ""))); len(ids) != 1 || ids[0] != "n1" {
			t.Fatalf("items after restart %v", ids)
		}
		f, _ := core.ParseForm(a.iq("get", "", ownerXML("configure", nsNick, "")).Child(core.NSOwner, "pubsub").Child(core.NSOwner, "configure").Child("jabber:x:data", "x"))
		if f.Fields[core.FieldAccessModel][0] != "open" {
			t.Errorf("config after restart %v", f.Fields)
		}
		a.Close()
		u := admin.Users{Config: s2.Config, Users: s2.Store.Users()}
		owner, err := u.Delete(context.Background(), bare("alice"))
		if err != nil {
			t.Fatal(err)
		}
		nodes, err := s2.Store.PubSub().Nodes(context.Background(), owner)
		if err != nil || len(nodes) != 0 {
			t.Fatalf("nodes after user del: %v, %v", nodes, err)
		}
	})
}

// eventItem is the first item of a notification.
func eventItem(e *router.Element) *router.Element {
	return e.Child(core.NSEvent, "event").Child(core.NSEvent, "items").Child(core.NSEvent, "item")
}

// isNodeEvent matches a notification of a purged or deleted node.
func isNodeEvent(service, local, node string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		ev := e.Child(core.NSEvent, "event")
		return e.Name.Local == "message" && e.Get("from") == service && ev != nil &&
			ev.Child(core.NSEvent, local) != nil && ev.Child(core.NSEvent, local).Get("node") == node
	}
}
