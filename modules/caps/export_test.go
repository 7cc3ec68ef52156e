package caps

// What the tests inspect of a Resolver's state: these are what bounds and
// deduplication are about, and reading them needs no waiting.

// Flights is the number of queries waiting or running.
func (r *Resolver) Flights() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.flights)
}

// Cached is the number of verified vers in the cache, and whether the ver
// made with hash is one.
func (r *Resolver) Cached(hash, ver string) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.cache.peek(Caps{Hash: hash, Ver: ver}.key())
	return r.cache.len(), ok
}

// Resources is the number of full JIDs known.
func (r *Resolver) Resources() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resources.len()
}

// OnGaveUp sets the hook that hears of flights that ended without an
// answer to cache.
func (r *Resolver) OnGaveUp(f func(key string)) {
	r.mu.Lock()
	r.gaveUp = f
	r.mu.Unlock()
}
