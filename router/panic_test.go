package router_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/xmppd/xmppd/router"
)

// recordingHandler keeps the "module" attribute of every error logged.
type recordingHandler struct {
	mu      *sync.Mutex
	modules *[]string
	attrs   []slog.Attr
}

func (h recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(slices.Clone(h.attrs), as...)
	return h
}
func (h recordingHandler) WithGroup(string) slog.Handler { return h }
func (h recordingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "module" {
			h.mu.Lock()
			*h.modules = append(*h.modules, a.Value.String())
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

// TestPanicLoggedWithModule checks that a panic in every kind of hook is
// caught and logged with the ID of the module that registered it (issue
// 8: "logged with the module's ID").
func TestPanicLoggedWithModule(t *testing.T) {
	tests := []struct {
		kind     string
		module   string // the owner register gives
		register func(r *router.Router)
		// trigger is what alice sends, or nil for a session event.
		trigger string
	}{{
		kind:   "filter",
		module: "m-filter",
		register: func(r *router.Router) {
			r.AddFilter("m-filter", 0, func(context.Context, *router.Stanza) *router.Stanza { panic("bug") })
		},
		trigger: `<message to="bob@localhost" type="chat" id="x"/>`,
	}, {
		kind:   "iq handler",
		module: "m-iq",
		register: func(r *router.Router) {
			r.HandleIQ("m-iq", router.ToServer, "get", "urn:example", func(context.Context, *router.Stanza) *router.Stanza { panic("bug") })
		},
		trigger: `<iq to="localhost" type="get" id="x"><q xmlns="urn:example"/></iq>`,
	}, {
		kind:   "stanza handler",
		module: "m-stanza",
		register: func(r *router.Router) {
			r.HandleStanza("m-stanza", router.ToAccount, router.KindMessage, 0, func(context.Context, *router.Stanza) bool { panic("bug") })
		},
		trigger: `<message to="bob@localhost" type="chat" id="x"/>`,
	}, {
		kind:   "undelivered",
		module: "m-undelivered",
		register: func(r *router.Router) {
			r.OnUndelivered("m-undelivered", 0, func(context.Context, *router.Stanza) bool { panic("bug") })
		},
		trigger: `<message to="carol@localhost" type="chat" id="x"/>`,
	}, {
		kind:   "delivery hook",
		module: "m-delivery",
		register: func(r *router.Router) {
			r.AddDeliveryHook("m-delivery", 0, func(_ context.Context, s router.Session, st *router.Stanza) *router.Stanza {
				if s.JID().Localpart() == "bob" {
					panic("bug")
				}
				return st
			})
		},
		trigger: `<message to="bob@localhost/a" type="chat" id="x"/>`,
	}, {
		kind:   "session event",
		module: "m-session",
		register: func(r *router.Router) {
			r.OnSessionAvailable("m-session", 0, func(context.Context, router.Session) { panic("bug") })
		},
	}}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			var mu sync.Mutex
			var logged []string
			accts := fakeAccounts{exists: map[string]bool{}}
			for _, a := range existing {
				accts.exists[a] = true
			}
			r := router.New(slog.New(recordingHandler{mu: &mu, modules: &logged}), router.NewLocalRegistry(), accts, []string{domain})
			from := newSession(sender, true, 0)
			bob := newSession("bob@localhost/a", true, 0)
			for _, s := range []*fakeSession{from, bob} {
				if _, err := r.Sessions().Bind(s, 0); err != nil {
					t.Fatal(err)
				}
			}
			tt.register(r)
			if tt.trigger == "" {
				r.SessionAvailable(context.Background(), from)
			} else {
				st := parse(t, tt.trigger)
				st.SetFrom(from.jid)
				r.Route(context.Background(), st)
			}
			mu.Lock()
			defer mu.Unlock()
			if want := []string{tt.module}; !slices.Equal(logged, want) {
				t.Errorf("errors logged with modules %q, want %q", logged, want)
			}
		})
	}
}
