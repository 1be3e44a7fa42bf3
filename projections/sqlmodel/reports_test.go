package sqlmodel_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/projections"
	"github.com/ticketcore/ticketcore/projections/reports"
)

// TestReportsMatchInMemoryModel computes every report from the SQL tables and from the
// in-memory model's views of the same history, for several groupings and periods:
// they must be equal.
func TestReportsMatchInMemoryModel(t *testing.T) {
	hist := loadHistory(t)
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		m, mem := sharedModel(t, b, hist)
		at := hist.stats.End.Add(48 * time.Hour)
		views := mem.Snapshot(at)
		byID := map[string]projections.TicketView{}
		for _, v := range views {
			byID[v.ID] = v
		}
		middle := hist.stats.Start.Add(hist.stats.End.Sub(hist.stats.Start) / 2).Truncate(24 * time.Hour)
		for _, tc := range []struct {
			groupBy  []string
			from, to time.Time
		}{
			{nil, time.Time{}, time.Time{}},
			{[]string{"month", "priority"}, time.Time{}, time.Time{}},
			{[]string{"team"}, middle, time.Time{}},
			{[]string{"week", "ticket_type", "customer"}, hist.stats.Start, middle},
			{[]string{"day", "sla", "channel", "status"}, time.Time{}, time.Time{}},
		} {
			for _, c := range reports.Catalogue {
				q := reports.Query{Name: c.Name, GroupBy: tc.groupBy, From: tc.from, To: tc.to, At: at}
				got, err := m.Report(ctx, q)
				if err != nil {
					t.Fatalf("%s %v: %v", c.Name, tc.groupBy, err)
				}
				want, err := reports.Build(q, memRecords(q, views, byID, hist))
				if err != nil {
					t.Fatal(err)
				}
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				if string(g) != string(w) {
					t.Fatalf("%s by %v from %s to %s:\nSQL:       %s\nin memory: %s", c.Name, tc.groupBy, tc.from, tc.to, g, w)
				}
				if len(got.Rows) == 0 {
					t.Errorf("%s by %v: no rows", c.Name, tc.groupBy)
				}
			}
		}
	})
}

// memRecords are the records of a query computed from the in-memory views.
func memRecords(q reports.Query, views []projections.TicketView, byID map[string]projections.TicketView, hist *history) []reports.Record {
	in := func(t time.Time) bool {
		return (q.From.IsZero() || !t.Before(q.From)) && (q.To.IsZero() || t.Before(q.To))
	}
	base := func(v projections.TicketView) reports.Record {
		r := reports.Record{TicketID: v.ID, Period: v.OpenedAt, Priority: v.Priority, TicketType: v.TicketType,
			Customer: v.Customer, Channel: string(v.Channel), Status: string(v.Status),
			FirstResponseCalendar: v.FirstResponseTimeCalendar, FirstResponseBusiness: v.FirstResponseTimeBusiness,
			ResolutionCalendar: v.ResolutionTimeCalendar, ResolutionBusiness: v.ResolutionTimeBusiness}
		if v.SLA != nil {
			r.SLA, r.Agreement = *v.SLA, *v.AgreementStatus
		}
		return r
	}
	perTeam := func(r reports.Record, v projections.TicketView) []reports.Record {
		if !q.Has("team") || len(v.Assignees) == 0 {
			return []reports.Record{r}
		}
		var out []reports.Record
		for _, a := range v.Assignees {
			r.Team = a
			out = append(out, r)
		}
		return out
	}
	var out []reports.Record
	if q.Name == reports.Breaches {
		for _, e := range hist.events {
			p, ok := e.Payload.(domain.SLADeadlineMissed)
			if !ok || !in(p.Deadline) {
				continue
			}
			v := byID[domain.TicketIDFromStream(e.Stream)]
			r := base(v)
			r.Period, r.Kind, r.SLA = p.Deadline, p.Kind, p.SLA
			out = append(out, perTeam(r, v)...)
		}
		return out
	}
	for _, v := range views {
		if in(v.OpenedAt) {
			out = append(out, perTeam(base(v), v)...)
		}
	}
	return out
}
