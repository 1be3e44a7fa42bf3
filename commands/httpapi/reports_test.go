package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/commands/httpapi"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
	"github.com/ticketcore/ticketcore/projections"
	"github.com/ticketcore/ticketcore/projections/projtest"
	"github.com/ticketcore/ticketcore/projections/sqlmodel"
)

// reportServer runs the API with the SQL read model on SQLite, fed by a runner of its
// own as in ticketd, over a small generated history.
func reportServer(t *testing.T, withReports bool) (string, *commands.Handler, *projtest.Clock) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := memstore.New()
	clock := projtest.NewClock(projtest.Start)
	h, err := commands.NewHandler(ctx, store, commands.Options{Clock: clock.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := projtest.Generate(ctx, h, clock, rand.New(rand.NewPCG(3, 4)), 60); err != nil {
		t.Fatal(err)
	}
	model, err := sqlmodel.Open(ctx, sqlmodel.Config{URL: filepath.Join(t.TempDir(), "readmodel.sqlite"), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	tickets := projections.NewTickets()
	runner := projections.NewRunner(store, log, tickets)
	sqlRunner := projections.NewRunner(store, log, model)
	if _, err := runner.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	for _, r := range []*projections.Runner{runner, sqlRunner} {
		go func() {
			defer func() { done <- struct{}{} }()
			_ = r.Run(ctx)
		}()
	}
	api := &httpapi.Server{Handler: h, Tickets: tickets, Runner: runner, Clock: clock.Now, Log: log}
	if withReports {
		api.Reports, api.ReportsRunner = model, sqlRunner
	}
	srv := httptest.NewServer(api.Routes())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		<-done
		model.Close()
	})
	return srv.URL, h, clock
}

func getReport(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func TestReports(t *testing.T) {
	base, h, _ := reportServer(t, true)

	status, _, body := getReport(t, base+"/v1/reports")
	var list struct {
		Reports []struct{ Name string } `json:"reports"`
	}
	if err := json.Unmarshal([]byte(body), &list); status != http.StatusOK || err != nil || len(list.Reports) != 5 {
		t.Fatalf("GET /v1/reports: %d %s", status, body)
	}

	type report struct {
		Report  string           `json:"report"`
		Columns []string         `json:"columns"`
		Rows    []map[string]any `json:"rows"`
	}
	backlog := func(query string) report {
		t.Helper()
		status, header, body := getReport(t, base+"/v1/reports/backlog"+query)
		if status != http.StatusOK || !strings.HasPrefix(header.Get("Content-Type"), "application/json") {
			t.Fatalf("backlog%s: %d %s", query, status, body)
		}
		var r report
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	total := backlog("").Rows[0]["total"].(float64)
	byPriority := backlog("?group_by=priority")
	if byPriority.Columns[0] != "priority" || len(byPriority.Rows) < 2 {
		t.Fatalf("by priority: %+v", byPriority)
	}
	sum := 0.0
	for _, r := range byPriority.Rows {
		sum += r["total"].(float64)
	}
	if sum != total || total < 60 {
		t.Fatalf("by priority the totals add up to %v, the total is %v", sum, total)
	}

	// Read your writes: a report asked with the position of a command counts it.
	res, err := h.CreateTicket(t.Context(), domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
		Subject: "New", RaisedBy: "new@example.com", Channel: domain.ChannelAPI}}, commands.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if got := backlog(fmt.Sprintf("?min_position=%d", res.Position)).Rows[0]["total"].(float64); got != total+1 {
		t.Fatalf("after a creation the total is %v, want %v", got, total+1)
	}
	// And without min_position, a report asked after a command's answer counts it: the
	// answer waited for the ticket model, the report waits for the SQL model to catch
	// up with that.
	resp, err := http.Post(base+"/v1/tickets", "application/json", strings.NewReader(`{"subject":"Another","raised_by":"new@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/tickets: %d", resp.StatusCode)
	}
	if got := backlog("").Rows[0]["total"].(float64); got != total+2 {
		t.Fatalf("after a creation over HTTP the total is %v, want %v", got, total+2)
	}

	status, header, body := getReport(t, base+"/v1/reports/first-response?group_by=team&format=csv&from=2026-01-01")
	if status != http.StatusOK || header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		!strings.HasPrefix(body, "team,tickets,responded,median_calendar,p90_calendar,median_business,p90_business\n") ||
		strings.Count(body, "\n") < 3 {
		t.Fatalf("CSV: %d %v\n%s", status, header, body)
	}

	for _, tc := range []struct {
		path    string
		status  int
		problem string
	}{
		{"/v1/reports/nope", http.StatusNotFound, httpapi.ProblemNotFound},
		{"/v1/reports/backlog?group_by=weekday", http.StatusUnprocessableEntity, httpapi.ProblemValidation},
		{"/v1/reports/backlog?format=xml", http.StatusUnprocessableEntity, httpapi.ProblemValidation},
		{"/v1/reports/breaches?from=soon", http.StatusUnprocessableEntity, httpapi.ProblemValidation},
	} {
		status, _, body := getReport(t, base+tc.path)
		var p httpapi.Problem
		_ = json.Unmarshal([]byte(body), &p)
		if status != tc.status || p.Type != tc.problem {
			t.Errorf("GET %s: %d %s, want %d %s", tc.path, status, body, tc.status, tc.problem)
		}
	}
}

func TestReportsWithoutSQLModel(t *testing.T) {
	base, _, _ := reportServer(t, false)
	status, _, body := getReport(t, base+"/v1/reports/backlog")
	var p httpapi.Problem
	_ = json.Unmarshal([]byte(body), &p)
	if status != http.StatusServiceUnavailable || p.Type != httpapi.ProblemUnavailable {
		t.Fatalf("%d %s", status, body)
	}
}
