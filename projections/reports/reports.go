// Package reports computes the analysts' reports (SLA compliance, breaches, first
// response and resolution times, backlog) from per-ticket records that a Source
// (the SQL read model, projections/sqlmodel) reads, grouped by period, priority, type,
// team, customer..., and writes them as JSON or CSV.
//
// Aggregation is done here, in Go, so that medians and 90th percentiles are exact and
// the same whatever the database (SQLite has no percentile function).
package reports

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ticketcore/ticketcore/domain"
)

// Report names.
const (
	SLACompliance = "sla-compliance"
	Breaches      = "breaches"
	FirstResponse = "first-response"
	Resolution    = "resolution"
	Backlog       = "backlog"
)

// Catalogue describes every report: name and what it counts.
var Catalogue = []struct {
	Name, Description string
}{
	{SLACompliance, "tickets with an SLA by agreement status at the evaluation instant; compliance_pct = fulfilled / (fulfilled + failed)"},
	{Breaches, "SLA deadlines recorded as missed (ticket.sla_deadline_missed), by kind; periods are those of the deadline"},
	{FirstResponse, "first response time (first_responded_on - SLA start), median and 90th percentile, calendar and business seconds"},
	{Resolution, "resolution time (resolution_date - SLA start) of resolved tickets, median and 90th percentile, calendar and business seconds"},
	{Backlog, "tickets by current status; unresolved = Open + Replied + On Hold"},
}

// Dimensions are the group_by values. Periods are UTC; a week is named by its Monday.
var Dimensions = []string{"day", "week", "month", "priority", "ticket_type", "team", "customer", "sla", "channel", "status"}

// None and Unassigned name a missing value in a group.
const (
	None       = "(none)"
	Unassigned = "(unassigned)"
)

// Query is one report request.
type Query struct {
	Name    string
	GroupBy []string
	// From and To bound the period (opened_at; the deadline for breaches): From
	// included, To excluded; zero is unbounded.
	From, To time.Time
	// At is when agreement statuses are evaluated (now).
	At time.Time
}

// Has reports whether the query groups by dim.
func (q Query) Has(dim string) bool { return slices.Contains(q.GroupBy, dim) }

// ParseQuery reads a report request from URL parameters group_by (comma-separated),
// from and to (RFC 3339 instants, or dates: midnight UTC). Mistakes are validation
// errors (domain.ErrValidation).
func ParseQuery(name string, v url.Values, at time.Time) (Query, error) {
	q := Query{Name: name, At: at.UTC()}
	if !Known(name) {
		return q, fmt.Errorf("report %q: %w", name, domain.ErrNotFound)
	}
	for _, g := range strings.Split(v.Get("group_by"), ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		if !slices.Contains(Dimensions, g) {
			return q, domain.Invalid("group_by", "unknown dimension %q: use %s", g, strings.Join(Dimensions, ", "))
		}
		if !q.Has(g) {
			q.GroupBy = append(q.GroupBy, g)
		}
	}
	var err error
	if q.From, err = parseInstant("from", v.Get("from")); err != nil {
		return q, err
	}
	if q.To, err = parseInstant("to", v.Get("to")); err != nil {
		return q, err
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.To.After(q.From) {
		return q, domain.Invalid("to", "must be after from")
	}
	return q, nil
}

// Known reports whether name is a report.
func Known(name string) bool {
	for _, r := range Catalogue {
		if r.Name == name {
			return true
		}
	}
	return false
}

func parseInstant(field, raw string) (time.Time, error) {
	if raw == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, raw); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, raw); err == nil {
		return t, nil
	}
	return time.Time{}, domain.Invalid(field, "must be an RFC 3339 instant or a date, e.g. 2026-01-05T12:00:00Z or 2026-01-05")
}

// Record is one ticket as a report counts it (one per ticket and assignee when the
// query groups by team; for breaches, one per missed deadline).
type Record struct {
	Period     time.Time // opened_at; the deadline for breaches
	Priority   string
	TicketType string
	Team       string // an assignee
	Customer   string
	SLA        string
	Channel    string
	Status     string

	TicketID  string
	Agreement string // at Query.At; "" without SLA
	Kind      string // breaches: response or resolution

	FirstResponseCalendar, FirstResponseBusiness *float64
	ResolutionCalendar, ResolutionBusiness       *float64
}

// Source reads the records of a query, filtered by its period.
type Source interface {
	// TicketRecords returns one record per ticket opened in [From, To) (per ticket and
	// assignee when the query groups by team).
	TicketRecords(ctx context.Context, q Query) ([]Record, error)
	// BreachRecords returns one record per missed deadline in [From, To).
	BreachRecords(ctx context.Context, q Query) ([]Record, error)
}

// Report is a computed report: one row per group, values in column order.
type Report struct {
	Name        string
	GroupBy     []string
	From, To    time.Time
	EvaluatedAt time.Time
	Columns     []string
	Rows        [][]any // string, int or *float64 (nil: no value)
}

// Run reads the records and computes the report.
func Run(ctx context.Context, src Source, q Query) (*Report, error) {
	var recs []Record
	var err error
	if q.Name == Breaches {
		recs, err = src.BreachRecords(ctx, q)
	} else {
		recs, err = src.TicketRecords(ctx, q)
	}
	if err != nil {
		return nil, err
	}
	return Build(q, recs)
}

// Build computes a report from records.
func Build(q Query, recs []Record) (*Report, error) {
	metrics, ok := builders[q.Name]
	if !ok {
		return nil, fmt.Errorf("report %q: %w", q.Name, domain.ErrNotFound)
	}
	r := &Report{Name: q.Name, GroupBy: q.GroupBy, From: q.From, To: q.To, EvaluatedAt: q.At}
	if r.GroupBy == nil {
		r.GroupBy = []string{}
	}
	r.Columns = append(slices.Clone(r.GroupBy), metrics.columns...)
	// Each group's records are copied once, into a slice of its final size: copies
	// that grow one record at a time cost more than the rest of a report on a large
	// history. Without grouping, the one group is recs itself.
	groups := map[string][]Record{}
	var keys []string
	if len(q.GroupBy) == 0 {
		groups[""], keys = recs, []string{""} // one total row, even when empty
	} else {
		keyOf := make([]string, len(recs))
		sizes := map[string]int{}
		for i, rec := range recs {
			keyOf[i] = strings.Join(groupKey(q.GroupBy, rec), "\x00")
			if sizes[keyOf[i]] == 0 {
				keys = append(keys, keyOf[i])
			}
			sizes[keyOf[i]]++
		}
		for i, rec := range recs {
			g, ok := groups[keyOf[i]]
			if !ok {
				g = make([]Record, 0, sizes[keyOf[i]])
			}
			groups[keyOf[i]] = append(g, rec)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		var row []any
		if len(q.GroupBy) > 0 {
			for _, part := range strings.Split(k, "\x00") {
				row = append(row, part)
			}
		}
		row = append(row, metrics.compute(groups[k])...)
		r.Rows = append(r.Rows, row)
	}
	return r, nil
}

func groupKey(dims []string, r Record) []string {
	out := make([]string, len(dims))
	for i, d := range dims {
		var v string
		switch d {
		case "day":
			v = r.Period.UTC().Format(time.DateOnly)
		case "week":
			t := r.Period.UTC()
			v = t.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7)).Format(time.DateOnly)
		case "month":
			v = r.Period.UTC().Format("2006-01")
		case "priority":
			v = r.Priority
		case "ticket_type":
			v = r.TicketType
		case "team":
			v = r.Team
			if v == "" {
				v = Unassigned
			}
		case "customer":
			v = r.Customer
		case "sla":
			v = r.SLA
		case "channel":
			v = r.Channel
		case "status":
			v = r.Status
		}
		if v == "" {
			v = None
		}
		out[i] = v
	}
	return out
}

type builder struct {
	columns []string
	compute func([]Record) []any
}

var builders = map[string]builder{
	SLACompliance: {
		columns: []string{"tickets", "with_sla", "fulfilled", "failed", "in_progress", "compliance_pct"},
		compute: func(recs []Record) []any {
			var withSLA, fulfilled, failed int
			for _, r := range recs {
				switch {
				case r.Agreement == "":
					continue
				case r.Agreement == domain.AgreementFulfilled:
					fulfilled++
				case r.Agreement == domain.AgreementFailed:
					failed++
				}
				withSLA++
			}
			return []any{distinct(recs), withSLA, fulfilled, failed, withSLA - fulfilled - failed, pct(fulfilled, fulfilled+failed)}
		},
	},
	Breaches: {
		columns: []string{"breaches", "response", "resolution", "tickets"},
		compute: func(recs []Record) []any {
			var resp, res int
			for _, r := range recs {
				if r.Kind == domain.DeadlineResponse {
					resp++
				} else {
					res++
				}
			}
			return []any{len(recs), resp, res, distinct(recs)}
		},
	},
	FirstResponse: {
		columns: []string{"tickets", "responded", "median_calendar", "p90_calendar", "median_business", "p90_business"},
		compute: func(recs []Record) []any {
			cal, bus := collect(recs, func(r Record) (*float64, *float64) { return r.FirstResponseCalendar, r.FirstResponseBusiness })
			return []any{distinct(recs), len(cal), percentile(cal, 0.5), percentile(cal, 0.9), percentile(bus, 0.5), percentile(bus, 0.9)}
		},
	},
	Resolution: {
		columns: []string{"tickets", "resolved", "median_calendar", "p90_calendar", "median_business", "p90_business"},
		compute: func(recs []Record) []any {
			cal, bus := collect(recs, func(r Record) (*float64, *float64) { return r.ResolutionCalendar, r.ResolutionBusiness })
			return []any{distinct(recs), len(cal), percentile(cal, 0.5), percentile(cal, 0.9), percentile(bus, 0.5), percentile(bus, 0.9)}
		},
	},
	Backlog: {
		columns: []string{"open", "replied", "on_hold", "resolved", "closed", "unresolved", "total"},
		compute: func(recs []Record) []any {
			n := map[string]int{}
			for _, r := range recs {
				n[r.Status]++
			}
			open, replied, hold := n[string(domain.StatusOpen)], n[string(domain.StatusReplied)], n[string(domain.StatusOnHold)]
			return []any{open, replied, hold, n[string(domain.StatusResolved)], n[string(domain.StatusClosed)], open + replied + hold, len(recs)}
		},
	},
}

func distinct(recs []Record) int {
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.TicketID] = true
	}
	return len(seen)
}

func collect(recs []Record, get func(Record) (*float64, *float64)) (cal, bus []float64) {
	for _, r := range recs {
		c, b := get(r)
		if c != nil {
			cal = append(cal, *c)
		}
		if b != nil {
			bus = append(bus, *b)
		}
	}
	return cal, bus
}

func pct(n, of int) *float64 {
	if of == 0 {
		return nil
	}
	v := math.Round(10000*float64(n)/float64(of)) / 100
	return &v
}

// percentile is the p-quantile with linear interpolation between closest ranks (as
// PostgreSQL's percentile_cont); nil for no value.
func percentile(xs []float64, p float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	rank := p * float64(len(s)-1)
	lo := int(math.Floor(rank))
	hi := int(math.Ceil(rank))
	v := s[lo] + (rank-float64(lo))*(s[hi]-s[lo])
	return &v
}

// MarshalJSON writes the report with each row as an object in column order.
func (r *Report) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"report":`)
	writeJSON(&b, r.Name)
	b.WriteString(`,"group_by":`)
	writeJSON(&b, r.GroupBy)
	if !r.From.IsZero() {
		b.WriteString(`,"from":`)
		writeJSON(&b, r.From)
	}
	if !r.To.IsZero() {
		b.WriteString(`,"to":`)
		writeJSON(&b, r.To)
	}
	b.WriteString(`,"evaluated_at":`)
	writeJSON(&b, r.EvaluatedAt)
	b.WriteString(`,"columns":`)
	writeJSON(&b, r.Columns)
	b.WriteString(`,"rows":[`)
	for i, row := range r.Rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('{')
		for j, v := range row {
			if j > 0 {
				b.WriteByte(',')
			}
			writeJSON(&b, r.Columns[j])
			b.WriteByte(':')
			writeJSON(&b, v)
		}
		b.WriteByte('}')
	}
	b.WriteString("]}")
	return b.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, v any) {
	out, err := json.Marshal(v)
	if err != nil {
		out = []byte("null")
	}
	b.Write(out)
}

// WriteCSV writes the report as CSV: a header of its columns, then its rows; a missing
// value is an empty field.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(r.Columns); err != nil {
		return err
	}
	for _, row := range r.Rows {
		rec := make([]string, len(row))
		for i, v := range row {
			rec[i] = formatCSV(v)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func formatCSV(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case *float64:
		if x == nil {
			return ""
		}
		return strconv.FormatFloat(*x, 'f', -1, 64)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}
