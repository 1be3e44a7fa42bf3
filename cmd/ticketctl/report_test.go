package main

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/commands/httpapi"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
	"github.com/ticketcore/ticketcore/projections"
	"github.com/ticketcore/ticketcore/projections/projtest"
	"github.com/ticketcore/ticketcore/projections/sqlmodel"
)

// reportServer serves the API with the SQL read model over a small generated history.
func reportServer(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := memstore.New()
	clock := projtest.NewClock(projtest.Start)
	h, err := commands.NewHandler(ctx, store, commands.Options{Clock: clock.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := projtest.Generate(ctx, h, clock, rand.New(rand.NewPCG(5, 6)), 40); err != nil {
		t.Fatal(err)
	}
	model, err := sqlmodel.Open(ctx, sqlmodel.Config{URL: filepath.Join(t.TempDir(), "readmodel.sqlite"), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	tickets := projections.NewTickets()
	runner := projections.NewRunner(store, log, tickets, model)
	if _, err := runner.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	api := &httpapi.Server{Handler: h, Tickets: tickets, Runner: runner, Clock: clock.Now, Log: log, Reports: model}
	srv := httptest.NewServer(api.Routes())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		model.Close()
	})
	return srv.URL
}

func TestReportCommand(t *testing.T) {
	server := reportServer(t)

	list := decode[struct {
		Reports []struct{ Name string } `json:"reports"`
	}](t, ok(t, "--server", server, "report"))
	if len(list.Reports) != 5 {
		t.Fatalf("report list: %+v", list)
	}

	rep := decode[struct {
		Report  string           `json:"report"`
		GroupBy []string         `json:"group_by"`
		Rows    []map[string]any `json:"rows"`
	}](t, ok(t, "--server", server, "report", "sla-compliance", "--group-by", "month,priority", "--from", "2026-01-01"))
	if rep.Report != "sla-compliance" || strings.Join(rep.GroupBy, ",") != "month,priority" || len(rep.Rows) == 0 {
		t.Fatalf("sla-compliance: %+v", rep)
	}

	csv := ok(t, "--server", server, "report", "resolution", "--group-by", "week", "--format", "csv")
	if !strings.HasPrefix(csv, "week,tickets,resolved,median_calendar,p90_calendar,median_business,p90_business\n") {
		t.Fatalf("CSV:\n%s", csv)
	}

	table := ok(t, "--server", server, "-o", "table", "report", "backlog", "--group-by", "customer")
	if !strings.HasPrefix(table, "CUSTOMER") || !strings.Contains(table, "Acme Corp") {
		t.Fatalf("table:\n%s", table)
	}

	fails(t, 2, []string{"--format"}, "--server", server, "report", "backlog", "--format", "xml")
	fails(t, 1, []string{"group_by"}, "--server", server, "report", "backlog", "--group-by", "weekday")
	fails(t, 1, []string{"Not found"}, "--server", server, "report", "nope")
}
