package muc_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/muc"
	"github.com/xmppd/xmppd/router"
)

// These tests drive a real server with several real clients; what the
// rooms do is read back through the protocol, as a client sees it.

const (
	pw      = "secret"
	service = "conference." + testserver.Domain
)

// user is a logged-in client of a test.
type user struct {
	*testserver.Client
	t    *testing.T
	name string
}

// start starts a server with the muc module and the accounts given;
// options, if not nil, are module_options.muc.
func start(t *testing.T, b storetest.Backend, options map[string]any, users ...string) *testserver.Server {
	t.Helper()
	s := testserver.StartOn(t, b, func(c *config.Config) {
		testserver.EnableModules(c, "muc", "roster", "carbons")
		if options != nil {
			c.SetModuleOptions("muc", options)
		}
	})
	for _, u := range users {
		s.AddUser(u, pw)
	}
	return s
}

// online logs name in with resource "pc" and sends available presence.
func online(t *testing.T, s *testserver.Server, name string) *user {
	t.Helper()
	return onlineAs(t, s, name, "pc")
}

// onlineAs logs name in with a resource.
func onlineAs(t *testing.T, s *testserver.Server, name, resource string) *user {
	t.Helper()
	c := s.Login(name, pw, testserver.LoginOptions{Resource: resource})
	c.MustSend(t, `<presence/>`)
	c.MustNext(t, "own presence", func(e *router.Element) bool { return e.Name.Local == "presence" })
	return &user{Client: c, t: t, name: name}
}

// full is the user's full JID.
func (u *user) full() string { return u.LocalAddr().String() }

func room(name string) string { return name + "@" + service }

func occ(roomName, nick string) string { return room(roomName) + "/" + nick }

// send sends XML, failing the test on error.
func (u *user) send(xml string) {
	u.t.Helper()
	u.MustSend(u.t, xml)
}

// iq sends an IQ request to the room and returns the answer.
func (u *user) iq(to, typ, payload string) *router.Element {
	u.t.Helper()
	return u.MustRequest(u.t, fmt.Sprintf(`<iq type='%s' id='%s' to='%s'>%s</iq>`, typ, router.NewID(), to, payload))
}

// join sends the join presence to roomName as nick, with extra payload
// inside the MUC <x/>, and returns the self-presence.
func (u *user) join(roomName, nick, inner string) *router.Element {
	u.t.Helper()
	u.send(`<presence to='` + occ(roomName, nick) + `'><x xmlns='` + muc.NS + `'>` + inner + `</x></presence>`)
	return u.MustNext(u.t, "self-presence in "+roomName, func(e *router.Element) bool {
		return e.Name.Local == "presence" && (hasStatus(e, 110) || e.Get("type") == "error") && strings.HasPrefix(e.Get("from"), room(roomName))
	})
}

// create creates an instant room with nick owner and returns after the
// room is unlocked.
func (u *user) create(roomName, nick string) {
	u.t.Helper()
	self := u.join(roomName, nick, "")
	if !hasStatus(self, 201) {
		u.t.Fatalf("creating %s: %s", roomName, self)
	}
	u.subject(roomName)
	testserver.WantResult(u.t, u.iq(room(roomName), "set", `<query xmlns='`+muc.NSOwner+`'><x xmlns='jabber:x:data' type='submit'/></query>`))
}

// configure submits room configuration fields (var, value pairs).
func (u *user) configure(roomName string, fields ...string) *router.Element {
	u.t.Helper()
	return u.iq(room(roomName), "set", `<query xmlns='`+muc.NSOwner+`'>`+testserver.DataForm(muc.NS+"#roomconfig", "submit", fields...)+`</query>`)
}

// subject waits for the subject message of a join.
func (u *user) subject(roomName string) *router.Element {
	u.t.Helper()
	return u.MustNext(u.t, "subject of "+roomName, func(e *router.Element) bool {
		return e.Name.Local == "message" && e.Child("", "subject") != nil && e.Child("", "body") == nil && strings.HasPrefix(e.Get("from"), room(roomName))
	})
}

// history takes the messages of the discussion history that follow a
// join, up to and with the subject, and returns them but the subject.
func (u *user) history(roomName string) []*router.Element {
	u.t.Helper()
	var got []*router.Element
	for {
		e := u.MustNext(u.t, "history or subject", func(e *router.Element) bool {
			return e.Name.Local == "message" && strings.HasPrefix(e.Get("from"), room(roomName))
		})
		if e.Child("", "subject") != nil && e.Child("", "body") == nil {
			return got
		}
		got = append(got, e)
	}
}

// enter joins a room that exists and takes everything up to the subject.
func (u *user) enter(roomName, nick string) *router.Element {
	u.t.Helper()
	self := u.join(roomName, nick, "")
	if self.Get("type") == "error" {
		u.t.Fatalf("%s entering %s: %s", u.name, roomName, self)
	}
	u.subject(roomName)
	return self
}

// presenceFrom matches presence from an occupant JID.
func presenceFrom(from string) func(*router.Element) bool {
	return func(e *router.Element) bool { return e.Name.Local == "presence" && e.Get("from") == from }
}

// groupchatFrom matches a groupchat message from an occupant JID with a body.
func groupchatFrom(from, body string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		return e.Name.Local == "message" && e.Get("type") == "groupchat" && e.Get("from") == from && childText(e, "", "body") == body
	}
}

// messageFrom matches any message from an address.
func messageFrom(from string) func(*router.Element) bool {
	return func(e *router.Element) bool { return e.Name.Local == "message" && e.Get("from") == from }
}

// errorFrom matches an error stanza of a kind from an address.
func errorFrom(kind, from string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		return e.Name.Local == kind && e.Get("type") == "error" && e.Get("from") == from
	}
}

// statuses returns the status codes of a muc#user <x/>.
func statuses(e *router.Element) []int {
	x := e.Child(muc.NSUser, "x")
	if x == nil {
		return nil
	}
	var out []int
	for _, s := range x.Elements() {
		if s.Name.Local == "status" {
			n, _ := strconv.Atoi(s.Get("code"))
			out = append(out, n)
		}
	}
	return out
}

func hasStatus(e *router.Element, code int) bool { return slices.Contains(statuses(e), code) }

// item is the muc#user item of a presence.
func item(t *testing.T, e *router.Element) *router.Element {
	t.Helper()
	x := e.Child(muc.NSUser, "x")
	if x == nil || x.Child(muc.NSUser, "item") == nil {
		t.Fatalf("no muc#user item: %s", e)
	}
	return x.Child(muc.NSUser, "item")
}

// wantItem checks an item's affiliation and role.
func wantItem(t *testing.T, e *router.Element, aff, role string) {
	t.Helper()
	it := item(t, e)
	if it.Get("affiliation") != aff || it.Get("role") != role {
		t.Fatalf("item affiliation %q role %q, want %q %q: %s", it.Get("affiliation"), it.Get("role"), aff, role, e)
	}
}

// wantError checks the condition of an error stanza and the by of
// XEP-0045's examples.
func wantError(t *testing.T, e *router.Element, cond, typ string) {
	t.Helper()
	if c, ty := testserver.ErrorCondition(e); c != cond || ty != typ {
		t.Fatalf("error %s (%s), want %s (%s): %s", c, ty, cond, typ, e)
	}
}

func childText(e *router.Element, space, local string) string {
	if c := e.Child(space, local); c != nil {
		return c.Text()
	}
	return ""
}
