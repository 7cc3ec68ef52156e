package c2s_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

const nsSM = "urn:xmpp:sm:3"

// smClient is a raw client that counts, as XEP-0198 §4 asks, the stanzas
// it has handled, so that its h is exact.
type smClient struct {
	*testserver.Raw
	h uint32
	// requests counts the server's <r/>.
	requests int
}

// next reads the next element, counting stanzas and the server's <r/>.
func (c *smClient) next(t testing.TB) *router.Element {
	t.Helper()
	e, err := c.Next()
	if err != nil {
		t.Fatalf("sm client: read: %v", err)
	}
	switch {
	case e.Name.Space == "":
		c.h++
	case e.Name.Space == nsSM && e.Name.Local == "r":
		c.requests++
	}
	return e
}

// until reads until match accepts an element, and returns it.
func (c *smClient) until(t testing.TB, what string, match func(*router.Element) bool) *router.Element {
	t.Helper()
	for {
		if e := c.next(t); match(e) {
			return e
		} else if testserver.StreamErrorCondition(e) != "" {
			t.Fatalf("waiting for %s: stream error %s", what, e)
		}
	}
}

// isSM matches a stream management element.
func isSM(local string) func(*router.Element) bool {
	return func(e *router.Element) bool { return e.Name.Space == nsSM && e.Name.Local == local }
}

// send sends xml, failing t on error.
func (c *smClient) send(t testing.TB, xml string) {
	t.Helper()
	if err := c.Send(xml); err != nil {
		t.Fatalf("sm client: send: %v", err)
	}
}

// sync sends a ping to the server and reads up to its answer, collecting
// the ids of the messages on the way.
func (c *smClient) sync(t testing.TB) (messages []string) {
	t.Helper()
	id := "sync-" + router.NewID()
	c.send(t, `<iq type="get" id="`+id+`"><ping xmlns="urn:xmpp:ping"/></iq>`)
	return c.messagesUntil(t, func(e *router.Element) bool { return e.Name.Local == "iq" && e.Get("id") == id })
}

// messagesUntil reads up to the first element that end matches, and
// returns the ids of the messages on the way; a stream error fails t.
func (c *smClient) messagesUntil(t testing.TB, end func(*router.Element) bool) (messages []string) {
	t.Helper()
	for {
		e := c.next(t)
		if cond := testserver.StreamErrorCondition(e); cond != "" {
			t.Fatalf("stream error %s", e)
		}
		if e.Name.Local == "message" {
			messages = append(messages, e.Get("id"))
		}
		if end(e) {
			return messages
		}
	}
}

// cut drops the TCP connection under the stream without closing the
// stream or TLS: what a phone losing its network does.
func (c *smClient) cut() { c.TLS.NetConn().Close() }

// loginSM logs local in on a raw connection with resource and enables stream
// management; it returns the client and the <enabled/>.
func loginSM(t *testing.T, s *testserver.Server, local, resource, enable string) (*smClient, *router.Element) {
	t.Helper()
	c := &smClient{Raw: s.LoginRaw(local, "pw", resource)}
	c.send(t, enable)
	return c, c.until(t, "<enabled/>", func(e *router.Element) bool { return isSM("enabled")(e) || isSM("failed")(e) })
}

// authOnly opens a new connection and authenticates local without binding,
// where <resume/> is sent.
func authOnly(t *testing.T, s *testserver.Server, local string) *smClient {
	t.Helper()
	r, err := s.DialRaw()
	if err == nil {
		_, err = r.Open(testserver.Header)
	}
	if err == nil {
		err = r.StartTLS(nil)
	}
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if cond, err := r.AuthPlain(local, "pw"); err != nil || cond != "" {
		t.Fatalf("auth %s: %q %v", local, cond, err)
	}
	if r.Features.Child(nsSM, "sm") == nil {
		t.Fatalf("no stream management in the features after SASL: %s", r.Features)
	}
	return &smClient{Raw: r}
}

// waitFor polls cond until it holds; rawWait only bounds a failure.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(rawWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// ended returns a channel closed once the session of full has ended,
// including the routing of what it held (the session-end event comes
// last).
func ended(t *testing.T, s *testserver.Server, full string) <-chan struct{} {
	t.Helper()
	done := make(chan struct{})
	var once sync.Once
	reg := s.Router.OnSessionEnd("test", 0, func(_ context.Context, sess router.Session) {
		if sess.JID().String() == full {
			once.Do(func() { close(done) })
		}
	})
	t.Cleanup(reg.Remove)
	return done
}

// wait waits for ch to be closed; rawWait only bounds a failure.
func wait(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(rawWait):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// sendMessages has from send chat messages with the ids given to to, and
// syncs, so that the server has routed them all.
func sendMessages(t *testing.T, from *testserver.Client, to string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		from.MustSend(t, `<message type="chat" id="`+id+`" to="`+to+`"><body>`+id+`</body></message>`)
	}
	from.MustSync(t)
}

const enableResume = `<enable xmlns="urn:xmpp:sm:3" resume="true"/>`

// TestSMResume checks resumption end to end (XEP-0198 §5): a client
// receives messages, its TCP connection is cut while more arrive, and on a
// new connection it resumes and gets each message exactly once, with the
// same full JID, presence and counters.
func TestSMResume(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	alice, enabled := loginSM(t, s, "alice", "phone", enableResume)
	id := enabled.Get("id")
	if enabled.Name.Local != "enabled" || enabled.Get("resume") != "true" || len(id) < 22 {
		t.Fatalf("enable: got %s, want <enabled resume='true'> with a long id", enabled)
	}
	if enabled.Get("max") != "300" {
		t.Errorf("enabled max=%q, want 300 (the default resume_timeout)", enabled.Get("max"))
	}
	alice.send(t, `<presence><priority>5</priority></presence>`)
	const full = "alice@localhost/phone"
	bob := s.Login("bob", "pw", testserver.LoginOptions{})
	sendMessages(t, bob, full, "m1", "m2", "m3")
	seen := map[string]int{}
	for len(seen) < 3 {
		if e := alice.next(t); e.Name.Local == "message" {
			seen[e.Get("id")]++
		}
	}
	alice.cut()
	waitFor(t, "the session to hibernate", func() bool { return s.C2S.Hibernating() == 1 })
	// Hibernating, the session is still bound and available: presence to
	// contacts does not change.
	sess := s.Router.Sessions().Lookup(mustJID(t, full))
	if sess == nil || !sess.Available() || sess.Priority() != 5 {
		t.Fatalf("hibernating session: %v, want it bound and available with priority 5", sess)
	}
	sendMessages(t, bob, full, "m4", "m5")
	sendMessages(t, bob, "alice@localhost", "m6")

	again := authOnly(t, s, "alice")
	again.h = alice.h
	again.send(t, fmt.Sprintf(`<resume xmlns="urn:xmpp:sm:3" previd="%s" h="%d"/>`, id, alice.h))
	resumed := again.until(t, "<resumed/>", func(e *router.Element) bool { return isSM("resumed")(e) || isSM("failed")(e) })
	if resumed.Name.Local != "resumed" || resumed.Get("previd") != id {
		t.Fatalf("resume: got %s", resumed)
	}
	// alice sent one stanza (her presence) after enabling.
	if resumed.Get("h") != "1" {
		t.Errorf("resumed h=%q, want 1", resumed.Get("h"))
	}
	if s.C2S.Hibernating() != 0 {
		t.Errorf("%d sessions still hibernating after resumption", s.C2S.Hibernating())
	}
	for _, m := range again.sync(t) {
		seen[m]++
	}
	for _, m := range []string{"m1", "m2", "m3", "m4", "m5", "m6"} {
		if seen[m] != 1 {
			t.Errorf("message %s received %d times, want exactly once", m, seen[m])
		}
	}
	// The resumed session is the same: same full JID, same counters.
	again.send(t, `<message type="chat" id="back" to="`+bob.LocalAddr().String()+`"><body>back</body></message>`)
	m := bob.MustNext(t, "alice's message", isMessage("back"))
	if m.Get("from") != full {
		t.Errorf("message from %q after resumption, want %q", m.Get("from"), full)
	}
	again.send(t, `<r xmlns="urn:xmpp:sm:3"/>`)
	a := again.until(t, "<a/>", isSM("a"))
	if a.Get("h") != "3" { // presence, ping, message
		t.Errorf("after resumption <a h=%q>, want 3", a.Get("h"))
	}
	if sess2 := s.Router.Sessions().Lookup(mustJID(t, full)); sess2 != sess || !sess2.Available() {
		t.Errorf("after resumption the registry holds %v, want the same available session", sess2)
	}
}

// TestSMResumeRefused checks the failures of XEP-0198 §5: an id of another
// account, an unknown id and the id of a session that has ended get
// <failed><item-not-found/></failed>, after which the client may bind, and a
// refused resumption leaves the hibernating session alone. (After a
// timeout: TestSMTimeout.)
func TestSMResumeRefused(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	s.AddUser("mallory", "pw")
	alice, enabled := loginSM(t, s, "alice", "phone", enableResume)
	id := enabled.Get("id")
	alice.cut()
	waitFor(t, "the session to hibernate", func() bool { return s.C2S.Hibernating() == 1 })

	// wantH is the h the <failed/> must carry, "" for none: only the
	// account of a session that ended learns what the server handled.
	refuse := func(t *testing.T, local, previd, wantH string) {
		t.Helper()
		c := authOnly(t, s, local)
		c.send(t, `<resume xmlns="urn:xmpp:sm:3" previd="`+previd+`" h="0"/>`)
		f := c.until(t, "<failed/>", func(e *router.Element) bool { return isSM("failed")(e) || isSM("resumed")(e) })
		if f.Name.Local != "failed" || f.Child(router.NSStanzas, "item-not-found") == nil {
			t.Fatalf("resume of %q by %s: got %s, want <failed><item-not-found/>", previd, local, f)
		}
		if got := f.Get("h"); got != wantH {
			t.Errorf("resume of %q by %s: <failed h=%q/>, want h=%q", previd, local, got, wantH)
		}
		// §5: the client may bind instead, on the same stream.
		if _, err := c.Bind(""); err != nil {
			t.Fatalf("bind after failed resumption: %v", err)
		}
	}
	t.Run("another account", func(t *testing.T) { refuse(t, "mallory", id, "") })
	t.Run("unknown id", func(t *testing.T) { refuse(t, "alice", "x"+id, "") })
	if s.C2S.Hibernating() != 1 {
		t.Fatalf("a refused resumption ended the hibernating session")
	}
	// Resumed once, then closed with </stream:stream>: the id is spent.
	c := authOnly(t, s, "alice")
	c.send(t, `<resume xmlns="urn:xmpp:sm:3" previd="`+id+`" h="0"/>`)
	c.until(t, "<resumed/>", isSM("resumed"))
	// Three stanzas the server handles, for h to count: two pings and
	// sync's.
	c.send(t, `<iq type="get" id="p1"><ping xmlns="urn:xmpp:ping"/></iq>`)
	c.send(t, `<iq type="get" id="p2"><ping xmlns="urn:xmpp:ping"/></iq>`)
	c.sync(t)
	done := ended(t, s, "alice@localhost/phone")
	c.send(t, `</stream:stream>`)
	wait(t, "the session to end", done)
	t.Run("second use", func(t *testing.T) { refuse(t, "alice", id, "3") })
	t.Run("second use by another account", func(t *testing.T) { refuse(t, "mallory", id, "") })
}

// TestSMResumeConflict checks that resuming a session whose old connection
// is still open closes that one with a conflict stream error.
func TestSMResumeConflict(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	old, enabled := loginSM(t, s, "alice", "phone", enableResume)
	old.sync(t)
	c := authOnly(t, s, "alice")
	c.send(t, `<resume xmlns="urn:xmpp:sm:3" previd="`+enabled.Get("id")+`" h="0"/>`)
	c.until(t, "<resumed/>", isSM("resumed"))
	cond, err := old.WaitStreamError(rawWait)
	if err != nil || cond != "conflict" {
		t.Fatalf("old connection: %q %v; want a conflict stream error", cond, err)
	}
	bob := s.Login("bob", "pw", testserver.LoginOptions{})
	sendMessages(t, bob, "alice@localhost/phone", "after")
	if got := c.sync(t); len(got) != 1 || got[0] != "after" {
		t.Errorf("resumed connection got messages %v, want [after]", got)
	}
}

// TestSMTimeout checks that a hibernating session that is not resumed in
// time ends, its unacknowledged messages go to offline storage and come at
// the next login, with a delay, exactly once; and its id is then refused.
func TestSMTimeout(t *testing.T) {
	// On every store: the unacknowledged messages go to offline storage.
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, func(c *config.Config) { c.Limits.ResumeTimeout = 20 * time.Millisecond })
		s.AddUser("alice", "pw")
		s.AddUser("bob", "pw")
		alice, enabled := loginSM(t, s, "alice", "phone", enableResume)
		if enabled.Get("max") != "1" {
			t.Errorf("max=%q for a 20ms timeout, want 1 (whole seconds, rounded up)", enabled.Get("max"))
		}
		alice.send(t, `<presence/>`)
		bob := s.Login("bob", "pw", testserver.LoginOptions{})
		sendMessages(t, bob, "alice@localhost/phone", "u1", "u2")
		alice.until(t, "u2", isMessage("u2")) // read, never acknowledged
		done := ended(t, s, "alice@localhost/phone")
		alice.cut()
		wait(t, "the session to end", done)

		c := authOnly(t, s, "alice")
		c.send(t, `<resume xmlns="urn:xmpp:sm:3" previd="`+enabled.Get("id")+`" h="2"/>`)
		f := c.until(t, "<failed/>", func(e *router.Element) bool { return isSM("failed")(e) || isSM("resumed")(e) })
		if f.Child(router.NSStanzas, "item-not-found") == nil {
			t.Fatalf("resume after timeout: got %s, want item-not-found", f)
		}
		if f.Get("h") != "1" {
			// alice's presence was the one stanza handled.
			t.Errorf("resume after timeout: <failed h=%q/>, want h=\"1\"", f.Get("h"))
		}

		next := s.Login("alice", "pw", testserver.LoginOptions{Resource: "laptop"})
		next.MustSend(t, `<presence/>`)
		for _, id := range []string{"u1", "u2"} {
			m := next.MustNext(t, id, isMessage(id))
			if m.Child("urn:xmpp:delay", "delay") == nil {
				t.Errorf("offline message %s without delay: %s", id, m)
			}
		}
		next.ExpectNone(t, "a message twice", isMessage(""))
	})
}

// TestSMAcks checks acknowledgements both ways (XEP-0198 §4): the server
// asks after limits.sm_ack_after stanzas, answers <r/> with what it
// handled, takes <a/>, and closes a stream whose h is above what it sent
// with undefined-condition.
func TestSMAcks(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) { c.Limits.SMAckAfter = 2 })
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	alice, enabled := loginSM(t, s, "alice", "phone", `<enable xmlns="urn:xmpp:sm:3"/>`)
	if enabled.Name.Local != "enabled" || enabled.Get("id") != "" || enabled.Get("resume") != "" {
		t.Fatalf("enable without resume: got %s", enabled)
	}
	bob := s.Login("bob", "pw", testserver.LoginOptions{})
	sendMessages(t, bob, "alice@localhost/phone", "a1", "a2")
	alice.until(t, "<r/>", isSM("r"))
	if alice.h != 2 {
		t.Fatalf("<r/> after %d stanzas, want 2", alice.h)
	}
	alice.send(t, `<a xmlns="urn:xmpp:sm:3" h="2"/>`)
	alice.send(t, `<message type="chat" to="bob@localhost" id="x"><body>x</body></message>`)
	alice.send(t, `<r xmlns="urn:xmpp:sm:3"/>`)
	if a := alice.until(t, "<a/>", isSM("a")); a.Get("h") != "1" {
		t.Errorf("<a h=%q>, want 1", a.Get("h"))
	}
	// A second enable fails, the stream goes on.
	alice.send(t, `<enable xmlns="urn:xmpp:sm:3"/>`)
	if f := alice.until(t, "<failed/>", isSM("failed")); f.Child(router.NSStanzas, "unexpected-request") == nil {
		t.Errorf("second enable: %s, want unexpected-request", f)
	}
	alice.sync(t)
	alice.send(t, `<a xmlns="urn:xmpp:sm:3" h="100"/>`)
	for {
		e := alice.next(t)
		if testserver.StreamErrorCondition(e) == "" {
			continue
		}
		if testserver.StreamErrorCondition(e) != "undefined-condition" {
			t.Fatalf("h too high: %s, want undefined-condition", e)
		}
		hc := e.Child(nsSM, "handled-count-too-high")
		if hc == nil || hc.Get("h") != "100" || hc.Get("send-count") != strconv.Itoa(int(alice.h)) {
			t.Errorf("h too high: %s, want <handled-count-too-high h='100' send-count='%d'/>", e, alice.h)
		}
		break
	}
}

// TestSMAckInterval checks limits.sm_ack_interval: a stanza left
// unacknowledged gets an <r/> in time even when fewer than
// limits.sm_ack_after stanzas went out, and again after an ack.
func TestSMAckInterval(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) {
		c.Limits.SMAckAfter = 1000
		c.Limits.SMAckInterval = time.Millisecond
	})
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	alice, _ := loginSM(t, s, "alice", "phone", `<enable xmlns="urn:xmpp:sm:3"/>`)
	bob := s.Login("bob", "pw", testserver.LoginOptions{})
	for i, id := range []string{"t1", "t2"} {
		sendMessages(t, bob, "alice@localhost/phone", id)
		alice.until(t, "<r/>", isSM("r"))
		if alice.h != uint32(i+1) {
			t.Fatalf("<r/> after %d stanzas, want %d", alice.h, i+1)
		}
		alice.send(t, fmt.Sprintf(`<a xmlns="urn:xmpp:sm:3" h="%d"/>`, alice.h))
	}
}

// TestSMBeforeBind checks the order XEP-0198 §3 enforces: <enable/> before
// binding fails with unexpected-request and the stream goes on.
func TestSMBeforeBind(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	c := authOnly(t, s, "alice")
	c.send(t, `<enable xmlns="urn:xmpp:sm:3"/>`)
	if f := c.until(t, "<failed/>", isSM("failed")); f.Child(router.NSStanzas, "unexpected-request") == nil {
		t.Fatalf("enable before bind: %s", f)
	}
	if _, err := c.Bind(""); err != nil {
		t.Fatalf("bind: %v", err)
	}
}

// TestSMUndelivered checks XEP-0198 §5 for a session that ends without
// resumption: its unacknowledged messages go to offline storage (no other
// resource being available), and an unanswered IQ request gets an error,
// while what the client acknowledged is not delivered again.
func TestSMUndelivered(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	alice, _ := loginSM(t, s, "alice", "phone", `<enable xmlns="urn:xmpp:sm:3"/>`)
	bob := s.Login("bob", "pw", testserver.LoginOptions{})
	sendMessages(t, bob, "alice@localhost/phone", "acked")
	alice.until(t, "acked", isMessage("acked"))
	alice.send(t, fmt.Sprintf(`<a xmlns="urn:xmpp:sm:3" h="%d"/>`, alice.h))
	sendMessages(t, bob, "alice@localhost/phone", "lost")
	bob.MustSend(t, `<iq type="get" id="q1" to="alice@localhost/phone"><query xmlns="jabber:iq:version"/></iq>`)
	alice.until(t, "the IQ", func(e *router.Element) bool { return e.Get("id") == "q1" })
	done := ended(t, s, "alice@localhost/phone")
	alice.send(t, `</stream:stream>`)
	wait(t, "the session to end", done)
	e := bob.MustNext(t, "the IQ error", func(e *router.Element) bool { return e.Get("id") == "q1" })
	testserver.WantIQError(t, e, "service-unavailable", "cancel")

	next := s.Login("alice", "pw", testserver.LoginOptions{Resource: "laptop"})
	next.MustSend(t, `<presence/>`)
	if m := next.MustNext(t, "lost", isMessage("lost")); m.Child("urn:xmpp:delay", "delay") == nil {
		t.Errorf("offline message without delay: %s", m)
	}
	next.ExpectNone(t, "an acknowledged message again", isMessage("acked"))
}

// TestSMUnackedLimit checks limits.sm_max_unacked and
// limits.sm_max_unacked_bytes: a client that does not acknowledge is closed
// with resource-constraint, and what it did not acknowledge is kept for it.
func TestSMUnackedLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit func(*config.Limits)
	}{
		{"stanzas", func(l *config.Limits) { l.SMMaxUnacked = 2 }},
		// Each message is about 150 bytes as written: the third does not
		// start while 300 are unacked.
		{"bytes", func(l *config.Limits) { l.SMMaxUnackedBytes = 250 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testserver.Start(t, func(c *config.Config) {
				tc.limit(&c.Limits)
				c.Limits.SMAckAfter = 100 // only the window asks
			})
			s.AddUser("alice", "pw")
			s.AddUser("bob", "pw")
			alice, _ := loginSM(t, s, "alice", "phone", enableResume)
			bob := s.Login("bob", "pw", testserver.LoginOptions{})
			sendMessages(t, bob, "alice@localhost/phone", "l1", "l2", "l3", "l4", "l5")
			// Two messages fill the window; the server asks for an ack
			// and writes nothing more until it comes.
			got := alice.messagesUntil(t, isSM("r"))
			if !slices.Equal(got, []string{"l1", "l2"}) {
				t.Fatalf("before the ack request: %q, want [l1 l2]", got)
			}
			alice.send(t, `<a xmlns="urn:xmpp:sm:3" h="2"/>`)
			for _, id := range []string{"l3", "l4"} {
				alice.until(t, id, isMessage(id))
			}
			alice.until(t, "<r/>", isSM("r"))
			alice.send(t, `<a xmlns="urn:xmpp:sm:3" h="4"/>`)
			alice.until(t, "l5", isMessage("l5"))
			// Nothing was lost or repeated: the rest arrives in order.
			if msgs := alice.sync(t); len(msgs) != 0 {
				t.Errorf("after l5: %q, want nothing more", msgs)
			}
		})
	}
}

// TestSMHibernationLimit checks limits.max_hibernating_per_user: when a
// session over it drops, the account's oldest hibernating session ends and
// the new one hibernates (the device most likely to come back).
func TestSMHibernationLimit(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) { c.Limits.MaxHibernatingPerUser = 1 })
	s.AddUser("alice", "pw")
	one, enabledOne := loginSM(t, s, "alice", "one", enableResume)
	two, enabledTwo := loginSM(t, s, "alice", "two", enableResume)
	one.cut()
	waitFor(t, "the first session to hibernate", func() bool { return s.C2S.Hibernating() == 1 })
	done := ended(t, s, "alice@localhost/one")
	two.cut()
	// The newer session hibernates; the oldest one makes room.
	wait(t, "the first session to end", done)
	waitFor(t, "the second session to hibernate", func() bool { return s.C2S.Hibernating() == 1 })
	c := authOnly(t, s, "alice")
	c.send(t, `<resume xmlns="urn:xmpp:sm:3" previd="`+enabledOne.Get("id")+`" h="0"/>`)
	if f := c.until(t, "<failed/>", func(e *router.Element) bool { return isSM("failed")(e) || isSM("resumed")(e) }); f.Name.Local != "failed" {
		t.Fatalf("resume of the evicted session: %s, want <failed/>", f)
	}
	c = authOnly(t, s, "alice")
	c.send(t, `<resume xmlns="urn:xmpp:sm:3" previd="`+enabledTwo.Get("id")+`" h="0"/>`)
	c.until(t, "<resumed/>", isSM("resumed"))
}

// mustJID parses s, failing t.
func mustJID(t *testing.T, s string) jid.JID {
	t.Helper()
	j, err := jid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestSMShutdownStoresHibernating checks that shutting c2s down ends the
// hibernating sessions, so that what they had not delivered is in offline
// storage before the server stops, instead of lost with the process.
func TestSMShutdownStoresHibernating(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	alice, _ := loginSM(t, s, "alice", "phone", enableResume)
	alice.send(t, `<presence/>`)
	alice.sync(t)
	alice.cut()
	waitFor(t, "the session to hibernate", func() bool { return s.C2S.Hibernating() == 1 })
	bob := s.Login("bob", "pw", testserver.LoginOptions{})
	sendMessages(t, bob, "alice@localhost/phone", "kept")
	done := ended(t, s, "alice@localhost/phone")
	ctx, cancel := context.WithTimeout(context.Background(), rawWait)
	defer cancel()
	if err := s.C2S.Shutdown(ctx); err != nil {
		t.Fatalf("c2s shutdown: %v", err)
	}
	wait(t, "the hibernating session to end", done)
	msgs, err := s.Store.Offline().List(ctx, mustJID(t, "alice@localhost"))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d offline messages after shutdown, want the one sent while hibernating", len(msgs))
	}
}

// TestSMBeforeAuth checks that stream management is neither offered nor
// answered before authentication: an <enable/> or <resume/> there is like
// any other element before SASL, and closes the stream with
// not-authorized (RFC 6120 §6.4.1), as before stream management existed.
func TestSMBeforeAuth(t *testing.T) {
	s := testserver.Start(t, nil)
	s.AddUser("alice", "pw")
	for _, el := range []string{`<enable xmlns="urn:xmpp:sm:3"/>`, `<resume xmlns="urn:xmpp:sm:3" previd="x" h="0"/>`} {
		r, err := s.DialRawStartTLS(nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Features.Child(nsSM, "sm") != nil {
			t.Errorf("SM offered before authentication: %s", r.Features)
		}
		if err := r.Send(el); err != nil {
			t.Fatal(err)
		}
		if cond, err := r.WaitStreamError(10 * time.Second); err != nil || cond != "not-authorized" {
			t.Errorf("%s before authentication: stream error %q, %v; want not-authorized", el, cond, err)
		}
	}
}

// TestSMHibernationBytes checks that a hibernating session holds at most
// limits.sm_max_unacked_bytes of stanzas: past it the session ends, and
// everything sent to it, held or refused, reaches offline storage once.
func TestSMHibernationBytes(t *testing.T) {
	// Each message is about 150 bytes as written.
	s := testserver.Start(t, func(c *config.Config) { c.Limits.SMMaxUnackedBytes = 400 })
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	alice, _ := loginSM(t, s, "alice", "phone", enableResume)
	alice.send(t, `<presence/>`)
	alice.sync(t)
	done := ended(t, s, "alice@localhost/phone")
	alice.cut()
	waitFor(t, "the session to hibernate", func() bool { return s.C2S.Hibernating() == 1 })
	bob := s.Login("bob", "pw", testserver.LoginOptions{})
	ids := []string{"b1", "b2", "b3", "b4", "b5"}
	sendMessages(t, bob, "alice@localhost/phone", ids...)
	wait(t, "the session to end", done)

	next := s.Login("alice", "pw", testserver.LoginOptions{Resource: "laptop"})
	next.MustSend(t, `<presence/>`)
	for _, id := range ids {
		next.MustNext(t, id, isMessage(id))
	}
	next.ExpectNone(t, "a message twice", isMessage(""))
}
