package httpapi

import (
	"bytes"
	"context"
	"net/http"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/projections/reports"
)

// ReportSource computes the analysts' reports: the SQL read model
// (projections/sqlmodel.Model).
type ReportSource interface {
	Report(ctx context.Context, q reports.Query) (*reports.Report, error)
}

// registerReports adds GET /v1/reports (the list) and GET /v1/reports/{name}
// (?group_by=a,b&from=&to=&format=json|csv; docs/analytics.md#reports).
func (s *Server) registerReports(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/reports", s.handle(s.listReports))
	mux.HandleFunc("GET /v1/reports/{name}", s.handle(s.getReport))
}

type reportInfo struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	GroupBy     []string `json:"group_by"`
	Formats     []string `json:"formats"`
}

func (s *Server) listReports(w http.ResponseWriter, r *http.Request) error {
	out := []reportInfo{}
	for _, c := range reports.Catalogue {
		out = append(out, reportInfo{Name: c.Name, Description: c.Description, GroupBy: reports.Dimensions, Formats: []string{"json", "csv"}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"reports": out})
	return nil
}

func (s *Server) getReport(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "csv" {
		return domain.Invalid("format", "must be json or csv")
	}
	query, err := reports.ParseQuery(r.PathValue("name"), q, s.Clock())
	if err != nil {
		return err
	}
	if s.Reports == nil {
		return &requestError{http.StatusServiceUnavailable, ProblemUnavailable, "reports need the SQL read model, which this server does not run"}
	}
	if err := s.waitForReports(r); err != nil {
		return err
	}
	rep, err := s.Reports.Report(r.Context(), query)
	if err != nil {
		return err
	}
	if format == "json" {
		writeJSON(w, http.StatusOK, rep)
		return nil
	}
	var b bytes.Buffer
	if err := rep.WriteCSV(&b); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `inline; filename="`+rep.Name+`.csv"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
	return nil
}

// waitForReports waits until the SQL read model shows what a read of the ticket model
// would: min_position, and, when the model follows a runner of its own, whatever the
// ticket model had applied when the report was asked.
func (s *Server) waitForReports(r *http.Request) error {
	if s.ReportsRunner == nil {
		return s.minPosition(r)
	}
	pos, err := minPositionOf(r)
	if err != nil {
		return err
	}
	return waitOn(r.Context(), s.ReportsRunner, max(pos, s.Runner.Position()))
}
