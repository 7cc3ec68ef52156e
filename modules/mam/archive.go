package mam

import (
	"context"
	"encoding/xml"
	"log/slog"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// filter archives what it should of every routed message, in the archives
// of the local parties, and lets it go on once that is committed, carrying
// the recipient's stanza-id. It never stops a message: a failed write is
// logged and the message is routed without a stanza-id, since losing the
// conversation would be worse than a gap in its archive.
func (m *MAM) filter(ctx context.Context, st *router.Stanza) *router.Stanza {
	if st.Kind() != router.KindMessage {
		return st
	}
	m.stripStanzaIDs(st)
	if !archivable(st) {
		return st
	}
	sender, recipient := m.parties(ctx, st)
	if sender.Domainpart() == "" && recipient.Domainpart() == "" {
		return st
	}
	self := sender.Domainpart() != "" && sender.Equal(recipient)
	var entries [2]storage.ArchiveEntry // the sender's first
	n, toRecipient, toSender := 0, -1, false
	if sender.Domainpart() != "" && !self && m.archives(ctx, sender, outgoingPeer(st)) {
		entries[n] = storage.ArchiveEntry{Owner: sender, ArchivedMessage: storage.ArchivedMessage{With: outgoingPeer(st)}}
		toSender = true
		n++
	}
	if recipient.Domainpart() != "" && m.archives(ctx, recipient, incomingPeer(st, self)) {
		entries[n] = storage.ArchiveEntry{Owner: recipient, ArchivedMessage: storage.ArchivedMessage{With: incomingPeer(st, self)}}
		toRecipient = n
		n++
	}
	if n == 0 {
		return st
	}
	// Archived as routed, once for both: an archive's own stanza-id is
	// the result's id when the message is read back (XEP-0313 §4.2).
	raw := st.AppendXML(nil, router.NSClient)
	text := ""
	if b := st.Child("", "body"); b != nil {
		text = b.Text()
	}
	for i := range n {
		entries[i].Stanza, entries[i].Text = raw, text
	}
	if err := m.w.append(ctx, entries[:n]); err != nil {
		m.h.Logger().Error("archive message", slog.String("from", st.From.String()),
			slog.String("to", st.To.String()), slog.Any("err", err))
		return st
	}
	if toRecipient >= 0 {
		sid := router.NewElement(NSSID, "stanza-id")
		setSID(sid, recipient, entries[toRecipient].ID)
		st.Children = append(st.Children, sid)
	}
	if toSender {
		// The sender's id, for its sent carbons (§3.2; carbons keep in a
		// carbon only the ids of its account's archive): unmark takes it
		// off after carbons, before the message goes on.
		sid := router.NewElement(NSSID, "stanza-id")
		setSID(sid, sender, entries[0].ID)
		st.Children = append(st.Children, sid)
	}
	return st
}

// unmark removes the sender's stanza-id that filter put on a message for
// its sent carbons, before the message leaves for its recipient, who may
// not know the sender's archive ids (§3.2). Only the server can have put
// it there: filter strips every stanza-id by a served account first. A
// message to one's own account (its bare or a full JID, or no 'to') keeps
// its id, which is the recipient's.
func (m *MAM) unmark(_ context.Context, st *router.Stanza) *router.Stanza {
	toSelf := st.To.Domainpart() == "" || st.To.Bare().Equal(st.From.Bare())
	if st.Kind() != router.KindMessage || st.From.Localpart() == "" || toSelf ||
		!m.h.Router().ServesUsers(st.From.Domainpart()) {
		return st
	}
	sender := st.From.Bare().String()
	for _, c := range st.Elements() {
		if c.Name.Space == NSSID && c.Name.Local == "stanza-id" && c.Get("by") == sender {
			removeChild(st, c)
			return st
		}
	}
	return st
}

// parties returns the bare JIDs of the local accounts that st is between:
// its sender, if a local account, and its recipient, if a local account
// that exists (a message to a nobody is bounced, and has no archive to go
// to). A zero JID stands for no such party.
func (m *MAM) parties(ctx context.Context, st *router.Stanza) (sender, recipient jid.JID) {
	rt := m.h.Router()
	if st.From.Localpart() != "" && rt.ServesUsers(st.From.Domainpart()) {
		sender = st.From.Bare()
	}
	to := st.To
	if to.Domainpart() == "" {
		return sender, sender // to the sender's own account
	}
	if to.Localpart() == "" || !rt.ServesUsers(to.Domainpart()) {
		return sender, jid.JID{}
	}
	to = to.Bare()
	if sender.Equal(to) || len(rt.Sessions(to)) > 0 {
		return sender, to
	}
	exists, err := rt.AccountExists(ctx, to)
	if err != nil {
		// As with preferences that cannot be read: in doubt, archive;
		// a gap in the history is the worse failure.
		m.h.Logger().Error("archive: look up account", slog.String("jid", to.String()), slog.Any("err", err))
		return sender, to
	}
	if !exists {
		return sender, jid.JID{}
	}
	return sender, to
}

// outgoingPeer is the other party of st in its sender's archive: the
// recipient as addressed (XEP-0441 §2.3.2), or the account itself for a
// message with no 'to'.
func outgoingPeer(st *router.Stanza) jid.JID {
	if st.To.Domainpart() == "" {
		return st.From.Bare()
	}
	return st.To
}

// incomingPeer is the other party of st in its recipient's archive: the
// sender's full JID (XEP-0441 §2.3.3). A message within one account is
// kept once, under the JID it was addressed to, so that a query 'with' the
// account's JID finds it (XEP-0313 §4.1.1).
func incomingPeer(st *router.Stanza, self bool) jid.JID {
	if self {
		return outgoingPeer(st)
	}
	return st.From
}

// setSID makes e the stanza-id of id in owner's archive.
func setSID(e *router.Element, owner jid.JID, id string) {
	e.Attr = append(e.Attr[:0],
		xml.Attr{Name: xml.Name{Local: "id"}, Value: id},
		xml.Attr{Name: xml.Name{Local: "by"}, Value: owner.String()})
}

// stripStanzaIDs removes every <stanza-id/> that claims to be from an
// archive of this server (its 'by' is a served domain or a JID under one),
// as XEP-0359 §4 asks: only the server may say under which id one of its
// archives holds a message. Other stanza-ids (a remote room's) and
// <origin-id/> are kept.
func (m *MAM) stripStanzaIDs(st *router.Stanza) {
	found := false
	for _, c := range st.Elements() {
		if c.Name.Space == NSSID && c.Name.Local == "stanza-id" {
			found = true
			break
		}
	}
	if !found {
		return
	}
	kept := st.Children[:0]
	for _, n := range st.Children {
		if c, ok := n.(*router.Element); ok && c.Name.Space == NSSID && c.Name.Local == "stanza-id" && m.ours(c.Get("by")) {
			continue
		}
		kept = append(kept, n)
	}
	clear(st.Children[len(kept):])
	st.Children = kept
}

// ours tells whether by names this server's archives: a served user domain
// or an address in one. One that does not parse is kept: it names nothing
// of ours. A by whose domain is already in canonical form and not served
// is told apart without parsing it: every copy of a groupchat message
// carries its room's stanza-id, and a PRECIS parse per copy was a quarter
// of a room's fan-out (BenchmarkMUCFanout in internal/loadtest).
func (m *MAM) ours(by string) bool {
	if d, ok := canonicalDomain(by); ok && !m.h.Router().ServesUsers(d) {
		return false
	}
	j, err := jid.Parse(by)
	if err != nil {
		return false
	}
	return m.h.Router().ServesUsers(j.Domainpart())
}

// canonicalDomain returns the domain part of the JID s if it is already
// what jid.Parse would make of it (lower-case ASCII letters, digits, '-'
// and '.', no trailing dot, no IDNA "xn--" label), so that it compares
// with the served domains as they are; ok is false otherwise.
func canonicalDomain(s string) (domain string, ok bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" || s[len(s)-1] == '.' || strings.HasPrefix(s, "xn--") || strings.Contains(s, ".xn--") {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return "", false
		}
	}
	return s, true
}

// removeChild removes the element e from st's children.
func removeChild(st *router.Stanza, e *router.Element) {
	for i, n := range st.Children {
		if c, ok := n.(*router.Element); ok && c == e {
			st.Children = append(st.Children[:i], st.Children[i+1:]...)
			return
		}
	}
}
