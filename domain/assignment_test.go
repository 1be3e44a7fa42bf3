package domain_test

// Tests of the assignment rules and the unreplied alert: rule validation (with the
// position of an expression error), rule selection (priority order, conditions,
// unassign conditions, methods), round robin turns, the rule catalogue, and the
// decisions of the automatic ticket commands.

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/domain"
)

func enabled(b bool) *bool { return &b }

func mustRule(t *testing.T, def domain.AssignmentRuleDefinition, version int, savedAt uint64) domain.VersionedAssignmentRule {
	t.Helper()
	r, err := domain.CompileAssignmentRule(def)
	if err != nil {
		t.Fatalf("CompileAssignmentRule(%s): %v", def.Name, err)
	}
	return domain.VersionedAssignmentRule{Rule: r, Version: version, SavedAt: savedAt}
}

func roundRobin(name string, priority int, condition string, users ...string) domain.AssignmentRuleDefinition {
	return domain.AssignmentRuleDefinition{Name: name, Priority: priority, Condition: condition, Method: domain.MethodRoundRobin, Users: users}
}

func ruleFields(ticketType, priority string, status domain.Status) domain.TicketFields {
	f := fields()
	f.TicketType, f.Priority = ticketType, priority
	return domain.RuleFields(f, status)
}

func fieldErrors(t *testing.T, err error) map[string]string {
	t.Helper()
	var v *domain.ValidationError
	if !errors.As(err, &v) {
		t.Fatalf("error %v is not a validation error", err)
	}
	out := map[string]string{}
	for _, f := range v.Fields {
		out[f.Field] = f.Message
	}
	return out
}

func TestCompileAssignmentRuleValidation(t *testing.T) {
	cases := []struct {
		name string
		def  domain.AssignmentRuleDefinition
		want map[string]string // field -> part of the message
	}{
		{"bad expression with its position",
			roundRobin("R", 1, `ticket_type == "Bug" &&`, "a"),
			map[string]string{"condition": "line 1, column 23: unexpected token EOF"}},
		{"unknown field",
			roundRobin("R", 1, `tiket_type == "Bug"`, "a"),
			map[string]string{"condition": "line 1, column 1: unknown name tiket_type"}},
		{"not boolean",
			domain.AssignmentRuleDefinition{Name: "R", Method: domain.MethodRoundRobin, Users: []string{"a"}, UnassignCondition: `status`},
			map[string]string{"unassign_condition": "expected bool"}},
		{"no users, no name, bad priority",
			domain.AssignmentRuleDefinition{Method: domain.MethodLoadBalancing, Priority: -1},
			map[string]string{"name": "is required", "users": "at least one user", "priority": "between 0"}},
		{"repeated user",
			roundRobin("R", 1, "", "a", "b", "a"),
			map[string]string{"users[2]": `repeats users[0] "a"`}},
		{"unknown method",
			domain.AssignmentRuleDefinition{Name: "R", Method: "random", Users: []string{"a"}},
			map[string]string{"method": "round_robin, load_balancing, by_field"}},
		{"by_field needs a known field and a map, no users",
			domain.AssignmentRuleDefinition{Name: "R", Method: domain.MethodByField, Field: "colour", Users: []string{"a"}},
			map[string]string{"field": "must be one of", "field_map": "at least one value", "users": "field_map"}},
		{"field map on round robin",
			domain.AssignmentRuleDefinition{Name: "R", Method: domain.MethodRoundRobin, Users: []string{"a"}, Field: "ticket_type"},
			map[string]string{"field": "by_field method only"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := domain.CompileAssignmentRule(c.def)
			if !errors.Is(err, domain.ErrValidation) {
				t.Fatalf("err = %v, want a validation error", err)
			}
			got := fieldErrors(t, err)
			for field, part := range c.want {
				if !strings.Contains(got[field], part) {
					t.Errorf("%s: %q does not contain %q (all: %v)", field, got[field], part, got)
				}
			}
		})
	}
	// The status is a condition field of rules (not of SLAs).
	if _, err := domain.CompileAssignmentRule(domain.AssignmentRuleDefinition{Name: "R", Method: domain.MethodByField,
		Field: "ticket_type", FieldMap: map[string]string{"Bug": "dev"}, Condition: `status == "Open"`, UnassignCondition: `status in ["Resolved", "Closed"]`}); err != nil {
		t.Fatal(err)
	}
}

func TestSelectAssignmentRule(t *testing.T) {
	bugs := mustRule(t, roundRobin("Bugs", 10, `ticket_type == "Bug"`, "ann", "bob"), 1, 100)
	urgent := mustRule(t, roundRobin("Urgent", 5, `priority == "High"`, "zoe"), 1, 100)
	closing := mustRule(t, domain.AssignmentRuleDefinition{Name: "Closing", Priority: 1, Method: domain.MethodLoadBalancing,
		Users: []string{"x"}, Condition: `ticket_type == "Question"`, UnassignCondition: `priority == "Low"`}, 1, 100)
	off := roundRobin("Off", 0, "", "nobody")
	off.Enabled = enabled(false)
	disabled := mustRule(t, off, 1, 100)
	byType := mustRule(t, domain.AssignmentRuleDefinition{Name: "By type", Priority: 20, Method: domain.MethodByField,
		Field: "ticket_type", FieldMap: map[string]string{"Bug": "dev-team", "Question": "helpdesk"}}, 1, 100)
	rules := []domain.VersionedAssignmentRule{disabled, closing, urgent, bugs, byType} // priority order

	cases := []struct {
		name     string
		fields   domain.TicketFields
		changed  uint64
		wantRule string
	}{
		{"the lowest priority that matches wins", ruleFields("Bug", "High", domain.StatusOpen), 200, "Urgent"},
		{"condition", ruleFields("Bug", "Low", domain.StatusOpen), 200, "Bugs"},
		{"a rule whose unassign condition holds does not assign; by_field maps the type", ruleFields("Question", "Low", domain.StatusOpen), 200, "By type"},
		{"same without the unassign condition", ruleFields("Question", "Medium", domain.StatusOpen), 200, "Closing"},
		{"no rule and no mapped value", ruleFields("", "Low", domain.StatusOpen), 200, ""},
		{"resolved tickets are not assigned", ruleFields("Bug", "High", domain.StatusResolved), 200, ""},
		{"closed tickets are not assigned", ruleFields("Bug", "High", domain.StatusClosed), 200, ""},
		{"replied tickets are", ruleFields("Bug", "Low", domain.StatusReplied), 200, "Bugs"},
		{"a ticket unchanged since the rules were saved is left alone", ruleFields("Bug", "High", domain.StatusOpen), 50, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, ok := domain.SelectAssignmentRule(rules, c.fields, c.changed)
			got := ""
			if ok {
				got = r.Rule.Name()
			}
			if got != c.wantRule {
				t.Fatalf("rule %q, want %q", got, c.wantRule)
			}
		})
	}
	if u, ok := byType.Rule.FieldAssignee(ruleFields("Bug", "Low", domain.StatusOpen)); !ok || u != "dev-team" {
		t.Fatalf("by_field assignee %q %v", u, ok)
	}
}

func TestLeastLoaded(t *testing.T) {
	r := mustRule(t, domain.AssignmentRuleDefinition{Name: "LB", Method: domain.MethodLoadBalancing, Users: []string{"ann", "bob", "cid"}}, 1, 0)
	for _, c := range []struct {
		open map[string]int
		want string
	}{
		{map[string]int{}, "ann"},
		{map[string]int{"ann": 1}, "bob"},
		{map[string]int{"ann": 2, "bob": 1, "cid": 1}, "bob"}, // tie: the rule's order
		{map[string]int{"ann": 0, "bob": 0, "cid": 0}, "ann"},
		{map[string]int{"ann": 3, "bob": 2, "cid": 0, "other": 0}, "cid"},
	} {
		if got := r.Rule.LeastLoaded(func(u string) int { return c.open[u] }); got != c.want {
			t.Errorf("open %v: %s, want %s", c.open, got, c.want)
		}
	}
}

// cursorEvents folds slot events into a cursor, as the store would return them.
func takeSlots(t *testing.T, c *domain.AssignmentCursor, rule domain.VersionedAssignmentRule, n int, first int) []string {
	t.Helper()
	var users []string
	for i := range n {
		slot, err := domain.DecideTakeSlot(c, rule, fmt.Sprint("ticket-", first+i))
		if err != nil {
			t.Fatal(err)
		}
		events, err := domain.NewEvents(domain.AssignmentCursorStream(rule.Rule.Name()), c.Version, c.LastHash,
			domain.Metadata{CommandID: fmt.Sprint("cmd-", first+i), At: t0}, func(int) string { return fmt.Sprint("e-", first+i) }, []domain.Payload{slot})
		if err != nil {
			t.Fatal(err)
		}
		domain.EvolveAssignmentCursor(c, events[0])
		users = append(users, slot.User)
	}
	return users
}

func TestRoundRobinTurns(t *testing.T) {
	var c domain.AssignmentCursor
	v1 := mustRule(t, roundRobin("RR", 1, "", "ann", "bob", "cid"), 1, 0)
	if got := strings.Join(takeSlots(t, &c, v1, 7, 0), ","); got != "ann,bob,cid,ann,bob,cid,ann" {
		t.Fatalf("turns %s", got)
	}
	if c.Slot != 7 || c.LastUser != "ann" {
		t.Fatalf("cursor %+v", c)
	}
	if s, ok := c.Taken("cmd-2"); !ok || s.User != "cid" || s.Slot != 3 || s.TicketID != "ticket-2" {
		t.Fatalf("slot of cmd-2: %+v %v", s, ok)
	}
	// A new version of the list continues after the last user given.
	v2 := mustRule(t, roundRobin("RR", 1, "", "ann", "dan", "bob"), 2, 0)
	if got := strings.Join(takeSlots(t, &c, v2, 4, 7), ","); got != "dan,bob,ann,dan" {
		t.Fatalf("turns after the change %s", got)
	}
	// The last user removed from the list: the first user is next.
	v3 := mustRule(t, roundRobin("RR", 1, "", "bob", "cid"), 3, 0)
	if got := strings.Join(takeSlots(t, &c, v3, 3, 11), ","); got != "bob,cid,bob" {
		t.Fatalf("turns after removing the last user %s", got)
	}
	if _, err := domain.DecideTakeSlot(&c, mustRule(t, domain.AssignmentRuleDefinition{Name: "LB", Method: domain.MethodLoadBalancing, Users: []string{"a"}}, 1, 0), "x"); !errors.Is(err, domain.ErrValidation) {
		t.Fatalf("slot of a load balancing rule: %v", err)
	}
}

func TestAssignmentCursorStream(t *testing.T) {
	for name, want := range map[string]string{
		"Support Round Robin":    "assignment-rule-support-round-robin-",
		"Été / Köln!":            "assignment-rule-t-k-ln-",
		"!!!":                    "assignment-rule-",
		strings.Repeat("x", 200): "assignment-rule-" + strings.Repeat("x", 60) + "-",
	} {
		got := domain.AssignmentCursorStream(name)
		if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "-cursor") || len(got) > 200 {
			t.Errorf("%q: %s", name, got)
		}
		for _, r := range got {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				t.Errorf("%q: %s has %q", name, got, r)
			}
		}
	}
	if domain.AssignmentCursorStream("A b") == domain.AssignmentCursorStream("a-b") {
		t.Fatal("two names share a cursor")
	}
}

// rulesHistory folds catalogue payloads into a rules state.
func rulesHistory(t *testing.T, payloads ...domain.Payload) *domain.AssignmentRulesState {
	t.Helper()
	s := &domain.AssignmentRulesState{}
	events, err := domain.NewEvents(domain.AssignmentRulesStream, 0, "", domain.Metadata{CommandID: "c", At: t0},
		func(i int) string { return fmt.Sprint("r-", i) }, payloads)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range events {
		domain.EvolveAssignmentRules(s, e, uint64(10*(i+1)))
	}
	return s
}

func TestAssignmentRuleCatalogue(t *testing.T) {
	a := roundRobin("A", 5, "", "ann")
	b := roundRobin("B", 1, "", "bob")
	s := rulesHistory(t, domain.AssignmentRuleSaved{Version: 1, Rule: a}, domain.AssignmentRuleSaved{Version: 1, Rule: b})
	if len(s.Rules) != 2 || s.Rules[0].Rule.Name() != "B" || s.Rules[1].SavedAt != 10 {
		t.Fatalf("rules %+v", s.Rules)
	}
	// Unchanged: nothing to record.
	if ps, err := domain.DecideSaveAssignmentRule(s, a); err != nil || len(ps) != 0 {
		t.Fatalf("unchanged save: %v %v", ps, err)
	}
	// Changed: the next version.
	a2 := a
	a2.Users = []string{"ann", "cid"}
	ps, err := domain.DecideSaveAssignmentRule(s, a2)
	if err != nil || len(ps) != 1 || ps[0].(domain.AssignmentRuleSaved).Version != 2 {
		t.Fatalf("changed save: %v %v", ps, err)
	}
	// Names are unique ignoring case.
	if _, err := domain.DecideSaveAssignmentRule(s, roundRobin("a", 1, "", "x")); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("same name in another case: %v", err)
	}
	// Invalid rules are refused with their fields.
	if _, err := domain.DecideSaveAssignmentRule(s, roundRobin("C", 1, "priority ==", "x")); !errors.Is(err, domain.ErrValidation) {
		t.Fatalf("invalid rule: %v", err)
	}
	// Removal, and a later save under the same name continues the versions.
	if _, err := domain.DecideRemoveAssignmentRule(s, "Z"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("remove unknown: %v", err)
	}
	s = rulesHistory(t, domain.AssignmentRuleSaved{Version: 1, Rule: a}, domain.AssignmentRuleRemoved{Name: "A"})
	if len(s.Rules) != 0 {
		t.Fatalf("rules after removal %+v", s.Rules)
	}
	if ps, err := domain.DecideSaveAssignmentRule(s, a); err != nil || ps[0].(domain.AssignmentRuleSaved).Version != 2 {
		t.Fatalf("save after removal: %v %v", ps, err)
	}
}

func TestAssignByRuleDecision(t *testing.T) {
	bugs := mustRule(t, domain.AssignmentRuleDefinition{Name: "Bugs", Method: domain.MethodRoundRobin, Users: []string{"ann"},
		Condition: `priority == "Low"`, UnassignCondition: `status == "Closed"`}, 1, 0)
	ref := newRef()
	cmd := domain.AssignByRule{Assignee: "ann", Rule: bugs.Rule, RuleVersion: 1}

	got, err := decide(given(created()), cmd, t0, ref)
	if err != nil {
		t.Fatal(err)
	}
	assertEvents(t, got, []domain.Payload{domain.TicketAssigned{Assignee: "ann", Rule: "Bugs"}})

	// Someone was assigned meanwhile: the rule does not add a second assignee.
	if _, err := decide(given(created(), domain.TicketAssigned{Assignee: "bob"}), cmd, t0, ref); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("assigned ticket: %v", err)
	}
	// The ticket changed so that the rule no longer applies.
	if _, err := decide(given(created(), domain.PriorityChanged{From: "Low", To: "High"}), cmd, t0, ref); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("rule no longer applies: %v", err)
	}
	if _, err := decide(given(created(), domain.TicketClosed{ClosedBy: domain.ClosedByAgent}), cmd, t0, ref); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("closed ticket: %v", err)
	}

	un := domain.UnassignByRule{Assignee: "ann", Rule: bugs.Rule}
	assigned := given(created(), domain.TicketAssigned{Assignee: "ann", Rule: "Bugs"})
	if _, err := decide(assigned, un, t0, ref); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("unassign while the condition does not hold: %v", err)
	}
	closed := given(created(), domain.TicketAssigned{Assignee: "ann", Rule: "Bugs"}, domain.TicketClosed{ClosedBy: domain.ClosedByAgent})
	got, err = decide(closed, un, t0, ref)
	if err != nil {
		t.Fatal(err)
	}
	assertEvents(t, got, []domain.Payload{domain.TicketUnassigned{Assignee: "ann", Rule: "Bugs"}})
	if after := evolve(closed, t0, got); len(after.Assignees) != 0 {
		t.Fatalf("assignees after %v", after.Assignees)
	}
	if _, err := decide(given(created(), domain.TicketClosed{ClosedBy: domain.ClosedByAgent}), un, t0, ref); !errors.Is(err, domain.ErrValidation) {
		t.Fatalf("unassign someone not assigned: %v", err)
	}
}

func TestUnrepliedAlertDecision(t *testing.T) {
	ref := newRef().withSettings(domain.SupportSettings{UnrepliedAlertMinutes: 30})
	// created at t0 (opening message m-open), a reply at t0+1m, a customer message at t0+2m.
	waiting := given(created(), reply("r1"), customerMessage("m2"))
	m2At := t0.Add(2 * time.Minute)

	got, err := decide(waiting, domain.RecordUnrepliedAlert{MessageID: "m2"}, m2At.Add(30*time.Minute), ref)
	if err != nil {
		t.Fatal(err)
	}
	assertEvents(t, got, []domain.Payload{domain.UnrepliedAlert{MessageID: "m2", WaitingSince: m2At, ThresholdMinutes: 30}})

	refusals := []struct {
		name  string
		state *domain.Ticket
		msg   string
		now   time.Time
		ref   domain.Reference
	}{
		{"too early", waiting, "m2", m2At.Add(29 * time.Minute), ref},
		{"disabled", waiting, "m2", m2At.Add(time.Hour), newRef()},
		{"a reply came first", given(created(), reply("r1"), customerMessage("m2"), reply("r2")), "m2", m2At.Add(time.Hour), ref},
		{"not the first message of the wait", given(created(), reply("r1"), customerMessage("m2"), customerMessage("m3")), "m3", m2At.Add(time.Hour), ref},
		{"on hold", given(created(), reply("r1"), customerMessage("m2"), domain.PutOnHold{}), "m2", m2At.Add(time.Hour), ref},
	}
	for _, c := range refusals {
		if _, err := decide(c.state, domain.RecordUnrepliedAlert{MessageID: c.msg}, c.now, c.ref); !errors.Is(err, domain.ErrInvalidTransition) {
			t.Errorf("%s: %v, want an invalid transition", c.name, err)
		}
	}
	// The opening message waits from the creation; a reopen restarts the count.
	fresh := given(created())
	if _, err := decide(fresh, domain.RecordUnrepliedAlert{MessageID: "m-open"}, t0.Add(30*time.Minute), ref); err != nil {
		t.Fatalf("opening message: %v", err)
	}
	reopened := given(created(), domain.TicketResolved{}, at(t0.Add(10*time.Hour), domain.TicketReopened{}))
	if _, err := decide(reopened, domain.RecordUnrepliedAlert{MessageID: "m-open"}, t0.Add(10*time.Hour+29*time.Minute), ref); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("reopened, 29 minutes: %v", err)
	}
	got, err = decide(reopened, domain.RecordUnrepliedAlert{MessageID: "m-open"}, t0.Add(10*time.Hour+30*time.Minute), ref)
	if err != nil || got[0].(domain.UnrepliedAlert).WaitingSince != t0.Add(10*time.Hour) {
		t.Fatalf("reopened, 30 minutes: %v %v", got, err)
	}
}

func TestSettingsUnrepliedAlertMinutes(t *testing.T) {
	s := domain.NewSettingsState()
	for _, bad := range []int{-1, domain.MaxUnrepliedAlertMinutes + 1} {
		_, err := domain.DecideSettings(s, domain.SupportSettings{AutoCloseDays: 7, UnrepliedAlertMinutes: bad})
		if !errors.Is(err, domain.ErrValidation) || fieldErrors(t, err)["unreplied_alert_minutes"] == "" {
			t.Errorf("%d: %v", bad, err)
		}
	}
	ps, err := domain.DecideSettings(s, domain.SupportSettings{AutoCloseDays: 7, UnrepliedAlertMinutes: 45})
	if err != nil || ps[0].(domain.SupportSettingsChanged).UnrepliedAlertMinutes != 45 {
		t.Fatalf("%v %v", ps, err)
	}
}
