package loadtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// LoginPlan is the login storm scenario: open-loop arrivals of full logins
// at a fixed rate (a login starts when it is due, whether or not earlier
// ones ended), in steps of rising rate. Each login is what a client does
// when it reconnects: TCP, STARTTLS, SASL, bind, roster, initial presence;
// its latency runs from when it was due until the roster arrived (the
// presence is sent then), and the session is closed at once.
type LoginPlan struct {
	// Plan says whom to log in as: login k of a step uses account
	// k mod Plan.Sessions, with a resource of its own.
	Plan
	// Rates are the logins per second of the steps.
	Rates []int
	// Step is how long each rate is held; the logins still running at
	// its end are waited for (each is bounded by Options.Timeout).
	Step time.Duration
	// StopP99 ends the ramp after the first step whose p99 latency is
	// at least this, or that had a failed login; 0 runs every step.
	StopP99 time.Duration
	// MaxInFlight bounds the logins running at once; one due while that
	// many run fails at once (0: 4096).
	MaxInFlight int
	// ServerPID, if not 0, is the server's process: each step reports
	// its CPU time per successful login.
	ServerPID int
}

// LoginResult is what one step of the login scenario measured.
type LoginResult struct {
	Rate          int
	Started, OK   int64
	P50, P99, Max time.Duration
	CPUPerLogin   time.Duration
	Elapsed       time.Duration
	FirstFailure  string
}

// Failed is how many logins of the step did not complete.
func (r LoginResult) Failed() int64 { return r.Started - r.OK }

// String is the summary line the tool prints per step.
func (r LoginResult) String() string {
	s := fmt.Sprintf("step rate=%d/s started=%d ok=%d failed=%d p50=%s p99=%s max=%s",
		r.Rate, r.Started, r.OK, r.Failed(), r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond))
	if r.CPUPerLogin > 0 {
		s += fmt.Sprintf(" server_cpu_per_login=%s", r.CPUPerLogin.Round(time.Microsecond))
	}
	if r.FirstFailure != "" {
		s += fmt.Sprintf(" first_failure=%q", r.FirstFailure)
	}
	return s
}

// RunLogin runs the login scenario, calling report after each step, and
// returns every step's result. It stops when ctx ends.
func RunLogin(ctx context.Context, p LoginPlan, report func(LoginResult)) ([]LoginResult, error) {
	if p.Sessions <= 0 {
		return nil, fmt.Errorf("loadtest: login needs accounts (-n), got %d", p.Sessions)
	}
	limit := p.MaxInFlight
	if limit <= 0 {
		limit = 4096
	}
	opts := p.Options
	opts.Roster, opts.Presence, opts.StreamManagement = true, true, ""
	var results []LoginResult
	for n, rate := range p.Rates {
		r, err := runLoginStep(ctx, p, opts, n, rate, limit)
		if err != nil {
			return results, err
		}
		results = append(results, r)
		if report != nil {
			report(r)
		}
		if p.StopP99 > 0 && (r.P99 >= p.StopP99 || r.Failed() > 0) {
			break
		}
	}
	return results, nil
}

// runLoginStep is one step: logins due every 1/rate for p.Step, each in a
// goroutine of its own (at most limit at once), then the wait for the last.
func runLoginStep(ctx context.Context, p LoginPlan, opts Options, step, rate, limit int) (LoginResult, error) {
	r := LoginResult{Rate: rate}
	cpu0, err := processCPU(p.ServerPID)
	if err != nil {
		return r, err
	}
	var (
		mu       sync.Mutex
		hist     histogram
		wg       sync.WaitGroup
		inFlight atomic.Int64
		ok       atomic.Int64
	)
	fail := func(msg string) {
		mu.Lock()
		if r.FirstFailure == "" {
			r.FirstFailure = msg
		}
		mu.Unlock()
	}
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	total := int(p.Step / interval)
	for k := range total {
		due := start.Add(time.Duration(k) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				wg.Wait()
				return r, ctx.Err()
			}
		}
		r.Started++
		if inFlight.Load() >= int64(limit) {
			fail(fmt.Sprintf("more than %d logins at once", limit))
			continue
		}
		inFlight.Add(1)
		wg.Add(1)
		a := Account{Local: expand(p.User, k%p.Sessions), Password: p.Password, Resource: fmt.Sprintf("s%d-%d", step, k)}
		go func() {
			defer wg.Done()
			defer inFlight.Add(-1)
			s, err := Dial(ctx, opts, a)
			if err != nil {
				fail(err.Error())
				return
			}
			lat := time.Since(due)
			s.Close()
			ok.Add(1)
			mu.Lock()
			hist.add(int64(lat))
			mu.Unlock()
		}()
	}
	wg.Wait()
	r.OK = ok.Load()
	r.P50, r.P99, r.Max = hist.quantile(0.50), hist.quantile(0.99), time.Duration(hist.max)
	r.Elapsed = time.Since(start)
	cpu1, err := processCPU(p.ServerPID)
	if err != nil {
		return r, err
	}
	if r.OK > 0 && p.ServerPID != 0 {
		r.CPUPerLogin = (cpu1 - cpu0) / time.Duration(r.OK)
	}
	return r, nil
}
