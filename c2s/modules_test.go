package c2s_test

import (
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsCaps       = "http://jabber.org/protocol/caps"
	nsPing       = "urn:xmpp:ping"
	nsVersion    = "jabber:iq:version"
	nsTime       = "urn:xmpp:time"
	nsRoster     = "jabber:iq:roster"
)

// baseModules is the module set the module tests run with, named here
// rather than taken from the defaults so that the expected features do not
// change when the default set grows.
func baseModules() []string { return []string{"disco", "ping", "version", "time", "roster"} }

// discoInfo asks to for disco#info and returns the answer.
func discoInfo(t *testing.T, c *testserver.Client, to, id string) *router.Element {
	t.Helper()
	return c.MustRequest(t, `<iq type="get" id="`+id+`" to="`+to+`"><query xmlns="`+nsDiscoInfo+`"/></iq>`)
}

// identitiesAndFeatures lists a disco#info result's identities as
// "category/type" and its features.
func identitiesAndFeatures(t *testing.T, e *router.Element) (ids, features []string) {
	t.Helper()
	q := e.Child(nsDiscoInfo, "query")
	if e.Get("type") != "result" || q == nil {
		t.Fatalf("disco#info: got %s", e)
	}
	for _, c := range q.Elements() {
		switch c.Name.Local {
		case "identity":
			ids = append(ids, c.Get("category")+"/"+c.Get("type"))
		case "feature":
			features = append(features, c.Get("var"))
		}
	}
	slices.Sort(features)
	return ids, features
}

// TestServerDisco checks that the server's disco#info shows the server/im
// identity and exactly the features of the enabled modules.
func TestServerDisco(t *testing.T) {
	for _, tc := range []struct {
		name     string
		modules  []string
		features []string
	}{
		{"base", baseModules(), []string{nsDiscoInfo, nsDiscoItems, nsCaps, nsVersion, nsPing, nsTime}},
		{"without ping", []string{"disco", "version", "time", "roster"}, []string{nsDiscoInfo, nsDiscoItems, nsCaps, nsVersion, nsTime}},
		{"disco only", []string{"disco"}, []string{nsDiscoInfo, nsDiscoItems, nsCaps}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testserver.Start(t, func(c *config.Config) { c.Modules = tc.modules })
			s.AddUser("alice", "pw")
			alice := s.Login("alice", "pw", testserver.LoginOptions{})
			ids, features := identitiesAndFeatures(t, discoInfo(t, alice, "localhost", "d1"))
			if !slices.Equal(ids, []string{"server/im"}) {
				t.Errorf("identities %v; want [server/im]", ids)
			}
			want := slices.Sorted(slices.Values(tc.features))
			if !slices.Equal(features, want) {
				t.Errorf("features %v; want exactly %v", features, want)
			}
			items := alice.MustRequest(t, `<iq type="get" id="d2" to="localhost"><query xmlns="`+nsDiscoItems+`"/></iq>`)
			if items.Get("type") != "result" || items.Child(nsDiscoItems, "query") == nil {
				t.Errorf("disco#items: got %s", items)
			}
			// A module that is not enabled does not answer either.
			ping := alice.MustRequest(t, `<iq type="get" id="p1" to="localhost"><ping xmlns="`+nsPing+`"/></iq>`)
			pingEnabled := slices.Contains(tc.modules, "ping")
			switch cond, _ := testserver.ErrorCondition(ping); {
			case pingEnabled && ping.Get("type") != "result":
				t.Errorf("ping with the ping module: %s", ping)
			case !pingEnabled && cond != "service-unavailable":
				t.Errorf("ping without the ping module: %s; want service-unavailable", ping)
			}
		})
	}
}

// TestServerIQs checks the answers of the modules that serve the server's
// own address.
func TestServerIQs(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) { c.Modules = baseModules() })
	s.AddUser("alice", "pw")
	alice := s.Login("alice", "pw", testserver.LoginOptions{})

	t.Run("ping", func(t *testing.T) {
		e := alice.MustRequest(t, `<iq type="get" id="p1" to="localhost"><ping xmlns="`+nsPing+`"/></iq>`)
		if e.Get("type") != "result" || e.Get("from") != "localhost" || e.Get("to") != alice.LocalAddr().String() {
			t.Errorf("ping: got %s", e)
		}
	})
	t.Run("version", func(t *testing.T) {
		e := alice.MustRequest(t, `<iq type="get" id="v1" to="localhost"><query xmlns="`+nsVersion+`"/></iq>`)
		q := e.Child(nsVersion, "query")
		if e.Get("type") != "result" || q == nil {
			t.Fatalf("version: got %s", e)
		}
		if n := q.Child(nsVersion, "name"); n == nil || n.Text() != "xmppd" {
			t.Errorf("version name in %s; want xmppd", e)
		}
		if v := q.Child(nsVersion, "version"); v == nil || v.Text() == "" {
			t.Errorf("no version in %s", e)
		}
	})
	t.Run("time", func(t *testing.T) {
		e := alice.MustRequest(t, `<iq type="get" id="t1" to="localhost"><time xmlns="`+nsTime+`"/></iq>`)
		tm := e.Child(nsTime, "time")
		if e.Get("type") != "result" || tm == nil {
			t.Fatalf("time: got %s", e)
		}
		utc, tzo := tm.Child(nsTime, "utc"), tm.Child(nsTime, "tzo")
		if utc == nil || tzo == nil {
			t.Fatalf("time without utc or tzo: %s", e)
		}
		if _, err := time.Parse(time.RFC3339Nano, utc.Text()); err != nil || utc.Text()[len(utc.Text())-1] != 'Z' {
			t.Errorf("utc %q is not an XEP-0082 UTC time (%v)", utc.Text(), err)
		}
		if !regexp.MustCompile(`^(Z|[+-]\d\d:\d\d)$`).MatchString(tzo.Text()) {
			t.Errorf("tzo %q is not an XEP-0082 offset", tzo.Text())
		}
	})
	for _, tc := range []struct{ name, iq string }{
		{"unknown namespace", `<iq type="get" id="u1" to="localhost"><query xmlns="urn:example:unknown"/></iq>`},
		{"unknown namespace, set", `<iq type="set" id="u2" to="localhost"><query xmlns="urn:example:unknown"/></iq>`},
		{"ping as a set", `<iq type="set" id="u3" to="localhost"><ping xmlns="` + nsPing + `"/></iq>`},
		{"unknown namespace to own account", `<iq type="get" id="u4"><query xmlns="urn:example:unknown"/></iq>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := alice.MustRequest(t, tc.iq)
			if cond, typ := testserver.ErrorCondition(e); e.Get("type") != "error" || cond != "service-unavailable" || typ != "cancel" {
				t.Errorf("got %s; want a service-unavailable error of type cancel", e)
			}
		})
	}
}

// TestAccountIQs checks what a user's own account answers: the roster, and
// disco#info, which only the account itself may ask.
func TestAccountIQs(t *testing.T) {
	s := testserver.Start(t, func(c *config.Config) { c.Modules = baseModules() })
	s.AddUser("alice", "pw")
	s.AddUser("bob", "pw")
	alice := s.Login("alice", "pw", testserver.LoginOptions{})

	t.Run("roster", func(t *testing.T) {
		e := alice.MustRequest(t, `<iq type="get" id="r1"><query xmlns="`+nsRoster+`"/></iq>`)
		q := e.Child(nsRoster, "query")
		if e.Get("type") != "result" || q == nil {
			t.Fatalf("roster get: %s", e)
		}
		if len(q.Elements()) != 0 {
			t.Errorf("new account's roster is not empty: %s", e)
		}
	})
	for _, to := range []string{"alice@localhost", ""} {
		t.Run("disco of own account to "+to, func(t *testing.T) {
			iq := `<iq type="get" id="a1"><query xmlns="` + nsDiscoInfo + `"/></iq>`
			if to != "" {
				iq = `<iq type="get" id="a1" to="` + to + `"><query xmlns="` + nsDiscoInfo + `"/></iq>`
			}
			ids, features := identitiesAndFeatures(t, alice.MustRequest(t, iq))
			if !slices.Equal(ids, []string{"account/registered"}) {
				t.Errorf("identities %v; want [account/registered]", ids)
			}
			if !slices.Contains(features, nsDiscoInfo) {
				t.Errorf("features %v lack disco#info", features)
			}
		})
	}
	for _, to := range []string{"bob@localhost", "nobody@localhost"} {
		t.Run("disco of "+to, func(t *testing.T) {
			e := discoInfo(t, alice, to, "b1")
			if cond, _ := testserver.ErrorCondition(e); e.Get("type") != "error" || cond != "service-unavailable" {
				t.Errorf("got %s; want service-unavailable", e)
			}
			if e.Get("from") != to {
				t.Errorf("error from %q; want %q", e.Get("from"), to)
			}
		})
	}
}
