package httpapi

import (
	"fmt"
	"net/http"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/projections"
)

// ticketHistory answers GET /v1/tickets/{id}/history: the ticket's timeline for
// people, built from its stored events (projections.TicketHistory), with each event's
// sequence, ID, type and hash, and whether the stream's hash chain is intact.
func (s *Server) ticketHistory(w http.ResponseWriter, r *http.Request) error {
	id, err := s.resolveID(r.PathValue("id"))
	if err != nil {
		return err
	}
	events, err := s.Handler.TicketEvents(r.Context(), id)
	if err != nil {
		return err
	}
	history, ok := projections.TicketHistory(events, s.Tickets.LookupSLA)
	if !ok {
		return fmt.Errorf("ticket %s: %w", id, domain.ErrNotFound)
	}
	setVersionHeaders(w, uint64(len(events)), 0)
	writeJSON(w, http.StatusOK, history)
	return nil
}
