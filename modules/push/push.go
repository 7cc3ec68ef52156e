// Package push implements XEP-0357, Push Notifications: a client registers
// an app server (a JID and a node, with a publish-options form that often
// holds the device's secret), and while the account cannot receive a
// message that matters, because every session hibernates (XEP-0198) or
// none is bound, the server publishes a summary to the app server, which
// wakes the phone.
//
// It hears of such messages at the two places where the router knows:
// the delivery hooks (a message handed to a hibernating session) and the
// "undelivered" event (a message that found no session, which offline
// storage takes). Publishing waits for the app server's answer, so it
// runs on a few workers the module owns, fed by a bounded queue: a slow
// app server delays pushes, never the routing of messages.
package push

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// Namespaces of XEP-0357 and of what it builds on.
const (
	// NS is the push namespace, also the disco#info feature on the
	// account's bare JID.
	NS = "urn:xmpp:push:0"
	// FormSummary is the FORM_TYPE of the notification's summary.
	FormSummary = "urn:xmpp:push:summary"
	// FormPublishOptions is the FORM_TYPE of the publish-options form a
	// client may give with enable.
	FormPublishOptions = "http://jabber.org/protocol/pubsub#publish-options"
	nsPubSub           = "http://jabber.org/protocol/pubsub"
	nsData             = "jabber:x:data"
	// nsJingleMessage is Jingle Message Initiation (XEP-0353): a
	// <propose/> is a call ringing, which must wake the phone like a
	// message with a body.
	nsJingleMessage = "urn:xmpp:jingle-message:0"
)

func init() {
	modules.RegisterWithOptions("push", DefaultOptions(), New)
}

// Options are the push module's settings, module_options.push.
type Options struct {
	// IncludeBody puts the message's text in the notification. Off by
	// default: the app server, and the phone vendor's push service behind
	// it, would read every message.
	IncludeBody bool `yaml:"include_body"`
	// MinInterval is the least time between two notifications for one
	// account: the phone is awake after the first, and a burst of
	// messages must not become a burst of pushes. Messages in between are
	// counted in one more notification, sent when the interval is over
	// if the account is still away.
	MinInterval time.Duration `yaml:"min_interval"`
	// MaxRegistrations bounds one account's app servers, so that a client
	// cannot make every message cost unbounded publishes.
	MaxRegistrations int `yaml:"max_registrations"`
	// Queue bounds the notifications waiting for a worker; over it, one is
	// dropped (and logged) rather than held.
	Queue int `yaml:"queue"`
	// Workers publish the notifications, each waiting for one app server's
	// answer at a time.
	Workers int `yaml:"workers"`
	// Timeout is how long a worker waits for an app server's answer.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultOptions push without the body, at most every 10 seconds per
// account, to up to 10 app servers per account.
func DefaultOptions() Options {
	return Options{MinInterval: 10 * time.Second, MaxRegistrations: 10, Queue: 1000, Workers: 4, Timeout: 30 * time.Second}
}

// Validate implements modules.Validator.
func (o *Options) Validate() error {
	return errors.Join(
		modules.MustBePositive("min_interval", o.MinInterval),
		modules.MustBePositive("max_registrations", o.MaxRegistrations),
		modules.MustBePositive("queue", o.Queue),
		modules.MustBePositive("workers", o.Workers),
		modules.MustBePositive("timeout", o.Timeout),
	)
}

// Push is the push notifications module.
type Push struct {
	opts Options
	h    *modules.Host
	// now is the clock of the rate limit; tests set it.
	now func() time.Time

	jobs   chan job
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards accounts, and stopped: per account with registrations,
	// the messages since it could last receive and when it was last
	// notified. Once stopped, no timer is started.
	mu       sync.Mutex
	accounts map[string]*account
	stopped  bool
	// tracked is len(accounts), read without mu so that the delivery
	// hook, on the path of every message, locks only when there is
	// something to reset.
	tracked atomic.Int64
}

// account is what the rate limit and the summary remember of one account.
type account struct {
	count    int
	notified time.Time
	// seen holds the serials (router.Stanza.Serial) of the last messages
	// counted, oldest first, so that a message handed to two hibernating
	// sessions, or routed again to offline storage when a hibernating
	// session times out, is counted once, with or without an id.
	seen []uint64
	// held is the last message counted and not notified, within the
	// interval; timer notifies it when the interval is over.
	held  *job
	timer *time.Timer
}

// maxSeen bounds account.seen: more than the unacked stanzas a phone
// typically leaves behind, few enough to scan.
const maxSeen = 32

// job is one message that warrants a notification.
type job struct {
	owner  jid.JID // bare
	sender string
	body   string // "" unless IncludeBody
	serial uint64 // the message's, 0 if it was never routed
	// count is set on a notification of held messages, which is
	// counted already.
	count int
}

// New builds the module from its options.
func New(o Options) *Push {
	return &Push{opts: o, now: time.Now, accounts: map[string]*account{}}
}

var (
	_ modules.Starter = (*Push)(nil)
	_ modules.Stopper = (*Push)(nil)
)

// Start implements modules.Starter.
func (p *Push) Start(_ context.Context, h *modules.Host) error {
	p.h = h
	if err := h.HandleIQ(router.ToAccount, stanza.SetIQ, NS, p.handle); err != nil {
		return err
	}
	h.AddFeature(router.ToAccount, NS)
	h.AddDeliveryHook(router.PriorityDefault, p.delivered)
	h.OnUndelivered(router.PriorityDefault, p.undelivered)
	h.OnSessionAvailable(router.PriorityDefault, p.available)
	h.AddFilter(router.PriorityDefault, p.active)

	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.jobs = make(chan job, p.opts.Queue)
	for range p.opts.Workers {
		p.wg.Add(1)
		go p.work(ctx)
	}
	return nil
}

// Stop implements modules.Stopper: the workers finish the publish they
// are in (or give up on its answer) and exit; queued and held
// notifications are dropped, as the phone will be woken by the next
// message anyway.
func (p *Push) Stop() error {
	if p.cancel != nil {
		p.cancel()
		p.wg.Wait()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	for _, a := range p.accounts {
		a.stopTimer()
	}
	return nil
}

// handle answers enable and disable (XEP-0357 §5, §6). Only the account
// itself, from a client of this server, may change its registrations.
func (p *Push) handle(ctx context.Context, iq *router.Stanza) *router.Stanza {
	if !p.h.Router().ServesUsers(iq.From.Domainpart()) || iq.From.Localpart() == "" ||
		(iq.To.Domainpart() != "" && !iq.To.Bare().Equal(iq.From.Bare())) {
		return iq.ErrorReply(stanza.Auth, stanza.Forbidden, "")
	}
	switch q := iq.FirstChild(); q.Name.Local {
	case "enable":
		return p.enable(ctx, iq)
	case "disable":
		return p.disable(ctx, iq)
	}
	return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "")
}

// enable stores a registration, replacing the form of one with the same
// service and node.
func (p *Push) enable(ctx context.Context, iq *router.Stanza) *router.Stanza {
	e := iq.FirstChild()
	service, err := jid.Parse(e.Get("jid"))
	if err != nil || e.Get("node") == "" {
		return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "enable needs a jid and a node")
	}
	reg := storage.PushRegistration{Service: service, Node: e.Get("node")}
	if x := e.Child(nsData, "x"); x != nil {
		if x.Get("type") != "submit" || formType(x) != FormPublishOptions {
			return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "the form must be a submitted "+FormPublishOptions)
		}
		reg.Form = x.AppendXML(nil, router.NSClient)
	}
	owner := iq.From.Bare()
	err = p.h.Store().PushRegistrations().Put(ctx, owner, reg, p.opts.MaxRegistrations)
	switch {
	case errors.Is(err, storage.ErrLimit):
		return iq.ErrorReply(stanza.Wait, stanza.ResourceConstraint, "too many push registrations")
	case err != nil:
		p.h.Logger().Error("push: enable", slog.String("owner", owner.String()), slog.Any("err", err))
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	p.h.Logger().Debug("push enabled", slog.String("owner", owner.String()), slog.String("service", service.String()))
	return iq.Reply()
}

// disable removes one registration, or all of a service.
func (p *Push) disable(ctx context.Context, iq *router.Stanza) *router.Stanza {
	e := iq.FirstChild()
	service, err := jid.Parse(e.Get("jid"))
	if err != nil {
		return iq.ErrorReply(stanza.Modify, stanza.BadRequest, "disable needs a jid")
	}
	owner := iq.From.Bare()
	if err := p.h.Store().PushRegistrations().Remove(ctx, owner, service, e.Get("node")); err != nil {
		p.h.Logger().Error("push: disable", slog.String("owner", owner.String()), slog.Any("err", err))
		return iq.ErrorReply(stanza.Wait, stanza.InternalServerError, "")
	}
	return iq.Reply()
}

// formType returns the FORM_TYPE of a data form, or "".
func formType(x *router.Element) string {
	for _, f := range x.Elements() {
		if f.Name.Local == "field" && f.Get("var") == "FORM_TYPE" {
			if v := f.Child(nsData, "value"); v != nil {
				return v.Text()
			}
		}
	}
	return ""
}

// warrants tells whether a message is one to wake a phone for: a chat or
// normal message with a body, or a call invitation. Chat states, receipts
// and errors wait until the app connects.
func warrants(st *router.Stanza) bool {
	if st.Kind() != router.KindMessage {
		return false
	}
	switch st.Type() {
	case "", "normal", "chat":
	default:
		return false
	}
	return st.Child("", "body") != nil || st.Child(nsJingleMessage, "propose") != nil
}

// delivered is the delivery hook: a message that warrants it, handed to a
// hibernating session of an account none of whose sessions can read it
// now, is notified. A message handed to a session that is connected
// means the user is back: the summary starts again from zero.
func (p *Push) delivered(_ context.Context, s router.Session, st *router.Stanza) *router.Stanza {
	if st.Kind() != router.KindMessage {
		return st
	}
	owner := s.JID().Bare()
	if !router.Hibernating(s) {
		p.reset(owner)
		return st
	}
	if !warrants(st) {
		return st
	}
	for _, other := range p.h.Router().Sessions(owner) {
		if !router.Hibernating(other) {
			return st
		}
	}
	p.enqueue(owner, st)
	return st
}

// undelivered hears of a message for an account with no session that
// could take it. It never takes responsibility for the message: offline
// storage does that.
func (p *Push) undelivered(_ context.Context, st *router.Stanza) bool {
	if !warrants(st) {
		return false
	}
	owner := st.To
	if owner.Domainpart() == "" {
		owner = st.From
	}
	p.enqueue(owner.Bare(), st)
	return false
}

// available starts the summary again for an account that is back.
func (p *Push) available(_ context.Context, s router.Session) { p.reset(s.JID().Bare()) }

// active is a filter that starts the summary again when a client of the
// account sends anything: a client resumed after a push (which fires no
// event of its own) is back, so the next message after it hibernates again
// must wake the phone even within min_interval. Only what a connected
// session sends counts: the server also routes stanzas from the account's
// JIDs (answers to queries of the bare JID, the notifications themselves,
// the presence of a session that ends), and another user must not be able
// to lift the rate limit by sending a query. It never changes st.
func (p *Push) active(_ context.Context, st *router.Stanza) *router.Stanza {
	if p.tracked.Load() == 0 || st.From.Resourcepart() == "" || !p.h.Router().ServesUsers(st.From.Domainpart()) {
		return st
	}
	if s := p.h.Router().Session(st.From); s != nil && !router.Hibernating(s) {
		p.reset(st.From.Bare())
	}
	return st
}

// reset forgets the account's count and rate limit, and what it holds.
func (p *Push) reset(owner jid.JID) {
	if p.tracked.Load() == 0 {
		return
	}
	p.mu.Lock()
	if a := p.accounts[owner.String()]; a != nil {
		a.stopTimer()
		delete(p.accounts, owner.String())
	}
	p.tracked.Store(int64(len(p.accounts)))
	p.mu.Unlock()
}

// stopTimer stops the notification of what a holds, if one is due.
func (a *account) stopTimer() {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
}

// enqueue hands a notification of st to the workers without waiting.
func (p *Push) enqueue(owner jid.JID, st *router.Stanza) {
	j := job{owner: owner, sender: st.From.String(), serial: st.Serial()}
	if p.opts.IncludeBody {
		if b := st.Child("", "body"); b != nil {
			j.body = b.Text()
		}
	}
	p.queue(j)
}

// queue hands j to the workers without waiting.
func (p *Push) queue(j job) {
	select {
	case p.jobs <- j:
	default:
		p.h.Logger().Warn("push: queue full, notification dropped", slog.String("owner", j.owner.String()))
	}
}

// work publishes queued notifications until ctx ends.
func (p *Push) work(ctx context.Context) {
	defer p.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-p.jobs:
			p.notify(ctx, j)
		}
	}
}

// notify publishes j to each of the owner's app servers, unless the rate
// limit holds it back; an app server that answers with an error is
// disabled (XEP-0357 §7.1).
func (p *Push) notify(ctx context.Context, j job) {
	regs, err := p.h.Store().PushRegistrations().List(ctx, j.owner)
	if err != nil {
		p.h.Logger().Error("push: list registrations", slog.String("owner", j.owner.String()), slog.Any("err", err))
		return
	}
	if len(regs) == 0 {
		return
	}
	count := j.count
	if count == 0 {
		var due bool
		if count, due = p.count(j); !due {
			return
		}
	}
	for _, reg := range regs {
		p.publish(ctx, j, reg, count)
	}
}

// count counts j for its account and tells whether a notification is due.
// One that is not is held, and notified when the interval is over.
func (p *Push) count(j job) (count int, due bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.accounts[j.owner.String()]
	if a == nil {
		a = &account{}
		p.accounts[j.owner.String()] = a
		p.tracked.Store(int64(len(p.accounts)))
	}
	if j.serial != 0 {
		if slices.Contains(a.seen, j.serial) {
			return a.count, false
		}
		if len(a.seen) == maxSeen {
			a.seen = slices.Delete(a.seen, 0, 1)
		}
		a.seen = append(a.seen, j.serial)
	}
	a.count++
	now := p.now()
	if wait := p.opts.MinInterval - now.Sub(a.notified); !a.notified.IsZero() && wait > 0 {
		a.held = &j
		if a.timer == nil && !p.stopped {
			owner := j.owner
			a.timer = time.AfterFunc(wait, func() { p.release(owner, a) })
		}
		return a.count, false
	}
	a.notified, a.held = now, nil
	a.stopTimer()
	return a.count, true
}

// release notifies what the interval of a, owner's account, held, once it
// is over: the last message's sender and the count of all. An account that
// came back in between was reset: a is not its record any more, and a
// record made since has an interval of its own.
func (p *Push) release(owner jid.JID, a *account) {
	p.mu.Lock()
	if p.accounts[owner.String()] != a || a.timer == nil || p.stopped {
		p.mu.Unlock()
		return
	}
	if a.held == nil {
		a.timer = nil
		p.mu.Unlock()
		return
	}
	j := *a.held
	j.count = a.count
	a.held, a.timer, a.notified = nil, nil, p.now()
	p.mu.Unlock()
	p.queue(j)
}

// publish sends one notification and waits for the answer.
func (p *Push) publish(ctx context.Context, j job, reg storage.PushRegistration, count int) {
	iq, err := p.notification(j, reg, count)
	if err != nil {
		p.h.Logger().Error("push: build notification", slog.String("owner", j.owner.String()), slog.Any("err", err))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	log := p.h.Logger().With(slog.String("owner", j.owner.String()), slog.String("service", reg.Service.String()))
	resp, err := p.h.Router().SendIQ(ctx, iq)
	switch {
	case errors.Is(err, router.ErrIQError) && transient(resp):
		log.Warn("push: app server not reached; registration kept", slog.Any("err", err))
	case errors.Is(err, router.ErrIQError):
		log.Info("push: app server refused a notification; registration disabled", slog.Any("err", err))
		if err := p.h.Store().PushRegistrations().Remove(ctx, j.owner, reg.Service, reg.Node); err != nil {
			log.Error("push: disable registration", slog.Any("err", err))
		}
	case err != nil:
		log.Warn("push: notification not answered", slog.Any("err", err))
	default:
		log.Debug("push: notified", slog.Int("count", count))
	}
}

// transient tells whether an error answer says that the app server could
// not be reached, or asks to wait, rather than that it refuses the
// registration (XEP-0357 §7.1 lets a server keep it then): a DNS failure
// or an s2s timeout must not cut a phone off for good.
func transient(resp *router.Stanza) bool {
	e := resp.Child("", "error")
	if e == nil {
		return false
	}
	if e.Get("type") == string(stanza.Wait) {
		return true
	}
	for _, cond := range []stanza.Condition{stanza.RemoteServerNotFound, stanza.RemoteServerTimeout} {
		if e.Child(router.NSStanzas, string(cond)) != nil {
			return true
		}
	}
	return false
}

// notification builds the publish of XEP-0357 §7 from the user's bare JID
// to the app server.
func (p *Push) notification(j job, reg storage.PushRegistration, count int) (*router.Stanza, error) {
	x := router.NewElement(nsData, "x", "type", "submit").Append(
		field("FORM_TYPE", FormSummary),
		field("message-count", fmt.Sprint(count)),
		field("last-message-sender", j.sender),
	)
	if p.opts.IncludeBody && j.body != "" {
		x.Append(field("last-message-body", j.body))
	}
	ps := router.NewElement(nsPubSub, "pubsub").Append(
		router.NewElement(nsPubSub, "publish", "node", reg.Node).Append(
			router.NewElement(nsPubSub, "item").Append(
				router.NewElement(NS, "notification").Append(x))))
	if len(bytes.TrimSpace(reg.Form)) > 0 {
		form, err := router.ParseElement(reg.Form, router.NSClient)
		if err != nil {
			return nil, fmt.Errorf("stored publish-options of %s: %w", reg.Service, err)
		}
		ps.Append(router.NewElement(nsPubSub, "publish-options").Append(form))
	}
	iq := &router.Stanza{Element: router.NewElement("", "iq", "type", "set").Append(ps)}
	iq.SetFrom(j.owner)
	iq.SetTo(reg.Service)
	return iq, nil
}

// field is a data form field with one value.
func field(name, value string) *router.Element {
	return router.NewElement(nsData, "field", "var", name).Append(
		router.NewElement(nsData, "value").AppendText(value))
}
