package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
)

// rosters implements storage.Rosters over the roster_items, roster_groups
// and roster_versions tables.
type rosters struct{ db *DB }

var _ storage.Rosters = rosters{}

// itemColumns are the columns of roster_items read into a RosterItem, with
// the name of one of its groups (NULL when it has none) last.
const itemColumns = `i.contact, i.name, i.subscription, i.pending_out, i.pending_in, i.approved, g.name`

// itemsFrom joins the items to their groups. Ordered by contact then group,
// the rows of one item follow each other with its groups sorted.
const itemsFrom = `FROM roster_items i LEFT JOIN roster_groups g
		ON g.domain = i.domain AND g.local = i.local AND g.contact = i.contact`

// Get reads the items and the version in one snapshot, so that a client
// given both never caches items under a version they do not belong to.
func (s rosters) Get(ctx context.Context, owner jid.JID) ([]storage.RosterItem, int64, error) {
	var (
		items   []storage.RosterItem
		version int64
	)
	err := s.db.inReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		if version, err = rosterVersion(ctx, tx, owner); err != nil {
			return err
		}
		domain, local := ownerKey(owner)
		items, err = scanItems(tx.QueryContext(ctx,
			`SELECT `+itemColumns+` `+itemsFrom+`
			WHERE i.domain = $1 AND i.local = $2
			ORDER BY i.contact, g.name`, domain, local))
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("storage: get roster of %s: %w", owner.Bare(), err)
	}
	return items, version, nil
}

// Item reads one item with its groups.
func (s rosters) Item(ctx context.Context, owner, contact jid.JID) (storage.RosterItem, error) {
	domain, local := ownerKey(owner)
	items, err := scanItems(s.db.sql.QueryContext(ctx,
		`SELECT `+itemColumns+` `+itemsFrom+`
		WHERE i.domain = $1 AND i.local = $2 AND i.contact = $3
		ORDER BY g.name`, domain, local, contact.String()))
	if err == nil && len(items) == 0 {
		err = storage.ErrNotFound
	}
	if err != nil {
		return storage.RosterItem{}, fmt.Errorf("storage: get roster item %s of %s: %w", contact, owner.Bare(), err)
	}
	return items[0], nil
}

// Put raises the version and writes the item in one transaction. Raising
// the version first locks the owner's roster_versions row (PostgreSQL; in
// SQLite the whole database), so concurrent changes of one roster take
// turns and each gets a version of its own.
func (s rosters) Put(ctx context.Context, owner jid.JID, item storage.RosterItem) (int64, error) {
	if !validSubscription(item.Subscription) {
		return 0, fmt.Errorf("storage: put roster item %s of %s: invalid subscription %q",
			item.Contact, owner.Bare(), item.Subscription)
	}
	var version int64
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if version, err = bumpRosterVersion(ctx, tx, owner); err != nil {
			return err
		}
		domain, local := ownerKey(owner)
		contact := item.Contact.String()
		_, err = tx.ExecContext(ctx, `
			INSERT INTO roster_items (domain, local, contact, name, subscription, pending_out, pending_in, approved)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (domain, local, contact) DO UPDATE SET
				name = excluded.name, subscription = excluded.subscription,
				pending_out = excluded.pending_out, pending_in = excluded.pending_in,
				approved = excluded.approved`,
			domain, local, contact, item.Name, item.Subscription, item.PendingOut, item.PendingIn, item.Approved)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			`DELETE FROM roster_groups WHERE domain = $1 AND local = $2 AND contact = $3`, domain, local, contact)
		if err != nil {
			return err
		}
		for _, group := range normalGroups(item.Groups) {
			_, err := tx.ExecContext(ctx,
				`INSERT INTO roster_groups (domain, local, contact, name) VALUES ($1, $2, $3, $4)`,
				domain, local, contact, group)
			if err != nil {
				return fmt.Errorf("group %q: %w", group, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("storage: put roster item %s of %s: %w", item.Contact, owner.Bare(), err)
	}
	return version, nil
}

// Remove deletes the item, and its groups with it, and raises the version
// unless there was no such item.
func (s rosters) Remove(ctx context.Context, owner, contact jid.JID) (int64, error) {
	var version int64
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		domain, local := ownerKey(owner)
		res, err := tx.ExecContext(ctx,
			`DELETE FROM roster_items WHERE domain = $1 AND local = $2 AND contact = $3`,
			domain, local, contact.String())
		if err := oneRow(res, err, storage.ErrNotFound); err != nil {
			return err
		}
		version, err = bumpRosterVersion(ctx, tx, owner)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("storage: remove roster item %s of %s: %w", contact, owner.Bare(), err)
	}
	return version, nil
}

// Version reads the roster version.
func (s rosters) Version(ctx context.Context, owner jid.JID) (int64, error) {
	version, err := rosterVersion(ctx, s.db.sql, owner)
	if err != nil {
		return 0, fmt.Errorf("storage: get roster version of %s: %w", owner.Bare(), err)
	}
	return version, nil
}

// Count counts the items.
func (s rosters) Count(ctx context.Context, owner jid.JID) (int, error) {
	domain, local := ownerKey(owner)
	var n int
	err := s.db.sql.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM roster_items WHERE domain = $1 AND local = $2`, domain, local).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("storage: count roster items of %s: %w", owner.Bare(), err)
	}
	return n, nil
}

// querier is what *sql.DB and *sql.Tx have in common that reads need.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// rosterVersion reads the version, 0 when the roster was never changed.
func rosterVersion(ctx context.Context, q querier, owner jid.JID) (int64, error) {
	domain, local := ownerKey(owner)
	var version int64
	err := q.QueryRowContext(ctx,
		`SELECT version FROM roster_versions WHERE domain = $1 AND local = $2`, domain, local).Scan(&version)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return version, err
}

// bumpRosterVersion raises the version by one and returns it. Its foreign
// key says whether the account exists.
func bumpRosterVersion(ctx context.Context, tx *sql.Tx, owner jid.JID) (int64, error) {
	domain, local := ownerKey(owner)
	var version int64
	err := tx.QueryRowContext(ctx, `
		INSERT INTO roster_versions (domain, local, version) VALUES ($1, $2, 1)
		ON CONFLICT (domain, local) DO UPDATE SET version = roster_versions.version + 1
		RETURNING version`, domain, local).Scan(&version)
	return version, accountErr(err)
}

// scanItems reads rows of itemColumns ordered by contact, one row per group
// of an item (one row with a NULL group for an item without groups).
func scanItems(rows *sql.Rows, err error) ([]storage.RosterItem, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		items []storage.RosterItem
		last  string // the contact of items[len(items)-1]
	)
	for rows.Next() {
		var (
			item    storage.RosterItem
			contact string
			group   sql.NullString
		)
		err := rows.Scan(&contact, &item.Name, &item.Subscription,
			&item.PendingOut, &item.PendingIn, &item.Approved, &group)
		if err != nil {
			return nil, err
		}
		if len(items) > 0 && contact == last {
			items[len(items)-1].Groups = append(items[len(items)-1].Groups, group.String)
			continue
		}
		last = contact
		if item.Contact, err = jid.Parse(contact); err != nil {
			return nil, fmt.Errorf("stored contact %q: %w", contact, err)
		}
		if group.Valid {
			item.Groups = []string{group.String}
		}
		items = append(items, item)
	}
	return items, rows.Err()
}

// normalGroups returns groups sorted, without duplicates.
func normalGroups(groups []string) []string {
	groups = slices.Clone(groups)
	slices.Sort(groups)
	return slices.Compact(groups)
}

func validSubscription(s string) bool {
	switch s {
	case storage.SubNone, storage.SubTo, storage.SubFrom, storage.SubBoth:
		return true
	}
	return false
}
