package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/projections"
)

func cmdCreate(ctx context.Context, e *env, args []string) error {
	fs := e.flags("create")
	var f domain.TicketFieldsData
	var channel string
	fs.StringVar(&f.Subject, "subject", "", "subject (required)")
	fs.StringVar(&f.RaisedBy, "raised-by", "", "customer email address (required)")
	fs.StringVar(&f.Description, "description", "", "opening message")
	fs.StringVar(&f.Priority, "priority", "", "priority (default: the SLA's default priority)")
	fs.StringVar(&f.TicketType, "type", "", "ticket type")
	fs.StringVar(&f.Customer, "customer", "", "customer")
	fs.StringVar(&f.CustomerGroup, "customer-group", "", "customer group")
	fs.StringVar(&f.Territory, "territory", "", "territory")
	fs.StringVar(&f.Contact, "contact", "", "contact")
	fs.StringVar(&f.Lead, "lead", "", "lead")
	fs.StringVar(&f.Company, "company", "", "company")
	fs.StringVar(&f.Project, "project", "", "project")
	fs.StringVar(&f.EmailAccount, "email-account", "", "email account")
	fs.StringVar(&channel, "channel", "", "email, portal, api or manual (default api)")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	f.Channel = domain.Channel(channel)
	resp, err := e.call(ctx, request{method: http.MethodPost, path: "/v1/tickets", body: f})
	if err != nil {
		return err
	}
	return e.printTicket(resp.body)
}

// ticketCommand runs a command on one ticket: ID, then extra positional arguments,
// then flags; define registers the command's flags and returns the body builder.
func ticketCommand(ctx context.Context, e *env, name, endpoint string, args []string, extra int, define func(fs *flag.FlagSet) func(pos []string) any) error {
	fs := e.flags(name)
	ifMatch := fs.String("if-match", "", "refuse the command unless the ticket is at this version")
	build := define(fs)
	pos, err := e.parse(fs, args, 1+extra, 1+extra)
	if err != nil {
		return err
	}
	if *ifMatch != "" {
		if _, err := strconv.ParseUint(*ifMatch, 10, 64); err != nil {
			return usagef("--if-match must be a ticket version (a number)")
		}
	}
	resp, err := e.call(ctx, request{method: http.MethodPost, path: ticketPath(pos[0], endpoint), body: build(pos[1:]), ifMatch: *ifMatch})
	if err != nil {
		return err
	}
	return e.printTicket(resp.body)
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func cmdReply(ctx context.Context, e *env, args []string) error {
	return ticketCommand(ctx, e, "reply", "replies", args, 0, func(fs *flag.FlagSet) func([]string) any {
		body := fs.String("body", "", "reply text (required)")
		html := fs.String("html-body", "", "HTML version of the reply")
		to := fs.String("to", "", "recipients, comma separated (default: the customer)")
		cc := fs.String("cc", "", "copy recipients, comma separated")
		subject := fs.String("subject", "", "subject")
		return func([]string) any {
			return domain.SendReply{Body: *body, HTMLBody: *html, To: splitList(*to), CC: splitList(*cc), Subject: *subject}
		}
	})
}

func cmdMessage(ctx context.Context, e *env, args []string) error {
	return ticketCommand(ctx, e, "message", "messages", args, 0, func(fs *flag.FlagSet) func([]string) any {
		body := fs.String("body", "", "message text")
		html := fs.String("html-body", "", "HTML version of the message")
		from := fs.String("from", "", "sender (default: the customer who raised the ticket)")
		channel := fs.String("channel", "", "email or portal (default portal)")
		subject := fs.String("subject", "", "subject")
		return func([]string) any {
			return domain.ReceiveCustomerMessage{Body: *body, HTMLBody: *html, From: *from, Channel: domain.Channel(*channel), Subject: *subject}
		}
	})
}

func cmdComment(ctx context.Context, e *env, args []string) error {
	return ticketCommand(ctx, e, "comment", "comments", args, 0, func(fs *flag.FlagSet) func([]string) any {
		body := fs.String("body", "", "comment text (required)")
		return func([]string) any { return domain.AddComment{Body: *body} }
	})
}

func cmdHold(ctx context.Context, e *env, args []string) error {
	return ticketCommand(ctx, e, "hold", "hold", args, 0, func(fs *flag.FlagSet) func([]string) any {
		reason := fs.String("reason", "", "why the ticket waits")
		return func([]string) any { return domain.HoldTicket{Reason: *reason} }
	})
}

func cmdResolve(ctx context.Context, e *env, args []string) error {
	return ticketCommand(ctx, e, "resolve", "resolve", args, 0, func(fs *flag.FlagSet) func([]string) any {
		details := fs.String("details", "", "resolution details")
		return func([]string) any { return domain.ResolveTicket{ResolutionDetails: *details} }
	})
}

func cmdClose(ctx context.Context, e *env, args []string) error {
	return ticketCommand(ctx, e, "close", "close", args, 0, func(fs *flag.FlagSet) func([]string) any {
		reason := fs.String("reason", "", "why the ticket is closed")
		return func([]string) any { return domain.CloseTicket{Reason: *reason} }
	})
}

func cmdReopen(ctx context.Context, e *env, args []string) error {
	return ticketCommand(ctx, e, "reopen", "reopen", args, 0, func(fs *flag.FlagSet) func([]string) any {
		reason := fs.String("reason", "", "why the ticket is reopened")
		return func([]string) any { return domain.ReopenTicket{Reason: *reason} }
	})
}

func cmdSplit(ctx context.Context, e *env, args []string) error {
	return ticketCommand(ctx, e, "split", "split", args, 0, func(fs *flag.FlagSet) func([]string) any {
		from := fs.String("from-message", "", "first message to move to the new ticket (required)")
		subject := fs.String("subject", "", "subject of the new ticket (default: the source's)")
		return func([]string) any { return domain.SplitTicket{FromMessage: *from, Subject: *subject} }
	})
}

func cmdPriority(ctx context.Context, e *env, args []string) error {
	return ticketCommand(ctx, e, "priority", "priority", args, 1, func(*flag.FlagSet) func([]string) any {
		return func(pos []string) any { return domain.ChangePriority{Priority: pos[0]} }
	})
}

func cmdType(ctx context.Context, e *env, args []string) error {
	return ticketCommand(ctx, e, "type", "type", args, 1, func(*flag.FlagSet) func([]string) any {
		return func(pos []string) any { return domain.ChangeType{TicketType: pos[0]} }
	})
}

func cmdAssign(ctx context.Context, e *env, args []string) error {
	return ticketCommand(ctx, e, "assign", "assign", args, 1, func(*flag.FlagSet) func([]string) any {
		return func(pos []string) any { return domain.AssignTicket{Assignee: pos[0]} }
	})
}

func cmdUnassign(ctx context.Context, e *env, args []string) error {
	return ticketCommand(ctx, e, "unassign", "unassign", args, 1, func(*flag.FlagSet) func([]string) any {
		return func(pos []string) any { return domain.UnassignTicket{Assignee: pos[0]} }
	})
}

func cmdResetSLA(ctx context.Context, e *env, args []string) error {
	return ticketCommand(ctx, e, "reset-sla", "reset-sla", args, 0, func(fs *flag.FlagSet) func([]string) any {
		reason := fs.String("reason", "", "why the agreement restarts (required)")
		return func([]string) any { return domain.ResetSLA{Reason: *reason} }
	})
}

func cmdShow(ctx context.Context, e *env, args []string) error {
	fs := e.flags("show")
	asOf := fs.String("as-of", "", "show the ticket as it stood at this RFC 3339 instant")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	q := url.Values{}
	if *asOf != "" {
		q.Set("as_of", *asOf)
	}
	resp, err := e.call(ctx, request{method: http.MethodGet, path: ticketPath(pos[0]), query: q})
	if err != nil {
		return err
	}
	return e.printTicket(resp.body)
}

// printTicket prints a ticket answer: as the API sent it, or as a table.
func (e *env) printTicket(body []byte) error {
	if !e.table() {
		return e.printJSON(body)
	}
	var v projections.TicketView
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("malformed ticket: %w", err)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(w, "%s\t%v\n", k, v) }
	row("ID", v.ID)
	row("NUMBER", v.Number)
	row("VERSION", v.Version)
	row("STATUS", v.Status)
	row("SUBJECT", v.Subject)
	row("RAISED BY", v.RaisedBy)
	row("PRIORITY", v.Priority)
	row("TYPE", dash(v.TicketType))
	row("CUSTOMER", dash(v.Customer))
	row("CHANNEL", v.Channel)
	row("ASSIGNEES", dash(strings.Join(v.Assignees, ", ")))
	if v.SLA != nil {
		row("SLA", fmt.Sprintf("%s v%d: %s", *v.SLA, deref(v.SLAVersion), deref(v.AgreementStatus)))
		row("RESPONSE BY", timeOrDash(v.ResponseBy))
		row("RESOLUTION BY", timeOrDash(v.ResolutionBy))
	} else {
		row("SLA", "-")
	}
	row("FIRST RESPONDED", timeOrDash(v.FirstRespondedOn))
	row("RESOLVED", timeOrDash(v.ResolutionDate))
	row("CREATED", v.CreatedAt.Format(time.RFC3339))
	row("UPDATED", v.UpdatedAt.Format(time.RFC3339))
	if v.SplitFrom != nil {
		row("SPLIT FROM", v.SplitFrom.Number)
	}
	for _, s := range v.SplitInto {
		row("SPLIT INTO", s.Number)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(v.Thread) > 0 {
		fmt.Fprintln(e.stdout, "\nTHREAD")
		for _, m := range v.Thread {
			who := m.From
			if m.Direction == domain.Outgoing {
				who = "agent " + m.Actor
			}
			fmt.Fprintf(e.stdout, "  %s  %s  %-8s  %s  %s\n", m.At.Format(time.RFC3339), m.MessageID, m.Direction, who, oneLine(m.Body, 60))
		}
	}
	if len(v.Comments) > 0 {
		fmt.Fprintln(e.stdout, "\nCOMMENTS")
		for _, c := range v.Comments {
			fmt.Fprintf(e.stdout, "  %s  %s  %s\n", c.At.Format(time.RFC3339), c.Author, oneLine(c.Body, 60))
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

func cmdList(ctx context.Context, e *env, args []string) error {
	fs := e.flags("list")
	params := []struct{ flag, param, usage string }{
		{"status", "status", "Open, Replied, On Hold, Resolved or Closed"},
		{"priority", "priority", "priority"},
		{"type", "ticket_type", "ticket type"},
		{"customer", "customer", "customer"},
		{"contact", "contact", "contact"},
		{"lead", "lead", "lead"},
		{"company", "company", "company"},
		{"project", "project", "project"},
		{"email-account", "email_account", "email account"},
		{"assignee", "assignee", "assigned user"},
		{"raised-by", "raised_by", "customer email (case-insensitive)"},
		{"channel", "channel", "email, portal, api or manual"},
		{"sla", "sla", "service level agreement name"},
		{"agreement-status", "agreement_status", "First Response Due, Resolution Due, Paused, Fulfilled or Failed"},
		{"breached", "breached", "true: Failed only; false: all but Failed"},
		{"due-before", "due_before", "response or resolution due before this RFC 3339 instant"},
		{"as-of", "as_of", "evaluate agreement statuses at this RFC 3339 instant"},
	}
	values := make([]*string, len(params))
	for i, p := range params {
		values[i] = fs.String(p.flag, "", p.usage)
	}
	limit := fs.Int("limit", 0, "tickets per page (server default 50, at most 1000)")
	offset := fs.Int("offset", 0, "tickets to skip")
	newest := fs.Bool("newest", false, "newest first")
	all := fs.Bool("all", false, "fetch every page")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	q := url.Values{}
	for i, p := range params {
		if *values[i] != "" {
			q.Set(p.param, *values[i])
		}
	}
	if *limit < 0 || *offset < 0 {
		return usagef("--limit and --offset must not be negative")
	}
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	if *offset > 0 {
		q.Set("offset", strconv.Itoa(*offset))
	}
	if *newest {
		q.Set("order", "newest")
	}
	if !*all {
		resp, err := e.call(ctx, request{method: http.MethodGet, path: "/v1/tickets", query: q})
		if err != nil {
			return err
		}
		if !e.table() {
			return e.printJSON(resp.body)
		}
		var page projections.Page
		if err := json.Unmarshal(resp.body, &page); err != nil {
			return fmt.Errorf("malformed list: %w", err)
		}
		return e.printTicketTable(page)
	}
	if *limit == 0 {
		q.Set("limit", "1000")
	}
	combined := projections.Page{Tickets: []projections.TicketView{}, Offset: *offset}
	// Evaluate every page at one instant, so that they agree.
	if q.Get("as_of") == "" {
		q.Set("as_of", time.Now().UTC().Format(time.RFC3339Nano))
	}
	for next := *offset; ; {
		q.Set("offset", strconv.Itoa(next))
		var page projections.Page
		if err := e.getJSON(ctx, request{method: http.MethodGet, path: "/v1/tickets", query: q}, &page); err != nil {
			return err
		}
		combined.Tickets = append(combined.Tickets, page.Tickets...)
		combined.Total, combined.Limit = page.Total, len(combined.Tickets)
		next += len(page.Tickets)
		if len(page.Tickets) == 0 || next >= page.Total {
			break
		}
	}
	if e.table() {
		return e.printTicketTable(combined)
	}
	return e.printValue(combined)
}

func (e *env) printTicketTable(page projections.Page) error {
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NUMBER\tSTATUS\tPRIORITY\tTYPE\tAGREEMENT\tASSIGNEES\tUPDATED\tSUBJECT")
	for _, t := range page.Tickets {
		agreement := "-"
		if t.AgreementStatus != nil {
			agreement = *t.AgreementStatus
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Number, t.Status, dash(t.Priority), dash(t.TicketType),
			agreement, dash(strings.Join(t.Assignees, ",")), t.UpdatedAt.Format(time.RFC3339), oneLine(t.Subject, 50))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(e.stdout, "%d of %d ticket(s) from offset %d\n", len(page.Tickets), page.Total, page.Offset)
	return err
}

func cmdEvents(ctx context.Context, e *env, args []string) error {
	fs := e.flags("events")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	resp, err := e.call(ctx, request{method: http.MethodGet, path: ticketPath(pos[0], "events")})
	if err != nil {
		return err
	}
	if !e.table() {
		return e.printJSON(resp.body)
	}
	var out struct {
		TicketID string         `json:"ticket_id"`
		Events   []domain.Event `json:"events"`
	}
	if err := json.Unmarshal(resp.body, &out); err != nil {
		return fmt.Errorf("malformed events: %w", err)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tOCCURRED AT\tTYPE\tACTOR\tDATA")
	for _, ev := range out.Events {
		var data bytes.Buffer
		if json.Compact(&data, ev.Data) != nil {
			data.Write(ev.Data)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", ev.Sequence, ev.OccurredAt.Format(time.RFC3339), ev.Type, ev.Actor, oneLine(data.String(), 70))
	}
	return w.Flush()
}

func cmdHealth(ctx context.Context, e *env, args []string) error {
	fs := e.flags("health")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	resp, err := e.call(ctx, request{method: http.MethodGet, path: "/healthz"})
	if err != nil {
		return err
	}
	return e.printJSON(resp.body)
}
