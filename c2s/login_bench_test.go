package c2s_test

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/xmppd/xmppd/internal/testserver"
)

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLogin measures one login, from TCP connect to a bound (or
// resumed) session, for SASL with SCRAM and resource binding, SASL2 with
// SCRAM or a FAST token (HT-SHA-256-NONE, and -ENDP and -EXPR with channel
// binding) and Bind 2, and resumption: XEP-0198 <resume/> after SASL, and
// SASL2 inline <resume/>. Server and client run in this
// process; the client keeps its SCRAM salted password, as real ones do,
// so what differs between the cases is the server's work (and TLS, the
// same in all). cpu-ns/op is the process's CPU time per login. Run:
//
//	go test ./c2s -run '^$' -bench BenchmarkLogin
func BenchmarkLogin(b *testing.B) {
	s := testserver.Start(b, nil)
	s.AddUser("alice", "pw")
	bind := `<bind xmlns="urn:xmpp:bind:0"><tag>Bench</tag><enable xmlns="urn:xmpp:sm:3" resume="true"/></bind>`
	// fastTokens are the FAST tokens by mechanism, each of its own
	// installation (agentFor), replaced when the server rotates one.
	fastTokens := map[string]string{}
	agentOf := func(mech string) string {
		if a, ok := agentFor[mech]; ok {
			return a
		}
		return agentA
	}

	// login runs one login on a new connection and returns the client, the
	// resumption id and h of its session, if stream management is on.
	type login func(b *testing.B, previd string, h uint32) (c *smClient, id string)
	sasl2 := func(mech, secret, inline string) login {
		return func(b *testing.B, previd string, h uint32) (*smClient, string) {
			c, err := s.DialRawStartTLS(nil)
			if err != nil {
				b.Fatal(err)
			}
			if previd != "" {
				inline = `<resume xmlns="urn:xmpp:sm:3" previd="` + previd + `" h="` + strconv.Itoa(int(h)) + `"/>` + bind
			}
			pw := secret
			if pw == "" {
				pw = fastTokens[mech]
			}
			res, err := c.AuthSASL2("alice", testserver.SASL2{Mechanism: mech, Secret: pw, AgentID: agentOf(mech), Inline: inline})
			if err != nil || res.Condition != "" {
				b.Fatalf("sasl2 %s: %v %v", mech, res, err)
			}
			if t := res.Success.Child(nsFAST, "token"); t != nil {
				fastTokens[mech] = t.Get("token")
			}
			id := previd
			if bound := res.Success.Child(nsBind2, "bound"); bound != nil && bound.Child(nsSM, "enabled") != nil {
				id = bound.Child(nsSM, "enabled").Get("id")
			}
			return &smClient{Raw: c}, id
		}
	}
	sasl1 := func(b *testing.B, previd string, h uint32) (*smClient, string) {
		c, err := s.DialRawStartTLS(nil)
		if err != nil {
			b.Fatal(err)
		}
		if cond, err := c.AuthSCRAM("alice", "pw", testserver.SCRAM{Mechanism: "SCRAM-SHA-256"}); err != nil || cond != "" {
			b.Fatalf("scram: %q %v", cond, err)
		}
		sc := &smClient{Raw: c}
		if previd != "" {
			sc.send(b, `<resume xmlns="urn:xmpp:sm:3" previd="`+previd+`" h="`+strconv.Itoa(int(h))+`"/>`)
			if e := sc.next(b); e.Name.Local != "resumed" {
				b.Fatalf("resume: %s", e)
			}
			return sc, previd
		}
		if _, err := c.Bind(""); err != nil {
			b.Fatal(err)
		}
		sc.send(b, enableResume)
		return sc, sc.until(b, "<enabled/>", isSM("enabled")).Get("id")
	}
	// Get the tokens for the FAST cases.
	for _, mech := range []string{htNone, htEndp, htExpr} {
		fastTokens[mech] = passwordTokenFor(b, s, "alice", agentFor[mech], mech)
	}

	for _, bc := range []struct {
		name   string
		login  login
		resume bool
	}{
		{"sasl-scram-bind", sasl1, false},
		{"sasl2-scram-bind2", sasl2("SCRAM-SHA-256", "pw", bind), false},
		{"sasl2-fast-bind2", sasl2(htNone, "", bind), false},
		{"sasl2-fast-endp-bind2", sasl2(htEndp, "", bind), false},
		{"sasl2-fast-expr-bind2", sasl2(htExpr, "", bind), false},
		{"sasl-scram-resume", sasl1, true},
		{"sasl2-scram-inline-resume", sasl2("SCRAM-SHA-256", "pw", bind), true},
		{"sasl2-fast-inline-resume", sasl2(htNone, "", bind), true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var previd string
			var h uint32
			if bc.resume {
				// A session to resume, and resumed again on every login.
				c, id := bc.login(b, "", 0)
				previd, h = id, c.h
				c.cut()
				waitFor(b, "the session to hibernate", func() bool { return s.C2S.Hibernating() == 1 })
			}
			b.ResetTimer()
			var cpu time.Duration
			for range b.N {
				start := cpuTime(b)
				c, id := bc.login(b, previd, h)
				cpu += cpuTime(b) - start
				b.StopTimer()
				if bc.resume {
					previd, h = id, c.h
					c.cut()
					waitFor(b, "the session to hibernate", func() bool { return s.C2S.Hibernating() == 1 })
				} else {
					c.send(b, `</stream:stream>`)
					c.Conn.Close()
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
			if bc.resume {
				// Leave no session hibernating for the next case.
				b.StopTimer()
				c, _ := bc.login(b, previd, h)
				c.send(b, `</stream:stream>`)
				c.Conn.Close()
				waitFor(b, "no session to hibernate", func() bool { return s.C2S.Hibernating() == 0 })
			}
		})
	}
}
