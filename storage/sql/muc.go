package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
)

// rooms implements storage.Rooms over the muc_rooms and muc_affiliations
// tables (migration 0011).
type rooms struct{ db *DB }

var _ storage.Rooms = rooms{}

// Rooms returns the persistent rooms of the multi-user chat services.
func (db *DB) Rooms() storage.Rooms { return rooms{db} }

const roomColumns = `domain, local, config, subject, subject_by, subject_at, secret, creator, created_at`

// PutRoom upserts the room's row; its affiliations stay.
func (s rooms) PutRoom(ctx context.Context, r storage.Room) error {
	cfg, err := json.Marshal(r.Config)
	if err != nil {
		return fmt.Errorf("storage: put room %s: %w", r.JID, err)
	}
	secret := r.Secret
	if secret == nil {
		secret = []byte{}
	}
	subjectAt := int64(0)
	if !r.SubjectAt.IsZero() {
		subjectAt = r.SubjectAt.UnixMicro()
	}
	_, err = s.db.sql.ExecContext(ctx, `
		INSERT INTO muc_rooms (`+roomColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (domain, local) DO UPDATE SET config = $3, subject = $4, subject_by = $5, subject_at = $6, secret = $7`,
		r.JID.Domainpart(), r.JID.Localpart(), string(cfg), r.Subject, r.SubjectBy, subjectAt, secret, r.Creator, r.Created.UnixMicro())
	if err != nil {
		return fmt.Errorf("storage: put room %s: %w", r.JID, err)
	}
	return nil
}

// scanRoom reads one row of roomColumns.
func scanRoom(row interface{ Scan(...any) error }) (storage.Room, error) {
	var (
		r                  storage.Room
		domain, local, cfg string
		subjectAt, created int64
	)
	if err := row.Scan(&domain, &local, &cfg, &r.Subject, &r.SubjectBy, &subjectAt, &r.Secret, &r.Creator, &created); err != nil {
		return r, err
	}
	j, err := jid.New(local, domain, "")
	if err != nil {
		return r, fmt.Errorf("room %s@%s: %w", local, domain, err)
	}
	r.JID = j
	if err := json.Unmarshal([]byte(cfg), &r.Config); err != nil {
		return r, fmt.Errorf("room %s: config: %w", j, err)
	}
	if subjectAt != 0 {
		r.SubjectAt = fromMicro(subjectAt)
	}
	r.Created = fromMicro(created)
	return r, nil
}

// Room reads one room.
func (s rooms) Room(ctx context.Context, room jid.JID) (storage.Room, error) {
	r, err := scanRoom(s.db.sql.QueryRowContext(ctx, `SELECT `+roomColumns+` FROM muc_rooms WHERE domain = $1 AND local = $2`,
		room.Domainpart(), room.Localpart()))
	if errors.Is(err, sql.ErrNoRows) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return storage.Room{}, fmt.Errorf("storage: get room %s: %w", room, err)
	}
	return r, nil
}

// ListRooms reads the rooms of a service, or all.
func (s rooms) ListRooms(ctx context.Context, service string) ([]storage.Room, error) {
	query, args := `SELECT `+roomColumns+` FROM muc_rooms ORDER BY domain, local`, []any{}
	if service != "" {
		query, args = `SELECT `+roomColumns+` FROM muc_rooms WHERE domain = $1 ORDER BY local`, []any{service}
	}
	rows, err := s.db.sql.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("storage: list rooms: %w", err)
	}
	defer rows.Close()
	var out []storage.Room
	for rows.Next() {
		r, err := scanRoom(rows)
		if err != nil {
			return nil, fmt.Errorf("storage: list rooms: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: list rooms: %w", err)
	}
	return out, nil
}

// DeleteRoom deletes the room; its affiliations go by the cascade.
func (s rooms) DeleteRoom(ctx context.Context, room jid.JID) error {
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		// Explicitly too, for a database without the cascade enforced.
		if _, err := tx.ExecContext(ctx, `DELETE FROM muc_affiliations WHERE domain = $1 AND local = $2`,
			room.Domainpart(), room.Localpart()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM muc_rooms WHERE domain = $1 AND local = $2`, room.Domainpart(), room.Localpart())
		return err
	})
	if err != nil {
		return fmt.Errorf("storage: delete room %s: %w", room, err)
	}
	return nil
}

// SetAffiliations writes the entries in one transaction.
func (s rooms) SetAffiliations(ctx context.Context, room jid.JID, affs []storage.RoomAffiliation) error {
	domain, local := room.Domainpart(), room.Localpart()
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM muc_rooms WHERE domain = $1 AND local = $2`, domain, local).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return storage.ErrNotFound
			}
			return err
		}
		for _, a := range affs {
			who := a.JID.Bare().String()
			if a.Affiliation == "none" || a.Affiliation == "" {
				if _, err := tx.ExecContext(ctx, `DELETE FROM muc_affiliations WHERE domain = $1 AND local = $2 AND jid = $3`,
					domain, local, who); err != nil {
					return err
				}
				continue
			}
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO muc_affiliations (domain, local, jid, affiliation, nick, reason) VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (domain, local, jid) DO UPDATE SET affiliation = $4, nick = $5, reason = $6`,
				domain, local, who, a.Affiliation, a.Nick, a.Reason); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: set affiliations of room %s: %w", room, err)
	}
	return nil
}

// Affiliations reads the room's lists.
func (s rooms) Affiliations(ctx context.Context, room jid.JID) ([]storage.RoomAffiliation, error) {
	rows, err := s.db.sql.QueryContext(ctx, `
		SELECT jid, affiliation, nick, reason FROM muc_affiliations WHERE domain = $1 AND local = $2 ORDER BY jid`,
		room.Domainpart(), room.Localpart())
	if err != nil {
		return nil, fmt.Errorf("storage: affiliations of room %s: %w", room, err)
	}
	defer rows.Close()
	var out []storage.RoomAffiliation
	for rows.Next() {
		var (
			a   storage.RoomAffiliation
			who string
		)
		if err := rows.Scan(&who, &a.Affiliation, &a.Nick, &a.Reason); err != nil {
			return nil, fmt.Errorf("storage: affiliations of room %s: %w", room, err)
		}
		if a.JID, err = jid.Parse(who); err != nil {
			return nil, fmt.Errorf("storage: affiliations of room %s: %s: %w", room, who, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: affiliations of room %s: %w", room, err)
	}
	return out, nil
}
