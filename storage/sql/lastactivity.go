package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
)

// lastActivity implements storage.LastActivity over the last_activity
// table.
type lastActivity struct{ db *DB }

var _ storage.LastActivity = lastActivity{}

// Set inserts or replaces the last logout.
func (s lastActivity) Set(ctx context.Context, owner jid.JID, at time.Time, status string) error {
	domain, local := ownerKey(owner)
	_, err := s.db.sql.ExecContext(ctx, `
		INSERT INTO last_activity (domain, local, logout_at, status) VALUES ($1, $2, $3, $4)
		ON CONFLICT (domain, local) DO UPDATE SET logout_at = excluded.logout_at, status = excluded.status`,
		domain, local, at.UnixMicro(), status)
	if err != nil {
		return fmt.Errorf("storage: set last activity of %s: %w", owner.Bare(), accountErr(err))
	}
	return nil
}

// Get reads the last logout, in UTC to the microsecond.
func (s lastActivity) Get(ctx context.Context, owner jid.JID) (time.Time, string, error) {
	domain, local := ownerKey(owner)
	var (
		at     int64
		status string
	)
	err := s.db.sql.QueryRowContext(ctx,
		`SELECT logout_at, status FROM last_activity WHERE domain = $1 AND local = $2`,
		domain, local).Scan(&at, &status)
	if err == sql.ErrNoRows {
		err = storage.ErrNotFound
	}
	if err != nil {
		return time.Time{}, "", fmt.Errorf("storage: get last activity of %s: %w", owner.Bare(), err)
	}
	return fromMicro(at), status, nil
}
