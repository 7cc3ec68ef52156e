package muc

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/routertest"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// These tests run the module on a router over a real store that the test
// makes fail: what no client can cause.

// faultyRooms is a room store that fails as the test says.
type faultyRooms struct {
	storage.Rooms
	mu sync.Mutex
	// roomErr is what Room returns instead of looking.
	roomErr error
	// panicPut makes PutRoom panic, as a bug in room code would.
	panicPut bool
}

func (f *faultyRooms) set(roomErr error, panicPut bool) {
	f.mu.Lock()
	f.roomErr, f.panicPut = roomErr, panicPut
	f.mu.Unlock()
}

func (f *faultyRooms) Room(ctx context.Context, j jid.JID) (storage.Room, error) {
	f.mu.Lock()
	err := f.roomErr
	f.mu.Unlock()
	if err != nil {
		return storage.Room{}, err
	}
	return f.Rooms.Room(ctx, j)
}

func (f *faultyRooms) PutRoom(ctx context.Context, r storage.Room) error {
	f.mu.Lock()
	p := f.panicPut
	f.mu.Unlock()
	if p {
		panic("muc test: PutRoom")
	}
	return f.Rooms.PutRoom(ctx, r)
}

// faultyStore is a store whose rooms are faultyRooms.
type faultyStore struct {
	storage.Store
	rooms *faultyRooms
}

func (s faultyStore) Rooms() storage.Rooms { return s.rooms }

// inbox is a bound session that keeps what it is given.
type inbox struct {
	router.SessionState
	jid jid.JID
	mu  sync.Mutex
	got []*router.Stanza
}

func (s *inbox) JID() jid.JID                 { return s.jid }
func (s *inbox) Available() bool              { return true }
func (s *inbox) Priority() int                { return 0 }
func (s *inbox) Close(error)                  {}
func (s *inbox) LastPresence() *router.Stanza { return nil }
func (s *inbox) Deliver(st *router.Stanza) bool {
	s.mu.Lock()
	s.got = append(s.got, st)
	s.mu.Unlock()
	return true
}

// take returns what the session got since the last call.
func (s *inbox) take() []*router.Stanza {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.got
	s.got = nil
	return got
}

// faultHarness is the module on a router over a faulty store, with
// alice's session.
type faultHarness struct {
	t     *testing.T
	r     *router.Router
	rooms *faultyRooms
	alice *inbox
}

func newFaultHarness(t *testing.T) *faultHarness {
	t.Helper()
	db := storetest.Open(t, storetest.Backend{Name: "sqlite"})
	rooms := &faultyRooms{Rooms: db.Rooms()}
	r := routertest.StartModules(t, faultyStore{Store: db, rooms: rooms}, config.Default(), []string{ID}, "alice")
	alice := &inbox{jid: jid.MustParse("alice@localhost/pc")}
	if _, err := r.Sessions().Bind(alice, 0); err != nil {
		t.Fatal(err)
	}
	return &faultHarness{t: t, r: r, rooms: rooms, alice: alice}
}

// send routes a stanza from alice; the service handles it and routes its
// answers before Route returns.
func (h *faultHarness) send(xml string) []*router.Stanza {
	h.t.Helper()
	st := routertest.Stanza(h.t, xml)
	st.SetFrom(h.alice.jid)
	h.r.Route(context.Background(), st)
	return h.alice.take()
}

// wantOnly checks that got is one stanza, an error with cond if cond is
// not "", else not an error.
func wantOnly(t *testing.T, got []*router.Stanza, cond string) {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("got %d stanzas, want 1: %v", len(got), got)
	}
	c := ""
	if er := got[0].Child("", "error"); got[0].Type() == "error" && er != nil && er.FirstChild() != nil {
		c = er.FirstChild().Name.Local
	}
	if c != cond || (cond == "") != (got[0].Type() != "error") {
		t.Fatalf("got %s, want condition %q", got[0], cond)
	}
}

// TestLoadRoomStoreError checks that when the store cannot say whether a
// room not in memory exists, the service answers internal-server-error,
// an error nothing, and does not create a room over one that may be
// stored: once the store answers again, the join creates the room.
func TestLoadRoomStoreError(t *testing.T) {
	h := newFaultHarness(t)
	h.rooms.set(errors.New("disk on fire"), false)
	for _, c := range []struct{ name, xml, cond string }{
		{"join", `<presence to='stored@conference.localhost/alice'><x xmlns='` + NS + `'/></presence>`, "internal-server-error"},
		{"iq", `<iq type='get' id='i1' to='stored@conference.localhost'><query xmlns='` + nsDiscoInfo + `'/></iq>`, "internal-server-error"},
		{"message", `<message type='groupchat' to='stored@conference.localhost'><body>hi</body></message>`, "internal-server-error"},
	} {
		t.Run(c.name, func(t *testing.T) { wantOnly(t, h.send(c.xml), c.cond) })
	}
	if got := h.send(`<message type='error' to='stored@conference.localhost'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`); len(got) != 0 {
		t.Errorf("an error answered: %v", got)
	}
	h.rooms.set(nil, false)
	got := h.send(`<presence to='stored@conference.localhost/alice'><x xmlns='` + NS + `'/></presence>`)
	if len(got) == 0 || got[0].Kind() != router.KindPresence || got[0].Type() != "" || !hasCode(got[0], statusCreated) {
		t.Fatalf("join after the store came back: %v", got)
	}
}

// TestRoomPanic checks that a panic in room code, while the room's lock
// is held, is caught by the router's guard of service handlers (the IQ
// gets internal-server-error) and leaves the room's lock released: the
// room handles the next stanzas.
func TestRoomPanic(t *testing.T) {
	h := newFaultHarness(t)
	h.send(`<presence to='coven@conference.localhost/alice'><x xmlns='` + NS + `'/></presence>`)
	configure := func(id, persistent string) string {
		return `<iq type='set' id='` + id + `' to='coven@conference.localhost'><query xmlns='` + NSOwner + `'>` +
			`<x xmlns='jabber:x:data' type='submit'><field var='` + fPersistent + `'><value>` + persistent + `</value></field></x>` + `</query></iq>`
	}
	wantOnly(t, h.send(configure("c1", "0")), "")
	h.rooms.set(nil, true)
	wantOnly(t, h.send(configure("c2", "1")), "internal-server-error")
	h.rooms.set(nil, false)
	wantOnly(t, h.send(`<iq type='get' id='i1' to='coven@conference.localhost'><query xmlns='`+nsDiscoInfo+`'/></iq>`), "")
	got := h.send(`<message type='groupchat' id='m1' to='coven@conference.localhost'><body>still here</body></message>`)
	if len(got) != 1 || got[0].Kind() != router.KindMessage || got[0].Type() != "groupchat" {
		t.Fatalf("groupchat after the panic: %v", got)
	}
}

// hasCode tells whether st carries the muc#user status code.
func hasCode(st *router.Stanza, code int) bool {
	x := st.Child(NSUser, "x")
	if x == nil {
		return false
	}
	for _, s := range x.Elements() {
		if s.Name.Local == "status" && s.Get("code") == strconv.Itoa(code) {
			return true
		}
	}
	return false
}
