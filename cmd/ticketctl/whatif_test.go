package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/projections"
	"github.com/ticketcore/ticketcore/projections/projtest"
)

func writeJSONFile(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "sla.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestWhatIf(t *testing.T) {
	url := startServer(t)
	s := func(args ...string) []string { return append([]string{"--server", url}, args...) }

	// The tickets are measured against Standard (a business-hours SLA of at least 4 h
	// to respond), so none can have failed two hours from now.
	standard := projtest.SLADefinitions()[1]
	standardFile := writeJSONFile(t, standard)
	ok(t, s("sla", "save", standardFile)...)
	waiting := decode[projections.TicketView](t, ok(t, s("create", "--subject", "Server down", "--raised-by", "a@acme.example.com",
		"--priority", "High", "--customer", "Acme")...))
	done := decode[projections.TicketView](t, ok(t, s("create", "--subject", "Invoice", "--raised-by", "b@globex.example.com",
		"--priority", "Medium", "--customer", "Globex")...))
	ok(t, s("reply", done.ID, "--body", "Here it is.")...)
	ok(t, s("resolve", done.ID, "--details", "sent")...)
	asOf := time.Now().UTC().Add(2 * time.Hour).Format(time.RFC3339Nano)

	// The same SLA as the one recorded changes nothing.
	same := decode[projections.WhatIfReport](t, ok(t, s("what-if", "--sla", standardFile, "--as-of", asOf)...))
	if same.SLA != "Standard" || same.Totals.Tickets != 2 || same.Totals.WithSLAActual != 2 || same.Totals.Changed != 0 ||
		same.Totals.BreachedActual != 0 || same.Totals.BreachedWhatIf != 0 || len(same.Tickets) != 2 {
		t.Fatalf("what-if under the recorded SLA: %+v", same)
	}
	table := ok(t, s("what-if", "--sla", standardFile, "--as-of", asOf, "-o", "table")...)
	if strings.Contains(table, waiting.Number) || !strings.Contains(table, "0 changed ticket(s) listed of 2 compared (--all lists every one)") {
		t.Errorf("what-if -o table without changes:\n%s", table)
	}
	table = ok(t, s("what-if", "--sla", standardFile, "--as-of", asOf, "-o", "table", "--all")...)
	if !strings.Contains(table, waiting.Number) || !strings.Contains(table, done.Number) || !strings.Contains(table, "2 ticket(s) listed of 2 compared") {
		t.Errorf("what-if -o table --all:\n%s", table)
	}

	// Round the clock, 15 minutes to respond and 1 h to resolve: the waiting ticket
	// fails, the resolved one is still fulfilled, and both deadlines move.
	strict := domain.SLADefinition{Name: "Strict", Default: true,
		Calendar: domain.CalendarSpec{Timezone: "UTC", Hours: map[string][][2]string{
			"Monday": {{"00:00", "24:00"}}, "Tuesday": {{"00:00", "24:00"}}, "Wednesday": {{"00:00", "24:00"}},
			"Thursday": {{"00:00", "24:00"}}, "Friday": {{"00:00", "24:00"}}, "Saturday": {{"00:00", "24:00"}},
			"Sunday": {{"00:00", "24:00"}}}},
		Priorities: []domain.SLAPriority{{Name: "Medium", Response: domain.Duration(15 * time.Minute), Resolution: domain.Duration(time.Hour), Default: true}}}
	strictFile := writeJSONFile(t, strict)
	report := decode[projections.WhatIfReport](t, ok(t, s("what-if", "--sla", strictFile, "--as-of", asOf)...))
	tot := report.Totals
	if report.SLA != "Strict" || tot.Tickets != 2 || tot.Changed != 2 || tot.BreachedActual != 0 || tot.BreachedWhatIf != 1 ||
		tot.NewlyBreached != 1 || tot.ComplianceWhatIf == nil || *tot.ComplianceWhatIf != 50 {
		t.Fatalf("what-if under Strict: %+v", tot)
	}
	byNumber := map[string]projections.WhatIfTicket{}
	for _, tk := range report.Tickets {
		byNumber[tk.Number] = tk
	}
	w := byNumber[waiting.Number]
	if w.WhatIf.AgreementStatus == nil || *w.WhatIf.AgreementStatus != domain.AgreementFailed || !w.WhatIf.Breached ||
		w.WhatIf.ResponseBy == nil || !w.WhatIf.ResponseBy.Equal(waiting.CreatedAt.Add(15*time.Minute)) {
		t.Errorf("waiting ticket under Strict: %+v", w.WhatIf)
	}
	if d := byNumber[done.Number]; d.WhatIf.AgreementStatus == nil || *d.WhatIf.AgreementStatus != domain.AgreementFulfilled {
		t.Errorf("resolved ticket under Strict: %+v", d.WhatIf)
	}
	table = ok(t, s("what-if", "--sla", strictFile, "--as-of", asOf, "-o", "table")...)
	respBefore := w.Actual.ResponseBy.UTC().Format(time.RFC3339)
	respAfter := w.WhatIf.ResponseBy.UTC().Format(time.RFC3339)
	for _, want := range []string{`what-if SLA "Strict"`, "tickets compared", "breached: actual -> what-if", "0 -> 1",
		"(1 newly breached, 0 no longer breached)", "100.0% -> 50.0%", waiting.Number, done.Number,
		deref(w.Actual.AgreementStatus) + " -> Failed", respBefore + " -> " + respAfter, "2 changed ticket(s) listed of 2 compared"} {
		if !strings.Contains(table, want) {
			t.Errorf("what-if -o table lacks %q:\n%s", want, table)
		}
	}

	// Filters choose the tickets by their current state.
	high := decode[projections.WhatIfReport](t, ok(t, s("what-if", "--sla", strictFile, "--as-of", asOf, "--priority", "High")...))
	if high.Totals.Tickets != 1 || high.Tickets[0].Number != waiting.Number {
		t.Errorf("what-if --priority High: %+v", high)
	}
	resolved := decode[projections.WhatIfReport](t, ok(t, s("what-if", "--sla", strictFile, "--status", "Resolved", "--customer", "Globex")...))
	if resolved.Totals.Tickets != 1 || resolved.Tickets[0].Number != done.Number {
		t.Errorf("what-if --status Resolved --customer Globex: %+v", resolved)
	}
	none := decode[projections.WhatIfReport](t, ok(t, s("what-if", "--sla", strictFile, "--company", "Initech", "--ticket-type", "Bug", "--project", "X")...))
	if none.Totals.Tickets != 0 || len(none.Tickets) != 0 {
		t.Errorf("what-if on no ticket: %+v", none)
	}
	// Before the first ticket, no ticket has an SLA, as recorded or otherwise.
	// (projections.WhatIf still lists the tickets created after as_of, empty.)
	before := decode[projections.WhatIfReport](t, ok(t, s("what-if", "--sla", strictFile, "--as-of", "2000-01-01T00:00:00Z")...))
	if before.Totals.WithSLAActual != 0 || before.Totals.BreachedWhatIf != 0 || before.Totals.Changed != 0 {
		t.Errorf("what-if --as-of 2000: %+v", before.Totals)
	}

	// Errors.
	fails(t, 2, []string{"--sla FILE.json is required"}, s("what-if")...)
	fails(t, 2, []string{"not an RFC 3339 instant"}, s("what-if", "--sla", strictFile, "--as-of", "yesterday")...)
	fails(t, 1, []string{"no such file"}, s("what-if", "--sla", filepath.Join(t.TempDir(), "missing.json"))...)
	notJSON := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(notJSON, []byte("name: Strict"), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, 1, []string{"is not a JSON object"}, s("what-if", "--sla", notJSON)...)
	fails(t, 1, []string{"error: Validation failed: ", "  calendar.timezone: ", "  priorities: "},
		s("what-if", "--sla", writeJSONFile(t, map[string]any{"name": "Empty"}))...)
}
