package blocking

import (
	"context"
	"errors"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
)

// purgeStored deletes what the server keeps for owner from the JIDs l
// blocks: offline messages (XEP-0160) and pending subscription requests
// (RFC 6121 §3.1.3). Both are handed to the user's sessions directly at
// login, past the filter, so without this a block would not stop what a
// blocked JID sent before it, and XEP-0191 §3.3 says that nothing from a
// blocked JID is delivered. They go through storage only, so this works
// whichever modules stored them, and does nothing when none did.
func (b *Blocking) purgeStored(ctx context.Context, owner jid.JID, l *list) error {
	var errs []error
	offline := b.h.Store().Offline()
	msgs, err := offline.List(ctx, owner)
	if err != nil {
		errs = append(errs, err)
	}
	var drop []int64
	for _, m := range msgs {
		e, err := router.ParseElement(m.Stanza, router.NSClient)
		if err != nil {
			continue // unreadable: the offline module deals with it
		}
		if st, err := router.NewStanza(e); err == nil && l.blocks(st.From) {
			drop = append(drop, m.ID)
		}
	}
	if len(drop) > 0 {
		errs = append(errs, offline.Delete(ctx, owner, drop))
	}
	requests := b.h.Store().SubscriptionRequests()
	reqs, err := requests.List(ctx, owner)
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range reqs {
		if l.blocks(r.From) {
			errs = append(errs, requests.Remove(ctx, owner, r.From))
		}
	}
	return errors.Join(errs...)
}
