package domain

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func mustCalendar(t testing.TB, spec CalendarSpec) *Calendar {
	t.Helper()
	c, err := NewCalendar(spec)
	if err != nil {
		t.Fatalf("NewCalendar: %v", err)
	}
	return c
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// localTime is a wall-clock time in the named zone.
func localTime(t testing.TB, zone, s string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// weekHours gives the same windows to every listed day.
func weekHours(days []string, windows ...[2]string) map[string][][2]string {
	hours := make(map[string][][2]string, len(days))
	for _, d := range days {
		hours[d] = windows
	}
	return hours
}

var (
	workdays = []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}
	everyDay = []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
)

// acceptanceCalendar is the calendar of the acceptance scenarios: Monday to Friday
// 10:00-18:00 UTC, three holidays in 2019.
func acceptanceCalendar(t testing.TB) *Calendar {
	return mustCalendar(t, CalendarSpec{
		Timezone: "UTC",
		Hours:    weekHours(workdays, [2]string{"10:00", "18:00"}),
		Holidays: []string{"2019-02-11", "2019-03-05", "2019-03-07"},
	})
}

// TestCalendarBusinessFirstResponse has the cases of first-response-business-time.json
// (ERPNext's TestFirstResponseTime); 2021-06-26 and 27 are a weekend.
func TestCalendarBusinessFirstResponse(t *testing.T) {
	c := acceptanceCalendar(t)
	for _, tc := range []struct {
		name, created, replied string
		seconds                int64
	}{
		{"FR01", "2021-06-28T11:00:00Z", "2021-06-28T12:00:00Z", 3600},
		{"FR02", "2021-06-28T12:00:00Z", "2021-06-28T20:00:00Z", 21600},
		{"FR03", "2021-06-28T06:00:00Z", "2021-06-28T12:00:00Z", 7200},
		{"FR04", "2021-06-28T19:00:00Z", "2021-06-28T20:00:00Z", 0},
		{"FR05", "2021-06-27T10:00:00Z", "2021-06-27T11:00:00Z", 0},
		{"FR06", "2021-06-28T06:00:00Z", "2021-06-29T06:00:00Z", 28800},
		{"FR07", "2021-06-28T06:00:00Z", "2021-06-29T11:00:00Z", 32400},
		{"FR08", "2021-06-28T06:00:00Z", "2021-06-29T20:00:00Z", 57600},
		{"FR09", "2021-06-25T06:00:00Z", "2021-06-26T11:00:00Z", 28800},
		{"FR10", "2021-06-28T12:00:00Z", "2021-06-29T06:00:00Z", 21600},
		{"FR11", "2021-06-28T12:00:00Z", "2021-06-29T11:00:00Z", 25200},
		{"FR12", "2021-06-28T12:00:00Z", "2021-06-29T20:00:00Z", 50400},
		{"FR13", "2021-06-25T12:00:00Z", "2021-06-26T11:00:00Z", 21600},
		{"FR14", "2021-06-28T20:00:00Z", "2021-06-29T06:00:00Z", 0},
		{"FR15", "2021-06-28T20:00:00Z", "2021-06-29T11:00:00Z", 3600},
		{"FR16", "2021-06-28T20:00:00Z", "2021-06-29T20:00:00Z", 28800},
		{"FR17", "2021-06-25T20:00:00Z", "2021-06-26T11:00:00Z", 0},
		{"FR18", "2021-06-28T06:00:00Z", "2021-07-01T06:00:00Z", 86400},
		{"FR19", "2021-06-28T06:00:00Z", "2021-07-01T11:00:00Z", 90000},
		{"FR20", "2021-06-28T06:00:00Z", "2021-07-01T20:00:00Z", 115200},
		{"FR21", "2021-06-25T06:00:00Z", "2021-06-27T11:00:00Z", 28800},
		{"FR22", "2021-06-28T12:00:00Z", "2021-07-01T06:00:00Z", 79200},
		{"FR23", "2021-06-28T12:00:00Z", "2021-07-01T11:00:00Z", 82800},
		{"FR24", "2021-06-28T12:00:00Z", "2021-07-01T20:00:00Z", 108000},
		{"FR25", "2021-06-25T12:00:00Z", "2021-06-27T11:00:00Z", 21600},
		{"FR26", "2021-06-28T20:00:00Z", "2021-07-01T06:00:00Z", 57600},
		{"FR27", "2021-06-28T20:00:00Z", "2021-07-01T11:00:00Z", 61200},
		{"FR28", "2021-06-28T20:00:00Z", "2021-07-01T20:00:00Z", 86400},
		{"FR29", "2021-06-25T20:00:00Z", "2021-06-27T11:00:00Z", 0},
		{"holiday 2019-03-05 skipped", "2019-03-04T12:00:00Z", "2019-03-06T12:00:00Z", 8 * 3600},
		{"reversed interval", "2021-06-29T20:00:00Z", "2021-06-28T06:00:00Z", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := c.Business(mustTime(t, tc.created), mustTime(t, tc.replied))
			if want := time.Duration(tc.seconds) * time.Second; got != want {
				t.Errorf("Business(%s, %s) = %v, want %v", tc.created, tc.replied, got, want)
			}
		})
	}
}

// TestCalendarBusinessAddDeadlines has the deadlines of the acceptance scenarios.
func TestCalendarBusinessAddDeadlines(t *testing.T) {
	office := acceptanceCalendar(t)
	allDay := mustCalendar(t, CalendarSpec{
		Timezone: "UTC",
		Hours:    weekHours(everyDay, [2]string{"00:00", "24:00"}),
		Holidays: []string{"2019-02-11", "2019-03-05", "2019-03-07"},
	})
	for _, tc := range []struct {
		name     string
		calendar *Calendar
		start    string
		target   time.Duration
		due      string
	}{
		{"NOON response", office, "2019-03-04T12:00:00Z", 4 * time.Hour, "2019-03-04T16:00:00Z"},
		{"NOON resolution", office, "2019-03-04T12:00:00Z", 6 * time.Hour, "2019-03-04T18:00:00Z"},
		{"EARLY response", office, "2019-03-04T07:00:00Z", 4 * time.Hour, "2019-03-04T14:00:00Z"},
		{"EARLY resolution", office, "2019-03-04T07:00:00Z", 6 * time.Hour, "2019-03-04T16:00:00Z"},
		{"LATE response skips the 03-05 holiday", office, "2019-03-04T20:00:00Z", 4 * time.Hour, "2019-03-06T14:00:00Z"},
		{"LATE resolution", office, "2019-03-04T20:00:00Z", 6 * time.Hour, "2019-03-06T16:00:00Z"},
		{"AFTERNOON response ends at the close", office, "2019-03-04T14:00:00Z", 4 * time.Hour, "2019-03-04T18:00:00Z"},
		{"AFTERNOON resolution", office, "2019-03-04T14:00:00Z", 6 * time.Hour, "2019-03-06T12:00:00Z"},
		{"CUST response", office, "2019-03-04T12:00:00Z", 2 * time.Hour, "2019-03-04T14:00:00Z"},
		{"CUST resolution", office, "2019-03-04T12:00:00Z", 3 * time.Hour, "2019-03-04T15:00:00Z"},
		{"hold: resolution plus 30m hold", office, "2026-01-05T12:00:00Z", 4*time.Hour + 30*time.Minute, "2026-01-05T16:30:00Z"},
		{"reopen: 24-hour", allDay, "2021-11-01T13:00:00Z", 6*time.Hour + 7*time.Hour, "2021-11-02T02:00:00Z"},
		{"reopen: 24-hour after reopen", allDay, "2021-11-01T13:00:00Z", 6*time.Hour + 12*time.Hour, "2021-11-02T07:00:00Z"},
		{"transitions: 4h plus 24900s of hold", office, "2026-02-02T09:00:00Z", 4*time.Hour + 24900*time.Second, "2026-02-03T12:55:00Z"},
		{"zero target", office, "2019-03-04T20:00:00Z", 0, "2019-03-04T20:00:00Z"},
		{"start on a holiday", office, "2019-03-05T11:00:00Z", time.Hour, "2019-03-06T11:00:00Z"},
		{"start at the opening", office, "2019-03-04T10:00:00Z", 8 * time.Hour, "2019-03-04T18:00:00Z"},
		{"nanoseconds are kept", office, "2019-03-04T17:59:59.999999999Z", 2 * time.Nanosecond, "2019-03-06T10:00:00.000000001Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := mustTime(t, tc.start)
			got := tc.calendar.BusinessAdd(start, tc.target)
			if want := mustTime(t, tc.due); !got.Equal(want) {
				t.Errorf("BusinessAdd(%s, %v) = %v, want %v", tc.start, tc.target, got, want)
			}
			if back := tc.calendar.Business(start, got); back != tc.target {
				t.Errorf("Business back = %v, want %v", back, tc.target)
			}
		})
	}
}

func TestCalendarLunchBreak(t *testing.T) {
	c := mustCalendar(t, CalendarSpec{
		Timezone: "UTC",
		Hours:    weekHours(workdays, [2]string{"09:00", "12:00"}, [2]string{"13:00", "17:00"}),
	})
	monday := func(clock string) time.Time { return localTime(t, "UTC", "2026-01-05 "+clock) }
	if got := c.Business(monday("11:00"), monday("14:00")); got != 2*time.Hour {
		t.Errorf("Business across lunch = %v, want 2h", got)
	}
	if got := c.Business(monday("12:10"), monday("12:50")); got != 0 {
		t.Errorf("Business inside lunch = %v, want 0", got)
	}
	for _, tc := range []struct {
		start  string
		target time.Duration
		due    time.Time
	}{
		{"11:00", time.Hour, monday("12:00")}, // due when the morning closes, not at 13:00
		{"11:00", 2 * time.Hour, monday("14:00")},
		{"12:30", time.Minute, monday("13:01")},
		{"09:00", 7 * time.Hour, monday("17:00")},
		{"09:00", 7*time.Hour + time.Minute, localTime(t, "UTC", "2026-01-06 09:01")},
	} {
		if got := c.BusinessAdd(monday(tc.start), tc.target); !got.Equal(tc.due) {
			t.Errorf("BusinessAdd(Mon %s, %v) = %v, want %v", tc.start, tc.target, got, tc.due)
		}
	}
}

func TestCalendarSplitShifts(t *testing.T) {
	// Given out of order: the calendar sorts a day's windows.
	c := mustCalendar(t, CalendarSpec{
		Timezone: "Asia/Kolkata",
		Hours:    weekHours(workdays, [2]string{"18:00", "22:00"}, [2]string{"06:00", "10:00"}),
	})
	at := func(s string) time.Time { return localTime(t, "Asia/Kolkata", s) }
	if got := c.Business(at("2026-01-05 08:00"), at("2026-01-05 20:00")); got != 4*time.Hour {
		t.Errorf("Business = %v, want 4h", got)
	}
	if got, want := c.BusinessAdd(at("2026-01-05 08:00"), 5*time.Hour), at("2026-01-05 21:00"); !got.Equal(want) {
		t.Errorf("BusinessAdd = %v, want %v", got, want)
	}
	// Friday evening to Monday morning.
	if got, want := c.BusinessAdd(at("2026-01-09 21:00"), 2*time.Hour), at("2026-01-12 07:00"); !got.Equal(want) {
		t.Errorf("BusinessAdd over the weekend = %v, want %v", got, want)
	}
}

func TestCalendarEndOfDay(t *testing.T) {
	c := mustCalendar(t, CalendarSpec{
		Timezone: "UTC",
		Hours: map[string][][2]string{
			"Monday":  {{"20:00", "24:00"}},
			"Tuesday": {{"00:00", "02:00"}},
		},
	})
	at := func(s string) time.Time { return localTime(t, "UTC", s) }
	if got, want := c.BusinessAdd(at("2026-01-05 22:00"), 2*time.Hour), at("2026-01-06 00:00"); !got.Equal(want) {
		t.Errorf("BusinessAdd to 24:00 = %v, want %v", got, want)
	}
	if got, want := c.BusinessAdd(at("2026-01-05 22:00"), 3*time.Hour), at("2026-01-06 01:00"); !got.Equal(want) {
		t.Errorf("BusinessAdd across midnight = %v, want %v", got, want)
	}
	if got := c.Business(at("2026-01-05 00:00"), at("2026-01-07 00:00")); got != 6*time.Hour {
		t.Errorf("Business = %v, want 6h", got)
	}
}

func TestCalendarSeveralWeeks(t *testing.T) {
	c := mustCalendar(t, CalendarSpec{
		Timezone: "UTC",
		Hours:    weekHours(workdays, [2]string{"10:00", "18:00"}),
		Holidays: []string{"2026-01-19"},
	})
	start := mustTime(t, "2026-01-05T10:00:00Z")
	// Five 40 h weeks, one of them with a holiday Monday: due a day later.
	due := c.BusinessAdd(start, 200*time.Hour)
	if want := mustTime(t, "2026-02-09T18:00:00Z"); !due.Equal(want) {
		t.Errorf("BusinessAdd(200h) = %v, want %v", due, want)
	}
	if got := c.Business(start, due); got != 200*time.Hour {
		t.Errorf("Business = %v, want 200h", got)
	}
	// A year of business time: 2190 hours, 273.75 working days.
	year := c.BusinessAdd(start, 2190*time.Hour)
	if got := c.Business(start, year); got != 2190*time.Hour {
		t.Errorf("Business over a year = %v", got)
	}
}

// TestCalendarDST uses the clock changes of Europe/Paris in 2026: 29 March (02:00
// becomes 03:00) and 25 October (03:00 becomes 02:00).
func TestCalendarDST(t *testing.T) {
	const paris = "Europe/Paris"
	at := func(s string) time.Time { return localTime(t, paris, s) }
	calendar := func(window [2]string) *Calendar {
		return mustCalendar(t, CalendarSpec{Timezone: paris, Hours: weekHours(everyDay, window)})
	}
	allDay := calendar([2]string{"00:00", "24:00"})
	night := calendar([2]string{"01:00", "04:00"})
	gapHour := calendar([2]string{"02:00", "03:00"})
	halfInGap := calendar([2]string{"01:30", "02:30"})

	for _, tc := range []struct {
		name     string
		calendar *Calendar
		day      string
		want     time.Duration
	}{
		{"24h calendar, spring forward", allDay, "2026-03-29", 23 * time.Hour},
		{"24h calendar, fall back", allDay, "2026-10-25", 25 * time.Hour},
		{"24h calendar, ordinary day", allDay, "2026-03-28", 24 * time.Hour},
		{"01:00-04:00, spring forward", night, "2026-03-29", 2 * time.Hour},
		{"01:00-04:00, fall back", night, "2026-10-25", 4 * time.Hour},
		{"02:00-03:00 does not exist in spring", gapHour, "2026-03-29", 0},
		{"02:00-03:00 happens twice in autumn", gapHour, "2026-10-25", 2 * time.Hour},
		{"01:30-02:30 ends when clocks jump", halfInGap, "2026-03-29", 30 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := at(tc.day + " 00:00")
			to := from.AddDate(0, 0, 1) // next local midnight
			if got := tc.calendar.Business(from, to); got != tc.want {
				t.Errorf("Business over %s = %v, want %v", tc.day, got, tc.want)
			}
			if tc.want == 0 {
				return
			}
			if got := tc.calendar.BusinessAdd(from, tc.want); got.After(to) {
				t.Errorf("BusinessAdd(%s, %v) = %v, after the day's end %v", tc.day, tc.want, got, to)
			}
		})
	}

	for _, tc := range []struct {
		name     string
		calendar *Calendar
		start    string
		target   time.Duration
		due      time.Time
	}{
		{"24h across spring forward", allDay, "2026-03-28 12:00", 24 * time.Hour, at("2026-03-29 13:00")},
		{"24h across fall back", allDay, "2026-10-24 12:00", 24 * time.Hour, at("2026-10-25 11:00")},
		{"night window across the jump", night, "2026-03-29 00:00", 90 * time.Minute, at("2026-03-29 03:30")},
		{"night window before the repeat", night, "2026-10-25 00:00", 90 * time.Minute, mustTime(t, "2026-10-25T00:30:00Z")},
		{"night window in the repeated hour", night, "2026-10-25 00:00", 150 * time.Minute, mustTime(t, "2026-10-25T01:30:00Z")},
		{"gap hour skips spring forward day", gapHour, "2026-03-29 00:00", 30 * time.Minute, at("2026-03-30 02:30")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.calendar.BusinessAdd(at(tc.start), tc.target); !got.Equal(tc.due) {
				t.Errorf("BusinessAdd(%s, %v) = %v, want %v", tc.start, tc.target, got, tc.due.UTC())
			}
		})
	}

	// Starting in the repeated hour, after clocks fell back: 02:30 was first read
	// an hour earlier, so a window ending then is over.
	endsInRepeat := calendar([2]string{"01:00", "02:30"})
	secondTwoFifteen := mustTime(t, "2026-10-25T01:15:00Z") // 02:15 CET
	if got := endsInRepeat.Business(secondTwoFifteen, mustTime(t, "2026-10-25T03:00:00Z")); got != 0 {
		t.Errorf("Business after the window's first 02:30 = %v, want 0", got)
	}
	if got, want := endsInRepeat.BusinessAdd(secondTwoFifteen, time.Minute), at("2026-10-26 01:01"); !got.Equal(want) {
		t.Errorf("BusinessAdd from the repeated hour = %v, want %v", got, want)
	}
}

func TestCalendarDSTNewYork(t *testing.T) {
	// America/New_York in 2026: 8 March 02:00 becomes 03:00; 1 November 02:00
	// becomes 01:00.
	const newYork = "America/New_York"
	at := func(s string) time.Time { return localTime(t, newYork, s) }
	c := mustCalendar(t, CalendarSpec{Timezone: newYork, Hours: weekHours(everyDay, [2]string{"00:30", "02:30"})})
	for _, tc := range []struct {
		name   string
		start  string
		target time.Duration
		due    time.Time
	}{
		{"window cut by the jump", "2026-03-08 00:00", 90 * time.Minute, at("2026-03-08 03:00")},
		{"then the next day", "2026-03-08 00:00", 91 * time.Minute, at("2026-03-09 00:31")},
		{"window with the repeated hour", "2026-11-01 00:00", 2*time.Hour + 30*time.Minute, mustTime(t, "2026-11-01T07:00:00Z")},
		{"whole window with the repeated hour", "2026-11-01 00:00", 3 * time.Hour, at("2026-11-01 02:30")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.BusinessAdd(at(tc.start), tc.target); !got.Equal(tc.due) {
				t.Errorf("BusinessAdd(%s, %v) = %v, want %v", tc.start, tc.target, got, tc.due.UTC())
			}
		})
	}
}

func TestCalendarInstantSemantics(t *testing.T) {
	c := acceptanceCalendar(t)
	utc := mustTime(t, "2019-03-04T20:00:00Z")
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	fromUTC := c.BusinessAdd(utc, 4*time.Hour)
	fromTokyo := c.BusinessAdd(utc.In(tokyo), 4*time.Hour)
	if !fromUTC.Equal(fromTokyo) || fromUTC.Location() != time.UTC || fromTokyo.Location() != time.UTC {
		t.Errorf("BusinessAdd depends on the start's location: %v vs %v", fromUTC, fromTokyo)
	}
	if got := c.BusinessAdd(utc.In(tokyo), 0); !got.Equal(utc) || got.Location() != time.UTC {
		t.Errorf("BusinessAdd(a, 0) = %v, want a in UTC", got)
	}
	b := mustTime(t, "2019-03-08T12:00:00Z")
	if c.Business(utc.In(tokyo), b) != c.Business(utc, b.In(tokyo)) {
		t.Error("Business depends on the locations of its arguments")
	}
	// time.Now carries a monotonic reading; it must not change the arithmetic.
	now := time.Now()
	if c.Business(now, now.Add(72*time.Hour)) != c.Business(now.Round(0), now.Round(0).Add(72*time.Hour)) {
		t.Error("Business depends on monotonic readings")
	}
}

func TestNewCalendarNormalises(t *testing.T) {
	spec := CalendarSpec{
		Timezone:     "Europe/Paris",
		Hours:        map[string][][2]string{"monday": {{"13:00", "17:00"}, {"09:00", "12:00"}}, "Sunday": {}},
		Holidays:     []string{"2026-05-01", "2026-05-01"},
		HolidayLists: []string{"France"},
	}
	c := mustCalendar(t, spec)
	if c.Location().String() != "Europe/Paris" {
		t.Errorf("Location = %v", c.Location())
	}
	spec.Hours["monday"][0][0] = "00:00"
	spec.Holidays[0] = "garbage"
	got := c.Spec()
	if got.Hours["monday"][0][0] != "13:00" || got.Holidays[0] != "2026-05-01" || got.HolidayLists[0] != "France" {
		t.Errorf("Spec shares memory with the input: %+v", got)
	}
	got.Hours["monday"][1][0] = "00:00"
	if c.Spec().Hours["monday"][1][0] != "09:00" {
		t.Error("Spec shares memory with the calendar")
	}
	monday := localTime(t, "Europe/Paris", "2026-01-05 00:00")
	if got := c.Business(monday, monday.Add(24*time.Hour)); got != 7*time.Hour {
		t.Errorf("Business on Monday = %v, want 7h", got)
	}
	if got := c.Business(localTime(t, "Europe/Paris", "2026-05-01 00:00"), localTime(t, "Europe/Paris", "2026-05-02 00:00")); got != 0 {
		t.Errorf("Business on a holiday = %v, want 0", got)
	}
}

func TestNewCalendarValidation(t *testing.T) {
	valid := func() CalendarSpec {
		return CalendarSpec{Timezone: "UTC", Hours: map[string][][2]string{"Monday": {{"09:00", "17:00"}}}}
	}
	for _, tc := range []struct {
		name   string
		edit   func(*CalendarSpec)
		fields []string
	}{
		{"missing zone", func(s *CalendarSpec) { s.Timezone = "" }, []string{"timezone"}},
		{"unknown zone", func(s *CalendarSpec) { s.Timezone = "Mars/Olympus" }, []string{"timezone"}},
		{"server zone", func(s *CalendarSpec) { s.Timezone = "Local" }, []string{"timezone"}},
		{"unknown weekday", func(s *CalendarSpec) { s.Hours["Funday"] = [][2]string{{"09:00", "10:00"}} }, []string{"hours.Funday"}},
		{"weekday twice", func(s *CalendarSpec) { s.Hours["MONDAY"] = [][2]string{{"18:00", "19:00"}} }, []string{"hours.Monday"}},
		{"bad start", func(s *CalendarSpec) { s.Hours["Monday"][0][0] = "9:00" }, []string{"hours.Monday[0]"}},
		{"bad end", func(s *CalendarSpec) { s.Hours["Monday"][0][1] = "17:60" }, []string{"hours.Monday[0]"}},
		{"after 24:00", func(s *CalendarSpec) { s.Hours["Monday"][0][1] = "24:30" }, []string{"hours.Monday[0]"}},
		{"not digits", func(s *CalendarSpec) { s.Hours["Monday"][0][0] = "+9:00" }, []string{"hours.Monday[0]"}},
		{"both ends bad", func(s *CalendarSpec) { s.Hours["Monday"][0] = [2]string{"", "x"} }, []string{"hours.Monday[0]", "hours.Monday[0]"}},
		{"end before start", func(s *CalendarSpec) { s.Hours["Monday"][0] = [2]string{"17:00", "09:00"} }, []string{"hours.Monday[0]"}},
		{"empty window", func(s *CalendarSpec) { s.Hours["Monday"][0] = [2]string{"09:00", "09:00"} }, []string{"hours.Monday[0]"}},
		{"start at 24:00", func(s *CalendarSpec) { s.Hours["Monday"][0] = [2]string{"24:00", "24:00"} }, []string{"hours.Monday[0]"}},
		{"overlap", func(s *CalendarSpec) {
			s.Hours["Tuesday"] = [][2]string{{"13:00", "17:00"}, {"08:00", "12:00"}, {"11:00", "14:00"}}
		}, []string{"hours.Tuesday[2]", "hours.Tuesday[0]"}},
		{"no window", func(s *CalendarSpec) { s.Hours = map[string][][2]string{"Monday": {}} }, []string{"hours"}},
		{"no hours", func(s *CalendarSpec) { s.Hours = nil }, []string{"hours"}},
		{"bad holiday", func(s *CalendarSpec) { s.Holidays = []string{"2026-01-01", "2026-02-30"} }, []string{"holidays[1]"}},
		{"empty holiday list name", func(s *CalendarSpec) { s.HolidayLists = []string{" "} }, []string{"holiday_lists[0]"}},
		{"several problems", func(s *CalendarSpec) {
			s.Timezone = "Nowhere"
			s.Hours = nil
			s.Holidays = []string{"soon"}
		}, []string{"timezone", "hours", "holidays[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := valid()
			tc.edit(&spec)
			_, err := NewCalendar(spec)
			assertFields(t, err, tc.fields...)
		})
	}
	t.Run("touching windows are fine", func(t *testing.T) {
		spec := valid()
		spec.Hours["Monday"] = [][2]string{{"12:00", "24:00"}, {"00:00", "12:00"}}
		mustCalendar(t, spec)
	})
}

// assertFields checks that err is a *ValidationError wrapping ErrValidation whose
// fields are exactly fields, in order.
func assertFields(t *testing.T, err error, fields ...string) {
	t.Helper()
	var verr *ValidationError
	if !errors.As(err, &verr) || !errors.Is(err, ErrValidation) {
		t.Fatalf("error = %v, want a *ValidationError", err)
	}
	got := make([]string, len(verr.Fields))
	for i, f := range verr.Fields {
		got[i] = f.Field
		if f.Message == "" {
			t.Errorf("field %s has no message", f.Field)
		}
	}
	if !slices.Equal(got, fields) {
		t.Errorf("fields = %q, want %q (%v)", got, fields, err)
	}
}

var propertyZones = []string{"UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"}

// randomCalendar builds a calendar with 0 to 3 windows a day on a random minute grid
// (at least one in the week), in a random zone, with holidays around 2026.
func randomCalendar(t testing.TB, r *rand.Rand) *Calendar {
	spec := CalendarSpec{Timezone: propertyZones[r.IntN(len(propertyZones))], Hours: map[string][][2]string{}}
	for len(spec.Hours) == 0 {
		for _, day := range everyDay {
			n := r.IntN(4)
			if n == 0 {
				continue
			}
			// 2n distinct sorted minutes of the day, 24:00 included, paired up.
			minutes := r.Perm(24*60 + 1)[:2*n]
			slices.Sort(minutes)
			for i := 0; i < len(minutes); i += 2 {
				spec.Hours[day] = append(spec.Hours[day], [2]string{clockString(minutes[i]), clockString(minutes[i+1])})
			}
		}
	}
	for range r.IntN(20) {
		spec.Holidays = append(spec.Holidays, time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(500)).Format(time.DateOnly))
	}
	return mustCalendar(t, spec)
}

func clockString(minute int) string {
	return fmt.Sprintf("%02d:%02d", minute/60, minute%60)
}

// randomInstant is in 2026, which has every clock change of the zones above; a third
// of the time it is within a day and a half of one of loc's clock changes, which
// uniform instants would rarely come near. Half of the time it is on a whole minute,
// so that window boundaries are hit exactly.
func randomInstant(r *rand.Rand, loc *time.Location) time.Time {
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(365 * 24 * time.Hour))))
	if _, change := t.In(loc).ZoneBounds(); !change.IsZero() && r.IntN(3) == 0 {
		t = change.Add(time.Duration(r.Int64N(int64(72*time.Hour))) - 36*time.Hour)
	}
	if r.IntN(2) == 0 {
		t = t.Truncate(time.Minute)
	}
	return t
}

func randomTarget(r *rand.Rand) time.Duration {
	switch r.IntN(4) {
	case 0:
		return time.Duration(r.IntN(24*60)) * time.Minute
	case 1:
		return time.Duration(r.Int64N(int64(21 * 24 * time.Hour)))
	case 2:
		return time.Duration(r.IntN(5)) // a few nanoseconds
	default:
		return time.Duration(r.IntN(400)) * time.Hour
	}
}

func TestCalendarProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(2026, 3))
	for i := range 3000 {
		c := randomCalendar(t, r)
		a := randomInstant(r, c.Location())
		x := randomTarget(r)
		where := fmt.Sprintf("case %d: zone %s hours %v holidays %v a %s x %v", i, c.spec.Timezone, c.spec.Hours, c.spec.Holidays, a.Format(time.RFC3339Nano), x)

		due := c.BusinessAdd(a, x)
		if due.Before(a) || due.Location() != time.UTC {
			t.Fatalf("%s: BusinessAdd = %v", where, due)
		}
		if got := c.Business(a, due); got != x {
			t.Fatalf("%s: Business(a, BusinessAdd(a, x)) = %v", where, got)
		}
		if x > 0 {
			if got := c.Business(a, due.Add(-time.Nanosecond)); got >= x {
				t.Fatalf("%s: BusinessAdd not minimal: Business(a, due-1ns) = %v", where, got)
			}
			if got := c.Business(a, due.Add(-time.Second)); got >= x {
				t.Fatalf("%s: BusinessAdd not minimal: Business(a, due-1s) = %v", where, got)
			}
		}

		points := []time.Time{a, randomInstant(r, c.Location()), randomInstant(r, c.Location())}
		slices.SortFunc(points, time.Time.Compare)
		p, q, s := points[0], points[1], points[2]
		pq, qs, ps := c.Business(p, q), c.Business(q, s), c.Business(p, s)
		if pq+qs != ps {
			t.Fatalf("%s: not additive: %v + %v != %v over %v, %v, %v", where, pq, qs, ps, p, q, s)
		}
		if pq < 0 || qs < 0 || pq > q.Sub(p) || qs > s.Sub(q) {
			t.Fatalf("%s: Business out of [0, b-a]: %v over %v; %v over %v", where, pq, q.Sub(p), qs, s.Sub(q))
		}
	}
}

// TestCalendarAgainstMinuteWalk compares Business with a direct count of working
// minutes in zones without clock changes, where a wall-clock minute is worked when
// its date is no holiday and a window of its weekday contains it.
func TestCalendarAgainstMinuteWalk(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for i := range 300 {
		var c *Calendar
		for c == nil || c.spec.Timezone != "UTC" && c.spec.Timezone != "Asia/Kolkata" {
			c = randomCalendar(t, r)
		}
		a := randomInstant(r, c.Location()).Truncate(time.Minute)
		b := a.Add(time.Duration(r.IntN(4*24*60)) * time.Minute)
		var want time.Duration
		for m := a; m.Before(b); m = m.Add(time.Minute) {
			if workedMinute(c, m.In(c.Location())) {
				want += time.Minute
			}
		}
		if got := c.Business(a, b); got != want {
			t.Fatalf("case %d: zone %s hours %v holidays %v: Business(%v, %v) = %v, minute walk %v",
				i, c.spec.Timezone, c.spec.Hours, c.spec.Holidays, a, b, got, want)
		}
	}
}

func workedMinute(c *Calendar, local time.Time) bool {
	if slices.Contains(c.spec.Holidays, local.Format(time.DateOnly)) {
		return false
	}
	now := local.Format("15:04")
	for _, w := range c.spec.Hours[local.Weekday().String()] {
		if w[0] <= now && now < w[1] {
			return true
		}
	}
	return false
}

func TestCalendarDoesNotAllocate(t *testing.T) {
	c := mustCalendar(t, CalendarSpec{
		Timezone: "Europe/Paris",
		Hours:    weekHours(workdays, [2]string{"09:00", "12:00"}, [2]string{"13:00", "17:00"}),
		Holidays: []string{"2026-03-31"},
	})
	a := localTime(t, "Europe/Paris", "2026-03-27 10:00")
	b := a.Add(10 * 24 * time.Hour)
	if n := testing.AllocsPerRun(100, func() { c.Business(a, b) }); n != 0 {
		t.Errorf("Business allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { c.BusinessAdd(a, 40*time.Hour) }); n != 0 {
		t.Errorf("BusinessAdd allocates %v times", n)
	}
}

func FuzzBusinessAdd(f *testing.F) {
	f.Add(uint8(0), uint16(600), uint16(480), uint8(0b0011111), int64(1551700800), int64(4*3600*1e9), uint16(0))
	f.Add(uint8(1), uint16(60), uint16(180), uint8(0b1000000), int64(1774742400), int64(90*60*1e9), uint16(10))
	f.Add(uint8(4), uint16(0), uint16(1440), uint8(0b1111111), int64(1775347200), int64(1), uint16(3))
	f.Fuzz(func(t *testing.T, zone uint8, startMinute, lengthMinutes uint16, days uint8, unix, x int64, holiday uint16) {
		start := int(startMinute) % (24 * 60)
		end := min(start+1+int(lengthMinutes)%(24*60), 24*60)
		days |= 1 // at least one working day
		spec := CalendarSpec{
			Timezone: propertyZones[int(zone)%len(propertyZones)],
			Hours:    map[string][][2]string{},
			Holidays: []string{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(holiday)%400).Format(time.DateOnly)},
		}
		for i, day := range everyDay {
			if days&(1<<i) != 0 {
				spec.Hours[day] = [][2]string{{clockString(start), clockString(end)}}
			}
		}
		c := mustCalendar(t, spec)
		// 1970 to 2100, and targets up to 90 days.
		a := time.Unix(0, 0).Add(time.Duration(uint64(unix) % uint64(130*365*24*time.Hour))).UTC()
		target := time.Duration(uint64(x) % uint64(90*24*time.Hour))

		due := c.BusinessAdd(a, target)
		if got := c.Business(a, due); got != target {
			t.Fatalf("Business(%v, BusinessAdd(%v, %v) = %v) = %v", a, a, target, due, got)
		}
		if target > 0 && c.Business(a, due.Add(-time.Nanosecond)) >= target {
			t.Fatalf("BusinessAdd(%v, %v) = %v is not minimal", a, target, due)
		}
	})
}

func BenchmarkBusiness(b *testing.B) {
	c := mustCalendar(b, CalendarSpec{
		Timezone: "Europe/Paris",
		Hours:    weekHours(workdays, [2]string{"09:00", "12:00"}, [2]string{"13:00", "17:00"}),
		Holidays: []string{"2026-05-01", "2026-05-08", "2026-05-14"},
	})
	from := localTime(b, "Europe/Paris", "2026-05-04 08:00")
	to := localTime(b, "Europe/Paris", "2026-05-07 15:00") // three and a half days
	for b.Loop() {
		c.Business(from, to)
	}
}

func BenchmarkBusinessAdd(b *testing.B) {
	c := mustCalendar(b, CalendarSpec{
		Timezone: "Europe/Paris",
		Hours:    weekHours(workdays, [2]string{"09:00", "12:00"}, [2]string{"13:00", "17:00"}),
		Holidays: []string{"2026-05-01", "2026-05-08", "2026-05-14"},
	})
	from := localTime(b, "Europe/Paris", "2026-05-04 08:00")
	for b.Loop() {
		c.BusinessAdd(from, 24*time.Hour) // three and a half working days
	}
}
