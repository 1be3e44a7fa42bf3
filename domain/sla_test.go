package domain

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// acceptanceDir holds the shared acceptance scenarios, relative to this package.
const acceptanceDir = "../../shared/acceptance"

// loadAcceptanceSLAs decodes the "slas" of every scenario, refusing unknown keys so
// that the types cannot silently drop a field the scenarios rely on.
func loadAcceptanceSLAs(t *testing.T) map[string][]SLADefinition {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(acceptanceDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in %s: %v", acceptanceDir, err)
	}
	out := make(map[string][]SLADefinition, len(files))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var scenario struct {
			SLAs json.RawMessage `json:"slas"`
		}
		if err := json.Unmarshal(data, &scenario); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		dec := json.NewDecoder(bytes.NewReader(scenario.SLAs))
		dec.DisallowUnknownFields()
		var defs []SLADefinition
		if err := dec.Decode(&defs); err != nil {
			t.Fatalf("%s: slas: %v", file, err)
		}
		out[filepath.Base(file)] = defs
	}
	return out
}

func compileAll(t *testing.T, defs []SLADefinition) []*SLA {
	t.Helper()
	slas := make([]*SLA, len(defs))
	for i, def := range defs {
		s, err := CompileSLA(def)
		if err != nil {
			t.Fatalf("CompileSLA(%s): %v", def.Name, err)
		}
		slas[i] = s
	}
	return slas
}

func TestSLAAcceptanceDefinitionsCompile(t *testing.T) {
	for file, defs := range loadAcceptanceSLAs(t) {
		t.Run(file, func(t *testing.T) {
			if len(defs) == 0 {
				t.Fatal("no slas")
			}
			if err := ValidateSLASet(defs); err != nil {
				t.Errorf("ValidateSLASet: %v", err)
			}
			for _, s := range compileAll(t, defs) {
				// Definition survives a JSON round trip unchanged.
				data, err := json.Marshal(s.Definition())
				if err != nil {
					t.Fatal(err)
				}
				var back SLADefinition
				if err := json.Unmarshal(data, &back); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(back, s.Definition()) {
					t.Errorf("%s: round trip changed the definition:\n%+v\n%+v", s.Name(), back, s.Definition())
				}
			}
		})
	}
}

// TestSLADefinitionJSONKeepsExplicitEmptyPauseOn: "pause_on": [] (nothing pauses)
// must not come back as the default On Hold.
func TestSLADefinitionJSONKeepsExplicitEmptyPauseOn(t *testing.T) {
	def := validSLA()
	def.PauseOn = []Status{}
	data, err := json.Marshal(def)
	if err != nil {
		t.Fatal(err)
	}
	var back SLADefinition
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	s, err := CompileSLA(back)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ClassOf(StatusOnHold); got != ClassRunning {
		t.Errorf("after a JSON round trip On Hold is %v, want running (%s)", got, data)
	}
}

func TestSLASelectionOfTheScenarios(t *testing.T) {
	all := loadAcceptanceSLAs(t)
	at := mustTime(t, "2019-03-04T12:00:00Z")
	for _, tc := range []struct {
		file   string
		fields TicketFields
		want   string
	}{
		{"deadlines-business-hours.json", TicketFields{"customer": "_Test Customer"}, "Customer"},
		{"deadlines-business-hours.json", TicketFields{"customer": "Someone Else"}, "Default"},
		{"deadlines-business-hours.json", nil, "Default"},
		{"reopen-after-close.json", TicketFields{"ticket_type": "Critical"}, "24-hour"},
		{"reopen-after-close.json", TicketFields{"ticket_type": "Question"}, "Default"},
		{"hold-extends-resolution.json", TicketFields{"priority": "High"}, "Helpdesk"},
	} {
		got := SelectSLA(compileAll(t, all[tc.file]), tc.fields, at)
		if got == nil || got.Name() != tc.want {
			t.Errorf("%s with %v: selected %s, want %s", tc.file, tc.fields, slaName(got), tc.want)
		}
	}
}

// validSLA is a definition that compiles; tests break one rule of it at a time.
func validSLA() SLADefinition {
	return SLADefinition{
		Name:     "Standard",
		Calendar: CalendarSpec{Timezone: "UTC", Hours: weekHours(workdays, [2]string{"09:00", "17:00"})},
		Priorities: []SLAPriority{
			{Name: "Low", Response: Duration(8 * time.Hour), Resolution: Duration(40 * time.Hour)},
			{Name: "Medium", Response: Duration(4 * time.Hour), Resolution: Duration(16 * time.Hour), Default: true},
			{Name: "High", Response: Duration(time.Hour), Resolution: Duration(4 * time.Hour)},
		},
	}
}

func slaName(s *SLA) string {
	if s == nil {
		return "no SLA"
	}
	return s.Name()
}

func ptr[T any](v T) *T { return &v }

func TestCompileSLAValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*SLADefinition)
		fields []string
		// message, when set, must appear in the first field's message.
		message string
	}{
		{"no name", func(d *SLADefinition) { d.Name = " " }, []string{"name"}, ""},
		{"calendar", func(d *SLADefinition) {
			d.Calendar.Timezone = "Nowhere/Special"
			d.Calendar.Hours["Monday"] = [][2]string{{"09:00", "25:00"}}
		}, []string{"calendar.timezone", "calendar.hours.Monday[0]"}, ""},
		{"no priorities", func(d *SLADefinition) { d.Priorities = nil }, []string{"priorities"}, ""},
		{"unnamed priority", func(d *SLADefinition) { d.Priorities[1].Name = "" }, []string{"priorities[1].name"}, ""},
		{"zero response", func(d *SLADefinition) { d.Priorities[0].Response = 0 }, []string{"priorities[0].response"}, ""},
		{"negative response", func(d *SLADefinition) { d.Priorities[2].Response = Duration(-time.Hour) }, []string{"priorities[2].response"}, ""},
		{"zero resolution", func(d *SLADefinition) { d.Priorities[1].Resolution = 0 }, []string{"priorities[1].resolution"}, ""},
		{"resolution before response", func(d *SLADefinition) { d.Priorities[1].Resolution = Duration(time.Hour) }, []string{"priorities[1].resolution"}, "shorter than the response target 4h0m0s"},
		{"negative resolution not applied", func(d *SLADefinition) {
			d.ApplyToResolution = ptr(false)
			d.Priorities[0].Resolution = Duration(-time.Hour)
		}, []string{"priorities[0].resolution"}, ""},
		{"duplicate priority", func(d *SLADefinition) { d.Priorities[2].Name = "low" }, []string{"priorities[2].name"}, "repeats priorities[0]"},
		{"two default priorities", func(d *SLADefinition) { d.Priorities[2].Default = true }, []string{"priorities[2].default"}, ""},
		{"no default priority", func(d *SLADefinition) { d.Priorities[1].Default = false }, []string{"priorities"}, ""},
		{"unknown pause status", func(d *SLADefinition) { d.PauseOn = []Status{"Waiting"} }, []string{"pause_on[0]"}, ""},
		{"Open pauses", func(d *SLADefinition) { d.PauseOn = []Status{StatusOnHold, StatusOpen} }, []string{"pause_on[1]"}, ""},
		{"pause status twice", func(d *SLADefinition) { d.PauseOn = []Status{StatusOnHold, StatusOnHold} }, []string{"pause_on[1]"}, ""},
		{"Open fulfils", func(d *SLADefinition) { d.FulfilledOn = []Status{StatusOpen} }, []string{"fulfilled_on[0]"}, ""},
		{"nothing fulfils", func(d *SLADefinition) { d.FulfilledOn = []Status{} }, []string{"fulfilled_on"}, ""},
		{"status pauses and fulfils", func(d *SLADefinition) {
			d.PauseOn = []Status{StatusReplied, StatusOnHold}
			d.FulfilledOn = []Status{StatusResolved, StatusOnHold}
		}, []string{"fulfilled_on[1]"}, ""},
		{"default pause status fulfils", func(d *SLADefinition) { d.FulfilledOn = []Status{StatusOnHold} }, []string{"fulfilled_on[0]"}, ""},
		{"bad valid_from", func(d *SLADefinition) { d.ValidFrom = "01/02/2026" }, []string{"valid_from"}, ""},
		{"bad valid_until", func(d *SLADefinition) { d.ValidUntil = "2026-13-01" }, []string{"valid_until"}, ""},
		{"validity reversed", func(d *SLADefinition) {
			d.ValidFrom, d.ValidUntil = "2026-02-01", "2026-01-31"
		}, []string{"valid_until"}, ""},
		{"condition syntax", func(d *SLADefinition) { d.Condition = "ticket_type == " }, []string{"condition"}, "line 1, column 15"},
		{"condition on line 2", func(d *SLADefinition) { d.Condition = "ticket_type == \"Bug\" &&\n  custmer == \"x\"" }, []string{"condition"}, "line 2, column 3: unknown name custmer"},
		{"condition unknown identifier", func(d *SLADefinition) { d.Condition = `severity == "high"` }, []string{"condition"}, "unknown name severity"},
		{"condition not boolean", func(d *SLADefinition) { d.Condition = "customer" }, []string{"condition"}, "bool"},
		{"condition on the default", func(d *SLADefinition) {
			d.Default = true
			d.Condition = `customer == "ACME"`
		}, []string{"condition"}, ""},
		{"every problem at once", func(d *SLADefinition) {
			d.Name = ""
			d.Priorities[0].Response = 0
			d.ValidFrom = "tomorrow"
			d.Condition = "("
		}, []string{"name", "priorities[0].response", "valid_from", "condition"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			def := validSLA()
			tc.edit(&def)
			s, err := CompileSLA(def)
			if s != nil {
				t.Errorf("CompileSLA returned an SLA with the error")
			}
			assertFields(t, err, tc.fields...)
			if tc.message != "" && !strings.Contains(err.(*ValidationError).Fields[0].Message, tc.message) {
				t.Errorf("message %q does not contain %q", err.(*ValidationError).Fields[0].Message, tc.message)
			}
		})
	}
}

func TestCompileSLAAccepts(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*SLADefinition)
	}{
		{"as is", func(*SLADefinition) {}},
		{"single priority without a default flag", func(d *SLADefinition) {
			d.Priorities = []SLAPriority{{Name: "Only", Response: Duration(time.Hour), Resolution: Duration(time.Hour)}}
		}},
		{"no resolution target when it does not apply", func(d *SLADefinition) {
			d.ApplyToResolution = ptr(false)
			for i := range d.Priorities {
				d.Priorities[i].Resolution = 0
			}
		}},
		{"nothing pauses", func(d *SLADefinition) { d.PauseOn = []Status{} }},
		{"Replied pauses", func(d *SLADefinition) { d.PauseOn = []Status{StatusReplied} }},
		{"one validity day", func(d *SLADefinition) { d.ValidFrom, d.ValidUntil = "2026-01-31", "2026-01-31" }},
		{"condition over several fields", func(d *SLADefinition) {
			d.Condition = `priority in ["High", "Urgent"] && customer_group != "" || channel startsWith "mail"`
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			def := validSLA()
			tc.edit(&def)
			if _, err := CompileSLA(def); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSLADefaultsAndAccessors(t *testing.T) {
	def := validSLA()
	s, err := CompileSLA(def)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "Standard" || !s.Enabled() || !s.AppliesToResolution() || s.Calendar() == nil {
		t.Errorf("defaults: name %q enabled %v resolution %v", s.Name(), s.Enabled(), s.AppliesToResolution())
	}
	for status, want := range map[Status]StatusClass{
		StatusOpen: ClassRunning, StatusReplied: ClassRunning, StatusOnHold: ClassPaused,
		StatusResolved: ClassFulfilled, StatusClosed: ClassFulfilled,
	} {
		if got := s.ClassOf(status); got != want {
			t.Errorf("default ClassOf(%s) = %v, want %v", status, got, want)
		}
	}
	if p, ok := s.Priority("High"); !ok || time.Duration(p.Response) != time.Hour {
		t.Errorf("Priority(High) = %+v, %v", p, ok)
	}
	if _, ok := s.Priority("Urgent"); ok {
		t.Error("Priority(Urgent) found")
	}
	if p := s.DefaultPriority(); p.Name != "Medium" || !p.Default {
		t.Errorf("DefaultPriority = %+v", p)
	}

	// The SLA keeps its own copy of the definition.
	def.Priorities[1].Name = "Changed"
	def.Calendar.Hours["Monday"][0][0] = "00:00"
	got := s.Definition()
	if got.Priorities[1].Name != "Medium" || got.Calendar.Hours["Monday"][0][0] != "09:00" {
		t.Errorf("Definition shares memory with the input: %+v", got)
	}
	got.Priorities[0].Name = "Changed"
	if s.Definition().Priorities[0].Name != "Low" {
		t.Error("Definition shares memory with the SLA")
	}

	def = validSLA()
	def.Enabled, def.ApplyToResolution = ptr(false), ptr(false)
	def.PauseOn, def.FulfilledOn = []Status{StatusReplied, StatusOnHold}, []Status{StatusClosed}
	def.Priorities = []SLAPriority{{Name: "Only", Response: Duration(time.Hour)}}
	s, err = CompileSLA(def)
	if err != nil {
		t.Fatal(err)
	}
	if s.Enabled() || s.AppliesToResolution() {
		t.Errorf("enabled %v, applies to resolution %v; want false, false", s.Enabled(), s.AppliesToResolution())
	}
	if s.ClassOf(StatusReplied) != ClassPaused || s.ClassOf(StatusResolved) != ClassRunning || s.ClassOf(StatusClosed) != ClassFulfilled {
		t.Error("ClassOf ignores pause_on / fulfilled_on")
	}
	if p := s.DefaultPriority(); p.Name != "Only" || !p.Default {
		t.Errorf("DefaultPriority of a single priority = %+v", p)
	}
	if p, _ := s.Priority("Only"); !p.Default {
		t.Error("Priority does not mark the single priority as the default")
	}
}

func TestSLAValidAtUsesTheCalendarZone(t *testing.T) {
	def := validSLA()
	def.Calendar.Timezone = "Pacific/Auckland" // UTC+13 in January
	def.ValidFrom, def.ValidUntil = "2026-01-01", "2026-01-31"
	s, err := CompileSLA(def)
	if err != nil {
		t.Fatal(err)
	}
	for instant, want := range map[string]bool{
		"2025-12-31T10:59:59Z": false, // 23:59:59 on 31 December in Auckland
		"2025-12-31T11:00:00Z": true,  // midnight, 1 January
		"2026-01-31T10:59:59Z": true,  // the last second of 31 January
		"2026-01-31T11:00:00Z": false, // 1 February
	} {
		if got := s.ValidAt(mustTime(t, instant)); got != want {
			t.Errorf("ValidAt(%s) = %v, want %v", instant, got, want)
		}
	}
	s, err = CompileSLA(validSLA())
	if err != nil {
		t.Fatal(err)
	}
	if !s.ValidAt(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)) || !s.ValidAt(time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("an SLA without validity dates is not always valid")
	}
}

func TestSLAMatches(t *testing.T) {
	def := validSLA()
	def.Condition = `int(customer) > 3`
	s, err := CompileSLA(def)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Matches(TicketFields{"customer": "12"}) {
		t.Error("condition does not hold for 12")
	}
	if s.Matches(TicketFields{"customer": "ACME"}) {
		t.Error("a condition failing at run time matches")
	}
	if s.Matches(nil) {
		t.Error("a missing field is not read as \"\"")
	}
	s, err = CompileSLA(validSLA())
	if err != nil {
		t.Fatal(err)
	}
	if !s.Matches(nil) {
		t.Error("an SLA without a condition does not match")
	}
}

func TestSelectSLA(t *testing.T) {
	at := mustTime(t, "2026-06-15T12:00:00Z")
	build := func(name string, edit func(*SLADefinition)) *SLA {
		def := validSLA()
		def.Name = name
		edit(&def)
		s, err := CompileSLA(def)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	fallback := build("Fallback", func(d *SLADefinition) { d.Default = true })
	expired := build("Expired", func(d *SLADefinition) { d.Default = true; d.ValidUntil = "2026-06-14" })
	gold := build("Gold", func(d *SLADefinition) { d.Condition = `customer_group == "Gold"` })
	acme := build("ACME", func(d *SLADefinition) { d.Condition = `customer == "ACME"` })
	acmeOff := build("ACME off", func(d *SLADefinition) { d.Condition = `customer == "ACME"`; d.Enabled = ptr(false) })
	future := build("Future", func(d *SLADefinition) { d.Condition = `customer == "ACME"`; d.ValidFrom = "2026-06-16" })

	goldACME := TicketFields{"customer": "ACME", "customer_group": "Gold"}
	for _, tc := range []struct {
		name       string
		candidates []*SLA
		fields     TicketFields
		want       *SLA
	}{
		{"first matching in order", []*SLA{fallback, gold, acme}, goldACME, gold},
		{"order decides", []*SLA{acme, gold}, goldACME, acme},
		{"a default listed first does not win", []*SLA{fallback, acme}, TicketFields{"customer": "ACME"}, acme},
		{"disabled and not yet valid are skipped", []*SLA{acmeOff, future, acme}, TicketFields{"customer": "ACME"}, acme},
		{"no match: the default", []*SLA{gold, acme, fallback}, TicketFields{"customer": "Other"}, fallback},
		{"expired default skipped", []*SLA{expired, gold, fallback}, nil, fallback},
		{"nothing applies", []*SLA{gold, expired}, nil, nil},
		{"no candidates", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SelectSLA(tc.candidates, tc.fields, at); got != tc.want {
				t.Errorf("SelectSLA = %s, want %s", slaName(got), slaName(tc.want))
			}
		})
	}
}

func TestValidateSLASet(t *testing.T) {
	named := func(name string, isDefault bool, enabled *bool) SLADefinition {
		def := validSLA()
		def.Name, def.Default, def.Enabled = name, isDefault, enabled
		return def
	}
	if err := ValidateSLASet([]SLADefinition{
		named("Default", true, nil), named("Old default", true, ptr(false)), named("Gold", false, nil),
	}); err != nil {
		t.Errorf("a disabled second default is refused: %v", err)
	}
	assertFields(t, ValidateSLASet([]SLADefinition{
		named("Default", true, nil), named("Gold", false, nil), named("Other default", true, ptr(true)),
	}), "slas[2].default")
	assertFields(t, ValidateSLASet([]SLADefinition{
		named("Gold", false, nil), named("Silver", false, nil), named("gold ", false, nil),
	}), "slas[2].name")
}
