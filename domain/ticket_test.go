package domain_test

// Decider tests of the ticket aggregate, in the given / when / then form: given the
// events of a ticket's stream (folded with EvolveTicket), when a command is decided
// (DecideTicket, with a fake Reference and a fixed instant), then exactly these events
// are decided, or this error and no event. Nothing here does I/O.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/domain"
)

// ---------------------------------------------------------------------------------
// Fixtures shared by the tests of this package.

const (
	ticketID = "3f1c7e0a-5b7d-4c1e-9a0b-2d4e6f8a0b1c"
	number   = "TKT-2026-000001"
	raisedBy = "ann@example.com"
	subject  = "Printer on fire"
)

// t0 is a Monday, 09:00 UTC: the instant the fixture ticket is created.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// fakeRef is an in-memory domain.Reference.
type fakeRef struct {
	priorities []string
	types      []string
	settings   domain.SupportSettings
	slas       []domain.VersionedSLA
}

func (r fakeRef) PriorityExists(name string) bool   { return slices.Contains(r.priorities, name) }
func (r fakeRef) TicketTypeExists(name string) bool { return slices.Contains(r.types, name) }
func (r fakeRef) Settings() domain.SupportSettings  { return r.settings }
func (r fakeRef) SLAs() []domain.VersionedSLA       { return r.slas }

// newRef is the reference data of most tests: the default priorities, two ticket
// types, the default settings and no SLA.
func newRef() fakeRef {
	return fakeRef{
		priorities: []string{"Low", "Medium", "High"},
		types:      []string{"Bug", "Question"},
		settings:   domain.DefaultSupportSettings,
	}
}

func (r fakeRef) withSettings(s domain.SupportSettings) fakeRef { r.settings = s; return r }

func (r fakeRef) withSLAs(slas ...domain.VersionedSLA) fakeRef { r.slas = slas; return r }

// workWeek is Monday to Friday 09:00-17:00 UTC.
func workWeek() domain.CalendarSpec {
	hours := map[string][][2]string{}
	for _, d := range []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"} {
		hours[d] = [][2]string{{"09:00", "17:00"}}
	}
	return domain.CalendarSpec{Timezone: "UTC", Hours: hours}
}

func hours(n int) domain.Duration { return domain.Duration(time.Duration(n) * time.Hour) }

// standardSLA is a default SLA with two priorities, Low (the default) and High;
// Medium is deliberately not defined by it.
func standardSLA() domain.SLADefinition {
	return domain.SLADefinition{
		Name:     "Standard",
		Default:  true,
		Calendar: workWeek(),
		Priorities: []domain.SLAPriority{
			{Name: "Low", Response: hours(8), Resolution: hours(40), Default: true},
			{Name: "High", Response: hours(1), Resolution: hours(8)},
		},
	}
}

// criticalSLA applies to High priority tickets only.
func criticalSLA() domain.SLADefinition {
	return domain.SLADefinition{
		Name:       "Critical",
		Condition:  `priority == "High"`,
		Calendar:   workWeek(),
		Priorities: []domain.SLAPriority{{Name: "High", Response: domain.Duration(15 * time.Minute), Resolution: hours(4), Default: true}},
	}
}

func mustSLA(t testing.TB, def domain.SLADefinition, version int) domain.VersionedSLA {
	t.Helper()
	s, err := domain.CompileSLA(def)
	if err != nil {
		t.Fatalf("CompileSLA(%s): %v", def.Name, err)
	}
	return domain.VersionedSLA{SLA: s, Version: version}
}

// timed is a payload with the instant it occurred at; history unwraps it.
type timed struct {
	at time.Time
	domain.Payload
}

// at makes p occur at instant when instead of the default instant of its position.
func at(when time.Time, p domain.Payload) domain.Payload { return timed{when, p} }

// history builds the stored events of the fixture ticket's stream: the i-th payload
// (0-based) occurs at t0 + i minutes unless wrapped by at, and carries command ID
// "cmd-<i+1>". The envelopes are real ones (NewEvents), hash chain included.
func history(payloads ...domain.Payload) []domain.Event {
	events := make([]domain.Event, 0, len(payloads))
	prev := ""
	for i, p := range payloads {
		when := t0.Add(time.Duration(i) * time.Minute)
		if tp, ok := p.(timed); ok {
			when, p = tp.at, tp.Payload
		}
		meta := domain.Metadata{CommandID: fmt.Sprintf("cmd-%d", i+1), Actor: "agent@example.com", At: when}
		evs, err := domain.NewEvents(domain.TicketStream(ticketID), uint64(i), prev, meta,
			func(int) string { return fmt.Sprintf("event-%d", i+1) }, []domain.Payload{p})
		if err != nil {
			panic(err)
		}
		events = append(events, evs...)
		prev = evs[0].Hash
	}
	return events
}

// given folds the events of history into the decision state.
func given(payloads ...domain.Payload) *domain.Ticket {
	t := &domain.Ticket{}
	for _, e := range history(payloads...) {
		domain.EvolveTicket(t, e)
	}
	return t
}

// evolve applies decided payloads to a copy of t as if stored at instant now.
func evolve(t *domain.Ticket, now time.Time, payloads []domain.Payload) *domain.Ticket {
	next := *t
	next.Messages = slices.Clone(t.Messages)
	next.Assignees = slices.Clone(t.Assignees)
	events, err := domain.NewEvents(domain.TicketStream(ticketID), t.Version, t.LastHash,
		domain.Metadata{CommandID: "decided", At: now}, func(i int) string { return fmt.Sprint("decided-", i) }, payloads)
	if err != nil {
		panic(err)
	}
	for _, e := range events {
		domain.EvolveTicket(&next, e)
	}
	return &next
}

func fields() domain.TicketFieldsData {
	return domain.TicketFieldsData{Subject: subject, Description: "It smokes.", RaisedBy: raisedBy, Priority: "Low", Channel: domain.ChannelEmail}
}

func created() domain.TicketCreated {
	return domain.TicketCreated{TicketID: ticketID, Number: number, TicketFieldsData: fields(), OpeningMessageID: "m-open"}
}

// createdUnder is a creation that selected an SLA.
func createdUnder(sla string, version int, priority string) domain.TicketCreated {
	c := created()
	c.SLA = domain.SLASelection{SLA: sla, SLAVersion: version, Priority: priority}
	return c
}

func reply(id string) domain.ReplySent {
	return domain.ReplySent{MessageID: id, To: []string{raisedBy}, Body: "We are on it."}
}

func customerMessage(id string) domain.CustomerMessageReceived {
	return domain.CustomerMessageReceived{MessageID: id, Channel: domain.ChannelEmail, From: raisedBy, Body: "Any news?"}
}

// decide runs the decider at instant now with reference ref.
func decide(t *domain.Ticket, cmd domain.TicketCommand, now time.Time, ref domain.Reference) ([]domain.Payload, error) {
	return domain.DecideTicket(t, cmd, domain.Decision{Now: now, Ref: ref})
}

func assertEvents(t *testing.T, got, want []domain.Payload) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n got  %s\n want %s", describe(got), describe(want))
	}
}

func describe(ps []domain.Payload) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = fmt.Sprintf("%T%+v", p, p)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// assertRefused checks that err wraps target and that no event was decided.
func assertRefused(t *testing.T, events []domain.Payload, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want an error wrapping %q", err, target)
	}
	if events != nil {
		t.Fatalf("a refused command decided events: %s", describe(events))
	}
}

// assertInvalid checks for a *ValidationError naming field, and no event.
func assertInvalid(t *testing.T, events []domain.Payload, err error, field string) {
	t.Helper()
	assertRefused(t, events, err, domain.ErrValidation)
	var verr *domain.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %T %v, want *domain.ValidationError", err, err)
	}
	for _, f := range verr.Fields {
		if f.Field == field {
			if f.Message == "" {
				t.Fatalf("field %s has no message", field)
			}
			return
		}
	}
	t.Fatalf("validation error %v does not name field %q", verr, field)
}

// ---------------------------------------------------------------------------------
// The status table.

// statusHistories gives, for every status, several histories that end in it: a
// decision must depend on the status, not on how the ticket got there.
var statusHistories = map[domain.Status]map[string][]domain.Payload{
	domain.StatusOpen: {
		"created":                    {created()},
		"reopened after close":       {created(), domain.TicketClosed{}, domain.TicketReopened{}},
		"customer wrote after reply": {created(), reply("m-r1"), customerMessage("m-c1")},
	},
	domain.StatusReplied: {
		"replied":              {created(), reply("m-r1")},
		"replied after reopen": {created(), domain.TicketResolved{}, domain.TicketReopened{}, reply("m-r1")},
		"replied after a hold": {created(), domain.PutOnHold{}, customerMessage("m-c1"), reply("m-r1")},
	},
	domain.StatusOnHold: {
		"held when open":    {created(), domain.PutOnHold{}},
		"held when replied": {created(), reply("m-r1"), domain.PutOnHold{Reason: "waiting for parts"}},
	},
	domain.StatusResolved: {
		"resolved when open":    {created(), domain.TicketResolved{}},
		"resolved after a hold": {created(), reply("m-r1"), domain.PutOnHold{}, domain.TicketResolved{ResolutionDetails: "fixed"}},
	},
	domain.StatusClosed: {
		"closed by hand":       {created(), domain.TicketClosed{}},
		"closed automatically": {created(), reply("m-r1"), at(t0.AddDate(0, 0, 8), domain.TicketClosed{ClosedBy: domain.ClosedByAutoClose})},
		"closed when resolved": {created(), domain.TicketResolved{}, domain.TicketClosed{}},
	},
}

// statusCommands are the commands of the status table, by name.
var statusCommands = []struct {
	name string
	cmd  domain.TicketCommand
}{
	{"reply", domain.SendReply{MessageID: "m-new", Body: "Here is the fix."}},
	{"customer message", domain.ReceiveCustomerMessage{MessageID: "m-new", Channel: domain.ChannelEmail, Body: "Thanks!"}},
	{"hold", domain.HoldTicket{Reason: "waiting for the customer"}},
	{"resolve", domain.ResolveTicket{ResolutionDetails: "replaced the fuser"}},
	{"close", domain.CloseTicket{Reason: "done"}},
	{"auto close", domain.CloseTicket{Automatic: true}},
	{"reopen", domain.ReopenTicket{Reason: "still smoking"}},
}

// transition is the expected outcome of a valid (status, command) combination.
type transition struct {
	then []domain.Payload
	to   domain.Status
}

var (
	replyEvent     = domain.ReplySent{MessageID: "m-new", To: []string{raisedBy}, Body: "Here is the fix."}
	messageEvent   = domain.CustomerMessageReceived{MessageID: "m-new", Channel: domain.ChannelEmail, From: raisedBy, Body: "Thanks!"}
	reopeningEvent = domain.CustomerMessageReceived{MessageID: "m-new", Channel: domain.ChannelEmail, From: raisedBy, Body: "Thanks!", Reopened: true}
	holdEvent      = domain.PutOnHold{Reason: "waiting for the customer"}
	resolveEvent   = domain.TicketResolved{ResolutionDetails: "replaced the fuser"}
	closeEvent     = domain.TicketClosed{ClosedBy: domain.ClosedByAgent, Reason: "done"}
	autoCloseEvent = domain.TicketClosed{ClosedBy: domain.ClosedByAutoClose, Reason: "no customer message 7 days after the last reply"}
	reopenEvent    = domain.TicketReopened{Reason: "still smoking"}
)

// statusTable is the table of spec/metrics.md, one entry per (command, from status)
// it allows. Every combination absent from it must be an invalid transition.
var statusTable = map[string]map[domain.Status]transition{
	// agent reply sent: Open -> Replied; from any other status the status does not
	// change; a reply on a Closed ticket is refused.
	"reply": {
		domain.StatusOpen:     {[]domain.Payload{replyEvent}, domain.StatusReplied},
		domain.StatusReplied:  {[]domain.Payload{replyEvent}, domain.StatusReplied},
		domain.StatusOnHold:   {[]domain.Payload{replyEvent}, domain.StatusOnHold},
		domain.StatusResolved: {[]domain.Payload{replyEvent}, domain.StatusResolved},
	},
	// message received from the customer: Replied, On Hold, Resolved, Closed -> Open
	// (a reopen from Resolved or Closed); on an Open ticket it stays Open.
	"customer message": {
		domain.StatusOpen:     {[]domain.Payload{messageEvent}, domain.StatusOpen},
		domain.StatusReplied:  {[]domain.Payload{messageEvent}, domain.StatusOpen},
		domain.StatusOnHold:   {[]domain.Payload{messageEvent}, domain.StatusOpen},
		domain.StatusResolved: {[]domain.Payload{reopeningEvent}, domain.StatusOpen},
		domain.StatusClosed:   {[]domain.Payload{reopeningEvent}, domain.StatusOpen},
	},
	// put on hold: Open, Replied -> On Hold.
	"hold": {
		domain.StatusOpen:    {[]domain.Payload{holdEvent}, domain.StatusOnHold},
		domain.StatusReplied: {[]domain.Payload{holdEvent}, domain.StatusOnHold},
	},
	// resolved: Open, Replied, On Hold -> Resolved.
	"resolve": {
		domain.StatusOpen:    {[]domain.Payload{resolveEvent}, domain.StatusResolved},
		domain.StatusReplied: {[]domain.Payload{resolveEvent}, domain.StatusResolved},
		domain.StatusOnHold:  {[]domain.Payload{resolveEvent}, domain.StatusResolved},
	},
	// closed by hand: Open, Replied, On Hold, Resolved -> Closed.
	"close": {
		domain.StatusOpen:     {[]domain.Payload{closeEvent}, domain.StatusClosed},
		domain.StatusReplied:  {[]domain.Payload{closeEvent}, domain.StatusClosed},
		domain.StatusOnHold:   {[]domain.Payload{closeEvent}, domain.StatusClosed},
		domain.StatusResolved: {[]domain.Payload{closeEvent}, domain.StatusClosed},
	},
	// closed automatically: Replied for N days -> Closed, the event says so.
	"auto close": {
		domain.StatusReplied: {[]domain.Payload{autoCloseEvent}, domain.StatusClosed},
	},
	// reopened by hand: Resolved, Closed -> Open.
	"reopen": {
		domain.StatusResolved: {[]domain.Payload{reopenEvent}, domain.StatusOpen},
		domain.StatusClosed:   {[]domain.Payload{reopenEvent}, domain.StatusOpen},
	},
}

// matrixNow is late enough for an automatic close of every fixture history.
var matrixNow = t0.AddDate(0, 1, 0)

func TestStatusHistoriesReachTheirStatus(t *testing.T) {
	for status, histories := range statusHistories {
		for name, h := range histories {
			if got := given(h...).Status; got != status {
				t.Errorf("history %q ends in %s, want %s", name, got, status)
			}
		}
	}
}

// TestStatusTable: every row of the status table, from every history of every status
// the row allows.
func TestStatusTable(t *testing.T) {
	for _, c := range statusCommands {
		for _, from := range domain.Statuses {
			want, ok := statusTable[c.name][from]
			if !ok {
				continue
			}
			for hist, events := range statusHistories[from] {
				t.Run(fmt.Sprintf("given %s (%s) when %s", from, hist, c.name), func(t *testing.T) {
					state := given(events...)
					got, err := decide(state, c.cmd, matrixNow, newRef())
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					assertEvents(t, got, want.then)
					after := evolve(state, matrixNow, got)
					if after.Status != want.to {
						t.Fatalf("status after the events = %s, want %s", after.Status, want.to)
					}
					if after.Version != state.Version+uint64(len(got)) {
						t.Fatalf("version = %d, want %d", after.Version, state.Version+uint64(len(got)))
					}
					if after.Status != from && !after.StatusSince.Equal(matrixNow) {
						t.Fatalf("status_since = %s, want the instant of the change %s", after.StatusSince, matrixNow)
					}
					if after.Status == from && !after.StatusSince.Equal(state.StatusSince) {
						t.Fatalf("status_since moved from %s to %s without a status change", state.StatusSince, after.StatusSince)
					}
				})
			}
		}
	}
}

// TestInvalidTransitions: every (status, command) combination the table does not
// allow is refused with a *TransitionError naming the status, and no event.
func TestInvalidTransitions(t *testing.T) {
	refused := 0
	for _, c := range statusCommands {
		for _, from := range domain.Statuses {
			if _, ok := statusTable[c.name][from]; ok {
				continue
			}
			refused++
			for hist, events := range statusHistories[from] {
				t.Run(fmt.Sprintf("given %s (%s) when %s", from, hist, c.name), func(t *testing.T) {
					got, err := decide(given(events...), c.cmd, matrixNow, newRef())
					assertRefused(t, got, err, domain.ErrInvalidTransition)
					var terr *domain.TransitionError
					if !errors.As(err, &terr) {
						t.Fatalf("err = %T %v, want *domain.TransitionError", err, err)
					}
					if terr.From != from {
						t.Fatalf("TransitionError.From = %s, want %s", terr.From, from)
					}
					if !strings.Contains(err.Error(), string(from)) {
						t.Fatalf("error %q does not say the status", err)
					}
				})
			}
		}
	}
	// 5 statuses x 7 commands, of which the table allows 21.
	if refused != 14 {
		t.Fatalf("%d combinations refused, want 14: the table in this test drifted", refused)
	}
}

func TestCreate(t *testing.T) {
	id, num := "7d2e1b3c-0000-4000-8000-000000000001", "TKT-2026-000042"
	t.Run("given nothing when create then created with its SLA selection, status Open", func(t *testing.T) {
		cmd := domain.CreateTicket{TicketID: id, Number: num, TicketFieldsData: fields(), OpeningMessageID: "m-open"}
		got, err := decide(&domain.Ticket{}, cmd, t0, newRef())
		if err != nil {
			t.Fatal(err)
		}
		assertEvents(t, got, []domain.Payload{
			domain.TicketCreated{TicketID: id, Number: num, TicketFieldsData: fields(), OpeningMessageID: "m-open", SLA: domain.SLASelection{Priority: "Low"}},
		})
		after := evolve(&domain.Ticket{}, t0, got)
		if after.Status != domain.StatusOpen || after.ID != id || after.Number != num || !after.Exists() {
			t.Fatalf("after creation: %+v", after)
		}
		if len(after.Messages) != 1 || after.Messages[0] != (domain.MessageRef{ID: "m-open", Direction: domain.Incoming, At: t0}) {
			t.Fatalf("thread = %+v, want the opening message", after.Messages)
		}
	})
	t.Run("given nothing when create by a split then Open with split_from", func(t *testing.T) {
		origin := &domain.SplitOrigin{TicketID: ticketID, Number: number, FromMessage: "m-r1"}
		msgs := []domain.Message{
			{MessageID: "m-r1", Direction: domain.Outgoing, At: t0.Format(time.RFC3339Nano), Body: "a"},
			{MessageID: "m-c2", Direction: domain.Incoming, At: t0.Add(time.Hour).Format(time.RFC3339Nano), Body: "b"},
		}
		cmd := domain.CreateTicket{TicketID: id, Number: num, TicketFieldsData: fields(), SplitFrom: origin, Messages: msgs}
		got, err := decide(&domain.Ticket{}, cmd, t0.Add(2*time.Hour), newRef())
		if err != nil {
			t.Fatal(err)
		}
		after := evolve(&domain.Ticket{}, t0.Add(2*time.Hour), got)
		if after.Status != domain.StatusOpen || !reflect.DeepEqual(after.SplitFrom, origin) {
			t.Fatalf("after creation by split: status %s, split_from %+v", after.Status, after.SplitFrom)
		}
		wantThread := []domain.MessageRef{{ID: "m-r1", Direction: domain.Outgoing, At: t0}, {ID: "m-c2", Direction: domain.Incoming, At: t0.Add(time.Hour)}}
		if !reflect.DeepEqual(after.Messages, wantThread) {
			t.Fatalf("thread = %+v, want %+v", after.Messages, wantThread)
		}
	})
	t.Run("given a ticket when create again then conflict", func(t *testing.T) {
		cmd := domain.CreateTicket{TicketID: ticketID, Number: number, TicketFieldsData: fields()}
		got, err := decide(given(created()), cmd, t0, newRef())
		assertRefused(t, got, err, domain.ErrConflict)
	})
	t.Run("without a priority the ticket takes the SLA's default priority", func(t *testing.T) {
		f := fields()
		f.Priority = ""
		ref := newRef().withSLAs(mustSLA(t, standardSLA(), 3))
		got, err := decide(&domain.Ticket{}, domain.CreateTicket{TicketID: id, Number: num, TicketFieldsData: f}, t0, ref)
		if err != nil {
			t.Fatal(err)
		}
		f.Priority = "Low"
		assertEvents(t, got, []domain.Payload{
			domain.TicketCreated{TicketID: id, Number: num, TicketFieldsData: f, SLA: domain.SLASelection{SLA: "Standard", SLAVersion: 3, Priority: "Low"}},
		})
	})
	t.Run("the SLA is selected by condition and records its version", func(t *testing.T) {
		f := fields()
		f.Priority = "High"
		ref := newRef().withSLAs(mustSLA(t, standardSLA(), 1), mustSLA(t, criticalSLA(), 4))
		got, err := decide(&domain.Ticket{}, domain.CreateTicket{TicketID: id, Number: num, TicketFieldsData: f}, t0, ref)
		if err != nil {
			t.Fatal(err)
		}
		if sel := got[0].(domain.TicketCreated).SLA; sel != (domain.SLASelection{SLA: "Critical", SLAVersion: 4, Priority: "High"}) {
			t.Fatalf("selection = %+v", sel)
		}
	})
}

func TestCreateValidation(t *testing.T) {
	long := func(n int) string { return strings.Repeat("é", n) } // 2 bytes, 1 character
	tests := []struct {
		name   string
		mutate func(c *domain.CreateTicket)
		field  string // "" when the command is valid
	}{
		{"missing subject", func(c *domain.CreateTicket) { c.Subject = "" }, "subject"},
		{"blank subject", func(c *domain.CreateTicket) { c.Subject = " \t\n" }, "subject"},
		{"subject of 501 characters", func(c *domain.CreateTicket) { c.Subject = long(501) }, "subject"},
		{"subject of 500 characters (1000 bytes) is accepted", func(c *domain.CreateTicket) { c.Subject = long(500) }, ""},
		{"missing raised_by", func(c *domain.CreateTicket) { c.RaisedBy = "" }, "raised_by"},
		{"raised_by not an email", func(c *domain.CreateTicket) { c.RaisedBy = "ann" }, "raised_by"},
		{"raised_by with a display name", func(c *domain.CreateTicket) { c.RaisedBy = "Ann <ann@example.com>" }, "raised_by"},
		{"raised_by without a domain dot", func(c *domain.CreateTicket) { c.RaisedBy = "ann@localhost" }, "raised_by"},
		{"raised_by with two addresses", func(c *domain.CreateTicket) { c.RaisedBy = "ann@example.com, bob@example.com" }, "raised_by"},
		{"unknown priority", func(c *domain.CreateTicket) { c.Priority = "Urgent" }, "priority"},
		{"priority in the wrong case", func(c *domain.CreateTicket) { c.Priority = "high" }, "priority"},
		{"unknown ticket type", func(c *domain.CreateTicket) { c.TicketType = "Complaint" }, "ticket_type"},
		{"known ticket type is accepted", func(c *domain.CreateTicket) { c.TicketType = "Bug" }, ""},
		{"missing channel", func(c *domain.CreateTicket) { c.Channel = "" }, "channel"},
		{"invalid channel", func(c *domain.CreateTicket) { c.Channel = "fax" }, "channel"},
		{"customer too long", func(c *domain.CreateTicket) { c.Customer = long(201) }, "customer"},
		{"project too long", func(c *domain.CreateTicket) { c.Project = long(201) }, "project"},
		{"description over 1 MiB", func(c *domain.CreateTicket) { c.Description = strings.Repeat("x", domain.MaxBodyLen+1) }, "description"},
		{"no ticket id", func(c *domain.CreateTicket) { c.TicketID = "" }, "ticket_id"},
		{"no number", func(c *domain.CreateTicket) { c.Number = "" }, "ticket_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := domain.CreateTicket{TicketID: ticketID, Number: number, TicketFieldsData: fields(), OpeningMessageID: "m-open"}
			tc.mutate(&cmd)
			got, err := decide(&domain.Ticket{}, cmd, t0, newRef())
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			assertInvalid(t, got, err, tc.field)
		})
	}
	t.Run("every problem is reported at once", func(t *testing.T) {
		cmd := domain.CreateTicket{TicketID: ticketID, Number: number, TicketFieldsData: domain.TicketFieldsData{RaisedBy: "nope", Channel: "fax", Priority: "Urgent"}}
		got, err := decide(&domain.Ticket{}, cmd, t0, newRef())
		for _, f := range []string{"subject", "raised_by", "channel", "priority"} {
			assertInvalid(t, got, err, f)
		}
	})
}

func TestCommandValidation(t *testing.T) {
	tests := []struct {
		name  string
		given []domain.Payload
		when  domain.TicketCommand
		field string
	}{
		{"reply without body", []domain.Payload{created()}, domain.SendReply{MessageID: "m1", Body: "  "}, "body"},
		{"reply without message id", []domain.Payload{created()}, domain.SendReply{Body: "hi"}, "message_id"},
		{"reply to an invalid address", []domain.Payload{created()}, domain.SendReply{MessageID: "m1", Body: "hi", To: []string{"bob"}}, "recipients[0]"},
		{"reply with an invalid cc", []domain.Payload{created()}, domain.SendReply{MessageID: "m1", Body: "hi", To: []string{"bob@example.com"}, CC: []string{"x@"}}, "recipients[1]"},
		{"reply body over 1 MiB", []domain.Payload{created()}, domain.SendReply{MessageID: "m1", Body: strings.Repeat("x", domain.MaxBodyLen+1)}, "body"},
		{"customer message by api", []domain.Payload{created()}, domain.ReceiveCustomerMessage{MessageID: "m1", Channel: domain.ChannelAPI, Body: "hi"}, "channel"},
		{"customer message from an invalid address", []domain.Payload{created()}, domain.ReceiveCustomerMessage{MessageID: "m1", Channel: domain.ChannelPortal, From: "ann", Body: "hi"}, "from"},
		{"customer message without id", []domain.Payload{created()}, domain.ReceiveCustomerMessage{Channel: domain.ChannelPortal, Body: "hi"}, "message_id"},
		{"comment without body", []domain.Payload{created()}, domain.AddComment{CommentID: "c1"}, "body"},
		{"type unknown", []domain.Payload{created()}, domain.ChangeType{TicketType: "Complaint"}, "ticket_type"},
		{"type unchanged", []domain.Payload{created()}, domain.ChangeType{TicketType: ""}, "ticket_type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decide(given(tc.given...), tc.when, t0.Add(time.Hour), newRef())
			assertInvalid(t, got, err, tc.field)
		})
	}
	t.Run("a message already in the thread is a conflict", func(t *testing.T) {
		got, err := decide(given(created(), customerMessage("m-c1")), domain.ReceiveCustomerMessage{MessageID: "m-c1", Channel: domain.ChannelEmail, Body: "again"}, t0.Add(time.Hour), newRef())
		assertRefused(t, got, err, domain.ErrConflict)
	})
	t.Run("a comment is accepted in every status and changes nothing", func(t *testing.T) {
		for status, histories := range statusHistories {
			for name, h := range histories {
				state := given(h...)
				got, err := decide(state, domain.AddComment{CommentID: "c1", Body: "internal note"}, matrixNow, newRef())
				if err != nil {
					t.Fatalf("%s (%s): %v", status, name, err)
				}
				assertEvents(t, got, []domain.Payload{domain.CommentAdded{CommentID: "c1", Body: "internal note"}})
				if after := evolve(state, matrixNow, got); after.Status != status {
					t.Fatalf("a comment moved %s to %s", status, after.Status)
				}
			}
		}
	})
	t.Run("a customer message without sender is from raised_by", func(t *testing.T) {
		got, err := decide(given(created()), domain.ReceiveCustomerMessage{MessageID: "m1", Channel: domain.ChannelPortal, Body: "hi"}, t0.Add(time.Hour), newRef())
		if err != nil {
			t.Fatal(err)
		}
		assertEvents(t, got, []domain.Payload{domain.CustomerMessageReceived{MessageID: "m1", Channel: domain.ChannelPortal, From: raisedBy, Body: "hi"}})
	})
}

// TestNotFound: every command but creation needs an existing ticket.
func TestNotFound(t *testing.T) {
	cmds := []domain.TicketCommand{
		domain.ReceiveCustomerMessage{MessageID: "m1", Channel: domain.ChannelEmail, Body: "hi"},
		domain.SendReply{MessageID: "m1", Body: "hi"},
		domain.AddComment{CommentID: "c1", Body: "hi"},
		domain.HoldTicket{}, domain.ResolveTicket{}, domain.CloseTicket{}, domain.CloseTicket{Automatic: true},
		domain.ReopenTicket{}, domain.SplitTicket{FromMessage: "m1", NewTicketID: "x", NewNumber: "y"},
		domain.ChangePriority{Priority: "High"}, domain.ChangeType{TicketType: "Bug"},
		domain.AssignTicket{Assignee: "bob"}, domain.UnassignTicket{Assignee: "bob"}, domain.ResetSLA{Reason: "r"},
	}
	ref := newRef().withSettings(domain.SupportSettings{AutoCloseDays: 7, AllowSLAReset: true})
	for _, cmd := range cmds {
		t.Run(cmd.CommandName(), func(t *testing.T) {
			got, err := decide(&domain.Ticket{}, cmd, matrixNow, ref)
			assertRefused(t, got, err, domain.ErrNotFound)
		})
	}
}

func TestAutomaticClose(t *testing.T) {
	repliedAt := t0.Add(2 * time.Hour)
	week := domain.DefaultSupportSettings
	three := domain.SupportSettings{AutoCloseDays: 3}
	tests := []struct {
		name     string
		given    []domain.Payload
		settings domain.SupportSettings
		now      time.Time
		ok       bool
	}{
		{"7 days after the reply", []domain.Payload{created(), at(repliedAt, reply("m-r1"))}, week, repliedAt.AddDate(0, 0, 7), true},
		{"1 ns before 7 days", []domain.Payload{created(), at(repliedAt, reply("m-r1"))}, week, repliedAt.AddDate(0, 0, 7).Add(-time.Nanosecond), false},
		{"the day of the reply", []domain.Payload{created(), at(repliedAt, reply("m-r1"))}, week, repliedAt.Add(time.Hour), false},
		{"3 days with a 3 day setting", []domain.Payload{created(), at(repliedAt, reply("m-r1"))}, three, repliedAt.AddDate(0, 0, 3), true},
		{"just before 3 days with a 3 day setting", []domain.Payload{created(), at(repliedAt, reply("m-r1"))}, three, repliedAt.AddDate(0, 0, 3).Add(-time.Second), false},
		// The clock runs from the move to Replied: a second reply does not change the
		// status, so it does not restart it; a comment does not either.
		{"a second reply does not restart the clock", []domain.Payload{created(), at(repliedAt, reply("m-r1")), at(repliedAt.AddDate(0, 0, 5), reply("m-r2"))}, week, repliedAt.AddDate(0, 0, 7), true},
		{"a comment does not restart the clock", []domain.Payload{created(), at(repliedAt, reply("m-r1")), at(repliedAt.AddDate(0, 0, 5), domain.CommentAdded{CommentID: "c", Body: "b"})}, week, repliedAt.AddDate(0, 0, 7), true},
		// A customer message moves the ticket to Open; the next reply starts again.
		{"a customer message restarts the clock", []domain.Payload{created(), at(repliedAt, reply("m-r1")), at(repliedAt.AddDate(0, 0, 5), customerMessage("m-c1")), at(repliedAt.AddDate(0, 0, 6), reply("m-r2"))}, week, repliedAt.AddDate(0, 0, 7), false},
		{"7 days after the reply that followed the customer message", []domain.Payload{created(), at(repliedAt, reply("m-r1")), at(repliedAt.AddDate(0, 0, 5), customerMessage("m-c1")), at(repliedAt.AddDate(0, 0, 6), reply("m-r2"))}, week, repliedAt.AddDate(0, 0, 13), true},
		// The settings say 0 means never.
		{"never with auto_close_days 0", []domain.Payload{created(), at(repliedAt, reply("m-r1"))}, domain.SupportSettings{AutoCloseDays: 0}, repliedAt.AddDate(10, 0, 0), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			state := given(tc.given...)
			got, err := decide(state, domain.CloseTicket{Automatic: true}, tc.now, newRef().withSettings(tc.settings))
			if !tc.ok {
				assertRefused(t, got, err, domain.ErrInvalidTransition)
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			want := domain.TicketClosed{ClosedBy: domain.ClosedByAutoClose, Reason: fmt.Sprintf("no customer message %d days after the last reply", tc.settings.AutoCloseDays)}
			assertEvents(t, got, []domain.Payload{want})
			if after := evolve(state, tc.now, got); after.Status != domain.StatusClosed {
				t.Fatalf("status = %s, want Closed", after.Status)
			}
		})
	}
	t.Run("a given reason is kept", func(t *testing.T) {
		got, err := decide(given(created(), reply("m-r1")), domain.CloseTicket{Automatic: true, Reason: "scheduler"}, matrixNow, newRef())
		if err != nil {
			t.Fatal(err)
		}
		assertEvents(t, got, []domain.Payload{domain.TicketClosed{ClosedBy: domain.ClosedByAutoClose, Reason: "scheduler"}})
	})
}

// thread is a ticket whose thread is m-open (opening), m-c1 (customer), m-r1 (reply),
// m-c2 (customer).
func thread() []domain.Payload {
	return []domain.Payload{created(), customerMessage("m-c1"), reply("m-r1"), customerMessage("m-c2")}
}

func TestSplit(t *testing.T) {
	const newID, newNumber = "9a8b7c6d-0000-4000-8000-000000000002", "TKT-2026-000002"
	split := func(from string) domain.SplitTicket {
		return domain.SplitTicket{FromMessage: from, NewTicketID: newID, NewNumber: newNumber}
	}
	t.Run("given a thread when split from a reply then the rest of the thread moves", func(t *testing.T) {
		state := given(thread()...)
		got, err := decide(state, split("m-r1"), matrixNow, newRef())
		if err != nil {
			t.Fatal(err)
		}
		assertEvents(t, got, []domain.Payload{domain.TicketSplit{
			NewTicketID: newID, NewNumber: newNumber, FromMessage: "m-r1",
			MovedMessages: []string{"m-r1", "m-c2"}, Subject: subject,
		}})
		after := evolve(state, matrixNow, got)
		var ids []string
		for _, m := range after.Messages {
			ids = append(ids, m.ID)
		}
		if !slices.Equal(ids, []string{"m-open", "m-c1"}) {
			t.Fatalf("thread left = %v, want [m-open m-c1]", ids)
		}
		if after.Status != state.Status {
			t.Fatalf("a split changed the status from %s to %s", state.Status, after.Status)
		}
		// What moved is no longer in the thread: it cannot be split off again.
		got, err = decide(after, split("m-r1"), matrixNow, newRef())
		assertInvalid(t, got, err, "from_message")
		// Its ids are free again, but the old state was not changed in place.
		if len(state.Messages) != 4 {
			t.Fatalf("evolving a copy changed the original thread: %v", state.Messages)
		}
	})
	t.Run("the last message alone can be split off, with a new subject", func(t *testing.T) {
		c := split("m-c2")
		c.Subject = "Second printer"
		got, err := decide(given(thread()...), c, matrixNow, newRef())
		if err != nil {
			t.Fatal(err)
		}
		assertEvents(t, got, []domain.Payload{domain.TicketSplit{
			NewTicketID: newID, NewNumber: newNumber, FromMessage: "m-c2", MovedMessages: []string{"m-c2"}, Subject: "Second printer",
		}})
	})
	refusals := []struct {
		name  string
		given []domain.Payload
		when  domain.SplitTicket
		field string
		err   error
	}{
		{"the opening message", thread(), split("m-open"), "from_message", domain.ErrValidation},
		{"an unknown message", thread(), split("m-nope"), "from_message", domain.ErrValidation},
		{"no message", thread(), split(""), "from_message", domain.ErrValidation},
		{"no new id", thread(), domain.SplitTicket{FromMessage: "m-r1", NewNumber: newNumber}, "new_ticket_id", domain.ErrValidation},
		{"no new number", thread(), domain.SplitTicket{FromMessage: "m-r1", NewTicketID: newID}, "new_ticket_id", domain.ErrValidation},
		{"a subject too long", thread(), domain.SplitTicket{FromMessage: "m-r1", NewTicketID: newID, NewNumber: newNumber, Subject: strings.Repeat("s", 501)}, "subject", domain.ErrValidation},
		{"a closed ticket", append(thread(), domain.TicketClosed{}), split("m-r1"), "", domain.ErrInvalidTransition},
	}
	for _, tc := range refusals {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			got, err := decide(given(tc.given...), tc.when, matrixNow, newRef())
			if tc.field != "" {
				assertInvalid(t, got, err, tc.field)
				return
			}
			assertRefused(t, got, err, tc.err)
		})
	}
	t.Run("a split ticket's first moved message is its opening message", func(t *testing.T) {
		msgs := []domain.Message{
			{MessageID: "m-r1", Direction: domain.Outgoing, At: t0.Format(time.RFC3339Nano), Body: "a"},
			{MessageID: "m-c2", Direction: domain.Incoming, At: t0.Add(time.Minute).Format(time.RFC3339Nano), Body: "b"},
		}
		child := created()
		child.SplitFrom = &domain.SplitOrigin{TicketID: "other", Number: "TKT-2026-000009", FromMessage: "m-r1"}
		child.Messages = msgs
		child.OpeningMessageID = ""
		state := given(child)
		got, err := decide(state, split("m-r1"), matrixNow, newRef())
		assertInvalid(t, got, err, "from_message")
		got, err = decide(state, split("m-c2"), matrixNow, newRef())
		if err != nil {
			t.Fatal(err)
		}
		if s := got[0].(domain.TicketSplit); !slices.Equal(s.MovedMessages, []string{"m-c2"}) {
			t.Fatalf("moved = %v, want [m-c2]", s.MovedMessages)
		}
	})
}

func TestChangePriority(t *testing.T) {
	withSLA := []domain.Payload{createdUnder("Standard", 1, "Low")}
	changed := func(to, sla string, version int, priority string) domain.PriorityChanged {
		return domain.PriorityChanged{From: "Low", To: to, SLA: domain.SLASelection{SLA: sla, SLAVersion: version, Priority: priority}}
	}
	tests := []struct {
		name  string
		given []domain.Payload
		slas  []domain.SLADefinition // version 1 each
		when  string
		then  []domain.Payload
	}{
		{
			"the SLA's targets change with the priority",
			withSLA, []domain.SLADefinition{standardSLA()}, "High",
			[]domain.Payload{changed("High", "Standard", 1, "High")},
		},
		{
			"a priority the SLA does not define keeps the SLA's default priority's targets",
			withSLA, []domain.SLADefinition{standardSLA()}, "Medium",
			[]domain.Payload{changed("Medium", "Standard", 1, "Low")},
		},
		{
			"the priority selects another SLA",
			withSLA, []domain.SLADefinition{standardSLA(), criticalSLA()}, "High",
			[]domain.Payload{changed("High", "Critical", 1, "High")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var slas []domain.VersionedSLA
			for _, def := range tc.slas {
				slas = append(slas, mustSLA(t, def, 1))
			}
			state := given(tc.given...)
			got, err := decide(state, domain.ChangePriority{Priority: tc.when}, matrixNow, newRef().withSLAs(slas...))
			if err != nil {
				t.Fatal(err)
			}
			assertEvents(t, got, tc.then)
			after := evolve(state, matrixNow, got)
			if after.Fields.Priority != tc.when {
				t.Fatalf("priority = %q, want %q", after.Fields.Priority, tc.when)
			}
			if want := tc.then[0].(domain.PriorityChanged).SLA; after.SLA != want {
				t.Fatalf("state SLA = %+v, want %+v", after.SLA, want)
			}
		})
	}
	t.Run("a new SLA version is recorded on the next priority change", func(t *testing.T) {
		got, err := decide(given(withSLA...), domain.ChangePriority{Priority: "Medium"}, matrixNow, newRef().withSLAs(mustSLA(t, standardSLA(), 2)))
		if err != nil {
			t.Fatal(err)
		}
		assertEvents(t, got, []domain.Payload{changed("Medium", "Standard", 2, "Low")})
	})
	refusals := []struct {
		name  string
		given []domain.Payload
		when  string
		err   error
	}{
		{"empty", withSLA, "", domain.ErrValidation},
		{"unknown", withSLA, "Urgent", domain.ErrValidation},
		{"unchanged", withSLA, "Low", domain.ErrValidation},
		{"closed ticket", append(slices.Clone(withSLA), domain.TicketClosed{}), "High", domain.ErrInvalidTransition},
	}
	for _, tc := range refusals {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			got, err := decide(given(tc.given...), domain.ChangePriority{Priority: tc.when}, matrixNow, newRef().withSLAs(mustSLA(t, standardSLA(), 1)))
			assertRefused(t, got, err, tc.err)
			if tc.err == domain.ErrValidation {
				assertInvalid(t, got, err, "priority")
			}
		})
	}
}

func TestChangeType(t *testing.T) {
	got, err := decide(given(created()), domain.ChangeType{TicketType: "Bug"}, matrixNow, newRef())
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != (domain.TypeChanged{From: "", To: "Bug", SLA: domain.SLASelection{Priority: "Low"}}) {
		t.Fatalf("events = %s", describe(got))
	}
	if after := evolve(given(created()), matrixNow, got); after.Fields.TicketType != "Bug" {
		t.Fatalf("type = %q", after.Fields.TicketType)
	}
	got, err = decide(given(created(), domain.TicketClosed{}), domain.ChangeType{TicketType: "Bug"}, matrixNow, newRef())
	assertRefused(t, got, err, domain.ErrInvalidTransition)
}

func TestResetSLA(t *testing.T) {
	allow := domain.SupportSettings{AutoCloseDays: 7, AllowSLAReset: true}
	withSLA := []domain.Payload{createdUnder("Standard", 1, "Low")}
	ref := newRef().withSLAs(mustSLA(t, standardSLA(), 2))
	t.Run("refused unless the settings allow it", func(t *testing.T) {
		got, err := decide(given(withSLA...), domain.ResetSLA{Reason: "customer asked"}, matrixNow, ref)
		assertRefused(t, got, err, domain.ErrInvalidTransition)
	})
	t.Run("needs a reason", func(t *testing.T) {
		got, err := decide(given(withSLA...), domain.ResetSLA{Reason: "  "}, matrixNow, ref.withSettings(allow))
		assertInvalid(t, got, err, "reason")
	})
	refusedFrom := map[domain.Status][]domain.Payload{
		domain.StatusResolved: {domain.TicketResolved{}},
		domain.StatusClosed:   {domain.TicketResolved{}, domain.TicketClosed{}},
	}
	for from, tail := range refusedFrom {
		t.Run("refused when "+string(from), func(t *testing.T) {
			got, err := decide(given(append(slices.Clone(withSLA), tail...)...), domain.ResetSLA{Reason: "r"}, matrixNow, ref.withSettings(allow))
			assertRefused(t, got, err, domain.ErrInvalidTransition)
		})
	}
	acceptedFrom := map[domain.Status][]domain.Payload{
		domain.StatusOpen:    nil,
		domain.StatusReplied: {reply("m-r1")},
		domain.StatusOnHold:  {reply("m-r1"), domain.PutOnHold{}},
	}
	for from, tail := range acceptedFrom {
		t.Run("selects the SLA again when "+string(from), func(t *testing.T) {
			state := given(append(slices.Clone(withSLA), tail...)...)
			got, err := decide(state, domain.ResetSLA{Reason: "customer asked"}, matrixNow, ref.withSettings(allow))
			if err != nil {
				t.Fatal(err)
			}
			assertEvents(t, got, []domain.Payload{domain.SLAReset{Reason: "customer asked", SLA: "Standard", SLAVersion: 2, Priority: "Low"}})
			after := evolve(state, matrixNow, got)
			if after.SLA.SLA != "Standard" || after.SLA.SLAVersion != 2 || after.Status != from {
				t.Fatalf("after reset: sla %s v%d, status %s", after.SLA.SLA, after.SLA.SLAVersion, after.Status)
			}
		})
	}
}

func TestAssign(t *testing.T) {
	tests := []struct {
		name  string
		given []domain.Payload
		when  domain.TicketCommand
		then  []domain.Payload
		field string // validation error on this field
		err   error  // other error
		after []string
	}{
		{name: "assign", given: []domain.Payload{created()}, when: domain.AssignTicket{Assignee: "bob"},
			then: []domain.Payload{domain.TicketAssigned{Assignee: "bob"}}, after: []string{"bob"}},
		{name: "assign a second agent", given: []domain.Payload{created(), domain.TicketAssigned{Assignee: "bob"}}, when: domain.AssignTicket{Assignee: "carol"},
			then: []domain.Payload{domain.TicketAssigned{Assignee: "carol"}}, after: []string{"bob", "carol"}},
		{name: "assign on a closed ticket", given: []domain.Payload{created(), domain.TicketClosed{}}, when: domain.AssignTicket{Assignee: "bob"},
			then: []domain.Payload{domain.TicketAssigned{Assignee: "bob"}}, after: []string{"bob"}},
		{name: "assign twice", given: []domain.Payload{created(), domain.TicketAssigned{Assignee: "bob"}}, when: domain.AssignTicket{Assignee: "bob"}, err: domain.ErrConflict},
		{name: "assign nobody", given: []domain.Payload{created()}, when: domain.AssignTicket{Assignee: " "}, field: "assignee"},
		{name: "assign a name too long", given: []domain.Payload{created()}, when: domain.AssignTicket{Assignee: strings.Repeat("b", 201)}, field: "assignee"},
		{name: "unassign", given: []domain.Payload{created(), domain.TicketAssigned{Assignee: "bob"}, domain.TicketAssigned{Assignee: "carol"}}, when: domain.UnassignTicket{Assignee: "bob"},
			then: []domain.Payload{domain.TicketUnassigned{Assignee: "bob"}}, after: []string{"carol"}},
		{name: "unassign who is not assigned", given: []domain.Payload{created(), domain.TicketAssigned{Assignee: "bob"}}, when: domain.UnassignTicket{Assignee: "carol"}, field: "assignee"},
		{name: "unassign twice", given: []domain.Payload{created(), domain.TicketAssigned{Assignee: "bob"}, domain.TicketUnassigned{Assignee: "bob"}}, when: domain.UnassignTicket{Assignee: "bob"}, field: "assignee"},
		{name: "assign again after unassign", given: []domain.Payload{created(), domain.TicketAssigned{Assignee: "bob"}, domain.TicketUnassigned{Assignee: "bob"}}, when: domain.AssignTicket{Assignee: "bob"},
			then: []domain.Payload{domain.TicketAssigned{Assignee: "bob"}}, after: []string{"bob"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			state := given(tc.given...)
			got, err := decide(state, tc.when, matrixNow, newRef())
			switch {
			case tc.field != "":
				assertInvalid(t, got, err, tc.field)
			case tc.err != nil:
				assertRefused(t, got, err, tc.err)
			default:
				if err != nil {
					t.Fatal(err)
				}
				assertEvents(t, got, tc.then)
				after := evolve(state, matrixNow, got)
				if !slices.Equal(after.Assignees, tc.after) {
					t.Fatalf("assignees = %v, want %v", after.Assignees, tc.after)
				}
				if after.Status != state.Status {
					t.Fatalf("assignment changed the status")
				}
			}
		})
	}
}

// allTicketEvents is one payload of every ticket event type.
func allTicketEvents() []domain.Payload {
	return []domain.Payload{
		created(), customerMessage("m-x"), reply("m-y"), domain.CommentAdded{CommentID: "c", Body: "b"},
		domain.PutOnHold{}, domain.TicketResolved{}, domain.TicketClosed{}, domain.TicketClosed{ClosedBy: domain.ClosedByAutoClose},
		domain.TicketReopened{}, domain.TicketSplit{NewTicketID: "n", NewNumber: "N", FromMessage: "m-zz", MovedMessages: []string{"m-zz"}},
		domain.PriorityChanged{From: "Low", To: "High"}, domain.TypeChanged{To: "Bug"}, domain.TicketAssigned{Assignee: "a"},
		domain.TicketUnassigned{Assignee: "a"}, domain.SLAReset{Reason: "r"},
		domain.SLADeadlineMissed{Kind: domain.DeadlineResponse, Deadline: t0}, domain.SLADeadlineApproaching{Kind: domain.DeadlineResolution, Deadline: t0},
	}
}

// TestNextStatusAgreesWithEvolve: for every status (reached by every fixture
// history) and every ticket event, the status EvolveTicket folds is NextStatus's, and
// status_since moves exactly when the status does.
func TestNextStatusAgreesWithEvolve(t *testing.T) {
	for status, histories := range statusHistories {
		for name, h := range histories {
			for _, p := range allTicketEvents() {
				before := given(h...)
				when := matrixNow
				after := evolve(before, when, []domain.Payload{p})
				want := domain.NextStatus(before.Status, p)
				if after.Status != want {
					t.Errorf("%s (%s) + %T: Evolve gives %s, NextStatus %s", status, name, p, after.Status, want)
				}
				moved := after.Status != before.Status
				if moved && !after.StatusSince.Equal(when) || !moved && !after.StatusSince.Equal(before.StatusSince) {
					t.Errorf("%s (%s) + %T: status_since %s (before %s)", status, name, p, after.StatusSince, before.StatusSince)
				}
			}
		}
	}
}

// TestNextStatusMatchesTheDecider walks random command sequences: every accepted
// command's events move the status exactly as the spec table says, and folding them
// with NextStatus alone gives the same status as EvolveTicket.
func TestNextStatusMatchesTheDecider(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for walk := range 200 {
		state := given(created())
		status := domain.StatusOpen // NextStatus fold
		now := t0.Add(time.Hour)
		for step := range 30 {
			now = now.Add(time.Duration(rng.IntN(4*24)) * time.Hour)
			c := statusCommands[rng.IntN(len(statusCommands))]
			cmd := c.cmd
			switch m := cmd.(type) { // message ids must be new
			case domain.SendReply:
				m.MessageID = fmt.Sprintf("m-%d-%d", walk, step)
				cmd = m
			case domain.ReceiveCustomerMessage:
				m.MessageID = fmt.Sprintf("m-%d-%d", walk, step)
				cmd = m
			}
			from := state.Status
			got, err := decide(state, cmd, now, newRef())
			want, allowed := statusTable[c.name][from]
			if c.name == "auto close" && allowed && now.Before(state.StatusSince.AddDate(0, 0, 7)) {
				allowed = false // too early: refused like an invalid transition
			}
			if !allowed {
				if !errors.Is(err, domain.ErrInvalidTransition) || got != nil {
					t.Fatalf("walk %d step %d: %s from %s: got %s, %v; want an invalid transition", walk, step, c.name, from, describe(got), err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("walk %d step %d: %s from %s refused: %v", walk, step, c.name, from, err)
			}
			for _, p := range got {
				status = domain.NextStatus(status, p)
			}
			state = evolve(state, now, got)
			if state.Status != want.to || status != want.to {
				t.Fatalf("walk %d step %d: %s from %s: Evolve %s, NextStatus %s, table %s", walk, step, c.name, from, state.Status, status, want.to)
			}
		}
	}
}

func TestEvolveRecordsCommands(t *testing.T) {
	state := given(created(), reply("m-r1"), domain.CommentAdded{CommentID: "c", Body: "b"})
	for id, want := range map[string]uint64{"cmd-1": 1, "cmd-2": 2, "cmd-3": 3} {
		if v, ok := state.Commands.Version(id); !ok || v != want {
			t.Errorf("command %s: version %d, %v; want %d", id, v, ok, want)
		}
	}
	if v, ok := state.Commands.Version("cmd-4"); ok {
		t.Errorf("command cmd-4 was never applied, yet has version %d", v)
	}
	if len(state.Commands) != 3 {
		t.Errorf("%d commands recorded, want 3", len(state.Commands))
	}
	if state.Version != 3 || state.LastHash == "" {
		t.Fatalf("version %d, last hash %q", state.Version, state.LastHash)
	}
}
