package caps

import (
	"slices"
)

// Features is the set of disco#info features of an entity. It never
// changes once made, so one value is shared by every resource that
// advertises the same verified ver and by the cache, without copies.
type Features struct {
	sorted []string // sorted, without duplicates
}

// NewFeatures makes a set of the features given.
func NewFeatures(features ...string) Features {
	s := slices.Clone(features)
	slices.Sort(s)
	return Features{sorted: slices.Compact(s)}
}

// Has tells whether feature is in the set.
func (f Features) Has(feature string) bool {
	_, ok := slices.BinarySearch(f.sorted, feature)
	return ok
}

// Len is the number of features.
func (f Features) Len() int { return len(f.sorted) }

// List returns the features, sorted, in a slice the caller may change.
func (f Features) List() []string { return slices.Clone(f.sorted) }
