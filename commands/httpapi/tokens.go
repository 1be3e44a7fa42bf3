package httpapi

import (
	"net/http"

	"github.com/ticketcore/ticketcore/domain"
)

func (s *Server) registerTokens(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/tokens", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, s.Handler.Catalogues().Tokens())
		return nil
	}))
	mux.HandleFunc("POST /v1/tokens", s.handle(s.issueToken))
	mux.HandleFunc("DELETE /v1/tokens/{id}", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		m, err := meta(r)
		if err != nil {
			return err
		}
		if err := s.Handler.RevokeToken(r.Context(), r.PathValue("id"), m); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
}

// issueToken creates a token; its secret is in this answer only.
func (s *Server) issueToken(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Name      string      `json:"name"`
		Role      domain.Role `json:"role"`
		Requester string      `json:"requester,omitempty"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	m, err := meta(r)
	if err != nil {
		return err
	}
	issued, err := s.Handler.IssueToken(r.Context(), body.Name, body.Role, body.Requester, m)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, issued)
	return nil
}
