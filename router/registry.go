package router

import (
	"errors"
	"sync"
	"sync/atomic"

	"mellium.im/xmpp/jid"
)

// Session is a bound resource as the router sees it. c2s implements it; a
// future cluster implementation would stand for sessions on other nodes.
type Session interface {
	// JID is the session's full JID.
	JID() jid.JID
	// Deliver queues st for writing and never blocks: a slow receiver must
	// not stall its sender. False means the queue was full; the session then
	// closes itself and st was not delivered.
	Deliver(st *Stanza) bool
	// Available tells whether the session has sent available presence, and
	// Priority is the priority it gave (RFC 6121 §4.7.2.3).
	Available() bool
	Priority() int
	// LastPresence is the session's last available presence as it sent it
	// (nil while unavailable): what probes and newly subscribed contacts
	// are answered with (RFC 6121 §4.3.2). Callers must not change it.
	LastPresence() *Stanza
	// Close ends the session with a stream error (e.g. conflict when a new
	// session binds the same full JID).
	Close(cause error)
	// State holds the modules' per-session state (see SessionKey); an
	// implementation embeds a SessionState.
	State() *SessionState
}

// ErrTooManySessions is returned by Bind when the account already has the
// maximum number of sessions.
var ErrTooManySessions = errors.New("too many sessions for this account")

// Registry holds the bound sessions. It is an interface because it is the
// seam where several xmppd nodes will later share their sessions.
type Registry interface {
	// Bind adds s. If a session with the same full JID exists it is
	// replaced and returned, for the caller to close with a conflict error.
	// max > 0 limits the sessions per account.
	Bind(s Session, max int) (replaced Session, err error)
	// Unbind removes s if it is still the session bound to its JID.
	Unbind(s Session)
	// Lookup finds the session bound to a full JID.
	Lookup(full jid.JID) Session
	// Sessions returns the sessions of an account (a snapshot).
	Sessions(bare jid.JID) []Session
	// Count is the number of bound sessions.
	Count() int
}

// LocalRegistry is the in-memory Registry of one node. Lookups take only the
// lock of the account concerned, never a global one.
type LocalRegistry struct {
	accounts sync.Map // bare JID string → *account
	count    atomic.Int64
}

var _ Registry = (*LocalRegistry)(nil)

// account holds the sessions of one bare JID.
type account struct {
	mu       sync.Mutex
	sessions []Session
}

// NewLocalRegistry returns an empty registry.
func NewLocalRegistry() *LocalRegistry { return &LocalRegistry{} }

// Bind implements Registry.
func (r *LocalRegistry) Bind(s Session, max int) (Session, error) {
	full := s.JID()
	key := full.Bare().String()
	for {
		v, _ := r.accounts.LoadOrStore(key, &account{})
		a := v.(*account)
		a.mu.Lock()
		if cur, ok := r.accounts.Load(key); !ok || cur != a {
			// The account entry was removed while we waited; retry.
			a.mu.Unlock()
			continue
		}
		res := full.Resourcepart()
		for i, old := range a.sessions {
			if old.JID().Resourcepart() == res {
				a.sessions[i] = s
				a.mu.Unlock()
				return old, nil
			}
		}
		if max > 0 && len(a.sessions) >= max {
			a.mu.Unlock()
			return nil, ErrTooManySessions
		}
		a.sessions = append(a.sessions, s)
		a.mu.Unlock()
		r.count.Add(1)
		return nil, nil
	}
}

// Unbind implements Registry.
func (r *LocalRegistry) Unbind(s Session) {
	key := s.JID().Bare().String()
	v, ok := r.accounts.Load(key)
	if !ok {
		return
	}
	a := v.(*account)
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, cur := range a.sessions {
		if cur == s {
			a.sessions = append(a.sessions[:i], a.sessions[i+1:]...)
			r.count.Add(-1)
			break
		}
	}
	if len(a.sessions) == 0 {
		r.accounts.CompareAndDelete(key, a)
	}
}

// Lookup implements Registry.
func (r *LocalRegistry) Lookup(full jid.JID) Session {
	v, ok := r.accounts.Load(full.Bare().String())
	if !ok {
		return nil
	}
	a := v.(*account)
	res := full.Resourcepart()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.sessions {
		if s.JID().Resourcepart() == res {
			return s
		}
	}
	return nil
}

// Sessions implements Registry.
func (r *LocalRegistry) Sessions(bare jid.JID) []Session {
	v, ok := r.accounts.Load(bare.Bare().String())
	if !ok {
		return nil
	}
	a := v.(*account)
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Session(nil), a.sessions...)
}

// Count implements Registry.
func (r *LocalRegistry) Count() int { return int(r.count.Load()) }
