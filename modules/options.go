package modules

import (
	"fmt"
	"time"
)

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
