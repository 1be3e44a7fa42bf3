package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/ticketcore/ticketcore/domain"
)

// DeadlineSource tells which deadline notifications tickets owe (the ticket read model).
type DeadlineSource interface {
	DueDeadlines(now time.Time, warnBefore time.Duration) []domain.DueDeadline
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

// WatchDeadlines checks for due deadlines every interval until ctx ends.
func (h *Handler) WatchDeadlines(ctx context.Context, src DeadlineSource, interval, warnBefore time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		for _, d := range src.DueDeadlines(h.now(), warnBefore) {
			if _, err := h.RecordDeadline(ctx, d); err != nil && ctx.Err() == nil {
				h.log.Warn("record SLA deadline", "ticket", d.TicketID, "kind", d.Kind, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
