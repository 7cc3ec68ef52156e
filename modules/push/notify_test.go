package push_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/push"
	"github.com/xmppd/xmppd/router"
)

// enable registers the app server for c's account under node, with the
// test's publish-options form.
func enable(t *testing.T, c *testserver.Client, node string) {
	t.Helper()
	testserver.WantResult(t, c.MustRequest(t, `<iq type="set" id="e"><enable xmlns="urn:xmpp:push:0" jid="`+appAddr+`" node="`+node+`">`+enableForm+`</enable></iq>`))
}

// registered enables push for alice on node and logs her out, so that
// she is offline.
func registered(t *testing.T, s *testserver.Server, node string) {
	t.Helper()
	alice := s.Login("alice", "pw", testserver.LoginOptions{})
	enable(t, alice, node)
	if err := alice.Close(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, s, "alice@localhost")
}

// waitGone waits until the account has no session bound.
func waitGone(t *testing.T, s *testserver.Server, bare string) {
	t.Helper()
	waitFor(t, bare+" to have no session", func() bool { return len(s.Router.Sessions().Sessions(jid.MustParse(bare))) == 0 })
}

// TestNotifyOffline checks the notification for an account with no
// session (the message goes to offline storage): its form, its publish
// options, the body only when the operator asks for it, and that what
// does not warrant a push (a chat state, a groupchat-less headline) gets
// none. Both storage backends.
func TestNotifyOffline(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		for _, includeBody := range []bool{false, true} {
			name := "without body"
			if includeBody {
				name = "with body"
			}
			t.Run(name, func(t *testing.T) {
				o := push.DefaultOptions()
				o.IncludeBody = includeBody
				s, app := start(t, b, o)
				registered(t, s, "phone")
				carol := s.Login("carol", "pw", testserver.LoginOptions{Resource: "desk"})
				carol.MustSend(t, `<message type="chat" id="cs" to="alice@localhost"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>`)
				carol.MustSend(t, `<message type="headline" id="h" to="alice@localhost"><body>news</body></message>`)
				carol.MustSend(t, `<message type="chat" id="m1" to="alice@localhost"><body>Wherefore art thou?</body></message>`)
				carol.MustSync(t)
				st := app.next(t, "the message")
				if !st.From.Equal(jid.MustParse("alice@localhost")) || st.Type() != "set" {
					t.Errorf("publish %s: want an iq set from alice's bare JID", st)
				}
				if node(st) != "phone" {
					t.Errorf("publish to node %q, want phone", node(st))
				}
				f := summary(t, st)
				want := map[string]string{
					"FORM_TYPE":           push.FormSummary,
					"message-count":       "1",
					"last-message-sender": "carol@localhost/desk",
				}
				if includeBody {
					want["last-message-body"] = "Wherefore art thou?"
				}
				if len(f) != len(want) {
					t.Errorf("summary fields %v, want %v", f, want)
				}
				for k, v := range want {
					if f[k] != v {
						t.Errorf("summary %s = %q, want %q", k, f[k], v)
					}
				}
				opts := st.Child(nsPubSub, "pubsub").Child(nsPubSub, "publish-options")
				if opts == nil || opts.Child("jabber:x:data", "x") == nil || !containsValue(opts.Child("jabber:x:data", "x"), "s3cr3t") {
					t.Errorf("publish without the stored publish-options: %s", st)
				}
				app.sync(t, s, carol)
				app.none(t, "after the sync")
			})
		}
	})
}

// containsValue tells whether a form has a field with value v.
func containsValue(x *router.Element, v string) bool {
	for _, f := range x.Elements() {
		if val := f.Child("jabber:x:data", "value"); val != nil && val.Text() == v {
			return true
		}
	}
	return false
}

// TestCallInvitation checks that a Jingle Message Initiation propose,
// which has no body, wakes the phone too.
func TestCallInvitation(t *testing.T) {
	s, app := start(t, storetest.Backend{Name: "sqlite"}, push.DefaultOptions())
	registered(t, s, "phone")
	carol := s.Login("carol", "pw", testserver.LoginOptions{Resource: "desk"})
	// Sent to the full JID of a resource that is gone: it falls back to
	// the bare JID, as RFC 6121 §8.5.3.2.1 says.
	carol.MustSend(t, `<message id="call" to="alice@localhost/phone"><propose xmlns="urn:xmpp:jingle-message:0" id="c1"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"/></propose></message>`)
	carol.MustSync(t)
	if f := summary(t, app.next(t, "the call")); f["last-message-sender"] != "carol@localhost/desk" {
		t.Errorf("summary %v", f)
	}
}

// TestErrorDisables checks XEP-0357 §7.1: an app server that answers a
// publish with an error is no longer notified, and its registration is
// gone from storage; an error of type wait, or one that says the app
// server could not be reached (here s2s is off: remote-server-not-found),
// keeps the registration.
func TestErrorDisables(t *testing.T) {
	s, app := start(t, storetest.Backend{Name: "sqlite"}, push.DefaultOptions(), func(c *config.Config) { c.S2S.Enabled = false })
	alice := s.Login("alice", "pw", testserver.LoginOptions{})
	for _, n := range []string{refuse, busy, "good"} {
		enable(t, alice, n)
	}
	testserver.WantResult(t, alice.MustRequest(t, `<iq type="set" id="e"><enable xmlns="urn:xmpp:push:0" jid="push.remote.example" node="far"/></iq>`))
	alice.Close()
	waitGone(t, s, "alice@localhost")
	carol := s.Login("carol", "pw", testserver.LoginOptions{})
	carol.MustSend(t, `<message type="chat" id="m1" to="alice@localhost"><body>one</body></message>`)
	carol.MustSync(t)
	got := map[string]bool{}
	for range 3 {
		got[node(app.next(t, "a publish"))] = true
	}
	if !got[refuse] || !got[busy] || !got["good"] {
		t.Fatalf("published to %v, want refuse, busy and good", got)
	}
	app.sync(t, s, carol)
	if nodes, want := nodesOf(t, s, "alice@localhost"), []string{busy, "good", "far"}; !slices.Equal(nodes, want) {
		t.Errorf("registrations after the errors: %q, want %q", nodes, want)
	}
}

// TestRateLimit checks min_interval: a second message within it is not
// pushed but counted, and an account that comes back online, or only
// sends a stanza, starts again. The interval is far longer than the test, so that no clock
// decides.
func TestRateLimit(t *testing.T) {
	o := push.DefaultOptions()
	o.MinInterval = 24 * 60 * 60 * 1e9
	s, app := start(t, storetest.Backend{Name: "sqlite"}, o)
	registered(t, s, "phone")
	carol := s.Login("carol", "pw", testserver.LoginOptions{})
	send := func(id string) {
		carol.MustSend(t, `<message type="chat" id="`+id+`" to="alice@localhost"><body>`+id+`</body></message>`)
		carol.MustSync(t)
	}
	send("m1")
	if f := summary(t, app.next(t, "m1")); f["message-count"] != "1" {
		t.Errorf("first count %s, want 1", f["message-count"])
	}
	send("m2")
	send("m3")
	// The server answers a query to alice's bare JID from it (here an
	// error, as carol has no subscription): that is not alice coming
	// back.
	carol.MustRequest(t, `<iq type="get" id="q" to="alice@localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	send("m3b")
	app.sync(t, s, carol)
	app.none(t, "within min_interval")

	// Alice comes back and leaves: the limit starts again. Without
	// presence (as a resumed session does), an IQ is enough.
	for _, visit := range []struct{ id, send string }{{"m4", `<presence/>`}, {"m5", ""}} {
		alice := s.Login("alice", "pw", testserver.LoginOptions{})
		if visit.send != "" {
			alice.MustSend(t, visit.send)
		}
		alice.MustSync(t)
		alice.Close()
		waitGone(t, s, "alice@localhost")
		send(visit.id)
		if f := summary(t, app.next(t, visit.id)); f["message-count"] != "1" {
			t.Errorf("count after coming back (%q) %s, want 1", visit.send, f["message-count"])
		}
	}
}

// TestHeldNotified checks that what min_interval holds back is notified
// when the interval is over, though no message follows: the phone learns
// of the last messages of a burst. The count says both messages, whether
// the second was held (the interval is long enough for that on any
// machine but one that takes a second to route a message) or not.
func TestHeldNotified(t *testing.T) {
	o := push.DefaultOptions()
	o.MinInterval = time.Second
	s, app := start(t, storetest.Backend{Name: "sqlite"}, o)
	registered(t, s, "phone")
	carol := s.Login("carol", "pw", testserver.LoginOptions{Resource: "desk"})
	s.AddUser("dave", "pw")
	dave := s.Login("dave", "pw", testserver.LoginOptions{Resource: "desk"})
	carol.MustSend(t, `<message type="chat" id="m1" to="alice@localhost"><body>one</body></message>`)
	carol.MustSync(t)
	if f := summary(t, app.next(t, "m1")); f["message-count"] != "1" {
		t.Errorf("first summary %v", f)
	}
	dave.MustSend(t, `<message type="chat" id="m2" to="alice@localhost"><body>two</body></message>`)
	dave.MustSync(t)
	f := summary(t, app.next(t, "what the interval held"))
	if f["message-count"] != "2" || f["last-message-sender"] != "dave@localhost/desk" {
		t.Errorf("summary of what was held %v, want count 2 from dave", f)
	}
}

// TestRegistrationSurvivesRestart checks that a registration made before
// a restart is notified after it, on both storage backends.
func TestRegistrationSurvivesRestart(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		first, _ := start(t, b, push.DefaultOptions())
		registered(t, first, "phone")
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := first.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		o := push.DefaultOptions()
		o.Workers = 1
		second := testserver.StartOn(t, b, func(c *config.Config) {
			c.Storage = first.Config.Storage
			testserver.EnableModules(c, "push")
			c.SetModuleOptions("push", o)
		})
		app := addAppServer(t, second, appAddr)
		carol := second.Login("carol", "pw", testserver.LoginOptions{})
		carol.MustSend(t, `<message type="chat" id="m1" to="alice@localhost"><body>still there?</body></message>`)
		carol.MustSync(t)
		if n := node(app.next(t, "the message after the restart")); n != "phone" {
			t.Errorf("published to node %q, want phone", n)
		}
	})
}

// TestNotifyOverFederation checks a notification to an app server on
// another domain, over s2s: the publish arrives from the user's bare JID,
// and the app server's error answer, which comes back over s2s too,
// disables the registration.
func TestNotifyOverFederation(t *testing.T) {
	o := push.DefaultOptions()
	o.Workers = 1
	const remoteApp = "push.b.example"
	var f *testserver.Federation
	f = testserver.NewFederation(t, func(c *config.Config) {
		if c.Hosts[0].Domain == "a.example" {
			c.S2S.Routes[remoteApp] = f.Addr("b.example")
			testserver.EnableModules(c, "push")
			c.SetModuleOptions("push", o)
		}
	}, "a.example", "b.example")
	a, b := f.Start("a.example"), f.Start("b.example")
	app := addAppServer(t, b, remoteApp)
	owner := a.AddUser("alice", "pw")
	a.AddUser("carol", "pw")
	alice := a.Login("alice", "pw", testserver.LoginOptions{})
	for _, n := range []string{"phone", refuse} {
		testserver.WantResult(t, alice.MustRequest(t, `<iq type="set" id="e"><enable xmlns="urn:xmpp:push:0" jid="`+remoteApp+`" node="`+n+`"/></iq>`))
	}
	alice.Close()
	waitGone(t, a, owner.String())
	carol := a.Login("carol", "pw", testserver.LoginOptions{Resource: "desk"})
	carol.MustSend(t, `<message type="chat" id="m1" to="alice@a.example"><body>far away</body></message>`)
	carol.MustSync(t)
	nodes := map[string]bool{}
	for range 2 {
		st := app.next(t, "a publish over s2s")
		if !st.From.Equal(owner) {
			t.Errorf("publish from %s, want %s", st.From, owner)
		}
		if f := summary(t, st); f["last-message-sender"] != "carol@a.example/desk" {
			t.Errorf("summary %v", f)
		}
		nodes[node(st)] = true
	}
	if !nodes["phone"] || !nodes[refuse] {
		t.Fatalf("published to %v, want phone and refuse", nodes)
	}
	waitFor(t, "the refused registration to be disabled", func() bool {
		return slices.Equal(nodesOf(t, a, owner.String()), []string{"phone"})
	})
}
