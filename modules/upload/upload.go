// Package upload implements HTTP File Upload (XEP-0363): a service at
// upload.DOMAIN gives local accounts slots, each a PUT URL to upload one
// file of a given size and type and a GET URL to share it, and serves both
// on the server's one web server (package web) at /upload/ID/NAME.
//
// The URLs carry an HMAC of what they allow and until when, keyed by a
// secret from the configuration (or generated once into data_dir), so that
// nobody can make one up or change one; the slot's record in the store is
// still what decides (a PUT is accepted once, with the slot's exact size
// and type; a GET only of an uploaded file), and it is where the quota and
// the daily limit are counted. Files are named on disk by the slot's
// random ID, in a directory per account under data_dir/upload: the
// client's file name appears only in the URL and in Content-Disposition,
// so no name reaches the file system. A goroutine the module owns deletes
// files after expire_after, and slots nobody uploaded to; deleting an
// account removes its directory (modules.RegisterAccountDataRemover).
package upload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/web"
)

// Namespaces of XEP-0363 and of what it builds on.
const (
	NS         = "urn:xmpp:http:upload:0"
	nsInfo     = "http://jabber.org/protocol/disco#info"
	nsItems    = "http://jabber.org/protocol/disco#items"
	nsData     = "jabber:x:data"
	moduleID   = "upload"
	secretFile = "upload-secret" // in data_dir, when secret is not set
	filesDir   = "upload"        // in data_dir
	// Path is where the slots' URLs are served: Path/ID/NAME.
	Path = "/upload/"
)

func init() {
	modules.RegisterWithOptions(moduleID, DefaultOptions(), New)
	modules.RegisterAccountDataRemover(moduleID, removeAccountFiles)
}

// Options are the upload module's settings, module_options.upload.
type Options struct {
	// Domains are the served domains whose accounts may ask for slots,
	// each with a service at upload.DOMAIN; empty: every served domain.
	Domains []string `yaml:"domains"`
	// MaxFileSize bounds one file, in bytes (file-too-large beyond),
	// and is what disco announces as max-file-size.
	MaxFileSize int64 `yaml:"max_file_size"`
	// Quota bounds what one account's files take at once, in bytes;
	// 0: no quota.
	Quota int64 `yaml:"quota"`
	// DailyQuota bounds the bytes one account may ask slots for within
	// any 24 hours; 0: no daily limit.
	DailyQuota int64 `yaml:"daily_quota"`
	// ExpireAfter is how long an uploaded file is kept and served; 0
	// keeps files until their account is deleted.
	ExpireAfter config.Period `yaml:"expire_after"`
	// SlotTimeout is how long a PUT URL is valid (XEP-0363 §7 suggests
	// about 300 s): a client uploads right after it asks.
	SlotTimeout time.Duration `yaml:"slot_timeout"`
	// TransferTimeout bounds one PUT or GET, which are exempt from the
	// web server's read and write timeouts because a large file over a
	// slow line takes longer than a minute.
	TransferTimeout time.Duration `yaml:"transfer_timeout"`
	// ExpireEvery is how often expired files and abandoned slots are
	// looked for.
	ExpireEvery time.Duration `yaml:"expire_every"`
	// Secret keys the URLs' HMAC; write it as ${VAR}. Empty: a random
	// one generated on first start into data_dir/upload-secret and kept
	// there, so that URLs stay valid across restarts. Set it when several
	// nodes serve the files.
	Secret string `yaml:"secret"`
	// PublicURL is the base of the URLs handed out
	// ("https://upload.example.org") when a reverse proxy serves them;
	// empty: web.public_url, else https (or, with no https listener,
	// http) at the account's domain and the listener's port.
	PublicURL string `yaml:"public_url"`
}

// DefaultOptions allow files of 100 MiB, 1 GiB per account and 1 GiB a
// day, kept a week: ejabberd's and Prosody's figures are of this order.
func DefaultOptions() Options {
	return Options{
		Domains:         []string{},
		MaxFileSize:     100 << 20,
		Quota:           1 << 30,
		DailyQuota:      1 << 30,
		ExpireAfter:     config.Period(7 * 24 * time.Hour),
		SlotTimeout:     5 * time.Minute,
		TransferTimeout: 10 * time.Minute,
		ExpireEvery:     time.Hour,
	}
}

// Validate implements modules.Validator.
func (o *Options) Validate() error {
	errs := []error{
		modules.MustBePositive("max_file_size", int(min(o.MaxFileSize, 1<<62))),
		modules.MustBePositive("slot_timeout", o.SlotTimeout),
		modules.MustBePositive("transfer_timeout", o.TransferTimeout),
		modules.MustBePositive("expire_every", o.ExpireEvery),
	}
	if o.Quota < 0 || o.DailyQuota < 0 || o.ExpireAfter < 0 {
		errs = append(errs, errors.New("quota, daily_quota and expire_after must not be negative (0: no limit)"))
	}
	if o.Quota > 0 && o.Quota < o.MaxFileSize {
		errs = append(errs, fmt.Errorf("quota %d is less than max_file_size %d", o.Quota, o.MaxFileSize))
	}
	if u := o.PublicURL; u != "" && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		errs = append(errs, fmt.Errorf("public_url %q: want an http:// or https:// URL", u))
	}
	return errors.Join(errs...)
}

// Upload is the HTTP File Upload module.
type Upload struct {
	opts    Options
	h       *modules.Host
	root    string // data_dir/upload
	secret  []byte
	domains []string // whose accounts may upload
	// now is the module's clock; tests set it.
	now func() time.Time
	// stored and served count file bytes in and out, for UploadBytes.
	stored, served atomic.Uint64

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var (
	_ modules.Starter = (*Upload)(nil)
	_ modules.Stopper = (*Upload)(nil)
)

// UploadBytes returns the bytes of the files uploaded (completed PUTs)
// and of the file bodies served (GETs, ranges counted as sent), since the
// module started: the metrics endpoint's upload counters.
func (u *Upload) UploadBytes() (stored, served uint64) {
	return u.stored.Load(), u.served.Load()
}

// New returns an unstarted module.
func New(o Options) *Upload { return &Upload{opts: o, now: time.Now} }

// Start implements modules.Starter: it loads the secret, makes the files'
// directory, registers the services and the route, and starts expiry.
func (u *Upload) Start(ctx context.Context, h *modules.Host) error {
	u.h = h
	cfg := h.Config()
	u.root = filepath.Join(cfg.DataDir, filesDir)
	if err := os.MkdirAll(u.root, 0o700); err != nil {
		return fmt.Errorf("upload: files directory: %w", err)
	}
	secret, err := modules.LoadSecret(u.opts.Secret, filepath.Join(cfg.DataDir, secretFile))
	if err != nil {
		return err
	}
	u.secret = secret
	u.domains = u.opts.Domains
	if len(u.domains) == 0 {
		u.domains = h.Router().Domains()
	}
	for _, d := range u.domains {
		if !h.Router().ServesUsers(d) {
			return fmt.Errorf("upload: domains: %q is not a served domain", d)
		}
		if err := u.addService("upload." + d); err != nil {
			return err
		}
	}
	if err := h.HandleHTTP(web.Route{
		Pattern: Path + "{id}/{name}", Handler: u, MaxBodySize: u.opts.MaxFileSize, LongLived: true,
	}); err != nil {
		return err
	}
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	u.cancel = cancel
	u.wg.Add(1)
	go u.expireLoop(run)
	return nil
}

// Stop implements modules.Stopper: it stops expiry and waits for it.
func (u *Upload) Stop() error {
	if u.cancel != nil {
		u.cancel()
	}
	u.wg.Wait()
	return nil
}

// addService owns addr, answering disco and slot requests on it.
func (u *Upload) addService(addr string) error {
	if err := u.h.AddService(addr, nil); err != nil {
		return err
	}
	for _, r := range []struct {
		ns string
		fn func(context.Context, *router.Stanza) *router.Stanza
	}{{nsInfo, u.discoInfo}, {nsItems, u.discoItems}, {NS, u.requestSlot}} {
		if err := u.h.HandleServiceIQ(addr, stanza.GetIQ, r.ns, r.fn); err != nil {
			return err
		}
	}
	return nil
}

// mayUpload tells whether from is an account of a domain allowed to
// upload. The router stamps and s2s checks 'from', so a local domain in it
// is an authenticated local account.
func (u *Upload) mayUpload(from jid.JID) bool {
	return from.Localpart() != "" && u.h.Router().ServesUsers(from.Domainpart()) && slices.Contains(u.domains, from.Domainpart())
}

// accountDir names an account's directory under the files' root: a hash,
// so that it is a safe name for any JID and the same in every process.
func accountDir(account jid.JID) string {
	sum := sha256.Sum256([]byte(account.Bare().String()))
	return hex.EncodeToString(sum[:16])
}

// removeAccountFiles is the module's modules.AccountDataRemover.
func removeAccountFiles(_ context.Context, cfg *config.Config, account jid.JID) error {
	dir := filepath.Join(cfg.DataDir, filesDir, accountDir(account))
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
