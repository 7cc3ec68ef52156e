package c2s

import (
	"sync"
	"sync/atomic"

	"github.com/xmppd/xmppd/router"
)

// Transports of Stats.Sessions.
const (
	TransportTCP       = "tcp" // STARTTLS or direct TLS
	TransportWebSocket = "websocket"
	TransportBOSH      = "bosh" // XEP-0124/0206
)

// stats are the server's counters. They are plain atomics, bumped where
// the event happens and read when metrics are scraped, so that the hot
// path pays an atomic add and no lookup.
type stats struct {
	sessions   sync.Map // transport → *atomic.Int64: sessions served on a connection of that transport
	logins     sync.Map // loginKey → *atomic.Uint64
	in, out    kindCounts
	queueDrops atomic.Uint64
}

// loginKey names a login counter.
type loginKey struct{ mechanism, result string }

// kindCounts counts stanzas by kind.
type kindCounts struct{ message, presence, iq atomic.Uint64 }

func (k *kindCounts) add(kind string) {
	switch kind {
	case router.KindMessage:
		k.message.Add(1)
	case router.KindPresence:
		k.presence.Add(1)
	case router.KindIQ:
		k.iq.Add(1)
	}
}

func (k *kindCounts) snapshot() map[string]uint64 {
	return map[string]uint64{
		router.KindMessage:  k.message.Load(),
		router.KindPresence: k.presence.Load(),
		router.KindIQ:       k.iq.Load(),
	}
}

// serving counts a session served on a connection of transport, by delta
// (+1 when it starts, -1 when it stops).
func (s *stats) serving(transport string, delta int64) {
	v, _ := s.sessions.LoadOrStore(transport, new(atomic.Int64))
	v.(*atomic.Int64).Add(delta)
}

// login counts a login attempt's outcome ("success" or "failure").
func (s *stats) login(mechanism, result string) {
	v, _ := s.logins.LoadOrStore(loginKey{mechanism, result}, new(atomic.Uint64))
	v.(*atomic.Uint64).Add(1)
}

// Stats is a snapshot of the c2s counters, for the metrics endpoint.
type Stats struct {
	// Sessions are the bound sessions served on a connection, by
	// transport (TransportTCP, TransportWebSocket, …); Hibernating those
	// stream management keeps without one.
	Sessions    map[string]int64
	Hibernating int
	// Logins counts SASL outcomes by mechanism and result ("success",
	// "failure"); a failure is a SASL <failure/> sent to the client.
	Logins []LoginCount
	// StanzasIn counts the stanzas clients sent after binding (errors
	// answered included); StanzasOut those written to clients; both by
	// kind (message, presence, iq).
	StanzasIn, StanzasOut map[string]uint64
	// QueueDrops counts sessions closed because their outbound queue
	// overflowed (a slow or dead client).
	QueueDrops uint64
}

// LoginCount is one counter of Stats.Logins.
type LoginCount struct {
	Mechanism, Result string
	N                 uint64
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Sessions:    map[string]int64{},
		Hibernating: s.Hibernating(),
		StanzasIn:   s.stats.in.snapshot(),
		StanzasOut:  s.stats.out.snapshot(),
		QueueDrops:  s.stats.queueDrops.Load(),
	}
	for _, t := range []string{TransportTCP, TransportWebSocket, TransportBOSH} {
		st.Sessions[t] = 0
	}
	s.stats.sessions.Range(func(k, v any) bool {
		st.Sessions[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	s.stats.logins.Range(func(k, v any) bool {
		key := k.(loginKey)
		st.Logins = append(st.Logins, LoginCount{key.mechanism, key.result, v.(*atomic.Uint64).Load()})
		return true
	})
	return st
}
