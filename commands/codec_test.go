package commands_test

import (
	"bytes"
	"testing"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
)

// TestDeriveIDIsStable pins IDs derived by the first implementation: a retried command
// must derive the IDs its first attempt stored, whichever build runs it.
func TestDeriveIDIsStable(t *testing.T) {
	tests := []struct {
		commandID string
		purpose   []string
		want      string
	}{
		{"cmd-1", nil, "38fec19c-f18b-5e17-9219-2d4b26d0a4a1"},
		{"cmd-1", []string{"ticket"}, "3a83c03e-dd76-52f8-b2de-af7ef9b121bb"},
		{"0b9f6c1e-2d3a-4e7b-9c0d-1a2b3c4d5e6f", []string{"ticket-3f1c7e0a-5b7d-4c1e-9a0b-2d4e6f8a0b1c", "0"}, "3311df16-1181-54eb-9b77-21da3f66f4dd"},
		{"0b9f6c1e-2d3a-4e7b-9c0d-1a2b3c4d5e6f", []string{"ticket-3f1c7e0a-5b7d-4c1e-9a0b-2d4e6f8a0b1c", "12"}, "cf151691-d7d5-5839-b69f-958963366ef5"},
		{"", []string{""}, "f8bccfbc-c571-5a2f-8ac2-e91a7691617d"},
		{"", nil, "be00b1be-7eb9-5bb8-bdb6-3501230ddd61"},
		{"a\x00b", nil, "a6c42644-bb7d-5c1d-9ee7-cfdf2bee4870"},
		{"a", []string{"b"}, "a6c42644-bb7d-5c1d-9ee7-cfdf2bee4870"},
		{"été 🎫", []string{"x", "", "y"}, "5389f4dd-ac21-5e6e-8443-5ac0da22cbe0"},
	}
	for _, tc := range tests {
		if got := commands.DeriveID(tc.commandID, tc.purpose...); got != tc.want {
			t.Errorf("DeriveID(%q, %q) = %s, want %s", tc.commandID, tc.purpose, got, tc.want)
		}
	}
}

// TestStoredEventsEncodeToTheirBytes reads events stored by an old build: encoding them
// again gives the stored bytes, and their hashes are computed as they were.
func TestStoredEventsEncodeToTheirBytes(t *testing.T) {
	for i, line := range readFixture(t, v1Fixture) {
		e, err := domain.DecodeEvent(line)
		if err != nil {
			t.Fatal(err)
		}
		if h := e.ComputeHash(); h != e.Hash {
			t.Errorf("line %d: hash %s, stored %s", i+1, h, e.Hash)
		}
		if b, err := e.Encode(); err != nil || !bytes.Equal(b, line) {
			t.Errorf("line %d: encoded again (%v):\n %s\nstored:\n %s", i+1, err, b, line)
		}
	}
}
