package domain

import (
	"fmt"
	"slices"
	"strings"
)

// Reference data lives in a few catalogue streams, each an aggregate of its own, so
// that every change to it is an event too. A catalogue is small and rarely written;
// deciding on the whole catalogue makes uniqueness and "one default" rules atomic.

// Stream names of the catalogues.
const (
	TicketTypesStream      = "catalogue-ticket-types"
	TicketPrioritiesStream = "catalogue-ticket-priorities"
	SupportSettingsStream  = "settings-support"
	SLAStream              = "catalogue-slas"
)

// DefaultPriorities exist from the first start (seeded as events).
var DefaultPriorities = []string{"Low", "Medium", "High"}

// NamedEntry is a ticket type or a ticket priority.
type NamedEntry struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

type TicketTypeCreated NamedEntry
type TicketTypeUpdated struct {
	Name        string `json:"name"`
	NewName     string `json:"new_name,omitempty"`
	Description string `json:"description"`
}
type TicketTypeRemoved struct {
	Name string `json:"name"`
}
type TicketPriorityCreated NamedEntry
type TicketPriorityUpdated TicketTypeUpdated
type TicketPriorityRemoved TicketTypeRemoved

func (TicketTypeCreated) EventType() string     { return "ticket_type.created" }
func (TicketTypeUpdated) EventType() string     { return "ticket_type.updated" }
func (TicketTypeRemoved) EventType() string     { return "ticket_type.removed" }
func (TicketPriorityCreated) EventType() string { return "ticket_priority.created" }
func (TicketPriorityUpdated) EventType() string { return "ticket_priority.updated" }
func (TicketPriorityRemoved) EventType() string { return "ticket_priority.removed" }

// Catalogue is the state of the ticket type or the ticket priority catalogue.
type Catalogue struct {
	Version  uint64
	LastHash string
	CommandLog
	Entries []NamedEntry
}

// Has reports whether an entry of that name exists (names are case-sensitive, as
// tickets store them, but duplicates are checked case-insensitively).
func (c *Catalogue) Has(name string) bool {
	return c.index(name) >= 0
}

func (c *Catalogue) index(name string) int {
	return slices.IndexFunc(c.Entries, func(e NamedEntry) bool { return e.Name == name })
}

func (c *Catalogue) taken(name string) bool {
	return slices.ContainsFunc(c.Entries, func(e NamedEntry) bool { return strings.EqualFold(e.Name, name) })
}

// CatalogueCommand creates, updates (rename and/or describe) or removes an entry.
// InUse is filled by the handler from the read model: how many tickets use the name.
type CatalogueCommand struct {
	Op          string `json:"op"` // create, update, remove
	Name        string `json:"name"`
	NewName     string `json:"new_name,omitempty"`
	Description string `json:"description,omitempty"`
	InUse       int    `json:"-"`
}

// DecideCatalogue decides a change to the type catalogue (priorities=false) or the
// priority catalogue (priorities=true).
func DecideCatalogue(c *Catalogue, cmd CatalogueCommand, priorities bool) ([]Payload, error) {
	if err := requireName("name", cmd.Name); err != nil {
		return nil, err
	}
	if len(cmd.Description) > 10_000 {
		return nil, Invalid("description", "is longer than 10000 bytes")
	}
	kind := "ticket type"
	if priorities {
		kind = "ticket priority"
	}
	switch cmd.Op {
	case "create":
		if c.taken(cmd.Name) {
			return nil, fmt.Errorf("%s %q already exists: %w", kind, cmd.Name, ErrConflict)
		}
		if priorities {
			return []Payload{TicketPriorityCreated{Name: cmd.Name, Description: cmd.Description}}, nil
		}
		return []Payload{TicketTypeCreated{Name: cmd.Name, Description: cmd.Description}}, nil
	case "update":
		if !c.Has(cmd.Name) {
			return nil, fmt.Errorf("%s %q: %w", kind, cmd.Name, ErrNotFound)
		}
		if cmd.NewName != "" && cmd.NewName != cmd.Name {
			if err := requireName("new_name", cmd.NewName); err != nil {
				return nil, err
			}
			if c.taken(cmd.NewName) && !strings.EqualFold(cmd.NewName, cmd.Name) {
				return nil, fmt.Errorf("%s %q already exists: %w", kind, cmd.NewName, ErrConflict)
			}
			// Tickets record the name they were given; renaming a used entry would
			// orphan them, so only unused entries can be renamed.
			if cmd.InUse > 0 {
				return nil, fmt.Errorf("%s %q is used by %d tickets and cannot be renamed: %w", kind, cmd.Name, cmd.InUse, ErrConflict)
			}
		}
		u := TicketTypeUpdated{Name: cmd.Name, NewName: cmd.NewName, Description: cmd.Description}
		if priorities {
			return []Payload{TicketPriorityUpdated(u)}, nil
		}
		return []Payload{u}, nil
	case "remove":
		if !c.Has(cmd.Name) {
			return nil, fmt.Errorf("%s %q: %w", kind, cmd.Name, ErrNotFound)
		}
		if cmd.InUse > 0 {
			return nil, fmt.Errorf("%s %q is used by %d tickets and cannot be removed: %w", kind, cmd.Name, cmd.InUse, ErrConflict)
		}
		if priorities {
			return []Payload{TicketPriorityRemoved{Name: cmd.Name}}, nil
		}
		return []Payload{TicketTypeRemoved{Name: cmd.Name}}, nil
	}
	return nil, Invalid("op", "must be create, update or remove")
}

// EvolveCatalogue applies a catalogue event.
func EvolveCatalogue(c *Catalogue, e Event) {
	c.Version, c.LastHash = e.Sequence, e.Hash
	c.record(e)
	var created *NamedEntry
	var updated *TicketTypeUpdated
	var removed string
	switch p := e.Payload.(type) {
	case TicketTypeCreated:
		n := NamedEntry(p)
		created = &n
	case TicketPriorityCreated:
		n := NamedEntry(p)
		created = &n
	case TicketTypeUpdated:
		updated = &p
	case TicketPriorityUpdated:
		u := TicketTypeUpdated(p)
		updated = &u
	case TicketTypeRemoved:
		removed = p.Name
	case TicketPriorityRemoved:
		removed = p.Name
	}
	switch {
	case created != nil:
		c.Entries = append(c.Entries, *created)
	case updated != nil:
		if i := c.index(updated.Name); i >= 0 {
			c.Entries = slices.Clone(c.Entries)
			if updated.NewName != "" {
				c.Entries[i].Name = updated.NewName
			}
			c.Entries[i].Description = updated.Description
		}
	case removed != "":
		if i := c.index(removed); i >= 0 {
			c.Entries = slices.Delete(slices.Clone(c.Entries), i, i+1)
		}
	}
}

// SupportSettings are the helpdesk-wide settings.
type SupportSettings struct {
	AutoCloseDays int  `json:"auto_close_days"`
	AllowSLAReset bool `json:"allow_sla_reset"`
	// UnrepliedAlertMinutes records ticket.unreplied_alert when a customer message has
	// waited this long for a reply; 0 (or absent) disables the alert.
	UnrepliedAlertMinutes int `json:"unreplied_alert_minutes,omitempty"`
}

// DefaultSupportSettings apply until settings are changed.
var DefaultSupportSettings = SupportSettings{AutoCloseDays: 7}

type SupportSettingsChanged SupportSettings

func (SupportSettingsChanged) EventType() string { return "support_settings.changed" }

// SettingsState is the settings aggregate.
type SettingsState struct {
	Version  uint64
	LastHash string
	CommandLog
	Settings SupportSettings
}

// NewSettingsState starts from the defaults.
func NewSettingsState() *SettingsState {
	return &SettingsState{Settings: DefaultSupportSettings}
}

// DecideSettings validates new settings.
func DecideSettings(s *SettingsState, next SupportSettings) ([]Payload, error) {
	if next.AutoCloseDays < 0 || next.AutoCloseDays > 3650 {
		return nil, Invalid("auto_close_days", "must be between 0 (never) and 3650")
	}
	if next.UnrepliedAlertMinutes < 0 || next.UnrepliedAlertMinutes > MaxUnrepliedAlertMinutes {
		return nil, Invalid("unreplied_alert_minutes", "must be between 0 (never) and %d", MaxUnrepliedAlertMinutes)
	}
	if next == s.Settings && s.Version > 0 {
		return nil, nil
	}
	return []Payload{SupportSettingsChanged(next)}, nil
}

// EvolveSettings applies a settings event.
func EvolveSettings(s *SettingsState, e Event) {
	s.Version, s.LastHash = e.Sequence, e.Hash
	s.record(e)
	if p, ok := e.Payload.(SupportSettingsChanged); ok {
		s.Settings = SupportSettings(p)
	}
}

// SLASaved records a new version of an SLA definition, with the dates of the holiday
// lists its calendar names as they were when it was saved.
type SLASaved struct {
	Version      int                 `json:"version"`
	Definition   SLADefinition       `json:"definition"`
	ListHolidays map[string][]string `json:"list_holidays,omitempty"`
}

// CompileSLAWith compiles a definition with the dates of the holiday lists its
// calendar names, as saving it would (what-if runs use it on unsaved definitions).
func CompileSLAWith(def SLADefinition, lists func(name string) ([]string, bool)) (*SLA, error) {
	saved, err := resolveHolidayLists(def, lists)
	if err != nil {
		return nil, err
	}
	return saved.compiled()
}

// resolveHolidayLists snapshots the dates of the lists a definition names; an unknown
// list is a validation error.
func resolveHolidayLists(def SLADefinition, lists func(name string) ([]string, bool)) (SLASaved, error) {
	saved := SLASaved{Definition: def}
	var v ValidationError
	for i, name := range def.Calendar.HolidayLists {
		dates, ok := lists(name)
		if !ok {
			v.Add(fmt.Sprintf("calendar.holiday_lists[%d]", i), "unknown holiday list %q", name)
			continue
		}
		if saved.ListHolidays == nil {
			saved.ListHolidays = make(map[string][]string)
		}
		saved.ListHolidays[name] = dates
	}
	return saved, v.Err()
}

// compiled is the SLA this version means: the definition with its lists' dates added
// to its own holidays.
func (s SLASaved) compiled() (*SLA, error) {
	def := s.Definition.clone()
	for _, name := range def.Calendar.HolidayLists {
		def.Calendar.Holidays = append(def.Calendar.Holidays, s.ListHolidays[name]...)
	}
	return CompileSLA(def)
}

// SLARemoved removes an SLA from selection; tickets that recorded it keep it.
type SLARemoved struct {
	Name string `json:"name"`
}

func (SLASaved) EventType() string   { return "sla.saved" }
func (SLARemoved) EventType() string { return "sla.removed" }

// SLACatalogue is the SLA catalogue: the current definitions in selection order, and
// every version ever saved, so that a ticket's recorded (name, version) always resolves.
type SLACatalogue struct {
	Version  uint64
	LastHash string
	CommandLog
	Current  []VersionedSLA
	versions map[slaKey]*SLA
	written  map[string]SLADefinition // current definitions as written (lists unresolved)
}

// Written returns the current definition of an SLA as it was written, holiday lists
// named rather than resolved.
func (c *SLACatalogue) Written(name string) (SLADefinition, bool) {
	d, ok := c.written[name]
	return d.clone(), ok
}

// UsingHolidayList names the current SLAs whose calendar names the list.
func (c *SLACatalogue) UsingHolidayList(list string) []string {
	var names []string
	for _, v := range c.Current {
		if slices.Contains(c.written[v.SLA.Name()].Calendar.HolidayLists, list) {
			names = append(names, v.SLA.Name())
		}
	}
	return names
}

type slaKey struct {
	name    string
	version int
}

// Lookup returns the SLA a ticket recorded.
func (c *SLACatalogue) Lookup(name string, version int) (*SLA, bool) {
	s, ok := c.versions[slaKey{name, version}]
	return s, ok
}

func (c *SLACatalogue) current(name string) int {
	return slices.IndexFunc(c.Current, func(v VersionedSLA) bool { return v.SLA.Name() == name })
}

// DecideSaveSLA validates and versions a definition; lists resolves the holiday lists
// its calendar names.
func DecideSaveSLA(c *SLACatalogue, def SLADefinition, lists func(name string) ([]string, bool)) ([]Payload, error) {
	saved, err := resolveHolidayLists(def, lists)
	if err != nil {
		return nil, err
	}
	if _, err := saved.compiled(); err != nil {
		return nil, err
	}
	defs := make([]SLADefinition, 0, len(c.Current)+1)
	version := 1
	for _, v := range c.Current {
		if v.SLA.Name() == def.Name {
			version = v.Version + 1
			continue
		}
		defs = append(defs, v.SLA.Definition())
	}
	for k := range c.versions {
		if k.name == def.Name && k.version >= version {
			version = k.version + 1
		}
	}
	if err := ValidateSLASet(append(defs, def)); err != nil {
		return nil, err
	}
	saved.Version = version
	return []Payload{saved}, nil
}

// DecideRemoveSLA removes an SLA from selection.
func DecideRemoveSLA(c *SLACatalogue, name string) ([]Payload, error) {
	if c.current(name) < 0 {
		return nil, fmt.Errorf("sla %q: %w", name, ErrNotFound)
	}
	return []Payload{SLARemoved{Name: name}}, nil
}

// EvolveSLACatalogue applies a catalogue event. Definitions were validated when
// decided; one that no longer compiles (a stricter validator) is kept out of selection.
func EvolveSLACatalogue(c *SLACatalogue, e Event) {
	c.Version, c.LastHash = e.Sequence, e.Hash
	c.record(e)
	if c.versions == nil {
		c.versions = make(map[slaKey]*SLA)
		c.written = make(map[string]SLADefinition)
	}
	switch p := e.Payload.(type) {
	case SLASaved:
		s, err := p.compiled()
		if err != nil {
			return
		}
		c.versions = cloneMap(c.versions)
		c.versions[slaKey{p.Definition.Name, p.Version}] = s
		c.written = cloneMap(c.written)
		c.written[p.Definition.Name] = p.Definition
		entry := VersionedSLA{SLA: s, Version: p.Version}
		c.Current = slices.Clone(c.Current)
		if i := c.current(p.Definition.Name); i >= 0 {
			c.Current[i] = entry
		} else {
			c.Current = append(c.Current, entry)
		}
	case SLARemoved:
		if i := c.current(p.Name); i >= 0 {
			c.Current = slices.Delete(slices.Clone(c.Current), i, i+1)
		}
		c.written = cloneMap(c.written)
		delete(c.written, p.Name)
	}
}

// cloneMap copies a catalogue map: catalogue states are shared as snapshots, so they
// are replaced, never changed in place.
func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// NumberBlockReserved reserves ticket numbers [From, To] of a year for one process.
// Numbers are allocated in blocks through this stream's optimistic concurrency, so
// several processes never hand out the same number; an unused rest of a block is a gap.
type NumberBlockReserved struct {
	Year  int    `json:"year"`
	From  uint64 `json:"from"`
	To    uint64 `json:"to"`
	Owner string `json:"owner"`
}

func (NumberBlockReserved) EventType() string { return "ticket_numbers.block_reserved" }

// NumberStream is the stream of number blocks for a year.
func NumberStream(year int) string { return fmt.Sprintf("numbers-%d", year) }

// FormatTicketNumber renders a ticket number, e.g. TKT-2026-000042.
func FormatTicketNumber(year int, n uint64) string {
	return fmt.Sprintf("TKT-%d-%06d", year, n)
}

// TicketStream is the stream name of a ticket; no other stream starts with "ticket-".
func TicketStream(id string) string { return ticketStreamPrefix + id }

const ticketStreamPrefix = "ticket-"

// TicketIDFromStream returns the ticket id of a ticket stream name, or "".
func TicketIDFromStream(stream string) string {
	id, _ := strings.CutPrefix(stream, ticketStreamPrefix)
	if id == stream {
		return ""
	}
	return id
}
