package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
)

// pushRegistrations implements storage.PushRegistrations over the
// push_registrations table.
type pushRegistrations struct{ db *DB }

var _ storage.PushRegistrations = pushRegistrations{}

// Put counts and writes in one transaction that holds the owner's lock, so
// that concurrent enables cannot all pass the count, as offline.Push does.
func (s pushRegistrations) Put(ctx context.Context, owner jid.JID, reg storage.PushRegistration, limit int) error {
	domain, local := ownerKey(owner)
	service := reg.Service.String()
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.db.lockAccount(ctx, tx, owner); err != nil {
			return err
		}
		if limit > 0 {
			var n int
			err := tx.QueryRowContext(ctx, `
				SELECT COUNT(*) FROM push_registrations
				WHERE domain = $1 AND local = $2 AND NOT (service = $3 AND node = $4)`,
				domain, local, service, reg.Node).Scan(&n)
			if err != nil {
				return err
			}
			if n >= limit {
				return fmt.Errorf("%d push registrations: %w", n, storage.ErrLimit)
			}
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO push_registrations (domain, local, service, node, form) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (domain, local, service, node) DO UPDATE SET form = excluded.form`,
			domain, local, service, reg.Node, notNil(reg.Form))
		return err
	})
	if err != nil {
		return fmt.Errorf("storage: put push registration %s %q of %s: %w", service, reg.Node, owner.Bare(), accountErr(err))
	}
	return nil
}

// Remove deletes one registration, or all of one service.
func (s pushRegistrations) Remove(ctx context.Context, owner, service jid.JID, node string) error {
	domain, local := ownerKey(owner)
	q := `DELETE FROM push_registrations WHERE domain = $1 AND local = $2 AND service = $3`
	args := []any{domain, local, service.String()}
	if node != "" {
		q += ` AND node = $4`
		args = append(args, node)
	}
	if _, err := s.db.sql.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("storage: remove push registration %s %q of %s: %w", service, node, owner.Bare(), err)
	}
	return nil
}

// List reads the registrations in key order.
func (s pushRegistrations) List(ctx context.Context, owner jid.JID) ([]storage.PushRegistration, error) {
	list, err := s.list(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("storage: list push registrations of %s: %w", owner.Bare(), err)
	}
	return list, nil
}

func (s pushRegistrations) list(ctx context.Context, owner jid.JID) ([]storage.PushRegistration, error) {
	domain, local := ownerKey(owner)
	rows, err := s.db.sql.QueryContext(ctx, `
		SELECT service, node, form FROM push_registrations
		WHERE domain = $1 AND local = $2 ORDER BY service, node`, domain, local)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []storage.PushRegistration
	for rows.Next() {
		var (
			r       storage.PushRegistration
			service string
		)
		if err := rows.Scan(&service, &r.Node, &r.Form); err != nil {
			return nil, err
		}
		if r.Service, err = jid.Parse(service); err != nil {
			return nil, fmt.Errorf("stored service %q: %w", service, err)
		}
		if len(r.Form) == 0 {
			r.Form = nil
		}
		list = append(list, r)
	}
	return list, rows.Err()
}
