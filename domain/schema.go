package domain

import (
	"encoding/json"
	"fmt"
)

// payloadZero returns the zero value of the Go type registered for eventType (the type
// of its current schema version), for code that describes payloads by reflection: the
// JSON Schemas in docs/schemas are generated from these types by schema_test.go.
//
// It has the registered decoder read "{}" instead of keeping a zero value in every
// registry entry: every payload is a JSON object, so "{}" decodes to the zero value,
// and the registry needs no second way of naming its types.
func payloadZero(eventType string) (Payload, error) {
	k, ok := registry[eventType]
	if !ok {
		return nil, fmt.Errorf("unknown event type %q", eventType)
	}
	p, err := k.decode(json.RawMessage("{}"), json.Unmarshal)
	if err != nil {
		return nil, fmt.Errorf("zero value of %s: %w", eventType, err)
	}
	return p, nil
}
