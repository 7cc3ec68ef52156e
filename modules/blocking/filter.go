package blocking

import (
	"context"
	"sync"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
)

// filter stops stanzas between a local user and the JIDs the user blocked,
// in both directions (XEP-0191 §3.3).
func (b *Blocking) filter(ctx context.Context, st *router.Stanza) *router.Stanza {
	from, to := st.From, st.To
	if from.Domainpart() == "" || to.Domainpart() == "" {
		// No sender, or addressed to the sender's own account: nobody to
		// block.
		return st
	}
	if from.Bare().Equal(to.Bare()) {
		// XEP-0191 §5: never between the resources of one account.
		return st
	}
	if lists := b.accountLists(from); lists != nil {
		blocked, err := b.blocks(ctx, lists, from.Bare(), to)
		if err != nil {
			b.failed(ctx, st, from, err)
			return nil
		}
		if blocked {
			b.refuseOutbound(ctx, st)
			return nil
		}
	}
	if lists := b.accountLists(to); lists != nil {
		blocked, err := b.blocks(ctx, lists, to.Bare(), from)
		if err != nil {
			b.failed(ctx, st, to, err)
			return nil
		}
		if blocked {
			b.refuseInbound(ctx, st)
			return nil
		}
	}
	return st
}

// blocks tells whether owner, whose domain's lists are given, has blocked
// other.
func (b *Blocking) blocks(ctx context.Context, lists *sync.Map, owner, other jid.JID) (bool, error) {
	l, err := b.listOf(ctx, lists, owner)
	if err != nil {
		return false, err
	}
	return l.blocks(other), nil
}

// refuseInbound answers a stanza from a blocked JID so that the user
// appears offline to it (XEP-0191 §3.3): presence of every type is dropped
// without an answer; a message gets service-unavailable, except headlines,
// which the router drops for offline users too; an IQ request gets
// service-unavailable and other IQs are dropped. Bounce never answers an
// error or an IQ result.
func (b *Blocking) refuseInbound(ctx context.Context, st *router.Stanza) {
	switch st.Kind() {
	case router.KindPresence:
		return
	case router.KindMessage:
		if st.Type() == "headline" {
			return
		}
	}
	b.h.Router().Bounce(ctx, st, stanza.ServiceUnavailable, "")
}

// refuseOutbound answers a stanza the user sent to a blocked JID with
// not-acceptable and <blocked xmlns='urn:xmpp:blocking:errors'/>, as the
// XEP's example does (type cancel).
//
// Presence is dropped without an error, a deliberate departure from the
// letter of XEP-0191 §3.3: the presence a client broadcasts goes to every
// subscribed contact, and polite blocking (§4) keeps the blocked one's
// subscription, so each change of status would otherwise bring the client
// an error for a contact it has already chosen to silence. Errors and IQ
// responses are never answered (RFC 6120 §8.3.1).
func (b *Blocking) refuseOutbound(ctx context.Context, st *router.Stanza) {
	switch {
	case st.Kind() == router.KindPresence, st.Type() == "error":
		return
	case st.Kind() == router.KindIQ && !st.IsIQRequest():
		return
	}
	// The answer goes straight to the sending session: routed, it would
	// come from the blocked JID and this filter would drop it.
	s := b.h.Router().Session(st.From)
	if s == nil {
		return // sent by the server for the account, or the session is gone
	}
	e := st.ErrorReply(stanza.Cancel, stanza.NotAcceptable, "")
	e.Child("", "error").Append(router.NewElement(NSErrors, "blocked"))
	b.h.Router().DeliverTo(ctx, s, e)
}

// failed handles a stanza whose blocklist could not be read. It is not
// routed, because delivering it might break a block; an answer says the
// server failed rather than pretending the recipient is away.
func (b *Blocking) failed(ctx context.Context, st *router.Stanza, owner jid.JID, err error) {
	b.logErr("blocking: check blocklist", owner.Bare(), err)
	if st.Kind() == router.KindPresence {
		return
	}
	b.h.Router().Bounce(ctx, st, stanza.InternalServerError, "")
}
