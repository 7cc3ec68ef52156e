package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
)

// privateXML implements storage.PrivateXML over the private_xml table.
type privateXML struct{ db *DB }

var _ storage.PrivateXML = privateXML{}

// Get reads the fragment of one namespace.
func (s privateXML) Get(ctx context.Context, owner jid.JID, namespace string) ([]byte, error) {
	domain, local := ownerKey(owner)
	var fragment []byte
	err := s.db.sql.QueryRowContext(ctx,
		`SELECT fragment FROM private_xml WHERE domain = $1 AND local = $2 AND namespace = $3`,
		domain, local, namespace).Scan(&fragment)
	if err == sql.ErrNoRows {
		err = storage.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: get private XML %s of %s: %w", namespace, owner.Bare(), err)
	}
	return fragment, nil
}

// Set inserts or replaces the fragment of one namespace.
func (s privateXML) Set(ctx context.Context, owner jid.JID, namespace string, fragment []byte) error {
	domain, local := ownerKey(owner)
	_, err := s.db.sql.ExecContext(ctx, `
		INSERT INTO private_xml (domain, local, namespace, fragment) VALUES ($1, $2, $3, $4)
		ON CONFLICT (domain, local, namespace) DO UPDATE SET fragment = excluded.fragment`,
		domain, local, namespace, notNil(fragment))
	if err != nil {
		return fmt.Errorf("storage: set private XML %s of %s: %w", namespace, owner.Bare(), accountErr(err))
	}
	return nil
}
