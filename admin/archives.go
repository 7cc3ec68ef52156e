package admin

import (
	"context"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/storage"
)

// Archives performs operator operations on accounts' message archives
// (XEP-0313): what a user's client cannot do, such as emptying an archive
// for a departing employee, or seeing what the archives cost on disk.
type Archives struct {
	Users
	Store storage.Store
}

// Purge deletes the messages of account's archive archived before the
// time given, or all of them for the zero time, and says how many.
func (a Archives) Purge(ctx context.Context, account string, before time.Time) (jid.JID, int64, error) {
	j, err := a.existingAccount(ctx, account)
	if err != nil {
		return j, 0, err
	}
	n, err := a.Store.Archives().Purge(ctx, j, before)
	if err != nil {
		return j, n, fmt.Errorf("purge the archive of %s: %w", j, err)
	}
	return j, n, nil
}

// Stats describes account's archive, or every archive when account is "".
func (a Archives) Stats(ctx context.Context, account string) ([]storage.ArchiveStats, error) {
	var owner jid.JID
	if account != "" {
		j, err := a.existingAccount(ctx, account)
		if err != nil {
			return nil, err
		}
		owner = j
	}
	stats, err := a.Store.Archives().Stats(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("archive statistics: %w", err)
	}
	if account != "" && len(stats) == 0 {
		// An account that never archived anything has an empty archive.
		stats = []storage.ArchiveStats{{Owner: owner}}
	}
	return stats, nil
}

// existingAccount parses account and checks that it exists: an archive
// command on a mistyped name says so rather than finding nothing.
func (a Archives) existingAccount(ctx context.Context, account string) (jid.JID, error) {
	j, err := a.ParseAccount(account)
	if err != nil {
		return j, err
	}
	return j, Rosters{Users: a.Users, Store: a.Store}.existing(ctx, j)
}

// statsLine shows one archive's statistics, tab-separated like roster list.
func statsLine(s storage.ArchiveStats) string {
	line := fmt.Sprintf("%s\tmessages=%d\tbytes=%d", s.Owner, s.Messages, s.Bytes)
	if s.FirstID != "" {
		line += fmt.Sprintf("\tfirst=%s %s\tlast=%s %s",
			s.FirstID, s.FirstStamp.UTC().Format(time.RFC3339), s.LastID, s.LastStamp.UTC().Format(time.RFC3339))
	}
	return line
}

// archiveStats is archive stats; its Value is the []storage.ArchiveStats.
func archiveStats(ctx context.Context, env *Env, in Input) (res Result, err error) {
	err = env.withArchives(ctx, func(a Archives) error {
		stats, err := a.Stats(ctx, in.String("jid"))
		if err != nil {
			return err
		}
		res = linesOf(stats, statsLine)
		return nil
	})
	return res, err
}

// archivePurge is archive purge; its Value is the number of messages
// deleted.
func archivePurge(ctx context.Context, env *Env, in Input) (res Result, err error) {
	before := in.Time("before")
	err = env.withArchives(ctx, func(a Archives) error {
		j, n, err := a.Purge(ctx, in.String("jid"), before)
		if err != nil {
			return err
		}
		if before.IsZero() {
			res = textf(n, "deleted %d message(s), the whole archive of %s", n, j)
		} else {
			res = textf(n, "deleted %d message(s) archived before %s from the archive of %s", n, before.Format(time.RFC3339Nano), j)
		}
		return nil
	})
	return res, err
}

// checkPurgeAll makes emptying a whole archive, which cannot be undone,
// take --yes: a forgotten --before must not cost anyone their history.
func checkPurgeAll(_ *Env, in Input) error {
	if in.Time("before").IsZero() && !in.Bool("yes") {
		return fmt.Errorf("archive purge without --before deletes every message of %s: add --yes to do that", in.JID("jid"))
	}
	return nil
}
