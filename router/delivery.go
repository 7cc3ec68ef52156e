package router

import "context"

// DeliverTo hands st to the session s through the delivery hooks, as the
// router does with what it routes to a local resource. It is how a module
// sends to one session it picked itself (a roster push, the stored
// messages of an account, a presence broadcast to the user's own
// resources), so that what every delivery goes through is not bypassed.
// It reports whether st was taken: handed to the session, or suppressed by
// a hook that took responsibility for it. False means the session refused
// it (its queue was full and it is closing).
func (r *Router) DeliverTo(ctx context.Context, s Session, st *Stanza) bool {
	return r.deliverTo(ctx, s, st)
}

// deliverTo runs the delivery hooks on st and hands what they return to s.
// A hook that panics is logged with its module's ID and the stanza is
// answered like one whose filter panicked; it counts as taken, since the
// sender has its answer and another route would only repeat the crash. The
// answer is handed over through the hooks too: a hook that crashes on
// everything loses it, logged, rather than being bypassed.
func (r *Router) deliverTo(ctx context.Context, s Session, st *Stanza) bool {
	if p := r.hooks.delivery.Load(); p != nil {
		for _, e := range *p {
			var out *Stanza
			if r.guard(e.owner, st, func() { out = e.h(ctx, s, st) }) {
				r.crashed(ctx, st)
				return true
			}
			if out == nil {
				return true
			}
			st = out
		}
	}
	return s.Deliver(st)
}
