package push_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/push"
	"github.com/xmppd/xmppd/router"
)

// smPhone logs alice in on a raw connection as resource, enables stream
// management with resumption, push on node phone, and available
// presence: a phone app about to be frozen.
func smPhone(t *testing.T, s *testserver.Server, resource string) *testserver.Raw {
	t.Helper()
	c := s.LoginRaw("alice", "pw", resource)
	send := func(x string) {
		if err := c.Send(x); err != nil {
			t.Fatal(err)
		}
	}
	send(`<enable xmlns="urn:xmpp:sm:3" resume="true"/>`)
	for {
		e, err := c.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.Name.Space == "urn:xmpp:sm:3" && e.Name.Local == "enabled" {
			break
		}
		if e.Name.Space == "urn:xmpp:sm:3" && e.Name.Local == "failed" {
			t.Fatalf("sm enable failed: %s", e)
		}
	}
	resp, err := c.Request(`<iq type="set" id="e"><enable xmlns="urn:xmpp:push:0" jid="` + appAddr + `" node="phone"/></iq>`)
	if err != nil {
		t.Fatal(err)
	}
	testserver.WantResult(t, resp)
	send(`<presence><priority>1</priority></presence>`)
	if _, err := c.Request(`<iq type="get" id="p"><ping xmlns="urn:xmpp:ping"/></iq>`); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNotifyHibernating checks the trigger of stream management: a
// message to an account whose only session hibernates (its connection
// cut, no stream close) is pushed; while it was connected, or while
// another of its sessions is connected, nothing is.
func TestNotifyHibernating(t *testing.T) {
	o := push.DefaultOptions()
	s, app := start(t, storetest.Backend{Name: "sqlite"}, o)
	phone := smPhone(t, s, "phone")
	carol := s.Login("carol", "pw", testserver.LoginOptions{Resource: "desk"})
	send := func(id string) {
		carol.MustSend(t, `<message type="chat" id="`+id+`" to="alice@localhost"><body>`+id+`</body></message>`)
		carol.MustSync(t)
	}

	send("connected")
	app.sync(t, s, carol)
	app.none(t, "a message to a connected session")

	laptop := s.Login("alice", "pw", testserver.LoginOptions{Resource: "laptop"})
	laptop.MustSend(t, `<presence><priority>1</priority></presence>`)
	laptop.MustSync(t)
	phone.TLS.NetConn().Close()
	waitFor(t, "the phone to hibernate", func() bool { return s.C2S.Hibernating() == 1 })
	send("laptop-online")
	app.sync(t, s, carol)
	app.none(t, "a message while the laptop is connected")

	laptop.Close()
	waitFor(t, "the laptop to go", func() bool {
		for _, sess := range s.Router.Sessions().Sessions(mustBare("alice@localhost")) {
			if !router.Hibernating(sess) {
				return false
			}
		}
		return true
	})
	if n := len(s.Router.Sessions().Sessions(mustBare("alice@localhost"))); n != 1 {
		t.Fatalf("%d sessions of alice, want the hibernating phone", n)
	}
	send("hibernating")
	st := app.next(t, "a message to the hibernating phone")
	if f := summary(t, st); f["last-message-sender"] != "carol@localhost/desk" || f["message-count"] != "1" {
		t.Errorf("summary %v", f)
	}
	if _, ok := summary(t, st)["last-message-body"]; ok {
		t.Errorf("body in the notification by default: %s", st)
	}
	app.sync(t, s, carol)
	app.none(t, "one message, one notification")
}

// TestTwoHibernating checks that a message to the bare JID, handed to two
// hibernating sessions of equal priority, is notified once. The rate
// limit is as short as can be, so that it is not what holds back a
// second notification (time can only make this pass wrongly, never fail).
func TestTwoHibernating(t *testing.T) {
	o := push.DefaultOptions()
	o.MinInterval = time.Nanosecond
	s, app := start(t, storetest.Backend{Name: "sqlite"}, o)
	one, two := smPhone(t, s, "one"), smPhone(t, s, "two")
	one.TLS.NetConn().Close()
	two.TLS.NetConn().Close()
	waitFor(t, "both to hibernate", func() bool { return s.C2S.Hibernating() == 2 })
	carol := s.Login("carol", "pw", testserver.LoginOptions{Resource: "desk"})
	// With an id and without: a message is told from another by what
	// the router numbered it, not by its id.
	for i, m := range []string{
		`<message type="chat" id="m1" to="alice@localhost"><body>hi</body></message>`,
		`<message type="chat" to="alice@localhost"><body>no id</body></message>`,
	} {
		carol.MustSend(t, m)
		carol.MustSync(t)
		if f := summary(t, app.next(t, "the message")); f["message-count"] != fmt.Sprint(i+1) {
			t.Errorf("summary %v, want count %d", f, i+1)
		}
		app.sync(t, s, carol)
		app.none(t, "a second notification of the same message")
	}
}

// TestCallToHibernating checks issue 14's call case: a XEP-0353 propose
// (no body; Conversations sends it to the bare JID, Dino to each full JID)
// to a phone whose only session hibernates wakes the phone through its
// app server, once per call.
func TestCallToHibernating(t *testing.T) {
	for _, to := range []string{"alice@localhost", "alice@localhost/phone"} {
		t.Run(to, func(t *testing.T) {
			s, app := start(t, storetest.Backend{Name: "sqlite"}, push.DefaultOptions())
			phone := smPhone(t, s, "phone")
			carol := s.Login("carol", "pw", testserver.LoginOptions{Resource: "desk"})
			phone.TLS.NetConn().Close()
			waitFor(t, "the phone to hibernate", func() bool { return s.C2S.Hibernating() == 1 })
			carol.MustSend(t, `<message type="chat" id="call" to="`+to+`"><propose xmlns="urn:xmpp:jingle-message:0" id="c1"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video"/></propose><store xmlns="urn:xmpp:hints"/></message>`)
			carol.MustSync(t)
			if f := summary(t, app.next(t, "the call to the hibernating phone")); f["last-message-sender"] != "carol@localhost/desk" || f["message-count"] != "1" {
				t.Errorf("summary %v", f)
			}
			app.sync(t, s, carol)
			app.none(t, "one call, one notification")
		})
	}
}
