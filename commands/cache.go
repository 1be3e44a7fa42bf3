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
