package c2s

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/router"
)

// bind binds a resource (RFC 6120 §7): the client's choice if valid, else
// a generated one. A session already bound to the same full JID is replaced
// and closed with a conflict error (§7.7.2.2, first policy).
func (c *conn) bind(iq *router.Stanza, payload *router.Element) (bool, error) {
	res := ""
	if r := payload.Child(nsBind, "resource"); r != nil {
		res = strings.TrimSpace(r.Text())
	}
	if res == "" {
		res = "xmppd-" + router.NewID()
	}
	full, err := jid.New(c.user, c.host, res)
	if err != nil {
		return false, c.writeElement(iq.ErrorReply(stanza.Modify, stanza.BadRequest, "invalid resource").Element)
	}
	c.jid, c.jidString = full, full.String()
	c.out = newOutQueue(c.srv.limits.OutboundQueue)
	c.writerDone = make(chan struct{})
	old, err := c.srv.opts.Router.Sessions().Bind(c, c.srv.limits.MaxSessionsPerUser)
	if errors.Is(err, router.ErrTooManySessions) {
		c.jid = jid.JID{}
		return false, c.writeElement(iq.ErrorReply(stanza.Wait, stanza.ResourceConstraint, "too many sessions").Element)
	}
	if old != nil {
		old.Close(stream.Conflict)
	}
	result := router.NewElement("", "iq", "type", "result", "id", iq.ID())
	result.Append(router.NewElement(nsBind, "bind").Append(router.NewElement(nsBind, "jid").AppendText(full.String())))
	if err := c.writeElement(result); err != nil {
		c.srv.opts.Router.Sessions().Unbind(c)
		return false, err
	}
	c.bound = true
	c.log = c.log.With(slog.String("jid", full.String()))
	c.log.Info("c2s session bound")
	go c.writeLoop()
	return true, nil
}

// JID implements router.Session.
func (c *conn) JID() jid.JID { return c.jid }

// Available implements router.Session.
func (c *conn) Available() bool { return c.available.Load() }

// Priority implements router.Session.
func (c *conn) Priority() int { return int(c.priority.Load()) }

// LastPresence implements router.Session.
func (c *conn) LastPresence() *router.Stanza { return c.presence.Load() }

// Deliver implements router.Session: it queues without blocking, and a full
// queue means the client does not keep up, so the session is closed. A
// stanza it accepts is written or, if the session ends first, routed again
// by requeue; one it refuses is the caller's to route elsewhere.
func (c *conn) Deliver(st *router.Stanza) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	switch c.out.push(st) {
	case pushed:
		return true
	case queueEnded:
		return false
	}
	c.log.Warn("c2s outbound queue full; closing session")
	c.Close(stream.ResourceConstraint)
	return false
}

// writeBufs pools serialisation buffers, so an idle session holds none.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxBatch is how much is gathered from the queue into one write.
const maxBatch = 64 << 10

// writeLoop writes queued stanzas until the session closes, batching what
// has piled up into one write.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	defer c.finish()
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("c2s writer panicked", slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			c.Close(stream.InternalServerError)
		}
	}()
	for {
		select {
		case <-c.out.ready:
			if err := c.writeQueued(); err != nil {
				c.Close(err)
				return
			}
		case <-c.done:
			return
		}
	}
}

// writeQueued writes everything queued, in writes of about maxBatch bytes.
func (c *conn) writeQueued() error {
	items := c.out.take()
	bp := writeBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxBatch*2 {
			writeBufs.Put(bp)
		}
	}()
	for i := 0; i < len(items); {
		buf := (*bp)[:0]
		for ; i < len(items) && len(buf) < maxBatch; i++ {
			buf = items[i].AppendXML(buf, router.NSClient)
		}
		*bp = buf[:0]
		if err := c.write(buf); err != nil {
			return err
		}
		select {
		case <-c.done:
			// Closing: leave the rest for finish and requeue.
			c.out.putBack(items[i:])
			return nil
		default:
		}
	}
	return nil
}

// requeue routes again what was still queued when the session ended: after
// Unbind the router delivers it to the account's other resources or treats
// it as undelivered, so nothing queued is silently lost.
func (c *conn) requeue(ctx context.Context) {
	for _, st := range c.out.drain() {
		if st.Kind() == router.KindMessage {
			c.srv.opts.Router.Route(ctx, st)
		}
	}
}

// readLoop reads stanzas from a bound client, stamps them and routes them.
func (c *conn) readLoop(ctx context.Context) error {
	r := c.srv.opts.Router
	for {
		e, err := c.in.Next()
		if err != nil {
			if errors.Is(err, errClosing) {
				return c.cause
			}
			return err
		}
		if e.Name.Space != "" {
			return stream.UnsupportedStanzaType
		}
		switch e.Name.Local {
		case router.KindMessage, router.KindPresence, router.KindIQ:
		default:
			return stream.UnsupportedStanzaType
		}
		st, err := router.NewStanza(e)
		// RFC 6120 §8.1.2.1: the server stamps the full JID of the session,
		// whatever the client wrote.
		st.StampFrom(c.jid, c.jidString)
		if err != nil {
			var se stanza.Error
			errors.As(err, &se)
			st.To = jid.JID{}
			st.SetAttr("to", "")
			c.reply(st.ErrorFrom(se))
			continue
		}
		if cond := checkStanza(st); cond != "" {
			c.reply(st.ErrorReply(router.DefaultErrorType(cond), cond, ""))
			continue
		}
		if c.local(st) {
			continue
		}
		r.Route(ctx, st)
	}
}

// reply sends the server's answer to a stanza of this client.
func (c *conn) reply(st *router.Stanza) {
	st.SetTo(c.jid)
	if st.From.Domainpart() == "" {
		st.SetFrom(jid.MustParse(c.host))
	}
	c.Deliver(st)
}

// checkStanza applies RFC 6120 §8.2's rules for the common attributes and
// returns the condition of a violation.
func checkStanza(st *router.Stanza) stanza.Condition {
	if st.Kind() != router.KindIQ {
		return ""
	}
	if st.ID() == "" {
		return stanza.BadRequest
	}
	switch st.Type() {
	case "get", "set":
		if len(st.Elements()) != 1 {
			return stanza.BadRequest
		}
	case "result", "error":
	default:
		return stanza.BadRequest
	}
	return ""
}

// local handles what concerns this stream alone and reports whether it did.
func (c *conn) local(st *router.Stanza) bool {
	switch st.Kind() {
	case router.KindIQ:
		// The RFC 3921 session IQ is a no-op kept for old clients.
		p := st.FirstChild()
		if st.Type() == "set" && p != nil && p.Name.Space == nsSession && (st.To.Domainpart() == "" || st.To.String() == c.host) {
			c.reply(st.Reply())
			return true
		}
	case router.KindPresence:
		if st.To.Domainpart() != "" {
			return false
		}
		switch st.Type() {
		case "":
			prio := 0
			if p := st.Child("", "priority"); p != nil {
				n, err := strconv.Atoi(strings.TrimSpace(p.Text()))
				if err != nil || n < -128 || n > 127 {
					c.reply(st.ErrorReply(stanza.Modify, stanza.BadRequest, "priority must be an integer from -128 to 127"))
					return true
				}
				prio = n
			}
			c.priority.Store(int32(prio))
			c.presence.Store(st.Copy())
			c.available.Store(true)
		case "unavailable":
			c.available.Store(false)
			c.presence.Store(nil)
		}
	}
	return false
}
