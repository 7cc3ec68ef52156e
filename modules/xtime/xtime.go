// Package xtime answers XEP-0202 entity time queries to the server; clients
// use the answer to correct their clock skew when showing timestamps.
package xtime

import (
	"context"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
)

// NS is the XEP-0202 namespace.
const NS = "urn:xmpp:time"

func init() {
	modules.Register("time", func() *Time { return new(Time) })
}

// Time is the entity time module.
type Time struct {
	// now is replaceable in tests.
	now func() time.Time
}

var _ modules.Starter = (*Time)(nil)

// Start implements modules.Starter.
func (t *Time) Start(_ context.Context, h *modules.Host) error {
	if t.now == nil {
		t.now = time.Now
	}
	h.AddFeature(router.ToServer, NS)
	return h.HandleIQ(router.ToServer, stanza.GetIQ, NS, func(_ context.Context, iq *router.Stanza) *router.Stanza {
		return iq.Reply(Element(t.now()))
	})
}

// Element is the <time/> payload for the instant now, in its local zone
// (XEP-0202 §3, XEP-0082 formats).
func Element(now time.Time) *router.Element {
	return router.NewElement(NS, "time").Append(
		router.NewElement(NS, "tzo").AppendText(now.Format("-07:00")),
		router.NewElement(NS, "utc").AppendText(now.UTC().Format("2006-01-02T15:04:05.000Z")),
	)
}
