package c2s_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// attrOf is an attribute of e by its local name, in any namespace
// (xmpp:version is urn:xmpp:xbosh's).
func attrOf(e *router.Element, local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// TestBOSHLoginAndChat creates a BOSH session over HTTP and over HTTPS
// (HTTP/2), checks the session creation response (XEP-0124 §7.1,
// XEP-0206 §5), logs in with SCRAM and a restart, binds, and chats with a
// TCP client; the client's terminate ends the session.
func TestBOSHLoginAndChat(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"http", false}, {"https", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := testserver.Start(t, nil)
			s.AddUser("alice", "secret")
			s.AddUser("bob", "secret")
			c, err := s.DialBOSH(testserver.BOSHOptions{TLS: tc.tls})
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			cr := c.BOSH().Created
			for attr, want := range map[string]string{"wait": "60", "hold": "1", "requests": "2", "inactivity": "60", "ver": "1.11", "from": "localhost", "version": "1.0", "restartlogic": "true"} {
				if got := attrOf(cr, attr); got != want {
					t.Errorf("creation response %s=%q, want %q (%s)", attr, got, want, cr)
				}
			}
			if cr.Get("sid") == "" {
				t.Errorf("creation response has no sid: %s", cr)
			}
			if c.Features.Name.Local != "features" || c.Features.Child("urn:ietf:params:xml:ns:xmpp-tls", "starttls") != nil {
				t.Fatalf("features %s: want stream features without STARTTLS", c.Features)
			}
			if cond, err := c.AuthSCRAM("alice", "secret", testserver.SCRAM{Mechanism: "SCRAM-SHA-256"}); err != nil || cond != "" {
				t.Fatalf("scram: %q %v", cond, err)
			}
			if c.Features.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind") == nil {
				t.Fatalf("features after the restart %s have no bind", c.Features)
			}
			full, err := c.Bind("web")
			if err != nil || full != "alice@localhost/web" {
				t.Fatalf("bind: %q %v", full, err)
			}
			bob := s.Login("bob", "secret", testserver.LoginOptions{})
			bob.MustSend(t, `<message type="chat" id="m1" to="alice@localhost/web"><body>hi from tcp</body></message>`)
			m := nextElement(t, c, "message m1", isMessage("m1"))
			if m.Get("from") != bob.LocalAddr().String() || m.Child("", "body").Text() != "hi from tcp" {
				t.Errorf("got %s", m)
			}
			c.Send(`<message xmlns="jabber:client" type="chat" id="m2" to="` + bob.LocalAddr().String() + `"><body>hi from bosh</body></message>`)
			got := bob.MustNext(t, "message m2", isMessage("m2"))
			if got.Get("from") != "alice@localhost/web" {
				t.Errorf("from = %q, want the BOSH session's full JID", got.Get("from"))
			}
			if n := s.C2S.Stats().Sessions["bosh"]; n != 1 {
				t.Errorf("bosh sessions = %d, want 1", n)
			}
			// A terminate with a stanza in it: the stanza is delivered first.
			c.BOSH().Post(c.BOSH().Body(c.BOSH().NextRID(), `type="terminate"`, `<message type="chat" id="m3" to="`+bob.LocalAddr().String()+`"><body>bye</body></message>`))
			bob.MustNext(t, "message m3", isMessage("m3"))
			if _, err := c.Next(); err == nil || !strings.Contains(err.Error(), "stream closed") {
				t.Errorf("after terminate: %v, want the end of the stream", err)
			}
		})
	}
}

// Attributes of session creation requests (XEP-0124 §7.1, XEP-0206 §5).
const (
	boshXMPP  = `xmlns:xmpp="urn:xmpp:xbosh" xmpp:version="1.0"`
	boshLogin = `to="localhost" wait="60" hold="1" ver="1.11" ` + boshXMPP
	// boshLegacy is a legacy client's: no ver (XEP-0124 §17.1).
	boshLegacy = `to="localhost" wait="60" hold="1" ` + boshXMPP
)

// startBOSH starts a server whose configuration mutate changes (nil:
// the defaults) and adds alice and bob.
func startBOSH(t *testing.T, mutate func(*config.Config)) *testserver.Server {
	t.Helper()
	s := testserver.Start(t, mutate)
	s.AddUser("alice", "secret")
	s.AddUser("bob", "secret")
	return s
}

// loginManual logs alice in as alice@localhost/web over BOSH with the
// creation attributes attrs ("" for boshLogin); the client keeps no
// request held, so the test's requests are all there are.
func loginManual(t *testing.T, s *testserver.Server, attrs string) (*testserver.Raw, *testserver.BOSHClient) {
	t.Helper()
	if attrs == "" {
		attrs = boshLogin
	}
	c := s.LoginBOSH("alice", "secret", "web", testserver.BOSHOptions{Manual: true, Attrs: attrs})
	return c, c.BOSH()
}

// awaitBOSH waits for a response; rawWait only bounds a failure.
func awaitBOSH(t *testing.T, what string, ch <-chan testserver.BOSHResponse) testserver.BOSHResponse {
	t.Helper()
	select {
	case r := <-ch:
		if r.Err != nil {
			t.Fatalf("%s: %v", what, r.Err)
		}
		return r
	case <-time.After(rawWait):
		t.Fatalf("%s: no response in %v", what, rawWait)
	}
	return testserver.BOSHResponse{}
}

// mustDo posts a request and fails the test if it gets no response.
func mustDo(t *testing.T, b *testserver.BOSHClient, what, body string) testserver.BOSHResponse {
	t.Helper()
	return awaitBOSH(t, what, b.PostAsync(body))
}

// wantTerminate checks that r is a terminate body with cond and the HTTP
// status.
func wantTerminate(t *testing.T, what string, r testserver.BOSHResponse, status int, cond string) {
	t.Helper()
	if r.Resp.StatusCode != status || r.Body == nil || r.Body.Get("type") != "terminate" || r.Body.Get("condition") != cond {
		t.Errorf("%s: %d %s, want %d and a terminate body with condition %q", what, r.Resp.StatusCode, r.Data, status, cond)
	}
}

// wantEmpty checks that r is an empty 200 response: no payloads, no type.
func wantEmpty(t *testing.T, what string, r testserver.BOSHResponse) {
	t.Helper()
	if r.Resp.StatusCode != http.StatusOK || r.Body == nil || r.Body.Get("type") != "" || len(r.Body.Elements()) != 0 {
		t.Errorf("%s: %d %s, want an empty <body/>", what, r.Resp.StatusCode, r.Data)
	}
}

// ping is an XEP-0199 ping of the server with id, which it answers with
// a result of that id.
func ping(id string) string {
	return `<iq xmlns="jabber:client" type="get" id="` + id + `" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`
}

// ids lists the ids of the payloads of responses, in order.
func ids(rs ...testserver.BOSHResponse) []string {
	var out []string
	for _, r := range rs {
		if r.Body == nil {
			continue
		}
		for _, e := range r.Body.Elements() {
			out = append(out, e.Get("id"))
		}
	}
	return out
}

// gone checks that the session of b no longer exists: a request gets
// item-not-found with HTTP 404 (XEP-0124 §17.1, §14).
func gone(t *testing.T, b *testserver.BOSHClient) {
	t.Helper()
	r := mustDo(t, b, "request to an ended session", b.Body(b.NextRID(), "", ""))
	wantTerminate(t, "request to an ended session", r, http.StatusNotFound, "item-not-found")
}

// waitEnded waits for a channel of ended; rawWait only bounds a failure.
func waitEnded(t *testing.T, what string, end <-chan struct{}) {
	t.Helper()
	select {
	case <-end:
	case <-time.After(rawWait):
		t.Fatalf("%s did not end", what)
	}
}

// TestBOSHSessionCreation checks the session creation response (XEP-0124
// §7.1): wait and hold capped by max_wait and max_hold, requests one more
// than hold, the defaults when wait and hold are left out, the content
// attribute as the responses' Content-Type; and the refusals, each a
// terminate body with its condition, with the HTTP code for a legacy
// client (§17.1) or a request that is no BOSH at all.
func TestBOSHSessionCreation(t *testing.T) {
	s := startBOSH(t, func(c *config.Config) {
		c.Web.BOSH.MaxWait = 30 * time.Second
		c.Web.BOSH.MaxHold = 2
		c.Web.BOSH.MaxPause = 2 * time.Minute
	})
	body := func(rid, attrs string) string {
		return `<body xmlns="http://jabber.org/protocol/httpbind" rid="` + rid + `" ` + attrs + `/>`
	}
	tests := []struct {
		name string
		body string // the request, or
		// attrs are the creation request's attributes after rid.
		attrs      string
		status     int
		cond       string            // the terminate condition; "" for a session
		want       map[string]string // attributes of the creation response
		streamErr  string            // the stream error of a remote-stream-error
		contentTyp string            // the responses' Content-Type
	}{
		{name: "wait and hold capped", attrs: `to="localhost" wait="3600" hold="5" ver="1.11" ` + boshXMPP, status: 200,
			want: map[string]string{"wait": "30", "hold": "2", "requests": "3", "maxpause": "120", "ver": "1.11", "inactivity": "60"}},
		{name: "polling session", attrs: `to="localhost" wait="0" hold="0" ver="1.11" ` + boshXMPP, status: 200,
			want: map[string]string{"wait": "0", "hold": "0", "requests": "1"}},
		{name: "wait and hold left out", attrs: `to="localhost" ver="1.6" ` + boshXMPP, status: 200,
			want: map[string]string{"wait": "30", "hold": "1", "requests": "2", "ver": "1.6"}},
		{name: "content attribute", attrs: `to="localhost" wait="60" hold="1" ver="1.11" content="text/html; charset=utf-8" ` + boshXMPP, status: 200,
			want: map[string]string{"hold": "1"}, contentTyp: "text/html; charset=utf-8"},
		{name: "no to", attrs: `wait="60" hold="1" ver="1.11"`, status: 200, cond: "improper-addressing"},
		{name: "unknown host", attrs: `to="example.com" wait="60" hold="1" ver="1.11"`, status: 200, cond: "host-unknown"},
		{name: "a user's JID as to", attrs: `to="alice@localhost" wait="60" hold="1" ver="1.11"`, status: 200, cond: "host-unknown"},
		{name: "negative hold", attrs: `to="localhost" wait="60" hold="-1" ver="1.11"`, status: 200, cond: "bad-request"},
		{name: "negative hold, legacy client", attrs: `to="localhost" wait="60" hold="-1"`, status: 400, cond: "bad-request"},
		{name: "wait not a number", attrs: `to="localhost" wait="soon" hold="1" ver="1.11"`, status: 200, cond: "bad-request"},
		{name: "bad content", attrs: `to="localhost" wait="60" hold="1" ver="1.11" content=";"`, status: 200, cond: "bad-request"},
		{name: "unsupported XMPP version", attrs: `to="localhost" wait="60" hold="1" ver="1.11" xmlns:xmpp="urn:xmpp:xbosh" xmpp:version="2.0"`,
			status: 200, cond: "remote-stream-error", streamErr: "unsupported-version"},
		{name: "not XML", body: `hello`, status: 400, cond: "bad-request"},
		{name: "not a body", body: `<request xmlns="http://jabber.org/protocol/httpbind" rid="10" to="localhost"/>`, status: 400, cond: "bad-request"},
		{name: "body in another namespace", body: `<body xmlns="jabber:client" rid="10" to="localhost"/>`, status: 400, cond: "bad-request"},
		{name: "no rid", body: `<body xmlns="http://jabber.org/protocol/httpbind" to="localhost"/>`, status: 400, cond: "bad-request"},
		{name: "rid 0", body: body("0", `to="localhost"`), status: 400, cond: "bad-request"},
		{name: "rid above 2^53-1", body: body("9007199254740992", `to="localhost"`), status: 400, cond: "bad-request"},
		{name: "payload not well-formed", body: `<body xmlns="http://jabber.org/protocol/httpbind" rid="10" to="localhost"><message></body>`, status: 400, cond: "bad-request"},
		{name: "content after the body", body: body("10", `to="localhost"`) + `<body/>`, status: 400, cond: "bad-request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := s.NewBOSHClient(testserver.BOSHOptions{})
			req := tt.body
			if req == "" {
				req = body(fmt.Sprint(b.NextRID()), tt.attrs)
			}
			r := mustDo(t, b, "creation", req)
			if tt.cond != "" {
				wantTerminate(t, "creation", r, tt.status, tt.cond)
				if tt.streamErr != "" {
					se := r.Body.Child(router.NSStream, "error")
					if se == nil || se.Child("urn:ietf:params:xml:ns:xmpp-streams", tt.streamErr) == nil {
						t.Errorf("terminate body %s, want the stream error %s in it (XEP-0206 §7)", r.Data, tt.streamErr)
					}
				}
				return
			}
			if r.Resp.StatusCode != tt.status || r.Body == nil || r.Body.Get("sid") == "" {
				t.Fatalf("creation: %d %s, want a session", r.Resp.StatusCode, r.Data)
			}
			for attr, want := range tt.want {
				if got := attrOf(r.Body, attr); got != want {
					t.Errorf("creation response %s=%q, want %q (%s)", attr, got, want, r.Data)
				}
			}
			if f := r.Body.Child(router.NSStream, "features"); f == nil {
				t.Errorf("creation response %s has no stream features", r.Data)
			}
			want := tt.contentTyp
			if want == "" {
				want = "text/xml; charset=utf-8"
			}
			if got := r.Resp.Header.Get("Content-Type"); got != want {
				t.Errorf("Content-Type %q, want %q", got, want)
			}
		})
	}
}

// TestBOSHHTTP: what is not a BOSH request of an allowed page over an
// allowed transport gets an HTTP 4xx with a body saying why; the CORS
// preflight of a browser's POST gets the headers that allow it, and
// responses to allowed pages name their origin.
func TestBOSHHTTP(t *testing.T) {
	s := startBOSH(t, func(c *config.Config) {
		c.Web.BOSH.Origins = []string{"*.example.org"}
		c.Web.TrustedProxies = []string{"127.0.0.1"}
		c.Web.MaxBodySize = 4096
	})
	creation := `<body xmlns="http://jabber.org/protocol/httpbind" rid="100" ` + boshLogin + `/>`
	tests := []struct {
		name    string
		method  string
		tls     bool
		header  http.Header
		body    string
		status  int
		text    string            // in the response body
		headers map[string]string // response headers
	}{
		{name: "GET", method: http.MethodGet, status: http.StatusMethodNotAllowed, text: "XEP-0124", headers: map[string]string{"Allow": "POST, OPTIONS"}},
		{name: "PUT", method: http.MethodPut, body: creation, status: http.StatusMethodNotAllowed, text: "POST"},
		{name: "CORS preflight", method: http.MethodOptions, header: http.Header{"Origin": {"https://app.example.org"}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"content-type"}},
			status: http.StatusOK, headers: map[string]string{"Access-Control-Allow-Origin": "https://app.example.org", "Access-Control-Allow-Methods": "POST, OPTIONS", "Access-Control-Allow-Headers": "Content-Type"}},
		{name: "preflight from a page not allowed", method: http.MethodOptions, header: http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"POST"}},
			status: http.StatusForbidden, text: "origin not allowed"},
		{name: "POST from an allowed page", method: http.MethodPost, header: http.Header{"Origin": {"https://app.example.org"}}, body: creation,
			status: http.StatusOK, text: "sid=", headers: map[string]string{"Access-Control-Allow-Origin": "https://app.example.org"}},
		{name: "POST from a page not allowed", method: http.MethodPost, header: http.Header{"Origin": {"https://evil.example"}}, body: creation,
			status: http.StatusForbidden, text: "origin not allowed"},
		{name: "plain HTTP through a proxy", method: http.MethodPost, header: http.Header{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Proto": {"http"}}, body: creation,
			status: http.StatusForbidden, text: "needs HTTPS"},
		{name: "HTTPS through a trusted proxy", method: http.MethodPost, header: http.Header{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Proto": {"https"}}, body: creation,
			status: http.StatusOK, text: "sid="},
		{name: "HTTPS", method: http.MethodPost, tls: true, body: creation, status: http.StatusOK, text: "sid="},
		{name: "body too large", method: http.MethodPost, body: `<body xmlns="http://jabber.org/protocol/httpbind" rid="100" sid="x">` + strings.Repeat("<presence/>", 1000) + `</body>`,
			status: http.StatusRequestEntityTooLarge, text: "4096"},
		{name: "unknown sid", method: http.MethodPost, body: `<body xmlns="http://jabber.org/protocol/httpbind" rid="100" sid="nosuchsession"/>`,
			status: http.StatusNotFound, text: `condition="item-not-found"`},
		{name: "bad XML", method: http.MethodPost, body: `<body xmlns="http://jabber.org/protocol/httpbind" rid="100" sid="nosuchsession"><message>`,
			status: http.StatusBadRequest, text: `condition="bad-request"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := s.NewBOSHClient(testserver.BOSHOptions{TLS: tt.tls})
			req, err := http.NewRequest(tt.method, b.URL, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := b.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, data, tt.status)
			}
			if !strings.Contains(string(data), tt.text) {
				t.Errorf("body %q does not say %q", data, tt.text)
			}
			for k, v := range tt.headers {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestBOSHSecureSession: a session opened over HTTPS stays on HTTPS
// (XEP-0124 §15): a request of it over plain HTTP is refused, and the
// session, not ended by that, goes on over HTTPS.
func TestBOSHSecureSession(t *testing.T) {
	s := startBOSH(t, nil)
	c := s.LoginBOSH("alice", "secret", "web", testserver.BOSHOptions{TLS: true, Manual: true, Attrs: boshLogin})
	b := c.BOSH()
	plain := s.NewBOSHClient(testserver.BOSHOptions{})
	plain.SID = b.SID
	r := mustDo(t, plain, "over plain HTTP", plain.Body(b.NextRID(), "", ping("p1")))
	if r.Resp.StatusCode != http.StatusForbidden || !strings.Contains(string(r.Data), "HTTPS") {
		t.Errorf("over plain HTTP: %d %s, want 403 saying HTTPS", r.Resp.StatusCode, r.Data)
	}
	// The same rid again, over HTTPS: the session is there and the plain
	// request was not taken.
	b.SetRID(b.NextRID() - 1)
	r = mustDo(t, b, "over HTTPS", b.Body(b.NextRID(), "", ping("p2")))
	if got := ids(r); len(got) != 1 || got[0] != "p2" {
		t.Errorf("over HTTPS: %s, want the result of p2 only", r.Data)
	}
}

// TestBOSHRequestIDs: requests are applied and answered in rid order
// whatever order they arrive in (XEP-0124 §14.2); a repeated rid gets the
// same response again, or, while the first is unanswered, takes its
// place and the first gets the recoverable error (§14.3); a rid beyond
// the window, or one whose response is no longer kept, ends the session
// with item-not-found (§14.1, §14.3), HTTP 404 for a legacy client
// (§17.1); too many simultaneous requests end it with policy-violation
// (§11). Each session is alice's, logged in, with hold 1 and requests 2.
func TestBOSHRequestIDs(t *testing.T) {
	tests := []struct {
		name  string
		attrs string // creation attributes; "" for boshLogin
		run   func(t *testing.T, b *testserver.BOSHClient)
	}{
		{name: "a repeated rid gets the same response", run: func(t *testing.T, b *testserver.BOSHClient) {
			rid := b.NextRID()
			first := mustDo(t, b, "ping", b.Body(rid, "", ping("p1")))
			again := mustDo(t, b, "the ping again", b.Body(rid, "", ping("p1")))
			if got := ids(first); len(got) != 1 || got[0] != "p1" {
				t.Fatalf("response %s, want the result of p1", first.Data)
			}
			if string(again.Data) != string(first.Data) {
				t.Errorf("repeated rid: %s, want the same response %s", again.Data, first.Data)
			}
			// The payload was applied once: the next response has p2 only.
			next := mustDo(t, b, "next ping", b.Body(b.NextRID(), "", ping("p2")))
			if got := ids(next); len(got) != 1 || got[0] != "p2" {
				t.Errorf("next response %s, want the result of p2 only", next.Data)
			}
		}},
		{name: "rids out of order are applied in order", run: func(t *testing.T, b *testserver.BOSHClient) {
			rid := b.NextRID()
			b.NextRID()
			// rid+1 first, twice: one of the two gets the recoverable
			// error, which shows the server holds rid+1 before rid came.
			later1 := b.PostAsync(b.Body(rid+1, "", ping("second")))
			later2 := b.PostAsync(b.Body(rid+1, "", ping("second")))
			var later <-chan testserver.BOSHResponse
			select {
			case r := <-later1:
				later = later2
				if r.Err != nil || r.Body == nil || r.Body.Get("type") != "error" {
					t.Fatalf("replaced request: %v %s, want type=error", r.Err, r.Data)
				}
			case r := <-later2:
				later = later1
				if r.Err != nil || r.Body == nil || r.Body.Get("type") != "error" {
					t.Fatalf("replaced request: %v %s, want type=error", r.Err, r.Data)
				}
			case <-time.After(rawWait):
				t.Fatal("no recoverable error for the repeated rid")
			}
			first := mustDo(t, b, "the first rid", b.Body(rid, "", ping("first")))
			second := awaitBOSH(t, "the second rid", later)
			if got := strings.Join(ids(first, second), " "); got != "first second" {
				t.Errorf("results %q, want first then second", got)
			}
		}},
		{name: "a held rid sent again", run: func(t *testing.T, b *testserver.BOSHClient) {
			rid := b.NextRID()
			a, c := b.PostAsync(b.Body(rid, "", "")), b.PostAsync(b.Body(rid, "", ""))
			var held <-chan testserver.BOSHResponse
			select {
			case r := <-a:
				held = c
				if r.Err != nil || r.Body == nil || r.Body.Get("type") != "error" {
					t.Fatalf("replaced request: %v %s, want type=error", r.Err, r.Data)
				}
			case r := <-c:
				held = a
				if r.Err != nil || r.Body == nil || r.Body.Get("type") != "error" {
					t.Fatalf("replaced request: %v %s, want type=error", r.Err, r.Data)
				}
			case <-time.After(rawWait):
				t.Fatal("no recoverable error for the repeated rid")
			}
			// The one held now is answered when the next request comes.
			next := b.PostAsync(b.Body(b.NextRID(), "", ping("p1")))
			wantEmpty(t, "the held request", awaitBOSH(t, "the held request", held))
			if got := ids(awaitBOSH(t, "next", next)); len(got) != 1 || got[0] != "p1" {
				t.Errorf("next request: %v, want the result of p1", got)
			}
		}},
		{name: "rid beyond the window", run: func(t *testing.T, b *testserver.BOSHClient) {
			rid := b.NextRID()
			r := mustDo(t, b, "rid+2", b.Body(rid+2, "", ping("p1")))
			wantTerminate(t, "rid beyond the window", r, http.StatusOK, "item-not-found")
			gone(t, b)
		}},
		{name: "rid beyond the window, legacy client", attrs: boshLegacy, run: func(t *testing.T, b *testserver.BOSHClient) {
			rid := b.NextRID()
			r := mustDo(t, b, "rid+2", b.Body(rid+2, "", ping("p1")))
			wantTerminate(t, "rid beyond the window", r, http.StatusNotFound, "item-not-found")
			gone(t, b)
		}},
		{name: "terminate may go one beyond the window", run: func(t *testing.T, b *testserver.BOSHClient) {
			rid := b.NextRID()
			second := b.PostAsync(b.Body(rid+1, "", ""))
			terminate := b.PostAsync(b.Body(rid+2, `type="terminate"`, ""))
			// rid completes the sequence: three requests, the third a
			// terminate, answered in rid order; the terminate body goes
			// to the only one still held, the terminate request.
			wantEmpty(t, "rid", mustDo(t, b, "rid", b.Body(rid, "", "")))
			wantEmpty(t, "rid+1", awaitBOSH(t, "rid+1", second))
			wantTerminate(t, "the terminate request", awaitBOSH(t, "terminate", terminate), http.StatusOK, "")
		}},
		{name: "response no longer kept", run: func(t *testing.T, b *testserver.BOSHClient) {
			rid := b.NextRID()
			for i, id := range []string{"p1", "p2", "p3"} {
				mustDo(t, b, id, b.Body(rid+uint64(i), "", ping(id)))
				if i < 2 {
					b.NextRID()
				}
			}
			// requests is 2: the responses to rid+1 and rid+2 are kept.
			if r := mustDo(t, b, "rid+1 again", b.Body(rid+1, "", ping("p2"))); !strings.Contains(string(r.Data), `id="p2"`) {
				t.Errorf("rid+1 again: %s, want its response with p2", r.Data)
			}
			r := mustDo(t, b, "rid again", b.Body(rid, "", ping("p1")))
			wantTerminate(t, "a rid whose response is gone", r, http.StatusOK, "item-not-found")
			gone(t, b)
		}},
		{name: "too many simultaneous requests", run: func(t *testing.T, b *testserver.BOSHClient) {
			rid := b.NextRID()
			b.NextRID()
			b.NextRID()
			// rid held (its repetition answered with the error shows it),
			// rid+2 waiting for rid+1 (likewise): rid+1 is a third
			// request unanswered, with requests 2.
			for _, r := range []uint64{rid, rid + 2} {
				a, c := b.PostAsync(b.Body(r, "", "")), b.PostAsync(b.Body(r, "", ""))
				select {
				case <-a:
				case <-c:
				case <-time.After(rawWait):
					t.Fatal("no recoverable error for the repeated rid")
				}
			}
			r := mustDo(t, b, "rid+1", b.Body(rid+1, "", ""))
			wantTerminate(t, "a third simultaneous request", r, http.StatusOK, "policy-violation")
			gone(t, b)
		}},
	}
	s := startBOSH(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, b := loginManual(t, s, tt.attrs)
			tt.run(t, b)
		})
	}
}

// TestBOSHHoldAndWait: the server keeps at most hold requests waiting,
// hold capped by max_hold, answering the oldest when one more comes, and
// what is to be sent goes on the oldest held (XEP-0124 §8); a request
// with nothing to carry is answered empty after wait, capped by max_wait.
func TestBOSHHoldAndWait(t *testing.T) {
	tests := []struct {
		name     string
		maxWait  time.Duration
		attrs    string
		wantHold int
	}{
		{name: "hold capped by max_hold", attrs: `to="localhost" wait="60" hold="5" ver="1.11" ` + boshXMPP, wantHold: 2},
		{name: "hold 1", attrs: `to="localhost" wait="60" hold="1" ver="1.11" ` + boshXMPP, wantHold: 1},
		// The test's deadline (rawWait) is below the client's wait: only
		// max_wait can answer in time.
		{name: "wait capped by max_wait", maxWait: time.Second, attrs: `to="localhost" wait="60" hold="1" ver="1.11" ` + boshXMPP, wantHold: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startBOSH(t, func(c *config.Config) {
				c.Web.BOSH.MaxHold = 2
				if tt.maxWait > 0 {
					c.Web.BOSH.MaxWait = tt.maxWait
				}
			})
			c, b := loginManual(t, s, tt.attrs)
			if got := attrOf(b.Created, "hold"); got != fmt.Sprint(tt.wantHold) {
				t.Fatalf("creation response hold=%q, want %d", got, tt.wantHold)
			}
			if tt.maxWait > 0 {
				if got := attrOf(b.Created, "wait"); got != "1" {
					t.Errorf("creation response wait=%q, want 1", got)
				}
				wantEmpty(t, "a request with nothing to carry", mustDo(t, b, "empty request", b.Body(b.NextRID(), "", "")))
				return
			}
			// hold+1 empty requests: the first is answered at once, empty.
			var rs []<-chan testserver.BOSHResponse
			for range tt.wantHold + 1 {
				rs = append(rs, b.PostAsync(b.Body(b.NextRID(), "", "")))
			}
			wantEmpty(t, "the oldest request beyond hold", awaitBOSH(t, "oldest", rs[0]))
			// A message goes on the oldest held request.
			bob := s.Login("bob", "secret", testserver.LoginOptions{})
			bob.MustSend(t, `<message type="chat" id="m1" to="alice@localhost/web"><body>hi</body></message>`)
			if got := ids(awaitBOSH(t, "the oldest held", rs[1])); len(got) != 1 || got[0] != "m1" {
				t.Errorf("oldest held request carried %v, want m1", got)
			}
			c.BOSH().Post(b.Body(b.NextRID(), `type="terminate"`, ""))
		})
	}
}

// TestBOSHPolling: with web.bosh.polling set, two empty requests within
// the interval end the session with policy-violation when the first got
// an empty response: in a polling session (hold 0) back to back, in a
// long-polling one while another is held (XEP-0124 §11, §12). The
// interval is an hour, so that the test does not depend on the clock.
func TestBOSHPolling(t *testing.T) {
	const polling = `to="localhost" wait="60" hold="0" ver="1.11" ` + boshXMPP
	sasl := `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">AGFsaWNlAHdyb25n</auth>`
	tests := []struct {
		name     string
		interval time.Duration
		attrs    string
		// requests after the creation; async ones are not awaited.
		payloads []string
		async    int // how many of the first requests are posted without waiting
		want     string
	}{
		{name: "two empty polls", interval: time.Hour, attrs: polling, payloads: []string{"", ""}, want: "policy-violation"},
		{name: "an empty poll after one with payloads", interval: time.Hour, attrs: polling, payloads: []string{"", sasl, ""}},
		{name: "no polling interval", attrs: polling, payloads: []string{"", "", ""}},
		{name: "long polling, an empty request while one is held", interval: time.Hour, attrs: boshLogin, payloads: []string{"", ""}, async: 1, want: "policy-violation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startBOSH(t, func(c *config.Config) { c.Web.BOSH.Polling = tt.interval })
			b := s.NewBOSHClient(testserver.BOSHOptions{})
			if _, _, err := b.Create(tt.attrs); err != nil || b.SID == "" {
				t.Fatalf("create: %v %s", err, b.Created)
			}
			if tt.interval > 0 && tt.attrs == polling {
				if got := attrOf(b.Created, "polling"); got != "3600" {
					t.Errorf("creation response polling=%q, want 3600", got)
				}
				if got := attrOf(b.Created, "inactivity"); got != "7200" {
					t.Errorf("creation response inactivity=%q, want 7200: more than polling (§12)", got)
				}
			}
			var last testserver.BOSHResponse
			for i, p := range tt.payloads {
				if i < tt.async {
					b.PostAsync(b.Body(b.NextRID(), "", p))
					continue
				}
				last = mustDo(t, b, fmt.Sprintf("request %d", i), b.Body(b.NextRID(), "", p))
				if i < len(tt.payloads)-1 && last.Condition() != "" {
					t.Fatalf("request %d: %s, the session ended early", i, last.Data)
				}
			}
			if got := last.Condition(); got != tt.want {
				t.Errorf("last request: %s, want condition %q", last.Data, tt.want)
			}
		})
	}
}

// TestBOSHPause: a pause up to maxpause answers every held request, the
// pause request too, empty, and sets the inactivity period until the next
// request (XEP-0124 §10); a longer pause, or one where none is offered,
// is a bad-request.
func TestBOSHPause(t *testing.T) {
	tests := []struct {
		name     string
		maxPause time.Duration
		pause    string
		want     string // the pause's terminate condition; "" for none
	}{
		{name: "pause", maxPause: 2 * time.Minute, pause: "120"},
		{name: "pause shorter than inactivity", maxPause: 2 * time.Minute, pause: "1"},
		{name: "pause beyond maxpause", maxPause: 2 * time.Minute, pause: "121", want: "bad-request"},
		{name: "pause not offered", pause: "60", want: "bad-request"},
		{name: "pause not a number", maxPause: 2 * time.Minute, pause: "soon", want: "bad-request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startBOSH(t, func(c *config.Config) {
				c.Web.BOSH.MaxPause = tt.maxPause
				c.Web.BOSH.Inactivity = time.Hour
			})
			_, b := loginManual(t, s, "")
			if want := fmt.Sprint(int(tt.maxPause / time.Second)); tt.maxPause > 0 && attrOf(b.Created, "maxpause") != want {
				t.Errorf("creation response maxpause=%q, want %s", attrOf(b.Created, "maxpause"), want)
			} else if tt.maxPause == 0 && attrOf(b.Created, "maxpause") != "" {
				t.Errorf("creation response offers maxpause=%q, none configured", attrOf(b.Created, "maxpause"))
			}
			end := ended(t, s, "alice@localhost/web")
			held := b.PostAsync(b.Body(b.NextRID(), "", ""))
			r := mustDo(t, b, "pause", b.Body(b.NextRID(), `pause="`+tt.pause+`"`, ""))
			if tt.want != "" {
				wantTerminate(t, "pause", r, http.StatusOK, tt.want)
				return
			}
			wantEmpty(t, "pause", r)
			wantEmpty(t, "the held request", awaitBOSH(t, "the held request", held))
			if tt.pause == "1" {
				// Inactivity is an hour; only the pause ends the session.
				waitEnded(t, "the paused session", end)
				gone(t, b)
				return
			}
			// The session goes on after the pause.
			if got := ids(mustDo(t, b, "after the pause", b.Body(b.NextRID(), "", ping("p1")))); len(got) != 1 || got[0] != "p1" {
				t.Errorf("after the pause: %v, want the result of p1", got)
			}
		})
	}
}

// TestBOSHInactivity checks XEP-0124 §8 and XEP-0206 with stream
// management: a session that goes the inactivity period without a request
// ends, or, with resumption enabled, hibernates like a dropped TCP
// connection and is resumed over a new BOSH session with what was sent
// meanwhile; a request keeps the session alive.
func TestBOSHInactivity(t *testing.T) {
	const inactivity = time.Second
	t.Run("no stream management", func(t *testing.T) {
		s := startBOSH(t, func(c *config.Config) { c.Web.BOSH.Inactivity = inactivity })
		_, b := loginManual(t, s, "")
		if got := attrOf(b.Created, "inactivity"); got != "1" {
			t.Errorf("creation response inactivity=%q, want 1", got)
		}
		waitFor(t, "the idle session to end", func() bool { return s.C2S.Stats().Sessions["bosh"] == 0 })
		if s.C2S.Hibernating() != 0 {
			t.Errorf("%d sessions hibernating, want none without stream management", s.C2S.Hibernating())
		}
		gone(t, b)
	})
	t.Run("held requests keep it alive", func(t *testing.T) {
		s := startBOSH(t, func(c *config.Config) {
			c.Web.BOSH.Inactivity = inactivity
			c.Web.BOSH.MaxWait = 2 * inactivity
		})
		_, b := loginManual(t, s, "")
		// Each request is held for the wait (twice the inactivity) and
		// answered empty; the session lives on across them.
		for i := range 2 {
			wantEmpty(t, fmt.Sprint("held request ", i), mustDo(t, b, "held request", b.Body(b.NextRID(), "", "")))
		}
		if got := ids(mustDo(t, b, "ping", b.Body(b.NextRID(), "", ping("alive")))); len(got) != 1 || got[0] != "alive" {
			t.Errorf("after the held requests: %v, want the result of alive", got)
		}
	})
	t.Run("a resumable session hibernates", func(t *testing.T) {
		s := startBOSH(t, func(c *config.Config) { c.Web.BOSH.Inactivity = inactivity })
		// A wait of 1 s: a vanished client's held request ends after it,
		// and the inactivity period starts then.
		short := `to="localhost" wait="1" hold="1" ver="1.11" ` + boshXMPP
		alice := s.LoginBOSH("alice", "secret", "web", testserver.BOSHOptions{Attrs: short})
		if err := alice.Send(`<enable xmlns="urn:xmpp:sm:3" resume="true"/>`); err != nil {
			t.Fatal(err)
		}
		id := nextElement(t, alice, "enabled", isSM("enabled")).Get("id")
		alice.BOSH().Vanish() // the browser tab goes: no more requests
		waitFor(t, "the session to hibernate", func() bool { return s.C2S.Hibernating() == 1 })
		bob := s.Login("bob", "secret", testserver.LoginOptions{})
		bob.MustSend(t, `<message type="chat" id="while-away" to="alice@localhost/web"><body>still there?</body></message>`)

		again, err := s.DialBOSH(testserver.BOSHOptions{Attrs: short})
		if err != nil {
			t.Fatal(err)
		}
		if cond, err := again.AuthSCRAM("alice", "secret", testserver.SCRAM{Mechanism: "SCRAM-SHA-256"}); err != nil || cond != "" {
			t.Fatalf("scram: %q %v", cond, err)
		}
		if err := again.Send(`<resume xmlns="urn:xmpp:sm:3" previd="` + id + `" h="0"/>`); err != nil {
			t.Fatal(err)
		}
		r := nextElement(t, again, "resumed", func(e *router.Element) bool { return isSM("resumed")(e) || isSM("failed")(e) })
		if r.Name.Local != "resumed" || r.Get("previd") != id {
			t.Fatalf("resume: got %s", r)
		}
		nextElement(t, again, "the message sent while away", isMessage("while-away"))
	})
}

// TestBOSHStreamErrors checks that a stream error of the XMPP session
// reaches a BOSH client as XEP-0206 §5 and XEP-0124 §17.2 say: a terminate
// body with condition remote-stream-error and the <stream:error/> inside,
// or, at server shutdown, the terminal condition system-shutdown, on a
// request the server holds.
func TestBOSHStreamErrors(t *testing.T) {
	tests := []struct {
		name    string
		payload string // of the request that triggers the error; "" for none
		shut    bool   // shut the server down
		cond    string // the terminate condition
		stream  string // the stream error's condition inside it
	}{
		// The payloads are checked against the stanza limits as they are
		// read from the body: bad-request, a terminal binding condition.
		{name: "stanza too large", cond: "bad-request",
			payload: `<message xmlns="jabber:client" to="bob@localhost"><body>` + strings.Repeat("x", 20000) + `</body></message>`},
		{name: "not a client stanza", cond: "remote-stream-error", stream: "unsupported-stanza-type",
			payload: `<foo xmlns="jabber:client"/>`},
		{name: "server shutdown", shut: true, cond: "system-shutdown", stream: "system-shutdown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startBOSH(t, func(c *config.Config) { c.Limits.MaxStanzaSize = 10000 })
			_, b := loginManual(t, s, "")
			// With hold 1, the second request makes the server answer the
			// first: once that answer is back, the second is held.
			first := b.PostAsync(b.Body(b.NextRID(), "", ""))
			held := b.PostAsync(b.Body(b.NextRID(), "", ""))
			wantEmpty(t, "the first request", awaitBOSH(t, "the first request", first))
			var rs []testserver.BOSHResponse
			switch {
			case tt.shut:
				go s.Shutdown(context.Background())
			default:
				// The held request or this one carries the end.
				rs = append(rs, mustDo(t, b, "the bad payload", b.Body(b.NextRID(), "", tt.payload)))
			}
			rs = append(rs, awaitBOSH(t, "the held request", held))
			var end *testserver.BOSHResponse
			for i := range rs {
				if rs[i].Body != nil && rs[i].Body.Get("type") == "terminate" {
					end = &rs[i]
				}
			}
			if end == nil {
				t.Fatalf("no terminate body among the responses %v", rs)
			}
			wantTerminate(t, "the end", *end, http.StatusOK, tt.cond)
			var got string
			for _, e := range end.Body.Elements() {
				if e.Name.Local != "error" {
					continue
				}
				for _, c := range e.Elements() {
					if c.Name.Space == "urn:ietf:params:xml:ns:xmpp-streams" {
						got = c.Name.Local
					}
				}
			}
			if got != tt.stream {
				t.Errorf("stream error %q in %s, want %q", got, end.Data, tt.stream)
			}
		})
	}
}
