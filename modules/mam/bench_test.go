package mam_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/internal/routertest"
	"github.com/xmppd/xmppd/internal/storetest"
	"github.com/xmppd/xmppd/router"
)

// BenchmarkArchiveChat routes a chat message between two online local
// accounts through the archiving filter, on a real database: every message
// is archived at both ends before it is delivered. "serial" is one sender,
// who waits for each commit; "parallel" has GOMAXPROCS×8 senders, whose
// writes the group-commit writer gathers into shared transactions.
func BenchmarkArchiveChat(b *testing.B) {
	for _, be := range storetest.Backends(b) {
		b.Run(be.Name, func(b *testing.B) {
			store := storetest.Open(b, be)
			cfg := config.Default()
			users := make([]string, 0, 64)
			for i := range 32 {
				users = append(users, fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i))
			}
			r := routertest.StartModules(b, store, cfg, []string{"mam"}, users...)
			for _, u := range users {
				if _, err := r.Sessions().Bind(routertest.NewSink(jid.MustParse(u+"@localhost/r")), 10); err != nil {
					b.Fatal(err)
				}
			}
			ctx := context.Background()
			b.Run("serial", func(b *testing.B) {
				rd := routertest.LoopClientReader(b, routertest.ChatMessage("b0@localhost/r"))
				from := jid.MustParse("a0@localhost/r")
				b.ReportAllocs()
				cpu := cpuTime(b)
				for b.Loop() {
					routertest.RouteNext(b, ctx, r, rd, from)
				}
				report(b, cpuTime(b)-cpu)
			})
			b.Run("parallel", func(b *testing.B) {
				b.SetParallelism(8)
				next := make(chan int, 64)
				for i := range 32 {
					next <- i
				}
				b.ReportAllocs()
				cpu := cpuTime(b)
				b.RunParallel(func(pb *testing.PB) {
					i := <-next
					next <- i // pairs are shared when there are more senders than pairs
					rd := router.NewReader(routertest.LoopReader(routertest.StreamHeader, routertest.ChatMessage(fmt.Sprintf("b%d@localhost/r", i))), router.NSClient, 262144, 64)
					if _, err := rd.Header(); err != nil {
						b.Error(err)
						return
					}
					from := jid.MustParse(fmt.Sprintf("a%d@localhost/r", i))
					for pb.Next() {
						routertest.RouteNext(b, ctx, r, rd, from)
					}
				})
				report(b, cpuTime(b)-cpu)
			})
		})
	}
}

// cpuTime is the CPU time the process has used so far, user and system:
// what the server spends on a message, the database's work in the process
// (SQLite) included, PostgreSQL's not.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report adds messages per second and CPU per message to the results.
func report(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
}
