package private_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

const pw = "secret"

const ns = "jabber:iq:private"

// wantQuery checks that e is a result and returns its query's children.
func wantQuery(t *testing.T, e *router.Element) []*router.Element {
	t.Helper()
	testserver.WantResult(t, e)
	q := e.Child(ns, "query")
	if q == nil {
		t.Fatalf("result without <query xmlns='%s'/>: %s", ns, e)
	}
	return q.Elements()
}

func get(child string) string {
	return `<iq type='get' id='g'><query xmlns='jabber:iq:private'>` + child + `</query></iq>`
}

func set(children string) string {
	return `<iq type='set' id='s'><query xmlns='jabber:iq:private'>` + children + `</query></iq>`
}

func TestPrivate(t *testing.T) {
	storetest.Run(t, func(t *testing.T, b storetest.Backend) {
		s := testserver.StartOn(t, b, func(c *config.Config) { testserver.EnableModules(c, "private") })
		s.AddUser("alice", pw)
		s.AddUser("bob", pw)
		alice := s.Login("alice", pw, testserver.LoginOptions{})
		bob := s.Login("bob", pw, testserver.LoginOptions{})

		t.Run("nothing stored returns the empty element", func(t *testing.T) {
			got := wantQuery(t, alice.MustRequest(t, get(`<exodus xmlns='exodus:prefs'/>`)))
			if len(got) != 1 || got[0].Name.Space != "exodus:prefs" || got[0].Name.Local != "exodus" || len(got[0].Children) != 0 {
				t.Fatalf("got %v, want one empty <exodus xmlns='exodus:prefs'/>", got)
			}
		})

		t.Run("store and retrieve", func(t *testing.T) {
			e := alice.MustRequest(t, set(`<exodus xmlns='exodus:prefs'><defaultnick>Hamlet</defaultnick></exodus>`))
			if e.Get("type") != "result" {
				t.Fatalf("set: %s", e)
			}
			got := wantQuery(t, alice.MustRequest(t, get(`<exodus xmlns='exodus:prefs'/>`)))
			if len(got) != 1 || got[0].Child("exodus:prefs", "defaultnick") == nil || got[0].Child("exodus:prefs", "defaultnick").Text() != "Hamlet" {
				t.Fatalf("got %v, want the stored prefs", got)
			}
		})

		t.Run("several namespaces and elements in one set", func(t *testing.T) {
			e := alice.MustRequest(t, set(
				`<storage xmlns='storage:bookmarks'><conference jid='a@conference.localhost' name='A'/></storage>`+
					`<note xmlns='urn:example:notes'>one</note>`+
					`<note xmlns='urn:example:notes'>two</note>`))
			if e.Get("type") != "result" {
				t.Fatalf("set: %s", e)
			}
			got := wantQuery(t, alice.MustRequest(t, get(`<note xmlns='urn:example:notes'/>`)))
			if len(got) != 2 || got[0].Text() != "one" || got[1].Text() != "two" {
				t.Fatalf("notes %v, want both, in order", got)
			}
			got = wantQuery(t, alice.MustRequest(t, get(`<storage xmlns='storage:bookmarks'/>`)))
			if len(got) != 1 || got[0].Child("storage:bookmarks", "conference").Get("jid") != "a@conference.localhost" {
				t.Fatalf("bookmarks %v", got)
			}
			// A later set of one namespace replaces only that one.
			alice.MustRequest(t, set(`<note xmlns='urn:example:notes'>three</note>`))
			got = wantQuery(t, alice.MustRequest(t, get(`<note xmlns='urn:example:notes'/>`)))
			if len(got) != 1 || got[0].Text() != "three" {
				t.Fatalf("notes after replacing %v", got)
			}
			got = wantQuery(t, alice.MustRequest(t, get(`<storage xmlns='storage:bookmarks'/>`)))
			if len(got) != 1 {
				t.Fatalf("bookmarks lost: %v", got)
			}
		})

		t.Run("another user's data is forbidden", func(t *testing.T) {
			testserver.WantIQError(t, bob.MustRequest(t, `<iq type='get' id='f1' to='alice@localhost'><query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'/></query></iq>`), "forbidden", "auth")
			testserver.WantIQError(t, bob.MustRequest(t, `<iq type='set' id='f2' to='alice@localhost'><query xmlns='jabber:iq:private'><exodus xmlns='exodus:prefs'><defaultnick>Macbeth</defaultnick></exodus></query></iq>`), "forbidden", "auth")
			// bob has his own, separate space.
			got := wantQuery(t, bob.MustRequest(t, get(`<exodus xmlns='exodus:prefs'/>`)))
			if len(got) != 1 || len(got[0].Children) != 0 {
				t.Fatalf("bob sees %v", got)
			}
			got = wantQuery(t, alice.MustRequest(t, get(`<exodus xmlns='exodus:prefs'/>`)))
			if got[0].Child("exodus:prefs", "defaultnick").Text() != "Hamlet" {
				t.Fatalf("alice's prefs changed: %v", got)
			}
		})

		t.Run("errors", func(t *testing.T) {
			for _, tc := range []struct {
				name, iq, cond, typ string
			}{
				{"empty get", get(``), "not-acceptable", "modify"},
				{"empty set", set(``), "not-acceptable", "modify"},
				{"get of two namespaces", get(`<a xmlns='urn:a'/><b xmlns='urn:b'/>`), "bad-request", "modify"},
				{"jabber: namespace", set(`<query xmlns='jabber:iq:roster'/>`), "not-acceptable", "modify"},
				{"private namespace itself", get(`<query xmlns='jabber:iq:private'/>`), "not-acceptable", "modify"},
				{"http://jabber.org/", set(`<x xmlns='http://jabber.org/protocol/muc'/>`), "not-acceptable", "modify"},
				{"vcard-temp", set(`<vCard xmlns='vcard-temp'><FN>Hamlet</FN></vCard>`), "not-acceptable", "modify"},
				{"query's namespace inherited", set(`<x>no namespace of its own</x>`), "not-acceptable", "modify"},
				{"no namespace", set(`<x xmlns=''/>`), "not-acceptable", "modify"},
				{"reserved among allowed", set(`<a xmlns='urn:a'/><b xmlns='jabber:x:data'/>`), "not-acceptable", "modify"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					testserver.WantIQError(t, alice.MustRequest(t, tc.iq), tc.cond, tc.typ)
				})
			}
			// A refused set stores nothing, not even its allowed part.
			got := wantQuery(t, alice.MustRequest(t, get(`<a xmlns='urn:a'/>`)))
			if len(got) != 1 || len(got[0].Children) != 0 {
				t.Errorf("urn:a after a refused set: %v", got)
			}
		})

		t.Run("stored", func(t *testing.T) {
			data, err := s.Store.PrivateXML().Get(context.Background(), jid.MustParse("alice@localhost"), "exodus:prefs")
			if err != nil || !strings.Contains(string(data), "Hamlet") {
				t.Errorf("stored %q, %v", data, err)
			}
			if _, err := s.Store.PrivateXML().Get(context.Background(), jid.MustParse("bob@localhost"), "exodus:prefs"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("bob's prefs: %v, want not found", err)
			}
		})
	})
}
