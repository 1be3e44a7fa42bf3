package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/ticketcore/ticketcore/domain"
)

// ScheduleSource tells which time-driven commands are due (the ticket read model).
type ScheduleSource interface {
	DueDeadlines(now time.Time, warnBefore time.Duration) []domain.DueDeadline
	DueAutoCloses(now time.Time, days int) []domain.DueAutoClose
}

// RecordDeadline records a missed or approaching deadline on its ticket. The command ID
// derives from the ticket, the kind and the deadline itself, so however many processes
// notice the same deadline, and however often after restarts, the ticket stores it once.
func (h *Handler) RecordDeadline(ctx context.Context, d domain.DueDeadline) (Result, error) {
	meta := Meta{
		CommandID: DeriveID("deadline", d.TicketID, d.Kind, fmt.Sprint(d.Warning), d.Deadline.UTC().Format(time.RFC3339Nano)),
		Actor:     "system:sla",
	}
	return h.Execute(ctx, d.TicketID, d.RecordDeadline, meta)
}

// AutoClose closes a ticket left in Replied. The command ID derives from the instant
// the ticket became Replied, so one wait is closed once whoever notices it; the decider
// refuses it if a customer message came first or the days have not passed.
func (h *Handler) AutoClose(ctx context.Context, d domain.DueAutoClose) (Result, error) {
	meta := Meta{
		CommandID: DeriveID("auto-close", d.TicketID, d.RepliedSince.UTC().Format(time.RFC3339Nano)),
		Actor:     "system:auto-close",
	}
	return h.Execute(ctx, d.TicketID, domain.CloseTicket{Automatic: true}, meta)
}

// RunScheduler sends the due time-driven commands every interval until ctx ends:
// deadline notifications (with a warning warnBefore ahead, 0 for none) and automatic
// closes after the support settings' auto_close_days.
func (h *Handler) RunScheduler(ctx context.Context, src ScheduleSource, interval, warnBefore time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		h.RunDue(ctx, src, warnBefore)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// RunDue sends, once, every time-driven command due now.
func (h *Handler) RunDue(ctx context.Context, src ScheduleSource, warnBefore time.Duration) {
	now := h.now()
	for _, d := range src.DueDeadlines(now, warnBefore) {
		if _, err := h.RecordDeadline(ctx, d); err != nil && ctx.Err() == nil {
			h.log.Warn("record SLA deadline", "ticket", d.TicketID, "kind", d.Kind, "err", err)
		}
	}
	for _, d := range src.DueAutoCloses(now, h.ref.Settings().AutoCloseDays) {
		if _, err := h.AutoClose(ctx, d); err != nil && ctx.Err() == nil {
			h.log.Warn("automatic close", "ticket", d.TicketID, "err", err)
		}
	}
}
