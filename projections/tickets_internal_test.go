package projections

import (
	"testing"

	"github.com/google/uuid"
)

func TestParseUUID(t *testing.T) {
	for _, id := range []string{"0b9f6c1e-2d3a-4e7b-9c0d-1a2b3c4d5e6f", "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"} {
		got, ok := parseUUID(id)
		if want := uuid.MustParse(id); !ok || got != want {
			t.Errorf("parseUUID(%q) = %v, %v; want %v", id, got, ok, want)
		}
	}
	for _, id := range []string{"", "t1", "0B9F6C1E-2D3A-4E7B-9C0D-1A2B3C4D5E6F", "{0b9f6c1e-2d3a-4e7b-9c0d-1a2b3c4d5e6f}",
		"0b9f6c1e2d3a4e7b9c0d1a2b3c4d5e6f", "0b9f6c1e-2d3a-4e7b-9c0d-1a2b3c4d5e6g", "0b9f6c1e-2d3a-4e7b-9c0d_1a2b3c4d5e6f"} {
		if _, ok := parseUUID(id); ok {
			t.Errorf("parseUUID(%q) accepted a non-canonical ID", id)
		}
	}
}

// TestTicketIndex checks that IDs of both kinds are found again, and apart.
func TestTicketIndex(t *testing.T) {
	var x ticketIndex
	a, b := &TicketState{}, &TicketState{}
	x.put("0b9f6c1e-2d3a-4e7b-9c0d-1a2b3c4d5e6f", a)
	x.put("t1", b)
	if x.get("0b9f6c1e-2d3a-4e7b-9c0d-1a2b3c4d5e6f") != a || x.get("t1") != b || x.get("0B9F6C1E-2D3A-4E7B-9C0D-1A2B3C4D5E6F") != nil || x.get("t2") != nil {
		t.Fatal("ticketIndex lost or confused a ticket")
	}
}
