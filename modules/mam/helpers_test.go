package mam_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/mam"
	"github.com/xmppd/xmppd/router"
)

// These tests drive a real server with real clients on every storage
// backend; archives are read back through the protocol, as a client would.

const pw = "password"

// start starts a server with the mam module (and carbons) and the users.
func start(t *testing.T, b storetest.Backend, mutate func(*config.Config), users ...string) *testserver.Server {
	t.Helper()
	s := testserver.StartOn(t, b, func(c *config.Config) {
		testserver.EnableModules(c, "mam", "carbons", "offline", "roster")
		if mutate != nil {
			mutate(c)
		}
	})
	for _, u := range users {
		s.AddUser(u, pw)
	}
	return s
}

// online logs user in with resource and sends available presence.
func online(t *testing.T, s *testserver.Server, user, resource string) *testserver.Client {
	t.Helper()
	c := s.Login(user, pw, testserver.LoginOptions{Resource: resource})
	c.MustSend(t, `<presence/>`)
	c.MustSync(t)
	return c
}

// byID matches the message with id.
func byID(id string) func(*router.Element) bool {
	return func(e *router.Element) bool { return e.Name.Local == "message" && e.Get("id") == id }
}

// stanzaIDs returns the by → id of the stanza-ids directly in m.
func stanzaIDs(m *router.Element) map[string]string {
	out := map[string]string{}
	for _, c := range m.Elements() {
		if c.Name.Space == mam.NSSID && c.Name.Local == "stanza-id" {
			if _, dup := out[c.Get("by")]; dup {
				out[c.Get("by")] = "DUPLICATE"
				continue
			}
			out[c.Get("by")] = c.Get("id")
		}
	}
	return out
}

// page is what one query returned.
type page struct {
	results []*router.Element // the <result/> elements, in the order sent
	fin     *router.Element
}

// ids returns the archive ids of the page's results, in the order sent.
func (p page) ids() []string {
	var out []string
	for _, r := range p.results {
		out = append(out, r.Get("id"))
	}
	return out
}

// forwarded returns the archived message of result r.
func forwarded(r *router.Element) *router.Element {
	f := r.Child(mam.NSForward, "forwarded")
	if f == nil {
		return nil
	}
	if m := f.Child(router.NSClient, "message"); m != nil {
		return m
	}
	return f.Child("", "message")
}

func (p page) complete() bool { return p.fin.Get("complete") == "true" }

func (p page) set() *router.Element { return p.fin.Child(mam.NSRSM, "set") }

func (p page) count() string {
	if c := p.set().Child(mam.NSRSM, "count"); c != nil {
		return c.Text()
	}
	return ""
}

func (p page) first() (id, index string) {
	if f := p.set().Child(mam.NSRSM, "first"); f != nil {
		return f.Text(), f.Get("index")
	}
	return "", ""
}

func (p page) last() string {
	if l := p.set().Child(mam.NSRSM, "last"); l != nil {
		return l.Text()
	}
	return ""
}

// q is one query: form fields (var → values) and the RSM/flip parts.
type q struct {
	fields map[string][]string
	rsm    string // the inside of <set/>, "" for none
	flip   bool
	to     string
}

var queries int

// xml builds the query IQ with id.
func (qq q) xml(id string) string {
	var b strings.Builder
	to := ""
	if qq.to != "" {
		to = ` to="` + qq.to + `"`
	}
	fmt.Fprintf(&b, `<iq type="set" id="%s"%s><query xmlns="urn:xmpp:mam:2" queryid="q-%s">`, id, to, id)
	if qq.fields != nil {
		b.WriteString(`<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>urn:xmpp:mam:2</value></field>`)
		for name, values := range qq.fields {
			fmt.Fprintf(&b, `<field var="%s">`, name)
			for _, v := range values {
				fmt.Fprintf(&b, `<value>%s</value>`, v)
			}
			b.WriteString(`</field>`)
		}
		b.WriteString(`</x>`)
	}
	if qq.rsm != "" {
		b.WriteString(`<set xmlns="http://jabber.org/protocol/rsm">` + qq.rsm + `</set>`)
	}
	if qq.flip {
		b.WriteString(`<flip-page/>`)
	}
	b.WriteString(`</query></iq>`)
	return b.String()
}

// ask sends the query and returns the IQ answer, result or error, and the
// results that came before it.
func ask(t *testing.T, c *testserver.Client, qq q) (page, *router.Element) {
	t.Helper()
	queries++
	id := fmt.Sprintf("mam%d", queries)
	answer, results := c.MustRequestAfter(t, qq.xml(id), func(e *router.Element) bool {
		r := e.Child(mam.NS, "result")
		return e.Name.Local == "message" && r != nil && r.Get("queryid") == "q-"+id
	})
	var p page
	for _, e := range results {
		p.results = append(p.results, e.Child(mam.NS, "result"))
	}
	p.fin = answer.Child(mam.NS, "fin")
	return p, answer
}

// query is ask for a query that must succeed.
func query(t *testing.T, c *testserver.Client, qq q) page {
	t.Helper()
	p, answer := ask(t, c, qq)
	testserver.WantResult(t, answer)
	if p.fin == nil {
		t.Fatalf("result without <fin/>: %s", answer)
	}
	if p.set() == nil {
		t.Fatalf("<fin/> without an RSM <set/>: %s", answer)
	}
	return p
}

// queryError is ask for a query that must fail with cond of type typ.
func queryError(t *testing.T, c *testserver.Client, qq q, cond, typ string) {
	t.Helper()
	p, answer := ask(t, c, qq)
	testserver.WantIQError(t, answer, cond, typ)
	if len(p.results) > 0 {
		t.Errorf("a failed query sent %d results", len(p.results))
	}
}

// send sends a chat message with id and body from c to to, waiting until
// the server has routed it.
func send(t *testing.T, c *testserver.Client, to, id, body string) {
	t.Helper()
	c.MustSend(t, fmt.Sprintf(`<message to="%s" id="%s" type="chat"><body>%s</body></message>`, to, id, body))
	c.MustSync(t)
}
