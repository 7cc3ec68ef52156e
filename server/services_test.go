package server_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

const password = "secret"

// TestServiceFromLocalClient reaches the test echo service at
// echo.localhost from a client of the same server: messages to the
// service and to JIDs under it (bare and full) come back from the address
// they went to, the service answers its own disco#info, and an IQ it does
// not answer gets service-unavailable.
func TestServiceFromLocalClient(t *testing.T) {
	s := testserver.Start(t, nil)
	echo := testserver.AddEcho(t, s.Router, s.Domain())
	s.AddUser("alice", password)
	alice := s.Login("alice", password, testserver.LoginOptions{})

	t.Run("messages", func(t *testing.T) {
		for i, to := range []string{echo, "room@" + echo, "room@" + echo + "/nick"} {
			id := "m" + string(rune('0'+i))
			alice.MustSend(t, `<message to="`+to+`" type="chat" id="`+id+`"><body>hello `+to+`</body></message>`)
			m := alice.MustNext(t, "the echo of "+id, func(e *router.Element) bool {
				return e.Name.Local == "message" && e.Get("id") == id
			})
			if got := m.Get("from"); got != to {
				t.Errorf("echo of %s from %q", to, got)
			}
			if b := m.Child("", "body"); b == nil || b.Text() != "hello "+to || m.Get("type") != "chat" {
				t.Errorf("echo of %s is %s", to, m)
			}
		}
	})
	tests := []struct {
		name     string
		iq       string
		wantCond string // "" for a result
	}{
		{name: "disco#info of the service", iq: `<iq type="get" id="i1" to="` + echo + `"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`},
		{name: "iq to the service nobody answers", iq: `<iq type="get" id="i2" to="` + echo + `"><ping xmlns="urn:xmpp:ping"/></iq>`, wantCond: "service-unavailable"},
		{name: "iq to a JID under it", iq: `<iq type="get" id="i3" to="nobody@` + echo + `/r"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, wantCond: "service-unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := alice.Request(tt.iq)
			if err != nil {
				t.Fatal(err)
			}
			cond, _ := testserver.ErrorCondition(resp)
			if cond != tt.wantCond {
				t.Fatalf("answer %s, want condition %q", resp, tt.wantCond)
			}
			if tt.wantCond == "" {
				id := resp.FirstChild().Child(testserver.NSDiscoInfo, "identity")
				if id == nil || id.Get("category") != "component" || id.Get("name") != "echo" {
					t.Errorf("disco#info of the service: %s", resp)
				}
			}
		})
	}
}

// TestServerItemsListServices checks that the server's disco#items lists
// the service addresses owned by running modules, and only while they own
// them.
func TestServerItemsListServices(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) {
		c.Hosts = append(c.Hosts, config.Host{Domain: "example.org"})
		// Without the default set's own services (pubsub.DOMAIN,
		// upload.DOMAIN, conference.DOMAIN), so that the list starts empty.
		c.Modules = slices.DeleteFunc(slices.Clone(c.Modules), func(id string) bool { return id == "upload" || id == "pubsub" || id == "muc" })
	})
	s.AddUser("alice", password)
	alice := s.Login("alice", password, testserver.LoginOptions{})
	items := func() []string {
		t.Helper()
		resp, err := alice.Request(`<iq type="get" id="` + router.NewID() + `" to="` + s.Domain() + `"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Get("type") != "result" {
			t.Fatalf("disco#items: %s", resp)
		}
		var out []string
		for _, e := range resp.FirstChild().Elements() {
			out = append(out, e.Get("jid"))
		}
		return out
	}
	if got := items(); len(got) != 0 {
		t.Errorf("items without services: %q", got)
	}
	// A service under none of the served domains (a component's own) is
	// listed on each; one under the other served domain only there.
	testserver.AddEcho(t, s.Router, s.Domain())
	testserver.AddEcho(t, s.Router, "example.net")
	testserver.AddEcho(t, s.Router, "example.org")
	if got, want := strings.Join(items(), " "), "echo.example.net echo.localhost"; got != want {
		t.Errorf("items %q, want %q", got, want)
	}
}

// TestNoLoginToService checks that a client stream to a service address
// is refused with host-unknown, as to a domain not served at all: clients
// log in only to user domains.
func TestNoLoginToService(t *testing.T) {
	s := testserver.Start(t, nil)
	echo := testserver.AddEcho(t, s.Router, s.Domain())
	c, err := s.DialRaw()
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Open(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='` + echo + `' version='1.0'>`)
	if err != nil {
		t.Fatal(err)
	}
	if got := testserver.StreamErrorCondition(e); got != "host-unknown" {
		t.Errorf("stream to %s: got %s, want stream error host-unknown", echo, e)
	}
}
