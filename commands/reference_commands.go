package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
)

// UsageCounter tells how many tickets use a ticket type or priority (from a read
// model), so that a used entry is not removed or renamed.
type UsageCounter interface {
	TicketsUsing(field, name string) int
}

// ChangeCatalogue creates, updates or removes a ticket type (priorities=false) or a
// ticket priority (priorities=true).
func (h *Handler) ChangeCatalogue(ctx context.Context, priorities bool, cmd domain.CatalogueCommand, usage UsageCounter, meta Meta) ([]domain.Event, error) {
	meta = h.withDefaults(meta)
	stream, field := domain.TicketTypesStream, "ticket_type"
	if priorities {
		stream, field = domain.TicketPrioritiesStream, "priority"
	}
	if usage != nil && (cmd.Op == "remove" || cmd.Op == "update") {
		cmd.InUse = usage.TicketsUsing(field, cmd.Name)
	}
	return h.ref.decideAndAppend(ctx, h.store, stream, h.metadata(meta), func() ([]domain.Payload, error) {
		h.ref.mu.RLock()
		c := h.ref.types
		if priorities {
			c = h.ref.priorities
		}
		h.ref.mu.RUnlock()
		return domain.DecideCatalogue(&c, cmd, priorities)
	})
}

// ChangeSettings replaces the support settings.
func (h *Handler) ChangeSettings(ctx context.Context, next domain.SupportSettings, meta Meta) ([]domain.Event, error) {
	meta = h.withDefaults(meta)
	return h.ref.decideAndAppend(ctx, h.store, domain.SupportSettingsStream, h.metadata(meta), func() ([]domain.Payload, error) {
		h.ref.mu.RLock()
		s := *h.ref.settings
		h.ref.mu.RUnlock()
		return domain.DecideSettings(&s, next)
	})
}

// SaveSLA validates and stores a new version of an SLA, with the current dates of the
// holiday lists its calendar names.
func (h *Handler) SaveSLA(ctx context.Context, def domain.SLADefinition, meta Meta) ([]domain.Event, error) {
	meta = h.withDefaults(meta)
	return h.ref.decideAndAppend(ctx, h.store, domain.SLAStream, h.metadata(meta), func() ([]domain.Payload, error) {
		h.ref.mu.RLock()
		c, lists := h.ref.slas, h.ref.holidays
		h.ref.mu.RUnlock()
		return domain.DecideSaveSLA(&c, def, lists.Lookup)
	})
}

// SaveHolidayList creates or changes a holiday list, then saves a new version of every
// SLA that names it, so that deadlines computed from now on use the new dates while
// tickets keep the SLA versions they recorded. Each step is idempotent under the
// command ID, so a retry after a failure in between completes the cascade.
func (h *Handler) SaveHolidayList(ctx context.Context, list domain.HolidayList, meta Meta) ([]domain.Event, error) {
	meta = h.withDefaults(meta)
	events, err := h.ref.decideAndAppend(ctx, h.store, domain.HolidayListsStream, h.metadata(meta), func() ([]domain.Payload, error) {
		h.ref.mu.RLock()
		s := h.ref.holidays
		h.ref.mu.RUnlock()
		return domain.DecideSaveHolidayList(&s, list)
	})
	if err != nil || len(events) == 0 {
		return nil, err // an unchanged list changes no SLA either
	}
	h.ref.mu.RLock()
	users := h.ref.slas.UsingHolidayList(list.Name)
	h.ref.mu.RUnlock()
	for _, name := range users {
		def, ok := h.ref.WrittenSLA(name)
		if !ok {
			continue
		}
		cascade := meta
		cascade.CommandID = DeriveID(meta.CommandID, "holiday-list-cascade", name)
		more, err := h.SaveSLA(ctx, def, cascade)
		if err != nil {
			return events, fmt.Errorf("save SLA %s with the new holidays: %w", name, err)
		}
		events = append(events, more...)
	}
	return events, nil
}

// RemoveHolidayList removes a list that no current SLA names.
func (h *Handler) RemoveHolidayList(ctx context.Context, name string, meta Meta) ([]domain.Event, error) {
	meta = h.withDefaults(meta)
	return h.ref.decideAndAppend(ctx, h.store, domain.HolidayListsStream, h.metadata(meta), func() ([]domain.Payload, error) {
		h.ref.mu.RLock()
		s, users := h.ref.holidays, h.ref.slas.UsingHolidayList(name)
		h.ref.mu.RUnlock()
		return domain.DecideRemoveHolidayList(&s, name, users)
	})
}

// RemoveSLA takes an SLA out of selection.
func (h *Handler) RemoveSLA(ctx context.Context, name string, meta Meta) ([]domain.Event, error) {
	meta = h.withDefaults(meta)
	return h.ref.decideAndAppend(ctx, h.store, domain.SLAStream, h.metadata(meta), func() ([]domain.Payload, error) {
		h.ref.mu.RLock()
		c := h.ref.slas
		h.ref.mu.RUnlock()
		return domain.DecideRemoveSLA(&c, name)
	})
}

// SeedDefaults creates the default priorities on a new store. Several processes may
// race to do it: the store's NoStream check lets exactly one win.
func (h *Handler) SeedDefaults(ctx context.Context) error {
	h.ref.mu.RLock()
	seeded := h.ref.priorities.Version > 0
	h.ref.mu.RUnlock()
	if seeded {
		return nil
	}
	payloads := make([]domain.Payload, len(domain.DefaultPriorities))
	for i, p := range domain.DefaultPriorities {
		payloads[i] = domain.TicketPriorityCreated{Name: p}
	}
	meta := domain.Metadata{CommandID: "seed-default-priorities", Actor: "system", At: h.now()}
	events, err := domain.NewEvents(domain.TicketPrioritiesStream, 0, "", meta, func(i int) string {
		return DeriveID(meta.CommandID, domain.TicketPrioritiesStream, domain.DefaultPriorities[i])
	}, payloads)
	if err != nil {
		return err
	}
	data, err := encode(events)
	if err != nil {
		return err
	}
	_, err = h.store.Append(ctx, domain.TicketPrioritiesStream, eventstore.NoStream, data)
	if err != nil && !errors.Is(err, eventstore.ErrConflict) && !errors.Is(err, eventstore.ErrDuplicate) {
		return err
	}
	return h.ref.reload(ctx, h.store, domain.TicketPrioritiesStream)
}

func (h *Handler) metadata(meta Meta) domain.Metadata {
	return domain.Metadata{CommandID: meta.CommandID, Actor: meta.Actor, CorrelationID: meta.CorrelationID, CausationID: meta.CausationID, At: h.now()}
}
