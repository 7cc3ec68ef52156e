package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ChatPlan is the chat scenario: sessions in pairs, each sending chat
// messages to the other at a fixed total rate (open loop: a message is sent
// when it is due, whether or not earlier ones arrived), in steps of rising
// rate. Each body carries the time the message was due, so latency is
// measured from when it should have left, not from when a slow sender got
// round to it, and a saturated server shows as latency, not as a lower
// rate.
type ChatPlan struct {
	// Plan opens the sessions: two per pair, session 2i talking with
	// 2i+1, so Plan.Sessions must be even.
	Plan
	// Rates are the total message rates of the steps, per second.
	Rates []int
	// Step is how long each rate is held.
	Step time.Duration
	// Drain is how long, after a step, messages still in flight are
	// waited for before the rest count as lost.
	Drain time.Duration
	// StopP99 ends the ramp after the first step whose p99 latency is
	// at least this, or that lost a message; 0 runs every step.
	StopP99 time.Duration
	// ServerPID, if not 0, is the server's process: each step reports its
	// CPU time per message received, from /proc.
	ServerPID int
}

// StepResult is what one step of the chat or group chat scenario
// measured.
type StepResult struct {
	Rate int
	// Sent is how many messages left; Got how many copies of them
	// arrived within the step and its drain.
	Sent, Got int64
	// Occupants is, in the group chat scenario, how many copies of each
	// message should arrive (every occupant's, the sender's included);
	// 0 in the chat scenario, where each message has one receiver.
	Occupants     int
	P50, P99, Max time.Duration
	// CPUPerMessage is the server's CPU time (user and system) during the
	// step divided by the messages (group chat: copies) received; 0
	// without ServerPID.
	CPUPerMessage time.Duration
	// ClientCPUPerMessage is the same for the generator's own process,
	// which reads every copy: a check that it is not the bottleneck.
	ClientCPUPerMessage time.Duration
	// Elapsed is how long the step took, drain included.
	Elapsed time.Duration
}

// Expected is how many copies of the step's messages should have arrived.
func (r StepResult) Expected() int64 {
	if r.Occupants > 0 {
		return r.Sent * int64(r.Occupants)
	}
	return r.Sent
}

// Lost is how many copies of the step's messages never arrived.
func (r StepResult) Lost() int64 { return r.Expected() - r.Got }

// String is the summary line the tool prints per step.
func (r StepResult) String() string {
	unit := "msg"
	s := fmt.Sprintf("step rate=%d/s sent=%d got=%d lost=%d", r.Rate, r.Sent, r.Got, r.Lost())
	if r.Occupants > 0 {
		unit = "copy"
		s = fmt.Sprintf("step rate=%d/s occupants=%d sent=%d copies=%d got=%d lost=%d",
			r.Rate, r.Occupants, r.Sent, r.Expected(), r.Got, r.Lost())
	}
	s += fmt.Sprintf(" p50=%s p99=%s max=%s", r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond))
	if r.CPUPerMessage > 0 {
		s += fmt.Sprintf(" server_cpu_per_%s=%s", unit, r.CPUPerMessage.Round(100*time.Nanosecond))
	}
	if r.Occupants > 0 && r.ClientCPUPerMessage > 0 {
		s += fmt.Sprintf(" client_cpu_per_%s=%s", unit, r.ClientCPUPerMessage.Round(100*time.Nanosecond))
	}
	return s
}

// RunChat runs the chat scenario on sessions opened by Open for p.Plan,
// calling report after each step, and returns every step's result. It
// stops at the first failure to send or read, or when ctx ends.
func RunChat(ctx context.Context, p ChatPlan, sessions []*Session, report func(StepResult)) ([]StepResult, error) {
	if len(sessions) < 2 || len(sessions)%2 != 0 {
		return nil, fmt.Errorf("loadtest: chat needs an even number of sessions, got %d", len(sessions))
	}
	rec := newRecorder(len(sessions))
	rd := startReaders(ctx, sessions, func(i int, r io.Reader) error { return rec.read(i, r) })
	defer rd.stop()
	return ramp(p.Rates, p.StopP99, report, func(n, rate int) (StepResult, error) {
		return rec.runStep(rd.ctx, stepSpec{
			step: n, rate: rate, duration: p.Step, drain: p.Drain, serverPID: p.ServerPID,
			senders: sessions, copies: 1,
			build: func(b []byte, sender, seq int, due time.Time) []byte {
				return appendMessage(b, "chat", sessions[sender^1].JID, n, sender, seq, due)
			},
		}, rd.errs)
	})
}

// ramp runs the steps at rates in order, reporting each, until the first
// error or, if stopP99 is not 0, after the first step whose p99 latency is
// at least stopP99 or that lost a message.
func ramp(rates []int, stopP99 time.Duration, report func(StepResult), step func(n, rate int) (StepResult, error)) ([]StepResult, error) {
	var results []StepResult
	for n, rate := range rates {
		r, err := step(n, rate)
		if err != nil {
			return results, err
		}
		results = append(results, r)
		if report != nil {
			report(r)
		}
		if stopP99 > 0 && (r.P99 >= stopP99 || r.Lost() > 0) {
			break
		}
	}
	return results, nil
}

// readers are the goroutines that read every session of a scenario.
type readers struct {
	// ctx ends when stop is called or a reader fails.
	ctx      context.Context
	cancel   context.CancelFunc
	sessions []*Session
	wg       sync.WaitGroup
	// errs gets each reader's failure.
	errs chan error
}

// startReaders starts one goroutine per session that runs read on what
// the session receives, until stop.
func startReaders(ctx context.Context, sessions []*Session, read func(i int, r io.Reader) error) *readers {
	rd := &readers{sessions: sessions, errs: make(chan error, len(sessions))}
	rd.ctx, rd.cancel = context.WithCancel(ctx)
	for i, s := range sessions {
		rd.wg.Add(1)
		go func() {
			defer rd.wg.Done()
			if err := read(i, s.Reader()); err != nil && rd.ctx.Err() == nil {
				rd.errs <- fmt.Errorf("loadtest: read %s: %w", s.JID, err)
				rd.cancel()
			}
		}()
	}
	return rd
}

// stop ends the readers and waits for them; the caller closes the
// sessions.
func (rd *readers) stop() {
	rd.cancel()
	for _, s := range rd.sessions {
		// Unblocks the readers.
		s.conn.SetReadDeadline(time.Now())
	}
	rd.wg.Wait()
}

// recorder is the state the senders and readers of a scenario share.
type recorder struct {
	// step is the number of the step being measured: readers count a
	// message only if it belongs to it, so a late one from an earlier
	// step is not taken for one of this.
	step  int64
	mu    sync.Mutex
	hists []histogram // one per reader, guarded by mu between steps
	got   atomic.Int64
}

func newRecorder(readers int) *recorder {
	return &recorder{step: -1, hists: make([]histogram, readers)}
}

// stepSpec is one open-loop step: the senders send, in turn, rate messages
// a second in all for duration, each message built by build.
type stepSpec struct {
	step, rate      int
	duration, drain time.Duration
	serverPID       int
	senders         []*Session
	// copies is how many copies of each message should arrive.
	copies int
	// build appends message seq of sender (its index in senders), due
	// at due, to b.
	build func(b []byte, sender, seq int, due time.Time) []byte
}

// runStep sends at s.rate for s.duration, waits s.drain, and measures.
func (c *recorder) runStep(ctx context.Context, s stepSpec, errs <-chan error) (StepResult, error) {
	c.mu.Lock()
	for i := range c.hists {
		c.hists[i] = histogram{}
	}
	c.mu.Unlock()
	c.got.Store(0)
	atomic.StoreInt64(&c.step, int64(s.step))
	cpu0, err := processCPU(s.serverPID)
	if err != nil {
		return StepResult{}, err
	}
	self0, err := processCPU(os.Getpid())
	if err != nil {
		return StepResult{}, err
	}
	start := time.Now()
	sent, err := sendAtRate(ctx, s.senders, s.rate, start, start.Add(s.duration), s.build)
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err != nil {
		return StepResult{}, err
	}
	// Wait for what is in flight, up to Drain.
	want := sent * int64(s.copies)
	deadline := time.Now().Add(s.drain)
	for c.got.Load() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu1, err := processCPU(s.serverPID)
	if err != nil {
		return StepResult{}, err
	}
	self1, err := processCPU(os.Getpid())
	if err != nil {
		return StepResult{}, err
	}
	atomic.StoreInt64(&c.step, -1)
	c.mu.Lock()
	var all histogram
	for i := range c.hists {
		all.merge(&c.hists[i])
	}
	c.mu.Unlock()
	r := StepResult{Rate: s.rate, Sent: sent, Got: all.n, Elapsed: elapsed,
		P50: all.quantile(0.50), P99: all.quantile(0.99), Max: time.Duration(all.max)}
	if r.Got > 0 {
		if s.serverPID != 0 {
			r.CPUPerMessage = (cpu1 - cpu0) / time.Duration(r.Got)
		}
		r.ClientCPUPerMessage = (self1 - self0) / time.Duration(r.Got)
	}
	return r, ctx.Err()
}

// sendAtRate has each of senders send its share of rate messages a second
// from start until end, open loop, and returns how many left. The
// interval between two messages of one sender is len(senders)/rate.
func sendAtRate(ctx context.Context, senders []*Session, rate int, start, end time.Time, build func(b []byte, sender, seq int, due time.Time) []byte) (int64, error) {
	interval := time.Duration(float64(time.Second) * float64(len(senders)) / float64(rate))
	var sent atomic.Int64
	var wg sync.WaitGroup
	sendErr := make(chan error, len(senders))
	for i, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the senders over one interval, so that they do not
			// all send at the same instant.
			due := start.Add(interval * time.Duration(i) / time.Duration(len(senders)))
			var buf []byte
			for seq := 0; due.Before(end); seq++ {
				if ctx.Err() != nil {
					return
				}
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				buf = build(buf[:0], i, seq, due)
				if _, err := s.conn.Write(buf); err != nil {
					sendErr <- fmt.Errorf("loadtest: send from %s: %w", s.JID, err)
					return
				}
				sent.Add(1)
				due = due.Add(interval)
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-sendErr:
		return sent.Load(), err
	default:
		return sent.Load(), nil
	}
}

// appendMessage appends a message of type typ to to whose body says its
// step, its sender, its number and when it was due.
func appendMessage(b []byte, typ, to string, step, sender, seq int, due time.Time) []byte {
	b = append(b, `<message type='`...)
	b = append(b, typ...)
	b = append(b, `' to='`...)
	b = append(b, to...)
	b = append(b, `'><body>`...)
	b = strconv.AppendInt(b, int64(step), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(sender), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, due.UnixNano(), 10)
	return append(b, `</body></message>`...)
}

// read reads what session i receives and records the latency of each
// chat message of the current step. It scans bytes for bodies rather than
// parsing XML: the generator must cost far less than the server, and the
// bodies are its own.
func (c *recorder) read(i int, r io.Reader) error {
	buf := make([]byte, 0, 64<<10)
	chunk := make([]byte, 32<<10)
	open, closing := []byte("<body>"), []byte("</body>")
	for {
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		for {
			a := bytes.Index(buf, open)
			if a < 0 {
				// Keep a tail that may hold the start of a <body>.
				if len(buf) > len(open) {
					buf = append(buf[:0], buf[len(buf)-len(open):]...)
				}
				break
			}
			z := bytes.Index(buf[a:], closing)
			if z < 0 {
				buf = append(buf[:0], buf[a:]...)
				break
			}
			c.record(i, buf[a+len(open):a+z])
			buf = buf[a+z+len(closing):]
		}
		if err != nil {
			return err
		}
	}
}

// record counts one body for reader i if it belongs to the current step.
func (c *recorder) record(i int, body []byte) {
	f := strings.Fields(string(body))
	if len(f) != 4 {
		return
	}
	step, err1 := strconv.ParseInt(f[0], 10, 64)
	due, err2 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil || step != atomic.LoadInt64(&c.step) {
		return
	}
	lat := time.Now().UnixNano() - due
	c.mu.Lock()
	c.hists[i].add(lat)
	c.mu.Unlock()
	c.got.Add(1)
}

// histogram records latencies in nanoseconds in buckets of about 3 %:
// for each power of two, 32 linear sub-buckets.
type histogram struct {
	n, max  int64
	buckets [64 * 32]int64
}

func bucketOf(v int64) int {
	if v < 32 {
		return int(max(v, 0))
	}
	e := 63 - bits.LeadingZeros64(uint64(v)) // v in [2^e, 2^(e+1))
	sub := (v >> (e - 5)) & 31
	return (e-4)*32 + int(sub)
}

// bucketValue is the upper end of bucket b.
func bucketValue(b int) int64 {
	if b < 32 {
		return int64(b)
	}
	e := b/32 + 4
	sub := int64(b % 32)
	return (32+sub+1)<<(e-5) - 1
}

func (h *histogram) add(v int64) {
	h.buckets[bucketOf(v)]++
	h.n++
	h.max = max(h.max, v)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.buckets {
		h.buckets[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the latency below which a fraction q of the values
// lie, to the bucket's precision.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	var seen int64
	for b, c := range h.buckets {
		seen += c
		if seen >= rank {
			return time.Duration(min(bucketValue(b), h.max))
		}
	}
	return time.Duration(h.max)
}

// processCPU returns the user and system CPU time of process pid so far,
// from /proc/pid/stat; 0 for pid 0.
func processCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("loadtest: server CPU: %w", err)
	}
	// The command name, in parentheses, may hold spaces: fields are
	// counted after its closing parenthesis. utime and stime are fields
	// 14 and 15 of the line, 12 and 13 after it.
	rest := b[bytes.LastIndexByte(b, ')')+1:]
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0, fmt.Errorf("loadtest: server CPU: short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("loadtest: server CPU: bad /proc/%d/stat", pid)
	}
	// Linux reports in clock ticks of USER_HZ, 100 per second on every
	// architecture Go supports here.
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
