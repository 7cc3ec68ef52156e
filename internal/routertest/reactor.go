package routertest

import (
	"context"
	"sync"

	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
)

// Reactor is a test module whose filter, on a stanza the test picks,
// routes another stanza from inside the routing of the first: what a
// module that reacts to what another sends (presence sent again, a
// blocklist changed again) does. The tests of "no lock held across Route"
// (issue 8) use it to come back into a module for the same account.
type Reactor struct {
	id    string
	h     *modules.Host
	mu    sync.Mutex
	react func(*router.Stanza) *router.Stanza
	// Reentered gets a value each time the filter has routed what the
	// test's function returned.
	Reentered chan struct{}
}

// Reactors registers the Reactor module under id and returns the function
// that gives the instance the last server started; call it from init.
func Reactors(id string) (started func() *Reactor) {
	var mu sync.Mutex
	var last *Reactor
	modules.Register(id, func() *Reactor {
		m := &Reactor{id: id, Reentered: make(chan struct{}, 1)}
		mu.Lock()
		last = m
		mu.Unlock()
		return m
	})
	return func() *Reactor {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// Start implements modules.Starter.
func (m *Reactor) Start(_ context.Context, h *modules.Host) error {
	m.h = h
	h.AddFilter(router.PriorityDefault, m.filter)
	return nil
}

// On arms the filter: react is called on each stanza until it returns one
// to route, once.
func (m *Reactor) On(react func(*router.Stanza) *router.Stanza) {
	m.mu.Lock()
	m.react = react
	m.mu.Unlock()
}

func (m *Reactor) filter(ctx context.Context, st *router.Stanza) *router.Stanza {
	m.mu.Lock()
	var out *router.Stanza
	if m.react != nil {
		if out = m.react(st); out != nil {
			m.react = nil
		}
	}
	m.mu.Unlock()
	if out != nil {
		m.h.Route(ctx, out)
		select {
		case m.Reentered <- struct{}{}:
		default:
		}
	}
	return st
}
