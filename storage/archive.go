package storage

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"

	"mellium.im/xmpp/jid"
)

// ArchivedMessage is one message in an archive (XEP-0313): an account's,
// or later a room's. The same message exchanged between two local accounts
// is in both archives, under two IDs.
type ArchivedMessage struct {
	// ID is the archive's id of the message, the XEP-0359 stanza-id the
	// server put on it (by the owner's JID). It is unique in the archive
	// and never reused: NewArchiveID makes such ids, and the store finds
	// them through its time index by the stamp they carry. The store takes
	// other ids as given (archives written before ids carried their stamp)
	// and finds them by reading the owner's archive.
	ID string
	// Stamp is when the server archived it, in UTC to the microsecond.
	// An archive is in stamp order (and in insertion order for equal
	// stamps), so that a page is found through the time index.
	Stamp time.Time
	// With is the other party: the sender of an incoming message, the
	// recipient of an outgoing one, as a full or bare JID as it was in the
	// stanza. Queries match it by bare JID or exactly (XEP-0313 §4.1.1).
	With jid.JID
	// Stanza is the message as archived (XML): as it was routed, without
	// the stanza-id of this archive, which is ID.
	Stanza []byte
	// Text is what full-text search looks in: the body, or "" for a
	// message without one. Filled on Append; Query may leave it empty.
	Text string
}

// ArchiveQuery selects messages of one archive (XEP-0313 §4.1, with the
// extensions of urn:xmpp:mam:2#extended) and one page of them (XEP-0059).
// Zero fields do not filter.
type ArchiveQuery struct {
	// With keeps the messages exchanged with this JID: a bare JID matches
	// every resource of it, a full JID only that resource, a domain JID
	// only the domain itself.
	With jid.JID
	// Start and End keep messages archived at or after Start, at or
	// before End.
	Start, End time.Time
	// AfterID and BeforeID keep messages after, or before, the message
	// with that ID, exclusive (#extended). An ID not in the archive is
	// ErrNotFound.
	AfterID, BeforeID string
	// IDs keeps only the messages with these IDs (#extended); IDs not in
	// the archive are skipped.
	IDs []string
	// Text keeps messages whose Text matches the words given, as the
	// database's full-text search understands them.
	Text string

	// Max is the page size, at most the module's limit; 0 asks for no
	// messages, only the count (XEP-0059 §2.6).
	Max int
	// CountLimit bounds the work of counting the matches: when more than
	// CountLimit messages match, ArchivePage.Count is -1, unknown. 0
	// counts every match, which costs a read of each (XEP-0059 lets the
	// count be left out when it is exceptionally costly).
	CountLimit int
	// After asks for the page of messages after the one with this ID
	// (RSM <after/>); ErrNotFound if it is not in the archive.
	After string
	// Before asks for the page before the one with this ID (RSM
	// <before>id</before>); with LastPage and no ID, the last page (RSM
	// <before/>). ErrNotFound if the ID is not in the archive.
	Before   string
	LastPage bool
}

// ArchivePage is one page of a query's result, in archive order (oldest
// first) whichever end it was taken from.
type ArchivePage struct {
	Messages []ArchivedMessage
	// Complete says that the page reaches the end of the result in the
	// direction of the query: the newest match when paging forwards, the
	// oldest when paging backwards (LastPage or Before), as <fin
	// complete='true'/> does (XEP-0313 §4.3).
	Complete bool
	// Count is how many messages the whole query matches, without
	// paging (RSM <count/>), or -1 when there are more than the query's
	// CountLimit.
	Count int
}

// ArchiveBounds are the first and last messages of an archive (XEP-0313
// §5.1, metadata); a zero ID means an empty archive.
type ArchiveBounds struct {
	FirstID, LastID       string
	FirstStamp, LastStamp time.Time
}

// ArchiveStats describes one archive for an operator.
type ArchiveStats struct {
	Owner    jid.JID
	Messages int64
	// Bytes is the size of the stored stanzas.
	Bytes int64
	ArchiveBounds
}

// ArchiveMode is an archiving preference (XEP-0313 §6).
type ArchiveMode string

// The modes of XEP-0313 §6.
const (
	ArchiveAlways ArchiveMode = "always"
	ArchiveNever  ArchiveMode = "never"
	ArchiveRoster ArchiveMode = "roster"
)

// ArchivePrefs are an account's archiving preferences (XEP-0441, formerly
// XEP-0313 §6): the default mode and the JIDs always and never archived,
// which win over it (never over always). The JIDs are kept as given: a
// bare JID stands for all of its resources, a full JID for one.
type ArchivePrefs struct {
	Default ArchiveMode
	Always  []jid.JID
	Never   []jid.JID
}

// Archives holds message archives. An archive is named by its owner's bare
// JID. Accounts' archives are deleted with the account (Users.Delete).
type Archives interface {
	// Append stores each message in its owner's archive, all in one
	// transaction, so that the archiving of many messages at once costs
	// one commit. When it returns nil, every message is stored; when it
	// fails, none is. An id of NewArchiveID that does not carry its
	// entry's Stamp is an error. The store does not look for ids already
	// in the archive: NewArchiveID's are unique.
	Append(ctx context.Context, entries []ArchiveEntry) error
	// Query returns one page of the owner's messages that q selects.
	Query(ctx context.Context, owner jid.JID, q ArchiveQuery) (ArchivePage, error)
	// Bounds returns the first and last message of the owner's archive.
	Bounds(ctx context.Context, owner jid.JID) (ArchiveBounds, error)
	// LastStamp returns the latest stamp in any archive, or the zero time
	// if all are empty: a writer starts its stamps after it, so that they
	// keep rising across restarts whatever the clock did meanwhile.
	LastStamp(ctx context.Context) (time.Time, error)
	// Replace puts stanza and text in place of the stored stanza and
	// text of the owner's message id, which keeps its id, stamp and
	// other party: the tombstone of a retracted message (XEP-0424 §5,
	// XEP-0425 §5), which the archive must keep in its place so that
	// clients that sync later see what became of it. ErrNotFound if id
	// is not in the archive.
	Replace(ctx context.Context, owner jid.JID, id string, stanza []byte, text string) error
	// Purge deletes the owner's messages archived before the time given,
	// or all of them for a zero time, and says how many it deleted.
	Purge(ctx context.Context, owner jid.JID, before time.Time) (int64, error)
	// Expire deletes at most limit messages archived before the time
	// given, from every archive, oldest first, and says how many: a
	// retention job calls it until it deletes fewer than limit, so that
	// no transaction holds the database for long.
	Expire(ctx context.Context, before time.Time, limit int) (int64, error)
	// Stats describes the owner's archive, or every archive, sorted by
	// owner, when owner is the zero JID.
	Stats(ctx context.Context, owner jid.JID) ([]ArchiveStats, error)
	// Prefs returns the account's preferences; ErrNotFound if it never
	// set any, and the server's default applies.
	Prefs(ctx context.Context, owner jid.JID) (ArchivePrefs, error)
	// SetPrefs stores the account's preferences; ErrNotFound if there is
	// no such account.
	SetPrefs(ctx context.Context, owner jid.JID, prefs ArchivePrefs) error
}

// ArchiveEntry is one message to store in Owner's archive.
type ArchiveEntry struct {
	Owner jid.JID
	ArchivedMessage
}

// NewArchiveID returns a new archive id for a message archived at stamp:
// 32 lowercase hex digits, the stamp in Unix microseconds then 64 random
// bits. The stamp in it lets the store find a message by id through the
// (owner, time) index every query needs anyway, instead of keeping an index
// of ids beside it (one more index entry to write per message); the random
// half keeps ids unique when two messages share a microsecond and
// unguessable from one another.
func NewArchiveID(stamp time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(stamp.UnixMicro()))
	_, _ = rand.Read(b[8:]) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b[:])
}

// ArchiveIDStamp returns the stamp an id of NewArchiveID carries, and false
// for any other id: an id from before, or one a client made up.
func ArchiveIDStamp(id string) (time.Time, bool) {
	if len(id) != 32 {
		return time.Time{}, false
	}
	var b [16]byte
	for i := 0; i < len(id); i++ {
		// Lower case only, so that each id has one spelling.
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return time.Time{}, false
		}
	}
	if _, err := hex.Decode(b[:], []byte(id)); err != nil {
		return time.Time{}, false
	}
	us := int64(binary.BigEndian.Uint64(b[:8]))
	if us < 0 {
		return time.Time{}, false
	}
	return time.UnixMicro(us).UTC(), true
}
