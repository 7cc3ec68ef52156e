package testserver

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/router"
)

// The steps below are the client's methods for a test that stops at the
// first failure. Each takes the test (or subtest) that runs the step, which
// need not be the one that started the server: failing a test from another
// test's goroutine is not allowed.

// MustSend is SendRaw that fails t on error.
func (c *Client) MustSend(t testing.TB, xml string) {
	t.Helper()
	if err := c.SendRaw(xml); err != nil {
		t.Fatalf("%s: send: %v", c.LocalAddr(), err)
	}
}

// MustNext is Next that fails t on error; what names the awaited element
// in the failure.
func (c *Client) MustNext(t testing.TB, what string, match func(*router.Element) bool) *router.Element {
	t.Helper()
	e, err := c.Next(match)
	if err != nil {
		t.Fatalf("%s: waiting for %s: %v", c.LocalAddr(), what, err)
	}
	return e
}

// MustRequest is Request that fails t on error. The answer may be an IQ
// error: see WantResult and WantIQError.
func (c *Client) MustRequest(t testing.TB, iq string) *router.Element {
	t.Helper()
	e, err := c.Request(iq)
	if err != nil {
		t.Fatalf("%s: %s: %v", c.LocalAddr(), iq, err)
	}
	return e
}

// MustSync is Sync that fails t on error.
func (c *Client) MustSync(t testing.TB) {
	t.Helper()
	if err := c.Sync(); err != nil {
		t.Fatalf("%s: sync: %v", c.LocalAddr(), err)
	}
}

// ExpectNone checks that nothing match accepts has arrived; what names it
// in the failure. The clients whose stanzas could have caused it must have
// synced before; ExpectNone syncs c, so that whatever the server queued for
// c by then is seen. What it checks stays available to Next.
func (c *Client) ExpectNone(t testing.TB, what string, match func(*router.Element) bool) {
	t.Helper()
	c.MustSync(t)
	for _, e := range c.Pending() {
		if match(e) {
			t.Errorf("%s got %s: %s", c.LocalAddr(), what, e)
		}
	}
}

// Drain syncs and then forgets everything that has arrived, for a test
// that checks later that something does not come.
func (c *Client) Drain(t testing.TB) {
	t.Helper()
	c.MustSync(t)
	c.Pending()
	c.mu.Lock()
	c.backlog = nil
	c.mu.Unlock()
}

// WantResult fails t unless e is an IQ result.
func WantResult(t testing.TB, e *router.Element) {
	t.Helper()
	if e.Get("type") != "result" {
		t.Fatalf("got %s, want a result", e)
	}
}

// WantIQError fails t unless e is an IQ error with the defined condition
// cond and the error type typ.
func WantIQError(t testing.TB, e *router.Element, cond, typ string) {
	t.Helper()
	if e.Get("type") != "error" {
		t.Fatalf("got %s, want a %s error", e, cond)
	}
	if c, ty := ErrorCondition(e); c != cond || ty != typ {
		t.Fatalf("error %s (type %s), want %s (type %s): %s", c, ty, cond, typ, e)
	}
}

// HasFeature tells whether e, the answer to a disco#info request
// (XEP-0030), lists the feature ns.
func HasFeature(e *router.Element, ns string) bool {
	q := e.Child(nsDiscoInfo, "query")
	if q == nil {
		return false
	}
	for _, f := range q.Elements() {
		if f.Name.Local == "feature" && f.Get("var") == ns {
			return true
		}
	}
	return false
}

// DataForm is a XEP-0004 data form of FORM_TYPE formType and type typ
// ("submit", "form") with the fields given as var, value pairs: what the
// pubsub tests send as node configuration, publish-options and
// authorization answers.
func DataForm(formType, typ string, fields ...string) string {
	var b strings.Builder
	b.WriteString(`<x xmlns='jabber:x:data' type='` + typ + `'><field var='FORM_TYPE' type='hidden'><value>` + formType + `</value></field>`)
	for i := 0; i+1 < len(fields); i += 2 {
		b.WriteString(`<field var='` + fields[i] + `'><value>` + fields[i+1] + `</value></field>`)
	}
	b.WriteString(`</x>`)
	return b.String()
}

// MustRequestAfter is MustRequest for a request whose answer comes after
// other stanzas (the results of an archive query, XEP-0313 §4.2): it
// returns the answer and, in the order they came, the elements match
// accepts that arrived before it, taking them from the backlog.
func (c *Client) MustRequestAfter(t testing.TB, iq string, match func(*router.Element) bool) (answer *router.Element, before []*router.Element) {
	t.Helper()
	answer = c.MustRequest(t, iq)
	return answer, c.Take(match)
}
