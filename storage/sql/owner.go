package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
)

// errNoAccount is returned (wrapped) by a write for an account that does
// not exist.
var errNoAccount = fmt.Errorf("account %w", storage.ErrNotFound)

// ownerKey returns the columns that name an account in every per-account
// table. A resource in owner is ignored: data belongs to the account.
func ownerKey(owner jid.JID) (domain, local string) {
	return owner.Domainpart(), owner.Localpart()
}

// accountErr turns the failure of a write that refers to a missing account
// into errNoAccount, and leaves other errors as they are. The foreign key
// to users, not a lookup before the write, decides whether it exists, so a
// write that races with the account's deletion fails cleanly.
func accountErr(err error) error {
	if isForeignKeyViolation(err) {
		return errNoAccount
	}
	return err
}

// lockAccount locks the account's users row until tx ends, so that writes
// that must see each other's effects (a count before an insert) take
// turns; errNoAccount if it does not exist. In SQLite the transaction holds
// the database's write lock already.
func (db *DB) lockAccount(ctx context.Context, tx *sql.Tx, owner jid.JID) error {
	domain, local := ownerKey(owner)
	var one int
	err := tx.QueryRowContext(ctx,
		`SELECT 1 FROM users WHERE domain = $1 AND local = $2`+db.dialect.forUpdate,
		domain, local).Scan(&one)
	if err == sql.ErrNoRows {
		return errNoAccount
	}
	return err
}

// inReadTx runs fn in a read-only transaction that sees one snapshot of
// the database, for reads that must agree with each other (a roster and
// its version). PostgreSQL needs REPEATABLE READ for that; SQLite in WAL
// mode gives it to every transaction, and read-only ones begin without the
// write lock (see sqliteParams), so they do not hold up writers.
func (db *DB) inReadTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	defer db.observe(OpRead, time.Now())
	tx, err := db.sql.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// notNil returns b, or an empty slice for nil: PostgreSQL stores a nil
// []byte as NULL, which the NOT NULL columns refuse.
func notNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
