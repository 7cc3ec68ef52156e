package pep_test

import (
	"testing"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/caps"
	"github.com/xmppd/xmppd/modules/pubsub/core"
)

// privateOptions are the publish-options of XEP-0223 §3.
var privateOptions = []string{core.FieldPersistItems, "true", core.FieldAccessModel, "whitelist"}

// TestPrivateData replays XEP-0223: a client stores private data with
// publish-options persist_items=true and access_model=whitelist; the node
// is created so, the owner's interested resources are notified and read
// it back, a contact with a mutual subscription that asks for the node's
// notifications gets none and may not read it, and publishing with the
// same options again meets the precondition while a node created as a
// presence node does not.
func TestPrivateData(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b, nil, "juliet", "romeo")
		befriend(t, s, "juliet", "romeo")
		juliet := bare("juliet")
		const node = "urn:xmpp:private:notes"
		const data = `<notes xmlns='urn:xmpp:private:notes'>secret</notes>`
		balcony := online(t, s, "juliet", "balcony", caps.Notify(node))
		chamber := online(t, s, "juliet", "chamber", caps.Notify(node))
		romeo := online(t, s, "romeo", "orchard", caps.Notify(node))
		for _, c := range []*client{balcony, chamber, romeo} {
			c.MustSync(t)
		}
		testserver.WantResult(t, balcony.iq("set", "", publishXML(node, "current", data, privateOptions...)))
		balcony.MustNext(t, "the notification of its own data", isEvent(juliet, node, "item", "current"))
		chamber.MustNext(t, "the notification on the other resource", isEvent(juliet, node, "item", "current"))
		romeo.ExpectNone(t, "a contact's notification of private data", isEvent(juliet, node, "item", "current"))

		f, _ := core.ParseForm(balcony.iq("get", "", ownerXML("configure", node, "")).Child(core.NSOwner, "pubsub").Child(core.NSOwner, "configure").Child("jabber:x:data", "x"))
		if f.Fields[core.FieldAccessModel][0] != "whitelist" || f.Fields[core.FieldPersistItems][0] != "1" {
			t.Errorf("private node configured %v", f.Fields)
		}
		e := chamber.iq("get", "", itemsXML(node, ""))
		if it := e.Child(core.NS, "pubsub").Child(core.NS, "items").Child(core.NS, "item"); itemIDs(t, e)[0] != "current" || it.Child(node, "notes").Text() != "secret" {
			t.Fatalf("private data read back: %s", e)
		}
		wantError(t, romeo.iq("get", juliet, itemsXML(node, "")), "not-allowed", "cancel", "closed-node")
		wantError(t, romeo.iq("set", juliet, `<pubsub xmlns='`+core.NS+`'><subscribe node='`+node+`' jid='`+romeo.LocalAddr().String()+`'/></pubsub>`),
			"not-allowed", "cancel", "closed-node")

		testserver.WantResult(t, balcony.iq("set", "", publishXML(node, "current", data, privateOptions...)))
		testserver.WantResult(t, balcony.iq("set", "", publishXML("urn:xmpp:public", "1", `<p xmlns='urn:xmpp:public'/>`)))
		wantError(t, balcony.iq("set", "", publishXML("urn:xmpp:public", "2", `<p xmlns='urn:xmpp:public'/>`, privateOptions...)),
			"conflict", "cancel", "precondition-not-met")
	})
}
