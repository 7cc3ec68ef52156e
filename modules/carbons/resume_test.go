package carbons_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// TestHibernationTimeout checks carbons together with XEP-0198 §5: a
// phone that hibernates on messages it never acknowledged, and times out,
// has them routed again to the account's other resources; one that already
// got a carbon of a message does not get the message a second time, and
// one that did not gets it.
func TestHibernationTimeout(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, func(c *config.Config) {
			testserver.EnableModules(c, "carbons")
			c.Limits.ResumeTimeout = 20 * time.Millisecond
		})
		s.AddUser("alice", pw)
		s.AddUser("bob", pw)
		desk := login(t, s, "alice", "desk", `<presence/>`)
		enable(t, desk, "enable")
		laptop := login(t, s, "alice", "laptop", `<presence/>`) // carbons off

		phone := s.LoginRaw("alice", pw, "phone")
		for _, x := range []string{
			`<enable xmlns="urn:xmpp:sm:3" resume="true"/>`,
			`<presence><priority>5</priority></presence>`,
			`<iq type="set" id="c"><enable xmlns="urn:xmpp:carbons:2"/></iq>`,
		} {
			if err := phone.Send(x); err != nil {
				t.Fatal(err)
			}
		}
		rawUntil(t, phone, func(e *router.Element) bool { return e.Get("id") == "c" })

		bob := login(t, s, "bob", "x", `<presence/>`)
		// t1 to the phone's full JID, t2 to the bare JID, which the
		// phone alone gets at the highest priority.
		bob.MustSend(t, `<message to="alice@localhost/phone" id="t1" type="chat"><body>one</body></message>`)
		bob.MustSend(t, `<message to="alice@localhost" id="t2" type="chat"><body>two</body></message>`)
		bob.MustSync(t)
		rawUntil(t, phone, func(e *router.Element) bool { return e.Get("id") == "t2" }) // never acknowledged
		for _, id := range []string{"t1", "t2"} {
			wantCarbon(t, desk, "received", id, "chat")
		}

		done := make(chan struct{})
		var once sync.Once
		reg := s.Router.OnSessionEnd("test", 0, func(_ context.Context, sess router.Session) {
			if sess.JID().String() == "alice@localhost/phone" {
				once.Do(func() { close(done) })
			}
		})
		t.Cleanup(reg.Remove)
		phone.TLS.NetConn().Close() // no </stream>: the session hibernates
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("the phone's session did not time out")
		}

		for _, id := range []string{"t1", "t2"} {
			laptop.MustNext(t, "the rerouted "+id, byID(id))
		}
		laptop.ExpectNone(t, "a message twice", byID(""))
		desk.ExpectNone(t, "a message it has a carbon of", func(e *router.Element) bool {
			return e.Name.Local == "message" && !anyCarbon(e)
		})
		desk.ExpectNone(t, "another carbon", anyCarbon)
	})
}

// rawUntil reads from c until match accepts an element.
func rawUntil(t *testing.T, c *testserver.Raw, match func(*router.Element) bool) {
	t.Helper()
	for {
		e, err := c.Next()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if match(e) {
			return
		}
	}
}
