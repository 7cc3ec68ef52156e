package muc

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"sort"
	"strings"
	"time"

	"sync"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// Namespaces of XEP-0045 and of the XEPs the rooms use.
const (
	NS           = "http://jabber.org/protocol/muc"
	NSUser       = NS + "#user"
	NSAdmin      = NS + "#admin"
	NSOwner      = NS + "#owner"
	NSStableID   = NS + "#stable_id"
	NSSelfPing   = NS + "#self-ping-optimization"
	NSOccupantID = "urn:xmpp:occupant-id:0"
	NSStanzaID   = "urn:xmpp:sid:0"
	NSDelay      = "urn:xmpp:delay"
	NSPing       = "urn:xmpp:ping"
	NSRegister   = "jabber:iq:register"
	NSRetract    = "urn:xmpp:message-retract:1"  // XEP-0424
	NSModerate   = "urn:xmpp:message-moderate:1" // XEP-0425
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsData       = "jabber:x:data"
)

// Roles (XEP-0045 §5.1), in rising order of privilege.
const (
	roleNone        = "none"
	roleVisitor     = "visitor"
	roleParticipant = "participant"
	roleModerator   = "moderator"
)

// Affiliations (§5.2), in rising order of privilege.
const (
	affOutcast = "outcast"
	affNone    = "none"
	affMember  = "member"
	affAdmin   = "admin"
	affOwner   = "owner"
)

var roleRank = map[string]int{roleNone: 0, roleVisitor: 1, roleParticipant: 2, roleModerator: 3}

var affRank = map[string]int{affOutcast: -1, affNone: 0, affMember: 1, affAdmin: 2, affOwner: 3}

// Whois values of muc#roomconfig_whois.
const (
	whoisModerators = "moderators"
	whoisAnyone     = "anyone"
)

// room is one room. Every field below mu is guarded by it.
type room struct {
	m   *MUC
	key string
	jid jid.JID

	mu sync.Mutex
	// gone is set when the room is destroyed or has vanished; a stanza
	// that finds it looks the room up again.
	gone bool
	// fresh is a room made for a join that has not been handled yet: the
	// join creates it, or it vanishes.
	fresh bool
	// locked is a room created and not yet configured (§10.1).
	locked  bool
	cfg     storage.RoomConfig
	affs    map[string]storage.RoomAffiliation
	occ     map[string]*occupant // by nick
	byReal  map[string]*occupant // by real full JID
	history []historyEntry
	subject struct {
		text, by string
		at       time.Time
	}
	secret  []byte
	creator string
	created time.Time
	// invited remembers, by bare JID, who invited whom, so that only a
	// decline of a real invitation is passed on.
	invited map[string]jid.JID
	// out holds what the room sends, in order, until flush routes it;
	// flushing is set while a goroutine does.
	out      []*router.Stanza
	flushing bool
	// memo is the last occupant JID and occupant id the room computed:
	// a presence broadcast of one occupant to a thousand others asked
	// for each a thousand times, and their PRECIS and HMAC were half of
	// the broadcast (BenchmarkMUCFanout's entering, in internal/loadtest).
	memo struct {
		nick   string
		jid    jid.JID
		jidSet bool
		bare   string
		id     string
	}
}

// occupant is one occupant of a room: one real full JID under one nick.
type occupant struct {
	nick string
	real jid.JID
	role string
	// pres is the occupant's last available presence as it sent it.
	pres *router.Element
	// tokens and filled are the occupant's message token bucket.
	tokens float64
	filled time.Time
}

// historyEntry is one message of the discussion history: the message as
// the room broadcast it (without 'to') and when.
type historyEntry struct {
	msg *router.Element
	at  time.Time
}

// newRoom returns a fresh room for a join to j.
func (m *MUC) newRoom(j jid.JID) *room {
	r := m.roomFrom(m.opts.newRoom(j, m.now()))
	r.fresh = true
	return r
}

// newRoom is the stored form of a room the service makes at j at the
// time now: the default configuration, a new occupant-id secret. Both
// the service's own room creation and the operator's `xmppd room create`
// (through Services) start from it, so that a room looks the same however
// it was made.
func (o Options) newRoom(j jid.JID, now time.Time) storage.Room {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails (Go 1.24)
	return storage.Room{JID: j, Config: o.defaultConfig(), Secret: secret, Created: now.UTC()}
}

// defaultConfig is the configuration of a new room: Prosody's defaults
// (public, open, unmoderated, semi-anonymous, temporary), with history.
func (o Options) defaultConfig() storage.RoomConfig {
	return storage.RoomConfig{Public: true, Whois: whoisModerators, HistoryLength: o.DefaultHistory,
		AllowPM: "anyone", AllowInvites: false, ChangeSubject: false}
}

// roomFrom builds the room of a stored one, without occupants.
func (m *MUC) roomFrom(sr storage.Room) *room {
	r := &room{m: m, key: sr.JID.String(), jid: sr.JID, affs: map[string]storage.RoomAffiliation{},
		occ: map[string]*occupant{}, byReal: map[string]*occupant{}, invited: map[string]jid.JID{}}
	r.cfg, r.secret, r.creator, r.created = sr.Config, sr.Secret, sr.Creator, sr.Created
	r.subject.text, r.subject.by, r.subject.at = sr.Subject, sr.SubjectBy, sr.SubjectAt
	return r
}

// restore builds a room from the store.
func (m *MUC) restore(sr storage.Room, affs []storage.RoomAffiliation) *room {
	r := m.roomFrom(sr)
	if len(r.secret) == 0 {
		r.secret = make([]byte, 32)
		_, _ = rand.Read(r.secret)
	}
	for _, a := range affs {
		r.affs[a.JID.Bare().String()] = a
	}
	return r
}

// stored is the room as the store keeps it.
func (r *room) stored() storage.Room {
	return storage.Room{JID: r.jid, Config: r.cfg, Subject: r.subject.text, SubjectBy: r.subject.by,
		SubjectAt: r.subject.at, Secret: r.secret, Creator: r.creator, Created: r.created}
}

// save writes the room (not its affiliations) if it is persistent.
func (r *room) save(ctx context.Context) error {
	if !r.cfg.Persistent {
		return nil
	}
	return r.m.store.PutRoom(ctx, r.stored())
}

// shouldVanish tells whether the room is to be forgotten: it has no
// occupants and is not persistent (or was destroyed).
func (r *room) shouldVanish() bool {
	return r.gone || len(r.occ) == 0 && !r.cfg.Persistent
}

// send queues st for flush.
func (r *room) send(st *router.Stanza) { r.out = append(r.out, st) }

// flush routes what the room queued, in order, without the room's lock.
// One goroutine at a time does it; others that queue meanwhile leave
// their stanzas to it, so the order the room decided is kept and a
// bounce that comes straight back to the room only queues.
func (r *room) flush(ctx context.Context) {
	r.mu.Lock()
	if r.flushing {
		r.mu.Unlock()
		return
	}
	r.flushing = true
	r.mu.Unlock()
	done := false
	defer func() {
		if !done {
			// Routing panicked: let the next flush send again.
			r.mu.Lock()
			r.flushing = false
			r.mu.Unlock()
		}
	}()
	for {
		r.mu.Lock()
		batch := r.out
		r.out = nil
		if len(batch) == 0 {
			// Under the same lock as the check, so that nothing queued
			// meanwhile is left behind.
			r.flushing, done = false, true
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		for _, st := range batch {
			r.m.h.Route(ctx, st)
		}
	}
}

// dispatch handles one stanza to the room or to one of its occupants.
func (r *room) dispatch(ctx context.Context, st *router.Stanza) {
	switch st.Kind() {
	case router.KindPresence:
		r.presence(ctx, st)
	case router.KindMessage:
		if st.To.Resourcepart() != "" {
			r.private(ctx, st)
		} else {
			r.message(ctx, st)
		}
	case router.KindIQ:
		if !st.IsIQRequest() {
			return
		}
		if st.To.Resourcepart() != "" {
			r.occupantIQ(st)
			return
		}
		r.iq(ctx, st)
	}
}

// affiliation returns the affiliation of a real JID: its bare JID's
// entry, or else its domain's.
func (r *room) affiliation(real jid.JID) string {
	if a, ok := r.affs[real.Bare().String()]; ok {
		return a.Affiliation
	}
	if a, ok := r.affs[real.Domainpart()]; ok {
		return a.Affiliation
	}
	return affNone
}

// defaultRole is the role an occupant with affiliation aff gets on
// entering (§5.1.2).
func (r *room) defaultRole(aff string) string {
	switch aff {
	case affOwner, affAdmin:
		return roleModerator
	case affMember:
		return roleParticipant
	}
	if r.cfg.Moderated {
		return roleVisitor
	}
	return roleParticipant
}

// occupantJID is the occupant JID of a nick. The last one is remembered:
// a presence broadcast asks for the same one once per receiver.
func (r *room) occupantJID(nick string) jid.JID {
	if m := &r.memo; m.jidSet && m.nick == nick {
		return m.jid
	}
	j, err := jid.New(r.jid.Localpart(), r.jid.Domainpart(), nick)
	if err != nil {
		// Nicks come from parsed JIDs, so they make JIDs again.
		return r.jid
	}
	r.memo.nick, r.memo.jid, r.memo.jidSet = nick, j, true
	return j
}

// occupantJIDChecked is the occupant JID of a nick, or the error that
// says it makes none.
func (r *room) occupantJIDChecked(nick string) (jid.JID, error) {
	return jid.New(r.jid.Localpart(), r.jid.Domainpart(), nick)
}

// occupantID is the XEP-0421 id of a real JID in this room: an HMAC of
// its bare JID under the room's secret, the same for every session of
// the user and across restarts, and telling nothing of the JID.
// The last one is remembered, as in occupantJID.
func (r *room) occupantID(real jid.JID) string {
	bare := real.Bare().String()
	if m := &r.memo; m.id != "" && m.bare == bare {
		return m.id
	}
	mac := hmac.New(sha256.New, r.secret)
	mac.Write([]byte(bare))
	id := base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:18])
	r.memo.bare, r.memo.id = bare, id
	return id
}

// maxUsers is the most occupants the room lets in.
func (r *room) maxUsers() int {
	if r.cfg.MaxUsers > 0 && r.cfg.MaxUsers < r.m.opts.MaxOccupants {
		return r.cfg.MaxUsers
	}
	return r.m.opts.MaxOccupants
}

// nonAnonymous tells whether every occupant sees real JIDs.
func (r *room) nonAnonymous() bool { return r.cfg.Whois == whoisAnyone }

// occupants returns the occupants sorted by nick, so that broadcasts go
// out in a stable order.
func (r *room) occupants() []*occupant {
	out := make([]*occupant, 0, len(r.occ))
	for _, o := range r.occ {
		out = append(out, o)
	}
	// SortFunc, not sort.Slice: this runs for every message to a room,
	// and its reflection-based swaps were a tenth of a large room's
	// fan-out (BenchmarkMUCFanout in internal/loadtest).
	slices.SortFunc(out, func(a, b *occupant) int { return strings.Compare(a.nick, b.nick) })
	return out
}

// owners returns the bare JIDs with affiliation owner, sorted.
func (r *room) withAffiliation(aff string) []storage.RoomAffiliation {
	var out []storage.RoomAffiliation
	for _, a := range r.affs {
		if a.Affiliation == aff {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].JID.String() < out[j].JID.String() })
	return out
}

// reservedBy returns the bare JID that registered nick, if any.
func (r *room) reservedBy(nick string) (string, bool) {
	for k, a := range r.affs {
		if a.Nick != "" && a.Nick == nick {
			return k, true
		}
	}
	return "", false
}

// errorFrom is the error answer to st from the address from, with the
// 'by' of XEP-0045's examples, and for a presence the <x/> of the join.
func errorFrom(st *router.Stanza, by jid.JID, cond stanza.Condition, text string) *router.Stanza {
	return typedErrorFrom(st, by, router.DefaultErrorType(cond), cond, text)
}

// typedErrorFrom is errorFrom with an error type other than the
// condition's default: the full room's wait (§7.2.10).
func typedErrorFrom(st *router.Stanza, by jid.JID, typ stanza.ErrorType, cond stanza.Condition, text string) *router.Stanza {
	e := st.ErrorReply(typ, cond, text)
	if er := e.Child("", "error"); er != nil {
		er.SetAttr("by", by.String())
	}
	if st.Kind() == router.KindPresence {
		x := router.NewElement(NS, "x")
		e.Children = append([]router.Node{x}, e.Children...)
	}
	return e
}

// fail queues the error answer to st.
func (r *room) fail(st *router.Stanza, cond stanza.Condition, text string) {
	if st.Type() == "error" || st.Kind() == router.KindIQ && !st.IsIQRequest() {
		return
	}
	typ := router.DefaultErrorType(cond)
	if cond == stanza.ServiceUnavailable && st.Kind() == router.KindPresence {
		// A full room: try again later (§7.2.10).
		typ = stanza.Wait
	}
	r.send(typedErrorFrom(st, r.jid, typ, cond, text))
}

// newStanza returns a stanza of kind from one address to another.
func newStanza(kind string, from, to jid.JID, attrs ...string) *router.Stanza {
	st := &router.Stanza{Element: router.NewElement("", kind, attrs...)}
	st.SetFrom(from)
	st.SetTo(to)
	return st
}

// copyTo is a copy of msg, a stanza the room built with its 'from', to
// to. From is set along with the attribute: routing picks the s2s stream
// by the sender's domain, so a copy without it cannot leave for a remote
// occupant.
func (r *room) copyTo(msg *router.Element, to jid.JID) *router.Stanza {
	from, err := jid.Parse(msg.Get("from"))
	if err != nil {
		from = r.jid // never: the room wrote the attribute
	}
	st := &router.Stanza{Element: msg.Copy()}
	st.SetFrom(from)
	st.SetTo(to)
	return st
}

// delay is the XEP-0203 stamp the room puts on history and subject.
func (r *room) delay(at time.Time) *router.Element {
	return router.NewElement(NSDelay, "delay", "from", r.jid.String(), "stamp", at.UTC().Format("2006-01-02T15:04:05.000000Z"))
}
