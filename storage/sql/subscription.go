package sqlstore

import (
	"context"
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
)

// subscriptionRequests implements storage.SubscriptionRequests over the
// subscription_requests table.
type subscriptionRequests struct{ db *DB }

var _ storage.SubscriptionRequests = subscriptionRequests{}

// Add stores the request. A contact that asks again replaces the stanza
// (its status may have changed) but keeps the place of its first request.
func (s subscriptionRequests) Add(ctx context.Context, owner jid.JID, req storage.SubscriptionRequest) error {
	domain, local := ownerKey(owner)
	_, err := s.db.sql.ExecContext(ctx, `
		INSERT INTO subscription_requests (domain, local, contact, stanza) VALUES ($1, $2, $3, $4)
		ON CONFLICT (domain, local, contact) DO UPDATE SET stanza = excluded.stanza`,
		domain, local, req.From.String(), notNil(req.Stanza))
	if err != nil {
		return fmt.Errorf("storage: add subscription request from %s to %s: %w", req.From, owner.Bare(), accountErr(err))
	}
	return nil
}

// Remove deletes the request from a contact, if there is one.
func (s subscriptionRequests) Remove(ctx context.Context, owner, from jid.JID) error {
	domain, local := ownerKey(owner)
	_, err := s.db.sql.ExecContext(ctx,
		`DELETE FROM subscription_requests WHERE domain = $1 AND local = $2 AND contact = $3`,
		domain, local, from.String())
	if err != nil {
		return fmt.Errorf("storage: remove subscription request from %s to %s: %w", from, owner.Bare(), err)
	}
	return nil
}

// List reads the requests in the order they first arrived.
func (s subscriptionRequests) List(ctx context.Context, owner jid.JID) ([]storage.SubscriptionRequest, error) {
	list, err := s.list(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("storage: list subscription requests to %s: %w", owner.Bare(), err)
	}
	return list, nil
}

func (s subscriptionRequests) list(ctx context.Context, owner jid.JID) ([]storage.SubscriptionRequest, error) {
	domain, local := ownerKey(owner)
	rows, err := s.db.sql.QueryContext(ctx, `
		SELECT contact, stanza FROM subscription_requests
		WHERE domain = $1 AND local = $2 ORDER BY id`, domain, local)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []storage.SubscriptionRequest
	for rows.Next() {
		var (
			req  storage.SubscriptionRequest
			from string
		)
		if err := rows.Scan(&from, &req.Stanza); err != nil {
			return nil, err
		}
		if req.From, err = jid.Parse(from); err != nil {
			return nil, fmt.Errorf("stored JID %q: %w", from, err)
		}
		list = append(list, req)
	}
	return list, rows.Err()
}
