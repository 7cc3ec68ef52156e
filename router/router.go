// Package router is the hub of xmppd: it holds the registry of bound
// sessions and delivers every stanza by its 'to' address under the rules of
// RFC 6120 §10 and RFC 6121 §8, calling the modules through the typed hooks
// it defines. It imports neither the listeners nor the modules.
package router

import (
	"context"
	"log/slog"
	"sync/atomic"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Remote carries stanzas to domains this server does not serve (s2s).
type Remote interface {
	// Route sends st to its remote domain, or bounces it to the sender with
	// the right error when that domain cannot be reached.
	Route(ctx context.Context, st *Stanza)
}

// Accounts tells the router whether a local account exists, which decides
// between "no such user" and "user offline" (RFC 6121 §8.5).
type Accounts interface {
	Exists(ctx context.Context, bare jid.JID) (bool, error)
}

// Router routes stanzas between sessions, local services and remote domains.
type Router struct {
	log      *slog.Logger
	sessions Registry
	accounts Accounts
	hooks    hooks
	// sessionEvents holds the session event handlers.
	sessionEvents sessionHooks
	features      streamFeatures
	// bindFeatures holds the modules' Bind 2 features (bind2.go).
	bindFeatures bindFeatures
	services     services
	// requests holds the server's IQ requests waiting for an answer.
	requests pendingIQs
	// domains is never changed after New, so reading it takes no lock.
	domains map[string]bool
	remote  atomic.Pointer[Remote]
}

// New returns a router serving the given domains.
func New(log *slog.Logger, sessions Registry, accounts Accounts, domains []string) *Router {
	r := &Router{log: log, sessions: sessions, accounts: accounts, domains: map[string]bool{}}
	for _, d := range domains {
		r.domains[d] = true
	}
	return r
}

// SetRemote sets where stanzas to other domains go.
func (r *Router) SetRemote(rem Remote) {
	r.remote.Store(&rem)
}

// Sessions returns the session registry.
func (r *Router) Sessions() Registry { return r.sessions }

// Logger returns the router's logger.
func (r *Router) Logger() *slog.Logger { return r.log }

// ServesUsers tells whether domain is a served user domain, where accounts
// live and clients log in. Service addresses are not (IsService), and what
// is neither is remote; IsLocal tells either of ours.
func (r *Router) ServesUsers(domain string) bool {
	return r.domains[domain]
}

// Domains returns the served user domains; Services returns the service
// addresses.
func (r *Router) Domains() []string {
	out := make([]string, 0, len(r.domains))
	for d := range r.domains {
		out = append(out, d)
	}
	return out
}

// Route delivers st, whose 'from' the caller has already stamped or
// checked. It never blocks on a receiver.
func (r *Router) Route(ctx context.Context, st *Stanza) {
	st.number()
	if p := r.hooks.filters.Load(); p != nil {
		for _, f := range *p {
			var out *Stanza
			if r.guard(f.owner, st, func() { out = f.h(ctx, st) }) {
				r.crashed(ctx, st)
				return
			}
			if out == nil {
				return
			}
			st = out
			st.number() // a filter that built a new message
		}
	}
	r.deliver(ctx, st)
}

// Reroute routes again a stanza that already passed the pre-routing
// filters once, when the session it was handed to ended before writing it
// (c2s requeue, stream management's unacknowledged stanzas): by its 'to'
// address, without the filters, so that what they did (a carbon of a sent
// message, an archive entry) is not done twice.
func (r *Router) Reroute(ctx context.Context, st *Stanza) { r.deliver(ctx, st) }

// deliver routes st by its 'to' address, without the filters.
func (r *Router) deliver(ctx context.Context, st *Stanza) {
	to := st.To
	if to.Domainpart() == "" {
		// No 'to': the stanza is for the sender's own account (RFC 6120
		// §10.3); presence without 'to' is a broadcast, which the presence
		// handlers of the account take.
		r.toAccount(ctx, st, st.From.Bare())
		return
	}
	if !r.domains[to.Domainpart()] {
		if r.toService(ctx, st) {
			return
		}
		rem := r.remote.Load()
		if rem == nil || *rem == nil {
			r.Bounce(ctx, st, stanza.RemoteServerNotFound, "")
			return
		}
		(*rem).Route(ctx, st)
		return
	}
	switch {
	case to.Localpart() == "":
		r.toServer(ctx, st)
	case to.Resourcepart() == "":
		r.toAccount(ctx, st, to)
	default:
		r.toFull(ctx, st)
	}
}

// Bounce answers st with a stanza error, unless st is itself an error or an
// IQ response, which are never answered (RFC 6120 §8.3.1).
func (r *Router) Bounce(ctx context.Context, st *Stanza, cond stanza.Condition, text string) {
	t := st.Type()
	if t == "error" || (st.Kind() == KindIQ && t == "result") {
		return
	}
	if st.From.Domainpart() == "" {
		return
	}
	r.deliver(ctx, st.ErrorReply(DefaultErrorType(cond), cond, text))
}

// toServer handles stanzas addressed to a served domain itself.
func (r *Router) toServer(ctx context.Context, st *Stanza) {
	if st.Kind() == KindIQ {
		r.handleIQ(ctx, ToServer, st)
		return
	}
	if r.runStanzaHandlers(ctx, ToServer, st) {
		return
	}
	if st.Kind() == KindMessage {
		switch st.Type() {
		case "", "normal", "chat":
			r.Bounce(ctx, st, stanza.ServiceUnavailable, "")
		}
	}
	// Presence to the server and other messages are dropped (RFC 6121 §8.5.1
	// leaves ignoring them to the server).
}

// toAccount handles stanzas addressed to a local bare JID.
func (r *Router) toAccount(ctx context.Context, st *Stanza, bare jid.JID) {
	switch st.Kind() {
	case KindIQ:
		r.handleIQ(ctx, ToAccount, st)
	case KindPresence:
		if r.runStanzaHandlers(ctx, ToAccount, st) {
			return
		}
		if st.To.Domainpart() == "" {
			return // an undirected presence with no presence module: nothing to broadcast
		}
		// Without a presence module, presence goes to every available
		// resource, as RFC 6121 §8.5.2.1.1 says for the common types.
		for _, s := range r.sessions.Sessions(bare) {
			if s.Available() {
				r.deliverTo(ctx, s, st.Copy())
			}
		}
	case KindMessage:
		if r.runStanzaHandlers(ctx, ToAccount, st) {
			return
		}
		r.messageToBare(ctx, st, bare)
	default:
		r.Bounce(ctx, st, stanza.BadRequest, "")
	}
}

// messageToBare applies RFC 6121 §8.5.2 to a message for a local bare JID.
func (r *Router) messageToBare(ctx context.Context, st *Stanza, bare jid.JID) {
	typ := st.Type()
	if typ == "error" {
		// Errors for a bare JID have nobody to go to; answering them could
		// loop.
		return
	}
	if typ == "groupchat" {
		r.Bounce(ctx, st, stanza.ServiceUnavailable, "")
		return
	}
	var targets []Session
	best := 0
	for _, s := range r.sessions.Sessions(bare) {
		if !s.Available() || s.Priority() < 0 {
			continue
		}
		switch p := s.Priority(); {
		case typ == "headline":
			targets = append(targets, s)
		case len(targets) == 0 || p > best:
			targets, best = append(targets[:0], s), p
		case p == best:
			targets = append(targets, s)
		}
	}
	delivered := false
	for i, s := range targets {
		out := st
		if i < len(targets)-1 {
			out = st.Copy()
		}
		if r.deliverTo(ctx, s, out) {
			delivered = true
		}
	}
	if delivered {
		return
	}
	r.undelivered(ctx, st, bare)
}

// undelivered tells every undelivered handler of a message nobody could
// take (offline storage, archives), and if none stored it answers the
// sender as RFC 6121 §8.5.2.2 and §8.5.1 say.
func (r *Router) undelivered(ctx context.Context, st *Stanza, bare jid.JID) {
	exists, err := r.accounts.Exists(ctx, bare)
	if err != nil {
		r.log.Error("look up account", slog.String("jid", bare.String()), slog.Any("err", err))
		r.Bounce(ctx, st, stanza.InternalServerError, "")
		return
	}
	stored, panicked := false, false
	if p := r.hooks.undeliv.Load(); exists && p != nil {
		for _, e := range *p {
			took := false
			if r.guard(e.owner, st, func() { took = e.h(ctx, st) }) {
				panicked = true
				continue
			}
			stored = stored || took
		}
	}
	if stored {
		return
	}
	switch st.Type() {
	case "headline", "error":
		return
	}
	if panicked {
		// A handler that might have stored it crashed: the sender learns
		// that the server failed, not that the user is away.
		r.Bounce(ctx, st, stanza.InternalServerError, "")
		return
	}
	r.Bounce(ctx, st, stanza.ServiceUnavailable, "")
}

// toFull handles stanzas addressed to a local full JID (RFC 6121 §8.5.3).
func (r *Router) toFull(ctx context.Context, st *Stanza) {
	if st.Kind() == KindPresence {
		switch st.Type() {
		case "subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe":
			// Handled by the server for the account, whatever the
			// resource (RFC 6121 §3, §4.3, §8.5.3.1).
			r.toAccount(ctx, st, st.To.Bare())
			return
		}
	}
	if s := r.sessions.Lookup(st.To); s != nil {
		if !r.deliverTo(ctx, s, st) {
			// The session refused it: it is going away.
			switch {
			case st.Kind() == KindMessage:
				r.undelivered(ctx, st, st.To.Bare())
			case st.IsIQRequest():
				r.Bounce(ctx, st, stanza.ServiceUnavailable, "")
			}
		}
		return
	}
	switch st.Kind() {
	case KindMessage:
		switch st.Type() {
		case "", "normal", "chat":
			r.messageToBare(ctx, st, st.To.Bare())
		case "groupchat":
			r.Bounce(ctx, st, stanza.ServiceUnavailable, "")
		}
	case KindIQ:
		r.Bounce(ctx, st, stanza.ServiceUnavailable, "")
	}
}

// runStanzaHandlers runs the message or presence handlers of target.
func (r *Router) runStanzaHandlers(ctx context.Context, target Target, st *Stanza) bool {
	for _, e := range loadMap(&r.hooks.stanza)[stanzaKey{target, st.Kind()}] {
		handled := false
		if r.guard(e.owner, st, func() { handled = e.h(ctx, st) }) {
			r.crashed(ctx, st)
			return true
		}
		if handled {
			return true
		}
	}
	return false
}

// crashed answers the sender of a stanza whose filter or handler panicked
// (guard has logged it with the module's ID): an IQ request or a message
// gets internal-server-error, so the sender learns that it was not
// delivered instead of waiting for an answer that will not come. Presence
// expects no answer and is dropped, as RFC 6120 §8.3.1 lets a server do
// with errors for presence it cannot process.
func (r *Router) crashed(ctx context.Context, st *Stanza) {
	if st.Kind() != KindPresence {
		r.Bounce(ctx, st, stanza.InternalServerError, "")
	}
}

// handleIQ dispatches an IQ for the server or an account to its handler.
func (r *Router) handleIQ(ctx context.Context, target Target, st *Stanza) {
	if !st.IsIQRequest() {
		// Results and errors addressed to the server answer requests the
		// server made: SendIQ waits for some; the rest (c2s pings, answers
		// too late or from the wrong peer) are dropped.
		r.requests.answered(st)
		return
	}
	payload := st.FirstChild()
	if payload == nil {
		r.Bounce(ctx, st, stanza.BadRequest, "")
		return
	}
	handlers := loadMap(&r.hooks.iq)
	e, ok := handlers[iqKey{target: target, typ: st.Type(), ns: payload.Name.Space}]
	if !ok && target == ToAccount && st.To.Domainpart() == "" {
		// An IQ without 'to' is for the server acting for the account (RFC
		// 6120 §10.3.3); server-wide services such as ping answer it too.
		e, ok = handlers[iqKey{target: ToServer, typ: st.Type(), ns: payload.Name.Space}]
	}
	if !ok {
		r.Bounce(ctx, st, stanza.ServiceUnavailable, "")
		return
	}
	r.runIQ(ctx, e, st)
}

// runIQ runs the handler e of an IQ request and sends its response.
func (r *Router) runIQ(ctx context.Context, e entry[IQHandler], st *Stanza) {
	var resp *Stanza
	if r.guard(e.owner, st, func() { resp = e.h(ctx, st) }) {
		r.Bounce(ctx, st, stanza.InternalServerError, "")
		return
	}
	if resp != nil {
		r.deliver(ctx, resp)
	}
}
