package c2s

import (
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/router"
)

// Stream management (XEP-0198): acknowledgements and resumption.
//
// A session's stream management state (smState) exists only once the
// client has enabled it, kept in the session's SessionState, so that a
// session without it costs nothing more. Every element of the stream goes
// through the session's queue and its one writer, which counts the
// stanzas it writes after <enabled/> and keeps them until the client
// acknowledges them; the reader counts what it handles. A resumable
// session whose connection drops without </stream:stream> is detached and
// hibernates for its timeout, still bound in the registry and still
// available to its contacts, its queue taking what arrives; <resume/> on a
// new connection of the same account attaches it there.

// nsSM is the namespace of XEP-0198 version 3.
const nsSM = "urn:xmpp:sm:3"

// smKey holds a session's stream management state, set by <enable/>.
var smKey = router.NewSessionKey[*smState]("c2s stream management")

// smState is one session's stream management state.
type smState struct {
	// id is the resumption id, "" when the session is not resumable;
	// timeout is how long it hibernates. Both are set at enable.
	id      string
	timeout time.Duration

	// inbound is h for the client: the stanzas handled from it since
	// enable, modulo 2^32 (the reader adds, resumption reads).
	inbound atomic.Uint32

	// life serialises what moves the session between transports:
	// hibernating, resuming, expiring and ending. It is never taken by
	// the writer, so a holder may wait for the writer (Detach).
	life sync.Mutex
	// timer ends a hibernating session; nil while attached. Under life.
	timer *time.Timer

	mu sync.Mutex
	// active is set by the writer when it has written <enabled/>: the
	// stanzas written after it are the ones the client counts.
	active bool
	// sent counts the stanzas written since enable and acked is the
	// client's last h, both modulo 2^32; unacked holds the sent stanzas
	// after acked, oldest first, so len(unacked) == sent-acked.
	sent, acked  uint32
	unacked      []unackedStanza
	unackedBytes int
	// sinceRequest counts the stanzas written since the last <r/>;
	// requested is set while an <r/> waits for its <a/>.
	sinceRequest int
	requested    bool
}

// unackedStanza is a stanza written and not yet acknowledged, with its
// size as written, for the byte limit.
type unackedStanza struct {
	st   *router.Stanza
	size int
}

// smCommand is a parsed stream management element from the client.
type smCommand struct {
	name   string // enable, resume, r or a
	h      uint32 // a, resume
	resume bool   // enable
	max    int    // enable: the client's preferred timeout in seconds, 0 for none
	previd string // resume
}

// errSMElement says a stream management element is malformed.
var errSMElement = errors.New("c2s: malformed stream management element")

// parseSMCommand reads a stream management element from the client. It
// checks only what the XEP requires of each element's attributes.
func parseSMCommand(e *router.Element) (smCommand, error) {
	if e == nil || e.Name.Space != nsSM {
		return smCommand{}, errSMElement
	}
	cmd := smCommand{name: e.Name.Local}
	switch e.Name.Local {
	case "r":
	case "a":
		h, err := parseH(e.Get("h"))
		if err != nil {
			return smCommand{}, err
		}
		cmd.h = h
	case "enable":
		switch e.Get("resume") {
		case "true", "1":
			cmd.resume = true
		case "", "false", "0":
		default:
			return smCommand{}, fmt.Errorf("%w: resume=%q", errSMElement, e.Get("resume"))
		}
		if m := e.Get("max"); m != "" {
			n, err := strconv.ParseUint(m, 10, 31)
			if err != nil {
				return smCommand{}, fmt.Errorf("%w: max=%q", errSMElement, m)
			}
			cmd.max = int(n)
		}
	case "resume":
		h, err := parseH(e.Get("h"))
		if err != nil {
			return smCommand{}, err
		}
		cmd.h = h
		cmd.previd = e.Get("previd")
		if cmd.previd == "" {
			return smCommand{}, fmt.Errorf("%w: resume without previd", errSMElement)
		}
	default:
		return smCommand{}, fmt.Errorf("%w: unknown element %s", errSMElement, e.Name.Local)
	}
	return cmd, nil
}

// parseH reads an 'h' attribute: an xs:unsignedInt.
func parseH(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: h=%q", errSMElement, s)
	}
	return uint32(n), nil
}

// ackedCount is how many of unacked an h of the client acknowledges, with
// the counters modulo 2^32; ok is false when h acknowledges more than was
// sent.
func ackedCount(acked, h uint32, unacked int) (n int, ok bool) {
	d := h - acked // wraps as the counters do
	if uint64(d) > uint64(unacked) {
		return 0, false
	}
	return int(d), true
}

// smFailed is a <failed/> with a stanza error condition.
func smFailed(cond stanza.Condition) *router.Element {
	return router.NewElement(nsSM, "failed").Append(router.NewElement(router.NSStanzas, string(cond)))
}

// handledTooHigh is the stream error of XEP-0198 §6 for an h above what
// was sent: undefined-condition with <handled-count-too-high/>.
type handledTooHigh struct{ h, sent uint32 }

func (e handledTooHigh) Error() string {
	return fmt.Sprintf("client acknowledged %d stanzas, %d were sent", e.h, e.sent)
}

// Unwrap makes it the stream error undefined-condition for conn.finish.
func (e handledTooHigh) Unwrap() error { return stream.UndefinedCondition }

// streamErrorPayload is written inside <stream:error/>, after the condition.
func (e handledTooHigh) streamErrorPayload() []byte {
	return fmt.Appendf(nil, `<handled-count-too-high xmlns="%s" h="%d" send-count="%d"/>`, nsSM, e.h, e.sent)
}

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
	hibernating map[string]int // bare JID → sessions hibernating
	total       int
}

// add registers s as resumable under id.
func (r *smRegistry) add(id string, s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = map[string]*Session{}
		r.hibernating = map[string]int{}
	}
	r.byID[id] = s
}

// remove forgets id if it still names s.
func (r *smRegistry) remove(id string, s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID[id] == s {
		delete(r.byID, id)
	}
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

// hibernate counts s as hibernating unless a limit forbids it.
func (r *smRegistry) hibernate(s *Session, perUser, total int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hibernating == nil {
		r.hibernating = map[string]int{}
	}
	bare := s.jid.Bare().String()
	if r.total >= total || r.hibernating[bare] >= perUser {
		return false
	}
	r.total++
	r.hibernating[bare]++
	return true
}

// wake uncounts a hibernating s.
func (r *smRegistry) wake(s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	bare := s.jid.Bare().String()
	r.total--
	if r.hibernating[bare]--; r.hibernating[bare] <= 0 {
		delete(r.hibernating, bare)
	}
}

// counts returns the hibernating sessions of bare and in all.
func (r *smRegistry) counts(bare string) (account, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hibernating[bare], r.total
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

// sm returns the session's stream management state, nil if not enabled.
func (s *Session) sm() *smState {
	sm, _ := smKey.Get(s)
	return sm
}

// addSMHandlers registers the post-bind stream management elements.
func (s *Server) addSMHandlers() {
	s.HandleElement(nsSM, "enable", smEnable)
	s.HandleElement(nsSM, "r", smRequest)
	s.HandleElement(nsSM, "a", smAck)
	s.HandleElement(nsSM, "resume", func(_ context.Context, s *Session, _ *router.Element) error {
		// Resumption comes instead of binding, never after it.
		return s.queueControl(smFailed(stanza.UnexpectedRequest))
	})
}

// smStep advertises stream management after authentication and handles
// its elements before binding: <resume/>, and the refusal of an early
// <enable/>.
var smStep = Step{
	Name:   "sm",
	Stages: AfterAuth,
	Features: func(*Negotiation) []*router.Element {
		return []*router.Element{router.NewElement(nsSM, "sm")}
	},
	Match: func(_ *Negotiation, e *router.Element) bool {
		return e.Name.Space == nsSM
	},
	Handle: func(ctx context.Context, n *Negotiation, e *router.Element) (Outcome, error) {
		c := n.c
		cmd, err := parseSMCommand(e)
		switch {
		case err != nil:
			return Continue, c.writeElement(smFailed(stanza.BadRequest))
		case cmd.name != "resume" || !c.authed:
			// XEP-0198 §3: enable only after binding; nothing before
			// authentication.
			return Continue, c.writeElement(smFailed(stanza.UnexpectedRequest))
		}
		return c.resume(ctx, cmd)
	},
}

// newResumptionID returns an unguessable resumption id: 130 random bits.
func newResumptionID() string { return rand.Text() }

// smEnable handles <enable/> (XEP-0198 §3).
func smEnable(_ context.Context, s *Session, e *router.Element) error {
	cmd, err := parseSMCommand(e)
	if err != nil {
		return s.queueControl(smFailed(stanza.BadRequest))
	}
	// Complete before it is published: the writer reads it unlocked.
	sm := &smState{}
	if cmd.resume {
		sm.timeout = s.srv.limits.ResumeTimeout
		if cmd.max > 0 {
			sm.timeout = min(sm.timeout, time.Duration(cmd.max)*time.Second)
		}
		sm.id = newResumptionID()
	}
	created := false
	smKey.GetOrSet(s, func() *smState { created = true; return sm })
	if !created {
		// §3: at most one attempt.
		return s.queueControl(smFailed(stanza.UnexpectedRequest))
	}
	enabled := router.NewElement(nsSM, "enabled")
	if cmd.resume {
		s.srv.sm.add(sm.id, s)
		// max is in whole seconds, rounded up: 0 would read as none.
		secs := (sm.timeout + time.Second - 1) / time.Second
		enabled.SetAttr("id", sm.id).SetAttr("resume", "true").SetAttr("max", strconv.Itoa(int(secs)))
	}
	s.log.Debug("c2s stream management enabled", slog.Bool("resume", cmd.resume))
	return s.queueControl(enabled)
}

// smRequest answers the client's <r/> with the count of stanzas handled.
func smRequest(_ context.Context, s *Session, _ *router.Element) error {
	sm := s.sm()
	if sm == nil {
		return s.queueControl(smFailed(stanza.UnexpectedRequest))
	}
	return s.queueControl(router.NewElement(nsSM, "a", "h", strconv.FormatUint(uint64(sm.inbound.Load()), 10)))
}

// smAck takes the client's <a/>: the stanzas it acknowledges are done.
func smAck(_ context.Context, s *Session, e *router.Element) error {
	sm := s.sm()
	if sm == nil {
		return s.queueControl(smFailed(stanza.UnexpectedRequest))
	}
	cmd, err := parseSMCommand(e)
	if err != nil {
		return stream.BadFormat
	}
	sm.mu.Lock()
	defer sm.mu.Unlock()
	sm.requested = false
	return sm.ack(cmd.h)
}

// ack drops the stanzas h acknowledges; the caller holds mu.
func (sm *smState) ack(h uint32) error {
	n, ok := ackedCount(sm.acked, h, len(sm.unacked))
	if !ok {
		return handledTooHigh{h: h, sent: sm.sent}
	}
	for _, u := range sm.unacked[:n] {
		sm.unackedBytes -= u.size
	}
	clear(sm.unacked[:n])
	sm.unacked = sm.unacked[n:]
	if len(sm.unacked) == 0 {
		sm.unacked = nil // let the backing array go
	}
	sm.acked = h
	return nil
}

// queueControl queues a stream management element behind the stanzas
// already queued, so that it reaches the client in order with them.
func (s *Session) queueControl(e *router.Element) error {
	if s.out.push(&router.Stanza{Element: e}) == queueFull {
		return stream.ResourceConstraint
	}
	return nil
}

// countInbound counts a stanza handled from the client.
func (s *Session) countInbound() {
	if sm := s.sm(); sm != nil {
		sm.inbound.Add(1)
	}
}

// wrote is told by the writer of each element it puts in a write, with
// its serialised size: a stanza after <enabled/> is counted and kept until
// acknowledged. Over the unacked limits it returns the stream error that
// ends the session.
func (sm *smState) wrote(st *router.Stanza, size int, l *limitsView) error {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if st.Name.Space != "" {
		if st.Name.Space == nsSM && st.Name.Local == "enabled" {
			sm.active = true
		}
		return nil
	}
	if !sm.active {
		return nil
	}
	sm.unacked = append(sm.unacked, unackedStanza{st: st, size: size})
	sm.unackedBytes += size
	sm.sent++
	sm.sinceRequest++
	if len(sm.unacked) > l.maxUnacked || sm.unackedBytes > l.maxUnackedBytes {
		return stream.ResourceConstraint
	}
	return nil
}

// limitsView is what the writer needs of the limits.
type limitsView struct{ ackAfter, maxUnacked, maxUnackedBytes int }

func (s *Session) smLimits() *limitsView {
	l := &s.srv.limits
	return &limitsView{ackAfter: l.SMAckAfter, maxUnacked: l.SMMaxUnacked, maxUnackedBytes: l.SMMaxUnackedBytes}
}

// wantRequest reports whether the writer should ask for an ack now: enough
// stanzas went out since the last <r/>, and none is outstanding.
func (sm *smState) wantRequest(ackAfter int) bool {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if !sm.active || sm.requested || sm.sinceRequest < ackAfter {
		return false
	}
	sm.requested, sm.sinceRequest = true, 0
	return true
}

// smRequestXML is the server's request for an ack.
const smRequestXML = `<r xmlns="` + nsSM + `"/>`

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
	if !s.srv.sm.hibernate(s, l.MaxHibernatingPerUser, l.MaxHibernating) {
		sm.life.Unlock()
		s.log.Info("c2s session not kept for resumption: too many hibernating sessions")
		return false
	}
	s.Detach()
	s.startTimer(sm)
	sm.life.Unlock()
	t.Close(err)
	t.Finish(nil)
	s.log.Info("c2s session hibernating", slog.Any("reason", err), slog.Duration("timeout", sm.timeout))
	return true
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
// carries the session from now on with its full JID and presence.
func (c *conn) resume(ctx context.Context, cmd smCommand) (Outcome, error) {
	account, err := jid.New(c.user, c.host, "")
	var s *Session
	if err == nil {
		s = c.srv.sm.lookup(cmd.previd, account.String())
	}
	if s == nil {
		c.log.Info("c2s resumption refused: unknown id")
		return Continue, c.writeElement(smFailed(stanza.ItemNotFound))
	}
	sm := s.sm()
	sm.life.Lock()
	if s.closed.Load() {
		sm.life.Unlock()
		return Continue, c.writeElement(smFailed(stanza.ItemNotFound))
	}
	s.stopTimer(sm)
	if old := s.Detach(); old != nil {
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
	if ackErr != nil {
		sm.life.Unlock()
		s.Close(ackErr)
		return Continue, ackErr
	}
	resumed := router.NewElement(nsSM, "resumed", "previd", cmd.previd,
		"h", strconv.FormatUint(uint64(sm.inbound.Load()), 10))
	if err := c.writeElement(resumed); err != nil {
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
	if s.srv.sm.hibernate(s, l.MaxHibernatingPerUser, l.MaxHibernating) {
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

// smOverLimit ends a session with too many stanzas unacknowledged; rest
// is what the writer took from the queue and did not write, put back for
// End to route again with the unacked ones.
func (s *Session) smOverLimit(rest []*router.Stanza, err error) {
	s.out.putBack(rest)
	s.log.Warn("c2s stream management: too many unacknowledged stanzas; closing session")
	s.Close(err)
}

// Hibernating is the number of sessions waiting to be resumed (XEP-0198):
// for metrics, and for tests that wait for a dropped connection to be
// noticed.
func (s *Server) Hibernating() int {
	_, total := s.sm.counts("")
	return total
}
