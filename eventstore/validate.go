package eventstore

import (
	"cmp"
	"fmt"
	"slices"
)

// ValidateAppend checks the rules every adapter shares before it stores anything: a
// valid stream name, at least one event, and events with an ID and a type. IDs are the
// idempotency keys, so they must also be distinct within the batch, and neither IDs nor
// types may hold control characters, since adapters carry them in message headers.
// The error wraps ErrInvalid.
func ValidateAppend(stream string, events []EventData) error {
	if !ValidStreamName(stream) {
		return fmt.Errorf("invalid stream name %q: %w", stream, ErrInvalid)
	}
	if len(events) == 0 {
		return fmt.Errorf("no events: %w", ErrInvalid)
	}
	seen := make(map[string]struct{}, len(events))
	for i, ev := range events {
		if !validHeaderValue(ev.ID) || !validHeaderValue(ev.Type) {
			return fmt.Errorf("event %d: ID %q and type %q must be non-empty without control characters: %w", i, ev.ID, ev.Type, ErrInvalid)
		}
		if _, ok := seen[ev.ID]; ok {
			return fmt.Errorf("event %d: ID %s repeated in the batch: %w", i, ev.ID, ErrInvalid)
		}
		seen[ev.ID] = struct{}{}
	}
	return nil
}

func validHeaderValue(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// PickPositions is ReadAt for an adapter that reads the whole stream: it returns the
// stream's events (events, in order) stored at positions, in the order given.
func PickPositions(stream string, events []RecordedEvent, positions []uint64) ([]RecordedEvent, error) {
	out := make([]RecordedEvent, len(positions))
	for i, pos := range positions {
		k, found := slices.BinarySearchFunc(events, pos, func(e RecordedEvent, pos uint64) int { return cmp.Compare(e.Position, pos) })
		if !found {
			return nil, fmt.Errorf("read %s at position %d: no event of the stream there: %w", stream, pos, ErrInvalid)
		}
		out[i] = events[k]
	}
	return out, nil
}
