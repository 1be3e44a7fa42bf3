package projections

import (
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/ticketcore/ticketcore/domain"
)

// ThreadMessage is a customer message or an agent reply as the read model shows it.
type ThreadMessage struct {
	MessageID   string              `json:"message_id"`
	Direction   domain.Direction    `json:"direction"`
	At          time.Time           `json:"at"`
	From        string              `json:"from,omitempty"`
	To          []string            `json:"to,omitempty"`
	CC          []string            `json:"cc,omitempty"`
	Subject     string              `json:"subject,omitempty"`
	Body        string              `json:"body"`
	HTMLBody    string              `json:"html_body,omitempty"`
	Channel     domain.Channel      `json:"channel,omitempty"`
	Attachments []domain.Attachment `json:"attachments,omitempty"`
	Actor       string              `json:"actor,omitempty"`
}

// Comment is an internal note, never shown to the customer.
type Comment struct {
	CommentID string    `json:"comment_id"`
	At        time.Time `json:"at"`
	Author    string    `json:"author"`
	Body      string    `json:"body"`
}

// SplitLink points to a ticket split off this one.
type SplitLink struct {
	TicketID    string    `json:"ticket_id"`
	Number      string    `json:"number"`
	FromMessage string    `json:"from_message"`
	At          time.Time `json:"at"`
}

// TicketState is one ticket: the fold of its stream. The list model keeps every
// ticket's fields and metrics in memory but not its thread, which stays in the ticket's
// stream: the detail view folds that stream on read (withThread), as time travel does,
// so memory grows with the number of tickets, not with the text they hold.
type TicketState struct {
	withThread bool
	indexKey   uuid.UUID // the ID's bytes, for ticketIndex
	// positions are the global positions of the ticket's events, which the list model
	// records (Tickets.EventPositions): the first ones inline, so that recording them
	// allocates nothing during a rebuild for most tickets, the rest, if any, in
	// laterPositions.
	positions      [inlinePositions]uint64
	laterPositions []uint64

	ID                  string
	Number              string
	Version             uint64
	Fields              domain.TicketFieldsData
	CreatedAt           time.Time
	UpdatedAt           time.Time
	Thread              []ThreadMessage
	Comments            []Comment
	Assignees           []string
	SplitFrom           *domain.SplitOrigin
	SplitInto           []SplitLink
	Resolution          string
	ClosedAutomatically bool
	Metrics             domain.SLAMetrics
	StatusSince         time.Time // when the ticket entered its current status
	// Deadlines already recorded as missed or approaching, so the watcher does not ask
	// again once the projection has seen them.
	Deadlines map[DeadlineKey]bool
}

// DeadlineKey identifies one deadline notification.
type DeadlineKey struct {
	Kind     string
	Deadline time.Time
	Warning  bool
}

// Apply folds one event of the ticket's stream.
func (t *TicketState) Apply(e domain.Event, lookup domain.SLALookup) {
	t.Version, t.UpdatedAt = e.Sequence, e.OccurredAt.UTC()
	before := t.Metrics.Status
	t.Metrics.Apply(e, lookup)
	if t.Metrics.Status != before {
		t.StatusSince = e.OccurredAt.UTC()
	}
	at := e.OccurredAt.UTC()
	switch p := e.Payload.(type) {
	case domain.TicketCreated:
		t.ID, t.Number, t.Fields, t.CreatedAt, t.SplitFrom = p.TicketID, p.Number, p.TicketFieldsData, at, p.SplitFrom
		if !t.withThread {
			break
		}
		if p.SplitFrom == nil {
			t.Thread = append(t.Thread, ThreadMessage{MessageID: p.OpeningMessageID, Direction: domain.Incoming, At: at,
				From: p.RaisedBy, Subject: p.Subject, Body: p.Description, Channel: p.Channel, Attachments: p.Attachments, Actor: e.Actor})
		}
		for _, m := range p.Messages {
			mAt, _ := time.Parse(time.RFC3339Nano, m.At)
			t.Thread = append(t.Thread, ThreadMessage{MessageID: m.MessageID, Direction: m.Direction, At: mAt.UTC(),
				From: m.From, Subject: m.Subject, Body: m.Body, HTMLBody: m.HTMLBody, Attachments: m.Attachments})
		}
	case domain.CustomerMessageReceived:
		if !t.withThread {
			break
		}
		t.Thread = append(t.Thread, ThreadMessage{MessageID: p.MessageID, Direction: domain.Incoming, At: at, From: p.From,
			Subject: p.Subject, Body: p.Body, HTMLBody: p.HTMLBody, Channel: p.Channel, Attachments: p.Attachments, Actor: e.Actor})
	case domain.ReplySent:
		if !t.withThread {
			break
		}
		t.Thread = append(t.Thread, ThreadMessage{MessageID: p.MessageID, Direction: domain.Outgoing, At: at, To: p.To, CC: p.CC,
			Subject: p.Subject, Body: p.Body, HTMLBody: p.HTMLBody, Attachments: p.Attachments, Actor: e.Actor})
	case domain.CommentAdded:
		if !t.withThread {
			break
		}
		t.Comments = append(t.Comments, Comment{CommentID: p.CommentID, At: at, Author: e.Actor, Body: p.Body})
	case domain.TicketResolved:
		t.Resolution = p.ResolutionDetails
	case domain.TicketClosed:
		t.ClosedAutomatically = p.Automatic()
	case domain.TicketReopened, domain.PutOnHold:
		t.ClosedAutomatically = false
	case domain.TicketSplit:
		if k := slices.IndexFunc(t.Thread, func(m ThreadMessage) bool { return m.MessageID == p.FromMessage }); k >= 0 {
			t.Thread = t.Thread[:k:k]
		}
		t.SplitInto = append(t.SplitInto, SplitLink{TicketID: p.NewTicketID, Number: p.NewNumber, FromMessage: p.FromMessage, At: at})
	case domain.SLADeadlineMissed:
		t.noteDeadline(DeadlineKey{p.Kind, p.Deadline.UTC(), false})
	case domain.SLADeadlineApproaching:
		t.noteDeadline(DeadlineKey{p.Kind, p.Deadline.UTC(), true})
	case domain.PriorityChanged:
		t.Fields.Priority = p.To
	case domain.TypeChanged:
		t.Fields.TicketType = p.To
	case domain.TicketAssigned:
		t.Assignees = append(slices.Clone(t.Assignees), p.Assignee)
	case domain.TicketUnassigned:
		t.Assignees = slices.DeleteFunc(slices.Clone(t.Assignees), func(a string) bool { return a == p.Assignee })
	}
	if _, ok := e.Payload.(domain.CustomerMessageReceived); ok {
		t.ClosedAutomatically = false
	}
}

func (t *TicketState) noteDeadline(k DeadlineKey) {
	if t.Deadlines == nil {
		t.Deadlines = make(map[DeadlineKey]bool)
	}
	t.Deadlines[k] = true
}

// DueDeadlines lists the deadline notifications the ticket owes at instant now: a
// missed response or resolution deadline, or one less than warnBefore away (no
// warning when warnBefore is 0), that has not been recorded yet.
func (t *TicketState) DueDeadlines(now time.Time, warnBefore time.Duration) []domain.RecordDeadline {
	m := &t.Metrics
	if !m.HasSLA() {
		return nil
	}
	var due []domain.RecordDeadline
	check := func(kind string, deadline time.Time, open bool) {
		if !open || deadline.IsZero() {
			return
		}
		deadline = deadline.UTC()
		d := domain.RecordDeadline{Kind: kind, Deadline: deadline, CycleStart: m.Start, SLA: m.SLAName, SLAVersion: m.SLAVersion}
		switch {
		case now.After(deadline):
			if !t.Deadlines[DeadlineKey{kind, deadline, false}] {
				due = append(due, d)
			}
		case warnBefore > 0 && !now.Before(deadline.Add(-warnBefore)):
			if !t.Deadlines[DeadlineKey{kind, deadline, true}] {
				d.Warning, d.WarnSeconds = true, int64(warnBefore.Seconds())
				due = append(due, d)
			}
		}
	}
	check(domain.DeadlineResponse, m.ResponseBy, m.FirstRespondedOn.IsZero())
	running := m.Status != "" && m.ResolutionDate.IsZero() && !m.ResolutionByNow().IsZero()
	check(domain.DeadlineResolution, m.ResolutionByNow(), running)
	return due
}

// FoldTicket builds a ticket with its thread from its events, keeping only those that
// occurred at or before asOf (all when asOf is zero): the ticket exactly as it stood then.
func FoldTicket(events []domain.Event, asOf time.Time, lookup domain.SLALookup) (*TicketState, bool) {
	t := &TicketState{withThread: true}
	for _, e := range events {
		if !asOf.IsZero() && e.OccurredAt.After(asOf) {
			break
		}
		t.Apply(e, lookup)
	}
	return t, t.Version > 0
}
