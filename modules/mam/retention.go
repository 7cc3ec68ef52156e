package mam

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/storage"
)

// retentionPause is how long the retention job waits between two batches
// of one pass: long enough for the writes of routing (archiving, offline
// storage) waiting on the database, which SQLite serialises, to go first.
const retentionPause = 10 * time.Millisecond

// startRetention deletes the messages archived longer ago than
// o.ExpireAfter (archive.expire_after), at once and then every
// o.ExpireEvery, in batches of o.ExpireBatch, until stop is called; stop
// waits for a pass in progress to end. With ExpireAfter zero, messages are
// kept forever and nothing is started.
//
// Each pass calls Archives.Expire until a batch deletes fewer than the
// batch size, pausing between batches, so that no transaction holds the
// database for long and routing never waits behind the job. A failed pass
// is logged and tried again at the next tick.
func startRetention(ctx context.Context, a storage.Archives, o config.Archive, log *slog.Logger) (stop func()) {
	if o.ExpireAfter <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := retentionJob{archives: a, opts: o, log: log}
		tick := time.NewTicker(o.ExpireEvery)
		defer tick.Stop()
		for {
			r.run(ctx)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}

// retentionJob is the job that startRetention runs.
type retentionJob struct {
	archives storage.Archives
	opts     config.Archive
	log      *slog.Logger
}

// pass deletes, batch by batch, the messages archived before
// now - ExpireAfter, and says how many it deleted in how many batches
// (calls of Expire).
func (r retentionJob) pass(ctx context.Context, now time.Time) (deleted int64, batches int, err error) {
	before := now.Add(-r.opts.ExpireAfter.Duration())
	for {
		n, err := r.archives.Expire(ctx, before, r.opts.ExpireBatch)
		if err != nil {
			return deleted, batches, fmt.Errorf("mam: expire messages archived before %s: %w", before.Format(time.RFC3339), err)
		}
		deleted += n
		batches++
		if n < int64(r.opts.ExpireBatch) {
			return deleted, batches, nil
		}
		if err := retentionWait(ctx, retentionPause); err != nil {
			return deleted, batches, err
		}
	}
}

// run runs one pass and logs what it did: at info level only when it
// deleted something, so that an hourly job on a small server stays quiet.
func (r retentionJob) run(ctx context.Context) {
	deleted, batches, err := r.pass(ctx, time.Now())
	switch {
	case err != nil && ctx.Err() != nil:
		// Stopped: the server is shutting down, not failing.
	case err != nil:
		r.log.Error("mam: retention pass failed", "deleted", deleted, "err", err)
	default:
		level := slog.LevelDebug
		if deleted > 0 {
			level = slog.LevelInfo
		}
		r.log.Log(ctx, level, "mam: expired archived messages",
			"deleted", deleted, "batches", batches, "expire_after", r.opts.ExpireAfter.String())
	}
}

// retentionWait waits for d, or returns ctx's error if it ends first.
func retentionWait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
