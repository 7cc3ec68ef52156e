// Package keylock hands out one mutex per key, such as an account's bare
// JID. Several modules must serialise what they do for one account (a
// blocklist change, the delivery of stored messages, an availability
// broadcast) without making unrelated accounts wait for each other, and
// without keeping a mutex for every account ever seen: a key's mutex is
// made when first needed and freed when nobody holds or waits for it, so
// the memory is bounded by the accounts in flight. Ordered builds on it for
// work that must stay in order but routes stanzas, which no lock may be held
// across. Modules may not import each other, so the lock lives here.
package keylock

import "sync"

// Map is a set of mutexes, one per key. The zero value is ready to use; a
// Map must not be copied after first use.
type Map struct {
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	mu   sync.Mutex
	refs int // holders and waiters, guarded by Map.mu
}

// Lock locks key's mutex and returns the function that unlocks it.
func (l *Map) Lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*entry{}
	}
	e := l.m[key]
	if e == nil {
		e = &entry{}
		l.m[key] = e
	}
	e.refs++
	l.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
}

// size is the number of live mutexes, for tests.
func (l *Map) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
