package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Holiday lists are reusable sets of holiday dates ("France 2026") that SLA calendars
// name. Saving an SLA snapshots the dates of the lists it names into the SLA version,
// so a ticket's recorded SLA version keeps its holidays forever; changing a list saves
// a new version of every SLA that names it (the handler does that), so new selections
// and deadlines computed from then on see the new dates.

// HolidayListsStream is the stream of the holiday list catalogue.
const HolidayListsStream = "catalogue-holiday-lists"

// HolidayList is a named list of whole-day dates (YYYY-MM-DD).
type HolidayList struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Holidays    []string `json:"holidays"`
}

type HolidayListSaved HolidayList

type HolidayListRemoved struct {
	Name string `json:"name"`
}

func (HolidayListSaved) EventType() string   { return "holiday_list.saved" }
func (HolidayListRemoved) EventType() string { return "holiday_list.removed" }

// HolidayListsState is the holiday list catalogue.
type HolidayListsState struct {
	Version  uint64
	LastHash string
	CommandLog
	Lists map[string]HolidayList
}

// Lookup returns a list's dates.
func (s *HolidayListsState) Lookup(name string) ([]string, bool) {
	l, ok := s.Lists[name]
	return l.Holidays, ok
}

// DecideSaveHolidayList validates a list; dates are sorted and deduplicated.
func DecideSaveHolidayList(s *HolidayListsState, l HolidayList) ([]Payload, error) {
	var v ValidationError
	if strings.TrimSpace(l.Name) == "" {
		v.Add("name", "is required")
	} else if len(l.Name) > MaxNameLen {
		v.Add("name", "is longer than %d characters", MaxNameLen)
	}
	if len(l.Holidays) > 5000 {
		v.Add("holidays", "has more than 5000 dates")
	}
	for i, d := range l.Holidays {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			v.Add(fmt.Sprintf("holidays[%d]", i), "%q is not a date YYYY-MM-DD", d)
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	dates := slices.Clone(l.Holidays)
	slices.Sort(dates)
	l.Holidays = slices.Compact(dates)
	if old, ok := s.Lists[l.Name]; ok && slices.Equal(old.Holidays, l.Holidays) && old.Description == l.Description {
		return nil, nil
	}
	return []Payload{HolidayListSaved(l)}, nil
}

// DecideRemoveHolidayList removes a list no current SLA names (usedBy lists those that do).
func DecideRemoveHolidayList(s *HolidayListsState, name string, usedBy []string) ([]Payload, error) {
	if _, ok := s.Lists[name]; !ok {
		return nil, fmt.Errorf("holiday list %q: %w", name, ErrNotFound)
	}
	if len(usedBy) > 0 {
		return nil, fmt.Errorf("holiday list %q is used by the SLAs %s: %w", name, strings.Join(usedBy, ", "), ErrConflict)
	}
	return []Payload{HolidayListRemoved{Name: name}}, nil
}

// EvolveHolidayLists applies a holiday list event.
func EvolveHolidayLists(s *HolidayListsState, e Event) {
	s.Version, s.LastHash = e.Sequence, e.Hash
	s.record(e)
	lists := make(map[string]HolidayList, len(s.Lists)+1)
	for k, v := range s.Lists {
		lists[k] = v
	}
	switch p := e.Payload.(type) {
	case HolidayListSaved:
		lists[p.Name] = HolidayList(p)
	case HolidayListRemoved:
		delete(lists, p.Name)
	}
	s.Lists = lists // replaced, never mutated: snapshots taken earlier stay valid
}

// CommandLog remembers, for a catalogue, which commands produced which events, so that
// a retried catalogue command (same command ID) returns its first result and adds
// nothing, as ticket commands do.
type CommandLog struct {
	commands map[string][]Event
}

// Seen returns the events a command produced, if it was applied.
func (l *CommandLog) Seen(commandID string) ([]Event, bool) {
	events, ok := l.commands[commandID]
	return events, ok
}

func (l *CommandLog) record(e Event) {
	if e.CommandID == "" {
		return
	}
	if l.commands == nil {
		l.commands = make(map[string][]Event)
	}
	e.Encoded = nil // kept for as long as the process runs, and never stored again
	l.commands[e.CommandID] = append(l.commands[e.CommandID], e)
}
