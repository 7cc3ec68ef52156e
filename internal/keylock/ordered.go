package keylock

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
)

// Ordered runs, for each key, the actions that its callers decided on, in
// the order they decided, while no lock is held. A module that must keep
// one account's changes in order (an availability broadcast must not
// overtake the one decided before it) but whose actions route stanzas
// cannot hold a lock across them: a filter or handler reached by the
// routing may come back to the module for the same account and would wait
// for the lock forever. With Ordered, only the decision is made under the
// key's lock, and it queues what is to be done; whoever finds no one
// running the key's queue runs it, outside the lock, until it is empty.
//
// An action that comes back to Do for a key (any key) while it runs only
// queues its actions: they run after it, on the same goroutine, so nothing
// waits for itself. A caller that is not inside an action and finds
// another goroutine running the queue waits until its own actions have
// run, so that, as with a lock, what it asked for is done when Do returns
// and a client's stanzas keep their order (RFC 6120 §10.1). Such a caller
// holds nothing while it waits, so waits cannot form a cycle.
//
// The zero value is ready to use; an Ordered must not be copied after first
// use. Its memory is bounded by the keys in flight, as Map's.
type Ordered struct {
	locks Map
	mu    sync.Mutex
	runs  map[string]*run // the keys whose queue someone is running
}

// run is one key's queue while someone runs it.
type run struct {
	actions []func(context.Context)
	// queued and done count the actions ever queued and run, so that a
	// waiter knows when its own have run.
	queued, done int
	progress     *sync.Cond // on Ordered.mu; signalled when done grows
}

// runningKey marks the context of an action, for Do to tell a caller that
// is inside one.
type runningKey struct{}

// Do locks key, calls decide with a function that queues actions, unlocks
// key, and has the actions run in the order queued, after those queued
// before for the same key. decide must not route, deliver or do anything
// else that may reach back into the caller: that is for the actions. The
// actions get a context with ctx's values that is not cancelled with it,
// since they may run on another caller's goroutine.
func (o *Ordered) Do(ctx context.Context, key string, decide func(queue func(action func(context.Context)))) {
	unlock := o.locks.Lock(key)
	var actions []func(context.Context)
	decide(func(a func(context.Context)) { actions = append(actions, a) })
	if len(actions) == 0 {
		unlock()
		return
	}
	o.mu.Lock()
	if o.runs == nil {
		o.runs = map[string]*run{}
	}
	r := o.runs[key]
	runner := r == nil
	if runner {
		r = &run{progress: sync.NewCond(&o.mu)}
		o.runs[key] = r
	}
	r.actions = append(r.actions, actions...)
	r.queued += len(actions)
	mine := r.queued
	o.mu.Unlock()
	// Queued under the key's lock: the actions run in the order the
	// decisions were made.
	unlock()
	switch {
	case runner:
		o.drain(ctx, key, r)
	case ctx.Value(runningKey{}) != nil:
		// Inside an action: the goroutine that runs this key's queue
		// (this one, or one that does not wait for this one) runs them.
	default:
		o.mu.Lock()
		for r.done < mine {
			r.progress.Wait()
		}
		o.mu.Unlock()
	}
}

// drain runs r's actions until its queue is empty, then forgets it. A
// panicking action does not stop the queue, whose actions other callers
// may be waiting for: the rest run, and the first panic is raised again at
// the end, with its stack, for the caller's recovery to report.
func (o *Ordered) drain(ctx context.Context, key string, r *run) {
	ctx = context.WithValue(context.WithoutCancel(ctx), runningKey{}, true)
	var panicked any
	for {
		o.mu.Lock()
		batch := r.actions
		r.actions = nil
		if len(batch) == 0 {
			delete(o.runs, key)
			o.mu.Unlock()
			break
		}
		o.mu.Unlock()
		for _, a := range batch {
			if p := runAction(ctx, a); p != nil && panicked == nil {
				panicked = p
			}
		}
		o.mu.Lock()
		r.done += len(batch)
		r.progress.Broadcast()
		o.mu.Unlock()
	}
	if panicked != nil {
		panic(panicked)
	}
}

// runAction runs a and returns what it panicked with, if it did, with the
// stack of the panic.
func runAction(ctx context.Context, a func(context.Context)) (panicked any) {
	defer func() {
		if v := recover(); v != nil {
			panicked = fmt.Sprintf("%v\n%s", v, debug.Stack())
		}
	}()
	a(ctx)
	return nil
}

// pending is the number of keys whose queue is being run, for tests.
func (o *Ordered) pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.runs)
}
