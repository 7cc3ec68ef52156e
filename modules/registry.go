package modules

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/xmppd/xmppd/config"
)

// entry is one registered module: how to build it from the configuration.
type entry struct {
	// build decodes the module's options from cfg (if it has any) and
	// returns a fresh, unstarted instance.
	build func(cfg *config.Config) (Module, error)
	// check decodes and validates the module's options only, building
	// nothing; nil for a module without options.
	check func(cfg *config.Config) error
	// defaults returns the default options, nil for a module without.
	defaults func() any
}

var (
	registryMu sync.RWMutex
	registry   = map[string]entry{}
)

// Register makes a module without options known by its ID: the module's
// package calls it in init(), e.g.
//
//	modules.Register("ping", func() *Ping { return new(Ping) })
//
// It panics on an empty or duplicate ID or a nil constructor, which are
// programming errors.
func Register[M Module](id string, newFunc func() M) {
	if newFunc == nil {
		panic("modules: Register needs an ID and a constructor")
	}
	add(id, entry{build: func(*config.Config) (Module, error) { return newFunc(), nil }})
}

// RegisterWithOptions makes a module known whose behaviour the operator
// tunes in its own block of the configuration, module_options.<id>. O is
// the options type, a struct with yaml tags; defaults holds every default,
// and the file's block is decoded over a copy of it, strictly (an unknown
// key is an error naming key and line). If *O implements Validator, the
// result is validated. newFunc gets the decoded options.
func RegisterWithOptions[O any, M Module](id string, defaults O, newFunc func(O) M) {
	if newFunc == nil {
		panic("modules: RegisterWithOptions needs an ID and a constructor")
	}
	add(id, entry{
		build: func(cfg *config.Config) (Module, error) {
			o, err := decodeOptions(cfg, id, defaults)
			if err != nil {
				return nil, err
			}
			return newFunc(o), nil
		},
		check: func(cfg *config.Config) error {
			_, err := decodeOptions(cfg, id, defaults)
			return err
		},
		defaults: func() any { return defaults },
	})
}

func add(id string, e entry) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if id == "" {
		panic("modules: Register needs an ID and a constructor")
	}
	if _, dup := registry[id]; dup {
		panic(fmt.Sprintf("modules: module %q registered twice", id))
	}
	registry[id] = e
}

func lookup(id string) (entry, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	e, ok := registry[id]
	return e, ok
}

// Known returns the IDs of all registered modules, sorted.
func Known() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	ids := make([]string, 0, len(registry))
	for id := range registry {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// DefaultOptions returns the default options of module id, and false for
// a module that is unknown or has no options: what `xmppd config example`
// must show.
func DefaultOptions(id string) (any, bool) {
	e, ok := lookup(id)
	if !ok || e.defaults == nil {
		return nil, false
	}
	return e.defaults(), true
}

// Check reports everything about cfg that only the module registry can
// know, all at once, for `xmppd config check` and before starting: module
// IDs that no module registered, options blocks for modules that are
// unknown or not enabled, and options that do not decode or validate. The
// config package cannot tell, because it does not import the modules.
func Check(cfg *config.Config) error {
	var errs []error
	for i, id := range cfg.Modules {
		if _, ok := lookup(id); !ok {
			errs = append(errs, cfg.Errorf(fmt.Sprintf("modules[%d]", i), "unknown module %q (known: %v)", id, Known()))
		}
	}
	errs = append(errs, checkOptionsBlocks(cfg, cfg.Modules)...)
	for _, id := range cfg.Modules {
		if e, ok := lookup(id); ok && e.check != nil {
			if err := e.check(cfg); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// checkOptionsBlocks reports the options blocks of cfg that no module in
// enabled will read: for a module nobody registered (a typo, most likely)
// or for one that is not enabled. Both are errors rather than warnings,
// because an operator who wrote a limit expects it to hold.
func checkOptionsBlocks(cfg *config.Config, enabled []string) []error {
	var errs []error
	for _, id := range cfg.ModuleOptionsIDs() {
		_, known := lookup(id)
		switch {
		case !known:
			errs = append(errs, cfg.ModuleOptionsError(id, fmt.Errorf("options for unknown module %q (known: %v)", id, Known())))
		case !slices.Contains(enabled, id):
			errs = append(errs, cfg.ModuleOptionsError(id, fmt.Errorf("options for module %q, which is not enabled: add it to modules, or remove its options", id)))
		}
	}
	return errs
}
