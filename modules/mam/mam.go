// Package mam implements XEP-0313, Message Archive Management, for user
// accounts, with the XEP-0359 stanza-ids that name archived messages and the
// XEP-0441 preferences that choose what is archived.
//
// Messages are archived in a router filter that runs after access control
// (blocking) and before carbons: every message a client sends or a contact
// or remote server sends to an account passes it exactly once, whichever
// resources later get it, and the <stanza-id/> it adds travels with the
// message into carbons, offline storage and what a resumed session gets
// again (Router.Reroute skips the filters). The filter waits until the
// message is committed to the archive before letting it go on, so what a
// client receives or has acknowledged is on disk. The writes of all senders
// are gathered by one goroutine into transactions of many messages (group
// commit, see writer), so that a busy server pays one commit for many
// messages.
//
// Queries, the query form and metadata (served by modules/mam/query, which
// the rooms of modules/muc share) and preferences are IQs to the
// account's own bare JID (or with no 'to'), from a client of the account.
package mam

import (
	"context"
	"fmt"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/modules/mam/query"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// Namespaces of XEP-0313 and of what it is built with; the protocol's own
// are those of modules/mam/query, which serves the queries.
const (
	NS         = query.NS
	NSExtended = query.NSExtended
	NSSID      = "urn:xmpp:sid:0" // XEP-0359
	NSForward  = query.NSForward
	NSDelay    = query.NSDelay
	NSRSM      = query.NSRSM
	NSData     = query.NSData
	NSHints    = "urn:xmpp:hints" // XEP-0334
	FieldText  = query.FieldText
)

// FilterPriority places the archiving filter after access control and the
// default filters, and before carbons (router.PriorityLast), whose copies
// must carry the stanza-id.
const FilterPriority = router.PriorityLast + 500

// UnmarkPriority places the filter that takes the sender's stanza-id off a
// message after carbons (router.PriorityLast) copied it into the sent
// carbons, where XEP-0313 §3.2 wants it, and before the message goes on
// to its recipient.
const UnmarkPriority = router.PriorityLast - 1

// MaxPage is the most messages one query returns (query.MaxPage); it is
// lowered to half the sessions' outbound queue if that is smaller, so that
// a full page never overflows the queue of the client that asked.
const MaxPage = query.MaxPage

func init() { modules.Register("mam", func() *MAM { return new(MAM) }) }

// MAM is the message archive module.
type MAM struct {
	h      *modules.Host
	store  storage.Archives
	w      *writer
	policy policy
	prefs  prefsCache
	// queries serves the queries, one per account at a time.
	queries *query.Server
	// now is the clock of archive stamps.
	now func() time.Time
	// stopRetention ends the retention job (retention.go).
	stopRetention func()
}

var (
	_ modules.Starter = (*MAM)(nil)
	_ modules.Stopper = (*MAM)(nil)
)

// Start implements modules.Starter.
func (m *MAM) Start(ctx context.Context, h *modules.Host) error {
	m.h = h
	m.store = h.Store().Archives()
	m.policy = policyFrom(h.Config())
	m.prefs = newPrefsCache(prefsTTL)
	m.now = time.Now
	m.queries = &query.Server{Store: m.store, Log: h.Logger(), MaxPage: MaxPage}
	if q := h.Config().Limits.OutboundQueue / 2; q > 0 && q < MaxPage {
		m.queries.MaxPage = q
	}
	last, err := m.store.LastStamp(ctx)
	if err != nil {
		return fmt.Errorf("mam: %w", err)
	}
	m.w = newWriter(m.store, h.Logger(), writerQueue, writerBatch, func() time.Time { return m.now() }, last)
	if err := h.HandleIQ(router.ToAccount, stanza.SetIQ, NS, m.set); err != nil {
		m.w.stop()
		return err
	}
	if err := h.HandleIQ(router.ToAccount, stanza.GetIQ, NS, m.get); err != nil {
		m.w.stop()
		return err
	}
	h.AddFilter(FilterPriority, m.filter)
	h.AddFilter(UnmarkPriority, m.unmark)
	// Only what works is advertised: queries with the #extended fields,
	// flipped pages and metadata, and stanza-ids on the account.
	h.AddFeature(router.ToAccount, NS)
	h.AddFeature(router.ToAccount, NSExtended)
	h.AddFeature(router.ToAccount, NSSID)
	// The job lives until Stop, not as long as the context of starting.
	m.stopRetention = startRetention(context.WithoutCancel(ctx), m.store, h.Config().Archive, h.Logger())
	return nil
}

// Stop implements modules.Stopper: the retention job ends, and the writer
// commits what is queued and ends. The host has removed the filter by then, so nothing new comes.
func (m *MAM) Stop() error {
	if m.stopRetention != nil {
		m.stopRetention()
	}
	if m.w != nil {
		m.w.stop()
	}
	return nil
}
