// Package muc is the multi-user chat service of XEP-0045 at
// conference.DOMAIN, one for each served domain: rooms that anyone on the
// network may enter under a nick, with the roles and affiliations of the
// XEP, moderation, configuration by the owners, discussion history, and
// the modern extensions clients expect (XEP-0410 self-ping, XEP-0421
// occupant ids, XEP-0359 stanza ids by the room).
//
// It is a service on its own subdomain (router.AddService) with its own
// disco. Each room is a value with its own mutex: the stanza that reaches
// a room is handled under that lock in the goroutine that routed it (no
// goroutine per stanza), and what the room sends in answer is queued in
// the room and routed after the lock is released, in the order the room
// decided it, so that a stanza that routing hands straight back to the
// room (an error bounce) never finds the lock held by its own goroutine.
//
// Persistent rooms, their configuration, affiliations and subject are in
// the store (storage.Rooms) and are loaded at start; rooms that are not
// persistent live in memory and vanish when their last occupant leaves.
// Roles are per session and never stored.
package muc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/admin"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/modules/mam/query"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// ID is the module's ID.
const ID = "muc"

func init() { modules.RegisterWithOptions(ID, DefaultOptions(), New) }

// Creators say who may create rooms.
const (
	// CreatorsLocal lets every account of this server create rooms.
	CreatorsLocal = "local"
	// CreatorsDomain lets only the accounts of the service's own domain.
	CreatorsDomain = "domain"
	// CreatorsAnyone lets anyone on the network, remote users too.
	CreatorsAnyone = "anyone"
)

// Options are module_options.muc.
type Options struct {
	// Prefix names the service of each domain: Prefix.DOMAIN.
	Prefix string `yaml:"prefix"`
	// Creators is CreatorsLocal, CreatorsDomain or CreatorsAnyone.
	Creators string `yaml:"creators"`
	// MaxRoomsPerUser bounds the rooms one bare JID may have created
	// and still own.
	MaxRoomsPerUser int `yaml:"max_rooms_per_user"`
	// MaxOccupants bounds the occupants of one room, whatever its
	// muc#roomconfig_maxusers says.
	MaxOccupants int `yaml:"max_occupants"`
	// MaxHistory is the longest discussion history a room may keep
	// (muc#roomconfig_historylength is capped at it); DefaultHistory is
	// what a new room keeps.
	MaxHistory     int `yaml:"max_history"`
	DefaultHistory int `yaml:"default_history"`
	// MessageRate is how many groupchat and private messages per minute
	// one occupant may send on average, MessageBurst how many at once:
	// a token bucket per occupant. Beyond it the service answers
	// resource-constraint and does not reflect the message.
	MessageRate  int `yaml:"message_rate"`
	MessageBurst int `yaml:"message_burst"`
	// MaxMessageSize bounds the size of one message's XML, in bytes;
	// larger ones get policy-violation.
	MaxMessageSize int `yaml:"max_message_size"`
}

// DefaultOptions are close to Prosody's defaults, with bounds so that one
// user cannot fill the server.
func DefaultOptions() Options {
	return Options{
		Prefix: "conference", Creators: CreatorsLocal, MaxRoomsPerUser: 100, MaxOccupants: 1000,
		MaxHistory: 100, DefaultHistory: 20, MessageRate: 60, MessageBurst: 10, MaxMessageSize: 64 << 10,
	}
}

// Validate implements modules.Validator.
func (o *Options) Validate() error {
	var errs []error
	errs = append(errs, modules.CheckServicePrefix("prefix", o.Prefix))
	switch o.Creators {
	case CreatorsLocal, CreatorsDomain, CreatorsAnyone:
	default:
		errs = append(errs, fmt.Errorf("creators: %q is none of %s, %s, %s", o.Creators, CreatorsLocal, CreatorsDomain, CreatorsAnyone))
	}
	errs = append(errs,
		modules.MustBePositive("max_rooms_per_user", o.MaxRoomsPerUser),
		modules.MustBePositive("max_occupants", o.MaxOccupants),
		modules.MustBePositive("max_history", o.MaxHistory),
		modules.MustBePositive("message_rate", o.MessageRate),
		modules.MustBePositive("message_burst", o.MessageBurst),
		modules.MustBePositive("max_message_size", o.MaxMessageSize))
	if o.DefaultHistory < 0 || o.DefaultHistory > o.MaxHistory {
		errs = append(errs, fmt.Errorf("default_history: %d is not between 0 and max_history (%d)", o.DefaultHistory, o.MaxHistory))
	}
	return errors.Join(errs...)
}

// Services is what the operator's room commands (admin, `xmppd room`)
// need of the service that cfg configures: the service addresses, none
// when the module is not enabled, and the room the service makes. It is
// here because only the module decodes module_options.muc (admin may not
// import modules: cmd/xmppd hands it to admin.Env), and so that a room
// the CLI creates starts from the very defaults of one a user creates.
func Services(cfg *config.Config) (admin.RoomServices, error) {
	o := DefaultOptions()
	if err := cfg.DecodeModuleOptions(ID, &o); err != nil {
		return admin.RoomServices{}, err
	}
	if err := o.Validate(); err != nil {
		return admin.RoomServices{}, cfg.ModuleOptionsError(ID, err)
	}
	s := admin.RoomServices{NewRoom: o.newRoom}
	if !slices.Contains(cfg.Modules, ID) {
		return s, nil
	}
	for _, h := range cfg.Hosts {
		s.Addresses = append(s.Addresses, o.Prefix+"."+h.Domain)
	}
	return s, nil
}

// New returns an unstarted module with options o.
func New(o Options) *MUC { return &MUC{opts: o, now: time.Now} }

// MUC is the module: the services of every served domain and their rooms.
type MUC struct {
	opts  Options
	h     *modules.Host
	log   *slog.Logger
	store storage.Rooms
	// archives is the store of the rooms' XEP-0313 archives, queries
	// serves queries on them.
	archives storage.Archives
	queries  *query.Server
	// now is the clock, a field so that the internal tests of the rate
	// limit need no wall clock.
	now func() time.Time
	// parent maps each service address to the domain it serves.
	parent map[string]string

	mu sync.Mutex
	// rooms holds the rooms that exist, by bare JID.
	rooms map[string]*room
	// created counts the rooms that exist by the bare JID that created
	// them, for MaxRoomsPerUser.
	created map[string]int
}

var (
	_ modules.Starter          = (*MUC)(nil)
	_ modules.ShutdownNotifier = (*MUC)(nil)
)

// Start implements modules.Starter: it loads the persistent rooms and
// takes the service address of every served domain.
func (m *MUC) Start(ctx context.Context, h *modules.Host) error {
	m.h, m.log = h, h.Logger()
	m.store, m.archives = h.Store().Rooms(), h.Store().Archives()
	m.queries = &query.Server{Store: m.archives, Log: m.log, MaxPage: query.MaxPage}
	if q := h.Config().Limits.OutboundQueue / 2; q > 0 && q < query.MaxPage {
		// A full page must not overflow a local asker's queue.
		m.queries.MaxPage = q
	}
	m.parent = map[string]string{}
	m.rooms = map[string]*room{}
	m.created = map[string]int{}
	for _, d := range h.Router().Domains() {
		addr := m.opts.Prefix + "." + d
		m.parent[addr] = d
		stored, err := m.store.ListRooms(ctx, addr)
		if err != nil {
			return fmt.Errorf("muc: load rooms of %s: %w", addr, err)
		}
		for _, sr := range stored {
			affs, err := m.store.Affiliations(ctx, sr.JID)
			if err != nil {
				return fmt.Errorf("muc: load room %s: %w", sr.JID, err)
			}
			r := m.restore(sr, affs)
			m.rooms[r.key] = r
			if r.creator != "" {
				m.created[r.creator]++
			}
		}
		if err := h.AddService(addr, m.stanza); err != nil {
			return err
		}
		if err := h.HandleServiceIQ(addr, stanza.GetIQ, nsDiscoInfo, m.serviceInfo); err != nil {
			return err
		}
		if err := h.HandleServiceIQ(addr, stanza.GetIQ, nsDiscoItems, m.serviceItems); err != nil {
			return err
		}
	}
	return nil
}

// NotifyShutdown implements modules.ShutdownNotifier: every occupant
// hears that it left because the service shuts down (status 332,
// XEP-0045 §13.2).
func (m *MUC) NotifyShutdown(ctx context.Context) {
	m.mu.Lock()
	rooms := make([]*room, 0, len(m.rooms))
	for _, r := range m.rooms {
		rooms = append(rooms, r)
	}
	m.mu.Unlock()
	for _, r := range rooms {
		r.mu.Lock()
		r.shutdown()
		r.mu.Unlock()
		r.flush(ctx)
	}
}

// stanza is the service handler: every stanza to a room or an occupant
// goes to its room; stanzas to the service itself that the disco
// handlers did not take are the router's to answer.
func (m *MUC) stanza(ctx context.Context, st *router.Stanza) bool {
	if st.To.Localpart() == "" {
		return false
	}
	if st.Type() == "error" && st.Kind() != router.KindPresence && st.Kind() != router.KindMessage {
		// IQ errors to a room: nothing asked for them.
		return true
	}
	if isArchiveIQ(st) {
		m.archiveIQ(ctx, st)
		return true
	}
	m.toRoom(ctx, st)
	return true
}

// toRoom hands st to its room under the room's lock, creating the room
// for a join to a room that does not exist, forgets the room if it has
// emptied, then routes what the room queued. Forgetting comes first: a
// stanza that routing hands straight back (a bounce from a remote domain
// in backoff) must find the room gone rather than wait for it to be
// forgotten, which would come only after that very routing.
func (m *MUC) toRoom(ctx context.Context, st *router.Stanza) {
	key := st.To.Bare().String()
	for {
		m.mu.Lock()
		r := m.rooms[key]
		m.mu.Unlock()
		if r == nil {
			var err error
			if r, err = m.loadRoom(ctx, st.To.Bare()); err != nil {
				m.log.Error("muc: load room", "room", key, "err", err)
				if st.Type() != "error" && (st.Kind() != router.KindIQ || st.IsIQRequest()) {
					m.h.Route(ctx, errorFrom(st, st.To.Bare(), stanza.InternalServerError, ""))
				}
				return
			}
		}
		if r == nil && isJoin(st) {
			m.mu.Lock()
			if r = m.rooms[key]; r == nil {
				r = m.newRoom(st.To.Bare())
				m.rooms[key] = r
			}
			m.mu.Unlock()
		}
		if r == nil {
			m.noRoom(ctx, st)
			return
		}
		handled, vanish := r.handle(ctx, st)
		if !handled {
			continue
		}
		if vanish {
			m.forget(r)
		}
		r.flush(ctx)
		return
	}
}

// handle runs dispatch under the room's lock, released by a deferred
// unlock so that a panic in room code (caught and logged by the router's
// guard of service handlers) leaves the room usable; false if the room is
// gone and st must look for it again. vanish says whether the room has
// emptied and is to be forgotten.
func (r *room) handle(ctx context.Context, st *router.Stanza) (handled, vanish bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone {
		return false, false
	}
	r.dispatch(ctx, st)
	vanish = r.shouldVanish()
	if vanish {
		r.gone = true
	}
	return true, vanish
}

// loadRoom returns the room j from the store, nil if it is not stored,
// and keeps it with the rooms, unless another stanza got there first and
// took its own copy in. Start loads the persistent rooms; this finds those
// stored since (by `xmppd room create`, another process), so that a room
// an operator made works without a restart. A store that fails is an
// error, never "no such room": that would let a join create a fresh room
// over a stored one.
func (m *MUC) loadRoom(ctx context.Context, j jid.JID) (*room, error) {
	sr, err := m.store.Room(ctx, j)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	affs, err := m.store.Affiliations(ctx, j)
	if err != nil {
		return nil, err
	}
	r := m.restore(sr, affs)
	m.mu.Lock()
	defer m.mu.Unlock()
	if had := m.rooms[r.key]; had != nil {
		return had, nil
	}
	m.rooms[r.key] = r
	if r.creator != "" {
		m.created[r.creator]++
	}
	return r, nil
}

// forget removes r from the rooms, unless another room took its place.
func (m *MUC) forget(r *room) {
	m.mu.Lock()
	if m.rooms[r.key] == r {
		delete(m.rooms, r.key)
		if r.creator != "" {
			m.created[r.creator]--
		}
	}
	m.mu.Unlock()
}

// isJoin tells whether st is available presence to an occupant JID: what
// creates a room that does not exist.
func isJoin(st *router.Stanza) bool {
	return st.Kind() == router.KindPresence && st.Type() == "" && st.To.Resourcepart() != ""
}

// noRoom answers a stanza to a room that does not exist: item-not-found,
// except for what needs no answer.
func (m *MUC) noRoom(ctx context.Context, st *router.Stanza) {
	switch {
	case st.Type() == "error", st.Kind() == router.KindPresence:
		// Unavailable presence to a room that is gone needs no answer.
		if st.Kind() == router.KindPresence && st.Type() == "" {
			m.h.Route(ctx, errorFrom(st, st.To.Bare(), stanza.ItemNotFound, ""))
		}
	case st.Kind() == router.KindIQ && !st.IsIQRequest():
	default:
		m.h.Route(ctx, errorFrom(st, st.To.Bare(), stanza.ItemNotFound, ""))
	}
}

// room returns the room with the bare JID given, or nil.
func (m *MUC) room(j jid.JID) *room {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rooms[j.Bare().String()]
}

// roomsOf returns the rooms of one service, or of all when service is "".
func (m *MUC) roomsOf(service string) []*room {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*room
	for _, r := range m.rooms {
		if service == "" || r.jid.Domainpart() == service {
			out = append(out, r)
		}
	}
	return out
}

// countCreated records that who created a room.
func (m *MUC) countCreated(who string) {
	m.mu.Lock()
	m.created[who]++
	m.mu.Unlock()
}

// mayCreate tells whether who may create a room on service, and why not.
// It takes the module's lock, never a room's, so that the room being
// created may hold its own.
func (m *MUC) mayCreate(service string, who jid.JID) (stanza.Condition, string) {
	local := who.Localpart() != "" && m.h.Router().ServesUsers(who.Domainpart())
	switch m.opts.Creators {
	case CreatorsLocal:
		if !local {
			return stanza.NotAllowed, "Only users of this server may create rooms"
		}
	case CreatorsDomain:
		if !local || who.Domainpart() != m.parent[service] {
			return stanza.NotAllowed, "Only users of " + m.parent[service] + " may create rooms"
		}
	}
	m.mu.Lock()
	owned := m.created[who.Bare().String()]
	m.mu.Unlock()
	if owned >= m.opts.MaxRoomsPerUser {
		return stanza.NotAllowed, fmt.Sprintf("You may create at most %d rooms", m.opts.MaxRoomsPerUser)
	}
	return "", ""
}
