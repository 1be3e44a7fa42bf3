package projections

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/ticketcore/ticketcore/domain"
)

// History is a ticket's timeline for people, auditors first: every event of its
// stream in order, said in a sentence, with who and when, the status before and
// after, and what it did to the SLA metrics.
//
// It is computed by folding the stream one event at a time with TicketState, the fold
// every read model uses, and comparing the ticket's view just before and just after
// each event, both evaluated at the event's instant. The metric effects are therefore
// the read model's own, not a second implementation of the rules.
type History struct {
	TicketID string `json:"ticket_id"`
	Number   string `json:"number"`
	// ChainIntact is true when the events form an unbroken hash chain from the
	// start of the stream (domain.VerifyChain); ChainBreak says where it breaks.
	ChainIntact bool           `json:"chain_intact"`
	ChainBreak  *ChainBreak    `json:"chain_break,omitempty"`
	Entries     []HistoryEntry `json:"entries"`
}

// ChainBreak is the first event that does not continue its stream's hash chain.
type ChainBreak struct {
	Sequence uint64 `json:"sequence"` // as the event says
	EventID  string `json:"event_id"`
	Reason   string `json:"reason"`
}

// HistoryEntry is one event of the timeline.
type HistoryEntry struct {
	Sequence      uint64    `json:"sequence"`
	EventID       string    `json:"event_id"`
	Type          string    `json:"type"`
	SchemaVersion int       `json:"schema_version"`
	Hash          string    `json:"hash"`
	OccurredAt    time.Time `json:"occurred_at"`
	Actor         string    `json:"actor"`
	// Summary says what happened, in a sentence.
	Summary      string        `json:"summary"`
	StatusBefore domain.Status `json:"status_before"` // "" before the ticket existed
	StatusAfter  domain.Status `json:"status_after"`
	// The agreement status just before and just after the event, both evaluated at
	// the event's instant (null when no SLA applies).
	AgreementBefore *string `json:"agreement_before"`
	AgreementAfter  *string `json:"agreement_after"`
	// Effects are the metric effects, in sentences: first response recorded, hold
	// started or ended and for how long, resolution recorded, deadlines moved...
	Effects []string `json:"effects"`
	// Changes lists every field of the ticket view (GET /v1/tickets/{id}) the event
	// changed, with its value before and after, as the API writes them.
	Changes []FieldChange `json:"changes"`
}

// FieldChange is one field of the ticket view changed by an event.
type FieldChange struct {
	Field  string `json:"field"`
	Before any    `json:"before"`
	After  any    `json:"after"`
}

// TicketHistory builds the timeline of a ticket from its stream's events, in stream
// order. lookup resolves the SLA versions the events name (nil: deadlines and
// agreement statuses stay unknown). It reports false when there are no events.
func TicketHistory(events []domain.Event, lookup domain.SLALookup) (History, bool) {
	h := History{Entries: make([]HistoryEntry, 0, len(events)), ChainIntact: true}
	if len(events) == 0 {
		return h, false
	}
	if i, reason := domain.VerifyChain(events); i >= 0 {
		h.ChainIntact = false
		h.ChainBreak = &ChainBreak{Sequence: events[i].Sequence, EventID: events[i].ID, Reason: reason}
	}
	t := &TicketState{}
	for _, e := range events {
		at := e.OccurredAt.UTC()
		before := t.View(at, false)
		t.Apply(e, lookup)
		after := t.View(at, false)
		h.Entries = append(h.Entries, HistoryEntry{
			Sequence: e.Sequence, EventID: e.ID, Type: e.Type, SchemaVersion: e.SchemaVersion, Hash: e.Hash,
			OccurredAt: at, Actor: e.Actor,
			Summary:      summary(e, t, after),
			StatusBefore: before.Status, StatusAfter: after.Status,
			AgreementBefore: before.AgreementStatus, AgreementAfter: after.AgreementStatus,
			Effects: effects(at, t, before, after),
			Changes: changes(before, after),
		})
	}
	h.TicketID, h.Number = t.ID, t.Number
	return h, true
}

// summary says what the event did, in a sentence.
func summary(e domain.Event, t *TicketState, after TicketView) string {
	switch p := e.Payload.(type) {
	case domain.TicketCreated:
		var s string
		if p.SplitFrom != nil {
			s = fmt.Sprintf("Ticket %s split off %s with %d message(s): %q", p.Number, p.SplitFrom.Number, len(p.Messages), p.Subject)
		} else {
			s = fmt.Sprintf("Ticket %s opened by %s via %s: %q", p.Number, p.RaisedBy, p.Channel, p.Subject)
		}
		var attrs []string
		if p.Priority != "" {
			attrs = append(attrs, "priority "+p.Priority)
		}
		if p.TicketType != "" {
			attrs = append(attrs, "type "+p.TicketType)
		}
		if p.Customer != "" {
			attrs = append(attrs, "customer "+p.Customer)
		}
		if len(attrs) > 0 {
			s += " (" + strings.Join(attrs, ", ") + ")"
		}
		return s + "; " + slaClause(p.SLA, t, after)
	case domain.CustomerMessageReceived:
		s := fmt.Sprintf("Customer message received by %s from %s", p.Channel, p.From)
		if p.Reopened {
			s += " (reopened the ticket)"
		}
		return s
	case domain.ReplySent:
		s := fmt.Sprintf("Agent %s replied to %s", e.Actor, orNone(strings.Join(p.To, ", ")))
		if len(p.CC) > 0 {
			s += " (cc " + strings.Join(p.CC, ", ") + ")"
		}
		return s
	case domain.CommentAdded:
		return fmt.Sprintf("%s added an internal comment", e.Actor)
	case domain.PutOnHold:
		return withReason("Put on hold", p.Reason)
	case domain.TicketResolved:
		return withReason("Resolved", p.ResolutionDetails)
	case domain.TicketClosed:
		if p.Automatic() {
			return withReason("Closed automatically", p.Reason)
		}
		return withReason("Closed by "+e.Actor, p.Reason)
	case domain.TicketReopened:
		return withReason("Reopened", p.Reason)
	case domain.TicketSplit:
		return fmt.Sprintf("%d message(s) from message %s split off into the new ticket %s: %q",
			len(p.MovedMessages), p.FromMessage, p.NewNumber, p.Subject)
	case domain.PriorityChanged:
		return fmt.Sprintf("Priority changed from %s to %s; %s", orNone(p.From), orNone(p.To), slaClause(p.SLA, t, after))
	case domain.TypeChanged:
		return fmt.Sprintf("Type changed from %s to %s; %s", orNone(p.From), orNone(p.To), slaClause(p.SLA, t, after))
	case domain.TicketAssigned:
		return "Assigned to " + p.Assignee
	case domain.TicketUnassigned:
		return "Unassigned from " + p.Assignee
	case domain.SLAReset:
		sel := domain.SLASelection{SLA: p.SLA, SLAVersion: p.SLAVersion, Priority: p.Priority}
		return withReason("SLA cycle restarted", p.Reason) + "; " + slaClause(sel, t, after)
	case domain.SLADeadlineMissed:
		return fmt.Sprintf("%s deadline %s missed (SLA %s v%d)", capitalize(p.Kind), stamp(p.Deadline), p.SLA, p.SLAVersion)
	case domain.SLADeadlineApproaching:
		return fmt.Sprintf("%s deadline %s approaching (SLA %s v%d, warned %s before)", capitalize(p.Kind), stamp(p.Deadline),
			p.SLA, p.SLAVersion, duration(time.Duration(p.WarnSeconds)*time.Second))
	}
	return e.Type
}

// slaClause describes the SLA the ticket is measured against after a selection.
func slaClause(sel domain.SLASelection, t *TicketState, v TicketView) string {
	if v.SLA == nil {
		if sel.SLA != "" {
			return fmt.Sprintf("SLA %s v%d (its definition is not known here)", sel.SLA, sel.SLAVersion)
		}
		return "no SLA applies"
	}
	s := fmt.Sprintf("SLA %s v%d", *v.SLA, deref(v.SLAVersion))
	if p := t.Metrics.Priority; p != "" {
		s += " (" + p + " targets)"
	}
	s += ", response due " + stampPtr(v.ResponseBy)
	switch {
	case v.ResolutionBy != nil:
		s += ", resolution due " + stamp(*v.ResolutionBy)
	case v.OnHoldSince != nil:
		s += ", resolution deadline paused"
	}
	return s
}

// effects describes what the event did to the metrics, from the views around it.
func effects(at time.Time, t *TicketState, b, a TicketView) []string {
	out := []string{}
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	if !samePtr(b.SLA, a.SLA) || !samePtr(b.SLAVersion, a.SLAVersion) {
		switch {
		case a.SLA == nil:
			add("No SLA applies any more (was %s v%d)", deref(b.SLA), deref(b.SLAVersion))
		case b.SLA == nil:
			add("Measured against SLA %s v%d (%s targets)", *a.SLA, deref(a.SLAVersion), t.Metrics.Priority)
		default:
			add("SLA changed from %s v%d to %s v%d", *b.SLA, deref(b.SLAVersion), *a.SLA, deref(a.SLAVersion))
		}
	}
	if b.SLAStartedAt != nil && !samePtr(b.SLAStartedAt, a.SLAStartedAt) {
		add("SLA clock restarted at %s", stampPtr(a.SLAStartedAt))
	}
	switch {
	case b.FirstRespondedOn == nil && a.FirstRespondedOn != nil:
		add("First response recorded: %s", clocks(a.FirstResponseTimeCalendar, a.FirstResponseTimeBusiness))
	case b.FirstRespondedOn != nil && a.FirstRespondedOn == nil:
		add("First response cleared (new SLA cycle)")
	}
	if a.AvgResponseTimeCalendar != nil && !samePtr(b.AvgResponseTimeCalendar, a.AvgResponseTimeCalendar) {
		add("Response to the customer measured; average response time now %s",
			clocks(a.AvgResponseTimeCalendar, a.AvgResponseTimeBusiness))
	}
	holdCal := seconds(a.TotalHoldTimeCalendar) - seconds(b.TotalHoldTimeCalendar)
	holdBus := seconds(a.TotalHoldTimeBusiness) - seconds(b.TotalHoldTimeBusiness)
	total := clocks(a.TotalHoldTimeCalendar, a.TotalHoldTimeBusiness)
	switch {
	case b.OnHoldSince == nil && a.OnHoldSince != nil:
		add("Hold started: the SLA clock is paused")
	case b.OnHoldSince != nil && a.OnHoldSince == nil && holdCal > 0:
		add("Hold ended after %s; total hold %s", clockDelta(holdCal, holdBus, a.TotalHoldTimeBusiness != nil), total)
	case b.OnHoldSince != nil && a.OnHoldSince == nil:
		add("Hold ended (since %s)", stampPtr(b.OnHoldSince))
	case holdCal > 0:
		add("%s while resolved or closed added to the hold time; total hold %s",
			clockDelta(holdCal, holdBus, a.TotalHoldTimeBusiness != nil), total)
	case holdCal < 0:
		add("Hold time cleared (new SLA cycle)")
	}
	switch {
	case b.ResolutionDate == nil && a.ResolutionDate != nil:
		add("Resolution recorded: resolution time %s, user resolution time %s",
			clocks(a.ResolutionTimeCalendar, a.ResolutionTimeBusiness), clocks(a.UserResolutionTimeCalendar, a.UserResolutionTimeBusiness))
	case b.ResolutionDate != nil && a.ResolutionDate == nil:
		add("Resolution cleared")
	}
	if a.Reopens > b.Reopens {
		add("Reopen counted (%d in all)", a.Reopens)
	}
	if b.Version > 0 { // at creation the summary gives the deadlines
		if !samePtr(b.ResponseBy, a.ResponseBy) {
			add("response_by moved from %s to %s", stampPtr(b.ResponseBy), stampPtr(a.ResponseBy))
		}
		if !samePtr(b.ResolutionBy, a.ResolutionBy) {
			after := stampPtr(a.ResolutionBy)
			if a.ResolutionBy == nil && a.OnHoldSince != nil {
				after = "none (paused)"
			}
			add("resolution_by moved from %s to %s", stampPtr(b.ResolutionBy), after)
		}
	}
	if !samePtr(b.AgreementStatus, a.AgreementStatus) {
		add("Agreement status changed from %s to %s (evaluated at %s)", orNone(deref(b.AgreementStatus)), orNone(deref(a.AgreementStatus)), stamp(at))
	}
	return out
}

// skippedFields are view fields every event changes, or that only describe the view.
var skippedFields = map[string]bool{"version": true, "updated_at": true, "evaluated_at": true,
	"description": true, "thread": true, "comments": true}

// changes lists the view fields that differ, in the view's field order.
func changes(b, a TicketView) []FieldChange {
	out := []FieldChange{}
	bm, am := asMap(b), asMap(a)
	for _, name := range viewFieldOrder {
		if skippedFields[name] {
			continue
		}
		bv, av := bm[name], am[name]
		if !reflect.DeepEqual(bv, av) {
			out = append(out, FieldChange{Field: name, Before: bv, After: av})
		}
	}
	return out
}

// viewFieldOrder is the order of TicketView's JSON fields, embedded ones flattened.
var viewFieldOrder = jsonFieldNames(reflect.TypeFor[TicketView]())

func jsonFieldNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			names = append(names, jsonFieldNames(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

func asMap(v TicketView) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal a ticket view: %v", err)) // plain data: cannot fail
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for k, v := range m {
		if v == zeroTime { // not set yet: before the ticket existed
			m[k] = nil
		}
	}
	return m
}

// zeroTime is the zero time.Time as JSON.
var zeroTime = time.Time{}.Format(time.RFC3339Nano)

func withReason(s, reason string) string {
	if reason = strings.TrimSpace(reason); reason != "" {
		return s + ": " + reason
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func stampPtr(t *time.Time) string {
	if t == nil {
		return "none"
	}
	return stamp(*t)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func samePtr[T comparable](a, b *T) bool {
	switch {
	case a == nil || b == nil:
		return a == b
	}
	if ta, ok := any(*a).(time.Time); ok {
		return ta.Equal(any(*b).(time.Time))
	}
	return *a == *b
}

func seconds(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

// clocks writes a two-clock duration: "1h 30m (45m business)", or the calendar time
// alone when no SLA applies.
func clocks(cal, bus *float64) string {
	if cal == nil {
		return "none"
	}
	s := duration(secondsDuration(*cal))
	if bus != nil {
		s += " (" + duration(secondsDuration(*bus)) + " business)"
	}
	return s
}

func clockDelta(cal, bus float64, withBusiness bool) string {
	s := duration(secondsDuration(cal))
	if withBusiness {
		s += " (" + duration(secondsDuration(bus)) + " business)"
	}
	return s
}

func secondsDuration(s float64) time.Duration {
	return time.Duration(math.Round(s * float64(time.Second)))
}

// duration writes d to the second, in days, hours, minutes and seconds: "2d 3h 5m".
func duration(d time.Duration) string {
	if d < 0 {
		return "-" + duration(-d)
	}
	d = d.Round(time.Second)
	if d == 0 {
		return "0s"
	}
	var parts []string
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			parts = append(parts, fmt.Sprintf("%d%s", n, u.name))
			d -= n * u.unit
		}
	}
	return strings.Join(parts, " ")
}
