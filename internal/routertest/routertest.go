// Package routertest helps tests that drive a router.Router directly,
// without listeners or clients: they parse stanzas from XML text, and run
// modules on a router over a real store, binding fake sessions to it.
// Tests that need the whole server use internal/testserver instead. This
// package imports the module API but no module, so that a module's own
// (internal) tests can use it without an import cycle.
package routertest

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/modules"
	"github.com/xmppd/xmppd/router"
	"github.com/xmppd/xmppd/storage"
)

// Domain is the domain StartModules's router serves.
const Domain = "localhost"

// Stanza parses a stanza from XML text as a client stream would deliver
// it, or fails t.
func Stanza(t testing.TB, xml string) *router.Stanza {
	t.Helper()
	e, err := router.ParseElement([]byte(xml), router.NSClient)
	if err != nil {
		t.Fatalf("parse %s: %v", xml, err)
	}
	st, err := router.NewStanza(e)
	if err != nil {
		t.Fatalf("stanza %s: %v", xml, err)
	}
	return st
}

// Accounts answers the router's "does this account exist" from storage,
// as the server does.
type Accounts struct{ Users storage.Users }

var _ router.Accounts = Accounts{}

// Exists implements router.Accounts.
func (a Accounts) Exists(ctx context.Context, bare jid.JID) (bool, error) {
	_, err := a.Users.Get(ctx, bare.Domainpart(), bare.Localpart())
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// StartModules makes a router for Domain whose accounts are those of
// store, creates the accounts locals there (without credentials: nobody
// logs in to them) and starts the modules ids on it with store and cfg.
// The modules stop when the test ends.
func StartModules(t testing.TB, store storage.Store, cfg *config.Config, ids []string, locals ...string) *router.Router {
	t.Helper()
	ctx := context.Background()
	for _, l := range locals {
		if err := store.Users().Create(ctx, storage.User{Local: l, Domain: Domain, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.DiscardHandler)
	r := router.New(log, router.NewLocalRegistry(), Accounts{store.Users()}, []string{Domain})
	set, err := modules.Start(ctx, ids, r, store, cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Stop() })
	return r
}
