package projections

import (
	"strings"
	"time"

	"github.com/ticketcore/ticketcore/domain"
)

// whatIfVersion marks the hypothetical SLA in replayed selections; no stored SLA
// version is negative.
const whatIfVersion = -1

// WhatIfTicket compares one ticket's SLA outcome as recorded and under another SLA.
type WhatIfTicket struct {
	ID      string        `json:"id"`
	Number  string        `json:"number"`
	Actual  WhatIfOutcome `json:"actual"`
	WhatIf  WhatIfOutcome `json:"what_if"`
	Changed bool          `json:"changed"`
}

// WhatIfOutcome is the SLA verdict of a ticket at the evaluation instant.
type WhatIfOutcome struct {
	SLA             *string    `json:"sla"`
	AgreementStatus *string    `json:"agreement_status"`
	ResponseBy      *time.Time `json:"response_by"`
	ResolutionBy    *time.Time `json:"resolution_by"`
	Breached        bool       `json:"breached"`
}

// WhatIfTotals sums a what-if run.
type WhatIfTotals struct {
	Tickets          int      `json:"tickets"`
	WithSLAActual    int      `json:"with_sla_actual"`
	BreachedActual   int      `json:"breached_actual"`
	BreachedWhatIf   int      `json:"breached_what_if"`
	ComplianceActual *float64 `json:"compliance_actual"` // % of tickets with an SLA not breached
	ComplianceWhatIf *float64 `json:"compliance_what_if"`
	Changed          int      `json:"changed"`
	NewlyBreached    int      `json:"newly_breached"`
	NoLongerBreached int      `json:"no_longer_breached"`
}

// WhatIfReport is the result of replaying tickets under another SLA.
type WhatIfReport struct {
	SLA         string         `json:"sla"`
	EvaluatedAt time.Time      `json:"evaluated_at"`
	Totals      WhatIfTotals   `json:"totals"`
	Tickets     []WhatIfTicket `json:"tickets"`
}

// WhatIf replays recorded ticket histories as if sla had been the only SLA all along:
// every recorded SLA selection and reset is replayed with sla instead (with the
// ticket's own priority, or sla's default priority). It folds events one at a time in
// store order, so a run over the whole store holds two small states per ticket and no
// history; nothing is written anywhere.
type WhatIf struct {
	sla     *domain.SLA
	at      time.Time
	actual  domain.SLALookup
	include func(ticketID string) bool
	tickets map[string]*whatIfPair
	order   []*whatIfPair
}

type whatIfPair struct {
	recorded, hypothetical TicketState
	priority               string
	done                   bool // an event after the evaluation instant was seen
}

// NewWhatIf prepares a run evaluated at instant at; actual resolves recorded SLAs and
// include selects tickets (nil: all).
func NewWhatIf(sla *domain.SLA, at time.Time, actual domain.SLALookup, include func(string) bool) *WhatIf {
	return &WhatIf{sla: sla, at: at.UTC(), actual: actual, include: include, tickets: make(map[string]*whatIfPair)}
}

func (w *WhatIf) lookup(name string, version int) (*domain.SLA, bool) {
	if version == whatIfVersion {
		return w.sla, true
	}
	return w.actual(name, version)
}

// Apply folds one event; events of other streams are ignored.
func (w *WhatIf) Apply(e domain.Event) {
	id := domain.TicketIDFromStream(e.Stream)
	if id == "" || (w.include != nil && !w.include(id)) {
		return
	}
	p := w.tickets[id]
	if p == nil {
		// A ticket created after the evaluation instant did not exist then.
		if _, ok := e.Payload.(domain.TicketCreated); !ok || e.OccurredAt.After(w.at) {
			return
		}
		p = &whatIfPair{}
		w.tickets[strings.Clone(id)] = p // not a view of the event's buffer (DecodeEventNoCopy)
		w.order = append(w.order, p)
	}
	if p.done || e.OccurredAt.After(w.at) {
		p.done = true
		return
	}
	p.recorded.Apply(e, w.actual)
	p.hypothetical.Apply(w.underSLA(p, e), w.lookup)
}

// underSLA rewrites the SLA selection an event records (creation, priority and type
// changes, resets) to name the hypothetical SLA.
func (w *WhatIf) underSLA(p *whatIfPair, e domain.Event) domain.Event {
	choose := func() string {
		if _, ok := w.sla.Priority(p.priority); ok {
			return p.priority
		}
		return w.sla.DefaultPriority().Name
	}
	hypothetical := func() domain.SLASelection {
		return domain.SLASelection{SLA: w.sla.Name(), SLAVersion: whatIfVersion, Priority: choose()}
	}
	switch pl := e.Payload.(type) {
	case domain.TicketCreated:
		p.priority = pl.Priority
		pl.SLA = hypothetical()
		e.Payload = pl
	case domain.PriorityChanged:
		p.priority = pl.To
		pl.SLA = hypothetical()
		e.Payload = pl
	case domain.TypeChanged:
		pl.SLA = hypothetical()
		e.Payload = pl
	case domain.SLAReset:
		pl.SLA, pl.SLAVersion, pl.Priority = w.sla.Name(), whatIfVersion, choose()
		e.Payload = pl
	}
	return e
}

// Report compares every ticket seen.
func (w *WhatIf) Report() WhatIfReport {
	report := WhatIfReport{SLA: w.sla.Name(), EvaluatedAt: w.at, Tickets: []WhatIfTicket{}}
	tot := &report.Totals
	for _, p := range w.order {
		t := WhatIfTicket{ID: p.recorded.ID, Number: p.recorded.Number, Actual: outcome(&p.recorded, w.at), WhatIf: outcome(&p.hypothetical, w.at)}
		t.Changed = !sameOutcome(t.Actual, t.WhatIf)
		report.Tickets = append(report.Tickets, t)
		tot.Tickets++
		if t.Actual.SLA != nil {
			tot.WithSLAActual++
		}
		if t.Actual.Breached {
			tot.BreachedActual++
		}
		if t.WhatIf.Breached {
			tot.BreachedWhatIf++
		}
		if t.Changed {
			tot.Changed++
		}
		if t.WhatIf.Breached && !t.Actual.Breached {
			tot.NewlyBreached++
		}
		if t.Actual.Breached && !t.WhatIf.Breached {
			tot.NoLongerBreached++
		}
	}
	if tot.WithSLAActual > 0 {
		c := 100 * float64(tot.WithSLAActual-tot.BreachedActual) / float64(tot.WithSLAActual)
		tot.ComplianceActual = &c
	}
	if tot.Tickets > 0 {
		c := 100 * float64(tot.Tickets-tot.BreachedWhatIf) / float64(tot.Tickets)
		tot.ComplianceWhatIf = &c
	}
	return report
}

func outcome(t *TicketState, at time.Time) WhatIfOutcome {
	v := t.View(at, false)
	return WhatIfOutcome{
		SLA: v.SLA, AgreementStatus: v.AgreementStatus, ResponseBy: v.ResponseBy, ResolutionBy: v.ResolutionBy,
		Breached: v.AgreementStatus != nil && *v.AgreementStatus == domain.AgreementFailed,
	}
}

func sameOutcome(a, b WhatIfOutcome) bool {
	return eqPtr(a.AgreementStatus, b.AgreementStatus) && eqTime(a.ResponseBy, b.ResponseBy) && eqTime(a.ResolutionBy, b.ResolutionBy)
}

func eqPtr(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func eqTime(a, b *time.Time) bool { return (a == nil) == (b == nil) && (a == nil || a.Equal(*b)) }

// MatchingIDs returns the ids of the tickets matching f (all pages), for a what-if run.
func (m *Tickets) MatchingIDs(f Filter, at time.Time) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var ids []string
	for _, t := range m.order {
		if f.matches(t, at) {
			ids = append(ids, t.ID)
		}
	}
	return ids
}
