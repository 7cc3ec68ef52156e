package router

import "sync"

// SessionState holds the per-session state of modules: one slot per
// SessionKey. It lives in the session, so a module's state of a session goes
// when the session goes, instead of in a module map keyed by session that
// must be cleaned up by hand (and that outlives the session when a clean-up
// is missed). The zero value is empty and ready; a Session implementation
// embeds one (or returns one) from State.
type SessionState struct {
	mu sync.Mutex
	// slots is a short list: a handful of modules keep state per session,
	// and an idle session that none of them touched pays for a nil slice.
	slots []slot
}

type slot struct {
	key any // a *SessionKey[T]
	val any
}

// State implements the accessor of Session for types that embed a
// SessionState.
func (s *SessionState) State() *SessionState { return s }

func (s *SessionState) find(key any) int {
	for i := range s.slots {
		if s.slots[i].key == key {
			return i
		}
	}
	return -1
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
func (k *SessionKey[T]) Get(s Session) (T, bool) {
	st := s.State()
	st.mu.Lock()
	defer st.mu.Unlock()
	if i := st.find(k); i >= 0 {
		return st.slots[i].val.(T), true
	}
	var zero T
	return zero, false
}

// Set sets the slot in s to v.
func (k *SessionKey[T]) Set(s Session, v T) {
	st := s.State()
	st.mu.Lock()
	defer st.mu.Unlock()
	if i := st.find(k); i >= 0 {
		st.slots[i].val = v
		return
	}
	st.slots = append(st.slots, slot{key: k, val: v})
}

// GetOrSet returns the value of the slot in s, setting it to create() first
// if it is not set; create runs under the state's lock and must not touch
// the session's state itself.
func (k *SessionKey[T]) GetOrSet(s Session, create func() T) T {
	st := s.State()
	st.mu.Lock()
	defer st.mu.Unlock()
	if i := st.find(k); i >= 0 {
		return st.slots[i].val.(T)
	}
	v := create()
	st.slots = append(st.slots, slot{key: k, val: v})
	return v
}

// Delete clears the slot in s.
func (k *SessionKey[T]) Delete(s Session) {
	st := s.State()
	st.mu.Lock()
	defer st.mu.Unlock()
	if i := st.find(k); i >= 0 {
		st.slots = append(st.slots[:i], st.slots[i+1:]...)
	}
}
