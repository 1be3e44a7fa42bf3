package httpapi

import (
	"sync"

	"github.com/ticketcore/ticketcore/domain"
)

// historyCacheSize is how many tickets' histories a Server remembers.
const historyCacheSize = 4096

// histories remembers the histories of the tickets whose detail view was built
// lately, so that the answer to a command folds the ticket's history through the
// command's own events instead of reading the ticket's stream again: such a read
// loads the file blocks the ticket's events are spread over, 2 to 3 ms at the median
// and up to 100 ms on a store of 110 000 tickets (docs/performance.md).
//
// A remembered history is a prefix of the ticket's stream: streams only grow, and an
// event's sequence in its stream is unique, so events read once stay true. A command's
// events extend it only if they follow its last event; otherwise (another process
// wrote in between, or nothing is remembered) the answer reads the stream as before.
// Reads of the detail view (GET) always read the stream, and remember what they read.
// The zero value is ready to use.
type histories struct {
	mu   sync.Mutex
	byID map[string][]domain.Event
	ids  []string // in the order they were first remembered, the oldest forgotten first
	next int      // where the next new ticket goes in ids once it is full
}

// put remembers a ticket's history as read from the store, unless a longer one is
// remembered already (a command's answer may have extended it since the read began).
func (h *histories) put(id string, events []domain.Event) {
	if len(events) == 0 {
		return
	}
	kept := make([]domain.Event, len(events))
	for i, e := range events {
		kept[i] = withoutBytes(e)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if known, ok := h.byID[id]; ok && len(known) >= len(kept) {
		return
	}
	h.remember(id, kept)
}

// extend returns the ticket's history through added, the events a command just
// appended to its stream, when it remembers the history up to just before them (or
// added opens the stream), and remembers the longer history.
func (h *histories) extend(id string, added []domain.Event) ([]domain.Event, bool) {
	if len(added) == 0 {
		return nil, false // a retried command, which appended nothing
	}
	stream := domain.TicketStream(id)
	for i, e := range added {
		if e.Stream != stream || (i > 0 && e.Sequence != added[i-1].Sequence+1) {
			return nil, false
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	known := h.byID[id]
	switch first := added[0].Sequence; {
	case first == 1:
		known = nil
	case len(known) == 0 || known[len(known)-1].Sequence != first-1:
		return nil, false
	}
	// A new slice: answers being written hold the shorter one.
	history := make([]domain.Event, len(known), len(known)+len(added))
	copy(history, known)
	for _, e := range added {
		history = append(history, withoutBytes(e))
	}
	h.remember(id, history)
	return history, true
}

// remember stores a history, forgetting the oldest ticket when full; h.mu is held.
func (h *histories) remember(id string, events []domain.Event) {
	if h.byID == nil {
		h.byID = make(map[string][]domain.Event, historyCacheSize)
	}
	if _, ok := h.byID[id]; !ok {
		if len(h.ids) < historyCacheSize {
			h.ids = append(h.ids, id)
		} else {
			delete(h.byID, h.ids[h.next])
			h.ids[h.next] = id
			h.next = (h.next + 1) % historyCacheSize
		}
	}
	h.byID[id] = events
}

// withoutBytes drops an event's stored form, which the detail view does not use, so
// that a remembered history holds only the decoded events.
func withoutBytes(e domain.Event) domain.Event {
	e.Encoded, e.Data = nil, nil
	return e
}
