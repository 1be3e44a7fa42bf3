package domain

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

const secondsPerDay = 24 * 60 * 60

// CalendarSpec is a business calendar as people write it: an IANA time zone, working
// windows per weekday and holiday dates.
type CalendarSpec struct {
	Timezone string `json:"timezone"`
	// Hours maps a weekday's English name ("Monday") to its working windows, each
	// ["HH:MM", "HH:MM"]; an end of "24:00" is the end of the day.
	Hours map[string][][2]string `json:"hours"`
	// Holidays are dates ("2006-01-02") that are not worked at all, whole days in
	// the calendar's time zone.
	Holidays []string `json:"holidays"`
	// HolidayLists names reusable holiday lists. The caller resolves them into
	// Holidays before compiling; they are kept so an edited definition still says
	// where its dates came from.
	HolidayLists []string `json:"holiday_lists,omitempty"`
}

// clone returns a deep copy, so that a compiled calendar cannot be changed through
// the slices and map of the spec it was built from.
func (s CalendarSpec) clone() CalendarSpec {
	out := CalendarSpec{
		Timezone:     s.Timezone,
		Holidays:     slices.Clone(s.Holidays),
		HolidayLists: slices.Clone(s.HolidayLists),
	}
	if s.Hours != nil {
		out.Hours = make(map[string][][2]string, len(s.Hours))
		for day, windows := range s.Hours {
			out.Hours[day] = slices.Clone(windows)
		}
	}
	return out
}

// window is a working window of a weekday, in seconds after local midnight;
// 0 <= start < end <= secondsPerDay.
type window struct {
	start, end int64
}

// Calendar is a compiled business calendar. It is immutable and safe for concurrent
// use.
//
// Working windows are wall-clock times of each local date, so on the days clocks
// change a window lasts what the clocks say: 01:00-04:00 is 2 h of real time on a
// spring-forward day in Europe/Paris and 4 h on a fall-back day. A wall-clock time
// that does not exist (skipped by a spring-forward) means the instant the clocks
// jump; one that occurs twice means its first occurrence. Both rules keep local
// times in order, so the windows of consecutive days never overlap in real time.
type Calendar struct {
	spec     CalendarSpec
	loc      *time.Location
	week     [7][]window    // indexed by time.Weekday, sorted, non-overlapping
	holidays map[int64]bool // local dates as days since 1970-01-01
}

// weekdays maps lower-case English weekday names to weekdays.
var weekdays = func() map[string]time.Weekday {
	m := make(map[string]time.Weekday, 7)
	for d := time.Sunday; d <= time.Saturday; d++ {
		m[strings.ToLower(d.String())] = d
	}
	return m
}()

// NewCalendar validates spec and compiles it. Problems are reported together in a
// *ValidationError whose field paths are relative to the spec ("timezone",
// "hours.Monday[0]", "holidays[2]").
func NewCalendar(spec CalendarSpec) (*Calendar, error) {
	var verr ValidationError
	c := &Calendar{spec: spec.clone(), holidays: make(map[int64]bool, len(spec.Holidays))}
	c.loc = loadZone(&verr, spec.Timezone)

	problemsBeforeHours := len(verr.Fields)
	seen := make(map[time.Weekday]string, 7)
	// Sorted names give the same errors in the same order on every run.
	for _, name := range slices.Sorted(maps.Keys(spec.Hours)) {
		field := "hours." + name
		day, ok := weekdays[strings.ToLower(name)]
		if !ok {
			verr.Add(field, "%q is not a weekday; use Monday to Sunday", name)
			continue
		}
		if first, dup := seen[day]; dup {
			verr.Add(field, "repeats %s", first)
			continue
		}
		seen[day] = name
		c.week[day] = parseWindows(&verr, field, spec.Hours[name])
	}
	// When windows were refused, their own errors say enough.
	hoursValid := len(verr.Fields) == problemsBeforeHours
	if hoursValid && slices.IndexFunc(c.week[:], func(ws []window) bool { return len(ws) > 0 }) < 0 {
		verr.Add("hours", "needs at least one working window in the week")
	}

	for i, date := range spec.Holidays {
		d, err := time.Parse(time.DateOnly, date)
		if err != nil {
			verr.Add(fmt.Sprintf("holidays[%d]", i), "%q is not a date YYYY-MM-DD", date)
			continue
		}
		// Duplicates are harmless: merged holiday lists often share dates.
		c.holidays[d.Unix()/secondsPerDay] = true
	}
	for i, name := range spec.HolidayLists {
		if strings.TrimSpace(name) == "" {
			verr.Add(fmt.Sprintf("holiday_lists[%d]", i), "is empty")
		}
	}

	if err := verr.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// loadZone loads an IANA time zone. "Local" is refused: the calendar would then mean
// different hours on different servers.
func loadZone(verr *ValidationError, name string) *time.Location {
	switch name {
	case "":
		verr.Add("timezone", "is required, e.g. \"UTC\" or \"Europe/Paris\"")
		return nil
	case "Local":
		verr.Add("timezone", "must name a zone, not the server's Local one")
		return nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		verr.Add("timezone", "%q is not a known IANA time zone", name)
		return nil
	}
	return loc
}

// parseWindows reads one weekday's windows and returns them sorted by start.
func parseWindows(verr *ValidationError, field string, pairs [][2]string) []window {
	type numbered struct {
		window
		index int // position in the spec, for error paths
	}
	parsed := make([]numbered, 0, len(pairs))
	for i, pair := range pairs {
		path := fmt.Sprintf("%s[%d]", field, i)
		start, startOK := parseClock(pair[0])
		end, endOK := parseClock(pair[1])
		if !startOK {
			verr.Add(path, "start %q is not a time HH:MM between 00:00 and 24:00", pair[0])
		}
		if !endOK {
			verr.Add(path, "end %q is not a time HH:MM between 00:00 and 24:00", pair[1])
		}
		if !startOK || !endOK {
			continue
		}
		if start >= end {
			verr.Add(path, "starts at %s, not before its end %s", pair[0], pair[1])
			continue
		}
		parsed = append(parsed, numbered{window{start, end}, i})
	}
	slices.SortFunc(parsed, func(a, b numbered) int { return cmp.Compare(a.start, b.start) })

	windows := make([]window, 0, len(parsed))
	for i, w := range parsed {
		if i > 0 && w.start < parsed[i-1].end {
			verr.Add(fmt.Sprintf("%s[%d]", field, w.index), "overlaps %s[%d]", field, parsed[i-1].index)
			continue
		}
		windows = append(windows, w.window)
	}
	return windows
}

// parseClock reads "HH:MM", from 00:00 to 24:00, as seconds after midnight.
func parseClock(s string) (int64, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	hours := int64(s[0]-'0')*10 + int64(s[1]-'0')
	minutes := int64(s[3]-'0')*10 + int64(s[4]-'0')
	if minutes > 59 || hours > 24 || hours == 24 && minutes != 0 {
		return 0, false
	}
	return hours*3600 + minutes*60, true
}

// Location is the calendar's time zone.
func (c *Calendar) Location() *time.Location { return c.loc }

// Spec returns a copy of the spec the calendar was compiled from.
func (c *Calendar) Spec() CalendarSpec { return c.spec.clone() }

// Business is the working time inside [a, b]: the parts of the working windows of
// non-holiday dates that lie between a and b. It is 0 when b is not after a.
func (c *Calendar) Business(a, b time.Time) time.Duration {
	// Round(0) drops monotonic readings, so comparisons use the instants themselves.
	a, b = a.Round(0), b.Round(0)
	if !a.Before(b) {
		return 0
	}
	clock, day := c.clockAt(a)
	var total time.Duration
	for ; time.Unix(clock.unix(day*secondsPerDay), 0).Before(b); day++ {
		if c.holidays[day] {
			continue
		}
		for _, w := range c.week[weekdayOf(day)] {
			start := time.Unix(clock.unix(day*secondsPerDay+w.start), 0)
			end := time.Unix(clock.unix(day*secondsPerDay+w.end), 0)
			if start.Before(a) {
				start = a
			}
			if end.After(b) {
				end = b
			}
			if end.After(start) {
				total = addSaturating(total, end.Sub(start))
			}
		}
	}
	return total
}

// BusinessAdd returns the earliest instant t >= a with Business(a, t) == x, in UTC.
// A target that ends exactly when a window closes is due at that close, not at the
// next opening. x <= 0 gives a itself.
//
// It walks day by day, so it costs O(calendar days up to the result); the calendar
// always has a window in the week, so it terminates.
func (c *Calendar) BusinessAdd(a time.Time, x time.Duration) time.Time {
	a = a.UTC() // also drops the monotonic reading
	if x <= 0 {
		return a
	}
	clock, day := c.clockAt(a)
	for ; ; day++ {
		if c.holidays[day] {
			continue
		}
		for _, w := range c.week[weekdayOf(day)] {
			start := time.Unix(clock.unix(day*secondsPerDay+w.start), 0).UTC()
			end := time.Unix(clock.unix(day*secondsPerDay+w.end), 0).UTC()
			if !end.After(a) {
				continue
			}
			if start.Before(a) {
				start = a
			}
			left := end.Sub(start)
			if x <= left {
				return start.Add(x)
			}
			x -= left
		}
	}
}

// clockAt starts a wall clock at t and returns it with t's local date. The windows of
// earlier dates all end by t, so the walks of Business and BusinessAdd start there.
func (c *Calendar) clockAt(t time.Time) (wallClock, int64) {
	clock := wallClock{loc: c.loc}
	clock.enter(t.Unix())
	return clock, floorDiv(t.Unix()+clock.offset, secondsPerDay)
}

// weekdayOf is the weekday of a date given as days since 1970-01-01, a Thursday.
func weekdayOf(day int64) time.Weekday {
	return time.Weekday((day%7 + 7 + int64(time.Thursday)) % 7)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func addSaturating(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// wallClock converts local wall-clock times, as seconds since 1970-01-01 00:00 local
// time, to Unix seconds. It remembers the zone period (the span between two clock
// changes) of its last answer: inside it the conversion is a subtraction, so a walk
// over consecutive days looks the zone up only when the clocks change.
type wallClock struct {
	loc    *time.Location
	offset int64 // UTC offset of the remembered period, in seconds
	// Wall times w with w-offset in [from, to) exist in the remembered period and
	// did not occur earlier, so they convert to w-offset.
	from, to int64
}

// unix returns the earliest instant whose wall clock reads wall or later.
func (w *wallClock) unix(wall int64) int64 {
	if u := wall - w.offset; w.from <= u && u < w.to {
		return u
	}
	u := earliestAt(w.loc, wall)
	w.enter(u)
	return u
}

// enter remembers the zone period that contains Unix second u.
func (w *wallClock) enter(u int64) {
	t := time.Unix(u, 0).In(w.loc)
	_, offset := t.Zone()
	start, end := t.ZoneBounds()
	w.offset, w.from, w.to = int64(offset), math.MinInt64, math.MaxInt64
	if !start.IsZero() {
		// After clocks fall back at start, the repeated wall times first occurred
		// before start; those are left to earliestAt.
		_, previous := start.Add(-time.Second).Zone()
		w.from = start.Unix() + max(0, int64(previous)-w.offset)
	}
	if !end.IsZero() {
		w.to = end.Unix()
	}
}

// earliestAt is wallClock.unix without the remembered period: the wall time when it
// exists once, its first occurrence when clocks fell back over it, and the instant
// the clocks jumped when a spring-forward skipped it.
func earliestAt(loc *time.Location, wall int64) int64 {
	n := time.Unix(wall, 0).UTC()
	t := time.Date(n.Year(), n.Month(), n.Day(), n.Hour(), n.Minute(), n.Second(), 0, loc)
	u := t.Unix()
	_, offset := t.Zone()
	start, end := t.ZoneBounds()
	// time.Date resolves a skipped wall time with the offset of one side of the gap,
	// which lands it on the other side; the jump is the boundary between them.
	switch local := u + int64(offset); {
	case local > wall:
		return start.Unix()
	case local < wall:
		return end.Unix()
	}
	if start.IsZero() {
		return u
	}
	// time.Date may pick the second occurrence of a repeated wall time; the first,
	// if any, is in the period before t's.
	_, previous := start.Add(-time.Second).Zone()
	if earlier := wall - int64(previous); earlier < start.Unix() {
		if _, off := time.Unix(earlier, 0).In(loc).Zone(); off == previous {
			return earlier
		}
	}
	return u
}
