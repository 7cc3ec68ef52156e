package turn_test

import (
	"context"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/turn"
)

// TestCheck runs `check turn` against a running relay: with the server's
// configuration it works over UDP and TCP; with another secret it fails;
// without a turn listener it says so.
func TestCheck(t *testing.T) {
	addr := testserver.FreeAddr(t) // the check needs the port in the configuration
	s := testserver.StartOn(t, storetest.Backend{Name: "sqlite"}, func(c *config.Config) {
		c.Listeners = append(c.Listeners, config.Listener{Type: config.ListenerTURN, Address: addr})
	})
	ctx := context.Background()
	report, ok, err := turn.Check(ctx, s.Config, "")
	if err != nil || !ok {
		t.Fatalf("check: %v, ok %v:\n%s", err, ok, report)
	}
	for _, want := range []string{"udp: ok: relayed address", "tcp: ok: relayed address", "turn-check@localhost"} {
		if !strings.Contains(report, want) {
			t.Errorf("report without %q:\n%s", want, report)
		}
	}

	other := *s.Config
	other.ModuleOptions = nil
	o := turn.DefaultOptions()
	o.Secret = "a secret the relay does not have, long enough anyway"
	other.SetModuleOptions("turn", o)
	report, ok, err = turn.Check(ctx, &other, "alice@localhost")
	if err != nil || ok || !strings.Contains(report, "udp: FAILED") || !strings.Contains(report, "tcp: FAILED") {
		t.Fatalf("check with another secret: %v, ok %v:\n%s", err, ok, report)
	}

	none := *s.Config
	none.Listeners = nil
	if _, _, err := turn.Check(ctx, &none, ""); err == nil || !strings.Contains(err.Error(), "no listener of type turn") {
		t.Fatalf("check without a turn listener: %v", err)
	}
}
