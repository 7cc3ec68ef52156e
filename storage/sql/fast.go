package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// fastTokens implements storage.FastTokens over the fast_tokens table.
type fastTokens struct{ db *DB }

var _ storage.FastTokens = fastTokens{}

// FastTokens implements storage.Store.
func (db *DB) FastTokens() storage.FastTokens { return fastTokens{db} }

// Tokens reads the agent's tokens, latest expiry first.
func (s fastTokens) Tokens(ctx context.Context, domain, local, agent string) ([]storage.FastToken, error) {
	rows, err := s.db.sql.QueryContext(ctx, `
		SELECT token_id, mechanism, expires_at, last_count, used FROM fast_tokens
		WHERE domain = $1 AND local = $2 AND agent = $3 ORDER BY expires_at DESC`, domain, local, agent)
	if err != nil {
		return nil, fmt.Errorf("storage: fast tokens of %s@%s: %w", local, domain, err)
	}
	defer rows.Close()
	var out []storage.FastToken
	for rows.Next() {
		t := storage.FastToken{Domain: domain, Local: local, Agent: agent}
		var expires int64
		if err := rows.Scan(&t.ID, &t.Mechanism, &expires, &t.Count, &t.Used); err != nil {
			return nil, fmt.Errorf("storage: fast tokens of %s@%s: %w", local, domain, err)
		}
		t.Expires = fromMicro(expires)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: fast tokens of %s@%s: %w", local, domain, err)
	}
	return out, nil
}

// Issue drops the agent's unused and expired tokens and adds t, in one
// transaction.
func (s fastTokens) Issue(ctx context.Context, t storage.FastToken) error {
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `
			DELETE FROM fast_tokens WHERE domain = $1 AND local = $2 AND agent = $3
			AND (used = $5 OR expires_at <= $4)`,
			t.Domain, t.Local, t.Agent, time.Now().UnixMicro(), false); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO fast_tokens (domain, local, agent, token_id, mechanism, expires_at, last_count, used)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			t.Domain, t.Local, t.Agent, t.ID, t.Mechanism, t.Expires.UnixMicro(), t.Count, t.Used)
		if err != nil && isForeignKeyViolation(err) {
			return storage.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("storage: issue fast token to %s@%s: %w", t.Local, t.Domain, err)
	}
	return nil
}

// Use checks and raises the count and marks the token used under the
// row's lock, so that two uses with one count cannot both pass, and drops
// the agent's token used before and those that expire earlier.
func (s fastTokens) Use(ctx context.Context, domain, local, agent string, id []byte, count int64) error {
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		var last, expires int64
		err := tx.QueryRowContext(ctx, `
			SELECT last_count, expires_at FROM fast_tokens
			WHERE domain = $1 AND local = $2 AND agent = $3 AND token_id = $4`+s.db.dialect.forUpdate,
			domain, local, agent, id).Scan(&last, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return storage.ErrNotFound
		}
		if err != nil {
			return err
		}
		if count != 0 && count <= last {
			return fmt.Errorf("count %d, last %d: %w", count, last, storage.ErrReplay)
		}
		if _, err := tx.ExecContext(ctx, `
			UPDATE fast_tokens SET used = $6, last_count = $5
			WHERE domain = $1 AND local = $2 AND agent = $3 AND token_id = $4`,
			domain, local, agent, id, max(count, last), true); err != nil {
			return err
		}
		// The token that was in use before this one, and any that expire
		// earlier; a newer one not used yet stays.
		_, err = tx.ExecContext(ctx, `
			DELETE FROM fast_tokens WHERE domain = $1 AND local = $2 AND agent = $3 AND token_id <> $4
			AND (used = $6 OR expires_at < $5)`,
			domain, local, agent, id, expires, true)
		return err
	})
	if err != nil {
		return fmt.Errorf("storage: use fast token of %s@%s: %w", local, domain, err)
	}
	return nil
}

// Revoke deletes the agent's tokens.
func (s fastTokens) Revoke(ctx context.Context, domain, local, agent string) error {
	if _, err := s.db.sql.ExecContext(ctx, `DELETE FROM fast_tokens WHERE domain = $1 AND local = $2 AND agent = $3`,
		domain, local, agent); err != nil {
		return fmt.Errorf("storage: revoke fast tokens of %s@%s: %w", local, domain, err)
	}
	return nil
}

// secrets implements storage.Secrets over the server_secrets table.
type secrets struct{ db *DB }

var _ storage.Secrets = secrets{}

// Secrets implements storage.Store.
func (db *DB) Secrets() storage.Secrets { return secrets{db} }

// Secret inserts a random key unless one is there, then reads the one that
// is: the primary key decides between two servers that make it at once.
func (s secrets) Secret(ctx context.Context, name string) ([]byte, error) {
	key := make([]byte, 32)
	rand.Read(key)
	if _, err := s.db.sql.ExecContext(ctx,
		`INSERT INTO server_secrets (name, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		name, key, time.Now().UnixMicro()); err != nil {
		return nil, fmt.Errorf("storage: make secret %s: %w", name, err)
	}
	var stored []byte
	if err := s.db.sql.QueryRowContext(ctx, `SELECT secret FROM server_secrets WHERE name = $1`, name).Scan(&stored); err != nil {
		return nil, fmt.Errorf("storage: read secret %s: %w", name, err)
	}
	return stored, nil
}
