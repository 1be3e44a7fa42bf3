package commands

import (
	"sync"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
)

// stateCache keeps decided ticket states so that a command does not re-read its
// ticket's stream: the store's revision check detects a stale entry. It is bounded;
// when full, an arbitrary unlocked entry is dropped (it is only a cache).
type stateCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	mu       sync.Mutex // serialises commands on one ticket within this process
	loaded   bool
	state    domain.Ticket
	revision eventstore.Revision
}

func newStateCache(max int) *stateCache {
	return &stateCache{max: max, entries: make(map[string]*cacheEntry)}
}

func (c *stateCache) entry(id string) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[id]; ok {
		return e
	}
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if e.mu.TryLock() {
				delete(c.entries, k)
				e.mu.Unlock()
				break
			}
		}
	}
	e := &cacheEntry{}
	c.entries[id] = e
	return e
}

// cached returns the entry of id if the cache has one, for Handler.Observe: what the
// store holds is folded into the states commands keep, never into new entries.
func (c *stateCache) cached(id string) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[id]
}
