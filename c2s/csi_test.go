package c2s_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

const nsCSI = "urn:xmpp:csi:0"

// The tests below prove that a stanza is held without waiting for it not
// to come: the client's <r/> is answered with <a/> through the session's
// queue, never held, so what comes before the <a/> was not held, and what
// comes only after a later trigger was.

// probe sends <r/> and returns the ids of the stanzas read before the <a/>.
func (c *smClient) probe(t *testing.T) []string {
	t.Helper()
	c.send(t, `<r xmlns="urn:xmpp:sm:3"/>`)
	var ids []string
	for {
		e := c.next(t)
		if isSM("a")(e) {
			return ids
		}
		if cond := testserver.StreamErrorCondition(e); cond != "" {
			t.Fatalf("probe: stream error %s", e)
		}
		if e.Name.Space == "" {
			ids = append(ids, e.Get("id"))
		}
	}
}

// checkSendCount acknowledges more than was sent, which makes the server
// close the stream saying how many stanzas it sent (XEP-0198 §6), and
// checks that this is what the client received: held stanzas are counted
// when they are written, not before.
func (c *smClient) checkSendCount(t *testing.T) {
	t.Helper()
	c.send(t, `<a xmlns="urn:xmpp:sm:3" h="100000"/>`)
	for {
		e := c.next(t)
		if testserver.StreamErrorCondition(e) == "" {
			continue
		}
		hc := e.Child(nsSM, "handled-count-too-high")
		if hc == nil || hc.Get("send-count") != fmt.Sprint(c.h) {
			t.Errorf("server's send count: %s, want send-count='%d' (what the client received)", e, c.h)
		}
		return
	}
}

// inactive logs local in with stream management (enable, as given) and
// initial presence, and makes the session inactive.
func inactive(t *testing.T, s *testserver.Server, local, resource, enable string) (*smClient, *router.Element) {
	t.Helper()
	c, enabled := loginSM(t, s, local, resource, enable)
	c.send(t, `<presence/>`)
	c.sync(t)
	c.send(t, `<inactive xmlns="urn:xmpp:csi:0"/>`)
	// The pong comes after the <inactive/> has been handled.
	c.sync(t)
	return c, enabled
}

// Stanzas from a contact to alice@localhost/phone, by id.
func presenceXML(id string) string {
	return `<presence id="` + id + `" to="alice@localhost/phone"><status>` + id + `</status></presence>`
}

func chatStateXML(id string) string {
	return `<message type="chat" id="` + id + `" to="alice@localhost/phone"><composing xmlns="http://jabber.org/protocol/chatstates"/><no-store xmlns="urn:xmpp:hints"/></message>`
}

func eventXML(id string) string {
	return `<message id="` + id + `" to="alice@localhost/phone"><event xmlns="http://jabber.org/protocol/pubsub#event"><items node="urn:xmpp:avatar:metadata"><item id="` + id + `"/></items></event></message>`
}

func bodyXML(id string) string {
	return `<message type="chat" id="` + id + `" to="alice@localhost/phone"><body>` + id + `</body></message>`
}

// TestCSIHolds checks XEP-0352 holding (csi.go): what an inactive client
// can wait for is held and comes, in order, before the next important
// stanza or on <active/>; only the latest presence of each contact comes;
// one held stanza over limits.csi_max_held flushes at once; and stream
// management counts what is written, held or not.
func TestCSIHolds(t *testing.T) {
	type sent struct {
		from string // bob or carol
		xml  string
	}
	for _, tc := range []struct {
		name string
		held []sent
		// early are the ids that come before the probe's <a/>: not held.
		early []string
		// trigger is sent by bob, or by alice if it starts with <active.
		trigger string
		want    []string // the ids after the probe, in order
	}{{
		name:    "message with a body flushes",
		held:    []sent{{"bob", presenceXML("p1")}, {"bob", chatStateXML("c1")}, {"carol", eventXML("e1")}},
		trigger: bodyXML("m1"),
		want:    []string{"p1", "c1", "e1", "m1"},
	}, {
		name: "latest presence per contact",
		held: []sent{
			{"bob", presenceXML("p1")}, {"carol", presenceXML("q1")}, {"bob", chatStateXML("c1")},
			{"bob", `<presence id="p2" type="unavailable" to="alice@localhost/phone"/>`},
		},
		trigger: bodyXML("m1"),
		want:    []string{"q1", "c1", "p2", "m1"},
	}, {
		name:    "active flushes",
		held:    []sent{{"bob", presenceXML("p1")}, {"bob", chatStateXML("c1")}},
		trigger: `<active xmlns="urn:xmpp:csi:0"/>`,
		want:    []string{"p1", "c1"},
	}, {
		name:    "call invitation flushes",
		held:    []sent{{"bob", chatStateXML("c1")}},
		trigger: `<message id="j1" to="alice@localhost/phone"><propose xmlns="urn:xmpp:jingle-message:0" id="call"><description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio"/></propose></message>`,
		want:    []string{"c1", "j1"},
	}, {
		name:    "IQ flushes",
		held:    []sent{{"bob", presenceXML("p1")}},
		trigger: `<iq type="get" id="i1" to="alice@localhost/phone"><query xmlns="jabber:iq:version"/></iq>`,
		want:    []string{"p1", "i1"},
	}, {
		name:    "receipt request flushes",
		held:    []sent{{"bob", chatStateXML("c1")}},
		trigger: `<message type="chat" id="r1" to="alice@localhost/phone"><active xmlns="http://jabber.org/protocol/chatstates"/><request xmlns="urn:xmpp:receipts"/></message>`,
		want:    []string{"c1", "r1"},
	}, {
		name:    "error flushes",
		held:    []sent{{"bob", eventXML("e1")}},
		trigger: `<message type="error" id="x1" to="alice@localhost/phone"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`,
		want:    []string{"e1", "x1"},
	}, {
		name: "over the bound flushes",
		held: []sent{
			{"bob", chatStateXML("c1")}, {"bob", presenceXML("p1")}, {"carol", eventXML("e1")},
			{"bob", chatStateXML("c2")}, {"bob", chatStateXML("c3")},
		},
		early:   []string{"c1", "p1", "e1", "c2"},
		trigger: bodyXML("m1"),
		want:    []string{"c3", "m1"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := testserver.Start(t, func(c *config.Config) { c.Limits.CSIMaxHeld = 3 })
			for _, u := range []string{"alice", "bob", "carol"} {
				s.AddUser(u, "pw")
			}
			alice, _ := inactive(t, s, "alice", "phone", `<enable xmlns="urn:xmpp:sm:3"/>`)
			users := map[string]*testserver.Client{
				"bob":   s.Login("bob", "pw", testserver.LoginOptions{}),
				"carol": s.Login("carol", "pw", testserver.LoginOptions{}),
			}
			for _, h := range tc.held {
				users[h.from].MustSend(t, h.xml)
				users[h.from].MustSync(t)
			}
			if got := alice.probe(t); !slices.Equal(got, tc.early) {
				t.Errorf("before the trigger alice got %v, want %v", got, tc.early)
			}
			if tc.trigger[:7] == "<active" {
				alice.send(t, tc.trigger)
			} else {
				users["bob"].MustSend(t, tc.trigger)
				users["bob"].MustSync(t)
			}
			// The probe again, not a ping, whose answer would flush:
			// the trigger went through at once and flushed.
			if got := alice.probe(t); !slices.Equal(got, tc.want) {
				t.Errorf("after the trigger alice got %v, want %v", got, tc.want)
			}
			alice.checkSendCount(t)
		})
	}
}

// TestCSIActiveStopsHolding checks that after <active/> nothing is held
// any more, and that a new <inactive/> holds again.
func TestCSIActiveStopsHolding(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	alice, _ := inactive(t, s, "alice", "phone", `<enable xmlns="urn:xmpp:sm:3"/>`)
	bob := s.Login("bob", "pw", testserver.LoginOptions{})
	alice.send(t, `<active xmlns="urn:xmpp:csi:0"/>`)
	alice.sync(t)
	bob.MustSend(t, chatStateXML("c1"))
	bob.MustSync(t)
	if got := alice.probe(t); !slices.Equal(got, []string{"c1"}) {
		t.Errorf("active: before the probe alice got %v, want [c1]", got)
	}
	alice.send(t, `<inactive xmlns="urn:xmpp:csi:0"/>`)
	alice.sync(t)
	bob.MustSend(t, chatStateXML("c2"))
	bob.MustSync(t)
	if got := alice.probe(t); len(got) != 0 {
		t.Errorf("inactive again: before the probe alice got %v, want nothing", got)
	}
	alice.checkSendCount(t)
}

// TestCSIResume checks holding across stream management resumption: what
// is held survives the lost connection, more is held while the session
// hibernates, and the resumed stream, active (XEP-0352 §4), gets it all
// once, counted as it is written.
func TestCSIResume(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	alice, enabled := inactive(t, s, "alice", "phone", enableResume)
	bob := s.Login("bob", "pw", testserver.LoginOptions{})
	bob.MustSend(t, presenceXML("p1"))
	bob.MustSend(t, chatStateXML("c1"))
	bob.MustSync(t)
	if got := alice.probe(t); len(got) != 0 {
		t.Fatalf("inactive: alice got %v before the probe, want nothing", got)
	}
	alice.cut()
	waitFor(t, "the session to hibernate", func() bool { return s.C2S.Hibernating() == 1 })
	bob.MustSend(t, chatStateXML("c2"))
	bob.MustSend(t, presenceXML("p2"))
	bob.MustSync(t)

	again := authOnly(t, s, "alice")
	again.h = alice.h
	again.send(t, fmt.Sprintf(`<resume xmlns="urn:xmpp:sm:3" previd="%s" h="%d"/>`, enabled.Get("id"), alice.h))
	again.until(t, "<resumed/>", isSM("resumed"))
	if got, want := again.probe(t), []string{"c1", "c2", "p2"}; !slices.Equal(got, want) {
		t.Errorf("after resumption alice got %v, want %v", got, want)
	}
	// Active now: nothing is held.
	bob.MustSend(t, chatStateXML("c3"))
	bob.MustSync(t)
	if got := again.probe(t); !slices.Equal(got, []string{"c3"}) {
		t.Errorf("resumed: before the probe alice got %v, want [c3]", got)
	}
	again.checkSendCount(t)
}

// TestCSIHeldAtEnd checks that what is held when the session ends is
// routed again like what was queued: a pubsub notification goes to offline
// storage (delivered at the next login with a delay, once), a chat state
// does not (XEP-0160 §3), whether the stream was closed or the session
// timed out hibernating.
func TestCSIHeldAtEnd(t *testing.T) {
	for _, tc := range []struct {
		name   string
		enable string
		end    func(*smClient)
	}{
		{"stream closed", `<enable xmlns="urn:xmpp:sm:3"/>`, func(c *smClient) { c.Send(`</stream:stream>`) }},
		{"resumption timeout", enableResume, (*smClient).cut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testserver.Start(t, func(c *config.Config) { c.Limits.ResumeTimeout = 20 * time.Millisecond })
			s.AddUser("alice", "pw")
			s.AddUser("bob", "pw")
			alice, _ := inactive(t, s, "alice", "phone", tc.enable)
			bob := s.Login("bob", "pw", testserver.LoginOptions{})
			bob.MustSend(t, presenceXML("p1"))
			bob.MustSend(t, chatStateXML("c1"))
			bob.MustSend(t, eventXML("e1"))
			bob.MustSync(t)
			if got := alice.probe(t); len(got) != 0 {
				t.Fatalf("inactive: alice got %v before the probe, want nothing", got)
			}
			done := ended(t, s, "alice@localhost/phone")
			tc.end(alice)
			wait(t, "the session to end", done)

			next := s.Login("alice", "pw", testserver.LoginOptions{Resource: "laptop"})
			next.MustSend(t, `<presence/>`)
			if m := next.MustNext(t, "e1", isMessage("e1")); m.Child("urn:xmpp:delay", "delay") == nil {
				t.Errorf("offline notification without delay: %s", m)
			}
			next.ExpectNone(t, "a held stanza twice or a stored chat state", func(e *router.Element) bool {
				return e.Get("id") == "e1" || e.Get("id") == "c1"
			})
		})
	}
}

// TestCSIFeature checks that CSI is advertised after authentication
// (XEP-0352 §3), and not before.
func TestCSIFeature(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	r, err := s.DialRawStartTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Features.Child(nsCSI, "csi") != nil {
		t.Errorf("CSI advertised before authentication: %s", r.Features)
	}
	if c := authOnly(t, s, "alice"); c.Features.Child(nsCSI, "csi") == nil {
		t.Errorf("no CSI in the features after authentication: %s", c.Features)
	}
}
