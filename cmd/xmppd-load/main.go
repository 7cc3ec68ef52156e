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
