package commands

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
)

// Assignment rules: the catalogue (catalogue-assignment-rules, decided like the other
// reference data), and the round robin cursors (one stream per rule). The reactor that
// applies the rules is Automation (automation.go).

// AssignmentRules lists the current rules in priority order.
func (c *Catalogues) AssignmentRules() []domain.VersionedAssignmentRule {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rules.Rules
}

// AssignmentRule returns one current rule.
func (c *Catalogues) AssignmentRule(name string) (domain.VersionedAssignmentRule, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rules.Lookup(name)
}

// SaveAssignmentRule validates and stores a new version of a rule; saving a rule
// unchanged stores nothing.
func (h *Handler) SaveAssignmentRule(ctx context.Context, def domain.AssignmentRuleDefinition, meta Meta) ([]domain.Event, error) {
	meta = h.withDefaults(meta)
	return h.ref.decideAndAppend(ctx, h.store, domain.AssignmentRulesStream, h.metadata(meta), func() ([]domain.Payload, error) {
		h.ref.mu.RLock()
		s := h.ref.rules
		h.ref.mu.RUnlock()
		return domain.DecideSaveAssignmentRule(&s, def)
	})
}

// RemoveAssignmentRule removes a rule. Tickets it assigned keep their assignee.
func (h *Handler) RemoveAssignmentRule(ctx context.Context, name string, meta Meta) ([]domain.Event, error) {
	meta = h.withDefaults(meta)
	return h.ref.decideAndAppend(ctx, h.store, domain.AssignmentRulesStream, h.metadata(meta), func() ([]domain.Payload, error) {
		h.ref.mu.RLock()
		s := h.ref.rules
		h.ref.mu.RUnlock()
		return domain.DecideRemoveAssignmentRule(&s, name)
	})
}

// Command IDs of the automation. Each derives from the fact that made the command due,
// so every process that notices the fact, before or after a restart, sends the same
// command, and the ticket records it once.

// AssignmentCommandID is the command ID of a rule's assignment of a ticket: the ticket,
// the rule and its version, and the ticket version since which the ticket has had no
// assignee (so that a ticket a rule unassigned can be assigned again later, once).
func AssignmentCommandID(ticketID, rule string, ruleVersion int, unassignedSince uint64) string {
	return DeriveID("assignment-rule", ticketID, rule, fmt.Sprint(ruleVersion), fmt.Sprint(unassignedSince))
}

// UnassignmentCommandID is the command ID of a rule removing the assignee it gave at
// ticket version assignedAt.
func UnassignmentCommandID(ticketID, rule, assignee string, assignedAt uint64) string {
	return DeriveID("assignment-rule-unassign", ticketID, rule, assignee, fmt.Sprint(assignedAt))
}

// UnrepliedAlertCommandID is the command ID of the alert for a waiting message.
func UnrepliedAlertCommandID(ticketID, messageID string) string {
	return DeriveID("unreplied-alert", ticketID, messageID)
}

// cursors caches the round robin cursor of each rule, as the handler caches tickets: a
// stale entry is caught by the store's revision check and reloaded.
type cursors struct {
	mu      sync.Mutex
	entries map[string]*cursorEntry
}

type cursorEntry struct {
	mu       sync.Mutex
	state    domain.AssignmentCursor
	revision eventstore.Revision
	loaded   bool
}

func (c *cursors) entry(stream string) *cursorEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[string]*cursorEntry)
	}
	e := c.entries[stream]
	if e == nil {
		e = &cursorEntry{}
		c.entries[stream] = e
	}
	return e
}

// takeSlot gives the ticket the rule's next round robin turn, appended to the rule's
// cursor stream at the revision it was read at: a process that loses the race reloads
// and takes the following slot, so no slot is given twice. The slot is recorded under
// the assignment's command ID: a retried assignment (a crash before the ticket was
// assigned, or another process assigning the same ticket) finds its slot and user
// again instead of taking a new turn.
func (h *Handler) takeSlot(ctx context.Context, cs *cursors, rule domain.VersionedAssignmentRule, ticketID, commandID string) (domain.AssignmentSlotTaken, error) {
	stream := domain.AssignmentCursorStream(rule.Rule.Name())
	entry := cs.entry(stream)
	entry.mu.Lock()
	defer entry.mu.Unlock()
	for attempt := 1; ; attempt++ {
		if !entry.loaded {
			events, rev, err := loadStream(ctx, h.store, stream)
			if err != nil {
				return domain.AssignmentSlotTaken{}, mapStoreError(err)
			}
			entry.state = domain.AssignmentCursor{}
			for _, e := range events {
				domain.EvolveAssignmentCursor(&entry.state, e)
			}
			entry.revision, entry.loaded = rev, true
		}
		if slot, ok := entry.state.Taken(commandID); ok {
			return slot, nil
		}
		slot, err := domain.DecideTakeSlot(&entry.state, rule, ticketID)
		if err != nil {
			return domain.AssignmentSlotTaken{}, err
		}
		meta := domain.Metadata{CommandID: commandID, Actor: automationActor, CorrelationID: commandID, At: h.now()}
		events, err := domain.NewEvents(stream, entry.state.Version, entry.state.LastHash, meta, func(i int) string {
			return DeriveID(commandID, stream, fmt.Sprint(i))
		}, []domain.Payload{slot})
		if err != nil {
			return domain.AssignmentSlotTaken{}, err
		}
		data, err := encode(events)
		if err != nil {
			return domain.AssignmentSlotTaken{}, err
		}
		res, err := h.store.Append(ctx, stream, entry.revision, data)
		if err == nil {
			domain.EvolveAssignmentCursor(&entry.state, events[0])
			entry.revision = res.Revision
			return slot, nil
		}
		entry.loaded = false
		if (errors.Is(err, eventstore.ErrConflict) || errors.Is(err, eventstore.ErrDuplicate)) && attempt < maxAttempts {
			if errors.Is(err, eventstore.ErrConflict) {
				if err := conflictBackoff(ctx, attempt); err != nil {
					return domain.AssignmentSlotTaken{}, err
				}
			}
			continue
		}
		return domain.AssignmentSlotTaken{}, fmt.Errorf("round robin slot of rule %s: %w", rule.Rule.Name(), mapStoreError(err))
	}
}
