package storage

import (
	"context"
	"time"

	"mellium.im/xmpp/jid"
)

// Upload is one file of HTTP File Upload (XEP-0363): a slot an account
// asked for, and once the client has PUT the bytes, the file served at the
// slot's GET URL. The bytes are on disk (modules/upload), named by ID; the
// store holds what the HTTP side needs to check a request and serve it.
type Upload struct {
	// ID names the slot in its URLs and its file on disk; the module
	// makes it from random bytes.
	ID string
	// Owner is the account that asked for the slot (a bare JID).
	Owner jid.JID
	// Name is the file name the client gave, for the URL and for
	// Content-Disposition; never a path on disk.
	Name string
	// Size is the size in bytes the slot was asked for; the PUT must have
	// exactly this Content-Length.
	Size int64
	// ContentType is the slot's media type, the one the PUT must send.
	ContentType string
	// Created is when the slot was given.
	Created time.Time
	// Uploaded is when the PUT completed; zero while the slot waits for
	// its bytes.
	Uploaded time.Time
}

// UploadUsage is what an account's uploads take, for the module's quota
// and daily limit: every slot counts, pending or uploaded, from the moment
// it is given, so that many slots asked for at once cannot pass a limit
// together.
type UploadUsage struct {
	// Files and Bytes are all of the owner's uploads.
	Files int
	Bytes int64
	// Oldest is when the oldest of them was created (zero: none), from
	// which the module tells when space frees up.
	Oldest time.Time
	// RecentFiles and RecentBytes are those created since the time given
	// to Reserve; RecentOldest the oldest of those.
	RecentFiles  int
	RecentBytes  int64
	RecentOldest time.Time
}

// Uploads holds the slots and files of HTTP File Upload. Rows hang on the
// owner's account: deleting the account deletes them (the module removes
// the files).
type Uploads interface {
	// Reserve records a new slot u after check approved the owner's usage
	// (with RecentFiles and RecentBytes counted since since), in one
	// transaction that holds the owner's lock, so that concurrent
	// requests cannot all pass a limit. check's error is returned
	// wrapped; ErrNotFound if the owner has no account, ErrExists if the
	// ID is taken.
	Reserve(ctx context.Context, u Upload, since time.Time, check func(UploadUsage) error) error
	// Get returns one upload; ErrNotFound if absent.
	Get(ctx context.Context, id string) (Upload, error)
	// Claim marks a pending slot as being uploaded, so that only one PUT
	// writes it: ErrNotFound if there is no such slot, ErrExists if it is
	// uploaded or being uploaded already.
	Claim(ctx context.Context, id string) error
	// Release makes a claimed slot pending again, after a PUT that
	// failed; no error if it is not claimed.
	Release(ctx context.Context, id string) error
	// Complete marks a claimed slot uploaded at at; ErrNotFound if it is
	// not claimed (deleted meanwhile, with its account).
	Complete(ctx context.Context, id string, at time.Time) error
	// Delete removes an upload; no error if absent.
	Delete(ctx context.Context, id string) error
	// Expired returns at most limit uploads, oldest first, that were
	// uploaded before uploadedBefore (zero: none of these) or are still
	// pending and were created before pendingBefore.
	Expired(ctx context.Context, uploadedBefore, pendingBefore time.Time, limit int) ([]Upload, error)
}
