// Package admin holds the operator's operations (add a user, change a
// password, …) defined once, with their input checks, so that the CLI, the
// later control socket and XEP-0133 ad-hoc commands, and in-band
// registration share one implementation. Commands is the registry of them:
// each operation with its typed arguments, validation and result, from
// which cmd/xmppd builds its CLI.
package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/credential"
)

// Users performs account operations for the domains of one configuration.
type Users struct {
	Config *config.Config
	Users  storage.Users
	// Store, when set, lets Delete also cancel the account's subscriptions
	// in local contacts' rosters; without it Delete removes only the
	// account's own data.
	Store storage.Store
	// DeleteData, when set, removes what the account has outside the
	// database once Delete has deleted it there (uploaded files: see
	// modules.RemoveAccountData, which admin may not import).
	DeleteData func(ctx context.Context, account jid.JID) error
}

// ParseAccount parses and normalises an account JID (local@domain) and
// checks that its domain is served.
func (u Users) ParseAccount(s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, fmt.Errorf("invalid JID %q: %w", s, err)
	}
	if j.Localpart() == "" || j.Resourcepart() != "" {
		return jid.JID{}, fmt.Errorf("invalid account %q: want user@domain", s)
	}
	if _, ok := u.Config.Host(j.Domainpart()); !ok {
		return jid.JID{}, fmt.Errorf("domain %q is not served by this server (see hosts in the config)", j.Domainpart())
	}
	return j, nil
}

// withPassword parses account and derives the credentials of its new
// password.
func (u Users) withPassword(account, password string) (jid.JID, []storage.Credential, error) {
	j, err := u.ParseAccount(account)
	if err != nil {
		return j, nil, err
	}
	if password == "" {
		return j, nil, errors.New("empty password")
	}
	creds, err := credential.NewCredentials(password, u.Config.Auth.ScramIterations)
	if err != nil {
		return j, nil, fmt.Errorf("derive credentials: %w", err)
	}
	return j, creds, nil
}

// Add creates an account.
func (u Users) Add(ctx context.Context, account, password string) (jid.JID, error) {
	j, creds, err := u.withPassword(account, password)
	if err != nil {
		return j, err
	}
	err = u.Users.Create(ctx, storage.User{Local: j.Localpart(), Domain: j.Domainpart(), Created: time.Now(), Credentials: creds})
	if errors.Is(err, storage.ErrExists) {
		return j, fmt.Errorf("user %s already exists", j)
	}
	return j, err
}

// SetPassword replaces an account's credentials.
func (u Users) SetPassword(ctx context.Context, account, password string) (jid.JID, error) {
	j, creds, err := u.withPassword(account, password)
	if err != nil {
		return j, err
	}
	err = u.Users.SetCredentials(ctx, j.Domainpart(), j.Localpart(), creds)
	if errors.Is(err, storage.ErrNotFound) {
		return j, fmt.Errorf("user %s does not exist", j)
	}
	return j, err
}

// Delete removes an account and all its data. With Store set, local
// contacts' roster items for the account first lose their subscriptions, as
// an unsubscribe and unsubscribed would have done (RFC 6121 §2.5.2), so
// that nobody keeps a subscription to an account that no longer exists.
func (u Users) Delete(ctx context.Context, account string) (jid.JID, error) {
	j, err := u.ParseAccount(account)
	if err != nil {
		return j, err
	}
	if u.Store != nil {
		if err := (Rosters{Users: u, Store: u.Store}).cancelAll(ctx, j); err != nil {
			return j, fmt.Errorf("cancel subscriptions of %s: %w", j, err)
		}
	}
	err = u.Users.Delete(ctx, j.Domainpart(), j.Localpart())
	if errors.Is(err, storage.ErrNotFound) {
		return j, fmt.Errorf("user %s does not exist", j)
	}
	if err == nil && u.DeleteData != nil {
		if err := u.DeleteData(ctx, j); err != nil {
			return j, fmt.Errorf("deleted %s, but not all of its files: %w", j, err)
		}
	}
	return j, err
}

// List returns the accounts of a served domain, or of all when domain is "".
func (u Users) List(ctx context.Context, domain string) ([]jid.JID, error) {
	if domain != "" {
		d, err := parseDomain(domain)
		if err != nil {
			return nil, err
		}
		domain = d.Domainpart()
		if _, ok := u.Config.Host(domain); !ok {
			return nil, fmt.Errorf("domain %q is not served by this server (see hosts in the config)", domain)
		}
	}
	list, err := u.Users.List(ctx, domain)
	if err != nil {
		return nil, err
	}
	out := make([]jid.JID, 0, len(list))
	for _, usr := range list {
		j, err := jid.New(usr.Local, usr.Domain, "")
		if err != nil {
			return nil, fmt.Errorf("stored account %s@%s: %w", usr.Local, usr.Domain, err)
		}
		out = append(out, j)
	}
	return out, nil
}
