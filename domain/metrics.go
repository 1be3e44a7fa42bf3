package domain

import (
	"time"
)

// SLALookup resolves the SLA a ticket recorded by name and version.
type SLALookup func(name string, version int) (*SLA, bool)

// Agreement statuses of the spec.
const (
	AgreementFailed           = "Failed"
	AgreementPaused           = "Paused"
	AgreementFirstResponseDue = "First Response Due"
	AgreementResolutionDue    = "Resolution Due"
	AgreementFulfilled        = "Fulfilled"
)

// defaultClasses classify statuses when no SLA applies (calendar hold time is still
// measured, with the spec's default pause and fulfilled statuses).
var defaultClasses, _ = CompileSLA(SLADefinition{
	Name:       "default-classes",
	Calendar:   CalendarSpec{Timezone: "UTC", Hours: map[string][][2]string{"Monday": {{"00:00", "24:00"}}}},
	Priorities: []SLAPriority{{Name: "Medium", Response: Duration(time.Hour), Resolution: Duration(time.Hour), Default: true}},
})

// SLAMetrics is the fold of one ticket's events into every status, deadline and metric
// of spec/metrics.md. It is deterministic: it reads only the events and the SLA
// versions they name. Times are UTC; a zero time means "absent".
type SLAMetrics struct {
	OpenedAt time.Time
	Status   Status
	Priority string // the priority whose targets apply

	SLAName    string
	SLAVersion int
	sla        *SLA

	Start            time.Time // S: creation or last reset
	FirstRespondedOn time.Time // F
	ResolutionDate   time.Time // R
	ResponseBy       time.Time
	ResolutionBy     time.Time // business_add(S, target + finished hold), kept while paused

	holdCal, holdBus time.Duration // finished hold intervals after S
	holdSince        time.Time     // start of the current paused or fulfilled interval
	failed           bool          // sticky for the SLA cycle

	waitCal, waitBus       time.Duration // agent reply -> customer message gaps in this cycle
	respSumCal, respSumBus time.Duration // customer message -> agent reply gaps
	respCount              int
	lastMessage            Direction
	lastMessageAt          time.Time

	Reopens, Replies, CustomerMessages int

	// deadlinesOf are the inputs ResponseBy and ResolutionBy were last computed from:
	// most events change none of them, and business-calendar arithmetic is the costliest
	// part of applying an event.
	deadlinesOf deadlineInputs
}

type deadlineInputs struct {
	sla      *SLA
	start    time.Time
	priority string
	holdBus  time.Duration
}

// HasSLA reports whether an SLA applies.
func (m *SLAMetrics) HasSLA() bool { return m.sla != nil }

func (m *SLAMetrics) classOf(s Status) StatusClass {
	if m.sla != nil {
		return m.sla.ClassOf(s)
	}
	return defaultClasses.ClassOf(s)
}

// business is the working time in [a, b] under the current SLA's calendar.
func (m *SLAMetrics) business(a, b time.Time) time.Duration {
	if m.sla == nil || !b.After(a) {
		return 0
	}
	return m.sla.Calendar().Business(a, b)
}

// Apply folds one event of the ticket's stream. lookup resolves recorded SLAs.
func (m *SLAMetrics) Apply(e Event, lookup SLALookup) {
	at := e.OccurredAt.UTC()
	// Deadlines missed before this event mark the cycle Failed for good, even if a
	// later priority change moves the deadline.
	if m.failedAt(at) {
		m.failed = true
	}
	next := NextStatus(m.Status, e.Payload)
	switch p := e.Payload.(type) {
	case TicketCreated:
		m.OpenedAt, m.Start, m.Priority = at, at, p.Priority
		m.Status = StatusOpen
		for _, msg := range p.ThreadMessages(at) {
			m.countMessage(msg.Direction, msg.At)
		}
		m.useSLA(p.SLA, at, lookup)
	case PriorityChanged:
		m.useSLA(p.SLA, at, lookup)
	case TypeChanged:
		m.useSLA(p.SLA, at, lookup)
	case SLAReset:
		m.useSLA(SLASelection{SLA: p.SLA, SLAVersion: p.SLAVersion, Priority: p.Priority}, at, lookup)
		m.startCycle(at)
	case ReplySent:
		m.Replies++
		if m.lastMessage == Incoming && at.After(m.lastMessageAt) {
			m.respSumCal += at.Sub(m.lastMessageAt)
			m.respSumBus += m.business(m.lastMessageAt, at)
			m.respCount++
		}
		m.lastMessage, m.lastMessageAt = Outgoing, at
		if m.FirstRespondedOn.IsZero() {
			m.FirstRespondedOn = at
		}
	case CustomerMessageReceived:
		m.CustomerMessages++
		if m.lastMessage == Outgoing {
			from := maxTime(m.lastMessageAt, m.Start)
			if at.After(from) {
				m.waitCal += at.Sub(from)
				m.waitBus += m.business(from, at)
			}
		}
		m.lastMessage, m.lastMessageAt = Incoming, at
	case TicketSplit:
		// The moved messages leave this thread; the counters keep what happened here.
	}
	m.moveTo(next, at)
	m.updateDeadlines()
}

func (m *SLAMetrics) countMessage(d Direction, at time.Time) {
	if d == Incoming {
		m.CustomerMessages++
	} else {
		m.Replies++
	}
	m.lastMessage, m.lastMessageAt = d, at
}

// useSLA switches to a recorded SLA; if that changes the class of the current status
// (Replied pauses under one SLA and not another), the hold interval follows.
func (m *SLAMetrics) useSLA(sel SLASelection, at time.Time, lookup SLALookup) {
	before := m.classOf(m.Status)
	m.SLAName, m.SLAVersion, m.Priority, m.sla = sel.SLA, sel.SLAVersion, sel.Priority, nil
	if sel.SLA != "" && lookup != nil {
		if s, ok := lookup(sel.SLA, sel.SLAVersion); ok {
			m.sla = s
		}
	}
	m.changeClass(before, m.classOf(m.Status), at)
}

// startCycle begins a new SLA cycle at a reset: F, R, hold and Failed are cleared;
// counters and the average response time are kept.
func (m *SLAMetrics) startCycle(at time.Time) {
	m.Start = at
	m.FirstRespondedOn, m.ResolutionDate = time.Time{}, time.Time{}
	m.holdCal, m.holdBus = 0, 0
	m.waitCal, m.waitBus = 0, 0
	m.failed = false
	m.holdSince = time.Time{}
	if m.classOf(m.Status) == ClassPaused {
		m.holdSince = at
	}
}

func (m *SLAMetrics) moveTo(next Status, at time.Time) {
	if next == m.Status {
		return
	}
	from, to := m.classOf(m.Status), m.classOf(next)
	m.Status = next
	m.changeClass(from, to, at)
}

// changeClass applies the hold, first-response and resolution rules of a move between
// status classes.
func (m *SLAMetrics) changeClass(from, to StatusClass, at time.Time) {
	if from == to {
		return
	}
	if from == ClassRunning && m.FirstRespondedOn.IsZero() {
		m.FirstRespondedOn = at
	}
	switch from {
	case ClassPaused:
		if to == ClassRunning {
			m.finishHold(at)
		} else { // paused -> fulfilled: the pause ends, the fulfilled interval starts
			m.finishHold(at)
			m.holdSince = at
		}
	case ClassFulfilled:
		m.ResolutionDate = time.Time{}
		if to == ClassRunning {
			m.Reopens++
			m.finishHold(at)
		} // fulfilled -> paused: the clock stays stopped, the interval goes on as a pause
	case ClassRunning:
		m.holdSince = at
	}
	if to == ClassFulfilled {
		m.ResolutionDate = at
	}
}

// finishHold adds the current interval, counted from S at the earliest, to the totals.
func (m *SLAMetrics) finishHold(at time.Time) {
	if m.holdSince.IsZero() {
		return
	}
	from := maxTime(m.holdSince, m.Start)
	if at.After(from) {
		m.holdCal += at.Sub(from)
		m.holdBus += m.business(from, at)
	}
	m.holdSince = time.Time{}
}

func (m *SLAMetrics) updateDeadlines() {
	in := deadlineInputs{sla: m.sla, start: m.Start, priority: m.Priority, holdBus: m.holdBus}
	if in == m.deadlinesOf && in.sla != nil {
		return
	}
	m.deadlinesOf = in
	m.ResponseBy, m.ResolutionBy = time.Time{}, time.Time{}
	if m.sla == nil || m.Start.IsZero() {
		return
	}
	target, ok := m.sla.Priority(m.Priority)
	if !ok {
		target = m.sla.DefaultPriority()
	}
	cal := m.sla.Calendar()
	m.ResponseBy = cal.BusinessAdd(m.Start, time.Duration(target.Response))
	if m.sla.AppliesToResolution() {
		m.ResolutionBy = cal.BusinessAdd(m.Start, time.Duration(target.Resolution)+m.holdBus)
	}
}

// failedAt reports whether a target is missed at instant t given the state now.
func (m *SLAMetrics) failedAt(t time.Time) bool {
	if m.sla == nil || m.Start.IsZero() {
		return false
	}
	if m.FirstRespondedOn.IsZero() {
		if t.After(m.ResponseBy) {
			return true
		}
	} else if m.FirstRespondedOn.After(m.ResponseBy) {
		return true
	}
	if !m.sla.AppliesToResolution() {
		return false
	}
	if !m.ResolutionDate.IsZero() {
		return m.ResolutionDate.After(m.ResolutionBy)
	}
	return m.classOf(m.Status) == ClassRunning && t.After(m.ResolutionBy)
}

// AgreementStatus is the verdict at instant t ("" when no SLA applies).
func (m *SLAMetrics) AgreementStatus(t time.Time) string {
	switch {
	case m.sla == nil:
		return ""
	case m.failed || m.failedAt(t):
		return AgreementFailed
	case m.classOf(m.Status) == ClassPaused:
		return AgreementPaused
	case m.FirstRespondedOn.IsZero():
		return AgreementFirstResponseDue
	case m.sla.AppliesToResolution() && m.ResolutionDate.IsZero():
		return AgreementResolutionDue
	}
	return AgreementFulfilled
}

// TwoClocks is a duration in wall-clock and business seconds; Business is nil when no
// SLA applies.
type TwoClocks struct {
	Calendar *float64
	Business *float64
}

func (m *SLAMetrics) clocks(cal, bus time.Duration) TwoClocks {
	c := cal.Seconds()
	out := TwoClocks{Calendar: &c}
	if m.sla != nil {
		b := bus.Seconds()
		out.Business = &b
	}
	return out
}

// FirstResponseTime is F - S, or absent.
func (m *SLAMetrics) FirstResponseTime() TwoClocks {
	if m.FirstRespondedOn.IsZero() {
		return TwoClocks{}
	}
	return m.clocks(m.FirstRespondedOn.Sub(m.Start), m.business(m.Start, m.FirstRespondedOn))
}

// AvgResponseTime is the mean customer-message-to-reply gap, or absent.
func (m *SLAMetrics) AvgResponseTime() TwoClocks {
	if m.respCount == 0 {
		return TwoClocks{}
	}
	n := time.Duration(m.respCount)
	return m.clocks(m.respSumCal/n, m.respSumBus/n)
}

// TotalHoldTime sums the finished hold intervals of the cycle.
func (m *SLAMetrics) TotalHoldTime() TwoClocks {
	return m.clocks(m.holdCal, m.holdBus)
}

// OnHoldSince is the start of the current paused interval, or zero.
func (m *SLAMetrics) OnHoldSince() time.Time {
	if m.classOf(m.Status) != ClassPaused {
		return time.Time{}
	}
	return maxTime(m.holdSince, m.Start)
}

// ResolutionTime is R - S, or absent.
func (m *SLAMetrics) ResolutionTime() TwoClocks {
	if m.ResolutionDate.IsZero() {
		return TwoClocks{}
	}
	return m.clocks(m.ResolutionDate.Sub(m.Start), m.business(m.Start, m.ResolutionDate))
}

// UserResolutionTime is the resolution time less the time spent waiting for the
// customer, or absent.
func (m *SLAMetrics) UserResolutionTime() TwoClocks {
	if m.ResolutionDate.IsZero() {
		return TwoClocks{}
	}
	return m.clocks(m.ResolutionDate.Sub(m.Start)-m.waitCal, m.business(m.Start, m.ResolutionDate)-m.waitBus)
}

// ResolutionByNow is resolution_by as the spec shows it: absent while paused or when
// the resolution target does not apply.
func (m *SLAMetrics) ResolutionByNow() time.Time {
	if m.classOf(m.Status) == ClassPaused {
		return time.Time{}
	}
	return m.ResolutionBy
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
