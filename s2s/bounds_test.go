package s2s_test

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/s2s"
)

// TestUnreachableForgotten sends one message to each of many domains that
// cannot be reached: once their backoffs are over, the server keeps no
// outbound stream for any of them, so that ever new domains cannot grow
// its state without bound.
func TestUnreachableForgotten(t *testing.T) {
	s2s.SetMinBackoff(t, 50*time.Millisecond)
	a := testserver.StartFederation(t, func(c *config.Config) {
		// No route: every lookup goes to a DNS server that is not there.
		c.S2S.DNSServer = closedUDP(t)
	}, domainA)[0]
	alice := login(t, a, "alice")
	const n = 20
	for i := range n {
		alice.MustSend(t, fmt.Sprintf(`<message to="someone@x%d.invalid" type="chat" id="f%d"><body>hi</body></message>`, i, i))
	}
	for i := range n {
		if cond := bounced(t, alice, "message", fmt.Sprintf("f%d", i)); !slices.Contains(unreachable, cond) {
			t.Errorf("message to x%d.invalid bounced with %q, want one of %q", i, cond, unreachable)
		}
	}
	noStreams(t, a, "out ")
}

// tarpit listens on loopback and holds every connection open without a
// word, as a peer that wants to stall our connection phase would.
func tarpit(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, nc)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		for _, nc := range open {
			nc.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// TestQueueBytes sends messages to a domain whose server holds the
// connection open without answering: the queue takes them up to its byte
// limit, and those past it bounce at once with resource-constraint
// (RFC 6120 §8.3.3.18) rather than wait in memory.
func TestQueueBytes(t *testing.T) {
	const (
		limit = 4 << 10
		body  = 1 << 10
		n     = 20
	)
	s2s.SetMaxQueueBytes(t, limit)
	addr := tarpit(t)
	a := testserver.StartFederation(t, func(c *config.Config) {
		c.S2S.Routes["tarpit.test"] = addr
		c.S2S.PlaintextDomains = []string{"tarpit.test"}
		c.S2S.ConnectTimeout = 2 * time.Second
	}, domainA)[0]
	alice := login(t, a, "alice")
	text := strings.Repeat("x", body)
	start := time.Now()
	for i := range n {
		alice.MustSend(t, fmt.Sprintf(`<message to="bob@tarpit.test" type="chat" id="q%d"><body>%s</body></message>`, i, text))
	}
	// The stanzas go in order: those that fit are queued, every later
	// one bounces as soon as it is routed, long before the connection
	// attempt times out.
	queued := 0
	for i := range n {
		id := fmt.Sprintf("q%d", i)
		cond := bounced(t, alice, "message", id)
		switch {
		case cond == "resource-constraint":
			if queued == 0 {
				t.Errorf("%s bounced with resource-constraint, though nothing was queued before it", id)
			}
		case slices.Contains(unreachable, cond):
			// Queued, then bounced when the connection attempt failed.
			queued++
		default:
			t.Errorf("%s bounced with %q, want resource-constraint or one of %q", id, cond, unreachable)
		}
		if i == n-1 && time.Since(start) > 2*time.Second && queued == 0 {
			t.Errorf("the overflow took %s to bounce", time.Since(start))
		}
	}
	if queued == 0 || queued > limit/body {
		t.Errorf("%d of %d messages of over %d bytes queued, want 1 to %d under a limit of %d bytes", queued, n, body, limit/body, limit)
	}
}
