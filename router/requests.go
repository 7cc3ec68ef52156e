package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultIQTimeout is how long SendIQ waits for an answer when the caller's
// context sets no deadline: a peer that never answers must not keep a
// request pending forever.
const DefaultIQTimeout = 30 * time.Second

// MaxPendingIQs bounds the requests of the server waiting for an answer at
// once, so that peers that never answer cannot make it remember without
// bound.
const MaxPendingIQs = 4096

// Errors of SendIQ.
var (
	// ErrIQError is wrapped by the error SendIQ returns when the answer is
	// an IQ error; the answer is returned with it, for its condition.
	ErrIQError = errors.New("answered with an iq error")
	// ErrTooManyPendingIQs is returned when MaxPendingIQs requests already
	// wait for their answers.
	ErrTooManyPendingIQs = errors.New("too many iq requests waiting for an answer")
)

// pendingKey identifies the answer to one request: who was asked and the
// id the server gave the request (RFC 6120 §8.2.3: the answer carries the
// request's id and comes from its 'to').
type pendingKey struct{ peer, id string }

// pendingIQ is a request waiting for its answer.
type pendingIQ struct {
	from   string         // the request's 'from', which the answer is to
	answer chan<- *Stanza // buffered: answering never waits
}

// pendingIQs holds the server's requests that wait for an answer.
type pendingIQs struct {
	mu sync.Mutex
	m  map[pendingKey]pendingIQ
}

// SendIQ sends an IQ request of the server's (iq's 'from' is a served
// domain, a service address, or the bare JID of a local account the server
// acts for) and waits for the answer to it: the disco#info of a client for
// entity capabilities, a push to an app server. It sets the request's id,
// routes it like any stanza and returns the result, or the IQ error with an
// error wrapping ErrIQError. It gives up when ctx is done, or after DefaultIQTimeout if ctx has no
// deadline. The wait is on the caller's goroutine; a module that must not
// wait calls it from a goroutine it owns. An answer that matches no
// pending request (from another peer, with another id, or too late) is
// dropped, as before.
func (r *Router) SendIQ(ctx context.Context, iq *Stanza) (*Stanza, error) {
	if !iq.IsIQRequest() || iq.FirstChild() == nil {
		return nil, errors.New("router: send iq: not an iq request with a payload")
	}
	if iq.To.Domainpart() == "" || iq.From.Resourcepart() != "" || !r.IsLocal(iq.From.Domainpart()) {
		// A full JID's answers go to its session, not to the waiting
		// request.
		return nil, fmt.Errorf("router: send iq from %q to %q: needs a 'to' and a 'from' this server serves, not a full JID", iq.From, iq.To)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultIQTimeout)
		defer cancel()
	}
	id := "srv-" + NewID()
	iq.SetAttr("id", id)
	key := pendingKey{peer: iq.To.String(), id: id}
	answer := make(chan *Stanza, 1)
	if err := r.requests.add(key, pendingIQ{from: iq.From.String(), answer: answer}); err != nil {
		return nil, fmt.Errorf("router: send iq to %s: %w", iq.To, err)
	}
	defer r.requests.remove(key)
	r.Route(ctx, iq)
	select {
	case resp := <-answer:
		if resp.Type() == "error" {
			return resp, fmt.Errorf("router: iq %s to %s: %w (%s)", id, iq.To, ErrIQError, errorCondition(resp))
		}
		return resp, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("router: iq %s to %s: %w", id, iq.To, ctx.Err())
	}
}

func (p *pendingIQs) add(k pendingKey, w pendingIQ) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.m) >= MaxPendingIQs {
		return ErrTooManyPendingIQs
	}
	if p.m == nil {
		p.m = map[pendingKey]pendingIQ{}
	}
	p.m[k] = w
	return nil
}

func (p *pendingIQs) remove(k pendingKey) {
	p.mu.Lock()
	delete(p.m, k)
	p.mu.Unlock()
}

// answered hands an IQ result or error addressed to the server to the
// request it answers, and tells whether there was one. An answer with no
// 'to' comes from a local client and is for the server too (RFC 6120
// §10.3.3).
func (p *pendingIQs) answered(st *Stanza) bool {
	k := pendingKey{peer: st.From.String(), id: st.ID()}
	p.mu.Lock()
	w, ok := p.m[k]
	if ok && (st.To.Domainpart() == "" || st.To.String() == w.from) {
		delete(p.m, k)
	} else {
		ok = false
	}
	p.mu.Unlock()
	if ok {
		w.answer <- st
	}
	return ok
}

// len is the number of pending requests, for tests.
func (p *pendingIQs) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}

// errorCondition names the defined condition of an error stanza.
func errorCondition(st *Stanza) string {
	if e := st.Child("", "error"); e != nil {
		for _, c := range e.Elements() {
			if c.Name.Space == NSStanzas && c.Name.Local != "text" {
				return c.Name.Local
			}
		}
	}
	return "no condition"
}
