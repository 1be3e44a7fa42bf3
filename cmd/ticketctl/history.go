package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/projections"
)

// cmdHistory prints a ticket's timeline: from ticketd (GET /v1/tickets/{id}/history),
// or computed here from an event store opened directly (--data, --nats-url), which is
// how an auditor reads a copy of the store (an import) without running ticketd.
func cmdHistory(ctx context.Context, e *env, args []string) error {
	fs := e.flags("history")
	var sf storeFlags
	sf.register(fs)
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	var body []byte
	if sf.data == "" && sf.natsURL == "" {
		resp, err := e.call(ctx, request{method: http.MethodGet, path: ticketPath(pos[0], "history")})
		if err != nil {
			return err
		}
		body = resp.body
	} else {
		if _, err := uuid.Parse(pos[0]); err != nil {
			return usagef("with --data or --nats-url, give the ticket's ID (a UUID), not %q", pos[0])
		}
		store, err := sf.open(ctx)
		if err != nil {
			return err
		}
		defer store.Close()
		h, err := storeHistory(ctx, store, pos[0])
		if err != nil {
			return err
		}
		if body, err = json.Marshal(h); err != nil {
			return err
		}
	}
	if !e.table() {
		return e.printJSON(body)
	}
	var h projections.History
	if err := json.Unmarshal(body, &h); err != nil {
		return fmt.Errorf("malformed history: %w", err)
	}
	return e.printHistory(h)
}

// storeHistory builds a ticket's history from a store, with the SLA versions of the
// store's SLA catalogue.
func storeHistory(ctx context.Context, store eventstore.Store, id string) (projections.History, error) {
	decode := func(stream string) ([]domain.Event, error) {
		recs, err := store.ReadStream(ctx, stream)
		if err != nil {
			return nil, err
		}
		events := make([]domain.Event, len(recs))
		for i, rec := range recs {
			if events[i], err = domain.DecodeEvent(rec.Data); err != nil {
				return nil, fmt.Errorf("%s at position %d: %w", stream, rec.Position, err)
			}
		}
		return events, nil
	}
	var slas domain.SLACatalogue
	slaEvents, err := decode(domain.SLAStream)
	if err != nil {
		return projections.History{}, err
	}
	for _, ev := range slaEvents {
		domain.EvolveSLACatalogue(&slas, ev)
	}
	events, err := decode(domain.TicketStream(id))
	if err != nil {
		return projections.History{}, err
	}
	h, ok := projections.TicketHistory(events, slas.Lookup)
	if !ok {
		return h, fmt.Errorf("no ticket %s in this store", id)
	}
	return h, nil
}

// printHistory writes the timeline for people: one block per event.
func (e *env) printHistory(h projections.History) error {
	out := e.stdout
	chain := "hash chain intact"
	if !h.ChainIntact && h.ChainBreak != nil {
		chain = fmt.Sprintf("HASH CHAIN BROKEN at sequence %d (event %s): %s", h.ChainBreak.Sequence, h.ChainBreak.EventID, h.ChainBreak.Reason)
	}
	fmt.Fprintf(out, "%s (%s): %d event(s), %s\n", dash(h.Number), h.TicketID, len(h.Entries), chain)
	for _, en := range h.Entries {
		fmt.Fprintf(out, "\n#%d  %s  %s  %s v%d\n", en.Sequence, en.OccurredAt.UTC().Format(time.RFC3339Nano), en.Actor, en.Type, en.SchemaVersion)
		fmt.Fprintf(out, "    %s\n", en.Summary)
		status := fmt.Sprintf("status %s -> %s", dash(string(en.StatusBefore)), en.StatusAfter)
		if en.AgreementBefore != nil || en.AgreementAfter != nil {
			status += fmt.Sprintf("; agreement %s -> %s", dash(deref(en.AgreementBefore)), dash(deref(en.AgreementAfter)))
		}
		fmt.Fprintf(out, "    %s\n", status)
		for _, eff := range en.Effects {
			if strings.HasPrefix(eff, "Agreement status ") {
				continue // on the status line
			}
			fmt.Fprintf(out, "    - %s\n", eff)
		}
		fmt.Fprintf(out, "    event %s  hash %s\n", en.EventID, en.Hash)
	}
	return nil
}
