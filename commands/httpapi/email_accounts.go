package httpapi

import (
	"net/http"

	"github.com/ticketcore/ticketcore/domain"
)

// Email accounts (docs/email.md): the support addresses of the email channel.
//
//	GET    /v1/email-accounts            list (read)
//	PUT    /v1/email-accounts/{address}  create or replace (reference:write)
//	DELETE /v1/email-accounts/{address}  remove (reference:write)
func (s *Server) registerEmailAccounts(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/email-accounts", s.handle(s.listEmailAccounts))
	mux.HandleFunc("PUT /v1/email-accounts/{address}", s.handle(s.saveEmailAccount))
	mux.HandleFunc("DELETE /v1/email-accounts/{address}", s.handle(s.removeEmailAccount))
}

func (s *Server) listEmailAccounts(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.Handler.Catalogues().EmailAccounts())
	return nil
}

func (s *Server) saveEmailAccount(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Name              string            `json:"name,omitempty"`
		DefaultTicketType string            `json:"default_ticket_type,omitempty"`
		DefaultPriority   string            `json:"default_priority,omitempty"`
		Relay             string            `json:"relay,omitempty"`
		NoAutoReply       bool              `json:"no_auto_reply,omitempty"`
		IMAP              *domain.EmailIMAP `json:"imap,omitempty"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	m, err := meta(r)
	if err != nil {
		return err
	}
	a := domain.EmailAccount{Address: r.PathValue("address"), Name: body.Name, DefaultTicketType: body.DefaultTicketType,
		DefaultPriority: body.DefaultPriority, Relay: body.Relay, NoAutoReply: body.NoAutoReply, IMAP: body.IMAP}
	if _, err := s.Handler.SaveEmailAccount(r.Context(), a, m); err != nil {
		return err
	}
	saved, _ := s.Handler.Catalogues().EmailAccount(a.Address)
	writeJSON(w, http.StatusOK, saved)
	return nil
}

func (s *Server) removeEmailAccount(w http.ResponseWriter, r *http.Request) error {
	m, err := meta(r)
	if err != nil {
		return err
	}
	if _, err := s.Handler.RemoveEmailAccount(r.Context(), r.PathValue("address"), m); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
