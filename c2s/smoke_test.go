package c2s_test

import (
	"testing"

	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

func TestSmokeChat(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw-alice")
	s.AddUser("bob", "pw-bob")
	a := s.Login("alice", "pw-alice", testserver.LoginOptions{Resource: "a"})
	b := s.Login("bob", "pw-bob", testserver.LoginOptions{Resource: "b"})
	if err := b.SendRaw(`<presence/>`); err != nil {
		t.Fatal(err)
	}
	if err := a.SendRaw(`<message to="bob@localhost" type="chat" id="m1"><body>hi</body></message>`); err != nil {
		t.Fatal(err)
	}
	m, err := b.Next(func(e *router.Element) bool { return e.Name.Local == "message" })
	if err != nil {
		t.Fatal(err)
	}
	t.Log(m.String())
}
