package domain

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// SLAPriority is the response and resolution targets of one ticket priority, in
// business time.
type SLAPriority struct {
	Name       string   `json:"name"`
	Response   Duration `json:"response"`
	Resolution Duration `json:"resolution"`
	Default    bool     `json:"default,omitempty"`
}

// SLADefinition is a service level agreement as people write it. The nil pointers and
// slices mean the defaults documented on each field.
type SLADefinition struct {
	Name    string `json:"name"`
	Enabled *bool  `json:"enabled,omitempty"` // nil: enabled
	Default bool   `json:"default"`
	// ValidFrom and ValidUntil are inclusive dates ("2006-01-02") in the calendar's
	// time zone; empty means unbounded.
	ValidFrom  string `json:"valid_from,omitempty"`
	ValidUntil string `json:"valid_until,omitempty"`
	// Condition is an expr-lang boolean expression over the ticket fields listed on
	// TicketFields, e.g. `ticket_type == "Critical"`; empty matches every ticket.
	Condition  string        `json:"condition,omitempty"`
	Calendar   CalendarSpec  `json:"calendar"`
	Priorities []SLAPriority `json:"priorities"`
	// PauseOn and FulfilledOn are nil for their defaults ("On Hold"; "Resolved" and
	// "Closed"). omitzero, unlike omitempty, keeps an explicit empty PauseOn (nothing
	// pauses the clock) from turning into the default when the JSON is read back.
	PauseOn           []Status `json:"pause_on,omitzero"`
	FulfilledOn       []Status `json:"fulfilled_on,omitzero"`
	ApplyToResolution *bool    `json:"apply_to_resolution,omitempty"` // nil: applies
}

// clone returns a deep copy, so that a compiled SLA cannot be changed through the
// definition it was compiled from.
func (d SLADefinition) clone() SLADefinition {
	out := d
	out.Enabled = clonePointer(d.Enabled)
	out.ApplyToResolution = clonePointer(d.ApplyToResolution)
	out.Calendar = d.Calendar.clone()
	out.Priorities = slices.Clone(d.Priorities)
	out.PauseOn = slices.Clone(d.PauseOn)
	out.FulfilledOn = slices.Clone(d.FulfilledOn)
	return out
}

func clonePointer[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// StatusClass is what a status means for an SLA's clock.
type StatusClass int

const (
	ClassRunning   StatusClass = iota // the clock runs
	ClassPaused                       // the clock is paused (hold)
	ClassFulfilled                    // the agreement is fulfilled (resolution)
)

// TicketFields are the ticket values an SLA condition sees, by name: ticket_type,
// priority, customer, customer_group, territory, company, project, channel,
// raised_by, contact, lead, email_account and subject. A missing key reads as "".
type TicketFields map[string]string

// conditionFields are the identifiers a condition may use; any other is refused when
// the SLA is compiled, so a typo cannot silently make a condition false.
var conditionFields = []string{
	"ticket_type", "priority", "customer", "customer_group", "territory", "company",
	"project", "channel", "raised_by", "contact", "lead", "email_account", "subject",
}

// conditionEnv is the expr environment of fields: every condition field, as a string.
func conditionEnv(fields TicketFields) map[string]any {
	env := make(map[string]any, len(conditionFields))
	for _, name := range conditionFields {
		env[name] = fields[name]
	}
	return env
}

// SLA is a compiled service level agreement. It is immutable and safe for concurrent
// use.
type SLA struct {
	def               SLADefinition
	calendar          *Calendar
	priorities        []SLAPriority // Default is set on exactly one
	defaultPriority   SLAPriority
	pauseOn           []Status
	fulfilledOn       []Status
	enabled           bool
	applyToResolution bool
	// validFrom and validUntil are inclusive local dates as days since 1970-01-01.
	validFrom, validUntil int64
	condition             *vm.Program // nil: matches every ticket
}

// CompileSLA validates def and compiles it. Every problem found is reported in one
// *ValidationError, with field paths such as "priorities[1].resolution" or
// "calendar.hours.Monday[0]".
func CompileSLA(def SLADefinition) (*SLA, error) {
	var verr ValidationError
	def = def.clone()
	s := &SLA{
		def:               def,
		enabled:           def.Enabled == nil || *def.Enabled,
		applyToResolution: def.ApplyToResolution == nil || *def.ApplyToResolution,
		pauseOn:           def.PauseOn,
		fulfilledOn:       def.FulfilledOn,
	}
	if s.pauseOn == nil {
		s.pauseOn = []Status{StatusOnHold}
	}
	if s.fulfilledOn == nil {
		s.fulfilledOn = []Status{StatusResolved, StatusClosed}
	}

	if strings.TrimSpace(def.Name) == "" {
		verr.Add("name", "is required")
	}
	calendar, err := NewCalendar(def.Calendar)
	var calendarErr *ValidationError
	if errors.As(err, &calendarErr) {
		for _, f := range calendarErr.Fields {
			verr.Add("calendar."+f.Field, "%s", f.Message)
		}
	}
	s.calendar = calendar
	s.priorities, s.defaultPriority = checkPriorities(&verr, def.Priorities, s.applyToResolution)
	checkStatuses(&verr, s.pauseOn, s.fulfilledOn)
	s.validFrom = parseDay(&verr, "valid_from", def.ValidFrom, math.MinInt64)
	s.validUntil = parseDay(&verr, "valid_until", def.ValidUntil, math.MaxInt64)
	if s.validFrom > s.validUntil {
		verr.Add("valid_until", "%s is before valid_from %s", def.ValidUntil, def.ValidFrom)
	}
	s.condition = compileCondition(&verr, def.Condition, def.Default)

	if err := verr.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// checkPriorities validates the priorities and returns them with Default set on the
// default one, and that one.
func checkPriorities(verr *ValidationError, given []SLAPriority, applyToResolution bool) ([]SLAPriority, SLAPriority) {
	if len(given) == 0 {
		verr.Add("priorities", "needs at least one priority")
		return nil, SLAPriority{}
	}
	priorities := slices.Clone(given)
	byName := make(map[string]int, len(priorities))
	defaultIndex := -1
	for i, p := range priorities {
		field := fmt.Sprintf("priorities[%d]", i)
		if strings.TrimSpace(p.Name) == "" {
			verr.Add(field+".name", "is required")
		} else if first, dup := byName[strings.ToLower(p.Name)]; dup {
			// Case-insensitive: "High" and "high" in one agreement is a mistake.
			verr.Add(field+".name", "repeats priorities[%d] %q", first, priorities[first].Name)
		} else {
			byName[strings.ToLower(p.Name)] = i
		}
		if p.Response <= 0 {
			verr.Add(field+".response", "must be positive")
		}
		checkResolution(verr, field+".resolution", p, applyToResolution)
		if p.Default {
			if defaultIndex >= 0 {
				verr.Add(field+".default", "priorities[%d] is already the default", defaultIndex)
			} else {
				defaultIndex = i
			}
		}
	}
	if defaultIndex < 0 {
		if len(priorities) > 1 {
			verr.Add("priorities", "one priority must be the default, for tickets without a priority")
			return priorities, SLAPriority{}
		}
		defaultIndex = 0
		priorities[0].Default = true
	}
	return priorities, priorities[defaultIndex]
}

// checkResolution validates a priority's resolution target. It may be left at zero
// when the resolution target does not apply.
func checkResolution(verr *ValidationError, field string, p SLAPriority, applyToResolution bool) {
	switch {
	case p.Resolution < 0:
		verr.Add(field, "must not be negative")
	case applyToResolution && p.Resolution == 0:
		verr.Add(field, "must be positive when the resolution target applies")
	case applyToResolution && p.Resolution < p.Response:
		verr.Add(field, "%s is shorter than the response target %s", p.Resolution, p.Response)
	}
}

// checkStatuses validates the paused and fulfilled statuses (defaults applied).
func checkStatuses(verr *ValidationError, pauseOn, fulfilledOn []Status) {
	checkStatusList(verr, "pause_on", pauseOn)
	checkStatusList(verr, "fulfilled_on", fulfilledOn)
	if len(fulfilledOn) == 0 {
		verr.Add("fulfilled_on", "needs at least one status, or the agreement could never be fulfilled")
	}
	for i, s := range fulfilledOn {
		if slices.Contains(pauseOn, s) {
			verr.Add(fmt.Sprintf("fulfilled_on[%d]", i), "%q is also in pause_on; a status either pauses or fulfils", s)
		}
	}
}

// checkStatusList validates one list of statuses.
func checkStatusList(verr *ValidationError, field string, statuses []Status) {
	for i, s := range statuses {
		path := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !s.Valid():
			verr.Add(path, "%q is not a status", s)
		case s == StatusOpen:
			verr.Add(path, "Open is the status of new and reopened tickets; its clock must run")
		case slices.Index(statuses, s) < i:
			verr.Add(path, "repeats %q", s)
		}
	}
}

// parseDay reads an optional date as days since 1970-01-01, or unbounded when empty.
func parseDay(verr *ValidationError, field, date string, unbounded int64) int64 {
	if date == "" {
		return unbounded
	}
	d, err := time.Parse(time.DateOnly, date)
	if err != nil {
		verr.Add(field, "%q is not a date YYYY-MM-DD", date)
		return unbounded
	}
	return d.Unix() / secondsPerDay
}

// compileCondition compiles a condition against the ticket fields. A default SLA
// applies exactly when no other does, so a condition on it would be ignored: it is
// refused instead.
func compileCondition(verr *ValidationError, source string, isDefault bool) *vm.Program {
	if strings.TrimSpace(source) == "" {
		return nil
	}
	if isDefault {
		verr.Add("condition", "a default agreement applies when no other does, so it cannot have a condition")
		return nil
	}
	program, err := expr.Compile(source, expr.Env(conditionEnv(nil)), expr.AsBool())
	if err != nil {
		var exprErr *file.Error
		if errors.As(err, &exprErr) {
			verr.Add("condition", "line %d, column %d: %s", exprErr.Line, exprErr.Column+1, exprErr.Message)
		} else {
			verr.Add("condition", "%v", err)
		}
		return nil
	}
	return program
}

// Definition returns a copy of the definition the SLA was compiled from.
func (s *SLA) Definition() SLADefinition { return s.def.clone() }

// Name is the SLA's name.
func (s *SLA) Name() string { return s.def.Name }

// Calendar is the business calendar of the SLA's targets.
func (s *SLA) Calendar() *Calendar { return s.calendar }

// Priority returns the targets of the named priority.
func (s *SLA) Priority(name string) (SLAPriority, bool) {
	i := slices.IndexFunc(s.priorities, func(p SLAPriority) bool { return p.Name == name })
	if i < 0 {
		return SLAPriority{}, false
	}
	return s.priorities[i], true
}

// DefaultPriority is the priority of tickets that have none.
func (s *SLA) DefaultPriority() SLAPriority { return s.defaultPriority }

// ClassOf says whether s runs, pauses or fulfils this SLA's clock.
func (s *SLA) ClassOf(status Status) StatusClass {
	switch {
	case slices.Contains(s.fulfilledOn, status):
		return ClassFulfilled
	case slices.Contains(s.pauseOn, status):
		return ClassPaused
	default:
		return ClassRunning
	}
}

// AppliesToResolution reports whether the resolution target is tracked at all.
func (s *SLA) AppliesToResolution() bool { return s.applyToResolution }

// Enabled reports whether the SLA takes part in selection.
func (s *SLA) Enabled() bool { return s.enabled }

// ValidAt reports whether t's date, in the calendar's time zone, is within the
// validity dates.
func (s *SLA) ValidAt(t time.Time) bool {
	_, offset := t.In(s.calendar.Location()).Zone()
	day := floorDiv(t.Unix()+int64(offset), secondsPerDay)
	return s.validFrom <= day && day <= s.validUntil
}

// Matches reports whether the ticket satisfies the condition. A condition that fails
// at run time does not match: selection then falls back to other SLAs.
func (s *SLA) Matches(fields TicketFields) bool {
	if s.condition == nil {
		return true
	}
	out, err := expr.Run(s.condition, conditionEnv(fields))
	if err != nil {
		return false
	}
	matched, _ := out.(bool)
	return matched
}

// SelectSLA chooses the SLA of a ticket at instant at: among the enabled candidates
// valid at that date, in order, the first non-default one whose condition holds,
// else the first default one, else nil.
func SelectSLA(candidates []*SLA, fields TicketFields, at time.Time) *SLA {
	var fallback *SLA
	for _, s := range candidates {
		if !s.Enabled() || !s.ValidAt(at) {
			continue
		}
		if s.def.Default {
			if fallback == nil {
				fallback = s
			}
			continue
		}
		if s.Matches(fields) {
			return s
		}
	}
	return fallback
}

// ValidateSLASet checks rules that span SLAs: names are unique (ignoring case) and at
// most one enabled SLA is the default. Field paths are "slas[i].name" and
// "slas[i].default", i indexing defs.
func ValidateSLASet(defs []SLADefinition) error {
	var verr ValidationError
	byName := make(map[string]int, len(defs))
	defaultIndex := -1
	for i, d := range defs {
		key := strings.ToLower(strings.TrimSpace(d.Name))
		if first, dup := byName[key]; dup {
			verr.Add(fmt.Sprintf("slas[%d].name", i), "%q repeats slas[%d] %q", d.Name, first, defs[first].Name)
		} else {
			byName[key] = i
		}
		enabled := d.Enabled == nil || *d.Enabled
		if !d.Default || !enabled {
			continue
		}
		if defaultIndex >= 0 {
			verr.Add(fmt.Sprintf("slas[%d].default", i), "%q is already the default agreement", defs[defaultIndex].Name)
		} else {
			defaultIndex = i
		}
	}
	return verr.Err()
}
