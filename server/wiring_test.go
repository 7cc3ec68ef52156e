package server

import (
	"github.com/xmppd/xmppd/c2s"
	"github.com/xmppd/xmppd/modules/register"
)

// The register module plugs its sign-up into c2s by implementing this
// interface without importing c2s; this guard makes a broken contract a
// compile error rather than a silently missing feature.
var _ c2s.PreAuthIQHandler = (*register.Register)(nil)
