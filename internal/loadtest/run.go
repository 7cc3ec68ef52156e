package loadtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Plan is how many sessions to open and as whom.
type Plan struct {
	Options
	// Sessions is how many sessions to open.
	Sessions int
	// User is the account name; a %d in it is replaced by the session's
	// number (0, 1, …), so that "u%d" gives one account per session and
	// "load" one account with many resources.
	User     string
	Password string
	// Resource is the resource name, with %d as in User.
	Resource string
	// Parallel is how many negotiations run at once; 0 means 16.
	Parallel int
}

func (p Plan) account(i int) Account {
	return Account{Local: expand(p.User, i), Password: p.Password, Resource: expand(p.Resource, i)}
}

func expand(pattern string, i int) string {
	if strings.Contains(pattern, "%d") {
		return strings.Replace(pattern, "%d", fmt.Sprint(i), 1)
	}
	return pattern
}

// Open opens p.Sessions sessions, p.Parallel at a time. On the first
// failure it closes what it opened and returns the error.
func Open(ctx context.Context, p Plan) ([]*Session, error) {
	par := p.Parallel
	if par <= 0 {
		par = 16
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sessions := make([]*Session, p.Sessions)
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	next := make(chan int)
	for range min(par, p.Sessions) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				s, err := Dial(ctx, p.Options, p.account(i))
				if err != nil {
					errOnce.Do(func() { first = err; cancel() })
					continue
				}
				sessions[i] = s
			}
		}()
	}
feed:
	for i := range p.Sessions {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	if first != nil {
		CloseAll(sessions)
		return nil, first
	}
	return sessions, nil
}

// CloseAll closes every session that is not nil.
func CloseAll(sessions []*Session) {
	for _, s := range sessions {
		if s != nil {
			s.Close()
		}
	}
}

// DropAll drops the connection of every session that is not nil (see
// Session.Drop).
func DropAll(sessions []*Session) {
	for _, s := range sessions {
		if s != nil {
			s.Drop()
		}
	}
}

// Main is the xmppd-load program: it parses args, opens the sessions,
// prints "ready N" on stdout once all are bound, and holds them until ctx
// ends (the program's signals), -hold has passed or, with -stdin-eof, stdin
// reaches end of file; then it closes them (with -drop: drops their
// connections, see Session.Drop).
// It returns the exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("xmppd-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var p Plan
	fs.StringVar(&p.Addr, "addr", "127.0.0.1:5222", "server `host:port`")
	fs.StringVar(&p.Domain, "domain", "localhost", "XMPP domain (stream 'to' and TLS server name)")
	fs.BoolVar(&p.DirectTLS, "direct-tls", false, "start TLS at once (XEP-0368) instead of STARTTLS")
	fs.StringVar(&p.Mechanism, "mech", "", "SASL mechanism: SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN (default: the strongest offered)")
	fs.BoolVar(&p.Presence, "presence", true, "send initial presence after binding")
	fs.StringVar(&p.StreamManagement, "sm", "", "stream management (XEP-0198): \"\" (none), "+SMEnable+" or "+SMResume)
	drop := fs.Bool("drop", false, "at the end, drop the connections (TCP reset, no stream close) instead of closing the streams")
	fs.IntVar(&p.Sessions, "n", 100, "number of sessions")
	fs.StringVar(&p.User, "user", "load%d", "account name; %d is replaced by the session number")
	fs.StringVar(&p.Password, "password", "", "password of every account (or $XMPPD_LOAD_PASSWORD)")
	fs.StringVar(&p.Resource, "resource", "r%d", "resource; %d is replaced by the session number")
	fs.IntVar(&p.Parallel, "parallel", 16, "negotiations at once")
	ca := fs.String("ca", "", "PEM `file` of the certificate(s) to trust; default: the system roots")
	insecure := fs.Bool("insecure", false, "do not verify the server certificate (loopback tests only)")
	hold := fs.Duration("hold", 10*time.Minute, "close the sessions after this long at most")
	untilEOF := fs.Bool("stdin-eof", false, "also close the sessions when standard input reaches end of file")
	scenario := fs.String("scenario", "idle", "idle (hold the sessions), chat (pairs of sessions send each other messages, in steps of rising rate), muc (all sessions enter one room, -senders of them send groupchat messages, in steps of rising rate) or login (full logins arriving at rising rates, each closed once its roster arrived; -n accounts)")
	rates := fs.String("rates", "1000,2000,5000,10000,20000,50000", "chat, muc, login: total message or login rates of the steps, per second, comma-separated (muc's default: 5,20,50)")
	step := fs.Duration("step", 5*time.Second, "chat, muc, login: how long each rate is held")
	drain := fs.Duration("drain", 2*time.Second, "chat, muc: how long to wait after a step for messages in flight")
	stopP99 := fs.Duration("stop-p99", 100*time.Millisecond, "chat, muc, login: stop after a step with this p99 latency or any loss or failure (0: run every step); login's default is 1s")
	settle := fs.Duration("settle", 2*time.Second, "chat, muc: wait this long after the sessions are ready (muc: have entered the room), so that the server has handled their logins and presence before the first step")
	pid := fs.Int("server-pid", 0, "chat, muc, login: the server's process ID, to report its CPU time per message, copy or login (Linux /proc)")
	room := fs.String("room", "", "muc: the bare JID of the room; if entering it creates it, the first session makes it an instant room (default: load@conference.DOMAIN)")
	senders := fs.Int("senders", 10, "muc: how many of the occupants send (the first ones); 0: all")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	stopSet, ratesSet := false, false
	fs.Visit(func(f *flag.Flag) {
		stopSet = stopSet || f.Name == "stop-p99"
		ratesSet = ratesSet || f.Name == "rates"
	})
	if *scenario == "muc" && !ratesSet {
		*rates = "5,20,50"
	}
	chat := ChatPlan{Step: *step, Drain: *drain, StopP99: *stopP99, ServerPID: *pid}
	parseRates := func() bool {
		for _, r := range strings.Split(*rates, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(r))
			if err != nil || n <= 0 {
				fmt.Fprintf(stderr, "xmppd-load: -rates: %q is not a positive number\n", r)
				return false
			}
			chat.Rates = append(chat.Rates, n)
		}
		return true
	}
	switch *scenario {
	case "idle":
	case "login":
		if !parseRates() {
			return 2
		}
	case "chat":
		if !parseRates() {
			return 2
		}
		if p.Sessions%2 != 0 || p.StreamManagement != "" {
			fmt.Fprintln(stderr, "xmppd-load: -scenario chat needs an even -n (pairs of sessions) and no -sm")
			return 2
		}
	case "muc":
		if !parseRates() {
			return 2
		}
		if p.StreamManagement != "" || *senders < 0 {
			fmt.Fprintln(stderr, "xmppd-load: -scenario muc needs no -sm and -senders >= 0")
			return 2
		}
		if *room == "" {
			*room = "load@conference." + p.Domain
		}
	default:
		fmt.Fprintf(stderr, "xmppd-load: -scenario: unknown scenario %q (idle, chat, muc or login)\n", *scenario)
		return 2
	}
	if p.Password == "" {
		p.Password = os.Getenv("XMPPD_LOAD_PASSWORD")
	}
	if p.Password == "" || p.Sessions <= 0 {
		fmt.Fprintln(stderr, "xmppd-load: need -password (or XMPPD_LOAD_PASSWORD) and -n > 0")
		return 2
	}
	p.TLS = &tls.Config{InsecureSkipVerify: *insecure, MinVersion: tls.VersionTLS12}
	if *ca != "" {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			fmt.Fprintln(stderr, "xmppd-load:", err)
			return 1
		}
		p.TLS.RootCAs = x509.NewCertPool()
		if !p.TLS.RootCAs.AppendCertsFromPEM(pem) {
			fmt.Fprintf(stderr, "xmppd-load: no certificate in %s\n", *ca)
			return 1
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *hold)
	defer cancel()
	if *scenario == "login" {
		lp := LoginPlan{Plan: p, Rates: chat.Rates, Step: *step, StopP99: *stopP99, ServerPID: *pid}
		if !stopSet {
			lp.StopP99 = time.Second
		}
		if _, err := RunLogin(ctx, lp, func(r LoginResult) { fmt.Fprintln(stdout, r) }); err != nil {
			fmt.Fprintln(stderr, "xmppd-load:", err)
			return 1
		}
		return 0
	}
	start := time.Now()
	sessions, err := Open(ctx, p)
	if err != nil {
		fmt.Fprintln(stderr, "xmppd-load:", err)
		return 1
	}
	fmt.Fprintf(stdout, "ready %d %s\n", len(sessions), time.Since(start).Round(time.Millisecond))
	if f, ok := stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
	if *scenario == "chat" || *scenario == "muc" {
		show := func(r StepResult) { fmt.Fprintln(stdout, r) }
		if *scenario == "chat" {
			select {
			case <-time.After(*settle):
			case <-ctx.Done():
			}
			chat.Plan = p
			_, err = RunChat(ctx, chat, sessions, show)
		} else {
			mp := MUCPlan{Plan: p, Room: *room, Senders: *senders, Rates: chat.Rates, Step: *step, Drain: *drain,
				StopP99: *stopP99, ServerPID: *pid, Settle: *settle,
				Entered: func(took time.Duration) {
					fmt.Fprintf(stdout, "entered %d %s\n", len(sessions), took.Round(time.Millisecond))
				}}
			_, err = RunMUC(ctx, mp, sessions, show)
		}
		CloseAll(sessions)
		if err != nil {
			fmt.Fprintln(stderr, "xmppd-load:", err)
			return 1
		}
		fmt.Fprintf(stdout, "closed %d\n", len(sessions))
		return 0
	}
	eof := make(chan struct{})
	if *untilEOF {
		go func() {
			io.Copy(io.Discard, stdin)
			close(eof)
		}()
	}
	select {
	case <-eof:
	case <-ctx.Done():
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			fmt.Fprintln(stderr, "xmppd-load: interrupted")
		}
	}
	if *drop {
		DropAll(sessions)
		fmt.Fprintf(stdout, "dropped %d\n", len(sessions))
		return 0
	}
	CloseAll(sessions)
	fmt.Fprintf(stdout, "closed %d\n", len(sessions))
	return 0
}
