package projections

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ticketcore/ticketcore/domain"
)

// Automation is the read model the automation reactor (commands.Automation) follows:
// per ticket, what the assignment rules and the unreplied alert look at (fields,
// status, assignees and the rule that gave each, the waiting customer message), the
// open-ticket count of every assignee (load balancing), and the assignment rules with
// the global position each version was saved at. Like every read model it is a fold of
// the events and eventually consistent: it lags the store by the runner's delay.
type Automation struct {
	mu      sync.RWMutex
	pos     uint64
	tickets map[string]*autoTicket
	order   []*autoTicket // creation order
	rules   domain.AssignmentRulesState
	open    map[string]int         // open tickets per assignee
	waiting map[string]*autoTicket // tickets whose customer waits and has no alert yet
}

// autoTicket is one ticket as the automation sees it.
type autoTicket struct {
	id          string
	changedAt   uint64 // global position of the last event
	fields      domain.TicketFieldsData
	status      domain.Status
	statusSince time.Time
	assignees   []autoAssignee
	// unassignedSince is the ticket version since which it has had no assignee.
	unassignedSince uint64
	// waitingID is the first customer message since the last agent reply ("" if none),
	// received at waitingAt; alerted is the last message an unreplied alert named.
	waitingID string
	waitingAt time.Time
	alerted   string
}

type autoAssignee struct {
	name    string
	rule    string // "" for a person's assignment
	version uint64 // ticket version of the ticket.assigned event
}

// NewAutomation returns an empty model.
func NewAutomation() *Automation {
	m := &Automation{}
	m.Reset()
	return m
}

func (m *Automation) Name() string { return "automation" }

func (m *Automation) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pos = 0
	m.tickets = make(map[string]*autoTicket)
	m.order = nil
	m.rules = domain.AssignmentRulesState{}
	m.open = make(map[string]int)
	m.waiting = make(map[string]*autoTicket)
}

func (m *Automation) Position() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.pos
}

func (t *autoTicket) isOpen() bool {
	return t.status != "" && t.status != domain.StatusResolved && t.status != domain.StatusClosed
}

func (m *Automation) Apply(e domain.Event, pos uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pos <= m.pos {
		return nil
	}
	m.pos = pos
	if e.Stream == domain.AssignmentRulesStream {
		domain.EvolveAssignmentRules(&m.rules, e, pos)
		return nil
	}
	id := domain.TicketIDFromStream(e.Stream)
	if id == "" {
		return nil
	}
	t := m.tickets[id]
	if t == nil {
		if _, ok := e.Payload.(domain.TicketCreated); !ok {
			return nil
		}
		id = strings.Clone(id) // kept for good: not a view of the event's buffer
		t = &autoTicket{id: id}
		m.tickets[id] = t
		m.order = append(m.order, t)
	}
	m.count(t, -1)
	t.apply(e, pos)
	m.count(t, +1)
	if t.isWaiting() {
		m.waiting[id] = t
	} else {
		delete(m.waiting, id)
	}
	return nil
}

// count adds (or removes) an open ticket's assignees to the open-ticket counts.
func (m *Automation) count(t *autoTicket, delta int) {
	if !t.isOpen() {
		return
	}
	for _, a := range t.assignees {
		if m.open[a.name] += delta; m.open[a.name] == 0 {
			delete(m.open, a.name)
		}
	}
}

func (t *autoTicket) isWaiting() bool {
	return t.status == domain.StatusOpen && t.waitingID != "" && t.alerted != t.waitingID
}

func (t *autoTicket) apply(e domain.Event, pos uint64) {
	t.changedAt = pos
	at := e.OccurredAt.UTC()
	if next := domain.NextStatus(t.status, e.Payload); next != t.status {
		t.status, t.statusSince = next, at
	}
	switch p := e.Payload.(type) {
	case domain.TicketCreated:
		t.fields = p.TicketFieldsData
		t.fields.Description = "" // the opening message: not a condition field
		t.unassignedSince = e.Sequence
		for _, m := range p.ThreadMessages(at) {
			t.thread(m.ID, m.Direction, m.At)
		}
	case domain.CustomerMessageReceived:
		t.thread(p.MessageID, domain.Incoming, at)
	case domain.ReplySent:
		t.thread(p.MessageID, domain.Outgoing, at)
	case domain.TicketSplit:
		// The waiting message moved to the new ticket, which waits for it; what this
		// ticket's remaining thread waits for is not known here, so it waits for nothing
		// until the customer writes again.
		if slices.Contains(p.MovedMessages, t.waitingID) {
			t.waitingID = ""
		}
	case domain.PriorityChanged:
		t.fields.Priority = p.To
	case domain.TypeChanged:
		t.fields.TicketType = p.To
	case domain.TicketAssigned:
		t.assignees = append(slices.Clone(t.assignees), autoAssignee{name: p.Assignee, rule: p.Rule, version: e.Sequence})
	case domain.TicketUnassigned:
		t.assignees = slices.DeleteFunc(slices.Clone(t.assignees), func(a autoAssignee) bool { return a.name == p.Assignee })
		if len(t.assignees) == 0 {
			t.unassignedSince = e.Sequence
		}
	case domain.UnrepliedAlert:
		t.alerted = p.MessageID
	}
}

// thread notes a thread message: a reply ends the wait, the first customer message
// after it starts one.
func (t *autoTicket) thread(id string, d domain.Direction, at time.Time) {
	switch {
	case d == domain.Outgoing:
		t.waitingID = ""
	case t.waitingID == "":
		t.waitingID, t.waitingAt = id, at.UTC()
	}
}

// AssignmentSnapshot implements commands.AutomationSource: the rules in priority
// order, the tickets without assignee that are neither resolved nor closed
// (candidates), every assignee a rule gave, and the open tickets per assignee; with no
// rule, only the counts. Tickets skip returns true for are left out.
func (m *Automation) AssignmentSnapshot(skip func(ticketID string, changedAt uint64) bool) domain.AssignmentSnapshot {
	m.mu.RLock()
	defer m.mu.RUnlock()
	snap := domain.AssignmentSnapshot{Rules: m.rules.Rules, OpenTickets: maps.Clone(m.open)}
	if len(snap.Rules) == 0 {
		return snap // no rule assigns, and only a current rule unassigns
	}
	for _, t := range m.order {
		candidate := len(t.assignees) == 0 && t.isOpen()
		byRule := slices.ContainsFunc(t.assignees, func(a autoAssignee) bool { return a.rule != "" })
		if !candidate && !byRule || skip != nil && skip(t.id, t.changedAt) {
			continue
		}
		fields := domain.RuleFields(t.fields, t.status)
		if candidate {
			snap.Candidates = append(snap.Candidates, domain.AssignmentCandidate{
				TicketID: t.id, Fields: fields, ChangedAt: t.changedAt, UnassignedSince: t.unassignedSince})
		}
		for _, a := range t.assignees {
			if a.rule != "" {
				snap.Assignments = append(snap.Assignments, domain.RuleAssignment{
					TicketID: t.id, Assignee: a.name, Rule: a.rule, AssignedAt: a.version, Fields: fields, ChangedAt: t.changedAt})
			}
		}
	}
	return snap
}

// DueUnrepliedAlerts implements commands.AutomationSource: the Open tickets whose
// waiting customer message has waited at least minutes at instant now, counted from
// the message or from when the ticket became Open if later, and has no alert yet;
// longest waiting first.
func (m *Automation) DueUnrepliedAlerts(now time.Time, minutes int) []domain.DueUnrepliedAlert {
	if minutes <= 0 {
		return nil
	}
	threshold := time.Duration(minutes) * time.Minute
	m.mu.RLock()
	defer m.mu.RUnlock()
	var due []domain.DueUnrepliedAlert
	for _, t := range m.waiting {
		since := domain.UnrepliedWaitStart(t.waitingAt, t.statusSince)
		if !now.Before(since.Add(threshold)) {
			due = append(due, domain.DueUnrepliedAlert{TicketID: t.id, MessageID: t.waitingID, WaitingSince: since})
		}
	}
	slices.SortFunc(due, func(a, b domain.DueUnrepliedAlert) int {
		if c := a.WaitingSince.Compare(b.WaitingSince); c != 0 {
			return c
		}
		return strings.Compare(a.TicketID, b.TicketID)
	})
	return due
}

// OpenTickets is how many open tickets (neither resolved nor closed) each assignee has.
func (m *Automation) OpenTickets() map[string]int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return maps.Clone(m.open)
}

// AssignedBy returns the assignees of a ticket with the rule that gave each ("" for a
// person's assignment).
func (m *Automation) AssignedBy(ticketID string) map[string]string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := map[string]string{}
	if t := m.tickets[ticketID]; t != nil {
		for _, a := range t.assignees {
			out[a.name] = a.rule
		}
	}
	return out
}
