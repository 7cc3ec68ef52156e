package c2s

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/routertest"
	"github.com/xmppd/xmppd/router"
)

// memTransport is an in-memory Transport: what is written is kept, Next
// blocks until Close.
type memTransport struct {
	mu       sync.Mutex
	written  strings.Builder
	wrote    chan struct{} // a token after each write
	closed   chan struct{}
	once     sync.Once
	cause    error
	finished atomic.Int32
	final    []byte
}

func newMemTransport() *memTransport {
	return &memTransport{wrote: make(chan struct{}, 1), closed: make(chan struct{})}
}

func (m *memTransport) Next() (*router.Element, error) {
	<-m.closed
	if m.cause == nil {
		return nil, errClosing
	}
	return nil, m.cause
}

func (m *memTransport) Write(b []byte) error {
	m.mu.Lock()
	m.written.Write(b)
	m.mu.Unlock()
	select {
	case m.wrote <- struct{}{}:
	default:
	}
	return nil
}

func (m *memTransport) Close(cause error) {
	m.once.Do(func() { m.cause = cause; close(m.closed) })
}

func (m *memTransport) Finish(final []byte) {
	m.mu.Lock()
	m.final = append(m.final, final...)
	m.mu.Unlock()
	m.finished.Add(1)
}

func (m *memTransport) TLSState() *tls.ConnectionState { return nil }
func (m *memTransport) RemoteAddr() net.Addr           { return &net.TCPAddr{IP: net.IPv6loopback} }

func (m *memTransport) text() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.written.String()
}

// waitFor waits until id has been written to m. A failure ends at the
// test's own timeout: no wall-clock threshold decides success.
func (m *memTransport) waitFor(t *testing.T, id string) {
	t.Helper()
	for !strings.Contains(m.text(), `id="`+id+`"`) {
		<-m.wrote
	}
}

// testSessionServer is the least of a Server a Session needs: a router
// with a registry, and the outbound queue bound.
func testSessionServer(queue int) *Server {
	log := slog.New(slog.DiscardHandler)
	r := router.New(log, router.NewLocalRegistry(), everyone{}, []string{"example.org"})
	return &Server{opts: Options{Router: r, Log: log}, limits: config.Limits{OutboundQueue: queue}}
}

// everyone is an account store in which every account exists.
type everyone struct{}

func (everyone) Exists(context.Context, jid.JID) (bool, error) { return true, nil }

// serveTransport reads t for s as a connection's goroutine does, and
// reports when it is done.
func serveTransport(s *Session, t Transport) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.transportEnded(t, s.serve(context.Background(), t))
	}()
	return done
}

// endCount counts the session-ended events.
type endCount struct {
	n  atomic.Int32
	ch chan struct{} // a token per event
}

// boundSession returns a detached session bound in srv's registry, and
// the count of session-ended events.
func boundSession(t *testing.T, srv *Server) (*Session, jid.JID, *endCount) {
	t.Helper()
	r := srv.opts.Router
	ends := &endCount{ch: make(chan struct{}, 4)}
	r.OnSessionEnd("test", router.PriorityDefault, func(context.Context, router.Session) {
		ends.n.Add(1)
		ends.ch <- struct{}{}
	})
	full := jid.MustParse("a@example.org/r")
	s := newSession(context.Background(), srv, srv.opts.Log, full)
	if _, err := r.Sessions().Bind(s, 0); err != nil {
		t.Fatal(err)
	}
	return s, full, ends
}

func message(t *testing.T, id string) *router.Stanza {
	return routertest.Stanza(t, `<message type='chat' id='`+id+`' to='a@example.org/r'><body>x</body></message>`)
}

// TestDetachAttach moves a session from one transport to another: a stanza
// delivered while it is detached is queued and written to the second
// transport, the first one's end is not the session's end, and "session
// ended" runs exactly once, when the session really ends.
func TestDetachAttach(t *testing.T) {
	srv := testSessionServer(8)
	r := srv.opts.Router
	s, full, ends := boundSession(t, srv)
	ended, endedCh := &ends.n, ends.ch
	t1 := newMemTransport()
	if err := s.Attach(t1); err != nil {
		t.Fatal(err)
	}
	read1 := serveTransport(s, t1)
	if !s.Deliver(message(t, "m1")) {
		t.Fatal("delivery to the attached session refused")
	}
	t1.waitFor(t, "m1")

	if got := s.Detach(); got != t1 {
		t.Fatalf("Detach returned %v; want the first transport", got)
	}
	if !s.Deliver(message(t, "m2")) {
		t.Fatal("delivery to the detached session refused")
	}
	// The first transport's connection goes: the session stays.
	t1.Close(errors.New("connection lost"))
	<-read1
	if strings.Contains(t1.text(), "m2") {
		t.Errorf("first transport got the stanza delivered after Detach: %q", t1.text())
	}
	if t1.finished.Load() != 1 {
		t.Errorf("detached transport finished %d times; want 1", t1.finished.Load())
	}
	if n := ended.Load(); n != 0 {
		t.Fatalf("session ended %d times on detach", n)
	}
	if r.Sessions().Lookup(full) != s {
		t.Fatal("detached session no longer bound")
	}

	t2 := newMemTransport()
	if err := s.Attach(t2); err != nil {
		t.Fatal(err)
	}
	if err := s.Attach(newMemTransport()); !errors.Is(err, errAttached) {
		t.Errorf("second Attach: %v; want errAttached", err)
	}
	read2 := serveTransport(s, t2)
	t2.waitFor(t, "m2")
	if !s.Deliver(message(t, "m3")) {
		t.Fatal("delivery after Attach refused")
	}
	t2.waitFor(t, "m3")

	// The real end: closed with a stream error, like a conflict.
	s.Close(stream.Conflict)
	<-read2
	<-endedCh
	s.End()
	s.Close(stream.SystemShutdown)
	if n := ended.Load(); n != 1 {
		t.Errorf("session ended %d times; want 1", n)
	}
	if t2.finished.Load() != 1 || !errors.Is(t2.cause, stream.Conflict) {
		t.Errorf("second transport finished %d times, cause %v; want once, conflict", t2.finished.Load(), t2.cause)
	}
	if r.Sessions().Lookup(full) != nil {
		t.Error("ended session still bound")
	}
	if s.Deliver(message(t, "m4")) {
		t.Error("delivery to the ended session accepted")
	}
	if err := s.Attach(newMemTransport()); !errors.Is(err, errSessionEnded) {
		t.Errorf("Attach after the end: %v; want errSessionEnded", err)
	}
}

// TestDetachedQueueBound checks that a detached session keeps what it
// accepts up to its queue's bound; past it the session ends (once, though
// no transport reads it), and what it had queued is routed again.
func TestDetachedQueueBound(t *testing.T) {
	const bound = 4
	srv := testSessionServer(bound)
	r := srv.opts.Router
	s, _, ends := boundSession(t, srv)
	ended, endedCh := &ends.n, ends.ch
	var undelivered atomic.Int32
	r.OnUndelivered("test", router.PriorityDefault, func(_ context.Context, st *router.Stanza) bool {
		undelivered.Add(1)
		return true
	})
	for i := range bound {
		if !s.Deliver(message(t, "q"+string(rune('0'+i)))) {
			t.Fatalf("delivery %d to the detached session refused", i)
		}
	}
	if s.Deliver(message(t, "over")) {
		t.Fatal("delivery past the bound accepted")
	}
	<-endedCh
	srv.wg.Wait()
	if n := ended.Load(); n != 1 {
		t.Errorf("session ended %d times; want 1", n)
	}
	if n := undelivered.Load(); n != bound {
		t.Errorf("%d queued stanzas routed again as undelivered; want %d", n, bound)
	}
}

// TestHandleElementReplace checks that removing a replaced element owner
// leaves its replacement in place, and removing the current one leaves
// none.
func TestHandleElementReplace(t *testing.T) {
	s := &Server{}
	var called string
	owner := func(name string) ElementHandler {
		return func(context.Context, *Session, *router.Element) error { called = name; return nil }
	}
	run := func() string {
		called = ""
		if h := s.elementHandler(nsSM, "r"); h != nil {
			h(context.Background(), nil, nil)
		}
		return called
	}
	a := s.HandleElement(nsSM, "r", owner("a"))
	b := s.HandleElement(nsSM, "r", owner("b"))
	if got := run(); got != "b" {
		t.Fatalf("owner %q after replacing, want b", got)
	}
	a.Remove()
	if got := run(); got != "b" {
		t.Errorf("owner %q after removing the replaced one, want b", got)
	}
	b.Remove()
	if got := run(); got != "" {
		t.Errorf("owner %q after removing the current one, want none", got)
	}
}

// stuckTransport is a memTransport whose writes block, as on a socket whose
// peer vanished with a full send buffer, until interruptWrites.
type stuckTransport struct {
	*memTransport
	writing   chan struct{} // closed when a write has started
	startOnce sync.Once
	interrupt chan struct{}
	stopOnce  sync.Once
}

func (s *stuckTransport) Write([]byte) error {
	s.startOnce.Do(func() { close(s.writing) })
	<-s.interrupt
	return errWritesStopped
}

func (s *stuckTransport) interruptWrites() { s.stopOnce.Do(func() { close(s.interrupt) }) }

// TestDetachAbandonedInterruptsWrite checks that detaching a session from a
// transport it abandons (connection lost, or resumed elsewhere) does not
// wait for a write blocked on that transport: the write is interrupted.
// A plain Detach would wait for the writer until the write timeout.
func TestDetachAbandonedInterruptsWrite(t *testing.T) {
	srv := testSessionServer(8)
	s, _, _ := boundSession(t, srv)
	st := &stuckTransport{memTransport: newMemTransport(), writing: make(chan struct{}), interrupt: make(chan struct{})}
	if err := s.Attach(st); err != nil {
		t.Fatal(err)
	}
	if !s.Deliver(message(t, "m1")) {
		t.Fatal("delivery refused")
	}
	<-st.writing
	detached := make(chan Transport, 1)
	go func() { detached <- s.detachAbandoned() }()
	select {
	case got := <-detached:
		if got != Transport(st) {
			t.Errorf("detachAbandoned returned %v, want the stuck transport", got)
		}
	case <-time.After(10 * time.Second): // a failure bound, not a timing threshold
		st.interruptWrites()
		t.Fatal("detachAbandoned waited for the blocked write")
	}
}
