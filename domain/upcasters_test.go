package domain_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/domain"
)

// v1Closed is a ticket.closed event as the build before schema version 2 stored it:
// the bytes of the store, hash included, which nothing ever rewrites.
func v1Closed(t *testing.T, data string) []byte {
	t.Helper()
	e := domain.Event{ID: "5e1a0c2b-0000-4000-8000-000000000003", Type: "ticket.closed", SchemaVersion: 1,
		Stream: domain.TicketStream(ticketID), Sequence: 1, OccurredAt: time.Date(2025, 11, 10, 10, 30, 0, 0, time.UTC),
		Actor: "system:auto-close", CommandID: "c", Data: json.RawMessage(data)}
	e.Hash = e.ComputeHash()
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTicketClosedV1IsReadAsV2(t *testing.T) {
	if v := domain.CurrentSchemaVersion("ticket.closed"); v != 2 {
		t.Fatalf("ticket.closed is at version %d, this test is about reading version 1 as version 2", v)
	}
	tests := []struct {
		data string
		want domain.TicketClosed
	}{
		{`{"automatic":true,"reason":"no customer message 7 days after the last reply"}`,
			domain.TicketClosed{ClosedBy: domain.ClosedByAutoClose, Reason: "no customer message 7 days after the last reply"}},
		{`{"reason":"duplicate"}`, domain.TicketClosed{ClosedBy: domain.ClosedByAgent, Reason: "duplicate"}},
		{`{"automatic":false}`, domain.TicketClosed{ClosedBy: domain.ClosedByAgent}},
		{`{}`, domain.TicketClosed{ClosedBy: domain.ClosedByAgent}},
	}
	for _, tc := range tests {
		t.Run(tc.data, func(t *testing.T) {
			stored := v1Closed(t, tc.data)
			e, err := domain.DecodeEvent(stored)
			if err != nil {
				t.Fatal(err)
			}
			if e.Payload != tc.want || e.Payload.(domain.TicketClosed).Automatic() != (tc.want.ClosedBy == domain.ClosedByAutoClose) {
				t.Fatalf("payload %#v, want %#v", e.Payload, tc.want)
			}
			// The envelope keeps what was stored: version 1 and the version 1 data, so
			// the hash still matches and the chain verifies.
			if e.SchemaVersion != 1 || !bytes.Equal(e.Data, []byte(tc.data)) {
				t.Fatalf("envelope changed: version %d, data %s", e.SchemaVersion, e.Data)
			}
			if i, why := domain.VerifyChain([]domain.Event{e}); i >= 0 {
				t.Fatalf("the v1 event no longer verifies: %s", why)
			}
			again, _ := e.Encode()
			if !bytes.Equal(again, stored) {
				t.Fatalf("re-encoding the decoded event changed its bytes:\n%s\n%s", stored, again)
			}
		})
	}
	for _, bad := range []string{`{"automatic":"yes"}`, `null`, `[]`} {
		if _, err := domain.DecodeEvent(v1Closed(t, bad)); err == nil || !strings.Contains(err.Error(), "upcast from version 1") {
			t.Errorf("v1 data %s: err = %v, want an upcast error", bad, err)
		}
	}
	// Version 2 is written as such, without "automatic".
	events, err := domain.NewEvents("s", 0, "", domain.Metadata{At: t0}, func(int) string { return "id" },
		[]domain.Payload{domain.TicketClosed{ClosedBy: domain.ClosedByAgent, Reason: "done"}})
	if err != nil {
		t.Fatal(err)
	}
	if events[0].SchemaVersion != 2 || string(events[0].Data) != `{"closed_by":"agent","reason":"done"}` {
		t.Fatalf("new ticket.closed: version %d, data %s", events[0].SchemaVersion, events[0].Data)
	}
}

// TestEveryOlderVersionIsReadable: a type at version N must read every version below
// N, or a store that holds such events could not be replayed.
func TestEveryOlderVersionIsReadable(t *testing.T) {
	for _, eventType := range domain.EventTypes() {
		for v := 1; v < domain.CurrentSchemaVersion(eventType); v++ {
			stored := fmt.Sprintf(`{"id":"x","type":%q,"schema_version":%d,"stream":"s","sequence":1,"occurred_at":"2026-01-01T00:00:00Z","actor":"a","prev_hash":"","hash":"","data":{}}`, eventType, v)
			if _, err := domain.DecodeEvent([]byte(stored)); err != nil && strings.Contains(err.Error(), "no upcaster") {
				t.Errorf("%s version %d: %v", eventType, v, err)
			}
		}
	}
}
