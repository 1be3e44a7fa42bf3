package domain

import (
	"encoding/json"
	"fmt"
)

// Upcasters read the data of an older schema version as the next version's. They run
// when an event is decoded, never on the store: stored bytes are never rewritten, and
// the hash chain covers the stored bytes, so old events keep verifying (see
// docs/events.md#versioning-and-upcasting).

// upcastClosedV1 reads ticket.closed version 1, {"automatic": true|absent, "reason"},
// as version 2, {"closed_by": "auto-close"|"agent", "reason"}. Version 1 had only two
// kinds of close: the scheduler's (automatic: true) and a person's (automatic absent or
// false). Other properties are kept as they are.
func upcastClosedV1(old json.RawMessage) (json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(old, &fields); err != nil {
		return nil, err
	}
	if fields == nil { // the JSON null
		return nil, fmt.Errorf("ticket.closed v1: data is not an object")
	}
	automatic := false
	if raw, ok := fields["automatic"]; ok {
		if err := json.Unmarshal(raw, &automatic); err != nil {
			return nil, fmt.Errorf("ticket.closed v1: automatic: %w", err)
		}
		delete(fields, "automatic")
	}
	closedBy := ClosedByAgent
	if automatic {
		closedBy = ClosedByAutoClose
	}
	fields["closed_by"], _ = json.Marshal(closedBy)
	return json.Marshal(fields)
}
