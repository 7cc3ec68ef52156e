package modules_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/routertest"
	"github.com/xmppd/xmppd/modules"
	_ "github.com/xmppd/xmppd/modules/ping" // a real module, registered by its init
	"github.com/xmppd/xmppd/router"
)

// events records what the test modules did, in order. The modules are
// built by the registry, so the test cannot hold them; they report here.
var events struct {
	mu   sync.Mutex
	list []string
}

func record(e string) {
	events.mu.Lock()
	defer events.mu.Unlock()
	events.list = append(events.list, e)
}

// takeEvents returns the events so far and forgets them.
func takeEvents() []string {
	events.mu.Lock()
	defer events.mu.Unlock()
	out := events.list
	events.list = nil
	return out
}

// The test modules' namespace.
const nsTest = "urn:xmppd:test"

// everything registers one of each kind of handler through its Host.
type everything struct{}

func (*everything) Start(_ context.Context, h *modules.Host) error {
	if h.ID() != "test-everything" || h.Router() == nil || h.Config() == nil || h.Logger() == nil {
		return errors.New("host is missing something")
	}
	h.AddFeature(router.ToServer, nsTest)
	h.AddFeature(router.ToAccount, nsTest)
	h.AddFilter(router.PriorityDefault, func(_ context.Context, st *router.Stanza) *router.Stanza {
		record("filter " + st.ID())
		return st
	})
	h.HandleStanza(router.ToServer, router.KindMessage, router.PriorityDefault, func(_ context.Context, st *router.Stanza) bool {
		record("message " + st.ID())
		return true
	})
	h.OnUndelivered(router.PriorityDefault, func(_ context.Context, st *router.Stanza) bool {
		record("undelivered " + st.ID())
		return true
	})
	return h.HandleIQ(router.ToServer, stanza.GetIQ, nsTest, func(_ context.Context, iq *router.Stanza) *router.Stanza {
		record("iq " + iq.ID())
		return iq.Reply()
	})
}

// stopper records its start and stop; "test-stop-b" fails to stop.
type stopper struct{ id string }

func (s *stopper) Start(context.Context, *modules.Host) error {
	record("start " + s.id)
	return nil
}

func (s *stopper) Stop() error {
	record("stop " + s.id)
	if s.id == "test-stop-b" {
		return errors.New("disk on fire")
	}
	return nil
}

// failing fails to start after registering a feature.
type failing struct{}

func (*failing) Start(_ context.Context, h *modules.Host) error {
	h.AddFeature(router.ToServer, "urn:xmppd:failing")
	return errors.New("no luck")
}

// pingClash wants the IQ key the ping module has.
type pingClash struct{}

func (*pingClash) Start(_ context.Context, h *modules.Host) error {
	return h.HandleIQ(router.ToServer, stanza.GetIQ, "urn:xmpp:ping", func(_ context.Context, iq *router.Stanza) *router.Stanza {
		return iq.Reply()
	})
}

// minimal has no Start and no Stop: only its identity is mandatory.
type minimal struct{}

var (
	_ modules.Starter = (*everything)(nil)
	_ modules.Stopper = (*stopper)(nil)
)

func init() {
	modules.Register("test-everything", func() *everything { return new(everything) })
	modules.Register("test-stop-a", func() *stopper { return &stopper{"test-stop-a"} })
	modules.Register("test-stop-b", func() *stopper { return &stopper{"test-stop-b"} })
	modules.Register("test-failing", func() *failing { return new(failing) })
	modules.Register("test-ping-clash", func() *pingClash { return new(pingClash) })
	modules.Register("test-minimal", func() *minimal { return new(minimal) })
}

// allAccounts says every account exists.
type allAccounts struct{}

func (allAccounts) Exists(context.Context, jid.JID) (bool, error) { return true, nil }

func newRouter(t *testing.T) *router.Router {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	return router.New(log, router.NewLocalRegistry(), allAccounts{}, []string{"localhost"})
}

func start(t *testing.T, r *router.Router, ids ...string) (*modules.Set, error) {
	t.Helper()
	takeEvents()
	return modules.Start(context.Background(), ids, r, nil, config.Default(), slog.New(slog.DiscardHandler), nil)
}

// route sends XML text from a user who has no session, so that errors
// sent back to them go nowhere.
func route(t *testing.T, r *router.Router, s string) {
	t.Helper()
	st := routertest.Stanza(t, s)
	st.SetFrom(jid.MustParse("someone@localhost/r"))
	r.Route(context.Background(), st)
}

// exercise routes a stanza to each kind of handler test-everything has.
func exercise(t *testing.T, r *router.Router) {
	t.Helper()
	route(t, r, `<iq to="localhost" type="get" id="1"><q xmlns="urn:xmppd:test"/></iq>`)
	route(t, r, `<message to="localhost" type="chat" id="2"/>`)
	route(t, r, `<message to="offline@localhost" type="chat" id="3"/>`)
}

func TestKnown(t *testing.T) {
	known := modules.Known()
	if !slices.IsSorted(known) {
		t.Errorf("Known() = %q, not sorted", known)
	}
	for _, id := range []string{"ping", "test-everything", "test-minimal", "test-stop-a"} {
		if !slices.Contains(known, id) {
			t.Errorf("Known() = %q, missing %s", known, id)
		}
	}
}

func TestRegisterPanics(t *testing.T) {
	newMinimal := func() *minimal { return new(minimal) }
	tests := []struct {
		name     string
		register func()
	}{
		{"duplicate ID", func() { modules.Register("ping", newMinimal) }},
		{"empty ID", func() { modules.Register("", newMinimal) }},
		{"no constructor", func() { modules.Register[*minimal]("test-no-constructor", nil) }},
		{"no constructor with options", func() {
			modules.RegisterWithOptions[testOptions, *minimal]("test-no-constructor", testOptions{}, nil)
		}},
		{"duplicate ID with options", func() {
			modules.RegisterWithOptions("test-options", testOptions{}, func(testOptions) *minimal { return nil })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("Register did not panic")
				}
			}()
			tt.register()
		})
	}
	if slices.Contains(modules.Known(), "test-no-constructor") {
		t.Error("a refused module was registered anyway")
	}
}

func TestStartStop(t *testing.T) {
	r := newRouter(t)
	set, err := start(t, r, "ping", "test-everything", "test-minimal")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Features(router.ToServer), []string{"urn:xmpp:ping", nsTest}; !slices.Equal(got, want) {
		t.Errorf("server features %q, want %q", got, want)
	}
	if got, want := r.Features(router.ToAccount), []string{nsTest}; !slices.Equal(got, want) {
		t.Errorf("account features %q, want %q", got, want)
	}
	exercise(t, r)
	want := []string{"filter 1", "iq 1", "filter 2", "message 2", "filter 3", "undelivered 3"}
	if got := takeEvents(); !slices.Equal(got, want) {
		t.Errorf("while running: %q, want %q", got, want)
	}

	if err := set.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := r.Features(router.ToServer); len(got) > 0 {
		t.Errorf("server features after Stop: %q", got)
	}
	if got := r.Features(router.ToAccount); len(got) > 0 {
		t.Errorf("account features after Stop: %q", got)
	}
	exercise(t, r)
	if got := takeEvents(); len(got) > 0 {
		t.Errorf("handlers still ran after Stop: %q", got)
	}
	// The IQ keys are free again, so the modules can start again.
	set, err = start(t, r, "ping", "test-everything")
	if err != nil {
		t.Fatalf("start again after Stop: %v", err)
	}
	if err := set.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := set.Stop(); err != nil {
		t.Errorf("a second Stop: %v", err)
	}
}

func TestStopOrderAndErrors(t *testing.T) {
	r := newRouter(t)
	set, err := start(t, r, "test-stop-a", "test-stop-b", "test-minimal")
	if err != nil {
		t.Fatal(err)
	}
	err = set.Stop()
	if err == nil || !strings.Contains(err.Error(), "test-stop-b") || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Stop() = %v, want the error of test-stop-b, named", err)
	}
	// Reverse order, and a failing Stop does not keep the others running.
	want := []string{"start test-stop-a", "start test-stop-b", "stop test-stop-b", "stop test-stop-a"}
	if got := takeEvents(); !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

func TestStartFails(t *testing.T) {
	tests := []struct {
		name       string
		ids        []string
		wantErr    []string // substrings of the error
		wantEvents []string
	}{
		{
			name:       "unknown module",
			ids:        []string{"test-stop-a", "test-everything", "no-such-module"},
			wantErr:    []string{`unknown module "no-such-module"`, "ping"},
			wantEvents: []string{"start test-stop-a", "stop test-stop-a"},
		},
		{
			name:       "a module fails to start",
			ids:        []string{"test-stop-a", "test-everything", "test-failing", "test-stop-b"},
			wantErr:    []string{"start test-failing", "no luck"},
			wantEvents: []string{"start test-stop-a", "stop test-stop-a"},
		},
		{
			name:    "two modules want one IQ",
			ids:     []string{"ping", "test-ping-clash"},
			wantErr: []string{"test-ping-clash", "already handled by ping"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRouter(t)
			set, err := start(t, r, tt.ids...)
			if err == nil {
				set.Stop()
				t.Fatal("Start succeeded")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if got := takeEvents(); !slices.Equal(got, tt.wantEvents) {
				t.Errorf("events %q, want %q", got, tt.wantEvents)
			}
			// What the modules started before the failure registered is gone,
			// the failing module's included.
			for _, target := range []router.Target{router.ToServer, router.ToAccount} {
				if got := r.Features(target); len(got) > 0 {
					t.Errorf("%s features left behind: %q", target, got)
				}
			}
			exercise(t, r)
			if got := takeEvents(); len(got) > 0 {
				t.Errorf("handlers left behind: %q", got)
			}
		})
	}
}
