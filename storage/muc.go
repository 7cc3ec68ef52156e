package storage

import (
	"context"
	"time"

	"mellium.im/xmpp/jid"
)

// Room is a persistent multi-user chat room (XEP-0045) as it is kept
// between restarts: its configuration, subject and the secret its
// occupant ids are made from. Occupants and roles are per session and are
// never stored; affiliations are kept apart (RoomAffiliation).
type Room struct {
	// JID is the room's bare JID (room@conference.example.org).
	JID jid.JID
	// Config is the room's configuration (muc#roomconfig).
	Config RoomConfig
	// Subject is the current subject, SubjectBy the nick that set it
	// ("" for the room itself) and SubjectAt when.
	Subject   string
	SubjectBy string
	SubjectAt time.Time
	// Secret is the per-room key of the XEP-0421 occupant ids, kept so
	// that the ids stay stable across restarts.
	Secret []byte
	// Creator is the bare JID that created the room ("" for one an
	// operator made), for the service's limit on rooms per user.
	Creator string
	// Created is when the room was created.
	Created time.Time
}

// RoomConfig is a room's configuration: the fields of the muc#roomconfig
// form that the service implements. It is stored as one document, so
// that a field added later needs no schema change.
type RoomConfig struct {
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	Language    string `json:"language,omitempty"`
	Persistent  bool   `json:"persistent,omitempty"`
	Public      bool   `json:"public,omitempty"`
	MembersOnly bool   `json:"members_only,omitempty"`
	Moderated   bool   `json:"moderated,omitempty"`
	// Password is required to enter when PasswordProtected is set.
	PasswordProtected bool   `json:"password_protected,omitempty"`
	Password          string `json:"password,omitempty"`
	// Whois is "moderators" (semi-anonymous) or "anyone"
	// (non-anonymous): who sees occupants' real JIDs.
	Whois string `json:"whois,omitempty"`
	// MaxUsers bounds the occupants; 0 is the service's limit.
	MaxUsers int `json:"max_users,omitempty"`
	// AllowInvites lets participants, not only admins, send mediated
	// invitations in a members-only room (and makes them members).
	AllowInvites bool `json:"allow_invites,omitempty"`
	// ChangeSubject lets participants change the subject.
	ChangeSubject bool `json:"change_subject,omitempty"`
	// HistoryLength is how many messages are sent on entering.
	HistoryLength int `json:"history_length,omitempty"`
	// Archive keeps the room's messages in its XEP-0313 archive.
	Archive bool `json:"archive,omitempty"`
	// AllowPM is who may send private messages: "anyone",
	// "participants", "moderators" or "none".
	AllowPM string `json:"allow_pm,omitempty"`
}

// RoomAffiliation is one entry of a room's affiliation lists (XEP-0045
// §5.2): a bare JID (or a domain) and its affiliation, "owner", "admin",
// "member" or "outcast", with the nick a member registered (muc#register)
// and the reason the admin gave.
type RoomAffiliation struct {
	JID         jid.JID
	Affiliation string
	Nick        string
	Reason      string
}

// Rooms holds the persistent rooms of the multi-user chat services and
// their affiliations. Rooms that are not persistent are never stored.
type Rooms interface {
	// PutRoom creates or replaces the room's row (not its affiliations).
	PutRoom(ctx context.Context, r Room) error
	// Room returns one room with its configuration; ErrNotFound if it is
	// not stored.
	Room(ctx context.Context, room jid.JID) (Room, error)
	// ListRooms returns the rooms of one service (the domain of its
	// address), or of every service when service is "", sorted by service
	// and then by name.
	ListRooms(ctx context.Context, service string) ([]Room, error)
	// DeleteRoom removes a room and its affiliations; no error if it is
	// not stored.
	DeleteRoom(ctx context.Context, room jid.JID) error
	// SetAffiliations replaces the given entries of the room's lists, in
	// one transaction: an entry with affiliation "none" is removed. The
	// room must be stored (ErrNotFound).
	SetAffiliations(ctx context.Context, room jid.JID, affs []RoomAffiliation) error
	// Affiliations returns the room's lists, sorted by JID.
	Affiliations(ctx context.Context, room jid.JID) ([]RoomAffiliation, error)
}
