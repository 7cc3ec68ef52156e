package modules

import (
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/xmppd/xmppd/config"
)

// Validator is implemented by a module's options type (Caddy's idea) when
// some values are wrong whatever their YAML type says: a limit that must be
// positive, two settings that exclude each other. The registry calls it on
// the decoded options, after defaults and file are merged, and reports its
// error at the line of the module's block.
type Validator interface {
	Validate() error
}

// decodeOptions decodes module id's block of cfg over defaults and
// validates the result.
func decodeOptions[O any](cfg *config.Config, id string, defaults O) (O, error) {
	o := defaults
	if err := cfg.DecodeModuleOptions(id, &o); err != nil {
		return defaults, err
	}
	if v, ok := any(&o).(Validator); ok {
		if err := v.Validate(); err != nil {
			return defaults, cfg.ModuleOptionsError(id, err)
		}
	}
	return o, nil
}

// MustBePositive is the check most options' Validate makes: a limit or a
// period of zero or less would turn a feature off or make it refuse
// everything, which is never what an operator who set it meant. key is the
// option's YAML key, so that the error says which one.
func MustBePositive[T int | time.Duration](key string, v T) error {
	if v <= 0 {
		return fmt.Errorf("%s: must be positive, not %v", key, v)
	}
	return nil
}

// CheckServicePrefix is the check of a service's prefix option (pubsub,
// muc): the service of each domain is PREFIX.DOMAIN, so the prefix must
// make a domain with any served domain. key is the option's YAML key.
func CheckServicePrefix(key, prefix string) error {
	if prefix == "" {
		return errors.New(key + ": must not be empty")
	}
	if _, err := jid.New("", prefix+".example.org", ""); err != nil {
		return fmt.Errorf("%s: %q does not make a domain: %w", key, prefix, err)
	}
	return nil
}
