package loadtest_test

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/loadtest"
)

// BenchmarkC2SChat sends one chat message at a time from u0 to u1 through
// a real server over loopback TLS and waits until u1 has read it: the
// whole c2s path (read, parse, route, queue, write, TLS) that router's
// BenchmarkRouteChat leaves out. Sub-benchmarks: "plain" without stream
// management, "sm" with both sessions under XEP-0198 (the server counts
// what it reads and sends, keeps each sent stanza until acknowledged, asks
// for an ack every limits.sm_ack_after stanzas, and u1 answers each <r/>).
// Client and server run in this process, so time and allocations include
// the client's TLS and XML work; compare the two sub-benchmarks, not the
// absolute figures with router's.
func BenchmarkC2SChat(b *testing.B) {
	for _, mode := range []struct{ name, sm string }{{"plain", ""}, {"sm", loadtest.SMEnable}} {
		b.Run(mode.name, func(b *testing.B) { benchC2SChat(b, mode.sm) })
	}
}

func benchC2SChat(b *testing.B, sm string) {
	srv := startMemServer(b, 10)
	addUsers(b, srv, 2)
	o := loadtest.Options{Addr: srv.Addr(config.ListenerC2SStartTLS).String(), Domain: "localhost",
		TLS: &tls.Config{InsecureSkipVerify: true}, StreamManagement: sm, Timeout: 10 * time.Second}
	ctx := context.Background()
	from, err := loadtest.Dial(ctx, o, loadtest.Account{Local: "u0", Password: memPassword, Resource: "laptop"})
	if err != nil {
		b.Fatal(err)
	}
	defer from.Close()
	to, err := loadtest.Dial(ctx, o, loadtest.Account{Local: "u1", Password: memPassword, Resource: "phone"})
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- receive(to.Conn(), got) }()
	defer func() {
		to.Close()
		if err := <-done; err != nil {
			b.Errorf("receiver: %v", err)
		}
	}()
	msg := []byte(`<message to='` + to.JID + `' type='chat'><body>hello, how are you?</body></message>`)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := from.Conn().Write(msg); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
		case err := <-done:
			b.Fatalf("receiver ended: %v", err)
		}
	}
}

// receive reads the stanzas that come to conn, signals got for each
// message and answers each stream management <r/> with an <a/>, until the
// connection ends.
func receive(conn io.ReadWriter, got chan<- struct{}) error {
	dec := xml.NewDecoder(conn)
	handled := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the connection closed (or the stream's end, unmatched here)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if err := dec.Skip(); err != nil {
			return nil
		}
		switch {
		case start.Name.Space == "urn:xmpp:sm:3" && start.Name.Local == "r":
			if _, err := fmt.Fprintf(conn, `<a xmlns='urn:xmpp:sm:3' h='%d'/>`, handled); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
		case start.Name.Space == "urn:xmpp:sm:3":
		case start.Name.Local == "message":
			handled++
			got <- struct{}{}
		case start.Name.Local == "error":
			return fmt.Errorf("stream error")
		default:
			handled++
		}
	}
}

// BenchmarkC2SLogin is one full login at a time through a real server over
// loopback: TCP, STARTTLS (TLS 1.3), SCRAM-SHA-1 with the server's
// iteration count, bind, the roster and the initial presence, then the
// stream's close; what a reconnecting phone costs. The generator's SCRAM
// keys are cached per account, so the client pays PBKDF2 once; the client's
// TLS and XML work are still in the figures (they run in this process), so
// cpu-µs/login is the process's CPU
// per login, client included: profile (-cpuprofile) for the server's share
// (c2s, router, storage, modules), or compare before and after a change.
func BenchmarkC2SLogin(b *testing.B) {
	srv := startMemServer(b, 10)
	addUsers(b, srv, 1)
	o := loadtest.Options{Addr: srv.Addr(config.ListenerC2SStartTLS).String(), Domain: "localhost",
		TLS: &tls.Config{InsecureSkipVerify: true}, Mechanism: "SCRAM-SHA-1", Roster: true, Presence: true,
		Timeout: 10 * time.Second}
	ctx := context.Background()
	b.ReportAllocs()
	start := processCPU(b)
	for b.Loop() {
		s, err := loadtest.Dial(ctx, o, loadtest.Account{Local: "u0", Password: memPassword, Resource: "phone"})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU(b)-start).Microseconds())/float64(b.N), "cpu-µs/login")
}

// processCPU is the CPU time, user and system, this process has used so
// far: client and server together, in this benchmark.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
