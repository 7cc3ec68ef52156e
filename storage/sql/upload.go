package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
)

// uploads implements storage.Uploads over the upload_files table.
type uploads struct{ db *DB }

var _ storage.Uploads = uploads{}

// Uploads returns the slots and files of HTTP File Upload (XEP-0363).
func (db *DB) Uploads() storage.Uploads { return uploads{db} }

// Reserve counts the owner's usage and inserts the slot in one transaction
// holding the owner's lock, as pushRegistrations.Put does.
func (s uploads) Reserve(ctx context.Context, u storage.Upload, since time.Time, check func(storage.UploadUsage) error) error {
	domain, local := ownerKey(u.Owner)
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.db.lockAccount(ctx, tx, u.Owner); err != nil {
			return err
		}
		usage, err := s.usage(ctx, tx, domain, local, since)
		if err != nil {
			return err
		}
		if err := check(usage); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `
			INSERT INTO upload_files (id, domain, local, name, size, content_type, created_at, uploaded_at, uploading)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8) ON CONFLICT DO NOTHING`,
			u.ID, domain, local, u.Name, u.Size, u.ContentType, u.Created.UnixMicro(), false)
		return oneRow(res, err, storage.ErrExists)
	})
	if err != nil {
		return fmt.Errorf("storage: reserve upload slot of %s: %w", u.Owner.Bare(), accountErr(err))
	}
	return nil
}

// usage sums the owner's uploads, all and those since since.
func (s uploads) usage(ctx context.Context, tx *sql.Tx, domain, local string, since time.Time) (storage.UploadUsage, error) {
	var (
		u                    storage.UploadUsage
		oldest, recentOldest sql.NullInt64
	)
	err := tx.QueryRowContext(ctx, `
		SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(created_at),
		       COALESCE(SUM(CASE WHEN created_at >= $3 THEN 1 ELSE 0 END), 0),
		       COALESCE(SUM(CASE WHEN created_at >= $3 THEN size ELSE 0 END), 0),
		       MIN(CASE WHEN created_at >= $3 THEN created_at END)
		FROM upload_files WHERE domain = $1 AND local = $2`,
		domain, local, since.UnixMicro()).Scan(&u.Files, &u.Bytes, &oldest, &u.RecentFiles, &u.RecentBytes, &recentOldest)
	if err != nil {
		return u, fmt.Errorf("usage: %w", err)
	}
	if oldest.Valid {
		u.Oldest = fromMicro(oldest.Int64)
	}
	if recentOldest.Valid {
		u.RecentOldest = fromMicro(recentOldest.Int64)
	}
	return u, nil
}

const uploadColumns = `id, domain, local, name, size, content_type, created_at, uploaded_at`

// scanUpload reads one row of uploadColumns.
func scanUpload(row interface{ Scan(...any) error }) (storage.Upload, error) {
	var (
		u                 storage.Upload
		domain, local     string
		created, uploaded int64
	)
	if err := row.Scan(&u.ID, &domain, &local, &u.Name, &u.Size, &u.ContentType, &created, &uploaded); err != nil {
		return u, err
	}
	owner, err := jid.New(local, domain, "")
	if err != nil {
		return u, fmt.Errorf("stored owner %s@%s: %w", local, domain, err)
	}
	u.Owner, u.Created = owner, fromMicro(created)
	if uploaded != 0 {
		u.Uploaded = fromMicro(uploaded)
	}
	return u, nil
}

// Get reads one upload.
func (s uploads) Get(ctx context.Context, id string) (storage.Upload, error) {
	u, err := scanUpload(s.db.sql.QueryRowContext(ctx, `SELECT `+uploadColumns+` FROM upload_files WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return storage.Upload{}, fmt.Errorf("storage: get upload %s: %w", id, err)
	}
	return u, nil
}

// Claim sets uploading on a pending slot; the condition in the UPDATE,
// not a read before it, decides between two PUTs.
func (s uploads) Claim(ctx context.Context, id string) error {
	res, err := s.db.sql.ExecContext(ctx,
		`UPDATE upload_files SET uploading = $2 WHERE id = $1 AND uploaded_at = 0 AND uploading = $3`, id, true, false)
	err = oneRow(res, err, storage.ErrExists)
	if errors.Is(err, storage.ErrExists) {
		if _, gerr := s.Get(ctx, id); errors.Is(gerr, storage.ErrNotFound) {
			err = storage.ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("storage: claim upload %s: %w", id, err)
	}
	return nil
}

// Release clears uploading on a slot not yet uploaded.
func (s uploads) Release(ctx context.Context, id string) error {
	if _, err := s.db.sql.ExecContext(ctx,
		`UPDATE upload_files SET uploading = $2 WHERE id = $1 AND uploaded_at = 0`, id, false); err != nil {
		return fmt.Errorf("storage: release upload %s: %w", id, err)
	}
	return nil
}

// Complete records the end of the claimed slot's PUT.
func (s uploads) Complete(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.sql.ExecContext(ctx,
		`UPDATE upload_files SET uploading = $2, uploaded_at = $3 WHERE id = $1 AND uploaded_at = 0 AND uploading = $4`,
		id, false, at.UnixMicro(), true)
	if err := oneRow(res, err, storage.ErrNotFound); err != nil {
		return fmt.Errorf("storage: complete upload %s: %w", id, err)
	}
	return nil
}

// Delete removes one row.
func (s uploads) Delete(ctx context.Context, id string) error {
	if _, err := s.db.sql.ExecContext(ctx, `DELETE FROM upload_files WHERE id = $1`, id); err != nil {
		return fmt.Errorf("storage: delete upload %s: %w", id, err)
	}
	return nil
}

// Expired reads the uploads past their time, oldest first.
func (s uploads) Expired(ctx context.Context, uploadedBefore, pendingBefore time.Time, limit int) ([]storage.Upload, error) {
	list, err := s.expired(ctx, uploadedBefore, pendingBefore, limit)
	if err != nil {
		return nil, fmt.Errorf("storage: expired uploads: %w", err)
	}
	return list, nil
}

func (s uploads) expired(ctx context.Context, uploadedBefore, pendingBefore time.Time, limit int) ([]storage.Upload, error) {
	// uploaded_at > 0 AND uploaded_at < 0 matches nothing: zero
	// uploadedBefore keeps uploaded files.
	var before int64
	if !uploadedBefore.IsZero() {
		before = uploadedBefore.UnixMicro()
	}
	rows, err := s.db.sql.QueryContext(ctx, `
		SELECT `+uploadColumns+` FROM upload_files
		WHERE (uploaded_at > 0 AND uploaded_at < $1) OR (uploaded_at = 0 AND created_at < $2)
		ORDER BY created_at, id LIMIT $3`, before, pendingBefore.UnixMicro(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []storage.Upload
	for rows.Next() {
		u, err := scanUpload(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, u)
	}
	return list, rows.Err()
}
