package caps

import (
	"container/list"
	"time"
)

// lru is a map of at most size entries that forgets the least recently
// used one to make room, so that peers advertising ever new vers cannot
// make the server remember without bound. It is not safe for concurrent
// use; the Resolver holds its lock around it.
type lru[V any] struct {
	size  int
	order *list.List // front: most recently used; values are *lruEntry[V]
	m     map[string]*list.Element
	// evicted, if set, hears of each entry forgotten to make room.
	evicted func(key string, v V)
}

type lruEntry[V any] struct {
	key   string
	value V
}

func newLRU[V any](size int) *lru[V] {
	return &lru[V]{size: max(size, 1), order: list.New(), m: map[string]*list.Element{}}
}

func (c *lru[V]) get(key string) (V, bool) {
	e, ok := c.m[key]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruEntry[V]).value, true
}

// peek is get without making the entry recently used.
func (c *lru[V]) peek(key string) (V, bool) {
	e, ok := c.m[key]
	if !ok {
		var zero V
		return zero, false
	}
	return e.Value.(*lruEntry[V]).value, true
}

func (c *lru[V]) put(key string, v V) {
	if e, ok := c.m[key]; ok {
		e.Value.(*lruEntry[V]).value = v
		c.order.MoveToFront(e)
		return
	}
	c.m[key] = c.order.PushFront(&lruEntry[V]{key: key, value: v})
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		e := last.Value.(*lruEntry[V])
		delete(c.m, e.key)
		if c.evicted != nil {
			c.evicted(e.key, e.value)
		}
	}
}

func (c *lru[V]) remove(key string) {
	if e, ok := c.m[key]; ok {
		c.order.Remove(e)
		delete(c.m, key)
	}
}

func (c *lru[V]) len() int { return c.order.Len() }

// failures remembers, for a while, the vers that no advertiser answered
// for, so that a ver nobody can resolve costs a few queries, not one per
// presence.
type failures struct {
	ttl time.Duration
	m   *lru[time.Time] // key → when to try again
}

func (f failures) failed(key string, now time.Time) { f.m.put(key, now.Add(f.ttl)) }

func (f failures) recent(key string, now time.Time) bool {
	until, ok := f.m.get(key)
	if ok && !now.Before(until) {
		f.m.remove(key)
		return false
	}
	return ok
}
