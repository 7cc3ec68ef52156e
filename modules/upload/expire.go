package upload

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// expireBatch is how many uploads one query of the expiry job returns.
const expireBatch = 100

// expireLoop sweeps at start and every ExpireEvery until ctx is done.
func (u *Upload) expireLoop(ctx context.Context) {
	defer u.wg.Done()
	t := time.NewTicker(u.opts.ExpireEvery)
	defer t.Stop()
	for {
		if err := u.sweep(ctx); err != nil && ctx.Err() == nil {
			u.h.Logger().Error("upload: expire files", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep deletes uploaded files older than ExpireAfter and slots that were
// never uploaded (past their PUT URL and a transfer's time), then files on
// disk that no record names: left by a crash, or by an account deleted
// while removing its files failed.
func (u *Upload) sweep(ctx context.Context) error {
	now := u.now()
	var uploadedBefore time.Time
	if exp := u.opts.ExpireAfter.Duration(); exp > 0 {
		uploadedBefore = now.Add(-exp)
	}
	pendingBefore := now.Add(-u.opts.SlotTimeout - u.opts.TransferTimeout)
	store := u.h.Store().Uploads()
	for {
		list, err := store.Expired(ctx, uploadedBefore, pendingBefore, expireBatch)
		if err != nil {
			return err
		}
		for _, slot := range list {
			if err := os.Remove(u.path(slot)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if err := store.Delete(ctx, slot.ID); err != nil {
				return err
			}
			if !slot.Uploaded.IsZero() {
				u.h.Logger().Debug("upload expired", "id", slot.ID, "account", slot.Owner.String())
			}
		}
		if len(list) < expireBatch {
			break
		}
	}
	return u.sweepOrphans(ctx, pendingBefore)
}

// sweepOrphans removes files without a record, and .part files older
// than partBefore (a PUT still writing is younger).
func (u *Upload) sweepOrphans(ctx context.Context, partBefore time.Time) error {
	dirs, err := os.ReadDir(u.root)
	if err != nil {
		return err
	}
	store := u.h.Store().Uploads()
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := filepath.Join(u.root, d.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, f := range files {
			p := filepath.Join(dir, f.Name())
			if id, ok := strings.CutSuffix(f.Name(), partSuffix); ok {
				if info, err := f.Info(); err == nil && info.ModTime().Before(partBefore) || !validID(id) {
					os.Remove(p)
				}
				continue
			}
			if !validID(f.Name()) {
				continue // not ours
			}
			if _, err := store.Get(ctx, f.Name()); errors.Is(err, storage.ErrNotFound) {
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
			} else if err != nil {
				return err
			}
		}
		os.Remove(dir) // fails unless empty, which is fine
	}
	return nil
}
