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

// StepResult is what one step of the chat scenario measured.
type StepResult struct {
	Rate          int
	Sent, Got     int64
	P50, P99, Max time.Duration
	// CPUPerMessage is the server's CPU time (user and system) during the
	// step divided by the messages received; 0 without ServerPID.
	CPUPerMessage time.Duration
	// Elapsed is how long the step took, drain included.
	Elapsed time.Duration
}

// Lost is how many messages of the step never arrived.
func (r StepResult) Lost() int64 { return r.Sent - r.Got }

// String is the summary line the tool prints per step.
func (r StepResult) String() string {
	s := fmt.Sprintf("step rate=%d/s sent=%d got=%d lost=%d p50=%s p99=%s max=%s",
		r.Rate, r.Sent, r.Got, r.Lost(), r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond))
	if r.CPUPerMessage > 0 {
		s += fmt.Sprintf(" server_cpu_per_msg=%s", r.CPUPerMessage.Round(100*time.Nanosecond))
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &chat{sessions: sessions, step: -1}
	c.hists = make([]histogram, len(sessions))
	var readers sync.WaitGroup
	errs := make(chan error, len(sessions)*2)
	for i, s := range sessions {
		readers.Add(1)
		go func() {
			defer readers.Done()
			if err := c.read(i, s.Reader()); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("loadtest: read %s: %w", s.JID, err)
				cancel()
			}
		}()
	}
	defer func() {
		cancel()
		for _, s := range sessions {
			// Unblocks the readers; the caller closes the sessions.
			s.conn.SetReadDeadline(time.Now())
		}
		readers.Wait()
	}()
	var results []StepResult
	for n, rate := range p.Rates {
		r, err := c.runStep(ctx, p, n, rate, errs)
		if err != nil {
			return results, err
		}
		results = append(results, r)
		if report != nil {
			report(r)
		}
		if p.StopP99 > 0 && (r.P99 >= p.StopP99 || r.Lost() > 0) {
			break
		}
	}
	return results, nil
}

// chat is the state the senders and readers of the scenario share.
type chat struct {
	sessions []*Session
	// step is the number of the step being measured: readers count a
	// message only if it belongs to it, so a late one from an earlier
	// step is not taken for one of this.
	step  int64
	mu    sync.Mutex
	hists []histogram // one per reader, guarded by mu between steps
	got   atomic.Int64
}

// runStep sends at rate for p.Step, waits p.Drain, and measures.
func (c *chat) runStep(ctx context.Context, p ChatPlan, n, rate int, errs <-chan error) (StepResult, error) {
	c.mu.Lock()
	for i := range c.hists {
		c.hists[i] = histogram{}
	}
	c.mu.Unlock()
	c.got.Store(0)
	atomic.StoreInt64(&c.step, int64(n))
	cpu0, err := processCPU(p.ServerPID)
	if err != nil {
		return StepResult{}, err
	}
	start := time.Now()
	// Each session sends its share; the interval between two of its
	// messages is len(sessions)/rate.
	interval := time.Duration(float64(time.Second) * float64(len(c.sessions)) / float64(rate))
	var sent atomic.Int64
	var senders sync.WaitGroup
	sendErr := make(chan error, len(c.sessions))
	end := start.Add(p.Step)
	for i, s := range c.sessions {
		peer := c.sessions[i^1].JID
		senders.Add(1)
		go func() {
			defer senders.Done()
			// Spread the senders over one interval, so that they do not
			// all send at the same instant.
			due := start.Add(interval * time.Duration(i) / time.Duration(len(c.sessions)))
			var buf []byte
			for seq := 0; due.Before(end); seq++ {
				if ctx.Err() != nil {
					return
				}
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				buf = appendChat(buf[:0], peer, n, i, seq, due)
				if _, err := s.conn.Write(buf); err != nil {
					sendErr <- fmt.Errorf("loadtest: send from %s: %w", s.JID, err)
					return
				}
				sent.Add(1)
				due = due.Add(interval)
			}
		}()
	}
	senders.Wait()
	select {
	case err := <-sendErr:
		return StepResult{}, err
	case err := <-errs:
		return StepResult{}, err
	default:
	}
	// Wait for what is in flight, up to Drain.
	deadline := time.Now().Add(p.Drain)
	for c.got.Load() < sent.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu1, err := processCPU(p.ServerPID)
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
	r := StepResult{Rate: rate, Sent: sent.Load(), Got: all.n, Elapsed: elapsed,
		P50: all.quantile(0.50), P99: all.quantile(0.99), Max: time.Duration(all.max)}
	if p.ServerPID != 0 && r.Got > 0 {
		r.CPUPerMessage = (cpu1 - cpu0) / time.Duration(r.Got)
	}
	return r, ctx.Err()
}

// appendChat appends a chat message to peer whose body says its step, its
// sender, its number and when it was due.
func appendChat(b []byte, peer string, step, sender, seq int, due time.Time) []byte {
	b = append(b, `<message type='chat' to='`...)
	b = append(b, peer...)
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
func (c *chat) read(i int, r io.Reader) error {
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
func (c *chat) record(i int, body []byte) {
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
