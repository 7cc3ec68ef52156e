// Package offline implements XEP-0160, offline message storage: a message
// for a local account that has no available resource with a non-negative
// priority is stored, stamped with a XEP-0203 delay, and delivered when the
// user next sends available presence with a non-negative priority.
//
// It stores through the router's "undelivered" hook rather than deciding
// itself who is online, so that the RFC 6121 §8.5 rules live in one place
// (the router) and another module (an archive) can hear of the same
// messages.
package offline

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/internal/keylock"
	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// Feature is the disco#info feature of XEP-0160 §4.
const Feature = "msgoffline"

func init() {
	modules.RegisterWithOptions("offline", DefaultOptions(), func(o Options) *Offline {
		return &Offline{maxMessages: o.MaxMessages}
	})
}

// Options are the offline module's settings, module_options.offline.
type Options struct {
	// MaxMessages bounds one account's queue; over it, senders get
	// service-unavailable (XEP-0160 §2), so a flood cannot fill the disk.
	MaxMessages int `yaml:"max_messages"`
}

// DefaultOptions keeps up to 1000 messages, like ejabberd's default
// access rule.
func DefaultOptions() Options { return Options{MaxMessages: 1000} }

// Validate implements modules.Validator.
func (o *Options) Validate() error { return modules.MustBePositive("max_messages", o.MaxMessages) }

// Offline is the offline message module.
type Offline struct {
	h           *modules.Host
	maxMessages int
	// delivering runs the deliveries of one account one after the other,
	// so that two sessions that become available at once cannot both
	// deliver (and then both delete) the same messages; it holds no lock
	// while one reads storage or hands messages over, so a delivery hook
	// or filter reached from a delivery may start another one.
	delivering keylock.Ordered

	// mu serialises the changes of the waitingKey marks with waiting.
	mu sync.Mutex
	// waiting counts the sessions marked with waitingKey, so that the
	// presence filter skips the session lookup while none waits.
	waiting atomic.Int64
}

// waitingKey marks a session that became available with a negative
// priority: it gets the messages once it raises it (XEP-0160 §2, "next
// sends non-negative available presence"). The mark lives in the session,
// and goes with it.
var waitingKey = router.NewSessionKey[struct{}]("offline.waiting")

var _ modules.Starter = (*Offline)(nil)

// Start implements modules.Starter.
func (o *Offline) Start(_ context.Context, h *modules.Host) error {
	o.h = h
	h.AddFeature(router.ToServer, Feature)
	h.OnUndelivered(router.PriorityDefault, o.store)
	h.OnSessionAvailable(router.PriorityDefault, o.available)
	h.OnSessionEnd(router.PriorityDefault, o.ended)
	h.AddFilter(router.PriorityDefault, o.priorityRaised)
	return nil
}

// store takes a message that found no available resource. It returns
// false, so that the router answers the sender with service-unavailable
// (XEP-0160 §2 step 3), when the message is not one to store or the
// account's queue is full.
func (o *Offline) store(ctx context.Context, st *router.Stanza) bool {
	if !shouldStore(st) {
		return false
	}
	owner := st.To
	if owner.Domainpart() == "" {
		owner = st.From // a message with no 'to' is for the sender's account
	}
	owner = owner.Bare()
	msg := stamped(st, owner.Domainpart(), time.Now())
	err := o.h.Store().Offline().Push(ctx, owner, msg.AppendXML(nil, router.NSClient), o.maxMessages)
	switch {
	case errors.Is(err, storage.ErrLimit):
		o.h.Logger().Debug("offline queue full", slog.String("owner", owner.String()))
		return false
	case errors.Is(err, storage.ErrNotFound):
		return false // the account was deleted meanwhile
	case err != nil:
		o.h.Logger().Error("offline: store message", slog.String("owner", owner.String()), slog.Any("err", err))
		o.h.Router().Bounce(ctx, st, stanza.InternalServerError, "")
		return true
	}
	// The router found no session, but one may have become available
	// since and already fetched its messages: it gets this one now
	// instead of at its next login.
	if s := o.deliverable(owner); s != nil {
		o.deliver(ctx, s)
	}
	return true
}

// deliverable returns an available session of owner with a non-negative
// priority, or nil.
func (o *Offline) deliverable(owner jid.JID) router.Session {
	for _, s := range o.h.Router().Sessions(owner) {
		if s.Available() && s.Priority() >= 0 {
			return s
		}
	}
	return nil
}

// available delivers the stored messages to a session that sent its
// initial presence, if its priority is non-negative; a session with a
// negative priority gets no messages to the bare JID (RFC 6121 §8.5.2.1.1),
// so it waits until it raises its priority.
func (o *Offline) available(ctx context.Context, s router.Session) {
	if s.Priority() < 0 {
		o.mu.Lock()
		if _, already := waitingKey.Get(s); !already {
			waitingKey.Set(s, struct{}{})
			o.waiting.Add(1)
		}
		o.mu.Unlock()
		if o.h.Router().Session(s.JID()) != s {
			o.forget(s) // it ended meanwhile, maybe before ended ran
		}
		return
	}
	o.forget(s)
	o.deliver(ctx, s)
}

// priorityRaised is a filter on the presence a client broadcasts: when a
// session that waits (see available) now has a non-negative priority, it
// gets the stored messages. It never stops the presence.
func (o *Offline) priorityRaised(ctx context.Context, st *router.Stanza) *router.Stanza {
	if st.Kind() != router.KindPresence || st.To.Domainpart() != "" || st.Type() != "" {
		return st
	}
	if o.waiting.Load() == 0 {
		return st
	}
	s := o.h.Router().Session(st.From)
	if s == nil || s.Priority() < 0 {
		return st
	}
	if o.forget(s) {
		o.deliver(ctx, s)
	}
	return st
}

// ended forgets a session that closed.
func (o *Offline) ended(_ context.Context, s router.Session) { o.forget(s) }

// forget clears s's waiting mark and reports whether it had one.
func (o *Offline) forget(s router.Session) (waited bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, waited = waitingKey.Get(s); waited {
		waitingKey.Delete(s)
		o.waiting.Add(-1)
	}
	return waited
}

// deliver hands the stored messages to s, oldest first, and deletes those
// it took, after the deliveries to the same account asked for before. A
// session whose queue overflows closes itself; the messages it did not
// take stay stored for the next login. Asked for from inside a delivery,
// it runs once that one is done.
func (o *Offline) deliver(ctx context.Context, s router.Session) {
	o.delivering.Do(ctx, s.JID().Bare().String(), func(queue func(func(context.Context))) {
		queue(func(ctx context.Context) { o.deliverNow(ctx, s) })
	})
}

// deliverNow is deliver's work, run in turn by delivering.
func (o *Offline) deliverNow(ctx context.Context, s router.Session) {
	owner := s.JID().Bare()
	store := o.h.Store().Offline()
	msgs, err := store.List(ctx, owner)
	if err != nil {
		o.h.Logger().Error("offline: list messages", slog.String("owner", owner.String()), slog.Any("err", err))
		return
	}
	if len(msgs) == 0 {
		return
	}
	done := make([]int64, 0, len(msgs))
	for _, m := range msgs {
		st, err := parse(m.Stanza)
		if err != nil {
			// It can never be delivered; keeping it would only hold a
			// place in the queue forever.
			o.h.Logger().Error("offline: drop unreadable message", slog.String("owner", owner.String()),
				slog.Int64("id", m.ID), slog.Any("err", err))
			done = append(done, m.ID)
			continue
		}
		if !o.h.Router().DeliverTo(ctx, s, st) {
			break
		}
		done = append(done, m.ID)
	}
	if len(done) == 0 {
		return
	}
	if err := store.Delete(ctx, owner, done); err != nil {
		// They were delivered and will be again at the next login: a
		// duplicate is better than a loss.
		o.h.Logger().Error("offline: delete delivered messages", slog.String("owner", owner.String()), slog.Any("err", err))
		return
	}
	o.h.Logger().Debug("offline messages delivered", slog.String("to", s.JID().String()), slog.Int("count", len(done)))
}

// parse reads a stored message back.
func parse(b []byte) (*router.Stanza, error) {
	e, err := router.ParseElement(b, router.NSClient)
	if err != nil {
		return nil, err
	}
	return router.NewStanza(e)
}
