package router_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
)

// TestDeliveryHooks checks that the delivery hooks see every stanza handed
// to a session, on each path that hands one over, in priority order, each
// getting what the one before returned, and that a hook can suppress a
// stanza or crash without losing the answer to the sender.
func TestDeliveryHooks(t *testing.T) {
	tag := func(name string) router.DeliveryHook {
		return func(_ context.Context, s router.Session, st *router.Stanza) *router.Stanza {
			out := st.Copy()
			out.SetAttr("seen", st.Get("seen")+name+"@"+s.JID().Resourcepart()+";")
			return out
		}
	}
	drop := func(context.Context, router.Session, *router.Stanza) *router.Stanza { return nil }
	// crash fails on what is handed to bob, not on the answer to alice.
	crash := func(_ context.Context, s router.Session, st *router.Stanza) *router.Stanza {
		if s.JID().Localpart() == "bob" {
			panic("hook bug")
		}
		return st
	}
	type hook struct {
		name     string
		priority int
		h        router.DeliveryHook
	}
	tests := []struct {
		name  string
		hooks []hook
		// send is what alice's session sends, or nil to hand a stanza to
		// bob's session with DeliverTo.
		send     string
		wantSeen map[string]string // full JID → the 'seen' attribute it got
		wantErr  []string          // conditions the sender got
		wantTook bool              // what DeliverTo reported
	}{{
		name:     "message to a full JID, hooks in priority order",
		hooks:    []hook{{"low", router.PriorityLast, tag("low")}, {"high", router.PriorityFirst, tag("high")}},
		send:     `<message to="bob@localhost/a" type="chat" id="m1"/>`,
		wantSeen: map[string]string{"bob@localhost/a": "high@a;low@a;"},
	}, {
		name:     "message to a bare JID, each resource its own",
		hooks:    []hook{{"tag", 0, tag("tag")}},
		send:     `<message to="bob@localhost" type="headline" id="m1"/>`,
		wantSeen: map[string]string{"bob@localhost/a": "tag@a;", "bob@localhost/b": "tag@b;"},
	}, {
		name:     "presence broadcast by the router's default rule",
		hooks:    []hook{{"tag", 0, tag("tag")}},
		send:     `<presence to="bob@localhost" id="m1"/>`,
		wantSeen: map[string]string{"bob@localhost/a": "tag@a;", "bob@localhost/b": "tag@b;"},
	}, {
		name:     "a bounce to the sender",
		hooks:    []hook{{"tag", 0, tag("tag")}},
		send:     `<iq to="bob@localhost/gone" type="get" id="m1"><q xmlns="urn:example"/></iq>`,
		wantSeen: map[string]string{sender: "tag@a;"},
		wantErr:  []string{"service-unavailable"},
	}, {
		name:     "a module's DeliverTo",
		hooks:    []hook{{"tag", 0, tag("tag")}},
		wantSeen: map[string]string{"bob@localhost/a": "tag@a;"},
		wantTook: true,
	}, {
		name:     "suppressed: the later hooks and the session see nothing, and it counts as taken",
		hooks:    []hook{{"drop", router.PriorityFirst, drop}, {"tag", 0, tag("tag")}},
		wantSeen: map[string]string{},
		wantTook: true,
	}, {
		name:    "a crashing hook: the sender gets internal-server-error",
		hooks:   []hook{{"crash", 0, crash}},
		send:    `<message to="bob@localhost/a" type="chat" id="m1"/>`,
		wantErr: []string{"internal-server-error"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newSession("bob@localhost/a", true, 0)
			b := newSession("bob@localhost/b", true, 0)
			r, from := newRouter(t, a, b)
			for _, h := range tt.hooks {
				r.AddDeliveryHook(h.name, h.priority, h.h)
			}
			if tt.send != "" {
				st := parse(t, tt.send)
				st.SetFrom(from.jid)
				r.Route(context.Background(), st)
			} else if took := r.DeliverTo(context.Background(), a, parse(t, `<message id="m1"/>`)); took != tt.wantTook {
				t.Errorf("DeliverTo = %v, want %v", took, tt.wantTook)
			}
			got := map[string]string{}
			for _, s := range []*fakeSession{from, a, b} {
				for _, st := range s.received() {
					if st.ID() == "m1" && st.Get("seen") != "" {
						got[s.jid.String()] = st.Get("seen")
					}
				}
			}
			if tt.wantSeen == nil {
				tt.wantSeen = map[string]string{}
			}
			if !mapsEqual(got, tt.wantSeen) {
				t.Errorf("seen %q, want %q", got, tt.wantSeen)
			}
			if errs := errorsTo(from); !slices.Equal(errs, tt.wantErr) {
				t.Errorf("sender got errors %q, want %q", errs, tt.wantErr)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestUndeliveredIsAnEvent checks that every undelivered handler hears of a
// message nobody could take, whether or not one before it stored it, and
// that the sender is answered only if none stored it (issue 8: offline and
// an archive both hear it).
func TestUndeliveredIsAnEvent(t *testing.T) {
	type handler struct {
		stores bool
		panics bool
	}
	tests := []struct {
		name     string
		handlers []handler // in priority order
		wantErr  []string
	}{
		{name: "the first stores, the second still hears", handlers: []handler{{stores: true}, {}}},
		{name: "the second stores", handlers: []handler{{}, {stores: true}}},
		{name: "both store", handlers: []handler{{stores: true}, {stores: true}}},
		{name: "none stores", handlers: []handler{{}, {}}, wantErr: []string{"service-unavailable"}},
		{name: "one crashes, the other stores", handlers: []handler{{panics: true}, {stores: true}}},
		{name: "one crashes, none stores", handlers: []handler{{panics: true}, {}}, wantErr: []string{"internal-server-error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, from := newRouter(t)
			var mu sync.Mutex
			var heard []int
			for i, h := range tt.handlers {
				r.OnUndelivered("m", -i, func(_ context.Context, st *router.Stanza) bool {
					mu.Lock()
					heard = append(heard, i)
					mu.Unlock()
					if h.panics {
						panic("handler bug")
					}
					return h.stores
				})
			}
			st := parse(t, `<message to="bob@localhost" type="chat" id="m1"><body>hi</body></message>`)
			st.SetFrom(from.jid)
			r.Route(context.Background(), st)
			want := make([]int, len(tt.handlers))
			for i := range want {
				want[i] = i
			}
			if !slices.Equal(heard, want) {
				t.Errorf("heard by %v, want %v", heard, want)
			}
			if errs := errorsTo(from); !slices.Equal(errs, tt.wantErr) {
				t.Errorf("sender got errors %q, want %q", errs, tt.wantErr)
			}
		})
	}
}

// answeringSession is a bound resource that answers the IQ requests handed
// to it with what answer returns (nothing if nil), from inside Deliver, as
// a client whose answer comes back while the request is still being
// routed; got is told of each request.
type answeringSession struct {
	*fakeSession
	r      *router.Router
	answer func(req *router.Stanza) *router.Stanza
	got    chan *router.Stanza
}

func (s *answeringSession) Deliver(st *router.Stanza) bool {
	if !st.IsIQRequest() {
		return s.fakeSession.Deliver(st)
	}
	s.got <- st
	if resp := s.answer(st); resp != nil {
		resp.SetFrom(s.jid) // c2s stamps the sender
		s.r.Route(context.Background(), resp)
	}
	return true
}

// TestSendIQ checks the server's IQ requests: the answer is matched by
// its sender and id, an error answer is an error, and a request without an
// answer gives up when its context is done; nothing stays pending.
func TestSendIQ(t *testing.T) {
	past, cancelPast := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancelPast()
	tests := []struct {
		name string
		ctx  context.Context
		from string // the requester, "localhost" if empty
		to   string
		// answer is how bob's client answers.
		answer   func(req *router.Stanza) *router.Stanza
		wantType string // of the answer SendIQ returns, "" for none
		wantErr  error
	}{{
		name:     "result",
		to:       "bob@localhost/a",
		answer:   func(req *router.Stanza) *router.Stanza { return req.Reply(router.NewElement("urn:example", "q")) },
		wantType: "result",
	}, {
		name:     "from a service address",
		from:     "rooms.localhost",
		to:       "bob@localhost/a",
		answer:   func(req *router.Stanza) *router.Stanza { return req.Reply() },
		wantType: "result",
	}, {
		name: "error answer",
		to:   "bob@localhost/a",
		answer: func(req *router.Stanza) *router.Stanza {
			return req.ErrorReply(stanza.Cancel, stanza.FeatureNotImplemented, "")
		},
		wantType: "error",
		wantErr:  router.ErrIQError,
	}, {
		name:     "the router's own bounce",
		to:       "bob@localhost/gone",
		wantType: "error",
		wantErr:  router.ErrIQError,
	}, {
		name: "an answer with another id is not the answer",
		ctx:  past,
		to:   "bob@localhost/a",
		answer: func(req *router.Stanza) *router.Stanza {
			resp := req.Reply()
			resp.SetAttr("id", "other")
			return resp
		},
		wantErr: context.DeadlineExceeded,
	}, {
		name:    "no answer, deadline",
		ctx:     past,
		to:      "bob@localhost/a",
		answer:  func(*router.Stanza) *router.Stanza { return nil },
		wantErr: context.DeadlineExceeded,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bob := &answeringSession{fakeSession: newSession("bob@localhost/a", true, 0), answer: tt.answer, got: make(chan *router.Stanza, 1)}
			r, _ := newRouter(t, bob.fakeSession)
			bob.r = r
			r.Sessions().Unbind(bob.fakeSession)
			if _, err := r.Sessions().Bind(bob, 0); err != nil {
				t.Fatal(err)
			}
			// The service's handler must not see the answers to its
			// requests: SendIQ takes them.
			serviceGot := 0
			if _, err := r.AddService("test", "rooms.localhost", func(context.Context, *router.Stanza) bool {
				serviceGot++
				return true
			}); err != nil {
				t.Fatal(err)
			}
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			from := tt.from
			if from == "" {
				from = "localhost"
			}
			iq := parse(t, `<iq type="get" from="`+from+`" to="`+tt.to+`"><q xmlns="urn:example"/></iq>`)
			resp, err := r.SendIQ(ctx, iq)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			switch {
			case tt.wantType == "" && resp != nil:
				t.Errorf("got answer %s, want none", resp)
			case tt.wantType != "" && (resp == nil || resp.Type() != tt.wantType || resp.ID() != iq.ID()):
				t.Errorf("got answer %v, want a %s with id %s", resp, tt.wantType, iq.ID())
			}
			if n := router.PendingIQs(r); n != 0 {
				t.Errorf("%d requests still pending", n)
			}
			if tt.wantType != "" && serviceGot != 0 {
				t.Errorf("the service's handler got %d stanzas, want the answer for SendIQ only", serviceGot)
			}
		})
	}
}

// TestSendIQCancel checks that a request waiting for an answer stops when
// its context is cancelled, and that an answer from another JID than the
// one asked is not taken for the answer.
func TestSendIQCancel(t *testing.T) {
	bob := &answeringSession{fakeSession: newSession("bob@localhost/a", true, 0), got: make(chan *router.Stanza, 1)}
	bob.answer = func(*router.Stanza) *router.Stanza { return nil }
	r, from := newRouter(t, bob.fakeSession)
	bob.r = r
	r.Sessions().Unbind(bob.fakeSession)
	if _, err := r.Sessions().Bind(bob, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.SendIQ(ctx, parse(t, `<iq type="get" from="localhost" to="bob@localhost/a"><q xmlns="urn:example"/></iq>`))
		done <- err
	}()
	req := <-bob.got
	spoof := req.Reply()
	spoof.SetFrom(from.jid) // alice answers for bob
	r.Route(context.Background(), spoof)
	if n := router.PendingIQs(r); n != 1 {
		t.Errorf("after an answer from the wrong JID, %d requests pending, want 1", n)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n := router.PendingIQs(r); n != 0 {
		t.Errorf("%d requests still pending", n)
	}
}

// TestSendIQNeedsAddresses checks that a request must come from this
// server and go somewhere.
func TestSendIQNeedsAddresses(t *testing.T) {
	r, _ := newRouter(t)
	for _, xml := range []string{
		`<iq type="get" to="bob@localhost"><q xmlns="urn:example"/></iq>`,
		`<iq type="get" from="remote.example" to="bob@localhost"><q xmlns="urn:example"/></iq>`,
		`<iq type="get" from="localhost"><q xmlns="urn:example"/></iq>`,
		`<iq type="get" from="alice@localhost/phone" to="bob@localhost"><q xmlns="urn:example"/></iq>`,
		`<iq type="result" from="localhost" to="bob@localhost"/>`,
	} {
		if _, err := r.SendIQ(context.Background(), parse(t, xml)); err == nil {
			t.Errorf("SendIQ(%s) did not fail", xml)
		}
	}
}
