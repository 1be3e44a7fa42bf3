package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/ticketcore/ticketcore/projections"
)

// whatIfBody is the body of POST /v1/what-if.
type whatIfBody struct {
	SLA    json.RawMessage   `json:"sla"`
	Filter map[string]string `json:"filter,omitempty"`
	AsOf   string            `json:"as_of,omitempty"`
}

func cmdWhatIf(ctx context.Context, e *env, args []string) error {
	fs := e.flags("what-if")
	slaFile := fs.String("sla", "", "file holding the hypothetical SLA definition, as for 'sla save' (- for standard input; required)")
	filters := []struct{ flag, param, usage string }{
		{"status", "status", "only tickets now in this status"},
		{"priority", "priority", "only tickets of this priority"},
		{"ticket-type", "ticket_type", "only tickets of this type"},
		{"customer", "customer", "only tickets of this customer"},
		{"company", "company", "only tickets of this company"},
		{"project", "project", "only tickets of this project"},
		{"current-sla", "sla", "only tickets now measured against this SLA"},
		{"agreement-status", "agreement_status", "only tickets whose agreement status is this at the evaluation instant"},
	}
	values := make([]*string, len(filters))
	for i, f := range filters {
		values[i] = fs.String(f.flag, "", f.usage)
	}
	asOf := fs.String("as-of", "", "evaluate at this RFC 3339 instant, ignoring later events (default now)")
	all := fs.Bool("all", false, "table: list every compared ticket, not only those that change")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *slaFile == "" {
		return usagef("--sla FILE.json is required")
	}
	if *asOf != "" {
		if _, err := time.Parse(time.RFC3339Nano, *asOf); err != nil {
			return usagef("--as-of %q is not an RFC 3339 instant (e.g. 2026-03-01T12:00:00Z)", *asOf)
		}
	}
	data, err := readInput(*slaFile)
	if err != nil {
		return err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return fmt.Errorf("%s is not a JSON object: %w", *slaFile, err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return err
	}
	body := whatIfBody{SLA: compact.Bytes(), AsOf: *asOf}
	for i, f := range filters {
		if *values[i] != "" {
			if body.Filter == nil {
				body.Filter = map[string]string{}
			}
			body.Filter[f.param] = *values[i]
		}
	}
	p := e.progress("what-if: ticketd is replaying the history", 0) // elapsed time, on a terminal
	p.ticking()
	resp, err := e.call(ctx, request{method: http.MethodPost, path: "/v1/what-if", body: body})
	p.finish()
	if err != nil {
		return err
	}
	if !e.table() {
		return e.printJSON(resp.body)
	}
	var report projections.WhatIfReport
	if err := json.Unmarshal(resp.body, &report); err != nil {
		return fmt.Errorf("malformed what-if answer: %w", err)
	}
	return e.printWhatIf(report, *all)
}

// printWhatIf writes the totals, then one row per ticket that changes (every ticket
// with all): agreement status, response and resolution deadlines, actual -> what-if.
func (e *env) printWhatIf(r projections.WhatIfReport, all bool) error {
	t := r.Totals
	out := e.stdout
	fmt.Fprintf(out, "what-if SLA %q, evaluated at %s\n\n", r.SLA, r.EvaluatedAt.UTC().Format(time.RFC3339))
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "tickets compared\t%d\n", t.Tickets)
	fmt.Fprintf(w, "with an SLA as recorded\t%d\n", t.WithSLAActual)
	fmt.Fprintf(w, "breached: actual -> what-if\t%d -> %d\t(%d newly breached, %d no longer breached)\n",
		t.BreachedActual, t.BreachedWhatIf, t.NewlyBreached, t.NoLongerBreached)
	fmt.Fprintf(w, "compliance: actual -> what-if\t%s -> %s\n", percent(t.ComplianceActual), percent(t.ComplianceWhatIf))
	fmt.Fprintf(w, "changed\t%d\n", t.Changed)
	if err := w.Flush(); err != nil {
		return err
	}
	shown := 0
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, tk := range r.Tickets {
		if !all && !tk.Changed {
			continue
		}
		if shown == 0 {
			fmt.Fprintln(out)
			fmt.Fprintln(w, "NUMBER\tAGREEMENT: ACTUAL -> WHAT-IF\tRESPONSE BY: BEFORE -> AFTER\tRESOLUTION BY: BEFORE -> AFTER\tCHANGED")
		}
		shown++
		changed := "no"
		if tk.Changed {
			changed = "yes"
		}
		fmt.Fprintf(w, "%s\t%s -> %s\t%s -> %s\t%s -> %s\t%s\n", dash(tk.Number),
			orDash(tk.Actual.AgreementStatus), orDash(tk.WhatIf.AgreementStatus),
			timeOrDash(utc(tk.Actual.ResponseBy)), timeOrDash(utc(tk.WhatIf.ResponseBy)),
			timeOrDash(utc(tk.Actual.ResolutionBy)), timeOrDash(utc(tk.WhatIf.ResolutionBy)), changed)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	what := "changed ticket(s)"
	if all {
		what = "ticket(s)"
	}
	fmt.Fprintf(out, "\n%d %s listed of %d compared", shown, what, t.Tickets)
	if !all && t.Changed < t.Tickets {
		fmt.Fprint(out, " (--all lists every one)")
	}
	_, err := fmt.Fprintln(out)
	return err
}

func orDash(s *string) string {
	if s == nil {
		return "-"
	}
	return dash(*s)
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func percent(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", *p)
}
