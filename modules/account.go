package modules

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
)

// AccountDataRemover removes what a module keeps about account outside
// the database (the database's own rows go with storage.Users.Delete):
// uploaded files, say. It is given the configuration, not a Host, because
// it runs wherever an account is deleted: in the server (XEP-0077
// <remove/>) and in `xmppd user del`, a process of its own where no
// module runs. It must succeed for an account that has no such data.
type AccountDataRemover func(ctx context.Context, cfg *config.Config, account jid.JID) error

var (
	removersMu sync.RWMutex
	removers   = map[string]AccountDataRemover{}
)

// RegisterAccountDataRemover makes f run for every deleted account; the
// module's package calls it in init(), beside Register. It panics on a
// duplicate ID or a nil f, which are programming errors.
func RegisterAccountDataRemover(id string, f AccountDataRemover) {
	removersMu.Lock()
	defer removersMu.Unlock()
	if id == "" || f == nil {
		panic("modules: RegisterAccountDataRemover needs an ID and a function")
	}
	if _, dup := removers[id]; dup {
		panic(fmt.Sprintf("modules: account data remover %q registered twice", id))
	}
	removers[id] = f
}

// RemoveAccountData runs every registered AccountDataRemover for account,
// enabled or not (data kept while a module was enabled outlives its being
// turned off), and joins their errors. Whoever deletes an account calls it
// after the database deleted it (admin.Users.DeleteData).
func RemoveAccountData(ctx context.Context, cfg *config.Config, account jid.JID) error {
	removersMu.RLock()
	ids := make([]string, 0, len(removers))
	for id := range removers {
		ids = append(ids, id)
	}
	fs := make([]AccountDataRemover, 0, len(ids))
	sort.Strings(ids)
	for _, id := range ids {
		fs = append(fs, removers[id])
	}
	removersMu.RUnlock()
	var errs []error
	for i, f := range fs {
		if err := f(ctx, cfg, account.Bare()); err != nil {
			errs = append(errs, fmt.Errorf("%s: remove data of %s: %w", ids[i], account.Bare(), err))
		}
	}
	return errors.Join(errs...)
}
