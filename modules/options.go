package modules

import (
	"fmt"
	"time"

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
