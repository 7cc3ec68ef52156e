// Package standard registers xmppd's standard modules by importing them for
// their init side effect, as Caddy's modules/standard does; a binary that
// imports it can enable any of them by ID in the configuration.
package standard

import (
	_ "github.com/xmppd/xmppd/modules/blocking" // XEP-0191
	_ "github.com/xmppd/xmppd/modules/carbons"  // XEP-0280
	_ "github.com/xmppd/xmppd/modules/disco"    // XEP-0030
	_ "github.com/xmppd/xmppd/modules/last"     // XEP-0012
	_ "github.com/xmppd/xmppd/modules/mam"      // XEP-0313, XEP-0359, XEP-0441
	_ "github.com/xmppd/xmppd/modules/muc"      // XEP-0045 at conference.DOMAIN
	_ "github.com/xmppd/xmppd/modules/offline"  // XEP-0160
	_ "github.com/xmppd/xmppd/modules/pep"      // XEP-0163 on XEP-0060
	_ "github.com/xmppd/xmppd/modules/ping"     // XEP-0199
	_ "github.com/xmppd/xmppd/modules/private"  // XEP-0049
	_ "github.com/xmppd/xmppd/modules/pubsub"   // XEP-0060 at pubsub.DOMAIN
	_ "github.com/xmppd/xmppd/modules/push"     // XEP-0357
	_ "github.com/xmppd/xmppd/modules/register" // XEP-0077 (password change, removal)
	_ "github.com/xmppd/xmppd/modules/roster"   // RFC 6121: rosters, subscriptions, presence
	_ "github.com/xmppd/xmppd/modules/turn"     // STUN/TURN relay, XEP-0215
	_ "github.com/xmppd/xmppd/modules/upload"   // XEP-0363
	_ "github.com/xmppd/xmppd/modules/vcard"    // XEP-0054, XEP-0153
	_ "github.com/xmppd/xmppd/modules/version"  // XEP-0092
	_ "github.com/xmppd/xmppd/modules/xtime"    // XEP-0202
)
