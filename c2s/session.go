package c2s

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/router"
)

// Session is a bound resource: its full JID, presence and priority, its
// outbound queue and the modules' state of it (router.SessionState). The
// Transport that carries it is apart: a session can be detached from its
// transport and attached to another, and it ends, with "session ended" for
// the router and the modules, only when End says so, not when a transport
// goes: a transport that ends takes the session with it unless stream
// management lets the session hibernate until it is resumed (see
// transportEnded and sm.go).
type Session struct {
	router.SessionState
	srv *Server
	// ctx is the server's, without its cancellation: what is queued is
	// still routed again when the session ends during shutdown.
	ctx       context.Context
	log       *slog.Logger
	jid       jid.JID
	jidString string // jid.String(), computed once
	available atomic.Bool
	// closed is set by Close; the writer is woken to see it.
	closed   atomic.Bool
	priority atomic.Int32
	presence atomic.Pointer[router.Stanza]
	out      *outQueue
	// agent is what the client said about itself in SASL2 (zero for a
	// SASL client); set before the session is bound, never changed.
	agent UserAgent

	// attachMu serialises Attach and Detach; att is read without it.
	attachMu sync.Mutex
	att      atomic.Pointer[attachment] // nil while detached

	closeOnce sync.Once
	endOnce   sync.Once
	cause     error // why; set before closed
}

// attachment is a session on one transport, with the writer goroutine that
// feeds the transport from the session's queue.
type attachment struct {
	t       Transport
	stopped chan struct{} // closed when the writer has returned
}

var _ router.Session = (*Session)(nil)

// newSession returns a detached session of full on srv.
func newSession(ctx context.Context, srv *Server, log *slog.Logger, full jid.JID) *Session {
	return &Session{
		srv:       srv,
		ctx:       ctx,
		log:       log,
		jid:       full,
		jidString: full.String(),
		out:       newOutQueue(srv.limits.OutboundQueue),
	}
}

// JID implements router.Session.
func (s *Session) JID() jid.JID { return s.jid }

// UserAgent is what the client of the session said about itself when it
// authenticated with SASL2 (XEP-0388 <user-agent/>), for the account's
// owner and the operator; zero for a client that used SASL.
func (s *Session) UserAgent() UserAgent { return s.agent }

// Available implements router.Session.
func (s *Session) Available() bool { return s.available.Load() }

// Priority implements router.Session.
func (s *Session) Priority() int { return int(s.priority.Load()) }

// LastPresence implements router.Session.
func (s *Session) LastPresence() *router.Stanza { return s.presence.Load() }

// Deliver implements router.Session: it queues without blocking, attached
// or not, and a full queue means the client does not keep up, so the
// session is closed. A stanza it accepts is written (to the transport
// attached now or to the next one) or, if the session ends first, routed
// again by requeue; one it refuses is the caller's to route elsewhere.
// For a client that said it is inactive, a stanza that can wait is held
// instead (csi.go).
func (s *Session) Deliver(st *router.Stanza) bool {
	if s.closed.Load() {
		return false
	}
	if s.Hibernating() && !s.hibernationRoom(st) {
		return false
	}
	if c := s.csi(); c != nil {
		return s.deliverCSI(c, st)
	}
	return s.enqueue(st)
}

// enqueue is Deliver's queueing.
func (s *Session) enqueue(st *router.Stanza) bool {
	switch s.out.push(st) {
	case pushed:
		return true
	case queueEnded:
		return false
	}
	s.srv.stats.queueDrops.Add(1)
	s.log.Warn("c2s outbound queue full; closing session")
	s.Close(stream.ResourceConstraint)
	return false
}

// Close implements router.Session: it ends the session with cause. The
// attached transport is told to stop, and the goroutine reading it ends
// the session; a detached session, which nobody reads, is ended by a
// goroutine of its own. Any goroutine, any number of times; the first cause
// wins.
func (s *Session) Close(cause error) {
	if first, attached := s.stop(cause); first && !attached {
		s.endLater()
	}
}

// stop marks the session closed with cause and tells the attached transport, if any, to
// stop. first reports whether this call did it; attached whether a
// transport was attached then.
func (s *Session) stop(cause error) (first, attached bool) {
	s.closeOnce.Do(func() {
		first = true
		s.cause = cause
		s.closed.Store(true)
		if a := s.att.Load(); a != nil {
			attached = true
			a.t.Close(cause)
			s.out.wake()
		}
	})
	return first, attached
}

// endLater ends the session on a goroutine of its own, owned by the
// server: for a session that no transport's reader will end.
func (s *Session) endLater() {
	s.srv.wg.Add(1)
	go func() {
		defer s.srv.wg.Done()
		s.End()
	}()
}

// errAttached and errSessionEnded are Attach's refusals.
var (
	errAttached     = errors.New("c2s: session is attached to a transport")
	errSessionEnded = errors.New("c2s: session has ended")
)

// Attach makes t the session's transport: what is queued, and what is
// delivered from now on, is written to t. The session must be detached.
func (s *Session) Attach(t Transport) error {
	s.attachMu.Lock()
	defer s.attachMu.Unlock()
	if s.att.Load() != nil {
		return errAttached
	}
	a := &attachment{t: t, stopped: make(chan struct{})}
	s.att.Store(a)
	// Checked after the store: Close loads att after setting closed, so
	// either it tells t to stop or this sees closed.
	if s.closed.Load() {
		s.att.Store(nil)
		// Close may have seen a and left the end to its reader, which
		// will never run: end it here (End runs once).
		s.endLater()
		return errSessionEnded
	}
	go s.writeLoop(a)
	s.out.wake()
	return nil
}

// Detach takes the session off its transport and returns it (nil if it
// was detached): once Detach returns, nothing more is written to it, and
// stanzas delivered meanwhile stay queued, up to the queue's bound, for
// the next Attach. The session stays bound: detaching is not ending.
// Closing the transport is the caller's.
func (s *Session) Detach() Transport {
	s.attachMu.Lock()
	defer s.attachMu.Unlock()
	a := s.att.Swap(nil)
	if a == nil {
		return nil
	}
	s.out.wake() // the writer sees it is detached
	<-a.stopped
	return a.t
}

// detachAbandoned detaches the session from a transport it will not write
// to again: one whose connection was lost (hibernation) or that it leaves
// for another (resumption). The transport's writes are interrupted first,
// so that Detach does not wait for a write blocked on a dead socket. What
// the interrupted write carried stays unacknowledged (stream management)
// and is sent again on resumption, or handled as undelivered.
func (s *Session) detachAbandoned() Transport {
	if a := s.att.Load(); a != nil {
		if wi, ok := a.t.(writeInterrupter); ok {
			wi.interruptWrites()
		}
	}
	return s.Detach()
}

// End ends the session for good, once: the writer stops, the transport (if
// any) gets the stream's end, the session is unbound, what it had queued
// is routed again and the session-end hooks run. It waits for the writer,
// so it must not run on the writer's goroutine.
func (s *Session) End() {
	s.endOnce.Do(func() {
		s.stop(nil)
		if t := s.Detach(); t != nil {
			var final []byte
			var se stream.Error
			if errors.As(s.cause, &se) {
				final = s.appendQueued(nil)
			}
			t.Close(s.cause)
			t.Finish(final)
		}
		// Clean-up must run even when the server is shutting down.
		ctx := context.WithoutCancel(s.ctx)
		r := s.srv.opts.Router
		r.Sessions().Unbind(s)
		s.requeue(ctx)
		r.SessionEnded(ctx, s)
	})
}

// transportEnded is called by the goroutine that read t once t's stream is
// over with err. If t still carries the session, the session ends with it,
// unless the connection was lost under a resumable session, which then
// hibernates (stream management, sm.go); a transport the session was
// detached from is just closed.
func (s *Session) transportEnded(t Transport, err error) {
	if a := s.att.Load(); a != nil && a.t == t {
		if s.hibernate(t, err) {
			return
		}
		s.Close(err)
		s.End()
		return
	}
	t.Close(err)
	t.Finish(nil)
}

// appendQueued appends the IQs and presences still queued when the server
// closes the stream with an error, so that a reply queued just before Close
// reaches the client before the error: the result of an account removal
// comes before the not-authorized it causes (XEP-0077 §3.2). They go in the
// one final write, whose deadline bounds them, up to maxBatch bytes; what
// does not fit is dropped, as requeue would drop it. Messages are put back,
// in order, for requeue to route again, which is safer than a last write.
func (s *Session) appendQueued(buf []byte) []byte {
	var messages []*router.Stanza
	for _, st := range s.out.take() {
		switch {
		case st.Kind() == router.KindMessage:
			messages = append(messages, st)
		case len(buf) < maxBatch:
			buf = st.AppendXML(buf, router.NSClient)
		}
	}
	s.out.putBack(messages)
	return buf
}

// writeBufs pools serialisation buffers, so an idle session holds none.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxBatch is how much is gathered from the queue into one write.
const maxBatch = 64 << 10

// writeLoop writes queued stanzas to a's transport until the session
// closes or is detached from a, batching what has piled up into one write.
func (s *Session) writeLoop(a *attachment) {
	defer close(a.stopped)
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("c2s writer panicked", slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			s.Close(stream.InternalServerError)
		}
	}()
	for range s.out.ready {
		if s.closed.Load() || s.att.Load() != a {
			return
		}
		if err := s.writeQueued(a); err != nil {
			if sm := s.sm(); sm != nil && sm.id != "" {
				// The connection is lost, not the session: its
				// reader sees the cause and hibernates it.
				a.t.Close(err)
				return
			}
			s.Close(err)
			return
		}
	}
}

// writeQueued writes everything queued to a's transport, in writes of
// about maxBatch bytes. With stream management, what it writes is counted
// and kept until the client acknowledges it, and it asks for acks (sm.go).
func (s *Session) writeQueued(a *attachment) error {
	items := s.out.take()
	sm := s.sm()
	var l limitsView
	if sm != nil {
		l = s.smLimits()
	}
	bp := writeBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxBatch*2 {
			writeBufs.Put(bp)
		}
	}()
	for i := 0; i < len(items); {
		buf := (*bp)[:0]
		waiting := false // for an ack: the unacked window is full
		for ; i < len(items) && len(buf) < maxBatch; i++ {
			if sm != nil && items[i].Name.Space == "" {
				if full, request := sm.windowFull(&l); full {
					if request {
						buf = append(buf, smRequestXML...)
					}
					waiting = true
					break
				}
			}
			n := len(buf)
			buf = items[i].AppendXML(buf, router.NSClient)
			if items[i].Name.Space == "" {
				s.srv.stats.out.add(items[i].Name.Local)
			}
			if sm != nil {
				sm.wrote(items[i], len(buf)-n)
			}
		}
		if !waiting && sm != nil && sm.wantRequest(s, l.ackAfter) {
			buf = append(buf, smRequestXML...)
		}
		*bp = buf[:0]
		if len(buf) > 0 {
			if err := a.t.Write(buf); err != nil {
				if sm != nil {
					// Kept for the next transport, or for End.
					s.out.putBack(items[i:])
				}
				return err
			}
		}
		if waiting {
			// The rest waits in the queue; the ack wakes the writer.
			s.out.hold(items[i:])
			return nil
		}
		if s.closed.Load() || s.att.Load() != a {
			// Closing, or detached: leave the rest for End and
			// requeue, or for the next transport.
			s.out.putBack(items[i:])
			return nil
		}
	}
	return nil
}

// requeue routes again what was still queued when the session ended: after
// Unbind the router delivers it to the account's other resources or treats
// it as undelivered, so nothing queued is silently lost. With stream
// management, what was sent and not acknowledged comes first, and IQ
// requests get an error (XEP-0198 §5, RFC 6121 §8.5.3.2.2: the resource is
// gone). What CSI held comes last: it is newer than what was queued.
func (s *Session) requeue(ctx context.Context) {
	unacked := s.smEnd()
	withSM := s.sm() != nil
	r := s.srv.opts.Router
	pending := append(unacked, s.out.drain()...)
	// After the drain: a flush racing with it leaves its stanzas held.
	pending = append(pending, s.csiEnd()...)
	for _, st := range pending {
		switch {
		case st.Name.Space != "":
			// A stream management element: not a stanza.
		case st.Kind() == router.KindMessage:
			// It passed the filters when it was first routed.
			r.Reroute(ctx, st)
		case withSM && st.IsIQRequest():
			r.Bounce(ctx, st, stanza.ServiceUnavailable, "")
		}
	}
}

// serve reads t's elements for the session until t's stream ends, and
// returns why.
func (s *Session) serve(ctx context.Context, t Transport) error {
	for {
		e, err := t.Next()
		if err != nil {
			return err
		}
		if err := s.handleFrom(ctx, t, e); err != nil {
			return err
		}
	}
}

// handleFrom handles e, read from t, if t still carries the session. For a
// resumable session the check and the handling are one step with respect
// to a resumption (smState.handling).
func (s *Session) handleFrom(ctx context.Context, t Transport, e *router.Element) error {
	if sm := s.sm(); sm != nil && sm.id != "" {
		sm.handling.Lock()
		defer sm.handling.Unlock()
	}
	if a := s.att.Load(); a == nil || a.t != t {
		// Resumed on another connection: what still comes here is not
		// the session's.
		return errResumed
	}
	return s.handle(ctx, e)
}

// handle takes one top-level element from the client: a stanza is stamped
// and routed; another element goes to the owner registered for its name
// (Server.HandleElement), and without one ends the stream.
func (s *Session) handle(ctx context.Context, e *router.Element) error {
	if e.Name.Space != "" {
		if h := s.srv.elementHandler(e.Name.Space, e.Name.Local); h != nil {
			return h(ctx, s, e)
		}
		return stream.UnsupportedStanzaType
	}
	switch e.Name.Local {
	case router.KindMessage, router.KindPresence, router.KindIQ:
	default:
		return stream.UnsupportedStanzaType
	}
	s.countInbound()
	s.srv.stats.in.add(e.Name.Local)
	st, err := router.NewStanza(e)
	// RFC 6120 §8.1.2.1: the server stamps the full JID of the session,
	// whatever the client wrote.
	st.StampFrom(s.jid, s.jidString)
	if err != nil {
		var se stanza.Error
		errors.As(err, &se)
		st.To = jid.JID{}
		st.SetAttr("to", "")
		s.reply(st.ErrorFrom(se))
		return nil
	}
	if cond := checkStanza(st); cond != "" {
		s.reply(st.ErrorReply(router.DefaultErrorType(cond), cond, ""))
		return nil
	}
	handled, initial := s.local(st)
	if handled {
		return nil
	}
	r := s.srv.opts.Router
	r.Route(ctx, st)
	if initial {
		// Initial presence (RFC 6121 §4.2) has been broadcast, and what
		// the session gets for it (the contacts' presence) is queued:
		// now the modules that wait for available sessions (offline,
		// XEP-0160) hear of it, whichever module broadcasts presence.
		r.SessionAvailable(ctx, s)
	}
	return nil
}

// reply sends the server's answer to a stanza of this client, through the
// router's delivery hooks like every other stanza handed to a session.
func (s *Session) reply(st *router.Stanza) {
	st.SetTo(s.jid)
	if st.From.Domainpart() == "" {
		st.SetFrom(s.jid.Domain())
	}
	s.srv.opts.Router.DeliverTo(s.ctx, s, st)
}

// checkStanza applies RFC 6120 §8.2's rules for the common attributes and
// returns the condition of a violation.
func checkStanza(st *router.Stanza) stanza.Condition {
	if st.Kind() != router.KindIQ {
		return ""
	}
	if st.ID() == "" {
		return stanza.BadRequest
	}
	switch st.Type() {
	case "get", "set":
		if len(st.Elements()) != 1 {
			return stanza.BadRequest
		}
	case "result", "error":
	default:
		return stanza.BadRequest
	}
	return ""
}

// local handles what concerns this session alone and reports whether it
// did; initial reports an available broadcast presence from an unavailable
// session (RFC 6121 §4.2's initial presence), still to be routed.
func (s *Session) local(st *router.Stanza) (handled, initial bool) {
	switch st.Kind() {
	case router.KindIQ:
		// The RFC 3921 session IQ is a no-op kept for old clients.
		p := st.FirstChild()
		if st.Type() == "set" && p != nil && p.Name.Space == nsSession && (st.To.Domainpart() == "" || st.To.String() == s.jid.Domainpart()) {
			s.reply(st.Reply())
			return true, false
		}
	case router.KindPresence:
		if st.To.Domainpart() != "" {
			return false, false
		}
		switch st.Type() {
		case "":
			prio := 0
			if p := st.Child("", "priority"); p != nil {
				n, err := strconv.Atoi(strings.TrimSpace(p.Text()))
				if err != nil || n < -128 || n > 127 {
					s.reply(st.ErrorReply(stanza.Modify, stanza.BadRequest, "priority must be an integer from -128 to 127"))
					return true, false
				}
				prio = n
			}
			s.priority.Store(int32(prio))
			s.presence.Store(st.Copy())
			return false, !s.available.Swap(true)
		case "unavailable":
			s.available.Store(false)
			s.presence.Store(nil)
		}
	}
	return false, false
}
