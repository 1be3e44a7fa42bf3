package httpapi

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/ticketcore/ticketcore/domain"
)

// Assignment rules: reference data, read with the read permission and changed with
// reference:write (requiredPermission classifies them with the other reference data).

// ruleView is a rule as listed: its definition and its version.
type ruleView struct {
	Version int `json:"version"`
	domain.AssignmentRuleDefinition
}

func (s *Server) registerAssignmentRules(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/assignment-rules", s.handle(s.listAssignmentRules))
	mux.HandleFunc("GET /v1/assignment-rules/{name}", s.handle(s.getAssignmentRule))
	mux.HandleFunc("PUT /v1/assignment-rules/{name}", s.handle(s.putAssignmentRule))
	mux.HandleFunc("DELETE /v1/assignment-rules/{name}", s.handle(s.removeAssignmentRule))
}

func (s *Server) listAssignmentRules(w http.ResponseWriter, r *http.Request) error {
	out := []ruleView{}
	for _, v := range s.Handler.Catalogues().AssignmentRules() {
		out = append(out, ruleView{Version: v.Version, AssignmentRuleDefinition: v.Rule.Definition()})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getAssignmentRule(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	v, ok := s.Handler.Catalogues().AssignmentRule(name)
	if !ok {
		return fmt.Errorf("assignment rule %q: %w", name, domain.ErrNotFound)
	}
	writeJSON(w, http.StatusOK, ruleView{Version: v.Version, AssignmentRuleDefinition: v.Rule.Definition()})
	return nil
}

// putAssignmentRule creates (201) or replaces (200) a rule; the name is the path's. A
// rule saved unchanged keeps its version.
func (s *Server) putAssignmentRule(w http.ResponseWriter, r *http.Request) error {
	var def domain.AssignmentRuleDefinition
	if err := decodeBody(w, r, &def); err != nil {
		return err
	}
	name := r.PathValue("name")
	if def.Name != "" && def.Name != name {
		return domain.Invalid("name", "%q differs from the name in the path %q", def.Name, name)
	}
	def.Name = name
	m, err := meta(r)
	if err != nil {
		return err
	}
	_, existed := s.Handler.Catalogues().AssignmentRule(name)
	if _, err := s.Handler.SaveAssignmentRule(r.Context(), def, m); err != nil {
		return err
	}
	v, ok := s.Handler.Catalogues().AssignmentRule(name)
	if !ok {
		return fmt.Errorf("assignment rule %q: %w", name, domain.ErrNotFound)
	}
	status := http.StatusOK
	if !existed {
		status = http.StatusCreated
		w.Header().Set("Location", "/v1/assignment-rules/"+url.PathEscape(name))
	}
	writeJSON(w, status, ruleView{Version: v.Version, AssignmentRuleDefinition: v.Rule.Definition()})
	return nil
}

func (s *Server) removeAssignmentRule(w http.ResponseWriter, r *http.Request) error {
	m, err := meta(r)
	if err != nil {
		return err
	}
	if _, err := s.Handler.RemoveAssignmentRule(r.Context(), r.PathValue("name"), m); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
