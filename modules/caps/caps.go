// Package caps is what the server needs of XEP-0115 Entity Capabilities:
// the verification string of a disco#info answer (which the disco module
// uses for the server's own ver), the <c/> of a presence, and a Resolver
// that learns the features each full JID advertises, asking disco#info once
// per verified ver, so that PEP (XEP-0163) can send a node's notifications
// only to the resources that advertise NODE+notify.
//
// It is a library shared by modules, not a module: it registers nothing,
// and a module that uses it owns its Resolver (starts and stops it, feeds
// it presence). The wiring PEP is meant to use (server_test.go does it):
//
//   - New with Options.Query = host.Router().SendIQ and OnResolved, Start
//     in the module's Start, Stop in its Stop;
//   - a presence handler on router.ToAccount (returning false, so that
//     presence goes on) calls Presence(observer, st), the observer being
//     the bare JID the presence is to, or its sender's bare JID for a
//     broadcast (the account's own resources receive it);
//   - OnSessionEnd calls Forget(session JID);
//   - OnResolved(observer, full, f): send full the last items of the
//     observer's nodes that f has NODE+notify for, if the access model
//     allows;
//   - on publish: the owner's resources and each allowed contact's
//     InterestedResources(contact, node) that are AvailableTo(owner, ...).
package caps

import (
	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
)

// Namespaces this package reads.
const (
	// NS is the namespace of XEP-0115.
	NS = "http://jabber.org/protocol/caps"
	// NSDiscoInfo is the namespace of XEP-0030 disco#info.
	NSDiscoInfo = "http://jabber.org/protocol/disco#info"
	// nsData is the namespace of XEP-0004 data forms, the XEP-0128
	// extended information in a disco#info answer.
	nsData = "jabber:x:data"
)

// Limits on what a peer's <c/> may hold; longer values are not caps a
// real client sends (a sha-512 ver is 88 characters) and are ignored.
const (
	maxVerLen  = 128
	maxNodeLen = 1024
	maxHashLen = 32
)

// Caps is the <c/> of a presence: the software (Node), the verification
// string (Ver) and the hash that made it. Hash is "" for the legacy
// format (XEP-0115 §10, before version 1.4), whose ver cannot be verified.
type Caps struct {
	Node, Ver, Hash string
}

// Legacy tells whether c is in the legacy format: no hash attribute, so
// its ver is not a verification string and must not be cached by ver
// (XEP-0115 §8.2).
func (c Caps) Legacy() bool { return c.Hash == "" }

// QueryNode is the disco node to ask for c's disco#info: NODE#VER
// (XEP-0115 §6.2), or "" when the <c/> had no node.
func (c Caps) QueryNode() string {
	if c.Node == "" {
		return ""
	}
	return c.Node + "#" + c.Ver
}

// Parse reads a <c/> element. It reports false for anything else, for a
// <c/> without ver, and for attribute values longer than any real client
// sends.
func Parse(e *router.Element) (Caps, bool) {
	if e == nil || e.Name.Space != NS || e.Name.Local != "c" {
		return Caps{}, false
	}
	c := Caps{Node: e.Get("node"), Ver: e.Get("ver"), Hash: e.Get("hash")}
	if c.Ver == "" || len(c.Ver) > maxVerLen || len(c.Node) > maxNodeLen || len(c.Hash) > maxHashLen {
		return Caps{}, false
	}
	return c, true
}

// FromPresence returns the caps of a presence stanza: its first <c/>
// child in the caps namespace.
func FromPresence(st *router.Stanza) (Caps, bool) {
	if st == nil || st.Kind() != router.KindPresence {
		return Caps{}, false
	}
	return Parse(st.Child(NS, "c"))
}

// key is what the Resolver caches by: a verified ver is only meaningful
// with the hash that made it.
func (c Caps) key() string { return c.Hash + " " + c.Ver }

// Notify is the feature a resource advertises to receive the PEP
// notifications of node (XEP-0163 §4.4): node + "+notify".
func Notify(node string) string { return node + "+notify" }

// bareKey and fullKey are the map keys of JIDs.
func bareKey(j jid.JID) string { return j.Bare().String() }
