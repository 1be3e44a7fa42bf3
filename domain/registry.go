package domain

import (
	"encoding/json"
	"fmt"
)

// Upcaster turns the data of one schema version into the next version's data.
type Upcaster func(old json.RawMessage) (json.RawMessage, error)

// Unmarshaler is a JSON decoding function with encoding/json's semantics.
type Unmarshaler func(data []byte, v any) error

type eventKind struct {
	name      string // the type name, shared by every event decoded with it
	version   int
	decode    func(json.RawMessage, Unmarshaler) (Payload, error)
	upcasters map[int]Upcaster // from version -> to version+1
}

var registry = map[string]*eventKind{}

// register declares an event type at its current schema version. upcasters[v] turns
// version v data into version v+1 data.
func register[T Payload](version int, upcasters map[int]Upcaster) {
	var zero T
	registry[zero.EventType()] = &eventKind{
		name:    zero.EventType(),
		version: version,
		decode: func(data json.RawMessage, unmarshal Unmarshaler) (Payload, error) {
			var v T
			if err := unmarshal(data, &v); err != nil {
				return nil, err
			}
			return v, nil
		},
		upcasters: upcasters,
	}
}

func init() {
	register[TicketCreated](1, nil)
	register[CustomerMessageReceived](1, nil)
	register[ReplySent](1, nil)
	register[CommentAdded](1, nil)
	register[PutOnHold](1, nil)
	register[TicketResolved](1, nil)
	register[TicketClosed](2, map[int]Upcaster{1: upcastClosedV1}) // v1: "automatic" bool; v2: "closed_by"
	register[TicketReopened](1, nil)
	register[TicketSplit](1, nil)
	register[PriorityChanged](1, nil)
	register[TypeChanged](1, nil)
	register[TicketAssigned](1, nil)
	register[TicketUnassigned](1, nil)
	register[SLAReset](1, nil)
	register[SLADeadlineMissed](1, nil)
	register[SLADeadlineApproaching](1, nil)
	register[UnrepliedAlert](1, nil)

	register[TicketTypeCreated](1, nil)
	register[TicketTypeUpdated](1, nil)
	register[TicketTypeRemoved](1, nil)
	register[TicketPriorityCreated](1, nil)
	register[TicketPriorityUpdated](1, nil)
	register[TicketPriorityRemoved](1, nil)
	register[SupportSettingsChanged](1, nil)
	register[SLASaved](1, nil)
	register[SLARemoved](1, nil)
	register[HolidayListSaved](1, nil)
	register[HolidayListRemoved](1, nil)
	register[TokenIssued](1, nil)
	register[TokenRevoked](1, nil)
	register[NumberBlockReserved](1, nil)
	register[AssignmentRuleSaved](1, nil)
	register[AssignmentRuleRemoved](1, nil)
	register[AssignmentSlotTaken](1, nil)

	register[EmailAccountSaved](1, nil) // domain/email.go
	register[EmailAccountRemoved](1, nil)
	register[EmailReceived](1, nil)
	register[EmailQueued](1, nil)
	register[EmailSent](1, nil)
	register[EmailFailed](1, nil)
	register[DeliveryBounced](1, nil)
}

// CurrentSchemaVersion is the version new events of that type are written with.
func CurrentSchemaVersion(eventType string) int {
	if k, ok := registry[eventType]; ok {
		return k.version
	}
	return 1
}

// EventTypes lists every registered event type.
func EventTypes() []string {
	types := make([]string, 0, len(registry))
	for t := range registry {
		types = append(types, t)
	}
	return types
}

func decodePayload(eventType string, version int, data json.RawMessage, unmarshal Unmarshaler) (Payload, error) {
	k, ok := registry[eventType]
	if !ok {
		return nil, fmt.Errorf("unknown event type %q", eventType)
	}
	if version < 1 || version > k.version {
		return nil, fmt.Errorf("unsupported schema version %d (current %d)", version, k.version)
	}
	for v := version; v < k.version; v++ {
		up, ok := k.upcasters[v]
		if !ok {
			return nil, fmt.Errorf("no upcaster from version %d", v)
		}
		var err error
		if data, err = up(data); err != nil {
			return nil, fmt.Errorf("upcast from version %d: %w", v, err)
		}
	}
	return k.decode(data, unmarshal)
}
