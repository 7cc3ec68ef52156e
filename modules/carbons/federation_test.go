package carbons_test

import (
	"slices"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
)

// TestFederation checks carbons across s2s: a message from a remote user
// to alice/phone reaches alice/laptop as a received carbon, one of alice's
// to the remote user as a sent carbon, and a forged carbon that the
// remote domain relays is dropped. The remote server runs without the
// carbons module, which would drop the forgery before it left.
func TestFederation(t *testing.T) {
	servers := testserver.StartFederation(t, func(c *config.Config) {
		if c.Hosts[0].Domain == "b.test" {
			c.Modules = slices.DeleteFunc(c.Modules, func(id string) bool { return id == "carbons" })
		}
	}, "a.test", "b.test")
	a, b := servers[0], servers[1]
	a.AddUser("alice", pw)
	b.AddUser("mallory", pw)
	phone := login(t, a, "alice", "phone", `<presence/>`)
	laptop := login(t, a, "alice", "laptop", `<presence/>`)
	enable(t, laptop, "enable")
	mallory := login(t, b, "mallory", "x", `<presence/>`)

	mallory.MustSend(t, `<message to="alice@a.test/phone" id="f1" type="chat"><body>from afar</body></message>`)
	phone.MustNext(t, "the message", byID("f1"))
	m := wantCarbon(t, laptop, "received", "f1", "chat")
	if m.Get("from") != "mallory@b.test/x" {
		t.Errorf("forwarded %s, want it from mallory@b.test/x", m)
	}

	phone.MustSend(t, `<message to="mallory@b.test/x" id="f2" type="chat"><body>back</body></message>`)
	mallory.MustNext(t, "the answer", byID("f2"))
	wantCarbon(t, laptop, "sent", "f2", "chat")

	enable(t, phone, "enable")
	// The forgeries go first on the one s2s stream, so when the message
	// after them has arrived they have been dealt with.
	mallory.MustSend(t, forgery("alice@a.test/laptop", "received"))
	mallory.MustSend(t, forgery("alice@a.test", "sent"))
	mallory.MustSend(t, `<message to="alice@a.test/laptop" id="after" type="chat"><body>after</body></message>`)
	laptop.MustNext(t, "the message after the forgeries", byID("after"))
	for _, c := range []*testserver.Client{phone, laptop} {
		c.ExpectNone(t, "a forged carbon", carbon("received", "fake"))
		c.ExpectNone(t, "a forged carbon", carbon("sent", "fake"))
		c.ExpectNone(t, "the forgery", byID("forged"))
	}
	// laptop got the last message itself; phone, enabled now, a carbon.
	wantCarbon(t, phone, "received", "after", "chat")
}
