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
	var out []reports.Record
	err := m.Read(ctx, func(db *sql.DB) error {
		rows, err := db.QueryContext(ctx, d.rebind(query), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r reports.Record
			var opened nullTime
			var s [7]sql.NullString
			var f [4]sql.NullFloat64
			if err := rows.Scan(&r.TicketID, &opened, &s[0], &s[1], &s[2], &s[3], &s[4], &s[5], &r.Status, &s[6], &f[0], &f[1], &f[2], &f[3]); err != nil {
				return err
			}
			r.Period = opened.Time
			r.Priority, r.TicketType, r.Team, r.Customer, r.SLA, r.Channel = s[0].String, s[1].String, s[2].String, s[3].String, s[4].String, s[5].String
			r.Agreement = s[6].String
			r.FirstResponseCalendar, r.FirstResponseBusiness = floatPtr(f[0]), floatPtr(f[1])
			r.ResolutionCalendar, r.ResolutionBusiness = floatPtr(f[2]), floatPtr(f[3])
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, err
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
	var out []reports.Record
	err := m.Read(ctx, func(db *sql.DB) error {
		rows, err := db.QueryContext(ctx, d.rebind(query), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r reports.Record
			var deadline nullTime
			var s [6]sql.NullString
			if err := rows.Scan(&r.TicketID, &deadline, &s[0], &s[1], &s[2], &s[3], &s[4], &s[5], &r.Status, &r.Kind); err != nil {
				return err
			}
			r.Period = deadline.Time
			r.Priority, r.TicketType, r.Team, r.Customer, r.SLA, r.Channel = s[0].String, s[1].String, s[2].String, s[3].String, s[4].String, s[5].String
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
