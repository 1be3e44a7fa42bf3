package reports_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/projections/reports"
)

func f(v float64) *float64 { return &v }

var day = time.Date(2026, 1, 7, 10, 0, 0, 0, time.UTC) // a Wednesday

func records() []reports.Record {
	return []reports.Record{
		{TicketID: "a", Period: day, Priority: "High", Team: "alice", Status: "Open", Agreement: domain.AgreementFailed,
			FirstResponseCalendar: f(100), FirstResponseBusiness: f(10)},
		{TicketID: "b", Period: day, Priority: "High", Team: "bob", Status: "Resolved", Agreement: domain.AgreementFulfilled,
			FirstResponseCalendar: f(200), FirstResponseBusiness: f(20), ResolutionCalendar: f(1000), ResolutionBusiness: f(500)},
		{TicketID: "c", Period: day.AddDate(0, 0, 7), Priority: "", Status: "Closed", Agreement: domain.AgreementFulfilled,
			FirstResponseCalendar: f(300), ResolutionCalendar: f(3000)},
		{TicketID: "d", Period: day.AddDate(0, 1, 0), Priority: "Low", Status: "On Hold", Agreement: ""},
		{TicketID: "e", Period: day, Priority: "High", Team: "alice", Status: "Replied", Agreement: domain.AgreementPaused,
			FirstResponseCalendar: f(400), FirstResponseBusiness: f(40)},
	}
}

func build(t *testing.T, name string, groupBy ...string) *reports.Report {
	t.Helper()
	r, err := reports.Build(reports.Query{Name: name, GroupBy: groupBy, At: day}, records())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCompliance(t *testing.T) {
	r := build(t, reports.SLACompliance)
	want := []any{5, 4, 2, 1, 1, f(66.67)}
	if got := jsonOf(r.Rows[0]); got != jsonOf(want) {
		t.Fatalf("total row %s, want %s", got, jsonOf(want))
	}
	r = build(t, reports.SLACompliance, "week", "priority")
	got := jsonOf(r.Rows)
	want2 := jsonOf([][]any{
		{"2026-01-05", "High", 3, 3, 1, 1, 1, f(50)},
		{"2026-01-12", "(none)", 1, 1, 1, 0, 0, f(100)},
		{"2026-02-02", "Low", 1, 0, 0, 0, 0, nil},
	})
	if got != want2 {
		t.Fatalf("rows\n%s\nwant\n%s", got, want2)
	}
	if strings.Join(r.Columns, ",") != "week,priority,tickets,with_sla,fulfilled,failed,in_progress,compliance_pct" {
		t.Fatalf("columns %v", r.Columns)
	}
}

func TestPercentilesAndTeams(t *testing.T) {
	r := build(t, reports.FirstResponse, "team")
	got := jsonOf(r.Rows)
	// alice: 100 and 400: median 250, p90 = 100 + 0.9*300 = 370.
	want := jsonOf([][]any{
		{"(unassigned)", 2, 1, f(300), f(300), nil, nil},
		{"alice", 2, 2, f(250), f(370), f(25), f(37)},
		{"bob", 1, 1, f(200), f(200), f(20), f(20)},
	})
	if got != want {
		t.Fatalf("rows\n%s\nwant\n%s", got, want)
	}
	r = build(t, reports.Resolution, "month")
	if got := jsonOf(r.Rows[0]); got != jsonOf([]any{"2026-01", 4, 2, f(2000), f(2800), f(500), f(500)}) {
		t.Fatalf("resolution January: %s", got)
	}
}

func TestBacklogAndBreaches(t *testing.T) {
	r := build(t, reports.Backlog)
	if got := jsonOf(r.Rows[0]); got != jsonOf([]any{1, 1, 1, 1, 1, 3, 5}) {
		t.Fatalf("backlog %s", got)
	}
	br, err := reports.Build(reports.Query{Name: reports.Breaches, GroupBy: []string{"day"}}, []reports.Record{
		{TicketID: "a", Period: day, Kind: domain.DeadlineResponse},
		{TicketID: "a", Period: day, Kind: domain.DeadlineResolution},
		{TicketID: "b", Period: day, Kind: domain.DeadlineResolution},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonOf(br.Rows); got != jsonOf([][]any{{"2026-01-07", 3, 1, 2, 2}}) {
		t.Fatalf("breaches %s", got)
	}
	// No record: one total row of zeros without grouping, no row with grouping.
	empty, _ := reports.Build(reports.Query{Name: reports.Backlog}, nil)
	if len(empty.Rows) != 1 {
		t.Fatalf("empty total: %v", empty.Rows)
	}
	empty, _ = reports.Build(reports.Query{Name: reports.Backlog, GroupBy: []string{"day"}}, nil)
	if len(empty.Rows) != 0 {
		t.Fatalf("empty grouped: %v", empty.Rows)
	}
}

func TestEncodings(t *testing.T) {
	r := build(t, reports.FirstResponse, "priority")
	var b bytes.Buffer
	if err := r.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	want := "priority,tickets,responded,median_calendar,p90_calendar,median_business,p90_business\n" +
		"(none),1,1,300,300,,\nHigh,3,3,200,360,20,36\nLow,1,0,,,,\n"
	if b.String() != want {
		t.Fatalf("CSV:\n%s\nwant:\n%s", b.String(), want)
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Report  string           `json:"report"`
		GroupBy []string         `json:"group_by"`
		Columns []string         `json:"columns"`
		Rows    []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if doc.Report != reports.FirstResponse || len(doc.Rows) != 3 || doc.Rows[1]["priority"] != "High" || doc.Rows[1]["p90_calendar"] != 360.0 || doc.Rows[2]["median_calendar"] != nil {
		t.Fatalf("JSON: %s", out)
	}
}

func TestParseQuery(t *testing.T) {
	q, err := reports.ParseQuery(reports.Backlog, url.Values{"group_by": {"month, priority,month"}, "from": {"2026-01-01"}, "to": {"2026-02-01T00:00:00+01:00"}}, day)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(q.GroupBy, ",") != "month,priority" || !q.From.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) ||
		!q.To.Equal(time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC)) {
		t.Fatalf("%+v", q)
	}
	for _, bad := range []url.Values{{"group_by": {"weekday"}}, {"from": {"yesterday"}}, {"from": {"2026-02-01"}, "to": {"2026-01-01"}}} {
		if _, err := reports.ParseQuery(reports.Backlog, bad, day); !errors.Is(err, domain.ErrValidation) {
			t.Errorf("%v: %v, want a validation error", bad, err)
		}
	}
	if _, err := reports.ParseQuery("nope", nil, day); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("unknown report: %v", err)
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
