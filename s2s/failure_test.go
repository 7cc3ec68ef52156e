package s2s_test

import (
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/testserver"
	"github.com/xmppd/xmppd/router"
)

// minBackoff is s2s.minBackoff: how long a domain that could not be
// reached bounces stanzas without a new attempt.
const minBackoff = time.Second

// unreachable is what a stanza to a remote domain that cannot be reached
// may bounce with (RFC 6120 §8.3.3.16, §8.3.3.17).
var unreachable = []string{"remote-server-not-found", "remote-server-timeout"}

// closedTCP returns a loopback address nothing listens on.
func closedTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// hangUp listens on loopback and closes every connection at once,
// counting them.
func hangUp(t *testing.T) (addr string, accepted *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int32)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			nc.Close()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String(), accepted
}

// TestUnreachable sends to remote domains that cannot be reached: each
// stanza bounces to its sender with remote-server-not-found or
// remote-server-timeout, messages and IQs alike, and so do the stanzas
// sent while the domain is in backoff, which cost no new attempt.
func TestUnreachable(t *testing.T) {
	hangUpAddr, accepted := hangUp(t)
	a := testserver.StartFederation(t, func(c *config.Config) {
		c.S2S.Routes["closed.test"] = closedTCP(t)
		c.S2S.Routes["hangup.test"] = hangUpAddr
		// nowhere.test has no route: its SRV lookup goes to a DNS server
		// that is not there.
		c.S2S.DNSServer = closedUDP(t)
	}, domainA)[0]
	alice := login(t, a, "alice")
	tests := []struct {
		name   string
		domain string
	}{
		{name: "route to a closed port", domain: "closed.test"},
		{name: "DNS lookup fails", domain: "nowhere.test"},
		{name: "peer hangs up", domain: "hangup.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			alice.MustSend(t, `<message to="someone@`+tt.domain+`" type="chat" id="u1"><body>1</body></message>`)
			if cond := bounced(t, alice, "message", "u1"); !slices.Contains(unreachable, cond) {
				t.Errorf("first message bounced with %q, want one of %q", cond, unreachable)
			}
			before := accepted.Load()
			// During the backoff that follows, stanzas bounce too.
			alice.MustSend(t, `<message to="someone@`+tt.domain+`" type="chat" id="u2"><body>2</body></message>`)
			if cond := bounced(t, alice, "message", "u2"); !slices.Contains(unreachable, cond) {
				t.Errorf("second message bounced with %q, want one of %q", cond, unreachable)
			}
			e := alice.MustRequest(t, `<iq type="get" id="u3" to="`+tt.domain+`"><query xmlns="jabber:iq:version"/></iq>`)
			if cond, _ := testserver.ErrorCondition(e); e.Get("type") != "error" || !slices.Contains(unreachable, cond) {
				t.Errorf("IQ answered with %s, want an error of %q", e, unreachable)
			}
			if e.Get("from") != tt.domain {
				t.Errorf("IQ error from %q, want %q", e.Get("from"), tt.domain)
			}
			if tt.domain == "hangup.test" {
				// Only when all this happened within the shortest backoff
				// can we know that no new attempt was allowed.
				if elapsed := time.Since(start); elapsed < minBackoff {
					if got := accepted.Load(); got != before {
						t.Errorf("%d connection(s) during the backoff, want none", got-before)
					}
				} else {
					t.Logf("took %s, longer than the backoff: not checking attempts", elapsed)
				}
			}
		})
	}
}

// outcomes collects what became of messages sent to a remote domain:
// delivered to a fake server, or bounced to the sender.
type outcomes struct {
	sender    *testserver.Client
	f         *fakeServer
	delivered map[string]int // id → times received
	bounced   map[string]string
}

func newOutcomes(sender *testserver.Client, f *fakeServer) *outcomes {
	return &outcomes{sender: sender, f: f, delivered: map[string]int{}, bounced: map[string]string{}}
}

// has tells whether id has an outcome.
func (o *outcomes) has(id string) bool { return o.delivered[id] > 0 || o.bounced[id] != "" }

// await collects outcomes until want says so, or the wait is over.
func (o *outcomes) await(want func() bool) {
	deadline := time.Now().Add(wait)
	for !want() && time.Now().Before(deadline) {
		select {
		case e := <-o.f.stanzas:
			o.delivered[e.Get("id")]++
			continue
		case <-time.After(10 * time.Millisecond):
		}
		for _, e := range o.sender.Pending() {
			if e.Name.Local == "message" && e.Get("type") == "error" {
				cond, _ := testserver.ErrorCondition(e)
				o.bounced[e.Get("id")] = cond
				o.sender.Next(func(x *router.Element) bool { return x == e })
			}
		}
	}
}

// TestPeerFailure sends a burst of messages to fake remote servers that
// fail in the ways a real one can; every message must be delivered, on
// the first stream or a new one, or bounced with an error: none may be
// dropped in silence.
func TestPeerFailure(t *testing.T) {
	const n = 20
	tests := []struct {
		name string
		// result and closeAfter set the fake's behaviour.
		result     string
		closeAfter int
		// wantBounce, if set, is the condition every message must
		// bounce with; else each is delivered or bounces as unreachable.
		wantBounce string
	}{
		{name: "closes after the first stanza", closeAfter: 1},
		{name: "closes during dialback", result: "drop", wantBounce: "remote-server-not-found"},
		// XEP-0220 §2.1.1: a refused key bounces with
		// internal-server-error, a dialback error with
		// remote-server-timeout.
		{name: "refuses our dialback key", result: "invalid", wantBounce: "internal-server-error"},
		{name: "answers with a dialback error", result: "error", wantBounce: "remote-server-timeout"},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			fakes := make([]*fakeServer, len(tests))
			for i, tt := range tests {
				f := &fakeServer{domain: fmt.Sprintf("remote%d.test", i), result: tt.result, closeAfter: tt.closeAfter}
				if tr.tls {
					f.tlsConfig = selfSignedTLS(t, f.domain)
				}
				fakes[i] = startFake(t, f)
			}
			a := testserver.StartFederation(t, func(c *config.Config) {
				for _, f := range fakes {
					c.S2S.Routes[f.domain] = f.addr()
					if !tr.tls {
						c.S2S.PlaintextDomains = append(c.S2S.PlaintextDomains, f.domain)
					}
				}
			}, domainA)[0]
			alice := login(t, a, "alice")
			for i, tt := range tests {
				f := fakes[i]
				t.Run(tt.name, func(t *testing.T) {
					// Bursts of messages, each sent once the previous one
					// has an outcome, so that some meet a stream that is
					// closing, and some a new one.
					o := newOutcomes(alice, f)
					var ids []string
					for k := range n {
						id := fmt.Sprintf("%s-%d", f.domain, k)
						ids = append(ids, id)
						alice.MustSend(t, `<message to="bob@`+f.domain+`" type="chat" id="`+id+`"><body>`+id+`</body></message>`)
						if k%5 == 0 {
							o.await(func() bool { return o.has(id) })
						}
					}
					o.await(func() bool { return !slices.ContainsFunc(ids, func(id string) bool { return !o.has(id) }) })
					delivered, bouncedN := 0, 0
					for _, id := range ids {
						d, b := o.delivered[id], o.bounced[id]
						switch {
						case d == 0 && b == "":
							t.Errorf("%s: neither delivered nor bounced", id)
						case d > 0 && b != "":
							t.Errorf("%s: delivered and bounced (%s)", id, b)
						case d > 1:
							t.Errorf("%s: delivered %d times", id, d)
						case b != "" && tt.wantBounce != "" && b != tt.wantBounce:
							t.Errorf("%s: bounced with %s, want %s", id, b, tt.wantBounce)
						case b != "" && tt.wantBounce == "" && !slices.Contains(unreachable, b):
							t.Errorf("%s: bounced with %s, want one of %q", id, b, unreachable)
						case d > 0 && tt.wantBounce != "":
							t.Errorf("%s: delivered, want it bounced", id)
						}
						if d > 0 {
							delivered++
						}
						if b != "" {
							bouncedN++
						}
					}
					t.Logf("%d sent: %d delivered, %d bounced, over %d connection(s)", n, delivered, bouncedN, f.conns.Load())
					if delivered+bouncedN != n {
						t.Errorf("delivered %d + bounced %d != sent %d", delivered, bouncedN, n)
					}
				})
			}
		})
	}
}

// TestPeerRestart shuts the peer down and starts it again on the same
// address: what is sent meanwhile bounces, and once it is back a message
// goes through on a new stream, in both directions.
func TestPeerRestart(t *testing.T) {
	fed := testserver.NewFederation(t, nil, domainA, domainB)
	a, b := fed.Start(domainA), fed.Start(domainB)
	alice, bob := login(t, a, "alice"), login(t, b, "bob")
	alice.MustSend(t, `<message to="bob@b.test" type="chat" id="r1"><body>1</body></message>`)
	bob.MustNext(t, "the first message", isMessage("r1", "chat"))
	streams(t, a, "out a.test→b.test ready")

	if err := b.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	noStreams(t, a, "out a.test→b.test ready")
	alice.MustSend(t, `<message to="bob@b.test" type="chat" id="r2"><body>2</body></message>`)
	if cond := bounced(t, alice, "message", "r2"); !slices.Contains(unreachable, cond) {
		t.Errorf("message to the stopped peer bounced with %q, want one of %q", cond, unreachable)
	}

	b = fed.Start(domainB)
	bob = login(t, b, "bob")
	// The first tries may fall in the backoff that the stopped peer
	// caused, and bounce; one must get through, and none be lost.
	deadline := time.Now().Add(wait)
	for k := 0; ; k++ {
		id := fmt.Sprintf("r3-%d", k)
		alice.MustSend(t, `<message to="bob@b.test" type="chat" id="`+id+`"><body>again</body></message>`)
		if delivered := await(t, alice, bob, id); delivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no message reached the restarted peer")
		}
		time.Sleep(100 * time.Millisecond)
	}
	bob.MustSend(t, `<message to="alice@a.test" type="chat" id="r4"><body>back</body></message>`)
	alice.MustNext(t, "the restarted peer's message", isMessage("r4", "chat"))
}

// await waits for the outcome of the message id: delivered to to, or
// bounced to from as unreachable.
func await(t *testing.T, from, to *testserver.Client, id string) (delivered bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		for _, e := range to.Pending() {
			if isMessage(id, "chat")(e) {
				return true
			}
		}
		for _, e := range from.Pending() {
			if isMessage(id, "error")(e) {
				if cond, _ := testserver.ErrorCondition(e); !slices.Contains(unreachable, cond) {
					t.Fatalf("%s bounced with %q, want one of %q", id, cond, unreachable)
				}
				return false
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: neither delivered nor bounced", id)
	return false
}
