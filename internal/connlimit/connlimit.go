// Package connlimit counts connections per client address block, so that a
// listener can refuse one address that opens connections faster than it
// authenticates them. IPv6 addresses are counted per /64, the block one
// subscriber usually gets, so changing addresses inside it gains nothing.
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

// PerIP counts what is held per address block, up to a maximum.
type PerIP struct {
	max int
	mu  sync.Mutex
	n   map[netip.Prefix]int
}

// New returns a PerIP allowing max per block; max <= 0 allows any number.
func New(max int) *PerIP {
	return &PerIP{max: max, n: map[netip.Prefix]int{}}
}

// Acquire counts one for ip's block unless the block is at the maximum.
// The release function may be called any number of times; only the first
// counts.
func (p *PerIP) Acquire(ip string) (release func(), ok bool) {
	k := Block(ip)
	p.mu.Lock()
	if p.max > 0 && p.n[k] >= p.max {
		p.mu.Unlock()
		return func() {}, false
	}
	p.n[k]++
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			if p.n[k] <= 1 {
				delete(p.n, k)
			} else {
				p.n[k]--
			}
			p.mu.Unlock()
		})
	}, true
}

// Held returns how many are held for ip's block.
func (p *PerIP) Held(ip string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[Block(ip)]
}
