package s2s_test

import (
	"testing"

	"github.com/xmppd/xmppd/config"
)

// TestSlowConnectionsCannotLockOut checks that inbound connections from one
// address that stall in negotiation, far more than
// limits.max_pending_per_ip (the default), do not keep a server from that
// address out: each newcomer evicts the one with the least progress, so a
// peer that negotiates normally still authenticates.
func TestSlowConnectionsCannotLockOut(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stall func(*rawS2S)
	}{
		{"silent TCP", func(*rawS2S) {}},
		{"header then silence", func(c *rawS2S) { c.open("evil.test", domainB) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := transports[0]
			b, _, auth := hostileSetup(t, tr)
			addr := b.Addr(config.ListenerS2SStartTLS).String()
			for range 300 {
				tc.stall(dialS2S(t, addr))
			}
			authenticate(t, connect(t, b, tr), auth, "evil.test")
		})
	}
}
