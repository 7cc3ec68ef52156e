package blocking

import "sync"

// ownerLocks hands out one mutex per account, made when first needed and
// freed when nobody holds or waits for it, so that its memory is bounded by
// the accounts in flight and unrelated accounts never wait for each other.
type ownerLocks struct {
	mu sync.Mutex
	m  map[string]*ownerLock
}

type ownerLock struct {
	mu   sync.Mutex
	refs int // holders and waiters, guarded by ownerLocks.mu
}

// lock locks key's mutex and returns the function that unlocks it.
func (l *ownerLocks) lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*ownerLock{}
	}
	e := l.m[key]
	if e == nil {
		e = &ownerLock{}
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
func (l *ownerLocks) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
