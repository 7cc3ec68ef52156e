// Command xmppd-load opens many authenticated, idle client sessions to an
// XMPP server and holds them, to measure what a session costs the server
// (see docs/PERFORMANCE.md). It uses SASL SCRAM or PLAIN over TLS and works against
// xmppd, Prosody and ejabberd alike.
//
//	xmppd-load -addr 127.0.0.1:5222 -domain localhost -n 2000 \
//	    -user 'load%d' -password secret -insecure
//
// It prints "ready N DURATION" once every session is bound and holds them
// until SIGINT or SIGTERM, or until -hold has passed.
//
// With -scenario chat the sessions talk in pairs (2i with 2i+1) at the total
// rates of -rates, each held for -step (open loop: every message leaves when
// it is due), and a line per step gives the messages sent and received,
// the latency from when each was due (p50, p99, max) and, with -server-pid,
// the server's CPU time per message; the ramp stops after a step with p99
// at or over -stop-p99 or any loss:
//
//	xmppd-load -scenario chat -n 100 -rates 1000,5000,20000 -step 10s \
//	    -user 'load%d' -resource r -password secret -insecure -server-pid $(pidof xmppd)
//
// With -scenario muc every session enters one room (-room, by default
// load@conference.DOMAIN; if entering creates it, the first session makes
// it an instant room) under the nick n<i>, reading all the time; then the
// first -senders sessions send groupchat messages at the total rates of
// -rates (default 5,20,50), each held for -step, and a line per step gives
// the messages sent, the copies expected (one per occupant, the sender's
// included) and received, the latency of each copy from when its message
// was due (p50, p99, max) and, with -server-pid, the server's CPU time per
// delivered copy, beside the generator's own:
//
//	xmppd-load -scenario muc -n 1000 -senders 10 -rates 5,50 -step 20s \
//	    -user 'load%d' -resource r -password secret -insecure -server-pid $(pidof xmppd)
//
// With -scenario login, full logins (TCP, STARTTLS, SASL, bind, roster,
// presence, then close) arrive at the rates of -rates, each held for
// -step, over the -n accounts; a line per step gives the logins started
// and completed, their latency from when each was due and, with
// -server-pid, the server's CPU time per login; the ramp stops after a
// step with p99 at or over -stop-p99 (default 1s there) or a failure. The
// SCRAM salted password is derived once per account, so the generator
// pays PBKDF2 once and the server's work is what is measured:
//
//	xmppd-load -scenario login -n 100 -rates 100,200,400 -step 5s \
//	    -user 'load%d' -password secret -insecure -server-pid $(pidof xmppd)
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/xmppd/xmppd/internal/loadtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := loadtest.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
