package domain

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestDurationMarshalJSON(t *testing.T) {
	for d, want := range map[Duration]string{
		Duration(4 * time.Hour):                `"4h0m0s"`,
		Duration(90 * time.Minute):             `"1h30m0s"`,
		Duration(1500 * time.Millisecond):      `"1.5s"`,
		0:                                      `"0s"`,
		Duration(-2*time.Hour - 3*time.Second): `"-2h0m3s"`,
	} {
		got, err := json.Marshal(d)
		if err != nil || string(got) != want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", time.Duration(d), got, err, want)
		}
	}
}

func TestDurationUnmarshalJSON(t *testing.T) {
	for input, want := range map[string]time.Duration{
		`"4h"`:        4 * time.Hour,
		`"90m"`:       90 * time.Minute,
		`"1h30m"`:     90 * time.Minute,
		`"4h0m0s"`:    4 * time.Hour,
		`"-5m"`:       -5 * time.Minute,
		`3600`:        time.Hour,
		`1.5`:         1500 * time.Millisecond,
		`2e3`:         2000 * time.Second,
		`0`:           0,
		`9223372036`:  9223372036 * time.Second,
		`0.000000001`: time.Nanosecond,
	} {
		var d Duration
		if err := json.Unmarshal([]byte(input), &d); err != nil || time.Duration(d) != want {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", input, time.Duration(d), err, want)
		}
	}
}

func TestDurationUnmarshalJSONRefuses(t *testing.T) {
	for _, input := range []string{`"4 hours"`, `""`, `"h"`, `9223372037`, `-9223372037`, `1e300`, `true`, `{}`} {
		var d Duration
		err := json.Unmarshal([]byte(input), &d)
		if err == nil {
			t.Errorf("Unmarshal(%s) = %v, want an error", input, time.Duration(d))
			continue
		}
		// true and {} are refused by encoding/json itself, as for any number.
		if input[0] != 't' && input[0] != '{' && !errors.Is(err, ErrValidation) {
			t.Errorf("Unmarshal(%s) error %v does not wrap ErrValidation", input, err)
		}
	}
}

func TestDurationNullLeavesValue(t *testing.T) {
	d := Duration(time.Minute)
	if err := json.Unmarshal([]byte(`null`), &d); err != nil || d != Duration(time.Minute) {
		t.Errorf("Unmarshal(null) = %v, %v; want 1m0s unchanged", d, err)
	}
}

func TestDurationRoundTripInPriority(t *testing.T) {
	in := SLAPriority{Name: "High", Response: Duration(30 * time.Minute), Resolution: Duration(26*time.Hour + time.Nanosecond)}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"High","response":"30m0s","resolution":"26h0m0.000000001s"}`; string(data) != want {
		t.Errorf("Marshal = %s, want %s", data, want)
	}
	var out SLAPriority
	if err := json.Unmarshal(data, &out); err != nil || out != in {
		t.Errorf("round trip = %+v, %v; want %+v", out, err, in)
	}
}
