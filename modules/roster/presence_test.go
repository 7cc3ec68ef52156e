package roster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/storage"
)

// TestPresenceProbeAndBroadcast: RFC 6121 §4.2–4.5 between two contacts
// with a mutual subscription. Initial presence is broadcast to the contact
// and probes it, so the newcomer learns the contact's presence; updates
// are broadcast; unavailable presence is broadcast on an explicit logout,
// on a closed stream and on a dropped connection.
func TestPresenceProbeAndBroadcast(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice", "bob", "carol")
		befriend(t, s, "alice", "bob")
		bob := online(t, s, "bob", "desk")
		bob.available(`<presence><show>away</show><status>brb</status></presence>`)

		a := login(t, s, "alice", "phone")
		a.send(`<presence><priority>3</priority></presence>`)
		a.next("bob's presence, in answer to the probe", withChild(isPresence(bob.full, ""), "show", "away"))
		a.next("her own presence", isPresence(a.full, ""))
		bob.next("alice's initial presence", withChild(isPresence(a.full, ""), "priority", "3"))

		a.available(`<presence><status>busy</status></presence>`)
		bob.next("alice's update", withChild(isPresence(a.full, ""), "status", "busy"))

		// §4.5.2: explicit unavailable presence, with its status.
		a.send(`<presence type='unavailable'><status>bye</status></presence>`)
		bob.next("alice's unavailable presence", withChild(isPresence(a.full, "unavailable"), "status", "bye"))
		a.Close()

		// §4.5.2: a stream closed without unavailable presence.
		a = online(t, s, "alice", "laptop")
		bob.next("alice's initial presence", isPresence(a.full, ""))
		a.Close()
		bob.next("unavailable after </stream:stream>", isPresence(a.full, "unavailable"))

		// §4.5.2: a connection that just vanishes.
		a = online(t, s, "alice", "tablet")
		bob.next("alice's initial presence", isPresence(a.full, ""))
		a.drop()
		bob.next("unavailable after a dropped connection", isPresence(a.full, "unavailable"))

		// A resource that never sent initial presence was never available:
		// its end is not broadcast to contacts. Its directed presence is
		// withdrawn (§4.6.3), which comes after the broadcast there would
		// have been, so carol's copy tells when to look.
		carol := online(t, s, "carol", "pc")
		silent := login(t, s, "alice", "silent")
		silent.send(`<presence to='carol@localhost'/>`)
		carol.next("directed presence", isPresence(silent.full, ""))
		silent.Close()
		carol.next("the directed presence withdrawn", isPresence(silent.full, "unavailable"))
		bob.none("unavailable from a resource that was never available", isPresence(silent.full, "unavailable"))
	})
}

// TestPresenceAtLogin: a user's new resource gets the presence of the
// user's other available resources (§4.2.2), and a probe of a contact
// whose resources are all offline brings unavailable presence with the time
// of the last logout (§4.3.2).
func TestPresenceAtLogin(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice", "bob")
		befriend(t, s, "alice", "bob")
		phone := online(t, s, "alice", "phone")
		laptop := login(t, s, "alice", "laptop")
		laptop.send(`<presence/>`)
		laptop.next("the phone's presence", isPresence(phone.full, ""))
		phone.next("the laptop's presence", isPresence(laptop.full, ""))

		bob := online(t, s, "bob", "desk")
		bob.send(`<presence type='unavailable'><status>gone fishing</status></presence>`)
		bob.sync()
		bob.Close()
		// LastActivity is written when bob's unavailable presence is
		// handled, before the round trip of the sync.
		if _, _, err := s.Store.LastActivity().Get(context.Background(), bob.LocalAddr().Bare()); err != nil {
			t.Fatalf("last activity of bob: %v", err)
		}

		late := login(t, s, "alice", "tablet")
		late.send(`<presence/>`)
		p := late.next("bob's unavailable presence", isPresence(bare("bob"), "unavailable"))
		if st := p.Child("", "status"); st == nil || st.Text() != "gone fishing" {
			t.Errorf("no status of bob's last logout: %s", p)
		}
		if d := p.Child("urn:xmpp:delay", "delay"); d == nil || d.Get("stamp") == "" {
			t.Errorf("no delay stamp of bob's last logout: %s", p)
		}
	})
}

// TestPresenceAfterUnavailable: RFC 6121 §4.2 and §4.5: after broadcast
// unavailable presence a resource is no longer available, and its next
// presence is initial presence again.
func TestPresenceAfterUnavailable(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice", "bob")
		befriend(t, s, "alice", "bob")
		a := online(t, s, "alice", "phone")
		bob := online(t, s, "bob", "desk")
		a.next("bob's initial presence", isPresence(bob.full, ""))

		bob.send(`<presence type='unavailable'/>`)
		a.next("bob's unavailable presence", isPresence(bob.full, "unavailable"))
		bob.sync()
		bob.drain()
		a.send(`<message type='chat' to='bob@localhost/desk' id='m1'><body>there?</body></message>`)
		bob.next("a message to his full JID, available or not (§8.5.3.1)", isMessage("m1"))

		bob.send(`<presence><status>back</status></presence>`)
		a.next("bob's presence again", withChild(isPresence(bob.full, ""), "status", "back"))
		bob.next("alice's presence, probed again", isPresence(a.full, ""))
	})
}

// TestLastActivity: the time and status of the last unavailable presence
// are stored when the user's last available resource goes (XEP-0012 via
// RFC 6121 §4.5), not while another resource is still available.
func TestLastActivity(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice")
		ctx := context.Background()
		last := s.Store.LastActivity()

		phone := online(t, s, "alice", "phone")
		laptop := online(t, s, "alice", "laptop")
		aliceJID := phone.LocalAddr().Bare()
		before := time.Now()

		phone.send(`<presence type='unavailable'><status>phone off</status></presence>`)
		phone.sync()
		if _, _, err := last.Get(ctx, aliceJID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("last activity with the laptop still available: %v, want ErrNotFound", err)
		}

		laptop.send(`<presence type='unavailable'><status>all off</status></presence>`)
		laptop.sync()
		at, status, err := last.Get(ctx, aliceJID)
		if err != nil {
			t.Fatalf("last activity after the last resource went: %v", err)
		}
		if status != "all off" {
			t.Errorf("status %q, want %q", status, "all off")
		}
		after := time.Now()
		if at.Before(before.Add(-time.Second)) || at.After(after.Add(time.Second)) {
			t.Errorf("stored time %v is not the logout's (between %v and %v)", at, before, after)
		}

		// A dropped connection records it too, without a status.
		phone.Close()
		laptop.Close()
		tablet := online(t, s, "alice", "tablet")
		tablet.drop()
		eventually(t, "last activity of the dropped connection", func() bool {
			_, status, err := last.Get(ctx, aliceJID)
			return err == nil && status == ""
		})
	})
}

// TestDirectedPresence: RFC 6121 §4.6. Presence sent to someone outside
// the roster reaches them, and when the sender goes offline they get its
// unavailable presence, unless the sender already sent it to them.
func TestDirectedPresence(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice", "carol", "dave", "erin")
		carol := online(t, s, "carol", "pc")
		dave := online(t, s, "dave", "pc")
		erin := online(t, s, "erin", "pc")

		a := online(t, s, "alice", "phone")
		a.send(`<presence to='carol@localhost'><status>hi carol</status></presence>`)
		carol.next("alice's directed presence", withChild(isPresence(a.full, ""), "status", "hi carol"))
		a.send(`<presence to='dave@localhost/pc'/>`)
		dave.next("alice's directed presence", isPresence(a.full, ""))
		a.send(`<presence to='dave@localhost/pc' type='unavailable'/>`)
		dave.next("alice's directed unavailable presence", isPresence(a.full, "unavailable"))
		a.sync()
		erin.none("presence not sent to her", isPresence(a.full, ""))

		// A broadcast reaches only subscribed contacts (none here), not
		// those who got directed presence (§4.6.2).
		a.available(`<presence><status>update</status></presence>`)
		carol.none("a broadcast to a non-contact", withChild(isPresence(a.full, ""), "status", "update"))

		a.Close()
		carol.next("alice's unavailable presence at logout", isPresence(a.full, "unavailable"))
		// The unavailable presence owed to carol is sent before the last
		// activity is stored: once that is there, any owed to dave and
		// erin would have been queued too.
		eventually(t, "last activity of alice", func() bool {
			_, _, err := s.Store.LastActivity().Get(context.Background(), a.LocalAddr().Bare())
			return err == nil
		})
		dave.none("a second unavailable presence", isPresence(a.full, "unavailable"))
		erin.none("unavailable presence from someone who never sent her any", isPresence(a.full, "unavailable"))
	})
}

// TestPresenceToNobody: presence to an account that does not exist is
// ignored without an error (RFC 6121 §8.5.1 leaves it to the server, and
// an error would tell the sender which accounts exist); presence of type
// error is delivered like any other (§4.7.1).
func TestPresenceToNobody(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice", "bob")
		a := online(t, s, "alice", "phone")
		bob := online(t, s, "bob", "desk")

		for _, typ := range []string{"", "unavailable", "subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe"} {
			a.send(`<presence to='nobody@localhost' type='` + typ + `'/>`)
			a.send(`<presence to='nobody@localhost/res' type='` + typ + `'/>`)
		}
		a.none("an error for presence to nobody", isPresence("", "error"))

		bob.send(`<presence to='alice@localhost/phone' type='error'><error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`)
		a.next("a presence error to her full JID", isPresence(bob.full, "error"))
		bob.send(`<presence to='alice@localhost' type='error'><error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`)
		a.next("a presence error to her bare JID", isPresence(bob.full, "error"))
		bob.none("an answer to a presence error", isPresence("", "error"))
	})
}

// TestPresenceOfReplacedSession: a client that reconnects with the same
// resource replaces its old session (RFC 6120 §7.7.2.2), whose end is
// handled in the background. Whatever the timing, the contacts' last word
// about the resource must be the new session's presence, not the old
// session's unavailable presence; and the old session's directed presence
// is still withdrawn (§4.6.3). The race is timing-dependent, so the
// reconnection is repeated.
func TestPresenceOfReplacedSession(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice", "bob", "carol")
		befriend(t, s, "alice", "bob")
		bob := online(t, s, "bob", "desk")
		carol := online(t, s, "carol", "pc")
		a := online(t, s, "alice", "phone")
		for i := range 20 {
			a.send(`<presence to='carol@localhost'/>`)
			carol.next("directed presence", isPresence(a.full, ""))
			bob.drain()

			a = login(t, s, "alice", "phone")
			a.available("")
			// The old session's directed presence is withdrawn after its
			// broadcast would have been made: once carol has it, bob has
			// all he will get.
			carol.next("the old session's directed presence withdrawn", isPresence(a.full, "unavailable"))
			bob.sync()
			var seen []string
			for range bob.Pending() {
				e, _ := bob.Next(nil)
				if e.Name.Local == "presence" && e.Get("from") == a.full {
					seen = append(seen, e.Get("type"))
				}
			}
			if len(seen) == 0 || seen[len(seen)-1] != "" {
				t.Fatalf("reconnection %d: bob saw %q from %s, ending offline while it is online", i, seen, a.full)
			}
		}
	})
}

// TestUnavailableToOwnResources: RFC 6121 §4.5.2: unavailable presence is
// also delivered to each of the user's available resources, the one that
// sent it included, whether the client sent it or the server generated it
// for a closed stream or a dropped connection. A resource that never was
// available does not get it.
func TestUnavailableToOwnResources(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, nil)
		addUsers(s, "alice")
		phone := online(t, s, "alice", "phone")
		laptop := online(t, s, "alice", "laptop")
		phone.next("the laptop's presence", isPresence(laptop.full, ""))
		tablet := online(t, s, "alice", "tablet")
		phone.next("the tablet's presence", isPresence(tablet.full, ""))
		laptop.next("the tablet's presence", isPresence(tablet.full, ""))
		silent := login(t, s, "alice", "silent") // never available

		tablet.send(`<presence type='unavailable'><status>Goodbye</status></presence>`)
		for _, p := range []*peer{tablet, phone, laptop} {
			p.next("the tablet's unavailable presence", withChild(isPresence(tablet.full, "unavailable"), "status", "Goodbye"))
		}
		tablet.Close()

		// Generated by the server: the laptop's stream is closed, then
		// its connection dropped.
		laptop.Close()
		phone.next("unavailable after </stream:stream>", isPresence(laptop.full, "unavailable"))
		laptop = online(t, s, "alice", "laptop")
		phone.next("the laptop's presence", isPresence(laptop.full, ""))
		laptop.drop()
		phone.next("unavailable after a dropped connection", isPresence(laptop.full, "unavailable"))

		silent.sync()
		silent.none("unavailable presence to a resource that is not available", isPresence("", "unavailable"))
	})
}
