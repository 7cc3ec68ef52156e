package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
)

// blocklists implements storage.Blocklists over the blocklist table.
type blocklists struct{ db *DB }

var _ storage.Blocklists = blocklists{}

// List reads the blocked JIDs in bytewise order of their string form.
func (s blocklists) List(ctx context.Context, owner jid.JID) ([]jid.JID, error) {
	domain, local := ownerKey(owner)
	list, err := scanJIDs(s.db.sql.QueryContext(ctx,
		`SELECT blocked FROM blocklist WHERE domain = $1 AND local = $2 ORDER BY blocked`, domain, local))
	if err != nil {
		return nil, fmt.Errorf("storage: list blocklist of %s: %w", owner.Bare(), err)
	}
	return list, nil
}

// Add blocks items, all or none.
func (s blocklists) Add(ctx context.Context, owner jid.JID, items []jid.JID) error {
	domain, local := ownerKey(owner)
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		for _, item := range items {
			_, err := tx.ExecContext(ctx,
				`INSERT INTO blocklist (domain, local, blocked) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
				domain, local, item.String())
			if err != nil {
				return accountErr(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: add to blocklist of %s: %w", owner.Bare(), err)
	}
	return nil
}

// Remove unblocks items, all or none, or every JID when items is empty.
func (s blocklists) Remove(ctx context.Context, owner jid.JID, items []jid.JID) error {
	domain, local := ownerKey(owner)
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		if len(items) == 0 {
			_, err := tx.ExecContext(ctx, `DELETE FROM blocklist WHERE domain = $1 AND local = $2`, domain, local)
			return err
		}
		for _, item := range items {
			_, err := tx.ExecContext(ctx,
				`DELETE FROM blocklist WHERE domain = $1 AND local = $2 AND blocked = $3`,
				domain, local, item.String())
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: remove from blocklist of %s: %w", owner.Bare(), err)
	}
	return nil
}

// scanJIDs reads rows of one column of stored JIDs.
func scanJIDs(rows *sql.Rows, err error) ([]jid.JID, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []jid.JID
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		j, err := jid.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("stored JID %q: %w", s, err)
		}
		list = append(list, j)
	}
	return list, rows.Err()
}
