package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Duration is a time.Duration that reads and writes JSON as Go's duration syntax
// ("4h", "90m", "1h30m"), so SLA definitions stay readable by people. A JSON number
// is also read, as seconds, for clients that only deal in numbers.
type Duration time.Duration

// String formats the duration as time.Duration does ("4h0m0s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string such as "4h0m0s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.String())
}

// UnmarshalJSON reads a duration string ("4h", "1h30m") or a number of seconds.
// A JSON null leaves the value unchanged, as for the standard types.
func (d *Duration) UnmarshalJSON(data []byte) error {
	text := string(data)
	if text == "null" {
		return nil
	}
	if len(text) > 0 && text[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%w: duration %q is not in Go's syntax, such as \"4h\" or \"1h30m\"", ErrValidation, s)
		}
		*d = Duration(v)
		return nil
	}
	v, err := secondsToDuration(text)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// secondsToDuration converts a JSON number of seconds. Integers are converted exactly:
// going through float64 would lose nanoseconds beyond about 104 days.
func secondsToDuration(text string) (time.Duration, error) {
	outOfRange := fmt.Errorf("%w: duration %s seconds is out of range", ErrValidation, text)
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		if n > math.MaxInt64/int64(time.Second) || n < math.MinInt64/int64(time.Second) {
			return 0, outOfRange
		}
		return time.Duration(n) * time.Second, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, outOfRange
	}
	if err != nil {
		return 0, fmt.Errorf("%w: duration %s is neither a duration string nor a number of seconds", ErrValidation, text)
	}
	ns := math.Round(f * float64(time.Second))
	// float64(math.MaxInt64) rounds up to 2^63, which itself does not fit.
	if ns >= math.MaxInt64 || ns < math.MinInt64 {
		return 0, outOfRange
	}
	return time.Duration(ns), nil
}
