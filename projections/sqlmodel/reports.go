package sqlmodel

import (
	"context"
	"database/sql"
	"strings"

	"github.com/ticketcore/ticketcore/projections/reports"
)

// Report computes a report (projections/reports) from the tables.
func (m *Model) Report(ctx context.Context, q reports.Query) (*reports.Report, error) {
	return reports.Run(ctx, m, q)
}

// TicketRecords implements reports.Source: the tickets opened in the query's period,
// with their agreement status at q.At, one per assignee when grouped by team.
func (m *Model) TicketRecords(ctx context.Context, q reports.Query) ([]reports.Record, error) {
	d := m.tgt.d
	team := "NULL"
	from := "tickets t"
	if q.Has("team") {
		team, from = "a.assignee", "tickets t LEFT JOIN ticket_assignees a ON a.ticket_id = t.ticket_id"
	}
	query := `SELECT t.ticket_id, t.opened_at, t.priority, t.ticket_type, ` + team + `, t.customer, t.sla, t.channel, t.status,
	` + strings.ReplaceAll(agreementStatusSQL("?"), "\n", "\n\t") + `,
	t.first_response_time_calendar, t.first_response_time_business, t.resolution_time_calendar, t.resolution_time_business
	FROM ` + from
	args := []any{d.ts(q.At), d.ts(q.At)}
	where, wargs := periodFilter(d, "t.opened_at", q)
	query += where
	args = append(args, wargs...)
	var status string
	var agreement sql.NullString
	var times [4]sql.NullFloat64
	return m.records(ctx, d.rebind(query), args, []any{&status, &agreement, &times[0], &times[1], &times[2], &times[3]}, func(r *reports.Record) {
		r.Status, r.Agreement = status, agreement.String
		r.FirstResponseCalendar, r.FirstResponseBusiness = floatPtr(times[0]), floatPtr(times[1])
		r.ResolutionCalendar, r.ResolutionBusiness = floatPtr(times[2]), floatPtr(times[3])
	})
}

// BreachRecords implements reports.Source: the missed deadlines in the query's period,
// with their ticket's fields.
func (m *Model) BreachRecords(ctx context.Context, q reports.Query) ([]reports.Record, error) {
	d := m.tgt.d
	team := "NULL"
	from := "sla_breaches b JOIN tickets t ON t.ticket_id = b.ticket_id"
	if q.Has("team") {
		team, from = "a.assignee", from+" LEFT JOIN ticket_assignees a ON a.ticket_id = t.ticket_id"
	}
	query := `SELECT t.ticket_id, b.deadline, t.priority, t.ticket_type, ` + team + `, t.customer, b.sla, t.channel, t.status, b.kind
	FROM ` + from
	where, args := periodFilter(d, "b.deadline", q)
	query += where
	var status, kind string
	return m.records(ctx, d.rebind(query), args, []any{&status, &kind}, func(r *reports.Record) {
		r.Status, r.Kind = status, kind
	})
}

// records runs a report query whose columns are the ticket ID, the instant that places
// the record in a period, the grouping fields (which may be NULL), then those scanned
// into rest; after each row, finish moves rest's values into the record. Every row is
// scanned into the same variables, so that reading a row allocates only its values.
func (m *Model) records(ctx context.Context, query string, args []any, rest []any, finish func(r *reports.Record)) ([]reports.Record, error) {
	var ticketID string
	var period nullTime
	var g [6]sql.NullString // priority, ticket type, team, customer, SLA, channel
	dest := append([]any{&ticketID, &period, &g[0], &g[1], &g[2], &g[3], &g[4], &g[5]}, rest...)
	var out []reports.Record
	err := m.Read(ctx, func(db *sql.DB) error {
		rows, err := db.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			r := reports.Record{TicketID: ticketID, Period: period.Time, Priority: g[0].String, TicketType: g[1].String,
				Team: g[2].String, Customer: g[3].String, SLA: g[4].String, Channel: g[5].String}
			finish(&r)
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, err
}

func periodFilter(d *dialect, col string, q reports.Query) (string, []any) {
	var conds []string
	var args []any
	if !q.From.IsZero() {
		conds = append(conds, col+" >= ?")
		args = append(args, d.ts(q.From))
	}
	if !q.To.IsZero() {
		conds = append(conds, col+" < ?")
		args = append(args, d.ts(q.To))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return "\n\tWHERE " + strings.Join(conds, " AND "), args
}

func floatPtr(f sql.NullFloat64) *float64 {
	if !f.Valid {
		return nil
	}
	v := f.Float64
	return &v
}
