package vcard_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/vcard"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

const pw = "secret"

// maxSize is the vCard limit of the test servers.
const maxSize = 2048

func start(t *testing.T, b storetest.Backend) *testserver.Server {
	t.Helper()
	return testserver.StartOn(t, b, func(c *config.Config) {
		testserver.EnableModules(c, "vcard")
		c.SetModuleOptions("vcard", vcard.Options{MaxSize: maxSize})
	})
}

// wantVCard checks that e is an IQ result and returns its vCard, nil if it
// has none.
func wantVCard(t *testing.T, e *router.Element) *router.Element {
	t.Helper()
	testserver.WantResult(t, e)
	return e.Child("vcard-temp", "vCard")
}

// fn is the formatted name of a vCard.
func fn(card *router.Element) string {
	if f := card.Child("vcard-temp", "FN"); f != nil {
		return f.Text()
	}
	return ""
}

const aliceCard = `<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><NICKNAME>alice</NICKNAME>` +
	`<PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgo=</BINVAL></PHOTO><X-EXT xmlns='urn:example:ext' a='1'>kept</X-EXT></vCard>`

func TestVCard(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b)
		s.AddUser("alice", pw)
		s.AddUser("bob", pw)
		s.AddUser("carol", pw) // has no vCard
		alice := s.Login("alice", pw, testserver.LoginOptions{})
		bob := s.Login("bob", pw, testserver.LoginOptions{})

		t.Run("own vCard before any was stored is empty", func(t *testing.T) {
			card := wantVCard(t, alice.MustRequest(t, `<iq type='get' id='v1'><vCard xmlns='vcard-temp'/></iq>`))
			if card == nil || len(card.Children) != 0 {
				t.Fatalf("vCard %v, want an empty <vCard/> (XEP-0054 §2.1)", card)
			}
		})

		t.Run("set and get own", func(t *testing.T) {
			wantVCard(t, alice.MustRequest(t, `<iq type='set' id='v2'>`+aliceCard+`</iq>`))
			card := wantVCard(t, alice.MustRequest(t, `<iq type='get' id='v3'><vCard xmlns='vcard-temp'/></iq>`))
			if card == nil || fn(card) != "Alice Liddell" {
				t.Fatalf("own vCard %v, want FN Alice Liddell", card)
			}
			ext := card.Child("urn:example:ext", "X-EXT")
			if ext == nil || ext.Get("a") != "1" || ext.Text() != "kept" {
				t.Errorf("foreign element not kept as sent: %s", card)
			}
			// Addressed to the own bare JID is the same as no 'to'.
			wantVCard(t, alice.MustRequest(t, `<iq type='set' id='v4' to='alice@localhost'>`+aliceCard+`</iq>`))
		})

		t.Run("anyone reads another account's vCard", func(t *testing.T) {
			e := bob.MustRequest(t, `<iq type='get' id='v5' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>`)
			card := wantVCard(t, e)
			if card == nil || fn(card) != "Alice Liddell" {
				t.Fatalf("alice's vCard as bob sees it: %s", e)
			}
			if e.Get("from") != "alice@localhost" {
				t.Errorf("answer from %q, want alice@localhost (the server answers for the account)", e.Get("from"))
			}
		})

		t.Run("no vCard and no account get the same error", func(t *testing.T) {
			// XEP-0054 §2.3 (v1.3): service-unavailable in both cases.
			for _, to := range []string{"carol@localhost", "nobody@localhost"} {
				e := bob.MustRequest(t, `<iq type='get' id='v6' to='`+to+`'><vCard xmlns='vcard-temp'/></iq>`)
				testserver.WantIQError(t, e, "service-unavailable", "cancel")
			}
		})

		t.Run("setting another's vCard is forbidden", func(t *testing.T) {
			e := bob.MustRequest(t, `<iq type='set' id='v7' to='alice@localhost'><vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard></iq>`)
			testserver.WantIQError(t, e, "forbidden", "auth")
			card := wantVCard(t, bob.MustRequest(t, `<iq type='get' id='v8' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>`))
			if fn(card) != "Alice Liddell" {
				t.Errorf("alice's vCard changed by bob: %s", card)
			}
		})

		t.Run("too large", func(t *testing.T) {
			big := `<vCard xmlns='vcard-temp'><FN>Big</FN><DESC>` + strings.Repeat("x", maxSize) + `</DESC></vCard>`
			testserver.WantIQError(t, alice.MustRequest(t, `<iq type='set' id='v9'>`+big+`</iq>`), "not-acceptable", "modify")
			card := wantVCard(t, alice.MustRequest(t, `<iq type='get' id='v10'><vCard xmlns='vcard-temp'/></iq>`))
			if fn(card) != "Alice Liddell" {
				t.Errorf("vCard after a refused set: %s", card)
			}
		})

		t.Run("stored", func(t *testing.T) {
			data, err := s.Store.VCards().Get(context.Background(), jid.MustParse("alice@localhost"))
			if err != nil || !strings.Contains(string(data), "Alice Liddell") {
				t.Errorf("stored vCard %q, %v", data, err)
			}
			if _, err := s.Store.VCards().Get(context.Background(), jid.MustParse("carol@localhost")); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("carol's vCard: %v, want not found", err)
			}
		})

		t.Run("disco advertises vcard-temp", func(t *testing.T) {
			e := bob.MustRequest(t, `<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
			if !testserver.HasFeature(e, "vcard-temp") {
				t.Errorf("server features lack vcard-temp: %s", e)
			}
		})
	})
}

// TestAvatarHashInPresence checks that the XEP-0153 avatar hash a client
// puts in its presence reaches the receiver untouched.
func TestAvatarHashInPresence(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := start(t, b)
		s.AddUser("alice", pw)
		s.AddUser("bob", pw)
		alice := s.Login("alice", pw, testserver.LoginOptions{})
		bob := s.Login("bob", pw, testserver.LoginOptions{})
		bob.MustSend(t, `<presence/>`)
		bob.MustSync(t)
		const hash = "01b87fcd030b72895ff8e88db57ec525450f000d"
		alice.MustSend(t, `<presence to='bob@localhost'><x xmlns='vcard-temp:x:update'><photo>`+hash+`</photo></x></presence>`)
		p := bob.MustNext(t, "alice's presence", func(e *router.Element) bool {
			return e.Name.Local == "presence" && strings.HasPrefix(e.Get("from"), "alice@localhost/")
		})
		x := p.Child("vcard-temp:x:update", "x")
		if x == nil || x.Child("vcard-temp:x:update", "photo") == nil || x.Child("vcard-temp:x:update", "photo").Text() != hash {
			t.Errorf("presence as bob got it: %s, want the photo hash untouched", p)
		}
	})
}
