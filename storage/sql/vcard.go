package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
)

// vcards implements storage.VCards over the vcards table.
type vcards struct{ db *DB }

var _ storage.VCards = vcards{}

// Get reads the vCard.
func (s vcards) Get(ctx context.Context, owner jid.JID) ([]byte, error) {
	domain, local := ownerKey(owner)
	var vcard []byte
	err := s.db.sql.QueryRowContext(ctx,
		`SELECT vcard FROM vcards WHERE domain = $1 AND local = $2`, domain, local).Scan(&vcard)
	if err == sql.ErrNoRows {
		err = storage.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: get vcard of %s: %w", owner.Bare(), err)
	}
	return vcard, nil
}

// Set inserts or replaces the vCard.
func (s vcards) Set(ctx context.Context, owner jid.JID, vcard []byte) error {
	domain, local := ownerKey(owner)
	_, err := s.db.sql.ExecContext(ctx, `
		INSERT INTO vcards (domain, local, vcard) VALUES ($1, $2, $3)
		ON CONFLICT (domain, local) DO UPDATE SET vcard = excluded.vcard`,
		domain, local, notNil(vcard))
	if err != nil {
		return fmt.Errorf("storage: set vcard of %s: %w", owner.Bare(), accountErr(err))
	}
	return nil
}
