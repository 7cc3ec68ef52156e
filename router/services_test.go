package router_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/xmppd/xmppd/router"
)

// The service address of the tests, and a namespace its handler answers.
const (
	service   = "conference.localhost"
	nsService = "urn:example:service"
)

// fakeService records what reaches a service's handler. It handles
// messages and presence except to nobody@…, and IQ requests in nsService,
// to which it answers with a result.
type fakeService struct {
	r   *router.Router
	mu  sync.Mutex
	got []string // ids
}

func (s *fakeService) handle(ctx context.Context, st *router.Stanza) bool {
	s.mu.Lock()
	s.got = append(s.got, st.ID())
	s.mu.Unlock()
	if st.Kind() == router.KindIQ {
		if p := st.FirstChild(); st.IsIQRequest() && p != nil && p.Name.Space == nsService {
			s.r.Route(ctx, st.Reply())
			return true
		}
		return false
	}
	return st.To.Localpart() != "nobody"
}

func (s *fakeService) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// TestServiceRouting checks that every stanza to a service address or a
// JID under it goes to its owner, that what the owner leaves unhandled gets
// the router's answer, and that the service's own IQ handlers run first.
func TestServiceRouting(t *testing.T) {
	tests := []struct {
		name        string
		stanza      string
		wantService bool   // the service's handler saw it
		wantResult  bool   // the sender got an IQ result
		wantErr     string // the sender got this error
		wantRemote  bool
	}{
		{name: "message to the service", stanza: `<message to="conference.localhost" id="s1"/>`, wantService: true},
		{name: "message to a bare JID under it", stanza: `<message to="room@conference.localhost" type="groupchat" id="s1"/>`, wantService: true},
		{name: "presence to a full JID under it", stanza: `<presence to="room@conference.localhost/nick" id="s1"/>`, wantService: true},
		{name: "message to a full JID under it", stanza: `<message to="room@conference.localhost/nick" type="chat" id="s1"/>`, wantService: true},
		{name: "unhandled message", stanza: `<message to="nobody@conference.localhost" type="chat" id="s1"/>`, wantService: true, wantErr: "service-unavailable"},
		{name: "unhandled headline", stanza: `<message to="nobody@conference.localhost" type="headline" id="s1"/>`, wantService: true},
		{name: "unhandled presence", stanza: `<presence to="nobody@conference.localhost/nick" id="s1"/>`, wantService: true},
		{name: "iq the handler answers", stanza: `<iq to="room@conference.localhost/nick" type="get" id="s1"><q xmlns="urn:example:service"/></iq>`, wantService: true, wantResult: true},
		{name: "iq under the service nobody answers", stanza: `<iq to="room@conference.localhost" type="get" id="s1"><q xmlns="urn:example:other"/></iq>`, wantService: true, wantErr: "service-unavailable"},
		{name: "iq to the service nobody answers", stanza: `<iq to="conference.localhost" type="set" id="s1"><q xmlns="urn:example:other"/></iq>`, wantService: true, wantErr: "service-unavailable"},
		{name: "iq result goes to the service", stanza: `<iq to="room@conference.localhost/nick" type="result" id="s1"/>`, wantService: true},
		{name: "the service's own iq handler", stanza: `<iq to="conference.localhost" type="get" id="s1"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, wantResult: true},
		{name: "its iq handler is for the address only", stanza: `<iq to="room@conference.localhost" type="get" id="s1"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, wantService: true, wantErr: "service-unavailable"},
		{name: "a subdomain of the service is remote", stanza: `<message to="x.conference.localhost" id="s1"/>`, wantRemote: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, from := newRouter(t)
			rem := &fakeRemote{}
			r.SetRemote(rem)
			svc := &fakeService{r: r}
			if _, err := r.AddService("muc", service, svc.handle); err != nil {
				t.Fatal(err)
			}
			if _, err := r.HandleServiceIQ("muc", service, "get", "http://jabber.org/protocol/disco#info", func(_ context.Context, iq *router.Stanza) *router.Stanza {
				return iq.Reply()
			}); err != nil {
				t.Fatal(err)
			}
			st := parse(t, tt.stanza)
			st.SetFrom(from.jid)
			r.Route(context.Background(), st)

			if got := slices.Contains(svc.ids(), "s1"); got != tt.wantService {
				t.Errorf("service saw it: %v, want %v", got, tt.wantService)
			}
			var wantErrs []string
			if tt.wantErr != "" {
				wantErrs = []string{tt.wantErr}
			}
			if got := errorsTo(from); !slices.Equal(got, wantErrs) {
				t.Errorf("sender got errors %q, want %q", got, wantErrs)
			}
			gotResult := slices.ContainsFunc(from.received(), func(st *router.Stanza) bool { return st.Type() == "result" && st.ID() == "s1" })
			if gotResult != tt.wantResult {
				t.Errorf("sender got a result: %v, want %v", gotResult, tt.wantResult)
			}
			if got := len(rem.got) > 0; got != tt.wantRemote {
				t.Errorf("remote got %d stanzas, want any: %v", len(rem.got), tt.wantRemote)
			}
		})
	}
}

// TestServiceSends checks that what a service sends goes where its 'to'
// says: to a local user, or to s2s for a remote one.
func TestServiceSends(t *testing.T) {
	bob := newSession("bob@localhost/b", true, 0)
	r, _ := newRouter(t, bob)
	rem := &fakeRemote{}
	r.SetRemote(rem)
	if _, err := r.AddService("muc", service, nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r.Route(ctx, parse(t, `<message from="room@conference.localhost/nick" to="bob@localhost/b" type="groupchat" id="l1"/>`))
	r.Route(ctx, parse(t, `<message from="room@conference.localhost/nick" to="carl@remote.example/c" type="groupchat" id="r1"/>`))
	if got := deliveredTo("l1", []*fakeSession{bob}); !slices.Equal(got, []string{"bob@localhost/b"}) {
		t.Errorf("local message delivered to %q", got)
	}
	if len(rem.got) != 1 || rem.got[0].ID() != "r1" {
		t.Errorf("remote got %v, want r1", rem.got)
	}
}

// TestAddService checks that a service address has one owner, is never a
// served user domain, and goes away with its registration.
func TestAddService(t *testing.T) {
	r, from := newRouter(t)
	rem := &fakeRemote{}
	r.SetRemote(rem)
	reg, err := r.AddService("muc", service, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddService("other", service, nil); err == nil {
		t.Error("a second owner of the same address was accepted")
	}
	if _, err := r.AddService("other", domain, nil); err == nil {
		t.Error("a served user domain was accepted as a service address")
	}
	if _, err := r.AddService("other", "", nil); err == nil {
		t.Error("an empty service address was accepted")
	}
	iq, err := r.HandleServiceIQ("muc", service, "get", nsService, func(_ context.Context, iq *router.Stanza) *router.Stanza { return iq.Reply() })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.HandleServiceIQ("other", service, "get", nsService, func(context.Context, *router.Stanza) *router.Stanza { return nil }); err == nil {
		t.Error("a second handler of the same service IQ was accepted")
	}
	if _, err := r.HandleIQ("other", router.ToServer, "get", nsService, func(context.Context, *router.Stanza) *router.Stanza { return nil }); err != nil {
		t.Errorf("the server's handler of a namespace a service answers: %v", err)
	}
	reg.Remove()
	iq.Remove()
	if r.IsService(service) {
		t.Error("still a service after Remove")
	}
	st := parse(t, `<message to="room@conference.localhost" id="m1"/>`)
	st.SetFrom(from.jid)
	r.Route(context.Background(), st)
	if len(rem.got) != 1 {
		t.Errorf("after Remove the address is remote: remote got %d stanzas, want 1", len(rem.got))
	}
	if _, err := r.AddService("other", service, nil); err != nil {
		t.Errorf("address taken again after Remove: %v", err)
	}
}

// TestPanickingService checks that a service handler's panic answers the
// sender as a panicking stanza handler's does.
func TestPanickingService(t *testing.T) {
	r, from := newRouter(t)
	if _, err := r.AddService("muc", service, func(context.Context, *router.Stanza) bool { panic("boom") }); err != nil {
		t.Fatal(err)
	}
	st := parse(t, `<message to="room@conference.localhost" type="chat" id="m1"/>`)
	st.SetFrom(from.jid)
	r.Route(context.Background(), st)
	if got, want := errorsTo(from), []string{"internal-server-error"}; !slices.Equal(got, want) {
		t.Errorf("sender got %q, want %q", got, want)
	}
}
