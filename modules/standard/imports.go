// Package standard registers xmppd's standard modules by importing them for
// their init side effect, as Caddy's modules/standard does; a binary that
// imports it can enable any of them by ID in the configuration.
package standard

import (
	_ "github.com/xmppd/xmppd/modules/disco"   // XEP-0030
	_ "github.com/xmppd/xmppd/modules/ping"    // XEP-0199
	_ "github.com/xmppd/xmppd/modules/roster"  // RFC 6121 §2 (placeholder)
	_ "github.com/xmppd/xmppd/modules/version" // XEP-0092
	_ "github.com/xmppd/xmppd/modules/xtime"   // XEP-0202
)
