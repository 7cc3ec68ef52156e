package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
)

// archives implements storage.Archives over the archive_messages,
// archive_prefs and archive_pref_jids tables (migrations 0004, 0005, 0006
// and 0012).
type archives struct{ db *DB }

var _ storage.Archives = archives{}

// Archives returns the message archives (XEP-0313).
func (db *DB) Archives() storage.Archives { return archives{db} }

// archiveColumns are the columns Append fills, one parameter each.
const archiveColumns = 9

// appendChunk is how many messages one INSERT stores on SQLite: one
// statement per message would be parsed once each, and the parameters of
// one statement are limited (32766).
const appendChunk = 100

// insertArchived returns an INSERT of n messages; the triggers or the
// generated column of migration 0005 index their bodies.
func insertArchived(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO archive_messages
	(domain, local, id, stamp, with_bare, with_resource, stanza, size, body) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range archiveColumns {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteString("$" + strconv.Itoa(i*archiveColumns+c+1))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// appendUnnest is PostgreSQL's INSERT of a batch: one array per column,
// so that its text is the same whatever the batch's size, and as a
// prepared statement it is parsed and planned once per connection, where
// a VALUES list of n rows would be parsed and planned at every commit.
const appendUnnest = `INSERT INTO archive_messages
	(domain, local, id, stamp, with_bare, with_resource, stanza, size, body)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[],
		$5::text[], $6::text[], $7::bytea[], $8::bigint[], $9::text[])`

// checkEntry refuses an entry whose id claims a stamp other than its own.
func checkEntry(e storage.ArchiveEntry) error {
	if st, ok := storage.ArchiveIDStamp(e.ID); ok && !st.Equal(e.Stamp.Truncate(time.Microsecond)) {
		return fmt.Errorf("id %s carries %s, not the stamp %s", e.ID, st, e.Stamp)
	}
	return nil
}

// Append inserts the batch in one transaction: on PostgreSQL with one
// prepared INSERT of arrays, a transaction of its own, after checking every
// entry; on SQLite with one INSERT per appendChunk messages, checking the
// entries as their chunk is built, so that a bad one late in a long batch
// undoes the chunks before it.
func (s archives) Append(ctx context.Context, entries []storage.ArchiveEntry) error {
	if len(entries) == 0 {
		return nil
	}
	defer s.db.observe(OpArchiveAppend, time.Now())
	if s.db.dialect.driver == postgres.driver {
		return s.appendArrays(ctx, entries)
	}
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		for chunk := range slices.Chunk(entries, appendChunk) {
			args := make([]any, 0, len(chunk)*archiveColumns)
			for _, e := range chunk {
				if err := checkEntry(e); err != nil {
					return err
				}
				domain, local := ownerKey(e.Owner)
				args = append(args, domain, local, e.ID, e.Stamp.UnixMicro(),
					e.With.Bare().String(), e.With.Resourcepart(), notNil(e.Stanza), len(e.Stanza), e.Text)
			}
			if _, err := tx.ExecContext(ctx, insertArchived(len(chunk)), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: append %d archived messages: %w", len(entries), err)
	}
	return nil
}

// appendArrays is Append on PostgreSQL.
func (s archives) appendArrays(ctx context.Context, entries []storage.ArchiveEntry) error {
	n := len(entries)
	var (
		domains, locals, ids, bares, resources, bodies = make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		stamps, sizes = make([]int64, n), make([]int64, n)
		stanzas       = make([][]byte, n)
	)
	for i, e := range entries {
		if err := checkEntry(e); err != nil {
			return fmt.Errorf("storage: append %d archived messages: %w", n, err)
		}
		domains[i], locals[i] = ownerKey(e.Owner)
		ids[i], stamps[i] = e.ID, e.Stamp.UnixMicro()
		bares[i], resources[i] = e.With.Bare().String(), e.With.Resourcepart()
		stanzas[i], sizes[i], bodies[i] = notNil(e.Stanza), int64(len(e.Stanza)), e.Text
	}
	// One statement is atomic by itself: no BEGIN and COMMIT, which
	// would be two more round trips to the database per batch.
	st, err := s.db.prepared(ctx, appendUnnest)
	if err == nil {
		_, err = st.ExecContext(ctx, pq.StringArray(domains), pq.StringArray(locals),
			pq.StringArray(ids), pq.Int64Array(stamps), pq.StringArray(bares), pq.StringArray(resources),
			pq.ByteaArray(stanzas), pq.Int64Array(sizes), pq.StringArray(bodies))
	}
	if err != nil {
		return fmt.Errorf("storage: append %d archived messages: %w", n, err)
	}
	return nil
}

// Query reads the count and the page in one snapshot, so that they agree
// while messages are appended. Pages are found in (stamp, seq) order
// through an index, in either direction, never with OFFSET; the count is a
// COUNT of at most CountLimit+1 matches.
func (s archives) Query(ctx context.Context, owner jid.JID, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	defer s.db.observe(OpArchiveQuery, time.Now())
	var page storage.ArchivePage
	err := s.db.inReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		page, err = s.query(ctx, tx, owner, q)
		return err
	})
	if err != nil {
		return storage.ArchivePage{}, fmt.Errorf("storage: query archive of %s: %w", owner.Bare(), err)
	}
	return page, nil
}

// archiveFilter builds the WHERE clause of a query, with its arguments.
type archiveFilter struct {
	where []string
	args  []any
}

// add appends a condition in which each "?" stands for the next of args.
func (f *archiveFilter) add(cond string, args ...any) {
	var b strings.Builder
	for _, r := range cond {
		if r == '?' {
			f.args = append(f.args, args[0])
			args = args[1:]
			b.WriteString("$" + strconv.Itoa(len(f.args)))
			continue
		}
		b.WriteRune(r)
	}
	f.where = append(f.where, b.String())
}

// clause returns the conditions, ANDed.
func (f *archiveFilter) clause() string { return strings.Join(f.where, " AND ") }

// clone returns a copy that conditions can be added to.
func (f *archiveFilter) clone() *archiveFilter {
	return &archiveFilter{where: slices.Clone(f.where), args: slices.Clone(f.args)}
}

// archivePos is where a message is in its archive's order.
type archivePos struct{ stamp, seq int64 }

// findArchived returns the position of the message id in the owner's
// archive: through the time index when the id carries its stamp, else
// (an id from before migration 0006) through the partial index of such
// ids.
func findArchived(ctx context.Context, tx *sql.Tx, domain, local, id string) (archivePos, error) {
	var p archivePos
	var row *sql.Row
	if st, ok := storage.ArchiveIDStamp(id); ok {
		row = tx.QueryRowContext(ctx, `SELECT stamp, seq FROM archive_messages
			WHERE domain = $1 AND local = $2 AND stamp = $3 AND id = $4`, domain, local, st.UnixMicro(), id)
	} else {
		// length(id) <> 32 lets both databases use the partial index of
		// such ids (migration 0006), which new rows never enter.
		row = tx.QueryRowContext(ctx, `SELECT stamp, seq FROM archive_messages
			WHERE domain = $1 AND local = $2 AND id = $3 AND length(id) <> 32`, domain, local, id)
	}
	if err := row.Scan(&p.stamp, &p.seq); err != nil {
		if err == sql.ErrNoRows {
			return archivePos{}, storage.ErrNotFound
		}
		return archivePos{}, err
	}
	return p, nil
}

// addIDs keeps the messages with one of ids: those that carry their stamp
// through the time index, others by their id alone.
func (f *archiveFilter) addIDs(ids []string) {
	var stamped, stamps, other []any
	for _, id := range ids {
		if st, ok := storage.ArchiveIDStamp(id); ok {
			stamped, stamps = append(stamped, id), append(stamps, st.UnixMicro())
		} else {
			other = append(other, id)
		}
	}
	marks := func(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }
	switch {
	case len(other) == 0:
		f.add("stamp IN ("+marks(len(stamps))+") AND id IN ("+marks(len(stamped))+")", append(stamps, stamped...)...)
	case len(stamped) == 0:
		f.add("id IN ("+marks(len(other))+") AND length(id) <> 32", other...)
	default:
		f.add("(stamp IN ("+marks(len(stamps))+") AND id IN ("+marks(len(stamped))+") OR id IN ("+marks(len(other))+") AND length(id) <> 32)",
			append(append(stamps, stamped...), other...)...)
	}
}

func (s archives) query(ctx context.Context, tx *sql.Tx, owner jid.JID, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	domain, local := ownerKey(owner)
	find := func(id, what string) (archivePos, error) {
		p, err := findArchived(ctx, tx, domain, local, id)
		if err != nil {
			return archivePos{}, fmt.Errorf("%s %q: %w", what, id, err)
		}
		return p, nil
	}
	f := &archiveFilter{}
	f.add("domain = ? AND local = ?", domain, local)
	if !q.With.Equal(jid.JID{}) {
		if q.With.Localpart() != "" && q.With.Resourcepart() == "" {
			f.add("with_bare = ?", q.With.Bare().String())
		} else {
			f.add("with_bare = ? AND with_resource = ?", q.With.Bare().String(), q.With.Resourcepart())
		}
	}
	if !q.Start.IsZero() {
		f.add("stamp >= ?", q.Start.UnixMicro())
	}
	if !q.End.IsZero() {
		f.add("stamp <= ?", q.End.UnixMicro())
	}
	if q.AfterID != "" {
		p, err := find(q.AfterID, "after-id")
		if err != nil {
			return storage.ArchivePage{}, err
		}
		f.add("(stamp, seq) > (?, ?)", p.stamp, p.seq)
	}
	if q.BeforeID != "" {
		p, err := find(q.BeforeID, "before-id")
		if err != nil {
			return storage.ArchivePage{}, err
		}
		f.add("(stamp, seq) < (?, ?)", p.stamp, p.seq)
	}
	if len(q.IDs) > 0 {
		f.addIDs(q.IDs)
	}
	if words := strings.Fields(q.Text); len(words) > 0 {
		f.add(s.db.dialect.archiveText, s.db.dialect.textQuery(words))
	}

	var page storage.ArchivePage
	countQuery := `SELECT COUNT(*) FROM archive_messages WHERE ` + f.clause()
	if q.CountLimit > 0 {
		countQuery = `SELECT COUNT(*) FROM (SELECT 1 FROM archive_messages WHERE ` + f.clause() +
			` LIMIT ` + strconv.Itoa(q.CountLimit+1) + `) AS matches`
	}
	if err := tx.QueryRowContext(ctx, countQuery, f.args...).Scan(&page.Count); err != nil {
		return storage.ArchivePage{}, fmt.Errorf("count: %w", err)
	}
	if q.CountLimit > 0 && page.Count > q.CountLimit {
		page.Count = -1
	}

	// The page: Max+1 rows from its end of the result, the one more
	// telling whether the page is complete.
	backwards := q.LastPage || q.Before != ""
	pf := f.clone()
	switch {
	case q.Before != "":
		p, err := find(q.Before, "before")
		if err != nil {
			return storage.ArchivePage{}, err
		}
		pf.add("(stamp, seq) < (?, ?)", p.stamp, p.seq)
	case q.After != "" && !backwards:
		p, err := find(q.After, "after")
		if err != nil {
			return storage.ArchivePage{}, err
		}
		pf.add("(stamp, seq) > (?, ?)", p.stamp, p.seq)
	}
	order := "stamp, seq"
	if backwards {
		order = "stamp DESC, seq DESC"
	}
	max := max(q.Max, 0)
	rows, err := tx.QueryContext(ctx, `
		SELECT id, stamp, with_bare, with_resource, stanza, body FROM archive_messages
		WHERE `+pf.clause()+` ORDER BY `+order+` LIMIT `+strconv.Itoa(max+1), pf.args...)
	if err != nil {
		return storage.ArchivePage{}, fmt.Errorf("page: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			m         storage.ArchivedMessage
			stamp     int64
			bare, res string
		)
		if err := rows.Scan(&m.ID, &stamp, &bare, &res, &m.Stanza, &m.Text); err != nil {
			return storage.ArchivePage{}, err
		}
		m.Stamp = fromMicro(stamp)
		if m.With, err = parseWith(bare, res); err != nil {
			return storage.ArchivePage{}, err
		}
		page.Messages = append(page.Messages, m)
	}
	if err := rows.Err(); err != nil {
		return storage.ArchivePage{}, fmt.Errorf("page: %w", err)
	}
	page.Complete = len(page.Messages) <= max
	if !page.Complete {
		page.Messages = page.Messages[:max]
	}
	if backwards {
		slices.Reverse(page.Messages)
	}
	if len(page.Messages) == 0 {
		page.Messages = nil
	}
	return page, nil
}

// Replace finds the message as queries do and rewrites its row; the
// generated column of migration 0005 (PostgreSQL) or the trigger of
// migration 0012 (SQLite) indexes the new text.
func (s archives) Replace(ctx context.Context, owner jid.JID, id string, stanza []byte, text string) error {
	domain, local := ownerKey(owner)
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		p, err := findArchived(ctx, tx, domain, local, id)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE archive_messages SET stanza = $1, size = $2, body = $3 WHERE seq = $4`,
			notNil(stanza), len(stanza), text, p.seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("storage: replace archived message %s of %s: %w", id, owner.Bare(), err)
	}
	return nil
}

// parseWith rebuilds the JID stored as with_bare and with_resource.
func parseWith(bare, resource string) (jid.JID, error) {
	s := bare
	if resource != "" {
		s += "/" + resource
	}
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, fmt.Errorf("stored with %q: %w", s, err)
	}
	return j, nil
}

// Bounds reads the first and last rows of the archive by its index.
func (s archives) Bounds(ctx context.Context, owner jid.JID) (storage.ArchiveBounds, error) {
	var b storage.ArchiveBounds
	err := s.db.inReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		b, err = archiveBounds(ctx, tx, owner)
		return err
	})
	if err != nil {
		return storage.ArchiveBounds{}, fmt.Errorf("storage: archive bounds of %s: %w", owner.Bare(), err)
	}
	return b, nil
}

func archiveBounds(ctx context.Context, tx *sql.Tx, owner jid.JID) (storage.ArchiveBounds, error) {
	domain, local := ownerKey(owner)
	var b storage.ArchiveBounds
	for _, end := range []struct {
		order string
		id    *string
		stamp *time.Time
	}{{"ASC", &b.FirstID, &b.FirstStamp}, {"DESC", &b.LastID, &b.LastStamp}} {
		var us int64
		err := tx.QueryRowContext(ctx, `
			SELECT id, stamp FROM archive_messages WHERE domain = $1 AND local = $2
			ORDER BY stamp `+end.order+`, seq `+end.order+` LIMIT 1`, domain, local).Scan(end.id, &us)
		if err == sql.ErrNoRows {
			return storage.ArchiveBounds{}, nil
		}
		if err != nil {
			return storage.ArchiveBounds{}, err
		}
		*end.stamp = fromMicro(us)
	}
	return b, nil
}

// purgeBatch is how many messages one transaction of Purge deletes: a
// whole archive at once would hold SQLite's write lock, and with it all
// archiving, for as long as it takes.
const purgeBatch = 5000

// LastStamp reads the end of the global stamp index.
func (s archives) LastStamp(ctx context.Context) (time.Time, error) {
	var us sql.NullInt64
	if err := s.db.sql.QueryRowContext(ctx, `SELECT MAX(stamp) FROM archive_messages`).Scan(&us); err != nil {
		return time.Time{}, fmt.Errorf("storage: last archive stamp: %w", err)
	}
	if !us.Valid {
		return time.Time{}, nil
	}
	return fromMicro(us.Int64), nil
}

// Purge deletes by the owner's time index, purgeBatch messages per
// transaction, oldest first, until a batch finds nothing; an error after
// some batches leaves those deleted, and says how many.
func (s archives) Purge(ctx context.Context, owner jid.JID, before time.Time) (int64, error) {
	domain, local := ownerKey(owner)
	cond, args := `domain = $1 AND local = $2`, []any{domain, local}
	if !before.IsZero() {
		cond += ` AND stamp < $3`
		args = append(args, before.UnixMicro())
	}
	q := `DELETE FROM archive_messages WHERE seq IN (
		SELECT seq FROM archive_messages WHERE ` + cond + ` ORDER BY stamp, seq LIMIT ` + strconv.Itoa(purgeBatch) + `)`
	var total int64
	for {
		res, err := s.db.sql.ExecContext(ctx, q, args...)
		if err != nil {
			return total, fmt.Errorf("storage: purge archive of %s (%d deleted): %w", owner.Bare(), total, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("storage: purge archive of %s (%d deleted): %w", owner.Bare(), total, err)
		}
		total += n
		if n == 0 {
			// Not "fewer than a batch": on PostgreSQL a concurrent delete
			// (Expire, another Purge) may take rows a batch had selected,
			// and rows the purge must delete would be left.
			return total, nil
		}
	}
}

// Expire picks the oldest rows by the stamp index and deletes them.
func (s archives) Expire(ctx context.Context, before time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	res, err := s.db.sql.ExecContext(ctx, `
		DELETE FROM archive_messages WHERE seq IN (
			SELECT seq FROM archive_messages WHERE stamp < $1 ORDER BY stamp, seq LIMIT $2)`,
		before.UnixMicro(), limit)
	if err != nil {
		return 0, fmt.Errorf("storage: expire archived messages: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("storage: expire archived messages: %w", err)
	}
	return n, nil
}

// Stats counts and sums the size column (not the stanzas) per owner, in
// one snapshot with the bounds.
func (s archives) Stats(ctx context.Context, owner jid.JID) ([]storage.ArchiveStats, error) {
	var list []storage.ArchiveStats
	err := s.db.inReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		list, err = archiveStats(ctx, tx, owner)
		return err
	})
	if err != nil {
		if owner.Equal(jid.JID{}) {
			return nil, fmt.Errorf("storage: archive stats: %w", err)
		}
		return nil, fmt.Errorf("storage: archive stats of %s: %w", owner.Bare(), err)
	}
	return list, nil
}

func archiveStats(ctx context.Context, tx *sql.Tx, owner jid.JID) ([]storage.ArchiveStats, error) {
	q := `SELECT domain, local, COUNT(*), SUM(size) FROM archive_messages`
	var args []any
	if !owner.Equal(jid.JID{}) {
		q += ` WHERE domain = $1 AND local = $2`
		domain, local := ownerKey(owner)
		args = []any{domain, local}
	}
	q += ` GROUP BY domain, local ORDER BY domain, local`
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	list := []storage.ArchiveStats{}
	for rows.Next() {
		var (
			st            storage.ArchiveStats
			domain, local string
		)
		if err := rows.Scan(&domain, &local, &st.Messages, &st.Bytes); err != nil {
			rows.Close()
			return nil, err
		}
		if st.Owner, err = jid.New(local, domain, ""); err != nil {
			rows.Close()
			return nil, fmt.Errorf("stored owner %q@%q: %w", local, domain, err)
		}
		list = append(list, st)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].ArchiveBounds, err = archiveBounds(ctx, tx, list[i].Owner); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// Prefs reads the default mode and the lists.
func (s archives) Prefs(ctx context.Context, owner jid.JID) (storage.ArchivePrefs, error) {
	var p storage.ArchivePrefs
	err := s.db.inReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		p, err = archivePrefs(ctx, tx, owner)
		return err
	})
	if err != nil {
		return storage.ArchivePrefs{}, fmt.Errorf("storage: archive prefs of %s: %w", owner.Bare(), err)
	}
	return p, nil
}

func archivePrefs(ctx context.Context, tx *sql.Tx, owner jid.JID) (storage.ArchivePrefs, error) {
	domain, local := ownerKey(owner)
	var p storage.ArchivePrefs
	var mode string
	err := tx.QueryRowContext(ctx,
		`SELECT default_mode FROM archive_prefs WHERE domain = $1 AND local = $2`, domain, local).Scan(&mode)
	if err == sql.ErrNoRows {
		return storage.ArchivePrefs{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.ArchivePrefs{}, err
	}
	p.Default = storage.ArchiveMode(mode)
	rows, err := tx.QueryContext(ctx, `
		SELECT mode, jid FROM archive_pref_jids WHERE domain = $1 AND local = $2
		ORDER BY mode, jid`, domain, local)
	if err != nil {
		return storage.ArchivePrefs{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var mode, s string
		if err := rows.Scan(&mode, &s); err != nil {
			return storage.ArchivePrefs{}, err
		}
		j, err := jid.Parse(s)
		if err != nil {
			return storage.ArchivePrefs{}, fmt.Errorf("stored %s jid %q: %w", mode, s, err)
		}
		if storage.ArchiveMode(mode) == storage.ArchiveAlways {
			p.Always = append(p.Always, j)
		} else {
			p.Never = append(p.Never, j)
		}
	}
	return p, rows.Err()
}

// SetPrefs replaces the preferences in one transaction; the foreign key to
// users decides whether the account exists.
func (s archives) SetPrefs(ctx context.Context, owner jid.JID, prefs storage.ArchivePrefs) error {
	domain, local := ownerKey(owner)
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO archive_prefs (domain, local, default_mode) VALUES ($1, $2, $3)
			ON CONFLICT (domain, local) DO UPDATE SET default_mode = excluded.default_mode`,
			domain, local, string(prefs.Default))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM archive_pref_jids WHERE domain = $1 AND local = $2`, domain, local); err != nil {
			return err
		}
		for _, list := range []struct {
			mode storage.ArchiveMode
			jids []jid.JID
		}{{storage.ArchiveAlways, prefs.Always}, {storage.ArchiveNever, prefs.Never}} {
			for _, j := range list.jids {
				_, err := tx.ExecContext(ctx, `
					INSERT INTO archive_pref_jids (domain, local, mode, jid) VALUES ($1, $2, $3, $4)
					ON CONFLICT DO NOTHING`,
					domain, local, string(list.mode), j.String())
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: set archive prefs of %s: %w", owner.Bare(), accountErr(err))
	}
	return nil
}
