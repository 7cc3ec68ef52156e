package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/router/subscription"
	"github.com/xmppd/xmppd/storage"
)

// Rosters performs operator roster operations (shared rosters for
// companies) directly on storage. Sessions that are online see the change
// at their next roster request: the CLI is another process and cannot push.
type Rosters struct {
	Users
	Store storage.Store
}

// bareJID parses a bare JID, local or remote, or a domain: what a roster
// holds as a contact and a room's lists as an affiliated entity.
func bareJID(s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil || s == "" {
		return jid.JID{}, fmt.Errorf("invalid JID %q", s)
	}
	if j.Resourcepart() != "" {
		return jid.JID{}, fmt.Errorf("invalid JID %q: rosters and room affiliations hold bare JIDs, without /resource", s)
	}
	return j, nil
}

// parsePair parses an account and a contact of its roster.
func (r Rosters) parsePair(account, contact string) (owner, other jid.JID, err error) {
	if owner, err = r.ParseAccount(account); err != nil {
		return owner, other, err
	}
	other, err = bareJID(contact)
	return owner, other, err
}

// existing checks that an account exists.
func (r Rosters) existing(ctx context.Context, j jid.JID) error {
	_, err := r.Store.Users().Get(ctx, j.Domainpart(), j.Localpart())
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("user %s does not exist", j)
	}
	return err
}

// List returns an account's roster.
func (r Rosters) List(ctx context.Context, account string) ([]storage.RosterItem, error) {
	owner, err := r.ParseAccount(account)
	if err != nil {
		return nil, err
	}
	if err := r.existing(ctx, owner); err != nil {
		return nil, err
	}
	items, _, err := r.Store.Rosters().Get(ctx, owner)
	return items, err
}

// Add puts contact into account's roster with a mutual subscription
// (both), and account into the contact's roster likewise: what a company
// directory expects. Both must be local accounts.
func (r Rosters) Add(ctx context.Context, account, contact, name string, groups []string) error {
	owner, other, err := r.parsePair(account, contact)
	if err != nil {
		return err
	}
	if _, ok := r.Config.Host(other.Domainpart()); !ok || other.Localpart() == "" {
		return fmt.Errorf("contact %s is not an account on this server: a mutual subscription can only be set up between local accounts", other)
	}
	if owner.Equal(other) {
		return errors.New("an account cannot be its own contact")
	}
	for _, j := range []jid.JID{owner, other} {
		if err := r.existing(ctx, j); err != nil {
			return err
		}
	}
	groups = uniqueSorted(groups)
	if err := r.putBoth(ctx, owner, other, name, groups, true); err != nil {
		return err
	}
	return r.putBoth(ctx, other, owner, "", nil, false)
}

// putBoth sets owner's item for contact to subscription both, keeping an
// existing item's name and groups unless override.
func (r Rosters) putBoth(ctx context.Context, owner, contact jid.JID, name string, groups []string, override bool) error {
	rosters := r.Store.Rosters()
	item, err := rosters.Item(ctx, owner, contact)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		item = storage.RosterItem{Contact: contact}
	case err != nil:
		return err
	}
	if override || item.Name == "" && len(item.Groups) == 0 {
		item.Name, item.Groups = name, groups
	}
	item.Subscription = storage.SubBoth
	item.PendingIn, item.PendingOut, item.Approved = false, false, false
	if _, err := rosters.Put(ctx, owner, item); err != nil {
		return fmt.Errorf("store roster item of %s: %w", owner, err)
	}
	return r.Store.SubscriptionRequests().Remove(ctx, owner, contact)
}

// Delete removes contact from account's roster. A local contact's own item
// for account loses its subscriptions the way an unsubscribe and an
// unsubscribed would have done it (RFC 6121 §2.5.2).
func (r Rosters) Delete(ctx context.Context, account, contact string) error {
	owner, other, err := r.parsePair(account, contact)
	if err != nil {
		return err
	}
	item, err := r.Store.Rosters().Item(ctx, owner, other)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%s is not in the roster of %s", other, owner)
	}
	if err != nil {
		return err
	}
	if _, err := r.Store.Rosters().Remove(ctx, owner, other); err != nil {
		return err
	}
	return r.cancelAtContact(ctx, owner, item)
}

// cancelAtContact applies to a local contact's roster what owner's removal
// of item would send it: unsubscribe and/or unsubscribed.
func (r Rosters) cancelAtContact(ctx context.Context, owner jid.JID, item storage.RosterItem) error {
	contact := item.Contact
	if _, ok := r.Config.Host(contact.Domainpart()); !ok || contact.Localpart() == "" {
		return nil
	}
	rosters := r.Store.Rosters()
	theirs, err := rosters.Item(ctx, contact, owner)
	exists := err == nil
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if !exists {
		theirs = storage.RosterItem{Contact: owner, Subscription: storage.SubNone}
	}
	changed := false
	for _, typ := range subscription.Remove(item) {
		res := subscription.Inbound(theirs, exists, typ)
		if res.Changed {
			theirs, changed = res.Item, true
		}
	}
	if changed && exists {
		if _, err := rosters.Put(ctx, contact, theirs); err != nil {
			return fmt.Errorf("update roster of %s: %w", contact, err)
		}
	}
	return r.Store.SubscriptionRequests().Remove(ctx, contact, owner)
}

// cancelAll cancels owner's subscriptions at every local contact in its
// roster, and denies the requests waiting from contacts outside it, whose
// items would otherwise wait for an answer forever (ask='subscribe').
func (r Rosters) cancelAll(ctx context.Context, owner jid.JID) error {
	items, err := Contacts(ctx, r.Store, owner)
	if err != nil {
		return err
	}
	for _, it := range items {
		if err := r.cancelAtContact(ctx, owner, it); err != nil {
			return err
		}
	}
	return nil
}

// Contacts returns everyone owner has a subscription relation with: the
// roster items, plus an item with only PendingIn for each contact outside
// the roster whose subscription request is unanswered (RFC 6121 A.1 keeps
// such requests outside the roster). subscription.Remove of each says what
// to send them when the account goes away.
func Contacts(ctx context.Context, store storage.Store, owner jid.JID) ([]storage.RosterItem, error) {
	items, _, err := store.Rosters().Get(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("load roster of %s: %w", owner, err)
	}
	reqs, err := store.SubscriptionRequests().List(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("load subscription requests of %s: %w", owner, err)
	}
	for _, req := range reqs {
		if !slices.ContainsFunc(items, func(it storage.RosterItem) bool { return it.Contact.Equal(req.From) }) {
			items = append(items, storage.RosterItem{Contact: req.From, Subscription: storage.SubNone, PendingIn: true})
		}
	}
	return items, nil
}

func uniqueSorted(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
