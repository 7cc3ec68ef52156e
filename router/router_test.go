package router_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
)

// fakeSession is a bound resource that records what the router delivers.
type fakeSession struct {
	router.SessionState
	jid       jid.JID
	available bool
	priority  int
	// full makes Deliver report a full outbound queue.
	full bool

	mu     sync.Mutex
	got    []*router.Stanza
	closed error
}

var _ router.Session = (*fakeSession)(nil)

func newSession(full string, available bool, priority int) *fakeSession {
	return &fakeSession{jid: jid.MustParse(full), available: available, priority: priority}
}

func (s *fakeSession) JID() jid.JID    { return s.jid }
func (s *fakeSession) Available() bool { return s.available }
func (s *fakeSession) Priority() int   { return s.priority }

func (s *fakeSession) LastPresence() *router.Stanza {
	if !s.available {
		return nil
	}
	return mustParse(`<presence/>`)
}

func (s *fakeSession) Deliver(st *router.Stanza) bool {
	if s.full {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, st)
	return true
}

func (s *fakeSession) Close(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = cause
}

// received returns what was delivered so far.
func (s *fakeSession) received() []*router.Stanza {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*router.Stanza(nil), s.got...)
}

// fakeAccounts says which bare JIDs have an account.
type fakeAccounts struct {
	exists map[string]bool
	err    error
}

func (a fakeAccounts) Exists(_ context.Context, bare jid.JID) (bool, error) {
	if a.err != nil {
		return false, a.err
	}
	return a.exists[bare.String()], nil
}

// fakeRemote records what the router hands to s2s.
type fakeRemote struct {
	mu  sync.Mutex
	got []*router.Stanza
}

func (f *fakeRemote) Route(_ context.Context, st *router.Stanza) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, st)
}

// testLogger sends the router's log to the test log, so that it shows only
// when a test fails.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// The sender of the test stanzas, and the accounts that exist.
const (
	sender = "alice@localhost/a"
	domain = "localhost"
)

var existing = []string{"alice@localhost", "bob@localhost", "carol@localhost"}

// newRouter returns a router serving localhost with the accounts in
// existing, the sender bound and available, and sessions bound.
func newRouter(t *testing.T, sessions ...*fakeSession) (*router.Router, *fakeSession) {
	t.Helper()
	accts := fakeAccounts{exists: map[string]bool{}}
	for _, a := range existing {
		accts.exists[a] = true
	}
	r := router.New(testLogger(t), router.NewLocalRegistry(), accts, []string{domain, "example.org"})
	from := newSession(sender, true, 0)
	for _, s := range append([]*fakeSession{from}, sessions...) {
		if _, err := r.Sessions().Bind(s, 0); err != nil {
			t.Fatalf("bind %s: %v", s.jid, err)
		}
	}
	return r, from
}

// parse builds a stanza from XML text as a client stream would deliver it.
func parse(t testing.TB, s string) *router.Stanza {
	t.Helper()
	e, err := router.ParseElement([]byte(s), router.NSClient)
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	st, err := router.NewStanza(e)
	if err != nil {
		t.Fatalf("stanza %s: %v", s, err)
	}
	return st
}

// mustParse is parse for goroutines other than the test's.
func mustParse(s string) *router.Stanza {
	e, err := router.ParseElement([]byte(s), router.NSClient)
	if err != nil {
		panic(err)
	}
	st, err := router.NewStanza(e)
	if err != nil {
		panic(err)
	}
	return st
}

// condition returns the stanza error condition of st, or "" if st is not
// an error.
func condition(st *router.Stanza) string {
	if st.Type() != "error" {
		return ""
	}
	e := st.Child("", "error")
	if e == nil {
		return "(error without <error/>)"
	}
	for _, c := range e.Elements() {
		if c.Name.Space == router.NSStanzas && c.Name.Local != "text" {
			return c.Name.Local
		}
	}
	return "(no condition)"
}

// errorsTo returns the conditions of the errors s received.
func errorsTo(s *fakeSession) []string {
	var out []string
	for _, st := range s.received() {
		if c := condition(st); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// deliveredTo lists the full JIDs of the sessions that received a stanza
// with the given id that is not an error, sorted.
func deliveredTo(id string, sessions []*fakeSession) []string {
	var out []string
	for _, s := range sessions {
		for _, st := range s.received() {
			if st.ID() == id && st.Type() != "error" {
				out = append(out, s.jid.String())
			}
		}
	}
	slices.Sort(out)
	return out
}

// undeliveredHook records the messages given to OnUndelivered.
type undeliveredHook struct {
	handle bool
	mu     sync.Mutex
	got    []string // ids
}

func (h *undeliveredHook) fn(_ context.Context, st *router.Stanza) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, st.ID())
	return h.handle
}

// TestDelivery checks the RFC 6121 §8.5 rules for messages, presences and
// IQs addressed to local users.
func TestDelivery(t *testing.T) {
	type sess struct {
		res       string
		available bool
		priority  int
		full      bool
	}
	// bob has a typical set of resources unless a case says otherwise.
	bob := []sess{
		{res: "phone", available: true, priority: 5},
		{res: "laptop", available: true, priority: 1},
		{res: "idle", available: false, priority: 9},
		{res: "hidden", available: true, priority: -1},
	}
	tests := []struct {
		name     string
		sessions []sess // all of bob@localhost
		// hook, if set, is "handle" or "decline": an OnUndelivered hook is
		// registered that handles the message or not.
		hook          string
		stanza        string
		wantTo        []string // full JIDs that got the stanza
		wantErr       string   // condition the sender got, "" for none
		wantHookCalls int
	}{
		// RFC 6121 §8.5.3.1: a full JID that matches a connected resource.
		{
			name: "chat to full JID", sessions: bob,
			stanza: `<message to="bob@localhost/laptop" type="chat" id="m1"><body>hi</body></message>`,
			wantTo: []string{"bob@localhost/laptop"},
		},
		{
			name: "full JID of an unavailable resource still gets the message", sessions: bob,
			stanza: `<message to="bob@localhost/idle" type="chat" id="m1"><body>hi</body></message>`,
			wantTo: []string{"bob@localhost/idle"},
		},
		{
			name: "full JID of a negative-priority resource gets the message", sessions: bob,
			stanza: `<message to="bob@localhost/hidden" type="normal" id="m1"/>`,
			wantTo: []string{"bob@localhost/hidden"},
		},
		{
			name: "groupchat to a connected full JID", sessions: bob,
			stanza: `<message to="bob@localhost/phone" type="groupchat" id="m1"/>`,
			wantTo: []string{"bob@localhost/phone"},
		},
		{
			name: "full JID whose queue is full counts as undelivered", hook: "handle",
			sessions:      []sess{{res: "phone", available: true, priority: 5, full: true}},
			stanza:        `<message to="bob@localhost/phone" type="chat" id="m1"/>`,
			wantHookCalls: 1,
		},
		// RFC 6121 §8.5.3.2.1: a full JID with no matching resource.
		{
			name: "chat to an unknown resource falls back to the bare JID", sessions: bob,
			stanza: `<message to="bob@localhost/gone" type="chat" id="m1"/>`,
			wantTo: []string{"bob@localhost/phone"},
		},
		{
			name: "normal (no type) to an unknown resource falls back to the bare JID", sessions: bob,
			stanza: `<message to="bob@localhost/gone" id="m1"/>`,
			wantTo: []string{"bob@localhost/phone"},
		},
		{
			name: "groupchat to an unknown resource is an error", sessions: bob,
			stanza:  `<message to="bob@localhost/gone" type="groupchat" id="m1"/>`,
			wantErr: "service-unavailable",
		},
		{
			name: "headline to an unknown resource is dropped", sessions: bob, hook: "handle",
			stanza: `<message to="bob@localhost/gone" type="headline" id="m1"/>`,
		},
		{
			name: "error to an unknown resource is dropped", sessions: bob,
			stanza: `<message to="bob@localhost/gone" type="error" id="m1"/>`,
		},
		{
			name: "chat to an unknown resource of an offline user goes to the hooks", hook: "handle",
			stanza:        `<message to="carol@localhost/gone" type="chat" id="m1"/>`,
			wantHookCalls: 1,
		},
		// RFC 6121 §8.5.2.1.1: a bare JID with available resources.
		{
			name: "chat to bare JID goes to the highest priority", sessions: bob,
			stanza: `<message to="bob@localhost" type="chat" id="m1"/>`,
			wantTo: []string{"bob@localhost/phone"},
		},
		{
			name: "normal to bare JID goes to the highest priority", sessions: bob,
			stanza: `<message to="bob@localhost" id="m1"/>`,
			wantTo: []string{"bob@localhost/phone"},
		},
		{
			name: "ties in priority all get the message",
			sessions: []sess{
				{res: "a", available: true, priority: 3},
				{res: "b", available: true, priority: 0},
				{res: "c", available: true, priority: 3},
			},
			stanza: `<message to="bob@localhost" type="chat" id="m1"/>`,
			wantTo: []string{"bob@localhost/a", "bob@localhost/c"},
		},
		{
			name: "ties at priority zero all get the message",
			sessions: []sess{
				{res: "a", available: true, priority: 0},
				{res: "b", available: true, priority: 0},
			},
			stanza: `<message to="bob@localhost" type="chat" id="m1"/>`,
			wantTo: []string{"bob@localhost/a", "bob@localhost/b"},
		},
		{
			name: "a lower priority found first does not win",
			sessions: []sess{
				{res: "a", available: true, priority: 0},
				{res: "b", available: true, priority: 2},
				{res: "c", available: true, priority: 1},
			},
			stanza: `<message to="bob@localhost" type="chat" id="m1"/>`,
			wantTo: []string{"bob@localhost/b"},
		},
		{
			name: "negative priority never gets bare JID messages", hook: "decline",
			sessions:      []sess{{res: "hidden", available: true, priority: -1}},
			stanza:        `<message to="bob@localhost" type="chat" id="m1"/>`,
			wantErr:       "service-unavailable",
			wantHookCalls: 1,
		},
		{
			name: "headline to bare JID goes to every non-negative available resource", sessions: bob,
			stanza: `<message to="bob@localhost" type="headline" id="m1"/>`,
			wantTo: []string{"bob@localhost/laptop", "bob@localhost/phone"},
		},
		{
			name: "groupchat to bare JID is an error", sessions: bob,
			stanza:  `<message to="bob@localhost" type="groupchat" id="m1"/>`,
			wantErr: "service-unavailable",
		},
		{
			name: "a full queue at the best resource is undelivered", hook: "decline",
			sessions:      []sess{{res: "a", available: true, priority: 1, full: true}, {res: "b", available: true, priority: 0}},
			stanza:        `<message to="bob@localhost" type="chat" id="m1"/>`,
			wantErr:       "service-unavailable",
			wantHookCalls: 1,
		},
		{
			name: "one full queue among tied resources still counts as delivered",
			sessions: []sess{
				{res: "a", available: true, priority: 1, full: true},
				{res: "b", available: true, priority: 1},
			},
			stanza: `<message to="bob@localhost" type="chat" id="m1"/>`,
			wantTo: []string{"bob@localhost/b"},
		},
		// RFC 6121 §8.5.2.2: a bare JID with no available resource.
		{
			name: "offline user, a hook takes the message", hook: "handle",
			sessions:      []sess{{res: "idle", available: false, priority: 5}},
			stanza:        `<message to="bob@localhost" type="chat" id="m1"/>`,
			wantHookCalls: 1,
		},
		{
			name: "offline user, the hook declines", hook: "decline",
			stanza:        `<message to="carol@localhost" type="chat" id="m1"/>`,
			wantErr:       "service-unavailable",
			wantHookCalls: 1,
		},
		{
			name:    "offline user, no hook",
			stanza:  `<message to="carol@localhost" id="m1"/>`,
			wantErr: "service-unavailable",
		},
		{
			name: "offline user, headline is dropped", hook: "decline",
			stanza:        `<message to="carol@localhost" type="headline" id="m1"/>`,
			wantHookCalls: 1,
		},
		{
			name: "offline user, groupchat is an error without the hooks", hook: "handle",
			stanza:  `<message to="carol@localhost" type="groupchat" id="m1"/>`,
			wantErr: "service-unavailable",
		},
		{
			name: "offline user, an error is not answered", hook: "decline",
			stanza: `<message to="carol@localhost" type="error" id="m1"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`,
		},
		// RFC 6121 §8.5.1: no such user.
		{
			name: "unknown user, chat is an error and no hook sees it", hook: "handle",
			stanza:  `<message to="nobody@localhost" type="chat" id="m1"/>`,
			wantErr: "service-unavailable",
		},
		{
			name: "unknown user at a full JID", hook: "handle",
			stanza:  `<message to="nobody@localhost/x" id="m1"/>`,
			wantErr: "service-unavailable",
		},
		{
			name: "unknown user, an error is not answered", hook: "handle",
			stanza: `<message to="nobody@localhost" type="error" id="m1"/>`,
		},
		{
			name: "unknown user, headline is dropped", hook: "handle",
			stanza: `<message to="nobody@localhost" type="headline" id="m1"/>`,
		},
		// Presence, without a presence module.
		{
			name: "presence to bare JID goes to every available resource", sessions: bob,
			stanza: `<presence to="bob@localhost" id="m1"/>`,
			wantTo: []string{"bob@localhost/hidden", "bob@localhost/laptop", "bob@localhost/phone"},
		},
		{
			name: "presence to a full JID", sessions: bob,
			stanza: `<presence to="bob@localhost/idle" id="m1"/>`,
			wantTo: []string{"bob@localhost/idle"},
		},
		{
			name: "subscription presence to an unknown resource goes to the account", sessions: bob,
			stanza: `<presence to="bob@localhost/gone" type="subscribe" id="m1"/>`,
			wantTo: []string{"bob@localhost/hidden", "bob@localhost/laptop", "bob@localhost/phone"},
		},
		{
			name: "available presence to an unknown resource is dropped", sessions: bob,
			stanza: `<presence to="bob@localhost/gone" id="m1"/>`,
		},
		{
			name:   "presence to an unknown user is dropped",
			stanza: `<presence to="nobody@localhost" type="subscribe" id="m1"/>`,
		},
		// IQs to users (RFC 6121 §8.5.2.1.3, §8.5.3).
		{
			name: "iq to a connected full JID", sessions: bob,
			stanza: `<iq to="bob@localhost/idle" type="get" id="m1"><query xmlns="jabber:iq:version"/></iq>`,
			wantTo: []string{"bob@localhost/idle"},
		},
		{
			name: "iq result to a connected full JID", sessions: bob,
			stanza: `<iq to="bob@localhost/phone" type="result" id="m1"/>`,
			wantTo: []string{"bob@localhost/phone"},
		},
		{
			name: "iq to an unknown resource is an error", sessions: bob,
			stanza:  `<iq to="bob@localhost/gone" type="get" id="m1"><query xmlns="jabber:iq:version"/></iq>`,
			wantErr: "service-unavailable",
		},
		{
			name: "iq result to an unknown resource is dropped", sessions: bob,
			stanza: `<iq to="bob@localhost/gone" type="result" id="m1"/>`,
		},
		{
			name: "iq error to an unknown resource is dropped", sessions: bob,
			stanza: `<iq to="bob@localhost/gone" type="error" id="m1"/>`,
		},
		{
			name: "iq to a bare JID nobody handles", sessions: bob,
			stanza:  `<iq to="bob@localhost" type="get" id="m1"><query xmlns="urn:example:nothing"/></iq>`,
			wantErr: "service-unavailable",
		},
		{
			name:    "iq to an unknown user",
			stanza:  `<iq to="nobody@localhost" type="set" id="m1"><query xmlns="urn:example:nothing"/></iq>`,
			wantErr: "service-unavailable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var bound []*fakeSession
			for _, s := range tt.sessions {
				fs := newSession("bob@localhost/"+s.res, s.available, s.priority)
				fs.full = s.full
				bound = append(bound, fs)
			}
			r, from := newRouter(t, bound...)
			hook := &undeliveredHook{handle: tt.hook == "handle"}
			if tt.hook != "" {
				r.OnUndelivered("test", router.PriorityDefault, hook.fn)
			}
			st := parse(t, tt.stanza)
			st.SetFrom(from.jid)
			r.Route(context.Background(), st)

			if got := deliveredTo("m1", bound); !slices.Equal(got, tt.wantTo) {
				t.Errorf("delivered to %q, want %q", got, tt.wantTo)
			}
			var wantErrs []string
			if tt.wantErr != "" {
				wantErrs = []string{tt.wantErr}
			}
			if got := errorsTo(from); !slices.Equal(got, wantErrs) {
				t.Errorf("sender got errors %q, want %q", got, wantErrs)
			}
			if got := len(hook.got); got != tt.wantHookCalls {
				t.Errorf("undelivered hook called %d times, want %d", got, tt.wantHookCalls)
			}
			for _, s := range bound {
				if n := len(errorsTo(s)); n > 0 {
					t.Errorf("%s got %d error(s)", s.jid, n)
				}
			}
		})
	}
}

// TestDeliveryCopies checks that resources that get the same message get
// copies, so that one receiver changing its stanza cannot affect another.
func TestDeliveryCopies(t *testing.T) {
	a := newSession("bob@localhost/a", true, 0)
	b := newSession("bob@localhost/b", true, 0)
	r, from := newRouter(t, a, b)
	st := parse(t, `<message to="bob@localhost" type="chat" id="m1"><body>hi</body></message>`)
	st.SetFrom(from.jid)
	r.Route(context.Background(), st)
	ga, gb := a.received(), b.received()
	if len(ga) != 1 || len(gb) != 1 {
		t.Fatalf("a got %d, b got %d stanzas, want 1 each", len(ga), len(gb))
	}
	if ga[0].Element == gb[0].Element {
		t.Fatal("both resources got the same *Element")
	}
	ga[0].SetAttr("id", "changed")
	if gb[0].ID() != "m1" {
		t.Errorf("changing a's stanza changed b's id to %q", gb[0].ID())
	}
}

// TestBounce checks the shape of the error a sender gets (RFC 6120 §8.3).
func TestBounce(t *testing.T) {
	r, from := newRouter(t)
	st := parse(t, `<message to="nobody@localhost/x" type="chat" id="m1"><body>hi</body></message>`)
	st.SetFrom(from.jid)
	r.Route(context.Background(), st)
	got := from.received()
	if len(got) != 1 {
		t.Fatalf("sender got %d stanzas, want 1", len(got))
	}
	want := `<message id="m1" type="error" to="alice@localhost/a" from="nobody@localhost/x">` +
		`<error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></message>`
	if s := got[0].String(); s != want {
		t.Errorf("bounce is\n%s\nwant\n%s", s, want)
	}
	if !got[0].To.Equal(from.jid) || got[0].From.String() != "nobody@localhost/x" {
		t.Errorf("bounce addresses: to %s from %s", got[0].To, got[0].From)
	}
}

// TestAccountLookupFails checks that a failing account store gives the
// sender an internal-server-error rather than silence or a wrong answer.
func TestAccountLookupFails(t *testing.T) {
	accts := fakeAccounts{err: errors.New("database is down")}
	r := router.New(testLogger(t), router.NewLocalRegistry(), accts, []string{domain})
	from := newSession(sender, true, 0)
	if _, err := r.Sessions().Bind(from, 0); err != nil {
		t.Fatal(err)
	}
	st := parse(t, `<message to="carol@localhost" type="chat" id="m1"/>`)
	st.SetFrom(from.jid)
	r.Route(context.Background(), st)
	if got := errorsTo(from); !slices.Equal(got, []string{"internal-server-error"}) {
		t.Errorf("sender got %q, want internal-server-error", got)
	}
}

// TestNoTo checks that a stanza without 'to' is for the sender's own
// account (RFC 6120 §10.3).
func TestNoTo(t *testing.T) {
	other := newSession("alice@localhost/b", true, 1)
	r, from := newRouter(t, other)
	var got []string
	_, err := r.HandleIQ("test", router.ToAccount, "get", "jabber:iq:roster", func(_ context.Context, iq *router.Stanza) *router.Stanza {
		got = append(got, iq.To.String()+" "+iq.From.String())
		return iq.Reply()
	})
	if err != nil {
		t.Fatal(err)
	}
	iq := parse(t, `<iq type="get" id="r1"><query xmlns="jabber:iq:roster"/></iq>`)
	iq.SetFrom(from.jid)
	r.Route(context.Background(), iq)
	if !slices.Equal(got, []string{" alice@localhost/a"}) {
		t.Errorf("handler saw %q", got)
	}
	if res := from.received(); len(res) != 1 || res[0].Type() != "result" || res[0].ID() != "r1" {
		t.Errorf("sender got %v, want the result", res)
	}

	msg := parse(t, `<message type="chat" id="m1"/>`)
	msg.SetFrom(from.jid)
	r.Route(context.Background(), msg)
	if got := deliveredTo("m1", []*fakeSession{from, other}); !slices.Equal(got, []string{"alice@localhost/b"}) {
		t.Errorf("message without to delivered to %q, want the best resource", got)
	}
}

// TestIQToServer checks the dispatch of IQs addressed to the server.
func TestIQToServer(t *testing.T) {
	const ping = `<iq to="localhost" type="get" id="q1"><ping xmlns="urn:xmpp:ping"/></iq>`
	tests := []struct {
		name       string
		stanza     string
		handler    router.IQHandler // registered for get urn:xmpp:ping
		wantResult bool
		wantErr    string
		wantCalls  int
	}{
		{
			name: "handled", stanza: ping,
			handler:    func(_ context.Context, iq *router.Stanza) *router.Stanza { return iq.Reply() },
			wantResult: true, wantCalls: 1,
		},
		{
			name: "handler answers with an error", stanza: ping,
			handler: func(_ context.Context, iq *router.Stanza) *router.Stanza {
				return iq.ErrorReply(stanza.Modify, stanza.NotAcceptable, "")
			},
			wantErr: "not-acceptable", wantCalls: 1,
		},
		{
			name: "handler answers later (nil)", stanza: ping,
			handler:   func(_ context.Context, iq *router.Stanza) *router.Stanza { return nil },
			wantCalls: 1,
		},
		{
			name: "no handler", stanza: ping,
			wantErr: "service-unavailable",
		},
		{
			name: "handler for another type", stanza: `<iq to="localhost" type="set" id="q1"><ping xmlns="urn:xmpp:ping"/></iq>`,
			handler: func(_ context.Context, iq *router.Stanza) *router.Stanza { return iq.Reply() },
			wantErr: "service-unavailable",
		},
		{
			name: "handler for another namespace", stanza: `<iq to="localhost" type="get" id="q1"><query xmlns="jabber:iq:version"/></iq>`,
			handler: func(_ context.Context, iq *router.Stanza) *router.Stanza { return iq.Reply() },
			wantErr: "service-unavailable",
		},
		{
			name: "handler panics", stanza: ping,
			handler: func(_ context.Context, iq *router.Stanza) *router.Stanza { panic("boom") },
			wantErr: "internal-server-error", wantCalls: 1,
		},
		{
			name: "result to the server is dropped", stanza: `<iq to="localhost" type="result" id="q1"><ping xmlns="urn:xmpp:ping"/></iq>`,
			handler: func(_ context.Context, iq *router.Stanza) *router.Stanza { return iq.Reply() },
		},
		{
			name: "error to the server is dropped", stanza: `<iq to="localhost" type="error" id="q1"/>`,
			handler: func(_ context.Context, iq *router.Stanza) *router.Stanza { return iq.Reply() },
		},
		{
			name: "request without payload", stanza: `<iq to="localhost" type="get" id="q1"/>`,
			handler: func(_ context.Context, iq *router.Stanza) *router.Stanza { return iq.Reply() },
			wantErr: "bad-request",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, from := newRouter(t)
			calls := 0
			if tt.handler != nil {
				_, err := r.HandleIQ("test", router.ToServer, "get", "urn:xmpp:ping", func(ctx context.Context, iq *router.Stanza) *router.Stanza {
					calls++
					return tt.handler(ctx, iq)
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			st := parse(t, tt.stanza)
			st.SetFrom(from.jid)
			r.Route(context.Background(), st)
			if calls != tt.wantCalls {
				t.Errorf("handler called %d times, want %d", calls, tt.wantCalls)
			}
			got := from.received()
			want := 0
			if tt.wantResult || tt.wantErr != "" {
				want = 1
			}
			if len(got) != want {
				t.Fatalf("sender got %d stanzas, want %d: %v", len(got), want, got)
			}
			if want == 0 {
				return
			}
			reply := got[0]
			if reply.ID() != "q1" || reply.Kind() != router.KindIQ || reply.From.String() != "localhost" || !reply.To.Equal(from.jid) {
				t.Errorf("reply %s: want iq q1 from localhost to %s", reply, from.jid)
			}
			if tt.wantResult && reply.Type() != "result" {
				t.Errorf("reply type %q, want result", reply.Type())
			}
			if c := condition(reply); c != tt.wantErr {
				t.Errorf("reply condition %q, want %q", c, tt.wantErr)
			}
		})
	}
}

// TestPanickingHandlerDoesNotStopRouter checks that the router goes on
// after a handler crashed.
func TestPanickingHandlerDoesNotStopRouter(t *testing.T) {
	r, from := newRouter(t)
	if _, err := r.HandleIQ("crasher", router.ToServer, "get", "urn:example:crash", func(context.Context, *router.Stanza) *router.Stanza {
		var m map[string]int
		m["x"] = 1 // a runtime panic, not just panic(value)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.HandleIQ("ping", router.ToServer, "get", "urn:xmpp:ping", func(_ context.Context, iq *router.Stanza) *router.Stanza {
		return iq.Reply()
	}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		crash := parse(t, fmt.Sprintf(`<iq to="localhost" type="get" id="c%d"><x xmlns="urn:example:crash"/></iq>`, i))
		crash.SetFrom(from.jid)
		r.Route(context.Background(), crash)
		ping := parse(t, fmt.Sprintf(`<iq to="localhost" type="get" id="p%d"><ping xmlns="urn:xmpp:ping"/></iq>`, i))
		ping.SetFrom(from.jid)
		r.Route(context.Background(), ping)
	}
	var got []string
	for _, st := range from.received() {
		got = append(got, st.ID()+":"+st.Type()+":"+condition(st))
	}
	want := []string{
		"c0:error:internal-server-error", "p0:result:",
		"c1:error:internal-server-error", "p1:result:",
		"c2:error:internal-server-error", "p2:result:",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestToServer checks messages and presences addressed to the server.
func TestToServer(t *testing.T) {
	tests := []struct {
		stanza  string
		wantErr string
	}{
		{`<message to="localhost" type="chat" id="m1"/>`, "service-unavailable"},
		{`<message to="localhost" id="m1"/>`, "service-unavailable"},
		{`<message to="localhost" type="headline" id="m1"/>`, ""},
		{`<message to="localhost" type="groupchat" id="m1"/>`, ""},
		{`<message to="localhost" type="error" id="m1"/>`, ""},
		{`<presence to="localhost" id="m1"/>`, ""},
		{`<presence to="localhost" type="probe" id="m1"/>`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.stanza, func(t *testing.T) {
			r, from := newRouter(t)
			st := parse(t, tt.stanza)
			st.SetFrom(from.jid)
			r.Route(context.Background(), st)
			var want []string
			if tt.wantErr != "" {
				want = []string{tt.wantErr}
			}
			if got := errorsTo(from); !slices.Equal(got, want) {
				t.Errorf("sender got %q, want %q", got, want)
			}
		})
	}
}

// TestRemote checks stanzas for domains the server does not serve.
func TestRemote(t *testing.T) {
	tests := []struct {
		name       string
		remote     bool
		stanza     string
		wantErr    string
		wantRemote int
	}{
		{name: "no s2s: message", stanza: `<message to="bob@remote.example" type="chat" id="m1"/>`, wantErr: "remote-server-not-found"},
		{name: "no s2s: iq", stanza: `<iq to="remote.example" type="get" id="m1"><ping xmlns="urn:xmpp:ping"/></iq>`, wantErr: "remote-server-not-found"},
		{name: "no s2s: error is not answered", stanza: `<message to="bob@remote.example" type="error" id="m1"/>`},
		{name: "no s2s: iq result is not answered", stanza: `<iq to="bob@remote.example/r" type="result" id="m1"/>`},
		{name: "s2s: handed over", remote: true, stanza: `<message to="bob@remote.example" type="chat" id="m1"/>`, wantRemote: 1},
		{name: "s2s: errors are handed over too", remote: true, stanza: `<message to="bob@remote.example" type="error" id="m1"/>`, wantRemote: 1},
		{name: "s2s: a served domain stays local", remote: true, stanza: `<message to="nobody@example.org" type="chat" id="m1"/>`, wantErr: "service-unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, from := newRouter(t)
			rem := &fakeRemote{}
			if tt.remote {
				r.SetRemote(rem)
			}
			st := parse(t, tt.stanza)
			st.SetFrom(from.jid)
			r.Route(context.Background(), st)
			var want []string
			if tt.wantErr != "" {
				want = []string{tt.wantErr}
			}
			if got := errorsTo(from); !slices.Equal(got, want) {
				t.Errorf("sender got %q, want %q", got, want)
			}
			if len(rem.got) != tt.wantRemote {
				t.Fatalf("remote got %d stanzas, want %d", len(rem.got), tt.wantRemote)
			}
			if tt.wantRemote > 0 && rem.got[0].ID() != "m1" {
				t.Errorf("remote got %s", rem.got[0])
			}
		})
	}
}

// TestFilters checks that filters run by priority, highest first, and can
// change or stop a stanza.
func TestFilters(t *testing.T) {
	// tag is a filter that appends its name to the body, so the order of
	// the filters shows in what the recipient gets.
	tag := func(name string) router.Filter {
		return func(_ context.Context, st *router.Stanza) *router.Stanza {
			body := st.Child("", "body")
			body.Children = append(body.Children, router.Text(name+";"))
			return st
		}
	}
	drop := func(context.Context, *router.Stanza) *router.Stanza { return nil }
	replace := func(_ context.Context, st *router.Stanza) *router.Stanza {
		out := st.Copy()
		out.Child("", "body").Children = []router.Node{router.Text("replaced;")}
		return out
	}
	crash := func(context.Context, *router.Stanza) *router.Stanza { panic("filter bug") }
	type filter struct {
		priority int
		f        router.Filter
	}
	tests := []struct {
		name     string
		filters  []filter
		wantBody string // "" means not delivered
		wantErr  string // the condition the sender gets, "" for none
	}{
		{name: "none", wantBody: "x;"},
		{
			name:     "priority order, not registration order",
			filters:  []filter{{router.PriorityLast, tag("last")}, {router.PriorityDefault, tag("default")}, {router.PriorityFirst, tag("first")}, {router.PriorityAccess, tag("access")}},
			wantBody: "x;access;first;default;last;",
		},
		{
			name:     "same priority keeps registration order",
			filters:  []filter{{0, tag("one")}, {0, tag("two")}, {0, tag("three")}},
			wantBody: "x;one;two;three;",
		},
		{
			name:    "a dropping filter stops the stanza and the filters after it",
			filters: []filter{{10, tag("before")}, {5, drop}, {0, tag("after")}},
		},
		{
			name:     "a filter may return another stanza",
			filters:  []filter{{10, tag("before")}, {5, replace}, {0, tag("after")}},
			wantBody: "replaced;after;",
		},
		{
			name:    "a crashing filter stops the stanza and answers the sender",
			filters: []filter{{10, crash}, {0, tag("after")}},
			wantErr: "internal-server-error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bob := newSession("bob@localhost/b", true, 0)
			r, from := newRouter(t, bob)
			for _, f := range tt.filters {
				r.AddFilter("test", f.priority, f.f)
			}
			st := parse(t, `<message to="bob@localhost" type="chat" id="m1"><body>x;</body></message>`)
			st.SetFrom(from.jid)
			r.Route(context.Background(), st)
			got := bob.received()
			if tt.wantBody == "" {
				if len(got) != 0 {
					t.Errorf("delivered %s, want nothing", got[0])
				}
			} else if len(got) != 1 || got[0].Child("", "body").Text() != tt.wantBody {
				t.Errorf("delivered %v, want body %q", got, tt.wantBody)
			}
			errs := errorsTo(from)
			switch {
			case tt.wantErr == "" && len(errs) > 0:
				t.Errorf("sender got errors %q", errs)
			case tt.wantErr != "" && !slices.Equal(errs, []string{tt.wantErr}):
				t.Errorf("sender got errors %q, want [%s]", errs, tt.wantErr)
			}
		})
	}
}

// TestStanzaHandlers checks message and presence handlers: priority order,
// a handler that handles stops the chain, and unhandled stanzas get the
// default rules.
func TestStanzaHandlers(t *testing.T) {
	bob := newSession("bob@localhost/b", true, 0)
	r, from := newRouter(t, bob)
	var calls []string
	handler := func(name string, handles bool) router.StanzaHandler {
		return func(_ context.Context, st *router.Stanza) bool {
			calls = append(calls, name+":"+st.ID())
			return handles && st.Get("type") == "chat"
		}
	}
	r.HandleStanza("low", router.ToAccount, router.KindMessage, -5, handler("low", true))
	r.HandleStanza("high", router.ToAccount, router.KindMessage, 5, handler("high", false))
	r.HandleStanza("server", router.ToServer, router.KindMessage, 0, handler("server", true))

	for _, s := range []string{
		`<message to="bob@localhost" type="chat" id="chat"/>`,
		`<message to="bob@localhost" type="normal" id="normal"/>`,
		`<message to="bob@localhost/b" type="chat" id="full"/>`,
		`<message to="localhost" type="chat" id="server"/>`,
	} {
		st := parse(t, s)
		st.SetFrom(from.jid)
		r.Route(context.Background(), st)
	}
	wantCalls := []string{"high:chat", "low:chat", "high:normal", "low:normal", "server:server"}
	if !slices.Equal(calls, wantCalls) {
		t.Errorf("calls %q, want %q", calls, wantCalls)
	}
	var got []string
	for _, st := range bob.received() {
		got = append(got, st.ID())
	}
	// "chat" was handled; "normal" fell through to delivery; a full JID
	// goes straight to the resource.
	if want := []string{"normal", "full"}; !slices.Equal(got, want) {
		t.Errorf("bob got %q, want %q", got, want)
	}
	if errs := errorsTo(from); len(errs) > 0 {
		t.Errorf("sender got errors %q", errs)
	}
}

// TestRegistrationRemove checks that every kind of registration can be
// taken back, leaving the router as if it had never been made.
func TestRegistrationRemove(t *testing.T) {
	bob := newSession("bob@localhost/b", true, 0)
	r, from := newRouter(t, bob)
	route := func(s string) {
		st := parse(t, s)
		st.SetFrom(from.jid)
		r.Route(context.Background(), st)
	}
	var calls []string
	iqReg, err := r.HandleIQ("m", router.ToServer, "get", "urn:xmpp:ping", func(_ context.Context, iq *router.Stanza) *router.Stanza {
		calls = append(calls, "iq")
		return iq.Reply()
	})
	if err != nil {
		t.Fatal(err)
	}
	stReg := r.HandleStanza("m", router.ToAccount, router.KindMessage, 0, func(context.Context, *router.Stanza) bool {
		calls = append(calls, "stanza")
		return false
	})
	fReg := r.AddFilter("m", 0, func(_ context.Context, st *router.Stanza) *router.Stanza {
		calls = append(calls, "filter")
		return st
	})
	uReg := r.OnUndelivered("m", 0, func(context.Context, *router.Stanza) bool {
		calls = append(calls, "undelivered")
		return true
	})
	featA := r.AddFeature(router.ToServer, "urn:xmpp:ping")
	featB := r.AddFeature(router.ToServer, "urn:xmpp:ping") // a second module advertising the same
	featC := r.AddFeature(router.ToServer, "jabber:iq:version")
	featD := r.AddFeature(router.ToAccount, "urn:xmpp:mam:2")

	if got, want := r.Features(router.ToServer), []string{"jabber:iq:version", "urn:xmpp:ping"}; !slices.Equal(got, want) {
		t.Errorf("server features %q, want %q (sorted, unique)", got, want)
	}
	if got, want := r.Features(router.ToAccount), []string{"urn:xmpp:mam:2"}; !slices.Equal(got, want) {
		t.Errorf("account features %q, want %q", got, want)
	}

	const ping = `<iq to="localhost" type="get" id="p"><ping xmlns="urn:xmpp:ping"/></iq>`
	route(ping)
	route(`<message to="bob@localhost" id="m"/>`)
	route(`<message to="carol@localhost" id="u"/>`)
	if want := []string{"filter", "iq", "filter", "stanza", "filter", "stanza", "undelivered"}; !slices.Equal(calls, want) {
		t.Fatalf("before removal: calls %q, want %q", calls, want)
	}

	for _, reg := range []router.Registration{iqReg, stReg, fReg, uReg, featA, featC, featD} {
		reg.Remove()
	}
	calls = nil
	route(ping)
	route(`<message to="bob@localhost" id="m"/>`)
	route(`<message to="carol@localhost" id="u"/>`)
	if len(calls) > 0 {
		t.Errorf("after removal: calls %q, want none", calls)
	}
	if got := errorsTo(from); !slices.Equal(got, []string{"service-unavailable", "service-unavailable"}) {
		t.Errorf("after removal the sender got %q, want service-unavailable for the ping and the offline message", got)
	}
	if got, want := r.Features(router.ToServer), []string{"urn:xmpp:ping"}; !slices.Equal(got, want) {
		t.Errorf("server features %q, want %q (still advertised by the other registration)", got, want)
	}
	if got := r.Features(router.ToAccount); len(got) > 0 {
		t.Errorf("account features %q, want none", got)
	}
	featB.Remove()
	if got := r.Features(router.ToServer); len(got) > 0 {
		t.Errorf("server features %q, want none", got)
	}

	// The key is free again.
	if _, err := r.HandleIQ("other", router.ToServer, "get", "urn:xmpp:ping", func(_ context.Context, iq *router.Stanza) *router.Stanza {
		return iq.Reply()
	}); err != nil {
		t.Errorf("register again after Remove: %v", err)
	}
}

// TestHandleIQDuplicate checks that one IQ key has one handler.
func TestHandleIQDuplicate(t *testing.T) {
	r, _ := newRouter(t)
	h := func(_ context.Context, iq *router.Stanza) *router.Stanza { return iq.Reply() }
	if _, err := r.HandleIQ("first", router.ToServer, "get", "urn:xmpp:ping", h); err != nil {
		t.Fatal(err)
	}
	_, err := r.HandleIQ("second", router.ToServer, "get", "urn:xmpp:ping", h)
	if err == nil {
		t.Fatal("a second handler for the same key was accepted")
	}
	if !strings.Contains(err.Error(), "first") {
		t.Errorf("error %q does not name the module that has the key", err)
	}
	// Other types and targets are other keys.
	for _, k := range []struct {
		target router.Target
		typ    string
	}{{router.ToServer, "set"}, {router.ToAccount, "get"}} {
		if _, err := r.HandleIQ("second", k.target, k.typ, "urn:xmpp:ping", h); err != nil {
			t.Errorf("%s %s: %v", k.target, k.typ, err)
		}
	}
}

// TestDomains checks that the router tells served user domains, service
// addresses and remote domains apart.
func TestDomains(t *testing.T) {
	r, _ := newRouter(t)
	if _, err := r.AddService("muc", "conference.localhost", nil); err != nil {
		t.Fatal(err)
	}
	got := r.Domains()
	slices.Sort(got)
	if want := []string{"example.org", "localhost"}; !slices.Equal(got, want) {
		t.Errorf("Domains() = %q, want %q", got, want)
	}
	if got, want := r.Services(), []string{"conference.localhost"}; !slices.Equal(got, want) {
		t.Errorf("Services() = %q, want %q", got, want)
	}
	tests := []struct {
		domain                string
		users, service, local bool
	}{
		{domain: "localhost", users: true, local: true},
		{domain: "example.org", users: true, local: true},
		{domain: "conference.localhost", service: true, local: true},
		{domain: "upload.localhost"},
		{domain: "example.com"},
		{domain: ""},
	}
	for _, tt := range tests {
		if got := r.ServesUsers(tt.domain); got != tt.users {
			t.Errorf("ServesUsers(%q) = %v, want %v", tt.domain, got, tt.users)
		}
		if got := r.IsService(tt.domain); got != tt.service {
			t.Errorf("IsService(%q) = %v, want %v", tt.domain, got, tt.service)
		}
		if got := r.IsLocal(tt.domain); got != tt.local {
			t.Errorf("IsLocal(%q) = %v, want %v", tt.domain, got, tt.local)
		}
	}
}

// TestConcurrentRouting routes from many goroutines while modules come and
// go, for the race detector.
func TestConcurrentRouting(t *testing.T) {
	bob := newSession("bob@localhost/b", true, 0)
	r, from := newRouter(t, bob)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			reg, err := r.HandleIQ("m", router.ToServer, "get", "urn:xmpp:ping", func(_ context.Context, iq *router.Stanza) *router.Stanza { return iq.Reply() })
			if err != nil {
				t.Error(err)
				return
			}
			f := r.AddFilter("m", 0, func(_ context.Context, st *router.Stanza) *router.Stanza { return st })
			feat := r.AddFeature(router.ToServer, "urn:xmpp:ping")
			_ = r.Features(router.ToServer)
			reg.Remove()
			f.Remove()
			feat.Remove()
		}
	}()
	const senders, perSender = 4, 200
	var routers sync.WaitGroup
	for g := range senders {
		routers.Add(1)
		go func() {
			defer routers.Done()
			for i := range perSender {
				msg := mustParse(fmt.Sprintf(`<message to="bob@localhost" type="chat" id="m%d-%d"/>`, g, i))
				msg.SetFrom(from.jid)
				r.Route(context.Background(), msg)
				iq := mustParse(fmt.Sprintf(`<iq to="localhost" type="get" id="q%d-%d"><ping xmlns="urn:xmpp:ping"/></iq>`, g, i))
				iq.SetFrom(from.jid)
				r.Route(context.Background(), iq)
			}
		}()
	}
	routers.Wait()
	close(stop)
	wg.Wait()
	if got := len(bob.received()); got != senders*perSender {
		t.Errorf("bob got %d messages, want %d", got, senders*perSender)
	}
	// Each ping got exactly one answer: a result or service-unavailable.
	answers := 0
	for _, st := range from.received() {
		if st.Kind() == router.KindIQ {
			answers++
		}
	}
	if answers != senders*perSender {
		t.Errorf("sender got %d iq answers, want %d", answers, senders*perSender)
	}
}

// TestPanickingStanzaHandlerAnswers checks that a message whose handler
// panics gets internal-server-error back, while a presence, which expects
// no answer, is dropped quietly; the next stanza is handled as usual.
func TestPanickingStanzaHandlerAnswers(t *testing.T) {
	tests := []struct {
		name, kind, stanza string
		wantErr            []string
	}{
		{name: "message", kind: router.KindMessage, stanza: `<message to="bob@localhost" type="chat" id="m1"><body>x</body></message>`, wantErr: []string{"internal-server-error"}},
		{name: "presence", kind: router.KindPresence, stanza: `<presence to="bob@localhost" id="p1"/>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, from := newRouter(t)
			r.HandleStanza("crasher", router.ToAccount, tt.kind, 0, func(context.Context, *router.Stanza) bool { panic("handler bug") })
			st := parse(t, tt.stanza)
			st.SetFrom(from.jid)
			r.Route(context.Background(), st)
			if errs := errorsTo(from); !slices.Equal(errs, tt.wantErr) {
				t.Errorf("sender got errors %q, want %q", errs, tt.wantErr)
			}
		})
	}
}

// TestIQRefusedByFullQueue checks that an IQ request to a full JID whose
// session refuses it (its queue is full, so it is going away) is answered
// with service-unavailable rather than lost, so the requester does not wait
// for an answer that cannot come.
func TestIQRefusedByFullQueue(t *testing.T) {
	bob := newSession("bob@localhost/phone", true, 0)
	bob.full = true
	r, alice := newRouter(t, bob)
	r.Route(context.Background(), mustParse(`<iq type="get" id="q1" from="`+sender+`" to="bob@localhost/phone"><query xmlns="jabber:iq:version"/></iq>`))
	got := alice.received()
	if len(got) != 1 || got[0].Type() != "error" || got[0].ID() != "q1" || got[0].Child("", "error").Child("urn:ietf:params:xml:ns:xmpp-stanzas", "service-unavailable") == nil {
		t.Fatalf("alice got %v, want one service-unavailable error for q1", got)
	}
}

// TestRerouteSkipsFilters checks that a stanza routed again after its
// session ended (Reroute) is delivered by its address without running the
// pre-routing filters a second time: a carbons filter would otherwise copy
// a sent message twice.
func TestRerouteSkipsFilters(t *testing.T) {
	bob := newSession("bob@localhost/laptop", true, 0)
	r, _ := newRouter(t, bob)
	filtered := 0
	r.AddFilter("count", 0, func(_ context.Context, st *router.Stanza) *router.Stanza {
		filtered++
		return st
	})
	// To a resource that is gone: RFC 6121 delivers it to the laptop.
	st := mustParse(`<message type="chat" id="m1" from="` + sender + `" to="bob@localhost/phone"><body>x</body></message>`)
	r.Reroute(context.Background(), st)
	if filtered != 0 {
		t.Errorf("Reroute ran the filters %d times, want 0", filtered)
	}
	if got := bob.received(); len(got) != 1 || got[0].ID() != "m1" {
		t.Errorf("bob got %v, want m1", got)
	}
	r.Route(context.Background(), st.Copy())
	if filtered != 1 {
		t.Errorf("Route ran the filters %d times, want 1", filtered)
	}
}
