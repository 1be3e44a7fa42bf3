package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
)

// cmdReport prints an analysts' report (GET /v1/reports/{name}; docs/analytics.md).
// Without a name it lists the reports.
func cmdReport(ctx context.Context, e *env, args []string) error {
	fs := e.flags("report")
	groupBy := fs.String("group-by", "", "comma-separated: day, week, month, priority, ticket_type, team, customer, sla, channel, status")
	from := fs.String("from", "", "period start, included: an RFC 3339 instant or a date (midnight UTC)")
	to := fs.String("to", "", "period end, excluded: an RFC 3339 instant or a date")
	format := fs.String("format", "json", "json or csv, as the server writes it (-o table renders the JSON as a table)")
	minPos := fs.String("min-position", "", "wait until the server's read models have applied this event position")
	pos, err := e.parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		resp, err := e.call(ctx, request{method: http.MethodGet, path: "/v1/reports"})
		if err != nil {
			return err
		}
		return e.printJSON(resp.body)
	}
	switch *format {
	case "json", "csv":
	default:
		return usagef("--format %q: use json or csv", *format)
	}
	if e.table() && *format == "csv" {
		return usagef("-o table renders the JSON report; drop --format csv")
	}
	q := url.Values{}
	for name, v := range map[string]string{"group_by": *groupBy, "from": *from, "to": *to, "format": *format, "min_position": *minPos} {
		if v != "" {
			q.Set(name, v)
		}
	}
	resp, err := e.call(ctx, request{method: http.MethodGet, path: "/v1/reports/" + url.PathEscape(pos[0]), query: q})
	if err != nil {
		return err
	}
	switch {
	case *format == "csv":
		_, err := e.stdout.Write(resp.body)
		return err
	case e.table():
		return printReportTable(e, resp.body)
	}
	return e.printJSON(resp.body)
}

// printReportTable renders a JSON report as an aligned table.
func printReportTable(e *env, body []byte) error {
	var rep struct {
		Columns []string                     `json:"columns"`
		Rows    []map[string]json.RawMessage `json:"rows"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		return fmt.Errorf("the report is not JSON: %w", err)
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(rep.Columns, "\t")))
	for _, row := range rep.Rows {
		cells := make([]string, len(rep.Columns))
		for i, c := range rep.Columns {
			v := bytes.TrimSpace(row[c])
			switch {
			case len(v) == 0 || string(v) == "null":
				cells[i] = "-"
			case v[0] == '"':
				var s string
				_ = json.Unmarshal(v, &s)
				cells[i] = s
			default:
				cells[i] = string(v)
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}
