package roster_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/modules/roster"
	"github.com/xmppd/xmppd/router"
)

// password is every test account's password.
const password = "secret"

// wait bounds what a test waits for the server to do in the background
// (e.g. end a session): generous, because it only bounds a failure.
const wait = 30 * time.Second

// bare returns the bare JID of a local account, as a string.
func bare(local string) string { return local + "@" + testserver.Domain }

// addUsers creates accounts.
func addUsers(s *testserver.Server, locals ...string) {
	for _, l := range locals {
		s.AddUser(l, password)
	}
}

// peer is a logged-in client with the test it serves, so that the steps of
// a scenario read as sentences.
type peer struct {
	*testserver.Client
	t    *testing.T
	full string // the bound full JID
}

// login logs local in with resource ("" lets the server choose).
func login(t *testing.T, s *testserver.Server, local, resource string) *peer {
	t.Helper()
	c := s.Login(local, password, testserver.LoginOptions{Resource: resource})
	return &peer{Client: c, t: t, full: c.LocalAddr().String()}
}

// in returns the peer reporting to t, for use in a subtest.
func (p *peer) in(t *testing.T) *peer {
	q := *p
	q.t = t
	return &q
}

// bare is the peer's bare JID.
func (p *peer) bare() string { return p.LocalAddr().Bare().String() }

// The steps of testserver.Client, reporting to the peer's test.

func (p *peer) send(s string) {
	p.t.Helper()
	p.MustSend(p.t, s)
}

func (p *peer) next(what string, match func(*router.Element) bool) *router.Element {
	p.t.Helper()
	return p.MustNext(p.t, what, match)
}

func (p *peer) request(iq string) *router.Element {
	p.t.Helper()
	return p.MustRequest(p.t, iq)
}

// sync makes a round trip, so that everything the peer sent before has
// been processed, and everything queued for it before has arrived.
func (p *peer) sync() {
	p.t.Helper()
	p.MustSync(p.t)
}

func (p *peer) none(what string, match func(*router.Element) bool) {
	p.t.Helper()
	p.ExpectNone(p.t, what, match)
}

func (p *peer) drain() {
	p.t.Helper()
	p.Drain(p.t)
}

// rosterGet asks for the roster, which also makes the resource interested
// in roster pushes (RFC 6121 §2.1.6), and returns the items.
func (p *peer) rosterGet() []item {
	p.t.Helper()
	res := p.request(`<iq type='get' id='get-` + router.NewID() + `'><query xmlns='jabber:iq:roster'/></iq>`)
	if res.Get("type") != "result" {
		p.t.Fatalf("%s: roster get: %s", p.full, res)
	}
	q := res.Child(roster.NS, "query")
	if q == nil {
		p.t.Fatalf("%s: roster result without query: %s", p.full, res)
	}
	return items(q)
}

// available sends presence (initial presence if it is the first) and waits
// for the server to reflect it back, as it does to each of the user's
// available resources, the sender included (RFC 6121 §4.2.2).
func (p *peer) available(presence string) *router.Element {
	p.t.Helper()
	if presence == "" {
		presence = "<presence/>"
	}
	p.send(presence)
	return p.next("own presence", isPresence(p.full, ""))
}

// online is login, roster get and initial presence: what a client does
// when it starts.
func online(t *testing.T, s *testserver.Server, local, resource string) *peer {
	t.Helper()
	p := login(t, s, local, resource)
	p.rosterGet()
	p.available("")
	return p
}

// drop closes the TCP connection under the TLS stream without a word, as a
// client that lost its network does.
func (p *peer) drop() {
	p.t.Helper()
	nc, ok := p.Conn().(interface{ NetConn() net.Conn })
	if !ok {
		p.t.Fatalf("%s: connection %T has no NetConn", p.full, p.Conn())
	}
	if tc, ok := nc.NetConn().(*net.TCPConn); ok {
		tc.SetLinger(0) // a reset, not an orderly FIN
	}
	nc.NetConn().Close()
}

// isPresence matches presence from a JID ("" for any) with a type (""
// for available).
func isPresence(from, typ string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		return e.Name.Local == "presence" && (from == "" || e.Get("from") == from) && e.Get("type") == typ
	}
}

// withChild narrows a matcher to stanzas with a child element (show,
// status, priority) of the given text.
func withChild(match func(*router.Element) bool, name, text string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		c := e.Child("", name)
		return match(e) && c != nil && c.Text() == text
	}
}

// isMessage matches a message by id.
func isMessage(id string) func(*router.Element) bool {
	return func(e *router.Element) bool { return e.Name.Local == "message" && e.Get("id") == id }
}

// isPush matches a roster push (RFC 6121 §2.1.6) for a contact.
func isPush(contact string) func(*router.Element) bool {
	return func(e *router.Element) bool {
		if e.Name.Local != "iq" || e.Get("type") != "set" {
			return false
		}
		q := e.Child(roster.NS, "query")
		return q != nil && q.Child(roster.NS, "item") != nil && q.Child(roster.NS, "item").Get("jid") == contact
	}
}

// anyPush matches every roster push.
func anyPush(e *router.Element) bool {
	return e.Name.Local == "iq" && e.Get("type") == "set" && e.Child(roster.NS, "query") != nil
}

// item is a roster item as a client sees it, in a form tests compare.
type item struct {
	JID, Subscription, Ask, Name string
	Approved                     bool
	Groups                       []string
}

func (it item) String() string {
	s := it.JID + " subscription=" + it.Subscription
	if it.Ask != "" {
		s += " ask=" + it.Ask
	}
	if it.Approved {
		s += " approved"
	}
	if it.Name != "" {
		s += fmt.Sprintf(" name=%q", it.Name)
	}
	if len(it.Groups) > 0 {
		s += " groups=" + strings.Join(it.Groups, ",")
	}
	return s
}

// items reads the items of a roster query.
func items(q *router.Element) []item {
	var out []item
	for _, e := range q.Elements() {
		if e.Name.Space != roster.NS || e.Name.Local != "item" {
			continue
		}
		it := item{JID: e.Get("jid"), Subscription: e.Get("subscription"), Ask: e.Get("ask"), Name: e.Get("name"), Approved: e.Get("approved") == "true"}
		for _, g := range e.Elements() {
			if g.Name.Local == "group" {
				it.Groups = append(it.Groups, g.Text())
			}
		}
		slices.Sort(it.Groups)
		out = append(out, it)
	}
	return out
}

// pushed waits for the roster push of contact and returns its item and
// version. A push comes from the user's bare JID or from nobody (RFC 6121
// §2.1.6), and always carries a version here (XEP-0237).
func (p *peer) pushed(contact string) (item, string) {
	p.t.Helper()
	e := p.next("roster push for "+contact, isPush(contact))
	if from := e.Get("from"); from != "" && from != p.bare() {
		p.t.Errorf("%s: roster push from %q", p.full, from)
	}
	q := e.Child(roster.NS, "query")
	its := items(q)
	if len(its) != 1 {
		p.t.Fatalf("%s: push with %d items: %s", p.full, len(its), e)
	}
	if q.Get("ver") == "" {
		p.t.Errorf("%s: push without ver: %s", p.full, e)
	}
	return its[0], q.Get("ver")
}

// expectPush waits for the push of contact and checks its item.
func (p *peer) expectPush(want item) string {
	p.t.Helper()
	got, ver := p.pushed(want.JID)
	if got.String() != want.String() {
		p.t.Errorf("%s: push %v, want %v", p.full, got, want)
	}
	return ver
}

// awaitPush waits for a push of want.JID that shows want, passing over
// pushes of that contact that show something else: a change of state that
// clients do not see (a pending inbound request, §2.1.2) is pushed too,
// since the roster version changes with it.
func (p *peer) awaitPush(want item) string {
	p.t.Helper()
	for {
		got, ver := p.pushed(want.JID)
		if got.String() == want.String() {
			return ver
		}
	}
}

// expectRoster checks the whole roster.
func (p *peer) expectRoster(want ...item) {
	p.t.Helper()
	got := p.rosterGet()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		p.t.Errorf("%s: roster\n got %v\nwant %v", p.full, got, want)
	}
}

// condition returns the error condition of an IQ answer, "" for a result.
func condition(t *testing.T, e *router.Element) string {
	t.Helper()
	if e.Get("type") == "result" {
		return ""
	}
	cond, _ := testserver.ErrorCondition(e)
	if cond == "" {
		t.Fatalf("answer is neither result nor error with a condition: %s", e)
	}
	return cond
}

// befriend gives two accounts a mutual subscription (both) straight in
// storage, as the operator's `xmppd roster add` does.
func befriend(t *testing.T, s *testserver.Server, a, b string) {
	t.Helper()
	r := admin.Rosters{Users: admin.Users{Config: s.Config, Users: s.Store.Users()}, Store: s.Store}
	if err := r.Add(context.Background(), bare(a), bare(b), "", nil); err != nil {
		t.Fatalf("befriend %s and %s: %v", a, b, err)
	}
}

// eventually polls cond until it holds, for what the server does in the
// background after a connection ends; the bound only limits a failure.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
