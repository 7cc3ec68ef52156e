package c2s

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/router"
)

// Stream management (XEP-0198): enabling and acknowledgements here,
// resumption in resume.go.
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
	// handling is held by the reader of a resumable session while it
	// checks that its transport still carries the session and handles an
	// element, and by a resumption while it reads inbound after detaching:
	// so an element the old connection was handling is either counted in
	// the h of <resumed/> or not handled at all, never handled and then
	// sent again by the client.
	handling sync.Mutex
	// asleepBytes counts the bytes delivered to the session while it
	// hibernates, against limits.sm_max_unacked_bytes (hibernationRoom).
	asleepBytes atomic.Int64

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
	// requested is set while an <r/> waits for its <a/>; requestTimer,
	// while stanzas are unacked and no <r/> is out, asks for an ack
	// after limits.sm_ack_interval even if too few stanzas went out.
	sinceRequest int
	requested    bool
	requestTimer *time.Timer
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
	Match: func(n *Negotiation, e *router.Element) bool {
		// Before authentication an SM element is no step's, and gets
		// not-authorized like any other element there.
		return n.c.authed && e.Name.Space == nsSM
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
		return c.resume(ctx, cmd, func(e *router.Element, _ *Session) error { return c.writeElement(e) })
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
	return s.queueControl(s.enableSM(cmd, false))
}

// enableSM enables stream management on s as cmd asks and returns the
// answer, <enabled/> or <failed/>. inline is for Bind 2 (XEP-0386), whose
// <bound/> carries the answer before the session has written anything:
// every stanza the session writes is then counted. Otherwise the answer is
// to be queued, and counting starts when the writer writes it.
func (s *Session) enableSM(cmd smCommand, inline bool) *router.Element {
	// Complete before it is published: the writer reads it unlocked.
	sm := &smState{active: inline}
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
		return smFailed(stanza.UnexpectedRequest)
	}
	enabled := router.NewElement(nsSM, "enabled")
	if cmd.resume {
		s.srv.sm.add(sm.id, s)
		// max is in whole seconds, rounded up: 0 would read as none.
		secs := (sm.timeout + time.Second - 1) / time.Second
		enabled.SetAttr("id", sm.id).SetAttr("resume", "true").SetAttr("max", strconv.Itoa(int(secs)))
	}
	s.log.Debug("c2s stream management enabled", slog.Bool("resume", cmd.resume), slog.Bool("inline", inline))
	return enabled
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
	sm.requested = false
	if err := sm.ack(cmd.h); err != nil {
		sm.mu.Unlock()
		return err
	}
	if len(sm.unacked) == 0 {
		sm.stopRequestTimer()
	} else {
		sm.armRequestTimer(s)
	}
	sm.mu.Unlock()
	// The writer may be waiting for room in the unacked window.
	s.out.wake()
	return nil
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
// acknowledged. The limits are kept by windowFull, before the writer takes
// a stanza.
func (sm *smState) wrote(st *router.Stanza, size int) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if st.Name.Space != "" {
		if st.Name.Space == nsSM && st.Name.Local == "enabled" {
			sm.active = true
		}
		return
	}
	if !sm.active {
		return
	}
	sm.unacked = append(sm.unacked, unackedStanza{st: st, size: size})
	sm.unackedBytes += size
	sm.sent++
	sm.sinceRequest++
}

// windowFull tells whether the unacked stanzas fill the limits, so that the
// writer must wait for an ack before it writes another stanza: the limits
// bound what is kept for resending, and a client that acknowledges keeps
// its stream going however much is queued for it (after a resumption, a
// burst of presences). It also asks for the ack, once: whether an <r/>
// must be written with what the writer has.
func (sm *smState) windowFull(l *limitsView) (full, request bool) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if !sm.active || (len(sm.unacked) < l.maxUnacked && sm.unackedBytes < l.maxUnackedBytes) {
		return false, false
	}
	if !sm.requested {
		sm.requested, sm.sinceRequest = true, 0
		sm.stopRequestTimer()
		return true, true
	}
	return true, false
}

// limitsView is what the writer needs of the limits.
type limitsView struct{ ackAfter, maxUnacked, maxUnackedBytes int }

func (s *Session) smLimits() limitsView {
	l := &s.srv.limits
	return limitsView{ackAfter: l.SMAckAfter, maxUnacked: l.SMMaxUnacked, maxUnackedBytes: l.SMMaxUnackedBytes}
}

// wantRequest reports whether the writer should ask s's client for an ack
// now: enough stanzas went out since the last <r/>, some are unacked, and
// no <r/> is outstanding. Too few, it arms the request timer instead.
func (sm *smState) wantRequest(s *Session, ackAfter int) bool {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if !sm.active || sm.requested || len(sm.unacked) == 0 {
		return false
	}
	if sm.sinceRequest < ackAfter {
		sm.armRequestTimer(s)
		return false
	}
	sm.requested, sm.sinceRequest = true, 0
	sm.stopRequestTimer()
	return true
}

// armRequestTimer starts the timer that asks for an ack after
// limits.sm_ack_interval, unless it runs; the caller holds mu.
func (sm *smState) armRequestTimer(s *Session) {
	if sm.requestTimer == nil {
		sm.requestTimer = time.AfterFunc(s.srv.limits.SMAckInterval, func() { s.requestAck(sm) })
	}
}

// stopRequestTimer stops it; the caller holds mu.
func (sm *smState) stopRequestTimer() {
	if sm.requestTimer != nil {
		sm.requestTimer.Stop()
		sm.requestTimer = nil
	}
}

// requestAck is the request timer's: it queues an <r/> if stanzas are
// still unacked and none is outstanding.
func (s *Session) requestAck(sm *smState) {
	sm.mu.Lock()
	sm.requestTimer = nil
	due := !sm.requested && len(sm.unacked) > 0
	if due {
		sm.requested, sm.sinceRequest = true, 0
	}
	sm.mu.Unlock()
	if due {
		s.queueControl(router.NewElement(nsSM, "r"))
	}
}

// smRequestXML is the server's request for an ack.
const smRequestXML = `<r xmlns="` + nsSM + `"/>`
