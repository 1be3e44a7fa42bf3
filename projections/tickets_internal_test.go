package projections

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketcore/ticketcore/domain"
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

// TestTicketsByNumber finds tickets by number before the index exists, and after, for
// tickets created once it was built.
func TestTicketsByNumber(t *testing.T) {
	m := NewTickets()
	pos := uint64(0)
	create := func(id, number string) {
		t.Helper()
		pos++
		e := domain.Event{Type: "ticket.created", Stream: domain.TicketStream(id), Sequence: 1, OccurredAt: time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC),
			Payload: domain.TicketCreated{TicketID: id, Number: number, TicketFieldsData: domain.TicketFieldsData{Subject: "s", RaisedBy: "a@example.com"}}}
		if err := m.Apply(e, pos); err != nil {
			t.Fatal(err)
		}
	}
	create("0b9f6c1e-2d3a-4e7b-9c0d-1a2b3c4d5e6f", "TKT-2026-000001")
	create("t2", "TKT-2026-000002")
	at := time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct{ key, id string }{
		{"TKT-2026-000001", "0b9f6c1e-2d3a-4e7b-9c0d-1a2b3c4d5e6f"}, {"TKT-2026-000002", "t2"}, {"t2", "t2"},
	} {
		if v, ok := m.Get(c.key, at); !ok || v.ID != c.id {
			t.Fatalf("Get(%q) = %q, %v; want %q", c.key, v.ID, ok, c.id)
		}
	}
	create("t3", "TKT-2026-000003") // after the index was built
	if v, ok := m.Get("TKT-2026-000003", at); !ok || v.ID != "t3" {
		t.Fatalf("Get of a ticket created after the index = %q, %v", v.ID, ok)
	}
	if _, ok := m.Get("TKT-2026-000004", at); ok {
		t.Fatal("found a ticket that does not exist")
	}
	m.Reset()
	if _, ok := m.Get("TKT-2026-000001", at); ok {
		t.Fatal("found a ticket after Reset")
	}
}

// TestTicketIndexCollision keeps two tickets whose UUIDs fold to the same key apart.
func TestTicketIndexCollision(t *testing.T) {
	a := "00000000-0000-0000-0000-000000000001"
	b := "00000000-0000-0001-0000-000000000000" // same fold: the halves are swapped
	ua, _ := parseUUID(a)
	ub, _ := parseUUID(b)
	if foldUUID(ua) != foldUUID(ub) {
		t.Fatal("the test's UUIDs do not collide")
	}
	var x ticketIndex
	ta, tb := &TicketState{}, &TicketState{}
	x.put(a, ta)
	x.put(b, tb)
	if x.get(a) != ta || x.get(b) != tb {
		t.Fatal("colliding UUIDs were confused")
	}
}

// TestEventPositions: the model knows where every event of a ticket is, beyond those
// kept inline too, keeps them through an event applied again, and knows the ticket no
// more once it missed one.
func TestEventPositions(t *testing.T) {
	const id = "0b9f6c1e-2d3a-4e7b-9c0d-1a2b3c4d5e6f"
	m := NewTickets()
	at := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	apply := func(seq, pos uint64) {
		t.Helper()
		e := domain.Event{Type: "ticket.comment_added", Stream: domain.TicketStream(id), Sequence: seq, OccurredAt: at,
			Payload: domain.CommentAdded{Body: "note"}}
		if seq == 1 {
			e.Type, e.Payload = "ticket.created", domain.TicketCreated{TicketID: id, Number: "TKT-2026-000001",
				TicketFieldsData: domain.TicketFieldsData{Subject: "s", RaisedBy: "a@example.com"}}
		}
		if err := m.Apply(e, pos); err != nil {
			t.Fatal(err)
		}
	}
	var want []uint64
	for seq := uint64(1); seq <= 2*inlinePositions+3; seq++ {
		apply(seq, 10*seq)
		want = append(want, 10*seq)
		if got := m.EventPositions(id); !slices.Equal(got, want) {
			t.Fatalf("after %d events: positions %v, want %v", seq, got, want)
		}
	}
	apply(inlinePositions+2, 10*(inlinePositions+2)) // applied again
	if got := m.EventPositions(id); !slices.Equal(got, want) {
		t.Fatalf("after an event applied again: positions %v, want %v", got, want)
	}
	if m.EventPositions("t2") != nil {
		t.Error("positions of a ticket the model does not have")
	}
	apply(2*inlinePositions+5, 1000) // the one before it was missed
	if got := m.EventPositions(id); got != nil {
		t.Errorf("after a missed event: positions %v, want none", got)
	}
}
