package httpapi

import (
	"fmt"
	"testing"

	"github.com/ticketcore/ticketcore/domain"
)

// events are n events of ticket id's stream, from sequence first.
func events(id string, first uint64, n int) []domain.Event {
	var out []domain.Event
	for i := range n {
		out = append(out, domain.Event{Stream: domain.TicketStream(id), Sequence: first + uint64(i),
			Data: []byte(`{}`), Encoded: []byte(`{"data":{}}`)})
	}
	return out
}

func TestHistories(t *testing.T) {
	var h histories
	const id = "7dd4f411-d404-53df-bac2-78e5d008719d"

	if _, ok := h.extend(id, events(id, 3, 1)); ok {
		t.Fatal("extended a history it does not know")
	}
	got, ok := h.extend(id, events(id, 1, 2)) // a creation opens the stream
	if !ok || len(got) != 2 {
		t.Fatalf("a new ticket's history: %d events, %v", len(got), ok)
	}
	if got[0].Encoded != nil || got[0].Data != nil {
		t.Error("a remembered event keeps its stored bytes")
	}
	if got, ok = h.extend(id, events(id, 3, 1)); !ok || len(got) != 3 || got[2].Sequence != 3 {
		t.Fatalf("extended by the next event: %d events, %v", len(got), ok)
	}
	held := got
	if _, ok := h.extend(id, events(id, 5, 1)); ok {
		t.Fatal("extended across a gap (another writer's event 4)")
	}
	if _, ok := h.extend(id, nil); ok {
		t.Fatal("extended by nothing")
	}
	if _, ok := h.extend(id, events("another", 4, 1)); ok {
		t.Fatal("extended by another stream's event")
	}
	if _, ok := h.extend(id, append(events(id, 4, 1), events(id, 6, 1)...)); ok {
		t.Fatal("extended by events with a gap between them")
	}

	// A read remembers what it read, unless a longer history is known.
	h.put(id, events(id, 1, 2))
	if got, ok := h.extend(id, events(id, 4, 1)); !ok || len(got) != 4 {
		t.Fatalf("after a shorter read: %d events, %v", len(got), ok)
	}
	h.put(id, events(id, 1, 6))
	if got, ok := h.extend(id, events(id, 7, 1)); !ok || len(got) != 7 {
		t.Fatalf("after a longer read: %d events, %v", len(got), ok)
	}
	if len(held) != 3 || held[2].Sequence != 3 {
		t.Fatal("a history handed out changed")
	}

	// The oldest ticket is forgotten first.
	for i := range historyCacheSize {
		other := fmt.Sprintf("other-%d", i)
		h.put(other, events(other, 1, 1))
	}
	if len(h.byID) != historyCacheSize {
		t.Fatalf("%d histories remembered, want %d", len(h.byID), historyCacheSize)
	}
	if _, ok := h.extend(id, events(id, 8, 1)); ok {
		t.Fatal("the oldest history was not forgotten")
	}
	if _, ok := h.extend("other-1", events("other-1", 2, 1)); !ok {
		t.Fatal("a recent history was forgotten")
	}
}
