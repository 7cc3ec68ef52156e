package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// users implements storage.Users over the users and credentials tables.
type users struct{ db *DB }

var _ storage.Users = users{}

// Create adds u with its credentials, all or nothing. The primary key, not
// a prior lookup, decides between two concurrent creations of one account.
func (s users) Create(ctx context.Context, u storage.User) error {
	created := u.Created
	if created.IsZero() {
		created = time.Now()
	}
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO users (domain, local, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			u.Domain, u.Local, created.UnixMicro())
		if err := oneRow(res, err, storage.ErrExists); err != nil {
			return err
		}
		return insertCredentials(ctx, tx, u.Domain, u.Local, u.Credentials)
	})
	if err != nil {
		return fmt.Errorf("storage: create user %s@%s: %w", u.Local, u.Domain, err)
	}
	return nil
}

// Get reads the account and its credentials in one query, so that they are
// consistent without a transaction.
func (s users) Get(ctx context.Context, domain, local string) (storage.User, error) {
	defer s.db.observe(OpUserGet, time.Now())
	u, err := s.get(ctx, domain, local)
	if err != nil {
		return storage.User{}, fmt.Errorf("storage: get user %s@%s: %w", local, domain, err)
	}
	return u, nil
}

func (s users) get(ctx context.Context, domain, local string) (storage.User, error) {
	rows, err := s.db.sql.QueryContext(ctx, `
		SELECT u.created_at, c.mechanism, c.salt, c.iterations, c.stored_key, c.server_key
		FROM users u LEFT JOIN credentials c ON c.domain = u.domain AND c.local = u.local
		WHERE u.domain = $1 AND u.local = $2
		ORDER BY c.mechanism`, domain, local)
	if err != nil {
		return storage.User{}, err
	}
	defer rows.Close()
	u := storage.User{Domain: domain, Local: local}
	found := false
	for rows.Next() {
		var (
			created    int64
			mechanism  sql.NullString
			iterations sql.NullInt64
			c          storage.Credential
		)
		if err := rows.Scan(&created, &mechanism, &c.Salt, &iterations, &c.StoredKey, &c.ServerKey); err != nil {
			return storage.User{}, err
		}
		found = true
		u.Created = fromMicro(created)
		if mechanism.Valid { // else the account has no credentials
			c.Mechanism, c.Iterations = mechanism.String, int(iterations.Int64)
			u.Credentials = append(u.Credentials, c)
		}
	}
	if err := rows.Err(); err != nil {
		return storage.User{}, err
	}
	if !found {
		return storage.User{}, storage.ErrNotFound
	}
	return u, nil
}

// SetCredentials replaces the account's credentials, all or nothing.
func (s users) SetCredentials(ctx context.Context, domain, local string, creds []storage.Credential) error {
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		// Lock the account so that it is not deleted before the new
		// credentials are in.
		var one int
		err := tx.QueryRowContext(ctx,
			`SELECT 1 FROM users WHERE domain = $1 AND local = $2`+s.db.dialect.forUpdate,
			domain, local).Scan(&one)
		if err == sql.ErrNoRows {
			return storage.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM credentials WHERE domain = $1 AND local = $2`, domain, local); err != nil {
			return err
		}
		// What the old password let in is logged out (XEP-0484 tokens).
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM fast_tokens WHERE domain = $1 AND local = $2`, domain, local); err != nil {
			return err
		}
		return insertCredentials(ctx, tx, domain, local, creds)
	})
	if err != nil {
		return fmt.Errorf("storage: set credentials of %s@%s: %w", local, domain, err)
	}
	return nil
}

// Delete removes the account, its archive and its pubsub data in one
// transaction; the database removes its credentials and whatever else
// hangs on users with ON DELETE CASCADE. The archive does not hang on
// users, because rooms have archives too, nor do pubsub nodes, because
// generic services have them too.
func (s users) Delete(ctx context.Context, domain, local string) error {
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE domain = $1 AND local = $2`, domain, local)
		if err := oneRow(res, err, storage.ErrNotFound); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM archive_messages WHERE domain = $1 AND local = $2`, domain, local); err != nil {
			return err
		}
		return deleteAccountPubSub(ctx, tx, domain, local)
	})
	if err != nil {
		return fmt.Errorf("storage: delete user %s@%s: %w", local, domain, err)
	}
	return nil
}

// List reads the accounts without credentials: listing is for operators,
// who have no use for keys.
func (s users) List(ctx context.Context, domain string) ([]storage.User, error) {
	list, err := s.list(ctx, domain)
	if err != nil {
		if domain == "" {
			return nil, fmt.Errorf("storage: list users: %w", err)
		}
		return nil, fmt.Errorf("storage: list users of %s: %w", domain, err)
	}
	return list, nil
}

func (s users) list(ctx context.Context, domain string) ([]storage.User, error) {
	// The ORDER BY matches the primary key, so the database reads in order.
	query, args := `SELECT domain, local, created_at FROM users ORDER BY domain, local`, []any(nil)
	if domain != "" {
		query = `SELECT domain, local, created_at FROM users WHERE domain = $1 ORDER BY domain, local`
		args = []any{domain}
	}
	rows, err := s.db.sql.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	list := []storage.User{}
	for rows.Next() {
		var (
			u       storage.User
			created int64
		)
		if err := rows.Scan(&u.Domain, &u.Local, &created); err != nil {
			return nil, err
		}
		u.Created = fromMicro(created)
		list = append(list, u)
	}
	return list, rows.Err()
}

func insertCredentials(ctx context.Context, tx *sql.Tx, domain, local string, creds []storage.Credential) error {
	for _, c := range creds {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO credentials (domain, local, mechanism, salt, iterations, stored_key, server_key)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			domain, local, c.Mechanism, c.Salt, c.Iterations, c.StoredKey, c.ServerKey)
		if err != nil {
			return fmt.Errorf("credential %s: %w", c.Mechanism, err)
		}
	}
	return nil
}

// fromMicro turns stored Unix microseconds into a time. UTC, so that a
// time reads the same from both databases.
func fromMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }

// oneRow checks the outcome of a statement that changes at most one row:
// it returns the statement's error, or ifNone when no row changed.
func oneRow(res sql.Result, err error, ifNone error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ifNone
	}
	return nil
}
