package commands

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/ticketcore/ticketcore/domain"
)

// Actors of the automation's events.
const (
	automationActor     = "system:assignment"
	unrepliedAlertActor = "system:unreplied-alert"
)

// AutomationSource is the read model the automation follows (projections.Automation).
type AutomationSource interface {
	// AssignmentSnapshot returns the rules, the tickets a rule may assign (no assignee,
	// neither resolved nor closed), the assignees rules gave, and the open-ticket count
	// of each assignee, in one consistent look. skip, when it returns true for a ticket
	// at its last change, leaves the ticket out (nothing has changed since it was last
	// found to need nothing).
	AssignmentSnapshot(skip func(ticketID string, changedAt uint64) bool) domain.AssignmentSnapshot
	// DueUnrepliedAlerts lists the waiting customer messages that have waited minutes
	// or more at instant now and have no alert yet.
	DueUnrepliedAlerts(now time.Time, minutes int) []domain.DueUnrepliedAlert
}

// Automation is the reactor of the assignment rules and of the unreplied alert. It
// follows the read model and sends commands whose IDs derive from the facts that made
// them due, like the scheduler: several processes running it, restarts and retries
// record each effect once. Replaying events never runs it: its decisions are events.
type Automation struct {
	h       *Handler
	src     AutomationSource
	cursors cursors
	// settled remembers the tickets found to need nothing, at their last change, under
	// the rules fingerprint settledRules: they are skipped until they or the rules change.
	settled      map[string]uint64
	settledRules string
}

// NewAutomation returns the reactor of a handler over a read model.
func NewAutomation(h *Handler, src AutomationSource) *Automation {
	return &Automation{h: h, src: src, settled: map[string]uint64{}}
}

// AutomationReport counts what one pass did (duplicates, i.e. effects another process
// or an earlier attempt had already recorded, are not counted).
type AutomationReport struct {
	Assigned, Unassigned, Alerts int
}

// Run makes a pass every interval until ctx ends.
func (a *Automation) Run(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		a.RunOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// RunOnce applies the rules and records the due unreplied alerts, once. It is not safe
// to call concurrently on one Automation (use one per process).
func (a *Automation) RunOnce(ctx context.Context) AutomationReport {
	var report AutomationReport
	a.assign(ctx, &report)
	a.alert(ctx, &report)
	return report
}

func rulesFingerprint(rules []domain.VersionedAssignmentRule) string {
	var b strings.Builder
	for _, r := range rules {
		fmt.Fprintf(&b, "%s\x00%d\x00%d\x00", r.Rule.Name(), r.Version, r.SavedAt)
	}
	return b.String()
}

func (a *Automation) assign(ctx context.Context, report *AutomationReport) {
	next := make(map[string]uint64, len(a.settled))
	snap := a.src.AssignmentSnapshot(func(id string, changedAt uint64) bool {
		if at, ok := a.settled[id]; ok && at == changedAt {
			next[id] = at
			return true
		}
		return false
	})
	if fp := rulesFingerprint(snap.Rules); fp != a.settledRules {
		// The rules changed: what was settled under the old ones may not be.
		a.settledRules, next = fp, map[string]uint64{}
		snap = a.src.AssignmentSnapshot(nil)
	}
	defer func() { a.settled = next }()
	if len(snap.Rules) == 0 {
		return
	}
	rules := make(map[string]domain.VersionedAssignmentRule, len(snap.Rules))
	for _, r := range snap.Rules {
		rules[r.Rule.Name()] = r
	}

	// Unassign: the assignees whose rule's unassign condition holds.
	busy := map[string]bool{}
	for _, as := range snap.Assignments {
		if ctx.Err() != nil {
			return
		}
		r, ok := rules[as.Rule]
		if !ok || !r.Rule.Enabled() || !r.Rule.Unassigns(as.Fields) {
			continue
		}
		busy[as.TicketID] = true
		meta := Meta{CommandID: UnassignmentCommandID(as.TicketID, as.Rule, as.Assignee, as.AssignedAt), Actor: automationActor}
		res, err := a.h.Execute(ctx, as.TicketID, domain.UnassignByRule{Assignee: as.Assignee, Rule: r.Rule}, meta)
		if err != nil {
			a.logRefusal("unassign by rule", as.TicketID, as.Rule, err)
			continue
		}
		if !res.Duplicate {
			report.Unassigned++
		}
	}
	for _, as := range snap.Assignments {
		if !busy[as.TicketID] {
			next[as.TicketID] = as.ChangedAt
		}
	}

	// Assign: the first rule, in priority order, that applies to a ticket without
	// assignee. Load balancing reads the open-ticket counts of the read model, which does
	// not show this pass's own assignments yet: they are counted here.
	open := maps.Clone(snap.OpenTickets)
	if open == nil {
		open = map[string]int{}
	}
	for _, c := range snap.Candidates {
		if ctx.Err() != nil {
			return
		}
		r, ok := domain.SelectAssignmentRule(snap.Rules, c.Fields, c.ChangedAt)
		if !ok {
			next[c.TicketID] = c.ChangedAt
			continue
		}
		user, err := a.pickUser(ctx, r, c, open)
		if err != nil {
			a.h.log.Warn("assignment rule: pick a user", "ticket", c.TicketID, "rule", r.Rule.Name(), "err", err)
			continue
		}
		meta := Meta{CommandID: AssignmentCommandID(c.TicketID, r.Rule.Name(), r.Version, c.UnassignedSince), Actor: automationActor}
		res, err := a.h.Execute(ctx, c.TicketID, domain.AssignByRule{Assignee: user, Rule: r.Rule, RuleVersion: r.Version}, meta)
		if err != nil {
			a.logRefusal("assign by rule", c.TicketID, r.Rule.Name(), err)
			continue
		}
		if !res.Duplicate {
			report.Assigned++
			open[user]++
		}
	}
}

// pickUser applies the rule's method.
func (a *Automation) pickUser(ctx context.Context, r domain.VersionedAssignmentRule, c domain.AssignmentCandidate, open map[string]int) (string, error) {
	switch r.Rule.Method() {
	case domain.MethodRoundRobin:
		cmd := AssignmentCommandID(c.TicketID, r.Rule.Name(), r.Version, c.UnassignedSince)
		slot, err := a.h.takeSlot(ctx, &a.cursors, r, c.TicketID, cmd)
		return slot.User, err
	case domain.MethodLoadBalancing:
		return r.Rule.LeastLoaded(func(u string) int { return open[u] }), nil
	case domain.MethodByField:
		if u, ok := r.Rule.FieldAssignee(c.Fields); ok {
			return u, nil
		}
		return "", fmt.Errorf("no assignee for the ticket's value: %w", domain.ErrValidation)
	}
	return "", fmt.Errorf("unknown method %q: %w", r.Rule.Method(), domain.ErrValidation)
}

// logRefusal logs a refused automatic command. A refusal because the ticket changed
// since the read model showed it (assigned meanwhile, the rule no longer applies) is
// expected: the next pass looks at the fresh state.
func (a *Automation) logRefusal(what, ticketID, rule string, err error) {
	if errors.Is(err, domain.ErrConflict) || errors.Is(err, domain.ErrInvalidTransition) || errors.Is(err, domain.ErrValidation) {
		a.h.log.Debug(what+": not applied", "ticket", ticketID, "rule", rule, "err", err)
		return
	}
	a.h.log.Warn(what, "ticket", ticketID, "rule", rule, "err", err)
}

// alert records the due unreplied alerts, once per waiting message.
func (a *Automation) alert(ctx context.Context, report *AutomationReport) {
	minutes := a.h.ref.Settings().UnrepliedAlertMinutes
	if minutes <= 0 {
		return
	}
	for _, d := range a.src.DueUnrepliedAlerts(a.h.now(), minutes) {
		if ctx.Err() != nil {
			return
		}
		meta := Meta{CommandID: UnrepliedAlertCommandID(d.TicketID, d.MessageID), Actor: unrepliedAlertActor}
		res, err := a.h.Execute(ctx, d.TicketID, domain.RecordUnrepliedAlert{MessageID: d.MessageID}, meta)
		if err != nil {
			if errors.Is(err, domain.ErrInvalidTransition) {
				a.h.log.Debug("unreplied alert: not due", "ticket", d.TicketID, "message", d.MessageID, "err", err)
			} else if ctx.Err() == nil {
				a.h.log.Warn("unreplied alert", "ticket", d.TicketID, "message", d.MessageID, "err", err)
			}
			continue
		}
		if !res.Duplicate {
			report.Alerts++
		}
	}
}
