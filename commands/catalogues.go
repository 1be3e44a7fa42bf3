package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
)

// Catalogues holds the reference data (ticket types, priorities, support settings,
// holiday lists, SLAs) in memory for deciding. It is loaded from the catalogue streams,
// updated by this process's own writes at once, and by other processes' writes through
// Apply.
type Catalogues struct {
	mu         sync.RWMutex
	types      domain.Catalogue
	priorities domain.Catalogue
	settings   *domain.SettingsState
	holidays   domain.HolidayListsState
	slas       domain.SLACatalogue
	tokens     domain.TokensState
	email      domain.EmailAccountsState // email_accounts.go
	rules      domain.AssignmentRulesState
	revisions  map[string]eventstore.Revision
}

// catalogueStreams are the streams Catalogues folds, holiday lists before SLAs.
var catalogueStreams = []string{domain.TicketTypesStream, domain.TicketPrioritiesStream, domain.SupportSettingsStream, domain.HolidayListsStream, domain.SLAStream, domain.APITokensStream, domain.EmailAccountsStream, domain.AssignmentRulesStream}

// IsCatalogueStream reports whether stream holds reference data.
func IsCatalogueStream(stream string) bool {
	return slices.Contains(catalogueStreams, stream)
}

// LoadCatalogues reads every catalogue stream.
func LoadCatalogues(ctx context.Context, store eventstore.Store) (*Catalogues, error) {
	c := &Catalogues{settings: domain.NewSettingsState(), revisions: make(map[string]eventstore.Revision)}
	for _, stream := range catalogueStreams {
		if err := c.reload(ctx, store, stream); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// reload replaces one catalogue with the stream's current content.
func (c *Catalogues) reload(ctx context.Context, store eventstore.Store, stream string) error {
	events, rev, err := loadStream(ctx, store, stream)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch stream {
	case domain.TicketTypesStream:
		c.types = domain.Catalogue{}
	case domain.TicketPrioritiesStream:
		c.priorities = domain.Catalogue{}
	case domain.SupportSettingsStream:
		c.settings = domain.NewSettingsState()
	case domain.HolidayListsStream:
		c.holidays = domain.HolidayListsState{}
	case domain.SLAStream:
		c.slas = domain.SLACatalogue{}
	case domain.APITokensStream:
		c.tokens = domain.TokensState{}
	case domain.EmailAccountsStream:
		c.email = domain.EmailAccountsState{}
	case domain.AssignmentRulesStream:
		c.rules = domain.AssignmentRulesState{}
	}
	for _, e := range events {
		c.applyLocked(e)
	}
	c.revisions[stream] = rev
	return nil
}

// Apply folds an event another process wrote (fed by the projection runner) if it is
// the next one of its catalogue; others are ignored, so replays are harmless. The
// stream's revision is left as it was: the next write here then meets a conflict,
// reloads, and decides again, which is what a stale revision is for.
func (c *Catalogues) Apply(e domain.Event) {
	if !IsCatalogueStream(e.Stream) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if version, _, _ := c.headLocked(e.Stream); e.Sequence == version+1 {
		c.applyLocked(e)
	}
}

// headLocked tells where a catalogue stream stands: its version, its last hash (for the
// chain) and the commands it has applied (for idempotent retries).
func (c *Catalogues) headLocked(stream string) (uint64, string, *domain.CommandLog) {
	switch stream {
	case domain.TicketTypesStream:
		return c.types.Version, c.types.LastHash, &c.types.CommandLog
	case domain.TicketPrioritiesStream:
		return c.priorities.Version, c.priorities.LastHash, &c.priorities.CommandLog
	case domain.SupportSettingsStream:
		return c.settings.Version, c.settings.LastHash, &c.settings.CommandLog
	case domain.HolidayListsStream:
		return c.holidays.Version, c.holidays.LastHash, &c.holidays.CommandLog
	case domain.SLAStream:
		return c.slas.Version, c.slas.LastHash, &c.slas.CommandLog
	case domain.APITokensStream:
		return c.tokens.Version, c.tokens.LastHash, &c.tokens.CommandLog
	case domain.EmailAccountsStream:
		return c.email.Version, c.email.LastHash, &c.email.CommandLog
	case domain.AssignmentRulesStream:
		return c.rules.Version, c.rules.LastHash, &c.rules.CommandLog
	}
	panic("not a catalogue stream: " + stream)
}

func (c *Catalogues) applyLocked(e domain.Event) {
	switch e.Stream {
	case domain.TicketTypesStream:
		domain.EvolveCatalogue(&c.types, e)
	case domain.TicketPrioritiesStream:
		domain.EvolveCatalogue(&c.priorities, e)
	case domain.SupportSettingsStream:
		domain.EvolveSettings(c.settings, e)
	case domain.HolidayListsStream:
		domain.EvolveHolidayLists(&c.holidays, e)
	case domain.SLAStream:
		domain.EvolveSLACatalogue(&c.slas, e)
	case domain.APITokensStream:
		domain.EvolveTokens(&c.tokens, e)
	case domain.EmailAccountsStream:
		domain.EvolveEmailAccounts(&c.email, e)
	case domain.AssignmentRulesStream:
		domain.EvolveAssignmentRules(&c.rules, e, 0)
	}
}

// Authenticate resolves an API token to its principal.
func (c *Catalogues) Authenticate(token string) (domain.Principal, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.tokens.Authenticate(token)
}

// TokenCount is how many tokens are valid (ticketd issues a first admin token when 0).
func (c *Catalogues) TokenCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.tokens.Tokens)
}

// snapshot is an immutable view implementing domain.Reference. The catalogue slices
// are never mutated in place (Evolve functions clone), so sharing them is safe.
type snapshot struct {
	types, priorities []domain.NamedEntry
	settings          domain.SupportSettings
	slas              []domain.VersionedSLA
}

func (s snapshot) PriorityExists(name string) bool   { return hasName(s.priorities, name) }
func (s snapshot) TicketTypeExists(name string) bool { return hasName(s.types, name) }
func (s snapshot) Settings() domain.SupportSettings  { return s.settings }
func (s snapshot) SLAs() []domain.VersionedSLA       { return s.slas }

func hasName(entries []domain.NamedEntry, name string) bool {
	return slices.ContainsFunc(entries, func(e domain.NamedEntry) bool { return e.Name == name })
}

// Reference returns a consistent snapshot for one decision.
func (c *Catalogues) Reference() domain.Reference {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return snapshot{types: c.types.Entries, priorities: c.priorities.Entries, settings: c.settings.Settings, slas: c.slas.Current}
}

// LookupSLA resolves a recorded SLA version.
func (c *Catalogues) LookupSLA(name string, version int) (*domain.SLA, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.slas.Lookup(name, version)
}

// TicketTypes, TicketPriorities, Settings, HolidayLists and SLAs list the current
// reference data.
func (c *Catalogues) TicketTypes() []domain.NamedEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.types.Entries
}

func (c *Catalogues) TicketPriorities() []domain.NamedEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.priorities.Entries
}

func (c *Catalogues) Settings() domain.SupportSettings {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.settings.Settings
}

// HolidayListDates resolves a holiday list's dates (for compiling SLA definitions).
func (c *Catalogues) HolidayListDates(name string) ([]string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.holidays.Lookup(name)
}

func (c *Catalogues) HolidayLists() map[string]domain.HolidayList {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.holidays.Lists
}

func (c *Catalogues) SLAs() []domain.VersionedSLA {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.slas.Current
}

// WrittenSLA is an SLA's current definition as written (holiday lists by name).
func (c *Catalogues) WrittenSLA(name string) (domain.SLADefinition, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.slas.Written(name)
}

// decideAndAppend runs one catalogue decision with optimistic concurrency: on a
// conflict (another process wrote the catalogue) it reloads and decides again. A
// command already applied returns the events it produced then, and adds nothing.
func (c *Catalogues) decideAndAppend(ctx context.Context, store eventstore.Store, stream string, meta domain.Metadata, decide func() ([]domain.Payload, error)) ([]domain.Event, error) {
	reloaded := false // whether the catalogue was read from the stream during this call
	for attempt := 1; ; attempt++ {
		c.mu.RLock()
		version, prevHash, log := c.headLocked(stream)
		done, seen := log.Seen(meta.CommandID)
		rev := c.revisions[stream]
		c.mu.RUnlock()
		if seen {
			return done, nil
		}
		payloads, err := decide()
		if err != nil && !reloaded && refusedOnState(err) {
			// The catalogue here may be behind another process's writes.
			if err := c.reload(ctx, store, stream); err != nil {
				return nil, err
			}
			reloaded = true
			continue
		}
		if err != nil || len(payloads) == 0 {
			return nil, err
		}
		events, err := domain.NewEvents(stream, version, prevHash, meta, func(i int) string {
			return DeriveID(meta.CommandID, stream, fmt.Sprint(i))
		}, payloads)
		if err != nil {
			return nil, err
		}
		data, err := encode(events)
		if err != nil {
			return nil, err
		}
		res, err := store.Append(ctx, stream, rev, data)
		switch {
		case err == nil:
			c.mu.Lock()
			if v, _, _ := c.headLocked(stream); v == version {
				for _, e := range events {
					c.applyLocked(e)
				}
				c.revisions[stream] = res.Revision
			}
			c.mu.Unlock()
			return events, nil
		case (errors.Is(err, eventstore.ErrConflict) || errors.Is(err, eventstore.ErrDuplicate)) && attempt < maxAttempts:
			if err := c.reload(ctx, store, stream); err != nil {
				return nil, err
			}
			reloaded = true
		default:
			return nil, mapStoreError(err)
		}
	}
}

// Tokens lists the valid tokens' principals (never their secrets or hashes).
func (c *Catalogues) Tokens() []domain.Principal {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]domain.Principal, 0, len(c.tokens.Tokens))
	for _, t := range c.tokens.Tokens {
		out = append(out, domain.Principal{TokenID: t.TokenID, Name: t.Name, Role: t.Role, Requester: t.Requester})
	}
	slices.SortFunc(out, func(a, b domain.Principal) int { return strings.Compare(a.Name+a.TokenID, b.Name+b.TokenID) })
	return out
}
