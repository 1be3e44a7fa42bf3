package projections_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
	"github.com/ticketcore/ticketcore/projections"
)

// flushCounter is a projection that buffers: it records, at each flush, how many
// events it had applied and the position the runner reported then.
type flushCounter struct {
	runner  *projections.Runner
	applied uint64
	flushes [][2]uint64 // events applied, runner position
}

func (f *flushCounter) Name() string { return "flush-counter" }
func (f *flushCounter) Apply(_ domain.Event, pos uint64) error {
	f.applied = pos
	return nil
}
func (f *flushCounter) Position() uint64 { return f.applied }
func (f *flushCounter) Reset()           { f.applied = 0 }
func (f *flushCounter) Flush() error {
	f.flushes = append(f.flushes, [2]uint64{f.applied, f.runner.Position()})
	return nil
}

// TestCatchUpFlushesInLargeSteps: a catch-up flushes every 16 384 events and at its end,
// not after every chunk, and reports a position only once it is flushed.
func TestCatchUpFlushesInLargeSteps(t *testing.T) {
	const n = 40000
	store := memstore.New()
	defer store.Close()
	meta := domain.Metadata{Actor: "test", CommandID: "c", At: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	var data []eventstore.EventData
	for i := range n {
		events, err := domain.NewEvents("ticket-"+strconv.Itoa(i), 0, "", meta, func(int) string { return "e-" + strconv.Itoa(i) },
			[]domain.Payload{domain.CommentAdded{CommentID: "c-" + strconv.Itoa(i), Body: "b"}})
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, eventstore.EventData{ID: events[0].ID, Type: events[0].Type, Data: events[0].Encoded})
	}
	for i, ev := range data {
		if _, err := store.Append(t.Context(), "ticket-"+strconv.Itoa(i), eventstore.NoStream, []eventstore.EventData{ev}); err != nil {
			t.Fatal(err)
		}
	}
	f := &flushCounter{}
	f.runner = projections.NewRunner(store, nil, f)
	pos, err := f.runner.CatchUp(t.Context())
	if err != nil || pos != n {
		t.Fatalf("CatchUp = %d, %v; want %d", pos, err, n)
	}
	want := [][2]uint64{{16384, 0}, {32768, 16384}, {n, 32768}}
	if len(f.flushes) != len(want) {
		t.Fatalf("flushes (events applied, position reported) %v, want %v", f.flushes, want)
	}
	for i := range want {
		if f.flushes[i] != want[i] {
			t.Fatalf("flushes (events applied, position reported) %v, want %v", f.flushes, want)
		}
	}
	if got := f.runner.Position(); got != n {
		t.Fatalf("position after the catch-up %d, want %d", got, n)
	}
}
