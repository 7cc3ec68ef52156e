package s2s

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"

	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/router"
)

// TestStanzaPlaintext checks the second line of defence against a
// plaintext stream carrying a domain that must use TLS: even with the pair
// authenticated (which dialbackResult refuses to do), a stanza from such a
// domain ends the stream with policy-violation and is not routed.
func TestStanzaPlaintext(t *testing.T) {
	cfg := &config.Config{S2S: config.S2S{Enabled: true, PlaintextDomains: []string{"exempt.test"}}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := router.New(log, nil, nil, []string{"b.test"})
	// A filter sees what would be routed, and stops it.
	var routed []string
	r.AddFilter("test", 0, func(_ context.Context, st *router.Stanza) *router.Stanza {
		routed = append(routed, st.ID())
		return nil
	})
	s, err := New(Options{Config: cfg, Router: r, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	nc, peer := net.Pipe()
	t.Cleanup(func() { nc.Close(); peer.Close() })
	in := newInStream(s, nc, false)
	in.peerFrom = "exempt.test"
	in.authed[pair{"b.test", "victim.test"}] = true
	e, err := router.ParseElement([]byte(`<message from="x@victim.test" to="bob@b.test" type="chat" id="p1"><body>hi</body></message>`), router.NSServer)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.stanza(t.Context(), e); !errors.Is(err, stream.PolicyViolation) {
		t.Errorf("stanza from victim.test without TLS: %v, want %v", err, stream.PolicyViolation)
	}
	if len(routed) > 0 {
		t.Errorf("routed %q, want nothing", routed)
	}
}
