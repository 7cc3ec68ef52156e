package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// MUCPlan is the group chat scenario (XEP-0045): every session enters one
// room, a few of them (the senders) send groupchat messages at a fixed
// total rate (open loop, as in ChatPlan), and every occupant, the sender
// included, measures the latency of its copy of each message from when the
// message was due. The room reflects each message to all occupants, so the
// server's work per message grows with the room: what is measured is the
// fan-out, per delivered copy.
type MUCPlan struct {
	// Plan opens the sessions, one occupant each.
	Plan
	// Nick is the nick of session i, with %d replaced by i as in
	// Plan.User; "" means "n%d".
	Nick string
	// Room is the bare JID of the room. The first session enters it
	// first; if that creates it (status 201) it asks for an instant room
	// (XEP-0045 §10.1.2) before the others enter. An existing room is
	// used as it is configured.
	Room string
	// Senders is how many occupants send (the first Senders sessions);
	// 0 means all.
	Senders int
	// Rates are the total message rates of the steps, per second.
	Rates []int
	// Step, Drain, StopP99 and ServerPID are as in ChatPlan; StopP99
	// and the latencies count copies.
	Step, Drain, StopP99 time.Duration
	ServerPID            int
	// JoinTimeout bounds each session's entering; 0 means 60 s.
	JoinTimeout time.Duration
	// Settle is how long to wait once all have entered before the first
	// step, so that the server has sent the last presence broadcasts.
	Settle time.Duration
	// Entered, if not nil, is told how long entering took, once all
	// sessions are in the room.
	Entered func(took time.Duration)
}

// ids of the requests the scenario makes.
const mucCreateID = "load-muc-create"

// RunMUC runs the group chat scenario on sessions opened by Open for
// p.Plan: all of them enter p.Room (p.Parallel at a time after the first),
// then the steps run; report is called after each step. The sessions read
// all the time, from before they enter until RunMUC returns, so that no
// occupant's unread copies slow the server down. The caller closes the
// sessions (which makes them leave the room).
func RunMUC(ctx context.Context, p MUCPlan, sessions []*Session, report func(StepResult)) ([]StepResult, error) {
	if len(sessions) == 0 || p.Room == "" {
		return nil, errors.New("loadtest: muc needs sessions and a room")
	}
	senders := p.Senders
	if senders <= 0 || senders > len(sessions) {
		senders = len(sessions)
	}
	m := &mucRun{recorder: newRecorder(len(sessions)), occupants: make([]mucOccupant, len(sessions))}
	for i := range m.occupants {
		m.occupants[i] = mucOccupant{joined: make(chan joinEvent, 1), answer: make(chan string, 1)}
	}
	rd := startReaders(ctx, sessions, m.read)
	defer rd.stop()
	start := time.Now()
	if err := m.enter(rd.ctx, p, sessions, rd.errs); err != nil {
		return nil, err
	}
	if p.Entered != nil {
		p.Entered(time.Since(start))
	}
	select {
	case <-time.After(p.Settle):
	case <-rd.ctx.Done():
		return nil, rd.ctx.Err()
	}
	return ramp(p.Rates, p.StopP99, report, func(n, rate int) (StepResult, error) {
		r, err := m.runStep(rd.ctx, stepSpec{
			step: n, rate: rate, duration: p.Step, drain: p.Drain, serverPID: p.ServerPID,
			senders: sessions[:senders], copies: len(sessions),
			build: func(b []byte, sender, seq int, due time.Time) []byte {
				return appendMessage(b, "groupchat", p.Room, n, sender, seq, due)
			},
		}, rd.errs)
		r.Occupants = len(sessions)
		return r, err
	})
}

// mucRun is the state of one run of the scenario.
type mucRun struct {
	*recorder
	occupants []mucOccupant
}

// mucOccupant is what the reader of one session tells the scenario.
type mucOccupant struct {
	// joined gets the session's first self-presence from the room or
	// presence error.
	joined chan joinEvent
	// answer gets the type of the answer to the instant-room request.
	answer chan string
}

// joinEvent is how entering the room ended for one session.
type joinEvent struct {
	// created says the room was created by this entering (status 201).
	created bool
	// err is the presence error that refused it.
	err error
}

// enter has every session enter the room: the first alone (creating the
// room if it must), then the others, p.Parallel at a time.
func (m *mucRun) enter(ctx context.Context, p MUCPlan, sessions []*Session, errs <-chan error) error {
	timeout := p.JoinTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	wait := func(ch <-chan joinEvent, who string) (joinEvent, error) {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case ev := <-ch:
			return ev, ev.err
		case err := <-errs:
			return joinEvent{}, err
		case <-t.C:
			return joinEvent{}, fmt.Errorf("loadtest: %s: no answer from the room within %s", who, timeout)
		case <-ctx.Done():
			return joinEvent{}, ctx.Err()
		}
	}
	nick := p.Nick
	if nick == "" {
		nick = "n%d"
	}
	join := func(i int) error {
		s := sessions[i]
		pres := `<presence to='` + escape(p.Room+"/"+expand(nick, i)) +
			`'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`
		if _, err := io.WriteString(s.conn, pres); err != nil {
			return fmt.Errorf("loadtest: %s: enter %s: %w", s.JID, p.Room, err)
		}
		ev, err := wait(m.occupants[i].joined, s.JID)
		if err != nil {
			return fmt.Errorf("loadtest: %s: enter %s: %w", s.JID, p.Room, err)
		}
		if i == 0 && ev.created {
			return m.instantRoom(ctx, p.Room, s, timeout)
		}
		return nil
	}
	if err := join(0); err != nil {
		return err
	}
	par := p.Parallel
	if par <= 0 {
		par = 16
	}
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	next := make(chan int)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(par, len(sessions)-1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := join(i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := 1; i < len(sessions); i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// instantRoom accepts the default configuration of the room that s has
// just created (XEP-0045 §10.1.2), which unlocks it for the others.
func (m *mucRun) instantRoom(ctx context.Context, room string, s *Session, timeout time.Duration) error {
	iq := `<iq type='set' id='` + mucCreateID + `' to='` + escape(room) +
		`'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`
	if _, err := io.WriteString(s.conn, iq); err != nil {
		return fmt.Errorf("loadtest: %s: create %s: %w", s.JID, room, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case typ := <-m.occupants[0].answer:
		if typ != "result" {
			return fmt.Errorf("loadtest: %s: create %s: the room answered the instant-room request with %s", s.JID, room, typ)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("loadtest: %s: create %s: no answer to the instant-room request within %s", s.JID, room, timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// read reads what session i receives, cut into top-level stanzas: it
// records the groupchat copies of the current step and tells enter about
// the session's self-presence (status 110) or presence error and the
// answer to the instant-room request. Like the chat reader it looks for
// markers in the bytes rather than parsing XML, to cost the generator
// little.
func (m *mucRun) read(i int, r io.Reader) error {
	var sp splitter
	chunk := make([]byte, 32<<10)
	o := &m.occupants[i]
	for {
		n, err := r.Read(chunk)
		if ferr := sp.feed(chunk[:n], func(el []byte) error { return m.handle(i, o, el) }); ferr != nil {
			return ferr
		}
		if err != nil {
			return err
		}
	}
}

var (
	bodyOpen, bodyClose = []byte("<body>"), []byte("</body>")
	codeSelf            = [][]byte{[]byte(`code='110'`), []byte(`code="110"`)}
	codeCreated         = [][]byte{[]byte(`code='201'`), []byte(`code="201"`)}
)

// handle handles one top-level element that session i received.
func (m *mucRun) handle(i int, o *mucOccupant, el []byte) error {
	switch elementName(el) {
	case "message":
		if a := bytes.Index(el, bodyOpen); a >= 0 {
			if z := bytes.Index(el[a:], bodyClose); z >= 0 {
				m.record(i, el[a+len(bodyOpen):a+z])
			}
		}
	case "presence":
		var ev joinEvent
		switch {
		case attr(el, "type") == "error":
			ev.err = fmt.Errorf("presence error: %s", truncate(el, 400))
		case containsAny(el, codeSelf):
			ev.created = containsAny(el, codeCreated)
		default:
			return nil
		}
		select {
		case o.joined <- ev:
		default: // a later self-presence (a role change): not asked for
		}
	case "iq":
		if attr(el, "id") == mucCreateID {
			select {
			case o.answer <- attr(el, "type"):
			default:
			}
		}
	case "stream:error":
		return fmt.Errorf("stream error: %s", truncate(el, 400))
	}
	return nil
}

func containsAny(b []byte, subs [][]byte) bool {
	for _, s := range subs {
		if bytes.Contains(b, s) {
			return true
		}
	}
	return false
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// elementName is the qualified name of the element that el starts with.
func elementName(el []byte) string {
	end := bytes.IndexAny(el, " \t\r\n/>")
	if len(el) < 2 || end < 1 {
		return ""
	}
	return string(el[1:end])
}

// attr is the value of attribute name on the start tag that el begins
// with, "" if absent; entities are left as they are (the values the
// scenario looks at have none).
func attr(el []byte, name string) string {
	tag := el[:tagEnd(el, 0)+1]
	for _, q := range []byte{'\'', '"'} {
		for _, sep := range []byte{' ', '\t', '\n', '\r'} {
			pat := append(append([]byte{sep}, name...), '=', q)
			a := bytes.Index(tag, pat)
			if a < 0 {
				continue
			}
			v := tag[a+len(pat):]
			if z := bytes.IndexByte(v, q); z >= 0 {
				return string(v[:z])
			}
		}
	}
	return ""
}

// tagEnd returns the index of the '>' that ends the tag starting at b[lt]
// ('<'), skipping quoted attribute values, or -1 if b ends first.
func tagEnd(b []byte, lt int) int {
	var quote byte
	for j := lt + 1; j < len(b); j++ {
		switch c := b[j]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '>':
			return j
		}
	}
	return -1
}

// splitter cuts the inside of an XML stream into top-level elements, as
// bytes arrive. It only tracks tags and their depth: a stream from a
// server has no comments, processing instructions or CDATA sections
// (RFC 6120 §11.1), and text never holds '<'.
type splitter struct {
	buf []byte
	// off is where scanning goes on; start is where the top-level
	// element being read began, valid while depth > 0.
	off, start, depth int
}

// errStreamClosed is the end of the stream: the server's </stream:stream>.
var errStreamClosed = errors.New("server closed the stream")

// feed adds p and calls each for every top-level element it completes.
func (s *splitter) feed(p []byte, each func(el []byte) error) error {
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf[s.off:], '<')
		if i < 0 {
			s.off = len(s.buf)
			break
		}
		lt := s.off + i
		end := tagEnd(s.buf, lt)
		if end < 0 {
			s.off = lt
			break
		}
		s.off = end + 1
		if lt+1 >= end {
			continue
		}
		switch s.buf[lt+1] {
		case '?', '!':
			continue
		case '/':
			s.depth--
			if s.depth < 0 {
				return errStreamClosed
			}
		default:
			if s.depth == 0 {
				s.start = lt
			}
			if s.buf[end-1] != '/' {
				s.depth++
				continue
			}
		}
		if s.depth == 0 {
			if err := each(s.buf[s.start:s.off]); err != nil {
				return err
			}
		}
	}
	// Keep only what an element still needs.
	keep := s.off
	if s.depth > 0 {
		keep = s.start
	}
	n := copy(s.buf, s.buf[keep:])
	s.buf = s.buf[:n]
	s.off -= keep
	s.start -= min(keep, s.start)
	return nil
}
