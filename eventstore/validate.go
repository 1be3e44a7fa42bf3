package eventstore

import "fmt"

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
