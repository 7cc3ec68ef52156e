package s2s

import (
	"sync/atomic"

	"github.com/xmppd/xmppd/router"
)

// stats are the federation counters, bumped where the event happens and
// read when metrics are scraped.
type stats struct {
	in, out    [3]atomic.Uint64 // stanzas by kindIndex
	queueDrops atomic.Uint64
}

// kindIndex is a stanza kind's place in the counters, or -1.
func kindIndex(kind string) int {
	switch kind {
	case router.KindMessage:
		return 0
	case router.KindPresence:
		return 1
	case router.KindIQ:
		return 2
	}
	return -1
}

func count(c *[3]atomic.Uint64, kind string) {
	if i := kindIndex(kind); i >= 0 {
		c[i].Add(1)
	}
}

func snapshot(c *[3]atomic.Uint64) map[string]uint64 {
	return map[string]uint64{router.KindMessage: c[0].Load(), router.KindPresence: c[1].Load(), router.KindIQ: c[2].Load()}
}

// Stats is a snapshot of the federation counters, for the metrics
// endpoint.
type Stats struct {
	// Streams counts the authenticated streams by direction ("in",
	// "out") and authentication ("SASL EXTERNAL", "dialback"): an
	// inbound stream counts once per domain pair it authenticated.
	Streams map[StreamKey]int
	// StanzasIn counts the stanzas peers sent that passed the address
	// checks; StanzasOut those written to peers; both by kind.
	StanzasIn, StanzasOut map[string]uint64
	// QueueDrops counts stanzas bounced because an outbound stream's
	// queue was full.
	QueueDrops uint64
}

// StreamKey is a key of Stats.Streams.
type StreamKey struct{ Direction, Auth string }

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Streams: map[StreamKey]int{
			{"in", authExternal}: 0, {"in", authDialback}: 0,
			{"out", authExternal}: 0, {"out", authDialback}: 0,
		},
		StanzasIn:  snapshot(&s.stats.in),
		StanzasOut: snapshot(&s.stats.out),
		QueueDrops: s.stats.queueDrops.Load(),
	}
	s.mu.Lock()
	outs := make([]*outStream, 0, len(s.out))
	for _, o := range s.out {
		outs = append(outs, o)
	}
	ins := make([]*inStream, 0, len(s.in))
	for in := range s.in {
		ins = append(ins, in)
	}
	s.mu.Unlock()
	for _, o := range outs {
		o.mu.Lock()
		if o.ready {
			st.Streams[StreamKey{"out", o.method}]++
		}
		o.mu.Unlock()
	}
	for _, in := range ins {
		in.mu.Lock()
		if in.externalDomain != "" {
			st.Streams[StreamKey{"in", authExternal}]++
		}
		st.Streams[StreamKey{"in", authDialback}] += len(in.authed)
		in.mu.Unlock()
	}
	return st
}
