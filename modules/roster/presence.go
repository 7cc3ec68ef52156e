package roster

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/router/subscription"
	"github.com/xmppd/xmppd/storage"
)

// sessionState is what this module knows of one local session. It lives in
// the session's own state (stateKey), so it goes with the session.
type sessionState struct {
	mu         sync.Mutex
	available  bool
	interested bool               // asked for the roster, so gets pushes
	directed   map[string]jid.JID // directed presence sent outside the roster
}

// stateKey is the roster module's slot in a session's state.
var stateKey = router.NewSessionKey[*sessionState]("roster.session")

func (s *sessionState) setInterested() {
	s.mu.Lock()
	s.interested = true
	s.mu.Unlock()
}

func (s *sessionState) isInterested() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.interested
}

// inOrder runs what decide decides for owner's availability in the order
// of the decisions, after those made before for the same account, with no
// lock held while the actions route and deliver (see keylock.Ordered).
// decide runs under the account's lock and only reads and changes this
// module's state of the sessions; everything that routes, delivers or
// touches storage is an action.
func (r *Roster) inOrder(ctx context.Context, owner jid.JID, decide func(queue func(func(context.Context)))) {
	r.availability.Do(ctx, owner.Bare().String(), decide)
}

// hasDirected tells whether the session sent directed presence to a JID.
func (s *sessionState) hasDirected(to string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.directed[to]
	return ok
}

// state returns the state of a session, or nil if it has none. Paths that
// only read it use this rather than track: they may run after ended forgot
// the session, and a state they created then would never be forgotten.
func (r *Roster) state(s router.Session) *sessionState {
	if v, ok := stateKey.Get(s); ok {
		return v
	}
	return nil
}

// track returns the state of a session, creating it, or nil if the session
// is no longer bound. ended forgets a session after the registry unbound
// it, so a state is created first and the session checked after: either
// ended comes later and forgets the state, or the check finds the session
// gone and the state is dropped here.
func (r *Roster) track(s router.Session) *sessionState {
	if ss := r.state(s); ss != nil {
		return ss
	}
	created := false
	ss := stateKey.GetOrSet(s, func() *sessionState {
		created = true
		return &sessionState{}
	})
	if r.h.Router().Session(s.JID()) != s {
		if created {
			// Only the one who stored it drops it: a state another
			// caller created may hold what ended still needs.
			stateKey.Delete(s)
		}
		return nil
	}
	return ss
}

// isSubscriptionType tells the four subscription presence types apart.
func isSubscriptionType(t string) bool {
	switch t {
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		return true
	}
	return false
}

// outbound is a filter on presence sent by local clients: subscription
// stanzas change the sender's roster before they leave (RFC 6121 §3, A.2),
// and directed presence is remembered so that it can be withdrawn at
// logout (§4.6).
func (r *Roster) outbound(ctx context.Context, st *router.Stanza) *router.Stanza {
	if st.Kind() != router.KindPresence || st.From.Resourcepart() == "" || !r.h.Router().ServesUsers(st.From.Domainpart()) || st.To.Domainpart() == "" {
		return st
	}
	typ := st.Type()
	switch {
	case isSubscriptionType(typ):
		r.outboundSubscription(ctx, st)
		return nil
	case typ == "" || typ == "unavailable":
		r.directed(ctx, st)
	}
	return st
}

// outboundSubscription applies a subscription stanza from the user.
func (r *Roster) outboundSubscription(ctx context.Context, st *router.Stanza) {
	owner, contact := st.From.Bare(), st.To.Bare()
	if owner.Equal(contact) {
		return // subscriptions to oneself are implicit
	}
	rosters := r.h.Store().Rosters()
	cur, exists, ok := r.subscriptionItem(ctx, owner, contact)
	if !ok {
		return
	}
	res := subscription.Outbound(cur, exists, st.Type())
	if res.Create && r.maxItems > 0 {
		// The item limit holds for items a subscription adds as for a
		// roster set (RFC 6121 §2.3.3).
		n, err := rosters.Count(ctx, owner)
		if err != nil {
			r.h.Logger().Error("count roster", slog.String("owner", owner.String()), slog.Any("err", err))
			return
		}
		if n >= r.maxItems {
			r.h.Router().Bounce(ctx, st, stanza.NotAllowed, "roster is full")
			return
		}
	}
	if res.Changed || res.Create {
		ver, err := rosters.Put(ctx, owner, res.Item)
		if err != nil {
			r.h.Logger().Error("store roster item", slog.String("owner", owner.String()), slog.Any("err", err))
			return
		}
		r.push(ctx, owner, itemElement(res.Item), ver)
	}
	if res.RemoveRequest {
		// The request is answered: do not deliver it again.
		if err := r.h.Store().SubscriptionRequests().Remove(ctx, owner, contact); err != nil {
			r.h.Logger().Error("remove subscription request", slog.Any("err", err))
		}
	}
	if res.SendUnavailable {
		// §3.2.2: the contact no longer sees the user's presence; tell it
		// while it still accepts presence from the user.
		r.sendUnavailable(ctx, owner, contact)
	}
	if res.Route {
		out := st.Copy()
		// RFC 6121 §3.1.2: the user's bare JID is the sender.
		out.SetFrom(owner)
		out.SetTo(contact)
		r.h.Route(ctx, out)
	}
	if res.SendPresence {
		// §3.1.5: the contact now sees the user's presence.
		r.sendPresences(ctx, owner, contact)
	}
}

// subscriptionItem loads owner's item for contact as the subscription
// machine takes it: a contact outside the roster (exists false) gets an
// item with subscription none, and PendingIn if it has a request stored
// (RFC 6121 A.1). ok is false after a storage error, which is logged.
func (r *Roster) subscriptionItem(ctx context.Context, owner, contact jid.JID) (item storage.RosterItem, exists, ok bool) {
	item, err := r.h.Store().Rosters().Item(ctx, owner, contact)
	switch {
	case err == nil:
		return item, true, true
	case !errors.Is(err, storage.ErrNotFound):
		r.h.Logger().Error("load roster item", slog.String("owner", owner.String()), slog.Any("err", err))
		return item, false, false
	}
	return storage.RosterItem{Contact: contact, Subscription: storage.SubNone, PendingIn: r.pending(ctx, owner, contact)}, false, true
}

// pending tells whether a contact outside the roster has an unanswered
// subscription request stored for owner.
func (r *Roster) pending(ctx context.Context, owner, contact jid.JID) bool {
	reqs, err := r.h.Store().SubscriptionRequests().List(ctx, owner)
	if err != nil {
		r.h.Logger().Error("load subscription requests", slog.String("owner", owner.String()), slog.Any("err", err))
		return false
	}
	for _, req := range reqs {
		if req.From.Equal(contact) {
			return true
		}
	}
	return false
}

// directed remembers directed presence to someone who does not get the
// user's broadcasts anyway.
func (r *Roster) directed(ctx context.Context, st *router.Stanza) {
	s := r.h.Router().Session(st.From)
	if s == nil {
		return
	}
	if item, err := r.h.Store().Rosters().Item(ctx, st.From.Bare(), st.To.Bare()); err == nil &&
		(item.Subscription == storage.SubFrom || item.Subscription == storage.SubBoth) {
		return
	}
	ss := r.track(s)
	if ss == nil {
		return
	}
	key := st.To.String()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if st.Type() == "unavailable" {
		delete(ss.directed, key)
		return
	}
	if _, tracked := ss.directed[key]; !tracked && r.maxItems > 0 && len(ss.directed) >= r.maxItems {
		// The presence still goes; only its withdrawal at logout is
		// given up, so that a session cannot make the server remember
		// without bound.
		r.h.Logger().Debug("directed presence not tracked: limit reached", slog.String("from", st.From.String()))
		return
	}
	if ss.directed == nil {
		ss.directed = map[string]jid.JID{}
	}
	ss.directed[key] = st.To
}

// toAccount handles presence addressed to a local account, or sent with no
// 'to' (a broadcast, RFC 6121 §4.2–4.5).
func (r *Roster) toAccount(ctx context.Context, st *router.Stanza) bool {
	if st.To.Domainpart() == "" {
		r.broadcast(ctx, st)
		return true
	}
	switch typ := st.Type(); {
	case isSubscriptionType(typ):
		r.inboundSubscription(ctx, st)
		return true
	case typ == "probe":
		r.probe(ctx, st)
		return true
	}
	// Available, unavailable and error presence go to the available
	// resources by the router's default rule.
	return false
}

// inboundSubscription applies a subscription stanza from a contact to a
// local user (RFC 6121 §3, A.3).
func (r *Roster) inboundSubscription(ctx context.Context, st *router.Stanza) {
	owner, contact := st.To.Bare(), st.From.Bare()
	exists, err := r.h.Router().AccountExists(ctx, owner)
	if err != nil || !exists {
		return // RFC 6121 §8.5.1: presence to nobody is ignored
	}
	rosters := r.h.Store().Rosters()
	cur, inRoster, ok := r.subscriptionItem(ctx, owner, contact)
	if !ok {
		return
	}
	res := subscription.Inbound(cur, inRoster, st.Type())
	if res.Changed && inRoster {
		ver, err := rosters.Put(ctx, owner, res.Item)
		if err != nil {
			r.h.Logger().Error("store roster item", slog.String("owner", owner.String()), slog.Any("err", err))
			return
		}
		r.push(ctx, owner, itemElement(res.Item), ver)
	}
	reqs := r.h.Store().SubscriptionRequests()
	// Storing a request and handing it to the available resources is one
	// step with respect to initial, which hands the stored ones to a
	// session that becomes available: a request is then given to each
	// session once, by one or the other.
	unlock := r.requests.Lock(owner.String())
	switch {
	case res.StoreRequest:
		r.storeRequest(ctx, owner, contact, st)
	case res.RemoveRequest:
		if err := reqs.Remove(ctx, owner, contact); err != nil {
			r.h.Logger().Error("remove subscription request", slog.Any("err", err))
		}
	}
	if res.Deliver {
		for _, s := range r.h.Router().Sessions(owner) {
			if s.Available() && gotRequests(s) {
				r.h.Router().DeliverTo(ctx, s, st.Copy())
			}
		}
	}
	unlock()
	if res.AutoReply != "" {
		reply := &router.Stanza{Element: router.NewElement("", "presence", "type", res.AutoReply)}
		reply.SetFrom(owner)
		reply.SetTo(contact)
		r.h.Route(ctx, reply)
	}
	if res.SendPresence {
		r.sendPresences(ctx, owner, contact)
	}
	if res.SendUnavailable {
		r.sendUnavailable(ctx, owner, contact)
	}
}

// storeRequest keeps a subscription request until the user answers it
// (RFC 6121 §3.1.3), whole: its status, XEP-0172 nickname, XEP-0379
// pre-auth token and whatever else the contact's client put in it are what
// the user's client shows or acts on when it gets the request at login. A
// request is a stanza, so its size is bounded by limits.max_stanza_size;
// and since every stored request is delivered at each login, they are
// bounded in number like the roster they would join: beyond the limit, a
// request from a new contact is not stored (it was still delivered to the
// available resources, if any). A contact asking again replaces its
// request, within the limit or not.
//
// The caller holds r.requests for owner.
func (r *Roster) storeRequest(ctx context.Context, owner, contact jid.JID, st *router.Stanza) {
	reqs := r.h.Store().SubscriptionRequests()
	if r.maxItems > 0 {
		stored, err := reqs.List(ctx, owner)
		if err != nil {
			r.h.Logger().Error("load subscription requests", slog.String("owner", owner.String()), slog.Any("err", err))
			return
		}
		known := slices.ContainsFunc(stored, func(req storage.SubscriptionRequest) bool { return req.From.Equal(contact) })
		if !known && len(stored) >= r.maxItems {
			r.h.Logger().Info("subscription request not stored: limit reached",
				slog.String("owner", owner.String()), slog.String("from", contact.String()), slog.Int("limit", r.maxItems))
			return
		}
	}
	p := st.Copy()
	// The contact's bare JID asks (§3.1.2), whatever resource it came from.
	p.SetFrom(contact)
	p.SetTo(owner)
	data := p.AppendXML(nil, router.NSClient)
	if len(data) > r.maxRequestSize {
		// Only a stanza made inside the server can be larger than what a
		// stream accepts; it is not kept rather than kept cut.
		r.h.Logger().Info("subscription request not stored: too large",
			slog.String("owner", owner.String()), slog.String("from", contact.String()), slog.Int("size", len(data)))
		return
	}
	if err := reqs.Add(ctx, owner, storage.SubscriptionRequest{From: contact, Stanza: data}); err != nil {
		r.h.Logger().Error("store subscription request", slog.String("owner", owner.String()), slog.Any("err", err))
	}
}

// probe answers a presence probe: the last presence of each available
// resource to a subscribed contact (RFC 6121 §4.3.2).
func (r *Roster) probe(ctx context.Context, st *router.Stanza) {
	owner, from := st.To.Bare(), st.From
	item, err := r.h.Store().Rosters().Item(ctx, owner, from.Bare())
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		r.h.Logger().Error("load roster item", slog.Any("err", err))
		return
	}
	if err != nil || (item.Subscription != storage.SubFrom && item.Subscription != storage.SubBoth) {
		if exists, _ := r.h.Router().AccountExists(ctx, owner); exists {
			r.send(ctx, owner, from, "unsubscribed")
		}
		return
	}
	if !r.sendPresences(ctx, owner, from) {
		p := &router.Stanza{Element: router.NewElement("", "presence", "type", "unavailable")}
		if at, status, err := r.h.Store().LastActivity().Get(ctx, owner); err == nil {
			if status != "" {
				p.Append(router.NewElement("", "status").AppendText(status))
			}
			p.Append(router.NewElement("urn:xmpp:delay", "delay", "from", owner.Domainpart(), "stamp", at.UTC().Format(time.RFC3339)))
		}
		p.SetFrom(owner)
		p.SetTo(from)
		r.h.Route(ctx, p)
	}
}

// send routes a bare presence of type typ from owner to contact.
func (r *Roster) send(ctx context.Context, owner, contact jid.JID, typ string) {
	p := &router.Stanza{Element: router.NewElement("", "presence", "type", typ)}
	p.SetFrom(owner)
	p.SetTo(contact)
	r.h.Route(ctx, p)
}

// sendPresences sends the presence of each available resource of owner to
// contact, and tells whether there was any.
func (r *Roster) sendPresences(ctx context.Context, owner, contact jid.JID) (sent bool) {
	for _, s := range r.h.Router().Sessions(owner) {
		last := s.LastPresence()
		if last == nil {
			continue
		}
		p := last.Copy()
		p.SetFrom(s.JID())
		p.SetTo(contact)
		r.h.Route(ctx, p)
		sent = true
	}
	return sent
}

// sendUnavailable sends unavailable presence from each available resource
// of owner to contact.
func (r *Roster) sendUnavailable(ctx context.Context, owner, contact jid.JID) {
	for _, s := range r.h.Router().Sessions(owner) {
		if !s.Available() {
			continue
		}
		p := &router.Stanza{Element: router.NewElement("", "presence", "type", "unavailable")}
		p.SetFrom(s.JID())
		p.SetTo(contact)
		r.h.Route(ctx, p)
	}
}

// broadcast handles presence a local session sent without 'to': its
// availability (RFC 6121 §4.2, §4.4, §4.5).
func (r *Roster) broadcast(ctx context.Context, st *router.Stanza) {
	s := r.h.Router().Session(st.From)
	if s == nil {
		return
	}
	r.inOrder(ctx, st.From, func(queue func(func(context.Context))) {
		switch st.Type() {
		case "":
			ss := r.track(s)
			if ss == nil {
				return // the session ended meanwhile
			}
			ss.mu.Lock()
			initial := !ss.available
			ss.available = true
			ss.mu.Unlock()
			queue(func(ctx context.Context) { r.broadcastToContacts(ctx, st, initial, s) })
			if initial {
				queue(func(ctx context.Context) { r.initial(ctx, s) })
				// The session itself (c2s) tells the modules that
				// wait for available sessions (offline), once this
				// broadcast has been routed.
			}
		case "unavailable":
			r.unavailable(s, st, nil, queue)
		}
	})
}

// broadcastToContacts sends st to the contacts subscribed to the user and
// to the user's own available resources; on initial presence it also probes
// the contacts the user is subscribed to (RFC 6121 §4.2.2). sender, if not
// nil, is the session that sent st and gets it too, available or not: a
// client's own unavailable presence comes back to it like the others'
// (§4.5.2), while it no longer counts as available.
func (r *Roster) broadcastToContacts(ctx context.Context, st *router.Stanza, initial bool, sender router.Session) {
	owner := st.From.Bare()
	items, _, err := r.h.Store().Rosters().Get(ctx, owner)
	if err != nil {
		r.h.Logger().Error("load roster", slog.String("owner", owner.String()), slog.Any("err", err))
	}
	for _, it := range items {
		if it.Subscription == storage.SubFrom || it.Subscription == storage.SubBoth {
			p := st.Copy()
			p.SetTo(it.Contact)
			r.h.Route(ctx, p)
		}
		if initial && (it.Subscription == storage.SubTo || it.Subscription == storage.SubBoth) {
			r.send(ctx, owner, it.Contact, "probe")
		}
	}
	for _, s := range r.h.Router().Sessions(owner) {
		if s.Available() || s == sender {
			p := st.Copy()
			p.SetTo(s.JID())
			r.h.Router().DeliverTo(ctx, s, p)
		}
	}
}

// requestsGiven marks the sessions that initial gave the stored
// subscription requests to: until then a new request is not handed to the
// session as it comes, since initial will hand it over with the stored
// ones.
var requestsGiven = router.NewSessionKey[bool]("roster.requests_given")

// gotRequests tells whether s was given the stored subscription requests.
func gotRequests(s router.Session) bool {
	v, ok := requestsGiven.Get(s)
	return ok && v
}

// initial completes a session's initial presence: it gets the presence of
// the user's other resources and the pending subscription requests. It
// stops at the first stanza the session refuses: its queue was full, and it
// is closing.
func (r *Roster) initial(ctx context.Context, s router.Session) {
	owner := s.JID().Bare()
	for _, other := range r.h.Router().Sessions(owner) {
		if other == s {
			continue
		}
		if last := other.LastPresence(); last != nil {
			p := last.Copy()
			p.SetFrom(other.JID())
			p.SetTo(s.JID())
			if !r.h.Router().DeliverTo(ctx, s, p) {
				return
			}
		}
	}
	// From here on the session gets new requests as they come (see
	// inbound), and what was stored before from here.
	unlock := r.requests.Lock(owner.String())
	defer unlock()
	requestsGiven.Set(s, true)
	reqs, err := r.h.Store().SubscriptionRequests().List(ctx, owner)
	if err != nil {
		r.h.Logger().Error("load subscription requests", slog.String("owner", owner.String()), slog.Any("err", err))
	}
	for _, req := range reqs {
		e, err := router.ParseElement(req.Stanza, router.NSClient)
		if err != nil {
			r.h.Logger().Error("stored subscription request", slog.Any("err", err))
			continue
		}
		st, err := router.NewStanza(e)
		if err != nil {
			continue
		}
		st.SetTo(owner)
		if !r.h.Router().DeliverTo(ctx, s, st) {
			return
		}
	}
}

// unavailable decides the end of a session's availability and queues what
// it takes: unavailable presence to the subscribed contacts, the user's
// resources and everyone who got directed presence (RFC 6121 §4.5.2,
// §4.6.3), and the logout for last activity once no resource is left. A
// session replaced by an available one with the same full JID leaves the
// broadcast, and the directed presence the new one sent, to the new one:
// see ended. It runs inside inOrder's decide.
func (r *Roster) unavailable(s router.Session, st *router.Stanza, replacement router.Session, queue func(func(context.Context))) {
	var (
		was      bool
		directed map[string]jid.JID
	)
	if ss := r.state(s); ss != nil {
		ss.mu.Lock()
		was = ss.available
		ss.available = false
		directed = ss.directed
		ss.directed = nil
		ss.mu.Unlock()
	}
	// The session that sent its unavailable presence is still bound and
	// gets it back; one that ended has no stream to get it on.
	sender := s
	if st == nil {
		sender = nil
		st = &router.Stanza{Element: router.NewElement("", "presence", "type", "unavailable")}
		st.SetFrom(s.JID())
	}
	var next *sessionState
	if replacement != nil && replacement.Available() {
		next = r.state(replacement)
		if next == nil {
			// Its presence waits for the lock to be broadcast: it has
			// sent no directed presence yet, and it will announce itself.
			next = new(sessionState)
		}
	}
	if was && next == nil {
		queue(func(ctx context.Context) { r.broadcastToContacts(ctx, st, false, sender) })
	}
	var withdraw []jid.JID
	for key, to := range directed {
		if next == nil || !next.hasDirected(key) {
			withdraw = append(withdraw, to)
		}
	}
	if len(withdraw) > 0 {
		queue(func(ctx context.Context) {
			for _, to := range withdraw {
				p := st.Copy()
				p.SetTo(to)
				r.h.Route(ctx, p)
			}
		})
	}
	if !was {
		return
	}
	owner := s.JID().Bare()
	for _, other := range r.h.Router().Sessions(owner) {
		if other != s && other.Available() {
			return
		}
	}
	status := ""
	if e := st.Child("", "status"); e != nil {
		status = e.Text()
	}
	at := time.Now()
	queue(func(ctx context.Context) {
		if err := r.h.Store().LastActivity().Set(ctx, owner, at, status); err != nil {
			r.h.Logger().Error("store last activity", slog.String("owner", owner.String()), slog.Any("err", err))
		}
	})
}

// ended forgets a session that closed, after broadcasting its unavailable
// presence if it was available.
//
// A client that reconnects with the same resource replaces its old
// session (RFC 6120 §7.7.2.2), whose end comes later, in the background.
// By then the new session may have sent its presence: the old one's
// unavailable presence, from the same full JID, would tell the contacts
// that the resource is offline while it is online. So an available
// replacement silences it, and inOrder keeps the old session's end and the
// new session's presence from crossing: the decisions are made in turn,
// and what they send goes in the same order.
func (r *Roster) ended(ctx context.Context, s router.Session) {
	r.inOrder(ctx, s.JID(), func(queue func(func(context.Context))) {
		replacement := r.h.Router().Session(s.JID())
		if replacement == s {
			replacement = nil
		}
		r.unavailable(s, nil, replacement, queue)
		stateKey.Delete(s)
	})
}
