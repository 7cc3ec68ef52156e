package s2s_test

import (
	"crypto/tls"
	"net"
	"strconv"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
)

// TestDirectTLS federates with b.test over its direct TLS listener
// (XEP-0368), found through an _xmpps-server SRV record or a "tls://"
// static route; the listener speaks ALPN xmpp-server only.
func TestDirectTLS(t *testing.T) {
	const domainC = "c.test"
	tlsAddr := testserver.FreeAddr(t)
	_, portText, _ := net.SplitHostPort(tlsAddr)
	port, _ := strconv.Atoi(portText)
	zone := startZone(t,
		srvRecord("_xmpps-server._tcp.b.test.", uint16(port), "xmpp.b.test."),
		aRecord("xmpp.b.test.", "127.0.0.1"))
	tlsRoute := "tls://" + tlsAddr
	fed := testserver.NewFederation(t, func(c *config.Config) {
		switch c.Hosts[0].Domain {
		case domainA:
			// No route: DNS says b.test is at its direct TLS port only.
			delete(c.S2S.Routes, domainB)
			c.S2S.DNSServer = zone.addr
		case domainB:
			c.Listeners = append(c.Listeners, config.Listener{Type: config.ListenerS2SDirectTLS, Address: tlsAddr})
		case domainC:
			c.S2S.Routes[domainB] = tlsRoute
		}
	}, domainA, domainB, domainC)
	a, b := fed.Start(domainA), fed.Start(domainB)
	bob := login(t, b, "bob")

	// exchange sends a message each way between the users and checks
	// that a's stream to b.test went to the direct TLS port.
	exchange := func(t *testing.T, a *testserver.Server, alice *testserver.Client) {
		t.Helper()
		alice.MustSend(t, `<message to="bob@b.test" type="chat" id="d1"><body>over direct TLS</body></message>`)
		bob.MustNext(t, "the message", isMessage("d1", "chat"))
		bob.MustSend(t, `<message to="`+alice.LocalAddr().Bare().String()+`" type="chat" id="d2"><body>back</body></message>`)
		alice.MustNext(t, "the answer", isMessage("d2", "chat"))
		streams(t, a, "out "+a.Domain()+"→b.test ready (dialback)")
		rep, err := a.S2S.Check(t.Context(), a.Domain(), domainB)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Target.DirectTLS || int(rep.Target.Port) != port || !rep.TLS {
			t.Errorf("check reached %+v (TLS %v), want direct TLS to port %d", rep.Target, rep.TLS, port)
		}
	}
	t.Run("SRV record", func(t *testing.T) {
		exchange(t, a, login(t, a, "alice"))
	})
	t.Run("static tls:// route", func(t *testing.T) {
		c := fed.Start(domainC)
		exchange(t, c, login(t, c, "carol"))
	})
	t.Run("ALPN", func(t *testing.T) {
		tests := []struct {
			offer  []string
			wantOK bool
		}{
			{offer: []string{"xmpp-server"}, wantOK: true},
			{offer: []string{"xmpp-client"}},
			{offer: []string{"h2", "http/1.1"}},
		}
		for _, tt := range tests {
			conn, err := tls.Dial("tcp", tlsAddr, &tls.Config{ServerName: domainB, InsecureSkipVerify: true, NextProtos: tt.offer})
			if !tt.wantOK {
				if err == nil {
					conn.Close()
					t.Errorf("offering %q: handshake succeeded, want it refused", tt.offer)
				}
				continue
			}
			if err != nil {
				t.Errorf("offering %q: %v", tt.offer, err)
				continue
			}
			if got := conn.ConnectionState().NegotiatedProtocol; got != "xmpp-server" {
				t.Errorf("offering %q: negotiated %q", tt.offer, got)
			}
			conn.Close()
		}
	})
}
