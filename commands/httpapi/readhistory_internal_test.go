package httpapi

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
	"github.com/ticketcore/ticketcore/projections"
)

// StreamReads counts the reads of a stream through a store, whole (Whole) and at
// positions (At). Exported for the package's external tests too.
type StreamReads struct {
	eventstore.Store
	Whole, At atomic.Int64
}

func (s *StreamReads) ReadStream(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error) {
	s.Whole.Add(1)
	return s.Store.ReadStream(ctx, stream)
}

func (s *StreamReads) ReadAt(ctx context.Context, stream string, positions []uint64) ([]eventstore.RecordedEvent, error) {
	s.At.Add(1)
	return s.Store.ReadAt(ctx, stream, positions)
}

// TestReadHistoryAtKnownPositions: a ticket's history is read where the read model
// knows its events, however many, unless the model is behind the store; the history is
// the same either way.
func TestReadHistoryAtKnownPositions(t *testing.T) {
	ctx := context.Background()
	store := &StreamReads{Store: memstore.New()}
	h, err := commands.NewHandler(ctx, store, commands.Options{})
	if err != nil {
		t.Fatal(err)
	}
	create := func() string {
		res, err := h.CreateTicket(ctx, domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
			Subject: "Printer", RaisedBy: "ann@example.com", Channel: domain.ChannelAPI}}, commands.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		return res.TicketID
	}
	comment := func(id string, n int) {
		for range n {
			if _, err := h.Execute(ctx, id, domain.AddComment{Body: "note"}, commands.Meta{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	short, long := create(), create()
	comment(short, 3)
	comment(long, 20)
	tickets := projections.NewTickets()
	s := &Server{Handler: h, Tickets: tickets}
	follow := func() {
		t.Helper()
		recs, err := store.ReadAll(ctx, tickets.Position()+1, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			e, err := domain.DecodeEvent(r.Data)
			if err != nil {
				t.Fatal(err)
			}
			if err := tickets.Apply(e, r.Position); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(id string, wantWhole, wantAt int64) {
		t.Helper()
		whole, at := store.Whole.Load(), store.At.Load()
		got, err := s.readHistory(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d := store.Whole.Load() - whole; d != wantWhole {
			t.Errorf("%d reads of the whole stream, want %d", d, wantWhole)
		}
		if d := store.At.Load() - at; d != wantAt {
			t.Errorf("%d reads at positions, want %d", d, wantAt)
		}
		want, err := h.TicketEvents(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("history of %d events, the stream has %d", len(got), len(want))
		}
		for i := range want {
			if got[i].ID != want[i].ID || got[i].Hash != want[i].Hash {
				t.Fatalf("event %d of the history is %s, the stream's is %s", i, got[i].ID, want[i].ID)
			}
		}
	}

	follow()
	check(short, 0, 1)
	check(long, 0, 1) // 21 events: more than a ticket keeps inline
	comment(short, 1) // the model is behind the store
	check(short, 1, 1)
	follow()
	check(short, 0, 1)
}
