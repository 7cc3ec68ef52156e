package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
)

// RoomServices are the multi-user chat services (XEP-0045) of one
// configuration as the muc module runs them. Only the module decodes its
// options (module_options.muc: the prefix, the history a new room keeps),
// and admin may not import it, so the front end gives them through
// Env.RoomServices (muc.Services).
type RoomServices struct {
	// Addresses are the service addresses, PREFIX.DOMAIN for each served
	// domain; none when the muc module is not enabled.
	Addresses []string
	// NewRoom returns the room the service makes at room at the time
	// given, before anyone configures it: its default configuration and a
	// new occupant-id secret.
	NewRoom func(room jid.JID, now time.Time) storage.Room
}

// Rooms performs operator operations on the persistent rooms of the
// multi-user chat services, directly on storage. The CLI is another
// process than the server: a running server finds a room created here
// when the first stanza for it arrives, but a room it has already loaded
// keeps, until a restart, what it had (Long of the room commands).
type Rooms struct {
	Services RoomServices
	Store    storage.Store
}

// roomAffiliations are the affiliations of XEP-0045 §5.2 an operator may
// give, "none" removing one.
var roomAffiliations = []string{"owner", "admin", "member", "outcast", "none"}

// RoomListing is one room of room list: the room as stored, with its
// affiliation lists.
type RoomListing struct {
	Room         storage.Room
	Affiliations []storage.RoomAffiliation
}

// parseRoom parses a room's bare JID, room@service.
func parseRoom(s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, fmt.Errorf("invalid room %q: %w", s, err)
	}
	if j.Localpart() == "" || j.Resourcepart() != "" {
		return jid.JID{}, fmt.Errorf("invalid room %q: want room@service, without /nick", s)
	}
	return j, nil
}

// errNoService is the error of a room command when there is no service.
var errNoService = errors.New("no multi-user chat service: the muc module is not enabled (see modules in the config)")

// service checks that domain is one of the services.
func (r Rooms) service(domain string) error {
	if len(r.Services.Addresses) == 0 {
		return errNoService
	}
	if !slices.Contains(r.Services.Addresses, domain) {
		return fmt.Errorf("%q is not a multi-user chat service of this server (services: %s)", domain, strings.Join(r.Services.Addresses, ", "))
	}
	return nil
}

// existing returns the stored room j, whose service must be one of ours.
func (r Rooms) existing(ctx context.Context, j jid.JID) (storage.Room, error) {
	if err := r.service(j.Domainpart()); err != nil {
		return storage.Room{}, err
	}
	room, err := r.Store.Rooms().Room(ctx, j)
	if errors.Is(err, storage.ErrNotFound) {
		return room, fmt.Errorf("room %s does not exist", j)
	}
	return room, err
}

// List returns the rooms of a service, or of every service when service
// is the zero JID, sorted by service (in the order of the hosts) and name.
func (r Rooms) List(ctx context.Context, service jid.JID) ([]RoomListing, error) {
	services := r.Services.Addresses
	if len(services) == 0 {
		return nil, errNoService
	}
	if service.Domainpart() != "" {
		if err := r.service(service.Domainpart()); err != nil {
			return nil, err
		}
		services = []string{service.Domainpart()}
	}
	var out []RoomListing
	for _, s := range services {
		rooms, err := r.Store.Rooms().ListRooms(ctx, s)
		if err != nil {
			return nil, err
		}
		for _, room := range rooms {
			affs, err := r.Store.Rooms().Affiliations(ctx, room.JID)
			if err != nil {
				return nil, err
			}
			out = append(out, RoomListing{Room: room, Affiliations: affs})
		}
	}
	return out, nil
}

// Create stores a new persistent room at j with the service's defaults,
// named name and members-only if asked: the room an owner would have
// made and configured so through XEP-0045. Like ejabberdctl create_room,
// it gives the room no owner: SetAffiliation does.
func (r Rooms) Create(ctx context.Context, j jid.JID, name string, membersOnly bool) (storage.Room, error) {
	if err := r.service(j.Domainpart()); err != nil {
		return storage.Room{}, err
	}
	switch _, err := r.Store.Rooms().Room(ctx, j); {
	case err == nil:
		return storage.Room{}, fmt.Errorf("room %s already exists", j)
	case !errors.Is(err, storage.ErrNotFound):
		return storage.Room{}, err
	}
	room := r.Services.NewRoom(j, time.Now())
	room.Config.Name, room.Config.MembersOnly, room.Config.Persistent = name, membersOnly, true
	if err := r.Store.Rooms().PutRoom(ctx, room); err != nil {
		return room, err
	}
	return room, nil
}

// Destroy deletes a room, its affiliations and its archive (XEP-0313 on
// the room's JID), as its owner's destruction does (XEP-0045 §10.9).
func (r Rooms) Destroy(ctx context.Context, j jid.JID) error {
	if _, err := r.existing(ctx, j); err != nil {
		return err
	}
	if err := r.Store.Rooms().DeleteRoom(ctx, j); err != nil {
		return err
	}
	if _, err := r.Store.Archives().Purge(ctx, j, time.Time{}); err != nil {
		return fmt.Errorf("destroyed room %s, but not its archive: %w", j, err)
	}
	return nil
}

// SetAffiliation gives who the affiliation aff with room j ("none"
// removes it), keeping the nick who registered (muc#register). As in the room itself
// (§10.9), the last owner cannot stop being one; a room the CLI created
// has no owner until this gives it one.
func (r Rooms) SetAffiliation(ctx context.Context, j, who jid.JID, aff string) (storage.RoomAffiliation, error) {
	if err := checkAffiliation(aff); err != nil {
		return storage.RoomAffiliation{}, err
	}
	if _, err := r.existing(ctx, j); err != nil {
		return storage.RoomAffiliation{}, err
	}
	affs, err := r.Store.Rooms().Affiliations(ctx, j)
	if err != nil {
		return storage.RoomAffiliation{}, err
	}
	who = who.Bare()
	entry := storage.RoomAffiliation{JID: who, Affiliation: aff}
	if i := slices.IndexFunc(affs, func(a storage.RoomAffiliation) bool { return a.JID.Equal(who) }); i >= 0 {
		old := affs[i]
		entry.Nick = old.Nick
		if old.Affiliation == "owner" && aff != "owner" && !othersOwn(affs, who) {
			return entry, fmt.Errorf("%s is the last owner of room %s: make another owner first", who, j)
		}
	}
	return entry, r.Store.Rooms().SetAffiliations(ctx, j, []storage.RoomAffiliation{entry})
}

// checkAffiliation checks that aff is one of roomAffiliations.
func checkAffiliation(aff string) error {
	if !slices.Contains(roomAffiliations, aff) {
		return fmt.Errorf("invalid affiliation %q: want one of %s", aff, strings.Join(roomAffiliations, ", "))
	}
	return nil
}

// othersOwn tells whether someone other than who is an owner.
func othersOwn(affs []storage.RoomAffiliation, who jid.JID) bool {
	return slices.ContainsFunc(affs, func(a storage.RoomAffiliation) bool {
		return a.Affiliation == "owner" && !a.JID.Equal(who)
	})
}

// roomLine shows a room as room list does, tab-separated like roster list.
func roomLine(l RoomListing) string {
	c := l.Room.Config
	line := l.Room.JID.String() + "\t" + pick(c.Persistent, "persistent", "temporary") + "\t" + pick(c.MembersOnly, "members-only", "open") +
		fmt.Sprintf("\taffiliations=%d", len(l.Affiliations))
	if c.Name != "" {
		line += fmt.Sprintf("\tname=%q", c.Name)
	}
	return line
}

// pick is yes if b, else no.
func pick(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// listRooms is room list; its Value is the []RoomListing.
func listRooms(ctx context.Context, env *Env, in Input) (res Result, err error) {
	err = env.withRooms(ctx, func(r Rooms) error {
		list, err := r.List(ctx, in.JID("service"))
		if err != nil {
			return err
		}
		res = linesOf(list, roomLine)
		return nil
	})
	return res, err
}

// checkPersistent refuses room create --persistent=false: a temporary
// room that nobody is in would vanish as soon as it was made.
func checkPersistent(_ *Env, in Input) error {
	if !in.Bool("persistent") {
		return errors.New("room create makes persistent rooms only: a temporary room with nobody in it would vanish at once (a client that joins creates one)")
	}
	return nil
}

// createRoom is room create; its Value is the storage.Room.
func createRoom(ctx context.Context, env *Env, in Input) (res Result, err error) {
	err = env.withRooms(ctx, func(r Rooms) error {
		room, err := r.Create(ctx, in.JID("room"), in.String("name"), in.Bool("members-only"))
		if err != nil {
			return err
		}
		res = textf(room, "created %s (persistent, no owner yet)", room.JID)
		return nil
	})
	return res, err
}

// destroyRoom is room destroy; its Value is the room's JID.
func destroyRoom(ctx context.Context, env *Env, in Input) (res Result, err error) {
	j := in.JID("room")
	err = env.withRooms(ctx, func(r Rooms) error { return r.Destroy(ctx, j) })
	if err != nil {
		return Result{}, err
	}
	return textf(j, "destroyed %s, its affiliations and its archive", j), nil
}

// setRoomAffiliation is room affiliation; its Value is the
// storage.RoomAffiliation set.
func setRoomAffiliation(ctx context.Context, env *Env, in Input) (res Result, err error) {
	j := in.JID("room")
	err = env.withRooms(ctx, func(r Rooms) error {
		entry, err := r.SetAffiliation(ctx, j, in.JID("jid"), in.String("affiliation"))
		if err != nil {
			return err
		}
		if entry.Affiliation == "none" {
			res = textf(entry, "%s has no affiliation with %s now", entry.JID, j)
		} else {
			res = textf(entry, "%s is now %s of %s", entry.JID, entry.Affiliation, j)
		}
		return nil
	})
	return res, err
}
