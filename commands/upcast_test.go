package commands_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/projections"
)

// v1Fixture holds one ticket's stream exactly as the build before ticket.closed schema
// version 2 stored it: created, replied, closed automatically ({"automatic": true}),
// reopened, closed by hand ({"reason": ...}, no "automatic"). Each line is the stored
// envelope, hash included.
const v1Fixture = "testdata/ticket-closed-v1.jsonl"

func readFixture(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestV1EventsStoredBeforeTheSchemaChange stores raw version 1 bytes directly in the
// store (no handler), then reads them through every path: DecodeEvent, the hash chain,
// FoldTicket, and the handler, which decides on the upcast state and appends version 2
// events after the version 1 ones. The stored v1 bytes never change and the mixed
// chain verifies.
func TestV1EventsStoredBeforeTheSchemaChange(t *testing.T) {
	for _, kind := range bothKinds {
		t.Run(kind.name, func(t *testing.T) {
			ctx := t.Context()
			store := kind.open(t)
			lines := readFixture(t, v1Fixture)
			var stream, ticketID string
			rev := eventstore.NoStream
			for _, line := range lines {
				var env struct{ ID, Type, Stream string }
				if err := json.Unmarshal(line, &env); err != nil {
					t.Fatal(err)
				}
				stream = env.Stream
				res, err := store.Append(ctx, env.Stream, rev, []eventstore.EventData{{ID: env.ID, Type: env.Type, Data: line}})
				if err != nil {
					t.Fatal(err)
				}
				rev = res.Revision
			}
			ticketID = domain.TicketIDFromStream(stream)

			c := newClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
			h := newHandler(t, store, "upcast", c)
			events, err := h.TicketEvents(ctx, ticketID)
			if err != nil {
				t.Fatal(err)
			}
			if len(events) != 5 {
				t.Fatalf("%d events, want the fixture's 5", len(events))
			}
			if i, why := domain.VerifyChain(events); i >= 0 {
				t.Fatalf("the v1 stream does not verify at %d: %s", i, why)
			}
			auto, manual := events[2], events[4]
			if auto.SchemaVersion != 1 || auto.Payload != (domain.TicketClosed{ClosedBy: domain.ClosedByAutoClose, Reason: "no customer message 7 days after the last reply"}) {
				t.Fatalf("v1 automatic close read as %d %#v", auto.SchemaVersion, auto.Payload)
			}
			if manual.SchemaVersion != 1 || manual.Payload != (domain.TicketClosed{ClosedBy: domain.ClosedByAgent, Reason: "duplicate of TKT-2025-000041"}) {
				t.Fatalf("v1 manual close read as %d %#v", manual.SchemaVersion, manual.Payload)
			}

			// The projections see the v2 meaning.
			whileAutoClosed, _ := projections.FoldTicket(events, auto.OccurredAt, nil)
			if v := whileAutoClosed.View(auto.OccurredAt, false); v.Status != domain.StatusClosed || !v.ClosedAutomatically {
				t.Fatalf("after the v1 automatic close: status %s, closed automatically %v", v.Status, v.ClosedAutomatically)
			}
			now, _ := projections.FoldTicket(events, time.Time{}, nil)
			if v := now.View(c.Now(), false); v.Status != domain.StatusClosed || v.ClosedAutomatically || v.Reopens != 1 {
				t.Fatalf("after the v1 manual close: status %s, closed automatically %v, reopens %d", v.Status, v.ClosedAutomatically, v.Reopens)
			}
			history, ok := projections.TicketHistory(events, nil)
			if !ok || !history.ChainIntact || history.Entries[2].Summary != "Closed automatically: no customer message 7 days after the last reply" {
				t.Fatalf("history of the v1 stream: %+v", history)
			}

			// The handler decides on the upcast state and continues the chain with v2.
			if _, err := h.Execute(ctx, ticketID, domain.ReopenTicket{Reason: "again"}, commands.Meta{Actor: "bob"}); err != nil {
				t.Fatal(err)
			}
			c.Advance(time.Hour)
			if _, err := h.Execute(ctx, ticketID, domain.CloseTicket{Reason: "done"}, commands.Meta{Actor: "bob"}); err != nil {
				t.Fatal(err)
			}
			events, err = h.TicketEvents(ctx, ticketID)
			if err != nil {
				t.Fatal(err)
			}
			if i, why := domain.VerifyChain(events); len(events) != 7 || i >= 0 {
				t.Fatalf("%d events; chain broken at %d: %s", len(events), i, why)
			}
			if last := events[6]; last.SchemaVersion != 2 || string(last.Data) != `{"closed_by":"agent","reason":"done"}` {
				t.Fatalf("new close stored as version %d %s", last.SchemaVersion, last.Data)
			}
			recs, err := store.ReadStream(ctx, stream)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range lines {
				if !bytes.Equal(recs[i].Data, line) {
					t.Fatalf("stored v1 event %d changed:\n%s\n%s", i+1, line, recs[i].Data)
				}
			}
		})
	}
}
