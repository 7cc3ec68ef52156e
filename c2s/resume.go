package c2s

import (
	"context"
	"encoding/xml"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/router"
)

// Stream management resumption (XEP-0198 §5): a resumable session whose
// connection is lost hibernates, detached from any transport, until a new
// connection of the same account resumes it or its timeout ends it.

// errResumeTimeout ends a hibernating session nobody resumed.
var errResumeTimeout = errors.New("c2s: stream management resumption timed out")

// errResumed ends a transport whose session has been resumed elsewhere.
var errResumed = errors.New("c2s: session resumed on another connection")

// smRegistry holds a server's resumable sessions by resumption id, and
// counts those hibernating, per account and in all, for the limits. Its
// lock is taken after a session's smState.life, never before.
type smRegistry struct {
	mu          sync.Mutex
	byID        map[string]*Session
	hibernating map[string][]*Session // bare JID → its hibernating sessions, oldest first
	total       int
	// gone remembers, for the last maxGone resumable sessions that ended,
	// their account and the client's h, so that a late <resume/> of the
	// same account gets <failed h=…/> (XEP-0198 §5: the client learns
	// which of its stanzas the server handled); goneOrder is the order to
	// forget them in.
	gone      map[string]goneSession
	goneOrder []string
}

// maxGone bounds the ended sessions remembered for <failed h=…/>: about
// 100 bytes each.
const maxGone = 1024

// goneSession is what is remembered of an ended resumable session.
type goneSession struct {
	account string
	h       uint32
}

// add registers s as resumable under id.
func (r *smRegistry) add(id string, s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = map[string]*Session{}
		r.hibernating = map[string][]*Session{}
	}
	r.byID[id] = s
}

// remove forgets id if it still names s, remembering its account and the
// client's h for a late resumption (handled).
func (r *smRegistry) remove(id string, s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID[id] != s {
		return
	}
	delete(r.byID, id)
	if r.gone == nil {
		r.gone = map[string]goneSession{}
	}
	if len(r.goneOrder) >= maxGone {
		delete(r.gone, r.goneOrder[0])
		r.goneOrder = r.goneOrder[1:]
	}
	var h uint32
	if sm := s.sm(); sm != nil {
		h = sm.inbound.Load()
	}
	r.gone[id] = goneSession{account: s.jid.Bare().String(), h: h}
	r.goneOrder = append(r.goneOrder, id)
}

// handled returns the client's h of the ended session id, if it is
// remembered and was account's: another account learns nothing.
func (r *smRegistry) handled(id, account string) (h uint32, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, ok := r.gone[id]
	if !ok || g.account != account {
		return 0, false
	}
	return g.h, true
}

// lookup returns the session of id if it belongs to account: a session of
// another account is not even touched, so that its id lets nobody else
// end it.
func (r *smRegistry) lookup(id, account string) *Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.byID[id]
	if s == nil || s.jid.Bare().String() != account {
		return nil
	}
	return s
}

// hibernate counts s as hibernating unless a limit forbids it. At the
// per-account limit the account's oldest hibernating session gives way:
// it is returned for the caller to end. At the total limit s is refused.
func (r *smRegistry) hibernate(s *Session, perUser, total int) (ok bool, evicted *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hibernating == nil {
		r.hibernating = map[string][]*Session{}
	}
	bare := s.jid.Bare().String()
	list := r.hibernating[bare]
	if len(list) >= perUser && len(list) > 0 {
		// The account's oldest hibernating session makes room, as in
		// Prosody: the newest is the device most likely to come back, and
		// it was promised resumption a moment ago.
		evicted = list[0]
		list = list[1:]
		r.total--
	}
	if r.total >= total || len(list) >= perUser {
		if evicted != nil {
			list = append([]*Session{evicted}, list...)
			r.total++
		}
		return false, nil
	}
	r.total++
	r.hibernating[bare] = append(list, s)
	return true, evicted
}

// wake uncounts a hibernating s; a session that is not counted (woken
// already, or evicted) is left alone.
func (r *smRegistry) wake(s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	bare := s.jid.Bare().String()
	list := r.hibernating[bare]
	i := slices.Index(list, s)
	if i < 0 {
		return
	}
	r.total--
	list = slices.Delete(list, i, i+1)
	if len(list) == 0 {
		delete(r.hibernating, bare)
	} else {
		r.hibernating[bare] = list
	}
}

// counts returns the hibernating sessions of bare and in all.
func (r *smRegistry) counts(bare string) (account, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.hibernating[bare]), r.total
}

// sessions returns the resumable sessions (a snapshot).
func (r *smRegistry) sessions() []*Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Session, 0, len(r.byID))
	for _, s := range r.byID {
		out = append(out, s)
	}
	return out
}

// connectionLost tells whether err, which ended a transport's stream, is a
// connection that went away (reset, timeout, cut mid-element) rather than
// a stream that was closed, by either side, on purpose: only then does a
// resumable session hibernate.
func connectionLost(err error) bool {
	if err == nil || errors.Is(err, router.ErrStreamEnd) {
		return false
	}
	var syn *xml.SyntaxError
	if errors.As(err, &syn) {
		return syn.Msg == "unexpected EOF"
	}
	var se stream.Error
	if errors.As(err, &se) {
		return se.Err == stream.ConnectionTimeout.Err
	}
	return true
}

// hibernate detaches a resumable session from t, whose connection was
// lost with err, and starts its resumption timeout; it reports whether the
// session is taken care of (hibernating, or already resumed elsewhere).
// False leaves it to the caller to end.
func (s *Session) hibernate(t Transport, err error) bool {
	sm := s.sm()
	if sm == nil || sm.id == "" || !connectionLost(err) {
		return false
	}
	sm.life.Lock()
	if s.closed.Load() {
		sm.life.Unlock()
		return false
	}
	if a := s.att.Load(); a == nil || a.t != t {
		// Resumed on another connection meanwhile.
		sm.life.Unlock()
		t.Close(err)
		t.Finish(nil)
		return true
	}
	if s.srv.shuttingDown() {
		// Nobody would end it: shutdown has ended the others already.
		sm.life.Unlock()
		return false
	}
	l := &s.srv.limits
	ok, evicted := s.srv.sm.hibernate(s, l.MaxHibernatingPerUser, l.MaxHibernating)
	if !ok {
		sm.life.Unlock()
		s.log.Info("c2s session not kept for resumption: too many hibernating sessions")
		return false
	}
	if evicted != nil {
		evicted.log.Info("c2s hibernating session ended for a newer one of the account")
		evicted.Close(stream.ResourceConstraint)
	}
	sm.asleepBytes.Store(0)
	s.detachAbandoned()
	s.startTimer(sm)
	sm.life.Unlock()
	t.Close(err)
	t.Finish(nil)
	s.log.Info("c2s session hibernating", slog.Any("reason", err), slog.Duration("timeout", sm.timeout))
	return true
}

var _ router.Hibernator = (*Session)(nil)

// Hibernating implements router.Hibernator: the session is resumable and
// detached from any transport, which outside of the instant a resumption
// moves it is the hibernation that hibernate starts. (A session between
// bind and attach is detached too, but has not enabled resumption yet.)
func (s *Session) Hibernating() bool {
	sm := s.sm()
	return sm != nil && sm.id != "" && s.att.Load() == nil && !s.closed.Load()
}

// hibernationRoom counts st against what a hibernating session may hold
// in bytes (limits.sm_max_unacked_bytes, as for what is sent and not
// acknowledged): the queue's own bound counts stanzas, and a hibernating
// phone must not hold up to that many stanzas of the maximum size. Over
// it the session ends (its queue goes to offline storage and other
// resources) and st is refused, to be handled as undelivered.
func (s *Session) hibernationRoom(st *router.Stanza) bool {
	sm := s.sm()
	size := int64(len(st.AppendXML(nil, router.NSClient)))
	if sm.asleepBytes.Add(size) <= int64(s.srv.limits.SMMaxUnackedBytes) {
		return true
	}
	s.log.Info("c2s hibernating session holds too much; ending it")
	s.Close(stream.ResourceConstraint)
	return false
}

// startTimer starts the resumption timeout of a session just detached and
// counted as hibernating; the caller holds sm.life.
func (s *Session) startTimer(sm *smState) {
	var t *time.Timer
	t = time.AfterFunc(sm.timeout, func() {
		sm.life.Lock()
		if sm.timer != t {
			// Resumed or ended meanwhile.
			sm.life.Unlock()
			return
		}
		sm.timer = nil
		s.srv.sm.wake(s)
		s.srv.sm.remove(sm.id, s)
		sm.life.Unlock()
		s.log.Info("c2s hibernating session timed out")
		s.Close(errResumeTimeout)
	})
	sm.timer = t
}

// stopTimer takes a hibernating session out of hibernation, if it is;
// the caller holds sm.life.
func (s *Session) stopTimer(sm *smState) {
	if sm.timer != nil {
		// If the timer has fired its function waits for life, then
		// sees it is no longer the session's timer.
		sm.timer.Stop()
		sm.timer = nil
		s.srv.sm.wake(s)
	}
}

// smEnd is End's part for stream management: the session is no longer
// resumable, and its unacknowledged stanzas are returned, oldest first,
// to be routed again as undelivered.
func (s *Session) smEnd() []*router.Stanza {
	sm := s.sm()
	if sm == nil {
		return nil
	}
	sm.life.Lock()
	s.stopTimer(sm)
	if sm.id != "" {
		s.srv.sm.remove(sm.id, s)
	}
	sm.life.Unlock()
	sm.mu.Lock()
	defer sm.mu.Unlock()
	sm.stopRequestTimer()
	out := make([]*router.Stanza, len(sm.unacked))
	for i, u := range sm.unacked {
		out[i] = u.st
	}
	sm.unacked, sm.unackedBytes = nil, 0
	return out
}

// resume handles <resume/> (XEP-0198 §5): the hibernating (or still
// attached) session of the same account is attached to this connection,
// what the client did not acknowledge is sent again, and the connection
// carries the session from now on with its full JID and presence. answer
// sends the <resumed/> or <failed/>: on its own (XEP-0198), or inside
// SASL2's <success/> (resumeInline); <resumed/> is sent before the session
// is attached, so that nothing the session writes comes before it.
// resumed is the session for <resumed/>, nil for <failed/>.
func (c *conn) resume(ctx context.Context, cmd smCommand, answer func(e *router.Element, resumed *Session) error) (Outcome, error) {
	account, err := jid.New(c.user, c.host, "")
	var s *Session
	if err == nil {
		s = c.srv.sm.lookup(cmd.previd, account.String())
	}
	if s == nil {
		c.log.Info("c2s resumption refused: unknown id")
		f := smFailed(stanza.ItemNotFound)
		if h, ok := c.srv.sm.handled(cmd.previd, account.String()); err == nil && ok {
			f.SetAttr("h", strconv.FormatUint(uint64(h), 10))
		}
		return Continue, answer(f, nil)
	}
	sm := s.sm()
	sm.life.Lock()
	if s.closed.Load() {
		sm.life.Unlock()
		return Continue, answer(smFailed(stanza.ItemNotFound), nil)
	}
	s.stopTimer(sm)
	if old := s.detachAbandoned(); old != nil {
		// §5: the old stream, still open, ends with conflict.
		old.Close(stream.Conflict)
	}
	sm.mu.Lock()
	ackErr := sm.ack(cmd.h)
	resend := make([]*router.Stanza, len(sm.unacked))
	for i, u := range sm.unacked {
		resend[i] = u.st
	}
	sm.unacked, sm.unackedBytes = nil, 0
	// What is sent again is counted again, from what the client has.
	sm.sent = sm.acked
	sm.sinceRequest, sm.requested = 0, false
	sm.mu.Unlock()
	s.out.putBack(resend)
	// A resumed stream is active (XEP-0352 §4): what CSI held follows.
	s.csiActive()
	if ackErr != nil {
		sm.life.Unlock()
		s.Close(ackErr)
		return Continue, ackErr
	}
	// Detached: the old reader handles nothing more, and one it was
	// handling is finished (and counted) once handling is ours.
	sm.handling.Lock()
	h := sm.inbound.Load()
	sm.handling.Unlock()
	resumed := router.NewElement(nsSM, "resumed", "previd", cmd.previd,
		"h", strconv.FormatUint(uint64(h), 10))
	if err := answer(resumed, s); err != nil {
		s.rehibernate(sm)
		sm.life.Unlock()
		return Continue, err
	}
	if err := s.Attach(c); err != nil {
		sm.life.Unlock()
		return Continue, err
	}
	sm.life.Unlock()
	log := c.log.With(slog.String("jid", s.jidString))
	c.sess, c.bound, c.log = s, true, log
	c.log.Info("c2s session resumed", slog.Int("resent", len(resend)))
	return bound, nil
}

// rehibernate puts a session whose resumption failed half way back to
// hibernation, or ends it if a limit forbids; the caller holds sm.life.
func (s *Session) rehibernate(sm *smState) {
	l := &s.srv.limits
	ok, evicted := s.srv.sm.hibernate(s, l.MaxHibernatingPerUser, l.MaxHibernating)
	if ok {
		if evicted != nil {
			evicted.Close(stream.ResourceConstraint)
		}
		s.startTimer(sm)
		return
	}
	s.Close(errResumeTimeout)
}

// shuttingDown tells whether Shutdown has begun.
func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// endHibernating ends the hibernating sessions with cause: for shutdown,
// so that what they hold goes to offline storage before the server stops.
func (s *Server) endHibernating(cause error) {
	for _, sess := range s.sm.sessions() {
		sm := sess.sm()
		sm.life.Lock()
		hibernating := sm.timer != nil
		sess.stopTimer(sm)
		sm.life.Unlock()
		if hibernating {
			sess.Close(cause)
		}
	}
}

// Hibernating is the number of sessions waiting to be resumed (XEP-0198):
// for metrics, and for tests that wait for a dropped connection to be
// noticed.
func (s *Server) Hibernating() int {
	_, total := s.sm.counts("")
	return total
}
