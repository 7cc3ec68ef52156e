package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
)

// offline implements storage.Offline over the offline_messages table.
type offline struct{ db *DB }

var _ storage.Offline = offline{}

// Push counts and inserts in one transaction that holds the owner's lock,
// so that concurrent pushes to a nearly full queue cannot all pass the
// count, and so that messages to one account are numbered in the order
// they are committed.
func (s offline) Push(ctx context.Context, owner jid.JID, stanza []byte, limit int) error {
	domain, local := ownerKey(owner)
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.db.lockAccount(ctx, tx, owner); err != nil {
			return err
		}
		if limit > 0 {
			var n int
			err := tx.QueryRowContext(ctx,
				`SELECT COUNT(*) FROM offline_messages WHERE domain = $1 AND local = $2`, domain, local).Scan(&n)
			if err != nil {
				return err
			}
			if n >= limit {
				return fmt.Errorf("%d messages stored: %w", n, storage.ErrLimit)
			}
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO offline_messages (domain, local, stored_at, stanza) VALUES ($1, $2, $3, $4)`,
			domain, local, time.Now().UnixMicro(), notNil(stanza))
		return err
	})
	if err != nil {
		return fmt.Errorf("storage: store offline message for %s: %w", owner.Bare(), err)
	}
	return nil
}

// List reads the messages in the order they were stored.
func (s offline) List(ctx context.Context, owner jid.JID) ([]storage.OfflineMessage, error) {
	list, err := s.list(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("storage: list offline messages for %s: %w", owner.Bare(), err)
	}
	return list, nil
}

func (s offline) list(ctx context.Context, owner jid.JID) ([]storage.OfflineMessage, error) {
	domain, local := ownerKey(owner)
	rows, err := s.db.sql.QueryContext(ctx, `
		SELECT id, stored_at, stanza FROM offline_messages
		WHERE domain = $1 AND local = $2 ORDER BY id`, domain, local)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []storage.OfflineMessage
	for rows.Next() {
		var (
			m      storage.OfflineMessage
			stored int64
		)
		if err := rows.Scan(&m.ID, &stored, &m.Stanza); err != nil {
			return nil, err
		}
		m.Stored = fromMicro(stored)
		list = append(list, m)
	}
	return list, rows.Err()
}

// deleteBatch is how many ids one DELETE names, well under the number of
// parameters either database takes in one statement.
const deleteBatch = 500

// Delete removes the messages of the owner among ids, all or none; ids of
// messages that are not the owner's, or no longer stored, are ignored.
func (s offline) Delete(ctx context.Context, owner jid.JID, ids []int64) error {
	domain, local := ownerKey(owner)
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		for batch := range slices.Chunk(ids, deleteBatch) {
			args := []any{domain, local}
			marks := make([]string, len(batch))
			for i, id := range batch {
				args = append(args, id)
				marks[i] = "$" + strconv.Itoa(len(args))
			}
			_, err := tx.ExecContext(ctx, `DELETE FROM offline_messages
				WHERE domain = $1 AND local = $2 AND id IN (`+strings.Join(marks, ", ")+`)`, args...)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: delete offline messages for %s: %w", owner.Bare(), err)
	}
	return nil
}

// Count counts the messages stored.
func (s offline) Count(ctx context.Context, owner jid.JID) (int, error) {
	domain, local := ownerKey(owner)
	var n int
	err := s.db.sql.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM offline_messages WHERE domain = $1 AND local = $2`, domain, local).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("storage: count offline messages for %s: %w", owner.Bare(), err)
	}
	return n, nil
}
