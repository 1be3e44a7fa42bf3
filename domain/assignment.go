package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Assignment rules (ERPNext's "Assignment Rule") give tickets an assignee without a
// person deciding: reference data in the catalogue stream catalogue-assignment-rules,
// applied by the automation reactor of ticketd (commands.Automation). Every assignment
// a rule makes is recorded as ticket.assigned with the rule's name, so that replaying
// the events never runs a rule again: a rule decides once, and the event is the
// decision. Round robin turns are taken through each rule's own cursor stream with
// optimistic concurrency, so that several processes never hand out the same turn. See
// docs/automation.md.

// AssignmentRulesStream is the stream of the assignment rule catalogue.
const AssignmentRulesStream = "catalogue-assignment-rules"

// AssignmentMethod says how a rule picks the assignee.
type AssignmentMethod string

const (
	// MethodRoundRobin gives the rule's users turns in their order.
	MethodRoundRobin AssignmentMethod = "round_robin"
	// MethodLoadBalancing picks the user with the fewest open tickets assigned (ties: the
	// first in the rule's order).
	MethodLoadBalancing AssignmentMethod = "load_balancing"
	// MethodByField maps the value of a ticket field to a user or team.
	MethodByField AssignmentMethod = "by_field"
)

// Limits of a rule.
const (
	MaxRuleUsers     = 1000
	MaxRuleCondition = 10_000
)

// AssignmentRuleDefinition is an assignment rule as people write it.
type AssignmentRuleDefinition struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Enabled is nil or true for a rule that applies; false keeps it without effect.
	Enabled *bool `json:"enabled,omitempty"`
	// Priority orders the rules: the lowest applies first; equal priorities go by name.
	Priority int `json:"priority"`
	// Condition is an expr-lang boolean expression over the ticket fields of an SLA
	// condition and status, e.g. `ticket_type == "Bug" && priority == "High"`; empty
	// matches every ticket.
	Condition string `json:"condition,omitempty"`
	// UnassignCondition, when it holds, removes the assignee this rule gave, e.g.
	// `status == "Closed"`; empty never unassigns. A rule never assigns a ticket its
	// unassign condition holds for.
	UnassignCondition string           `json:"unassign_condition,omitempty"`
	Method            AssignmentMethod `json:"method"`
	// Users are the assignees of round_robin and load_balancing, in turn order.
	Users []string `json:"users,omitempty"`
	// Field is the ticket field the by_field method reads, e.g. ticket_type.
	Field string `json:"field,omitempty"`
	// FieldMap is the by_field assignee (a user or a team) of each value of Field. A
	// value not in the map makes the rule not apply, and the next rule is tried.
	FieldMap map[string]string `json:"field_map,omitempty"`
}

func (d AssignmentRuleDefinition) clone() AssignmentRuleDefinition {
	out := d
	out.Enabled = clonePointer(d.Enabled)
	out.Users = slices.Clone(d.Users)
	if d.FieldMap != nil {
		out.FieldMap = maps.Clone(d.FieldMap)
	}
	return out
}

func (d AssignmentRuleDefinition) equal(o AssignmentRuleDefinition) bool {
	enabled := func(p *bool) bool { return p == nil || *p }
	return d.Name == o.Name && d.Description == o.Description && enabled(d.Enabled) == enabled(o.Enabled) &&
		d.Priority == o.Priority && d.Condition == o.Condition && d.UnassignCondition == o.UnassignCondition &&
		d.Method == o.Method && slices.Equal(d.Users, o.Users) && d.Field == o.Field && maps.Equal(d.FieldMap, o.FieldMap)
}

// assignmentFields are the identifiers of rule conditions: those of SLA conditions,
// and the ticket's status.
var assignmentFields = append(slices.Clone(conditionFields), "status")

// RuleFields are the values a rule's conditions see: the SLA condition fields of the
// ticket and its status.
func RuleFields(f TicketFieldsData, status Status) TicketFields {
	fields := f.SelectionFields()
	fields["status"] = string(status)
	return fields
}

func assignmentEnv(fields TicketFields) map[string]any {
	env := make(map[string]any, len(assignmentFields))
	for _, name := range assignmentFields {
		env[name] = fields[name]
	}
	return env
}

// AssignmentRule is a compiled rule. It is immutable and safe for concurrent use.
type AssignmentRule struct {
	def       AssignmentRuleDefinition
	condition *vm.Program // nil: every ticket
	unassign  *vm.Program // nil: never
}

// CompileAssignmentRule validates a definition and compiles its conditions. Every
// problem is reported in one *ValidationError; expression errors carry their line and
// column, e.g. "condition: line 1, column 13: unknown name tiket_type".
func CompileAssignmentRule(def AssignmentRuleDefinition) (*AssignmentRule, error) {
	def = def.clone()
	var v ValidationError
	if strings.TrimSpace(def.Name) == "" {
		v.Add("name", "is required")
	} else if len(def.Name) > MaxNameLen {
		v.Add("name", "is longer than %d characters", MaxNameLen)
	}
	if len(def.Description) > 10_000 {
		v.Add("description", "is longer than 10000 bytes")
	}
	if def.Priority < 0 || def.Priority > 1_000_000 {
		v.Add("priority", "must be between 0 and 1000000")
	}
	r := &AssignmentRule{def: def}
	r.condition = compileRuleExpr(&v, "condition", def.Condition)
	r.unassign = compileRuleExpr(&v, "unassign_condition", def.UnassignCondition)
	switch def.Method {
	case MethodRoundRobin, MethodLoadBalancing:
		if len(def.Users) == 0 {
			v.Add("users", "needs at least one user for %s", def.Method)
		}
		if def.Field != "" || len(def.FieldMap) > 0 {
			v.Add("field", "field and field_map are for the by_field method only")
		}
	case MethodByField:
		if len(def.Users) > 0 {
			v.Add("users", "the by_field method takes its users from field_map")
		}
		if !slices.Contains(conditionFields, def.Field) {
			v.Add("field", "must be one of %s", strings.Join(conditionFields, ", "))
		}
		if len(def.FieldMap) == 0 {
			v.Add("field_map", "needs at least one value and its assignee")
		}
		if len(def.FieldMap) > MaxRuleUsers {
			v.Add("field_map", "has more than %d values", MaxRuleUsers)
		}
		for _, value := range slices.Sorted(maps.Keys(def.FieldMap)) {
			if err := requireName("field_map", def.FieldMap[value]); err != nil {
				v.Add(fmt.Sprintf("field_map[%q]", value), "the assignee is required and at most %d characters", MaxNameLen)
			}
		}
	default:
		v.Add("method", "must be one of round_robin, load_balancing, by_field")
	}
	if len(def.Users) > MaxRuleUsers {
		v.Add("users", "has more than %d users", MaxRuleUsers)
	}
	for i, u := range def.Users {
		field := fmt.Sprintf("users[%d]", i)
		if err := requireName(field, u); err != nil {
			v.Add(field, "is required and at most %d characters", MaxNameLen)
		} else if j := slices.Index(def.Users, u); j < i {
			v.Add(field, "repeats users[%d] %q", j, u)
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return r, nil
}

// compileRuleExpr compiles a rule condition as SLA conditions are compiled (expr-lang,
// boolean, known identifiers only), with the status among the identifiers.
func compileRuleExpr(v *ValidationError, field, source string) *vm.Program {
	if strings.TrimSpace(source) == "" {
		return nil
	}
	if len(source) > MaxRuleCondition {
		v.Add(field, "is longer than %d bytes", MaxRuleCondition)
		return nil
	}
	program, err := expr.Compile(source, expr.Env(assignmentEnv(nil)), expr.AsBool())
	if err != nil {
		var exprErr *file.Error
		if errors.As(err, &exprErr) {
			v.Add(field, "line %d, column %d: %s", exprErr.Line, exprErr.Column+1, exprErr.Message)
		} else {
			v.Add(field, "%v", err)
		}
		return nil
	}
	return program
}

// Definition returns a copy of the definition.
func (r *AssignmentRule) Definition() AssignmentRuleDefinition { return r.def.clone() }

// Name is the rule's name.
func (r *AssignmentRule) Name() string { return r.def.Name }

// Enabled reports whether the rule applies at all.
func (r *AssignmentRule) Enabled() bool { return r.def.Enabled == nil || *r.def.Enabled }

// Priority orders rules, lowest first.
func (r *AssignmentRule) Priority() int { return r.def.Priority }

// Method is how the rule picks the assignee.
func (r *AssignmentRule) Method() AssignmentMethod { return r.def.Method }

// Users are the round robin and load balancing assignees, in order.
func (r *AssignmentRule) Users() []string { return slices.Clone(r.def.Users) }

func runBool(p *vm.Program, fields TicketFields, empty bool) bool {
	if p == nil {
		return empty
	}
	out, err := expr.Run(p, assignmentEnv(fields))
	if err != nil {
		return false
	}
	b, _ := out.(bool)
	return b
}

// Unassigns reports whether the unassign condition holds (false when there is none).
func (r *AssignmentRule) Unassigns(fields TicketFields) bool {
	return runBool(r.unassign, fields, false)
}

// Applies reports whether the rule may assign a ticket with these fields: enabled, its
// condition holds, its unassign condition does not, and for by_field the ticket's
// value has an assignee. A resolved or closed ticket is never assigned by a rule.
func (r *AssignmentRule) Applies(fields TicketFields) bool {
	if !r.Enabled() {
		return false
	}
	if s := Status(fields["status"]); s == StatusResolved || s == StatusClosed {
		return false
	}
	if r.def.Method == MethodByField {
		if _, ok := r.def.FieldMap[fields[r.def.Field]]; !ok {
			return false
		}
	}
	return runBool(r.condition, fields, true) && !r.Unassigns(fields)
}

// FieldAssignee is the by_field assignee of a ticket.
func (r *AssignmentRule) FieldAssignee(fields TicketFields) (string, bool) {
	u, ok := r.def.FieldMap[fields[r.def.Field]]
	return u, ok && r.def.Method == MethodByField
}

// LeastLoaded is the load balancing choice: the user with the fewest open tickets,
// ties broken by the rule's order.
func (r *AssignmentRule) LeastLoaded(open func(user string) int) string {
	best, bestLoad := "", 0
	for i, u := range r.def.Users {
		if n := open(u); i == 0 || n < bestLoad {
			best, bestLoad = u, n
		}
	}
	return best
}

// VersionedAssignmentRule is a rule with the version it was saved as and, in read
// models, the global position of that save.
type VersionedAssignmentRule struct {
	Rule    *AssignmentRule
	Version int
	SavedAt uint64
}

// SelectAssignmentRule returns the first rule, in priority order, that applies to a
// ticket (rules must be in priority order, as AssignmentRulesState.Rules keeps them).
// changedAt is the global position of the ticket's last event: a rule applies only to
// tickets created or changed after its version was saved (SavedAt), so that a new rule
// does not sweep up tickets nobody has touched since; 0 skips that check.
func SelectAssignmentRule(rules []VersionedAssignmentRule, fields TicketFields, changedAt uint64) (VersionedAssignmentRule, bool) {
	for _, r := range rules {
		if changedAt > 0 && changedAt <= r.SavedAt {
			continue
		}
		if r.Rule.Applies(fields) {
			return r, true
		}
	}
	return VersionedAssignmentRule{}, false
}

// AssignmentRuleSaved records a new version of a rule.
type AssignmentRuleSaved struct {
	Version int                      `json:"version"`
	Rule    AssignmentRuleDefinition `json:"rule"`
}

// AssignmentRuleRemoved removes a rule: it assigns and unassigns nothing more. Tickets
// it assigned keep their assignee.
type AssignmentRuleRemoved struct {
	Name string `json:"name"`
}

func (AssignmentRuleSaved) EventType() string   { return "assignment_rule.saved" }
func (AssignmentRuleRemoved) EventType() string { return "assignment_rule.removed" }

// AssignmentRulesState is the rule catalogue: the current rules in priority order.
type AssignmentRulesState struct {
	Version  uint64
	LastHash string
	CommandLog
	Rules    []VersionedAssignmentRule
	versions map[string]int // highest version saved per name, removed rules included
}

// Lookup returns a current rule by name.
func (s *AssignmentRulesState) Lookup(name string) (VersionedAssignmentRule, bool) {
	i := slices.IndexFunc(s.Rules, func(r VersionedAssignmentRule) bool { return r.Rule.Name() == name })
	if i < 0 {
		return VersionedAssignmentRule{}, false
	}
	return s.Rules[i], true
}

// DecideSaveAssignmentRule validates and versions a rule. Saving a rule exactly as it
// is records nothing. Names are unique ignoring case.
func DecideSaveAssignmentRule(s *AssignmentRulesState, def AssignmentRuleDefinition) ([]Payload, error) {
	if _, err := CompileAssignmentRule(def); err != nil {
		return nil, err
	}
	for _, r := range s.Rules {
		if strings.EqualFold(r.Rule.Name(), def.Name) && r.Rule.Name() != def.Name {
			return nil, fmt.Errorf("assignment rule %q already exists: %w", r.Rule.Name(), ErrConflict)
		}
	}
	if cur, ok := s.Lookup(def.Name); ok && cur.Rule.def.equal(def) {
		return nil, nil
	}
	return []Payload{AssignmentRuleSaved{Version: s.versions[def.Name] + 1, Rule: def.clone()}}, nil
}

// DecideRemoveAssignmentRule removes a current rule.
func DecideRemoveAssignmentRule(s *AssignmentRulesState, name string) ([]Payload, error) {
	if _, ok := s.Lookup(name); !ok {
		return nil, fmt.Errorf("assignment rule %q: %w", name, ErrNotFound)
	}
	return []Payload{AssignmentRuleRemoved{Name: name}}, nil
}

// EvolveAssignmentRules applies a catalogue event at global position pos (0 when
// unknown). A definition that no longer compiles is kept out of the rules.
func EvolveAssignmentRules(s *AssignmentRulesState, e Event, pos uint64) {
	s.Version, s.LastHash = e.Sequence, e.Hash
	s.record(e)
	switch p := e.Payload.(type) {
	case AssignmentRuleSaved:
		s.versions = cloneMap(s.versions)
		s.versions[p.Rule.Name] = max(s.versions[p.Rule.Name], p.Version)
		rules := slices.DeleteFunc(slices.Clone(s.Rules), func(r VersionedAssignmentRule) bool { return r.Rule.Name() == p.Rule.Name })
		if r, err := CompileAssignmentRule(p.Rule); err == nil {
			rules = append(rules, VersionedAssignmentRule{Rule: r, Version: p.Version, SavedAt: pos})
		}
		slices.SortStableFunc(rules, func(a, b VersionedAssignmentRule) int {
			if a.Rule.Priority() != b.Rule.Priority() {
				return a.Rule.Priority() - b.Rule.Priority()
			}
			return strings.Compare(a.Rule.Name(), b.Rule.Name())
		})
		s.Rules = rules // replaced, never changed in place: snapshots stay valid
	case AssignmentRuleRemoved:
		s.Rules = slices.DeleteFunc(slices.Clone(s.Rules), func(r VersionedAssignmentRule) bool { return r.Rule.Name() == p.Name })
	}
}

// Round robin turns. Each rule has a cursor stream holding one event per turn given;
// a turn is taken by appending to it at the revision it was read at, so two processes
// never give out the same slot, and the users get their turns in order.

// AssignmentCursorStream is the cursor stream of a rule:
// assignment-rule-<slug of the name>-<8 hex digits of its SHA-256>-cursor, a valid
// stream name whatever characters the rule's name holds.
func AssignmentCursorStream(rule string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(rule) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 60 {
			break
		}
	}
	slug := strings.TrimRight(b.String(), "-")
	sum := sha256.Sum256([]byte(rule))
	if slug == "" {
		return "assignment-rule-" + hex.EncodeToString(sum[:4]) + "-cursor"
	}
	return "assignment-rule-" + slug + "-" + hex.EncodeToString(sum[:4]) + "-cursor"
}

// AssignmentSlotTaken records that round robin slot Slot of a rule went to User for a
// ticket. The envelope's command_id is the assignment's command ID, so a retried
// assignment finds its slot instead of taking another.
type AssignmentSlotTaken struct {
	Rule        string `json:"rule"`
	RuleVersion int    `json:"rule_version"`
	TicketID    string `json:"ticket_id"`
	User        string `json:"user"`
	Slot        uint64 `json:"slot"`
}

func (AssignmentSlotTaken) EventType() string { return "assignment_rule.slot_taken" }

// cursorMemory is how many recent slots a cursor remembers by command ID. A retry comes
// seconds after its first attempt, many slots earlier at most.
const cursorMemory = 4096

// AssignmentCursor is a rule's round robin state.
type AssignmentCursor struct {
	Version  uint64
	LastHash string
	Slot     uint64 // the last slot given (0: none yet)
	LastUser string
	recent   map[string]AssignmentSlotTaken // by command ID, the last cursorMemory slots
	order    []string                       // command IDs of recent, oldest first
}

// Taken returns the slot a command took, if it is among the recent ones.
func (c *AssignmentCursor) Taken(commandID string) (AssignmentSlotTaken, bool) {
	s, ok := c.recent[commandID]
	return s, ok
}

// DecideTakeSlot gives the next turn: the user after the last one given, in the rule's
// current order (the first user when the last one is no longer in the list).
func DecideTakeSlot(c *AssignmentCursor, rule VersionedAssignmentRule, ticketID string) (AssignmentSlotTaken, error) {
	users := rule.Rule.def.Users
	if rule.Rule.Method() != MethodRoundRobin || len(users) == 0 {
		return AssignmentSlotTaken{}, Invalid("method", "rule %q does not assign by round robin", rule.Rule.Name())
	}
	next := users[0]
	if i := slices.Index(users, c.LastUser); i >= 0 {
		next = users[(i+1)%len(users)]
	}
	return AssignmentSlotTaken{Rule: rule.Rule.Name(), RuleVersion: rule.Version, TicketID: ticketID, User: next, Slot: c.Slot + 1}, nil
}

// EvolveAssignmentCursor applies a cursor event.
func EvolveAssignmentCursor(c *AssignmentCursor, e Event) {
	c.Version, c.LastHash = e.Sequence, e.Hash
	p, ok := e.Payload.(AssignmentSlotTaken)
	if !ok {
		return
	}
	c.Slot, c.LastUser = p.Slot, p.User
	if e.CommandID == "" {
		return
	}
	if c.recent == nil {
		c.recent = make(map[string]AssignmentSlotTaken)
	}
	c.recent[e.CommandID] = p
	c.order = append(c.order, e.CommandID)
	if len(c.order) > 2*cursorMemory {
		for _, id := range c.order[:len(c.order)-cursorMemory] {
			delete(c.recent, id)
		}
		c.order = slices.Clone(c.order[len(c.order)-cursorMemory:])
	}
}

// Ticket commands of the assignment rules. They are not part of the HTTP API: the
// automation reactor sends them with command IDs derived from the facts that made them
// due (see commands.Automation).

// AssignByRule assigns a ticket on behalf of a rule. The decision checks again, on the
// ticket's current state, that the rule applies and that the ticket has no assignee.
type AssignByRule struct {
	Assignee    string
	Rule        *AssignmentRule
	RuleVersion int
}

// UnassignByRule removes the assignee a rule gave, when its unassign condition holds.
type UnassignByRule struct {
	Assignee string
	Rule     *AssignmentRule
}

func (AssignByRule) CommandName() string   { return "assign_by_rule" }
func (UnassignByRule) CommandName() string { return "unassign_by_rule" }

func (c AssignByRule) decideTicket(t *Ticket, _ Decision) ([]Payload, error) {
	if err := requireName("assignee", c.Assignee); err != nil {
		return nil, err
	}
	if c.Rule == nil {
		return nil, Invalid("rule", "is required")
	}
	if len(t.Assignees) > 0 {
		return nil, fmt.Errorf("the ticket is already assigned to %s: %w", strings.Join(t.Assignees, ", "), ErrConflict)
	}
	if t.Status == StatusResolved || t.Status == StatusClosed {
		return nil, &TransitionError{Action: "assign by rule", From: t.Status}
	}
	if !c.Rule.Applies(RuleFields(t.Fields, t.Status)) {
		return nil, fmt.Errorf("assignment rule %q does not apply to the ticket: %w", c.Rule.Name(), ErrInvalidTransition)
	}
	return []Payload{TicketAssigned{Assignee: c.Assignee, Rule: c.Rule.Name()}}, nil
}

func (c UnassignByRule) decideTicket(t *Ticket, _ Decision) ([]Payload, error) {
	if c.Rule == nil {
		return nil, Invalid("rule", "is required")
	}
	if !slices.Contains(t.Assignees, c.Assignee) {
		return nil, Invalid("assignee", "%q is not assigned to this ticket", c.Assignee)
	}
	if !c.Rule.Unassigns(RuleFields(t.Fields, t.Status)) {
		return nil, fmt.Errorf("the unassign condition of rule %q does not hold: %w", c.Rule.Name(), ErrInvalidTransition)
	}
	return []Payload{TicketUnassigned{Assignee: c.Assignee, Rule: c.Rule.Name()}}, nil
}

// ticketDecider is a ticket command that decides itself: DecideTicket hands such
// commands their decision, so that commands can live in their own files.
type ticketDecider interface {
	TicketCommand
	decideTicket(t *Ticket, d Decision) ([]Payload, error)
}

// What the automation reactor reads from its read model (projections.Automation).

// AssignmentCandidate is a ticket without assignee that is neither resolved nor closed.
type AssignmentCandidate struct {
	TicketID string
	Fields   TicketFields // RuleFields: the condition fields and the status
	// ChangedAt is the global position of the ticket's last event.
	ChangedAt uint64
	// UnassignedSince is the ticket version since which it has had no assignee: 1 for a
	// ticket never assigned, else the version of the ticket.unassigned that removed the
	// last assignee. It is part of the assignment's command ID.
	UnassignedSince uint64
}

// RuleAssignment is an assignee a rule gave and that is still assigned.
type RuleAssignment struct {
	TicketID string
	Assignee string
	Rule     string
	// AssignedAt is the ticket version of the ticket.assigned event; it is part of the
	// unassignment's command ID.
	AssignedAt uint64
	Fields     TicketFields
	// ChangedAt is the global position of the ticket's last event.
	ChangedAt uint64
}

// AssignmentSnapshot is one consistent look at the read model.
type AssignmentSnapshot struct {
	// Rules are the current rules in priority order, with the position they were saved at.
	Rules       []VersionedAssignmentRule
	Candidates  []AssignmentCandidate
	Assignments []RuleAssignment
	// OpenTickets counts, per assignee, the tickets neither resolved nor closed.
	OpenTickets map[string]int
}
