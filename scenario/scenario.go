// Package scenario runs acceptance scenario files (format: shared/acceptance/README.md)
// through the real command handlers, event store and projections, with the clock set
// to each step's instant, and reports every mismatch.
package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/projections"
)

// File is one scenario.
type File struct {
	Name     string                 `json:"name"`
	Source   string                 `json:"source"`
	Settings map[string]any         `json:"settings"`
	SLAs     []domain.SLADefinition `json:"slas"`
	Steps    []Step                 `json:"steps"`
}

// Step is one line of a scenario; the keys beyond the known ones are ticket fields.
type Step struct {
	At     time.Time
	Ticket string
	Action string
	Values map[string]any
	Do     *Step
	Fields map[string]string
}

func (s *Step) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	s.Fields = map[string]string{}
	for k, v := range raw {
		var err error
		switch k {
		case "at":
			err = json.Unmarshal(v, &s.At)
		case "ticket":
			err = json.Unmarshal(v, &s.Ticket)
		case "action":
			err = json.Unmarshal(v, &s.Action)
		case "values":
			err = json.Unmarshal(v, &s.Values)
		case "do":
			s.Do = &Step{}
			err = json.Unmarshal(v, s.Do)
		default:
			var str string
			err = json.Unmarshal(v, &str)
			s.Fields[k] = str
		}
		if err != nil {
			return fmt.Errorf("step key %q: %w", k, err)
		}
	}
	return nil
}

// Mismatch is one expectation that did not hold.
type Mismatch struct {
	Step     int    `json:"step"` // 1-based
	Ticket   string `json:"ticket"`
	Field    string `json:"field"`
	Expected any    `json:"expected"`
	Actual   any    `json:"actual"`
}

func (m Mismatch) String() string {
	return fmt.Sprintf("step %d, ticket %s, %s: expected %v, got %v", m.Step, m.Ticket, m.Field, show(m.Expected), show(m.Actual))
}

func show(v any) string {
	if v == nil {
		return "null"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// Load reads a scenario file.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// clock is the controlled clock the handler reads.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }
func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// Run plays a scenario against store (which must be empty) and returns the mismatches;
// an error means the scenario could not be played at all.
func Run(ctx context.Context, f *File, store eventstore.Store) ([]Mismatch, error) {
	clk := &clock{now: firstInstant(f)}
	h, err := commands.NewHandler(ctx, store, commands.Options{Clock: clk.Now})
	if err != nil {
		return nil, err
	}
	if err := setUp(ctx, h, f); err != nil {
		return nil, fmt.Errorf("set up %s: %w", f.Name, err)
	}
	model := projections.NewTickets()
	runner := projections.NewRunner(store, nil, model)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- runner.Run(runCtx) }()

	ids := map[string]string{}
	var mismatches []Mismatch
	for i, step := range f.Steps {
		clk.set(step.At)
		n := i + 1
		switch step.Action {
		case "expect":
			id, ok := ids[step.Ticket]
			if !ok {
				return nil, fmt.Errorf("step %d: unknown ticket %q", n, step.Ticket)
			}
			view, ok := model.Get(id, step.At)
			if !ok {
				return nil, fmt.Errorf("step %d: ticket %q is not in the projection", n, step.Ticket)
			}
			mismatches = append(mismatches, compare(n, step.Ticket, view, step.Values)...)
		case "expect_error":
			if step.Do == nil {
				return nil, fmt.Errorf("step %d: expect_error without do", n)
			}
			before, err := store.LastPosition(ctx)
			if err != nil {
				return nil, err
			}
			do := *step.Do
			do.At, do.Ticket = step.At, step.Ticket
			_, cmdErr := execute(ctx, h, ids, do)
			after, err := store.LastPosition(ctx)
			if err != nil {
				return nil, err
			}
			if cmdErr == nil {
				mismatches = append(mismatches, Mismatch{Step: n, Ticket: step.Ticket, Field: "error", Expected: do.Action + " refused", Actual: "accepted"})
			} else if !isTyped(cmdErr) {
				mismatches = append(mismatches, Mismatch{Step: n, Ticket: step.Ticket, Field: "error", Expected: "a typed domain error", Actual: cmdErr.Error()})
			}
			if after != before {
				mismatches = append(mismatches, Mismatch{Step: n, Ticket: step.Ticket, Field: "events stored", Expected: 0, Actual: after - before})
			}
		default:
			res, err := execute(ctx, h, ids, step)
			if err != nil {
				return nil, fmt.Errorf("step %d (%s %s): %w", n, step.Action, step.Ticket, err)
			}
			waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = runner.WaitFor(waitCtx, res.Position)
			cancel()
			if err != nil {
				select {
				case e := <-runErr:
					return nil, fmt.Errorf("projection stopped: %w", e)
				default:
				}
				return nil, fmt.Errorf("step %d: projection did not reach position %d: %w", n, res.Position, err)
			}
		}
	}
	return mismatches, nil
}

func isTyped(err error) bool {
	for _, target := range []error{domain.ErrValidation, domain.ErrInvalidTransition, domain.ErrNotFound, domain.ErrConflict, domain.ErrForbidden} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func firstInstant(f *File) time.Time {
	if len(f.Steps) > 0 {
		return f.Steps[0].At
	}
	return time.Now()
}

// setUp records the scenario's reference data: settings, SLAs, and the ticket types and
// priorities its SLAs and steps name.
func setUp(ctx context.Context, h *commands.Handler, f *File) error {
	meta := commands.Meta{Actor: "scenario"}
	settings := domain.DefaultSupportSettings
	if v, ok := f.Settings["allow_sla_reset"].(bool); ok {
		settings.AllowSLAReset = v
	}
	if v, ok := f.Settings["auto_close_days"].(float64); ok {
		settings.AutoCloseDays = int(v)
	}
	if _, err := h.ChangeSettings(ctx, settings, meta); err != nil {
		return err
	}
	if err := h.SeedDefaults(ctx); err != nil {
		return err
	}
	priorities, types := map[string]bool{}, map[string]bool{}
	for _, s := range f.SLAs {
		for _, p := range s.Priorities {
			priorities[p.Name] = true
		}
	}
	for _, s := range f.Steps {
		for _, st := range []*Step{&s, s.Do} {
			if st == nil {
				continue
			}
			if p := st.Fields["priority"]; p != "" {
				priorities[p] = true
			}
			if t := st.Fields["ticket_type"]; t != "" {
				types[t] = true
			}
		}
	}
	ref := h.Catalogues().Reference()
	for _, p := range sortedKeys(priorities) {
		if !ref.PriorityExists(p) {
			if _, err := h.ChangeCatalogue(ctx, true, domain.CatalogueCommand{Op: "create", Name: p}, nil, meta); err != nil {
				return err
			}
		}
	}
	for _, t := range sortedKeys(types) {
		if _, err := h.ChangeCatalogue(ctx, false, domain.CatalogueCommand{Op: "create", Name: t}, nil, meta); err != nil {
			return err
		}
	}
	for _, s := range f.SLAs {
		if _, err := h.SaveSLA(ctx, s, meta); err != nil {
			return fmt.Errorf("sla %s: %w", s.Name, err)
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// execute sends the command a step describes.
func execute(ctx context.Context, h *commands.Handler, ids map[string]string, s Step) (commands.Result, error) {
	meta := commands.Meta{Actor: "scenario"}
	if s.Action == "create" {
		fields := domain.TicketFieldsData{
			Subject: s.Fields["subject"], Description: s.Fields["description"], RaisedBy: s.Fields["raised_by"],
			Priority: s.Fields["priority"], TicketType: s.Fields["ticket_type"], Customer: s.Fields["customer"],
			CustomerGroup: s.Fields["customer_group"], Territory: s.Fields["territory"], Contact: s.Fields["contact"],
			Lead: s.Fields["lead"], Company: s.Fields["company"], Project: s.Fields["project"],
			EmailAccount: s.Fields["email_account"], Channel: domain.Channel(s.Fields["channel"]),
		}
		if fields.Channel == "" {
			fields.Channel = domain.ChannelAPI
		}
		if fields.Description == "" {
			fields.Description = fields.Subject
		}
		res, err := h.CreateTicket(ctx, domain.CreateTicket{TicketFieldsData: fields}, meta)
		if err == nil {
			ids[s.Ticket] = res.TicketID
		}
		return res, err
	}
	id, ok := ids[s.Ticket]
	if !ok {
		return commands.Result{}, fmt.Errorf("unknown ticket %q", s.Ticket)
	}
	var cmd domain.TicketCommand
	switch s.Action {
	case "reply":
		cmd = domain.SendReply{Body: or(s.Fields["body"], "reply")}
	case "customer_message":
		cmd = domain.ReceiveCustomerMessage{Channel: domain.ChannelEmail, Body: or(s.Fields["body"], "message")}
	case "hold":
		cmd = domain.HoldTicket{Reason: s.Fields["reason"]}
	case "resolve":
		cmd = domain.ResolveTicket{ResolutionDetails: s.Fields["resolution_details"]}
	case "close":
		cmd = domain.CloseTicket{Reason: s.Fields["reason"]}
	case "reopen":
		cmd = domain.ReopenTicket{Reason: s.Fields["reason"]}
	case "set_priority":
		cmd = domain.ChangePriority{Priority: s.Fields["priority"]}
	case "set_type":
		cmd = domain.ChangeType{TicketType: s.Fields["ticket_type"]}
	case "reset_sla":
		cmd = domain.ResetSLA{Reason: s.Fields["reason"]}
	case "comment":
		cmd = domain.AddComment{Body: or(s.Fields["body"], "note")}
	case "assign":
		cmd = domain.AssignTicket{Assignee: s.Fields["assignee"]}
	default:
		return commands.Result{}, fmt.Errorf("unknown action %q", s.Action)
	}
	return h.Execute(ctx, id, cmd, meta)
}

func or(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// compare checks expected values against the view's JSON form.
func compare(step int, ticket string, view projections.TicketView, want map[string]any) []Mismatch {
	b, _ := json.Marshal(view)
	var have map[string]any
	_ = json.Unmarshal(b, &have)
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Mismatch
	for _, k := range keys {
		w := want[k]
		h, known := have[k]
		if !known {
			out = append(out, Mismatch{Step: step, Ticket: ticket, Field: k, Expected: w, Actual: "(no such field)"})
			continue
		}
		if !equal(w, h) {
			out = append(out, Mismatch{Step: step, Ticket: ticket, Field: k, Expected: w, Actual: h})
		}
	}
	return out
}

func equal(want, have any) bool {
	switch w := want.(type) {
	case nil:
		return have == nil
	case float64:
		h, ok := have.(float64)
		return ok && math.Abs(w-h) < 1e-6
	case string:
		h, ok := have.(string)
		if !ok {
			return false
		}
		if wt, err := time.Parse(time.RFC3339, w); err == nil && strings.Contains(w, "T") {
			ht, err := time.Parse(time.RFC3339Nano, h)
			return err == nil && wt.Truncate(time.Second).Equal(ht.Truncate(time.Second))
		}
		return w == h
	case bool:
		h, ok := have.(bool)
		return ok && w == h
	}
	return fmt.Sprint(want) == fmt.Sprint(have)
}
