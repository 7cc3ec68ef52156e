package pep_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/caps"
	"github.com/xmppd/xmppd/modules/pep"
	"github.com/xmppd/xmppd/modules/pubsub/core"
	"github.com/xmppd/xmppd/router"
)

const password = "secret"

// Namespaces of the payloads the tests publish.
const (
	nsAvatar     = "urn:xmpp:avatar:metadata"
	nsNick       = "http://jabber.org/protocol/nick"
	nsDeviceList = "eu.siacs.conversations.axolotl.devicelist"
	nsAxolotl    = "eu.siacs.conversations.axolotl"
)

// testOptions are small limits, so that the tests reach them.
var testOptions = pep.Options{MaxItems: 20, MaxItemBytes: 4096, MaxNodes: 12}

// start starts a server on b with the test limits and the accounts given.
func start(t *testing.T, b storetest.Backend, mutate func(*config.Config), users ...string) *testserver.Server {
	t.Helper()
	s := testserver.StartOn(t, b, func(c *config.Config) {
		c.SetModuleOptions("pep", testOptions)
		if mutate != nil {
			mutate(c)
		}
	})
	for _, u := range users {
		s.AddUser(u, password)
	}
	return s
}

func bare(local string) string { return local + "@" + testserver.Domain }

// befriend gives two accounts a mutual presence subscription in storage,
// with groups for a's item of b.
func befriend(t *testing.T, s *testserver.Server, a, b string, groups ...string) {
	t.Helper()
	r := admin.Rosters{Users: admin.Users{Config: s.Config, Users: s.Store.Users()}, Store: s.Store}
	if err := r.Add(context.Background(), bare(a), bare(b), "", groups); err != nil {
		t.Fatalf("befriend %s and %s: %v", a, b, err)
	}
}

// client is a logged-in client of a test.
type client struct {
	*testserver.Client
	t *testing.T
}

// login logs local in, without caps and without presence.
func login(t *testing.T, s *testserver.Server, local, resource string) *client {
	t.Helper()
	return &client{s.Login(local, password, testserver.LoginOptions{Resource: resource}), t}
}

// online logs local in and sends available presence with caps that
// advertise the features given (NODE+notify ones), answering the
// server's disco#info query for them as a client does.
func online(t *testing.T, s *testserver.Server, local, resource string, features ...string) *client {
	t.Helper()
	q := router.NewElement(caps.NSDiscoInfo, "query").Append(
		router.NewElement(caps.NSDiscoInfo, "identity", "category", "client", "type", "pc", "name", "test"),
		router.NewElement(caps.NSDiscoInfo, "feature", "var", caps.NSDiscoInfo))
	for _, f := range features {
		q.Append(router.NewElement(caps.NSDiscoInfo, "feature", "var", f))
	}
	c := caps.Caps{Node: "https://xmppd.test/client", Hash: caps.SHA1, Ver: caps.Ver(caps.ParseInfo(q))}
	cl := s.Login(local, password, testserver.LoginOptions{Resource: resource, AnswerIQ: func(req *router.Element) *router.Element {
		resp := router.NewElement("", "iq", "type", "result", "id", req.Get("id"), "to", req.Get("from"))
		if dq := req.Child(caps.NSDiscoInfo, "query"); dq != nil {
			a := q.Copy()
			a.SetAttr("node", dq.Get("node"))
			resp.Append(a)
		}
		return resp
	}})
	cl.MustSend(t, `<presence><c xmlns='`+caps.NS+`' hash='sha-1' node='`+c.Node+`' ver='`+c.Ver+`'/></presence>`)
	return &client{cl, t}
}

// iq sends a request with a fresh id and returns the answer.
func (c *client) iq(typ, to, payload string) *router.Element {
	c.t.Helper()
	attrTo := ""
	if to != "" {
		attrTo = ` to='` + to + `'`
	}
	return c.MustRequest(c.t, fmt.Sprintf(`<iq type='%s' id='%s'%s>%s</iq>`, typ, router.NewID(), attrTo, payload))
}

// publish publishes payload as item id ("" for none) to node on the
// client's own service, with publish-options fields (var, value pairs).
func publishXML(node, id, payload string, options ...string) string {
	idAttr := ""
	if id != "" {
		idAttr = ` id='` + id + `'`
	}
	s := `<pubsub xmlns='` + core.NS + `'><publish node='` + node + `'><item` + idAttr + `>` + payload + `</item></publish>`
	if len(options) > 0 {
		s += `<publish-options>` + form(core.FormPublishOptions, "submit", options...) + `</publish-options>`
	}
	return s + `</pubsub>`
}

// form is a data form of FORM_TYPE typ with var, value pairs.
func form(formType, typ string, fields ...string) string {
	return testserver.DataForm(formType, typ, fields...)
}

func itemsXML(node, attrs string, ids ...string) string {
	s := `<pubsub xmlns='` + core.NS + `'><items node='` + node + `'` + attrs + `>`
	for _, id := range ids {
		s += `<item id='` + id + `'/>`
	}
	return s + `</items></pubsub>`
}

func ownerXML(op, node, inner string) string {
	return `<pubsub xmlns='` + core.NSOwner + `'><` + op + ` node='` + node + `'>` + inner + `</` + op + `></pubsub>`
}

// itemIDs returns the ids of the items of an items result, in order.
func itemIDs(t *testing.T, e *router.Element) []string {
	t.Helper()
	testserver.WantResult(t, e)
	var ids []string
	for _, it := range e.Child(core.NS, "pubsub").Child(core.NS, "items").Elements() {
		ids = append(ids, it.Get("id"))
	}
	return ids
}

// pubsubError returns the pubsub#errors condition of an error answer.
func pubsubError(e *router.Element) string {
	if er := e.Child("", "error"); er != nil {
		if app := er.Child(core.NSErrors, ""); app != nil {
			return app.Name.Local
		}
	}
	return ""
}

// wantError checks an answer's error condition, type and pubsub#errors
// condition ("" for none).
func wantError(t *testing.T, e *router.Element, cond, typ, app string) {
	t.Helper()
	testserver.WantIQError(t, e, cond, typ)
	if got := pubsubError(e); got != app {
		t.Fatalf("pubsub#errors condition %q, want %q: %s", got, app, e)
	}
}

// isEvent matches a notification from service about node carrying the
// item id (with kind "item") or its retraction ("retract"). The server
// leaves out the 'from' of what the account's own service sends to the
// account's resources (RFC 6120 §8.1.2.1).
func isEvent(service, node, kind, id string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		if e.Name.Local != "message" {
			return false
		}
		if from := e.Get("from"); from != service && (from != "" || !strings.HasPrefix(e.Get("to"), service+"/")) {
			return false
		}
		ev := e.Child(core.NSEvent, "event")
		if ev == nil {
			return false
		}
		its := ev.Child(core.NSEvent, "items")
		if its == nil || its.Get("node") != node {
			return false
		}
		for _, it := range its.Elements() {
			if it.Name.Local == kind && it.Get("id") == id {
				return true
			}
		}
		return false
	}
}
