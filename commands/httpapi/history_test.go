package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/commands/httpapi"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/projections"
)

func TestTicketHistoryEndpoint(t *testing.T) {
	s := newStack(t)
	ticket := s.createTicket(t, validTicket(), "X-Actor", "ann@example.com")
	s.clock.Set(monday.Add(30 * time.Minute))
	s.ok(t, http.StatusOK, "POST", "/v1/tickets/"+ticket.ID+"/replies", map[string]any{"body": "On it."}, "X-Actor", "bob")
	s.clock.Set(monday.Add(time.Hour))
	s.ok(t, http.StatusOK, "POST", "/v1/tickets/"+ticket.ID+"/hold", map[string]any{"reason": "parts"}, "X-Actor", "bob")
	s.clock.Set(monday.Add(3 * time.Hour))
	s.ok(t, http.StatusOK, "POST", "/v1/tickets/"+ticket.ID+"/close", map[string]any{}, "X-Actor", "carol")

	var h projections.History
	res := s.ok(t, http.StatusOK, "GET", "/v1/tickets/"+ticket.Number+"/history", nil) // by number too
	res.decode(t, &h)
	if h.TicketID != ticket.ID || h.Number != ticket.Number || !h.ChainIntact || len(h.Entries) != 4 || res.header.Get("ETag") != `"4"` {
		t.Fatalf("history: %s", res.body)
	}
	var events struct {
		Events []domain.Event `json:"events"`
	}
	s.ok(t, http.StatusOK, "GET", "/v1/tickets/"+ticket.ID+"/events", nil).decode(t, &events)
	for i, e := range h.Entries {
		raw := events.Events[i]
		if e.Sequence != raw.Sequence || e.EventID != raw.ID || e.Hash != raw.Hash || e.Type != raw.Type || !e.OccurredAt.Equal(raw.OccurredAt) || e.Actor != raw.Actor {
			t.Errorf("entry %d does not match event %+v: %+v", i, raw, e)
		}
	}
	reply, hold, closed := h.Entries[1], h.Entries[2], h.Entries[3]
	if reply.Summary != "Agent bob replied to ann@example.com" || reply.StatusBefore != domain.StatusOpen || reply.StatusAfter != domain.StatusReplied ||
		!strings.HasPrefix(reply.Effects[0], "First response recorded: 30m") {
		t.Errorf("reply entry: %+v", reply)
	}
	if hold.Summary != "Put on hold: parts" || hold.Effects[0] != "Hold started: the SLA clock is paused" {
		t.Errorf("hold entry: %+v", hold)
	}
	if closed.Summary != "Closed by carol" || closed.StatusBefore != domain.StatusOnHold || closed.StatusAfter != domain.StatusClosed {
		t.Errorf("close entry: %+v", closed)
	}

	s.refused(t, http.StatusNotFound, httpapi.ProblemNotFound, "GET", "/v1/tickets/0b8a3c52-5a64-4bde-8f55-111111111111/history", nil)
	s.refused(t, http.StatusNotFound, httpapi.ProblemNotFound, "GET", "/v1/tickets/TKT-1999-000001/history", nil)
	s.refused(t, http.StatusMethodNotAllowed, httpapi.ProblemMethodNotAllowed, "POST", "/v1/tickets/"+ticket.ID+"/history", nil)
}
