package sqlmodel

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/projections"
)

// AgreementStatusAt is the SQL expression of a tickets row's agreement status at the
// instant bound to its one placeholder (see agreementStatusSQL).
func AgreementStatusAt() string { return agreementStatusSQL("?") }

// Views reads every ticket back as the in-memory model's summary view, evaluated at
// instant at (the agreement status computed by the SQL expression), sorted by id. It
// is what the tests compare with projections.Tickets.Snapshot.
func (m *Model) Views(ctx context.Context, at time.Time) ([]projections.TicketView, error) {
	var out []projections.TicketView
	err := m.Read(ctx, func(db *sql.DB) error {
		var err error
		out, err = readViews(ctx, db, m.tgt.d, at)
		return err
	})
	return out, err
}

func readViews(ctx context.Context, db *sql.DB, d *dialect, at time.Time) ([]projections.TicketView, error) {
	// Times are compared in the expression, so bind the instant the way it is stored.
	q := `SELECT ticket_id, number, version, subject, raised_by, status, priority, ticket_type, customer, customer_group,
	territory, contact, lead, company, project, email_account, channel, via_portal, split_from, split_from_number,
	split_from_message, resolution_details, closed_automatically, created_at, updated_at, opened_at, sla, sla_version,
	` + AgreementStatusAt() + `, sla_started_at, response_by, resolution_by, first_responded_on, on_hold_since,
	resolution_date, reopens, replies, customer_messages, mins_to_first_response,
	first_response_time_calendar, first_response_time_business, avg_response_time_calendar, avg_response_time_business,
	total_hold_time_calendar, total_hold_time_business, resolution_time_calendar, resolution_time_business,
	user_resolution_time_calendar, user_resolution_time_business
	FROM tickets ORDER BY ticket_id`
	rows, err := db.QueryContext(ctx, d.rebind(q), d.ts(at), d.ts(at))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []projections.TicketView
	byID := map[string]int{}
	for rows.Next() {
		var v projections.TicketView
		var str [17]sql.NullString
		var slaVersion sql.NullInt64
		var times [9]nullTime
		var floats [11]sql.NullFloat64
		if err := rows.Scan(&v.ID, &v.Number, &v.Version, &v.Subject, &v.RaisedBy, &v.Status, &str[0], &str[1], &str[2], &str[3],
			&str[4], &str[5], &str[6], &str[7], &str[8], &str[9], &str[10], &v.ViaPortal, &str[11], &str[12],
			&str[13], &str[14], &v.ClosedAutomatically, &times[0], &times[1], &times[2], &str[15], &slaVersion,
			&str[16], &times[3], &times[4], &times[5], &times[6], &times[7],
			&times[8], &v.Reopens, &v.Replies, &v.CustomerMessages, &floats[0],
			&floats[1], &floats[2], &floats[3], &floats[4], &floats[5], &floats[6], &floats[7], &floats[8], &floats[9], &floats[10]); err != nil {
			return nil, err
		}
		v.Priority, v.TicketType, v.Customer, v.CustomerGroup = str[0].String, str[1].String, str[2].String, str[3].String
		v.Territory, v.Contact, v.Lead, v.Company, v.Project = str[4].String, str[5].String, str[6].String, str[7].String, str[8].String
		v.EmailAccount, v.Channel = str[9].String, domain.Channel(str[10].String)
		if str[11].Valid {
			v.SplitFrom = &domain.SplitOrigin{TicketID: str[11].String, Number: str[12].String, FromMessage: str[13].String}
		}
		v.Resolution = str[14].String
		v.CreatedAt, v.UpdatedAt, v.OpenedAt = times[0].Time, times[1].Time, times[2].Time
		if str[15].Valid {
			name, version, status := str[15].String, int(slaVersion.Int64), str[16].String
			v.SLA, v.SLAVersion, v.AgreementStatus = &name, &version, &status
		}
		v.EvaluatedAt = at.UTC()
		v.SLAStartedAt, v.ResponseBy, v.ResolutionBy = times[3].ptr(), times[4].ptr(), times[5].ptr()
		v.FirstRespondedOn, v.OnHoldSince, v.ResolutionDate = times[6].ptr(), times[7].ptr(), times[8].ptr()
		f := func(i int) *float64 {
			if !floats[i].Valid {
				return nil
			}
			x := floats[i].Float64
			return &x
		}
		v.MinsToFirstResponse = f(0)
		v.FirstResponseTimeCalendar, v.FirstResponseTimeBusiness = f(1), f(2)
		v.AvgResponseTimeCalendar, v.AvgResponseTimeBusiness = f(3), f(4)
		v.TotalHoldTimeCalendar, v.TotalHoldTimeBusiness = f(5), f(6)
		v.ResolutionTimeCalendar, v.ResolutionTimeBusiness = f(7), f(8)
		v.UserResolutionTimeCalendar, v.UserResolutionTimeBusiness = f(9), f(10)
		v.Assignees = []string{}
		byID[v.ID] = len(out)
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()

	arows, err := db.QueryContext(ctx, `SELECT ticket_id, assignee FROM ticket_assignees ORDER BY ticket_id, seq`)
	if err != nil {
		return nil, err
	}
	defer arows.Close()
	for arows.Next() {
		var id, a string
		if err := arows.Scan(&id, &a); err != nil {
			return nil, err
		}
		i, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("ticket_assignees names ticket %s, which tickets does not hold", id)
		}
		out[i].Assignees = append(out[i].Assignees, a)
	}
	if err := arows.Err(); err != nil {
		return nil, err
	}
	arows.Close()

	srows, err := db.QueryContext(ctx, `SELECT ticket_id, new_ticket_id, new_number, from_message, split_at FROM ticket_splits ORDER BY ticket_id, position`)
	if err != nil {
		return nil, err
	}
	defer srows.Close()
	for srows.Next() {
		var id string
		var l projections.SplitLink
		var at nullTime
		if err := srows.Scan(&id, &l.TicketID, &l.Number, &l.FromMessage, &at); err != nil {
			return nil, err
		}
		l.At = at.Time
		i, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("ticket_splits names ticket %s, which tickets does not hold", id)
		}
		out[i].SplitInto = append(out[i].SplitInto, l)
	}
	if err := srows.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Thread reads a ticket's messages and comments back as the detail view shows them.
func (m *Model) Thread(ctx context.Context, ticketID string) ([]projections.ThreadMessage, []projections.Comment, error) {
	var thread []projections.ThreadMessage
	var comments []projections.Comment
	err := m.Read(ctx, func(db *sql.DB) error {
		d := m.tgt.d
		rows, err := db.QueryContext(ctx, d.rebind(`SELECT message_id, direction, sent_at, from_address, to_addresses, cc_addresses,
		subject, body, channel, actor FROM messages WHERE ticket_id = ? ORDER BY seq`), ticketID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var msg projections.ThreadMessage
			var at nullTime
			var from, to, cc, subject, channel, actor sql.NullString
			if err := rows.Scan(&msg.MessageID, &msg.Direction, &at, &from, &to, &cc, &subject, &msg.Body, &channel, &actor); err != nil {
				return err
			}
			msg.At, msg.From, msg.Subject, msg.Channel, msg.Actor = at.Time, from.String, subject.String, domain.Channel(channel.String), actor.String
			if to.String != "" {
				msg.To = strings.Split(to.String, ",")
			}
			if cc.String != "" {
				msg.CC = strings.Split(cc.String, ",")
			}
			thread = append(thread, msg)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		crows, err := db.QueryContext(ctx, d.rebind(`SELECT comment_id, added_at, author, body FROM comments WHERE ticket_id = ? ORDER BY position`), ticketID)
		if err != nil {
			return err
		}
		defer crows.Close()
		for crows.Next() {
			var c projections.Comment
			var at nullTime
			var author sql.NullString
			if err := crows.Scan(&c.CommentID, &at, &author, &c.Body); err != nil {
				return err
			}
			c.At, c.Author = at.Time, author.String
			comments = append(comments, c)
		}
		return crows.Err()
	})
	return thread, comments, err
}
