package disco

import (
	"github.com/xmppd/xmppd/modules/caps"
	"github.com/xmppd/xmppd/router"
)

// Entity capabilities (XEP-0115) of the server itself: a <c/> in the
// stream features offered after authentication, whose ver is the hash of
// the server's disco#info, so that a client which has seen this ver before
// need not ask disco#info again at every login.
const (
	// NSCaps is the namespace of XEP-0115.
	NSCaps = caps.NS
	// CapsNode names the software in the caps node attribute (XEP-0115
	// §4: a URL where a user finds out about it): the project's home,
	// which is also its Go module path.
	CapsNode = "https://github.com/xmppd/xmppd"
	// nsData is the namespace of XEP-0004 data forms, the XEP-0128
	// extended information in a disco#info answer.
	nsData = "jabber:x:data"
)

// capsCache is the ver last computed, with the router's feature
// generation it was computed under.
type capsCache struct {
	generation uint64
	ver        string
}

// capsVer returns the ver of the server's disco#info. It is hashed again
// only after a module added or removed a feature, so a login costs an
// atomic load. The server's answer is the same on every served domain (the
// router keeps features per target, not per domain), so one ver serves
// all.
func (d *Disco) capsVer() string {
	gen := d.h.Router().FeatureGeneration()
	if c := d.caps.Load(); c != nil && c.generation == gen {
		return c.ver
	}
	// Read after gen: if features change meanwhile, the next call sees a
	// newer generation and computes again.
	ver := caps.Ver(caps.ParseInfo(d.infoQuery(router.ToServer)))
	d.caps.Store(&capsCache{generation: gen, ver: ver})
	return ver
}

// capsFeature is the <c/> stream feature (XEP-0115 §6.3) for a client
// authenticated on domain.
func (d *Disco) capsFeature(string) *router.Element {
	return router.NewElement(NSCaps, "c", "hash", "sha-1", "node", CapsNode, "ver", d.capsVer())
}

// capsNode is the disco node NODE#VER that the server answers like plain
// disco#info (XEP-0115 §6.2).
func (d *Disco) capsNode() string { return CapsNode + "#" + d.capsVer() }
