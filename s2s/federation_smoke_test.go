package s2s_test

import (
	"net"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestSmokeDialback(t *testing.T) {
	addrA, addrB := freeAddr(t), freeAddr(t)
	a := testserver.Start(t, func(c *config.Config) {
		c.Hosts = []config.Host{{Domain: "a.test"}}
		c.Listeners = append(c.Listeners, config.Listener{Type: config.ListenerS2SStartTLS, Address: addrA})
		c.S2S.Routes = map[string]string{"b.test": addrB}
	})
	b := testserver.Start(t, func(c *config.Config) {
		c.Hosts = []config.Host{{Domain: "b.test"}}
		c.Listeners = append(c.Listeners, config.Listener{Type: config.ListenerS2SStartTLS, Address: addrB})
		c.S2S.Routes = map[string]string{"a.test": addrA}
	})
	a.AddUser("alice", "pw")
	b.AddUser("bob", "pw")
	ca := a.Login("alice", "pw", testserver.LoginOptions{})
	cb := b.Login("bob", "pw", testserver.LoginOptions{})
	if err := ca.SendRaw(`<message to="bob@b.test/` + cb.LocalAddr().Resourcepart() + `" type="chat" id="m1"><body>hello b</body></message>`); err != nil {
		t.Fatal(err)
	}
	m, err := cb.Next(func(e *router.Element) bool { return e.Name.Local == "message" })
	if err != nil {
		t.Fatal(err)
	}
	t.Log(m)
	if err := cb.SendRaw(`<message to="` + ca.LocalAddr().String() + `" type="chat" id="m2"><body>hello a</body></message>`); err != nil {
		t.Fatal(err)
	}
	m, err = ca.Next(func(e *router.Element) bool { return e.Name.Local == "message" })
	if err != nil {
		t.Fatal(err)
	}
	t.Log(m)
}
