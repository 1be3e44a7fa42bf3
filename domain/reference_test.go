package domain_test

// Decider tests of the reference data aggregates: the ticket type and priority
// catalogues, the support settings and the versioned SLA catalogue.

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/domain"
)

// stream folds payloads into envelopes of one stream (sequence from 1, hash chained).
func stream(name string, payloads ...domain.Payload) []domain.Event {
	var out []domain.Event
	prev := ""
	for i, p := range payloads {
		evs, err := domain.NewEvents(name, uint64(i), prev, domain.Metadata{CommandID: fmt.Sprint("ref-", i), At: t0.Add(time.Duration(i) * time.Second)},
			func(int) string { return fmt.Sprint(name, "-", i) }, []domain.Payload{p})
		if err != nil {
			panic(err)
		}
		out = append(out, evs...)
		prev = evs[0].Hash
	}
	return out
}

func givenCatalogue(payloads ...domain.Payload) *domain.Catalogue {
	c := &domain.Catalogue{}
	for _, e := range stream(domain.TicketTypesStream, payloads...) {
		domain.EvolveCatalogue(c, e)
	}
	return c
}

func TestCatalogueDecisions(t *testing.T) {
	types := []domain.Payload{domain.TicketTypeCreated{Name: "Bug"}, domain.TicketTypeCreated{Name: "Question", Description: "how do I"}}
	priorities := []domain.Payload{domain.TicketPriorityCreated{Name: "Low"}, domain.TicketPriorityCreated{Name: "High"}}
	tests := []struct {
		name       string
		priorities bool
		given      []domain.Payload
		when       domain.CatalogueCommand
		then       []domain.Payload
		err        error
		field      string
	}{
		{name: "create a type", given: types, when: domain.CatalogueCommand{Op: "create", Name: "Incident", Description: "d"},
			then: []domain.Payload{domain.TicketTypeCreated{Name: "Incident", Description: "d"}}},
		{name: "create a priority", priorities: true, given: priorities, when: domain.CatalogueCommand{Op: "create", Name: "Urgent"},
			then: []domain.Payload{domain.TicketPriorityCreated{Name: "Urgent"}}},
		{name: "create a duplicate type", given: types, when: domain.CatalogueCommand{Op: "create", Name: "Bug"}, err: domain.ErrConflict},
		{name: "create a duplicate type in another case", given: types, when: domain.CatalogueCommand{Op: "create", Name: "bUG"}, err: domain.ErrConflict},
		{name: "create a duplicate priority in another case", priorities: true, given: priorities, when: domain.CatalogueCommand{Op: "create", Name: "HIGH"}, err: domain.ErrConflict},
		{name: "create without a name", given: types, when: domain.CatalogueCommand{Op: "create", Name: " "}, field: "name"},
		{name: "create a name too long", given: types, when: domain.CatalogueCommand{Op: "create", Name: string(make([]byte, 201))}, field: "name"},
		{name: "create with a description too long", given: types, when: domain.CatalogueCommand{Op: "create", Name: "X", Description: string(make([]byte, 10_001))}, field: "description"},
		{name: "unknown operation", given: types, when: domain.CatalogueCommand{Op: "upsert", Name: "Bug"}, field: "op"},

		{name: "remove an unused type", given: types, when: domain.CatalogueCommand{Op: "remove", Name: "Bug"},
			then: []domain.Payload{domain.TicketTypeRemoved{Name: "Bug"}}},
		{name: "remove an unused priority", priorities: true, given: priorities, when: domain.CatalogueCommand{Op: "remove", Name: "Low"},
			then: []domain.Payload{domain.TicketPriorityRemoved{Name: "Low"}}},
		{name: "remove a type in use", given: types, when: domain.CatalogueCommand{Op: "remove", Name: "Bug", InUse: 1}, err: domain.ErrConflict},
		{name: "remove a priority in use", priorities: true, given: priorities, when: domain.CatalogueCommand{Op: "remove", Name: "High", InUse: 3}, err: domain.ErrConflict},
		{name: "remove an unknown type", given: types, when: domain.CatalogueCommand{Op: "remove", Name: "Nope"}, err: domain.ErrNotFound},
		{name: "remove needs the exact name", given: types, when: domain.CatalogueCommand{Op: "remove", Name: "bug"}, err: domain.ErrNotFound},
		{name: "remove a removed type", given: append(types, domain.TicketTypeRemoved{Name: "Bug"}), when: domain.CatalogueCommand{Op: "remove", Name: "Bug"}, err: domain.ErrNotFound},

		{name: "rename an unused type", given: types, when: domain.CatalogueCommand{Op: "update", Name: "Bug", NewName: "Defect", Description: "d"},
			then: []domain.Payload{domain.TicketTypeUpdated{Name: "Bug", NewName: "Defect", Description: "d"}}},
		{name: "rename an unused priority", priorities: true, given: priorities, when: domain.CatalogueCommand{Op: "update", Name: "Low", NewName: "Minor"},
			then: []domain.Payload{domain.TicketPriorityUpdated{Name: "Low", NewName: "Minor"}}},
		{name: "change only the case of an unused type", given: types, when: domain.CatalogueCommand{Op: "update", Name: "Bug", NewName: "BUG"},
			then: []domain.Payload{domain.TicketTypeUpdated{Name: "Bug", NewName: "BUG"}}},
		{name: "rename a type in use", given: types, when: domain.CatalogueCommand{Op: "update", Name: "Bug", NewName: "Defect", InUse: 2}, err: domain.ErrConflict},
		{name: "rename a priority in use", priorities: true, given: priorities, when: domain.CatalogueCommand{Op: "update", Name: "Low", NewName: "Minor", InUse: 1}, err: domain.ErrConflict},
		{name: "describe a type in use", given: types, when: domain.CatalogueCommand{Op: "update", Name: "Bug", Description: "software defect", InUse: 2},
			then: []domain.Payload{domain.TicketTypeUpdated{Name: "Bug", Description: "software defect"}}},
		{name: "rename onto another type", given: types, when: domain.CatalogueCommand{Op: "update", Name: "Bug", NewName: "question"}, err: domain.ErrConflict},
		{name: "rename to a blank name", given: types, when: domain.CatalogueCommand{Op: "update", Name: "Bug", NewName: "  "}, field: "new_name"},
		{name: "update an unknown type", given: types, when: domain.CatalogueCommand{Op: "update", Name: "Nope", NewName: "X"}, err: domain.ErrNotFound},
		{name: "update an unknown priority", priorities: true, given: priorities, when: domain.CatalogueCommand{Op: "update", Name: "Nope"}, err: domain.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := givenCatalogue(tc.given...)
			got, err := domain.DecideCatalogue(c, tc.when, tc.priorities)
			switch {
			case tc.field != "":
				assertInvalid(t, got, err, tc.field)
			case tc.err != nil:
				assertRefused(t, got, err, tc.err)
			default:
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				assertEvents(t, got, tc.then)
			}
		})
	}
}

func TestEvolveCatalogue(t *testing.T) {
	c := givenCatalogue(
		domain.TicketTypeCreated{Name: "Bug"},
		domain.TicketTypeCreated{Name: "Question"},
		domain.TicketTypeCreated{Name: "Incident"},
		domain.TicketTypeUpdated{Name: "Bug", NewName: "Defect", Description: "software"},
		domain.TicketTypeUpdated{Name: "Question", Description: "how do I"},
		domain.TicketTypeRemoved{Name: "Incident"},
	)
	want := []domain.NamedEntry{{Name: "Defect", Description: "software"}, {Name: "Question", Description: "how do I"}}
	if !reflect.DeepEqual(c.Entries, want) {
		t.Fatalf("entries = %+v, want %+v", c.Entries, want)
	}
	if c.Version != 6 || c.LastHash == "" {
		t.Fatalf("version %d, hash %q", c.Version, c.LastHash)
	}
	if c.Has("Bug") || !c.Has("Defect") || c.Has("defect") {
		t.Fatalf("Has is case-sensitive and follows renames: %+v", c.Entries)
	}
	// Renamed and removed names are free again.
	for _, name := range []string{"Bug", "Incident"} {
		if _, err := domain.DecideCatalogue(c, domain.CatalogueCommand{Op: "create", Name: name}, false); err != nil {
			t.Fatalf("create %s after it was renamed or removed: %v", name, err)
		}
	}

	// The priority events fold the same way.
	p := &domain.Catalogue{}
	for _, e := range stream(domain.TicketPrioritiesStream,
		domain.TicketPriorityCreated{Name: "Low"}, domain.TicketPriorityCreated{Name: "High"},
		domain.TicketPriorityUpdated{Name: "Low", NewName: "Minor"}, domain.TicketPriorityRemoved{Name: "High"}) {
		domain.EvolveCatalogue(p, e)
	}
	if !reflect.DeepEqual(p.Entries, []domain.NamedEntry{{Name: "Minor"}}) {
		t.Fatalf("priorities = %+v", p.Entries)
	}
}

// TestEvolveCatalogueDoesNotAlias: an earlier state shares no entries with a later one,
// so a snapshot handed to a decision never changes under it.
func TestEvolveCatalogueDoesNotAlias(t *testing.T) {
	events := stream(domain.TicketTypesStream, domain.TicketTypeCreated{Name: "A"}, domain.TicketTypeCreated{Name: "B"},
		domain.TicketTypeUpdated{Name: "A", NewName: "Z"}, domain.TicketTypeRemoved{Name: "Z"})
	c := &domain.Catalogue{}
	domain.EvolveCatalogue(c, events[0])
	domain.EvolveCatalogue(c, events[1])
	snapshot := c.Entries
	domain.EvolveCatalogue(c, events[2])
	domain.EvolveCatalogue(c, events[3])
	if !reflect.DeepEqual(snapshot, []domain.NamedEntry{{Name: "A"}, {Name: "B"}}) {
		t.Fatalf("a snapshot changed when the catalogue evolved: %+v", snapshot)
	}
}

func TestSettings(t *testing.T) {
	tests := []struct {
		name  string
		given []domain.Payload
		when  domain.SupportSettings
		then  []domain.Payload
		field string
	}{
		{name: "negative auto close days", when: domain.SupportSettings{AutoCloseDays: -1}, field: "auto_close_days"},
		{name: "auto close days over 10 years", when: domain.SupportSettings{AutoCloseDays: 3651}, field: "auto_close_days"},
		{name: "0 days (never)", when: domain.SupportSettings{AutoCloseDays: 0},
			then: []domain.Payload{domain.SupportSettingsChanged{AutoCloseDays: 0}}},
		{name: "the maximum", when: domain.SupportSettings{AutoCloseDays: 3650, AllowSLAReset: true},
			then: []domain.Payload{domain.SupportSettingsChanged{AutoCloseDays: 3650, AllowSLAReset: true}}},
		{name: "the defaults, first time, are recorded", when: domain.DefaultSupportSettings,
			then: []domain.Payload{domain.SupportSettingsChanged(domain.DefaultSupportSettings)}},
		{name: "unchanged settings record nothing", given: []domain.Payload{domain.SupportSettingsChanged{AutoCloseDays: 3, AllowSLAReset: true}},
			when: domain.SupportSettings{AutoCloseDays: 3, AllowSLAReset: true}, then: nil},
		{name: "a change", given: []domain.Payload{domain.SupportSettingsChanged{AutoCloseDays: 3}},
			when: domain.SupportSettings{AutoCloseDays: 3, AllowSLAReset: true}, then: []domain.Payload{domain.SupportSettingsChanged{AutoCloseDays: 3, AllowSLAReset: true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := domain.NewSettingsState()
			for _, e := range stream(domain.SupportSettingsStream, tc.given...) {
				domain.EvolveSettings(s, e)
			}
			got, err := domain.DecideSettings(s, tc.when)
			if tc.field != "" {
				assertInvalid(t, got, err, tc.field)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			assertEvents(t, got, tc.then)
		})
	}
	t.Run("a new state has the defaults: 7 days, no SLA reset", func(t *testing.T) {
		s := domain.NewSettingsState()
		if s.Settings != (domain.SupportSettings{AutoCloseDays: 7, AllowSLAReset: false}) || s.Version != 0 {
			t.Fatalf("new settings = %+v, version %d", s.Settings, s.Version)
		}
		for _, e := range stream(domain.SupportSettingsStream, domain.SupportSettingsChanged{AutoCloseDays: 2, AllowSLAReset: true}) {
			domain.EvolveSettings(s, e)
		}
		if s.Settings != (domain.SupportSettings{AutoCloseDays: 2, AllowSLAReset: true}) || s.Version != 1 {
			t.Fatalf("after a change = %+v, version %d", s.Settings, s.Version)
		}
	})
}

// slaCatalogue folds SLA catalogue payloads.
func slaCatalogue(payloads ...domain.Payload) *domain.SLACatalogue {
	c := &domain.SLACatalogue{}
	for _, e := range stream(domain.SLAStream, payloads...) {
		domain.EvolveSLACatalogue(c, e)
	}
	return c
}

// saveSLA decides a save on c and folds the result into c.
func saveSLA(t *testing.T, c *domain.SLACatalogue, def domain.SLADefinition) domain.SLASaved {
	t.Helper()
	got, err := domain.DecideSaveSLA(c, def, noLists)
	if err != nil {
		t.Fatalf("save %s: %v", def.Name, err)
	}
	if len(got) != 1 {
		t.Fatalf("save %s decided %s", def.Name, describe(got))
	}
	events, err := domain.NewEvents(domain.SLAStream, c.Version, c.LastHash, domain.Metadata{At: t0}, func(int) string { return fmt.Sprint("sla-", c.Version) }, got)
	if err != nil {
		t.Fatal(err)
	}
	domain.EvolveSLACatalogue(c, events[0])
	return got[0].(domain.SLASaved)
}

func TestSLACatalogueVersions(t *testing.T) {
	c := slaCatalogue()
	v1def := standardSLA()
	v2def := standardSLA()
	v2def.Priorities[1].Response = hours(2)

	if v := saveSLA(t, c, v1def); v.Version != 1 || !reflect.DeepEqual(v.Definition, v1def) {
		t.Fatalf("first save = version %d", v.Version)
	}
	if v := saveSLA(t, c, v2def); v.Version != 2 {
		t.Fatalf("second save = version %d, want 2", v.Version)
	}
	if len(c.Current) != 1 || c.Current[0].Version != 2 || c.Current[0].SLA.Name() != "Standard" {
		t.Fatalf("current = %+v, want Standard v2 only", c.Current)
	}
	// Both versions resolve, each with its own targets: history is never rewritten.
	for version, want := range map[int]time.Duration{1: time.Hour, 2: 2 * time.Hour} {
		s, ok := c.Lookup("Standard", version)
		if !ok {
			t.Fatalf("Lookup(Standard, %d) failed", version)
		}
		if p, _ := s.Priority("High"); time.Duration(p.Response) != want {
			t.Fatalf("version %d: High response %s, want %s", version, time.Duration(p.Response), want)
		}
	}
	if _, ok := c.Lookup("Standard", 3); ok {
		t.Fatal("Lookup of a version never saved succeeded")
	}
	if _, ok := c.Lookup("Other", 1); ok {
		t.Fatal("Lookup of an SLA never saved succeeded")
	}

	// Another SLA is versioned on its own, and selection order is save order.
	if v := saveSLA(t, c, criticalSLA()); v.Version != 1 {
		t.Fatalf("first save of Critical = version %d, want 1", v.Version)
	}
	if names := []string{c.Current[0].SLA.Name(), c.Current[1].SLA.Name()}; names[0] != "Standard" || names[1] != "Critical" {
		t.Fatalf("selection order = %v", names)
	}

	// Removed: out of selection, still resolvable, and a later save continues the
	// version sequence instead of reusing version 1.
	removed, err := domain.DecideRemoveSLA(c, "Standard")
	if err != nil {
		t.Fatal(err)
	}
	assertEvents(t, removed, []domain.Payload{domain.SLARemoved{Name: "Standard"}})
	events, _ := domain.NewEvents(domain.SLAStream, c.Version, c.LastHash, domain.Metadata{At: t0}, func(int) string { return "rm" }, removed)
	domain.EvolveSLACatalogue(c, events[0])
	if len(c.Current) != 1 || c.Current[0].SLA.Name() != "Critical" {
		t.Fatalf("current after removal = %d SLAs", len(c.Current))
	}
	if _, ok := c.Lookup("Standard", 2); !ok {
		t.Fatal("a removed SLA's versions must still resolve")
	}
	if v := saveSLA(t, c, v1def); v.Version != 3 {
		t.Fatalf("save after removal = version %d, want 3", v.Version)
	}
	got, err := domain.DecideRemoveSLA(c, "Nope")
	assertRefused(t, got, err, domain.ErrNotFound)
}

func TestSLACatalogueRules(t *testing.T) {
	other := standardSLA()
	other.Name = "Other default"
	disabled := false
	disabledDefault := standardSLA()
	disabledDefault.Name = "Old default"
	disabledDefault.Enabled = &disabled
	sameNameOtherCase := criticalSLA()
	sameNameOtherCase.Name = "STANDARD"
	invalid := standardSLA()
	invalid.Priorities = nil

	tests := []struct {
		name  string
		given []domain.SLADefinition
		when  domain.SLADefinition
		field string // "" when accepted
	}{
		{"a second default SLA", []domain.SLADefinition{standardSLA()}, other, "slas[1].default"},
		{"a new version of the default SLA", []domain.SLADefinition{standardSLA()}, standardSLA(), ""},
		{"a disabled second default SLA", []domain.SLADefinition{standardSLA()}, disabledDefault, ""},
		{"a name that differs only in case", []domain.SLADefinition{standardSLA()}, sameNameOtherCase, "slas[1].name"},
		{"an invalid definition", nil, invalid, "priorities"},
		{"a condition on a default SLA", nil, func() domain.SLADefinition { d := standardSLA(); d.Condition = `priority == "High"`; return d }(), "condition"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := slaCatalogue()
			for _, def := range tc.given {
				saveSLA(t, c, def)
			}
			got, err := domain.DecideSaveSLA(c, tc.when, noLists)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			assertInvalid(t, got, err, tc.field)
		})
	}
	t.Run("at most one enabled default SLA whatever the order of saves", func(t *testing.T) {
		c := slaCatalogue()
		saveSLA(t, c, disabledDefault)
		saveSLA(t, c, standardSLA())
		enable := disabledDefault
		enable.Enabled = nil
		got, err := domain.DecideSaveSLA(c, enable, noLists)
		assertInvalid(t, got, err, "slas[1].default")
		defaults := 0
		for _, v := range c.Current {
			if def := v.SLA.Definition(); def.Default && v.SLA.Enabled() {
				defaults++
			}
		}
		if defaults != 1 {
			t.Fatalf("%d enabled default SLAs", defaults)
		}
	})
}

// TestSLACatalogueStateIsNotShared: deciding on a copy of the catalogue (as the
// handler does) and then folding into the original leaves the copy as it was.
func TestSLACatalogueStateIsNotShared(t *testing.T) {
	c := slaCatalogue()
	saveSLA(t, c, standardSLA())
	snapshot := c.Current
	saveSLA(t, c, criticalSLA())
	if len(snapshot) != 1 || snapshot[0].SLA.Name() != "Standard" {
		t.Fatalf("snapshot changed: %d entries", len(snapshot))
	}
	// SLASaved events that do not compile any more stay out of selection.
	bad := standardSLA()
	bad.Name = "Broken"
	bad.Priorities = nil
	events := stream(domain.SLAStream, domain.SLASaved{Version: 1, Definition: bad})
	before := len(c.Current)
	domain.EvolveSLACatalogue(c, events[0])
	if len(c.Current) != before {
		t.Fatal("an SLA that does not compile was put in selection")
	}
	if _, ok := c.Lookup("Broken", 1); ok {
		t.Fatal("an SLA that does not compile resolves")
	}
}

func TestNumbersAndStreams(t *testing.T) {
	if got := domain.FormatTicketNumber(2026, 42); got != "TKT-2026-000042" {
		t.Fatalf("FormatTicketNumber = %s", got)
	}
	if got := domain.NumberStream(2026); got != "numbers-2026" {
		t.Fatalf("NumberStream = %s", got)
	}
	if got := domain.TicketIDFromStream(domain.TicketStream("abc")); got != "abc" {
		t.Fatalf("TicketIDFromStream round trip = %q", got)
	}
	for _, s := range []string{domain.TicketTypesStream, domain.TicketPrioritiesStream, domain.SLAStream, domain.SupportSettingsStream, domain.NumberStream(2026), "tickets"} {
		if got := domain.TicketIDFromStream(s); got != "" {
			t.Fatalf("TicketIDFromStream(%s) = %q, want none", s, got)
		}
	}
	if !errors.Is(domain.Invalid("x", "y"), domain.ErrValidation) {
		t.Fatal("Invalid does not wrap ErrValidation")
	}
}

func noLists(string) ([]string, bool) { return nil, false }
