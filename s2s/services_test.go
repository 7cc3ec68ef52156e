package s2s_test

import (
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
)

// serviceFederation starts a.test and b.test, each with the test echo
// service at echo.DOMAIN, and routes to each other's service as well as
// to each other's domain. With ca, both have certificates from one test CA
// and trust it, so that they authenticate with SASL EXTERNAL; without,
// their self-signed certificates leave them dialback.
func serviceFederation(t *testing.T, ca bool) (a, b *testserver.Server) {
	t.Helper()
	var authority *testserver.CA
	if ca {
		authority = testserver.NewCA(t)
	}
	var f *testserver.Federation
	f = testserver.NewFederation(t, func(c *config.Config) {
		d := c.Hosts[0].Domain
		for _, peer := range []string{domainA, domainB} {
			if peer != d {
				c.S2S.Routes["echo."+peer] = f.Addr(peer)
			}
		}
		if authority != nil {
			c.Hosts[0].Cert, c.Hosts[0].Key = authority.Issue(d)
			c.S2S.CAFile = authority.File
		}
	}, domainA, domainB)
	a, b = f.Start(domainA), f.Start(domainB)
	for _, s := range []*testserver.Server{a, b} {
		testserver.AddEcho(t, s.Router, s.Domain())
		if authority != nil {
			s.Roots.AppendCertsFromPEM(authority.PEM)
		}
	}
	return a, b
}

// TestServiceOverS2S reaches the echo service of each domain from a client
// of the other: s2s accepts streams to a service address, and what the
// service answers leaves on a stream from that address. The messages go to
// the service and to bare and full JIDs under it; disco#info is the
// service's own; an IQ it does not answer gets service-unavailable back
// across.
func TestServiceOverS2S(t *testing.T) {
	for _, auth := range []struct {
		name string
		ca   bool
	}{{"dialback", false}, {"SASL EXTERNAL", true}} {
		t.Run(auth.name, func(t *testing.T) {
			a, b := serviceFederation(t, auth.ca)
			alice, bob := login(t, a, "alice"), login(t, b, "bob")
			for _, c := range []struct {
				name   string
				client *testserver.Client
				echo   string
			}{{"a to echo.b.test", alice, "echo." + domainB}, {"b to echo.a.test", bob, "echo." + domainA}} {
				t.Run(c.name, func(t *testing.T) {
					for i, to := range []string{c.echo, "room@" + c.echo, "room@" + c.echo + "/nick"} {
						id := "e" + string(rune('0'+i))
						c.client.MustSend(t, `<message to="`+to+`" type="chat" id="`+id+`"><body>hi `+to+`</body></message>`)
						m := c.client.MustNext(t, "the echo of "+to, isMessage(id, "chat"))
						if got := m.Get("from"); got != to {
							t.Errorf("echo of %s from %q", to, got)
						}
						if body := m.Child("", "body"); body == nil || body.Text() != "hi "+to {
							t.Errorf("echo of %s: %s", to, m)
						}
					}
					resp, err := c.client.Request(`<iq type="get" id="d1" to="` + c.echo + `"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
					if err != nil {
						t.Fatal(err)
					}
					if id := resp.FirstChild().Child(testserver.NSDiscoInfo, "identity"); resp.Get("type") != "result" || id == nil || id.Get("name") != "echo" {
						t.Errorf("disco#info of %s: %s", c.echo, resp)
					}
					resp, err = c.client.Request(`<iq type="get" id="p1" to="nobody@` + c.echo + `"><ping xmlns="urn:xmpp:ping"/></iq>`)
					if err != nil {
						t.Fatal(err)
					}
					if cond, _ := testserver.ErrorCondition(resp); cond != "service-unavailable" {
						t.Errorf("unanswered IQ: %s, want service-unavailable", resp)
					}
				})
			}
			method := "(dialback)"
			if auth.ca {
				method = "(SASL EXTERNAL)"
			}
			streams(t, a, "out a.test→echo.b.test ready "+method, "out echo.a.test→b.test ready "+method)
			streams(t, b, "out b.test→echo.a.test ready "+method, "out echo.b.test→a.test ready "+method)
		})
	}
}
