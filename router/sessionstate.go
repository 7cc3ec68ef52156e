package router

import (
	"sync"
	"sync/atomic"
)

// SessionState holds the per-session state of modules: one slot per
// SessionKey. It lives in the session, so a module's state of a session goes
// when the session goes, instead of in a module map keyed by session that
// must be cleaned up by hand (and that outlives the session when a clean-up
// is missed). The zero value is empty and ready; a Session implementation
// embeds one (or returns one) from State.
type SessionState struct {
	mu sync.Mutex // serialises writers
	// slots is a short list, copied on write and read without the lock:
	// a handful of modules keep state per session, and an idle session
	// that none of them touched pays for a nil pointer.
	slots atomic.Pointer[[]slot]
}

type slot struct {
	key any // a *SessionKey[T]
	val any
}

// State implements the accessor of Session for types that embed a
// SessionState.
func (s *SessionState) State() *SessionState { return s }

// load returns the value of key's slot.
func (s *SessionState) load(key any) (any, bool) {
	if p := s.slots.Load(); p != nil {
		for _, sl := range *p {
			if sl.key == key {
				return sl.val, true
			}
		}
	}
	return nil, false
}

// store sets key's slot to val, or clears it if del; the caller holds mu.
func (s *SessionState) store(key, val any, del bool) {
	var old []slot
	if p := s.slots.Load(); p != nil {
		old = *p
	}
	next := make([]slot, 0, len(old)+1)
	for _, sl := range old {
		if sl.key != key {
			next = append(next, sl)
		}
	}
	if !del {
		next = append(next, slot{key: key, val: val})
	}
	if len(next) == 0 {
		s.slots.Store(nil)
		return
	}
	s.slots.Store(&next)
}

// StateHolder is what has a SessionState: a Session, and in c2s a
// connection's negotiation, whose steps keep per-connection state the same
// way.
type StateHolder interface {
	State() *SessionState
}

// SessionKey names one slot of per-session state holding a T. A module
// creates its keys once (a package variable) and is the only one that
// reads or writes them, so the slot is typed and private to the module
// without a registry of names.
type SessionKey[T any] struct {
	// name is for debugging only; keys are compared by address.
	name string
}

// NewSessionKey returns a new key; name says whose state it is.
func NewSessionKey[T any](name string) *SessionKey[T] { return &SessionKey[T]{name: name} }

// String returns the key's name.
func (k *SessionKey[T]) String() string { return k.name }

// Get returns the value of the slot in s, and whether it was set.
func (k *SessionKey[T]) Get(s StateHolder) (T, bool) {
	if v, ok := s.State().load(k); ok {
		return v.(T), true
	}
	var zero T
	return zero, false
}

// Set sets the slot in s to v.
func (k *SessionKey[T]) Set(s StateHolder, v T) {
	st := s.State()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.store(k, v, false)
}

// GetOrSet returns the value of the slot in s, setting it to create() first
// if it is not set; create runs under the state's lock and must not touch
// the session's state itself.
func (k *SessionKey[T]) GetOrSet(s StateHolder, create func() T) T {
	st := s.State()
	st.mu.Lock()
	defer st.mu.Unlock()
	if v, ok := st.load(k); ok {
		return v.(T)
	}
	v := create()
	st.store(k, v, false)
	return v
}

// Delete clears the slot in s.
func (k *SessionKey[T]) Delete(s StateHolder) {
	st := s.State()
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.load(k); ok {
		st.store(k, nil, true)
	}
}
