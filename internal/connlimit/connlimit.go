// Package connlimit bounds the connections per client address block that
// have not authenticated yet, so that one address cannot hold more than its
// share of a listener, and so that slow or stalled connections from an
// address cannot lock a legitimate client out of it: at the bound, the
// holder that has made the least progress is evicted to make room.
// IPv6 addresses are counted per /64, the block one subscriber usually
// gets, so changing addresses inside it gains nothing.
package connlimit

import (
	"net/netip"
	"sync"
)

// Block returns the block an address is counted in: the address itself for
// IPv4 (IPv4-mapped IPv6 included), its /64 for IPv6. An unparsable
// address maps to the zero Prefix, so all of them share one count.
func Block(ip string) netip.Prefix {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Prefix{}
	}
	addr = addr.Unmap()
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p
}

// Stage is how far a pending connection has got in its negotiation. Only
// the order matters: a later stage costs its holder more work to reach, so
// it is evicted later.
type Stage int

// The stages a listener reports through Ticket.Progress.
const (
	// Connected: TCP only, nothing received yet.
	Connected Stage = iota
	// Header: the peer's stream header has been received.
	Header
	// TLS: the TLS handshake has finished.
	TLS
	// Auth: authentication (SASL, or dialback for s2s) has begun.
	Auth
)

// PerIP holds the pending connections per address block, up to a maximum.
type PerIP struct {
	max int
	mu  sync.Mutex
	n   map[netip.Prefix]map[*Ticket]struct{}
	seq uint64 // acquisitions so far: a ticket's number tells its age
}

// Ticket is one connection held against its address block until Release.
// A nil Ticket holds nothing, so a connection that was never counted can
// report progress and release all the same.
type Ticket struct {
	p     *PerIP
	block netip.Prefix
	evict func(Stage)
	// Guarded by p.mu.
	stage Stage
	seq   uint64 // lower is older
	held  bool
}

// New returns a PerIP allowing max per block; max <= 0 allows any number.
func New(max int) *PerIP {
	return &PerIP{max: max, n: map[netip.Prefix]map[*Ticket]struct{}{}}
}

// Acquire holds one place in ip's block for a new connection. When the
// block is full, the holder with the least progress (the oldest among
// equals) is evicted first: its evict function is called with the stage it
// had reached, and its place goes to the newcomer. ok is false, and t nil,
// only when the block is full of holders that cannot be evicted.
//
// The victim is the lowest stage, not only a Connected one: refusing the
// newcomer whenever all holders are past Connected would let a peer that
// sends a header (or finishes TLS, which costs it little more) and then
// stalls lock the address out until the negotiation deadline. A
// legitimate client gets through its stages in a few round trips, so it
// is rarely the oldest of the lowest stage for long.
//
// evict runs with the PerIP locked: it must only start closing the
// connection (set a deadline, close the socket) and not call back into
// the PerIP. It may be nil for a connection that is not to be evicted.
func (p *PerIP) Acquire(ip string, evict func(Stage)) (t *Ticket, ok bool) {
	k := Block(ip)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.max > 0 && len(p.n[k]) >= p.max {
		var victim *Ticket
		for h := range p.n[k] {
			if h.evict != nil && (victim == nil || h.before(victim)) {
				victim = h
			}
		}
		if victim == nil {
			return nil, false
		}
		p.drop(victim)
		victim.evict(victim.stage)
	}
	holders := p.n[k]
	if holders == nil {
		holders = map[*Ticket]struct{}{}
		p.n[k] = holders
	}
	p.seq++
	t = &Ticket{p: p, block: k, evict: evict, seq: p.seq, held: true}
	holders[t] = struct{}{}
	return t, true
}

// before tells whether t is to be evicted before u: lower stage first,
// then the older one.
func (t *Ticket) before(u *Ticket) bool {
	if t.stage != u.stage {
		return t.stage < u.stage
	}
	return t.seq < u.seq
}

// drop removes t from its block. p.mu must be held.
func (p *PerIP) drop(t *Ticket) {
	if !t.held {
		return
	}
	t.held = false
	holders := p.n[t.block]
	delete(holders, t)
	if len(holders) == 0 {
		delete(p.n, t.block)
	}
}

// Progress records that t's connection has reached stage; a stage lower
// than one already reached is ignored, so the listener need not care in
// which order (STARTTLS or direct TLS) its stages come.
func (t *Ticket) Progress(stage Stage) {
	if t == nil {
		return
	}
	t.p.mu.Lock()
	if stage > t.stage {
		t.stage = stage
	}
	t.p.mu.Unlock()
}

// Release gives t's place back: at authentication, or when the connection
// ends. It may be called any number of times, also after an eviction;
// only the first counts.
func (t *Ticket) Release() {
	if t == nil {
		return
	}
	t.p.mu.Lock()
	t.p.drop(t)
	t.p.mu.Unlock()
}

// Held returns how many are held for ip's block.
func (p *PerIP) Held(ip string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.n[Block(ip)])
}
