// Package storetest is the conformance suite of the eventstore port: every adapter
// runs it from its own tests, so the command handlers and the projections can rely on
// the same behaviour whichever store they are given.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketcore/ticketcore/eventstore"
)

// waitTimeout bounds every wait of the suite, so a broken adapter fails instead of
// hanging the test binary.
const waitTimeout = 10 * time.Second

// Run runs the conformance suite as subtests. newStore must return a new, empty store
// for each call; Run closes it when the subtest ends.
func Run(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s eventstore.Store)
	}{
		{"AppendNoStream", testAppendNoStream},
		{"AppendExpectedRevision", testAppendExpectedRevision},
		{"AppendWrongRevision", testAppendWrongRevision},
		{"AppendNoStreamOnExisting", testAppendNoStreamOnExisting},
		{"AppendRetryIsDuplicate", testAppendRetryIsDuplicate},
		{"AppendAtomic", testAppendAtomic},
		{"AppendContiguous", testAppendContiguous},
		{"AppendConcurrentOneWinner", testAppendConcurrentOneWinner},
		{"AppendInvalid", testAppendInvalid},
		{"GlobalOrder", testGlobalOrder},
		{"ReadAllMax", testReadAllMax},
		{"RevisionAt", testRevisionAt},
		{"LastEventID", testLastEventID},
		{"ReadAt", testReadAt},
		{"ReadStreamUnknown", testReadStreamUnknown},
		{"RoundTrip", testRoundTrip},
		{"SubscribeCatchUpThenLive", testSubscribeCatchUpThenLive},
		{"SubscribeFromMiddle", testSubscribeFromMiddle},
		{"SubscribeCancel", testSubscribeCancel},
		{"SubscribeHandleError", testSubscribeHandleError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

func testAppendNoStream(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	name := newStreamName()
	res, err := s.Append(ctx, name, eventstore.NoStream, newEvents(1))
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if res.Revision == eventstore.NoStream || res.Revision == eventstore.AnyRevision {
		t.Fatalf("Append revision = %d, want a real revision", res.Revision)
	}
	if res.LastPosition == 0 {
		t.Fatal("Append last position = 0, want >= 1")
	}
	got := readStream(t, s, name)
	if len(got) != 1 {
		t.Fatalf("ReadStream: %d events, want 1", len(got))
	}
	if got[0].Revision != res.Revision || got[0].Position != res.LastPosition {
		t.Fatalf("stored event at revision %d position %d, append said %d and %d",
			got[0].Revision, got[0].Position, res.Revision, res.LastPosition)
	}
}

func testAppendExpectedRevision(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	name := newStreamName()
	res := mustAppend(t, s, name, eventstore.NoStream, newEvents(1))
	for range 3 {
		next, err := s.Append(ctx, name, res.Revision, newEvents(2))
		if err != nil {
			t.Fatalf("Append at revision %d: %v", res.Revision, err)
		}
		if next.Revision == res.Revision || next.LastPosition <= res.LastPosition {
			t.Fatalf("Append did not move the stream: before %+v, after %+v", res, next)
		}
		res = next
	}
	got := readStream(t, s, name)
	if len(got) != 7 {
		t.Fatalf("ReadStream: %d events, want 7", len(got))
	}
	if last := got[len(got)-1]; last.Revision != res.Revision {
		t.Fatalf("last event revision %d, last append said %d", last.Revision, res.Revision)
	}
	// AnyRevision skips the check.
	if _, err := s.Append(ctx, name, eventstore.AnyRevision, newEvents(1)); err != nil {
		t.Fatalf("Append with AnyRevision: %v", err)
	}
}

func testAppendWrongRevision(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	name := newStreamName()
	first := mustAppend(t, s, name, eventstore.NoStream, newEvents(1))
	second := mustAppend(t, s, name, first.Revision, newEvents(1))

	for _, expected := range []eventstore.Revision{first.Revision, second.Revision + 1000} {
		_, err := s.Append(ctx, name, expected, newEvents(1))
		if !errors.Is(err, eventstore.ErrConflict) {
			t.Fatalf("Append at revision %d (stream at %d): err = %v, want ErrConflict", expected, second.Revision, err)
		}
	}
	if got := readStream(t, s, name); len(got) != 2 {
		t.Fatalf("ReadStream: %d events after conflicts, want 2", len(got))
	}
	if last := lastPosition(t, s); last != second.LastPosition {
		t.Fatalf("LastPosition = %d after conflicts, want %d", last, second.LastPosition)
	}
}

func testAppendNoStreamOnExisting(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	name := newStreamName()
	mustAppend(t, s, name, eventstore.NoStream, newEvents(1))
	_, err := s.Append(ctx, name, eventstore.NoStream, newEvents(1))
	if !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("second Append with NoStream: err = %v, want ErrConflict", err)
	}
	if got := readStream(t, s, name); len(got) != 1 {
		t.Fatalf("ReadStream: %d events, want 1", len(got))
	}
}

func testAppendRetryIsDuplicate(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	for _, n := range []int{1, 3} {
		name := newStreamName()
		events := newEvents(n)
		res := mustAppend(t, s, name, eventstore.NoStream, events)

		// The retry of a lost reply: same events, same expected revision.
		_, err := s.Append(ctx, name, eventstore.NoStream, events)
		if !errors.Is(err, eventstore.ErrDuplicate) {
			t.Fatalf("%d events: retry err = %v, want ErrDuplicate", n, err)
		}

		// A retry that comes after another writer moved the stream on.
		moreEvents := newEvents(1)
		more := mustAppend(t, s, name, res.Revision, moreEvents)
		_, err = s.Append(ctx, name, eventstore.NoStream, events)
		if !errors.Is(err, eventstore.ErrDuplicate) {
			t.Fatalf("%d events: late retry err = %v, want ErrDuplicate", n, err)
		}
		// The retry of an append that expected a revision other than NoStream.
		_, err = s.Append(ctx, name, res.Revision, moreEvents)
		if !errors.Is(err, eventstore.ErrDuplicate) {
			t.Fatalf("%d events: retry at revision %d err = %v, want ErrDuplicate", n, res.Revision, err)
		}

		if got := readStream(t, s, name); len(got) != n+1 {
			t.Fatalf("%d events: ReadStream has %d events after retries, want %d", n, len(got), n+1)
		}
		if last := lastPosition(t, s); last != more.LastPosition {
			t.Fatalf("%d events: LastPosition = %d after retries, want %d", n, last, more.LastPosition)
		}
	}
}

func testAppendAtomic(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	name := newStreamName()
	res := mustAppend(t, s, name, eventstore.NoStream, newEvents(2))

	_, err := s.Append(ctx, name, eventstore.NoStream, newEvents(5))
	if !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("Append of 5 at a wrong revision: err = %v, want ErrConflict", err)
	}
	if got := readStream(t, s, name); len(got) != 2 {
		t.Fatalf("ReadStream: %d events, want 2: a failed append stored part of its events", len(got))
	}
	all := readAll(t, s, 1)
	if len(all) != 2 || lastPosition(t, s) != res.LastPosition {
		t.Fatalf("ReadAll: %d events, want 2: a failed append stored part of its events", len(all))
	}
}

func testAppendContiguous(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)

	// A writer keeps appending to another stream, so that an adapter that interleaves
	// the events of one append with other appends is caught.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		other := newStreamName()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Append(ctx, other, eventstore.AnyRevision, newEvents(1)); err != nil {
				t.Errorf("background Append: %v", err)
				return
			}
		}
	})

	type appended struct {
		events []eventstore.EventData
		res    eventstore.AppendResult
	}
	var batches []appended
	name := newStreamName()
	expected := eventstore.NoStream
	for range 10 {
		events := newEvents(5)
		res, err := s.Append(ctx, name, expected, events)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		batches = append(batches, appended{events, res})
		expected = res.Revision
	}
	close(stop)
	wg.Wait()

	byPosition := make(map[uint64]eventstore.RecordedEvent)
	for _, ev := range readAll(t, s, 1) {
		byPosition[ev.Position] = ev
	}
	for _, b := range batches {
		first := b.res.LastPosition - uint64(len(b.events)) + 1
		for i, want := range b.events {
			got, ok := byPosition[first+uint64(i)]
			if !ok || got.ID != want.ID || got.Stream != name {
				t.Fatalf("event %d of an append ending at %d is not at position %d (found %+v)",
					i, b.res.LastPosition, first+uint64(i), got)
			}
		}
	}
	if got := readStream(t, s, name); len(got) != 50 {
		t.Fatalf("ReadStream: %d events, want 50", len(got))
	}
}

func testAppendConcurrentOneWinner(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	name := newStreamName()
	res := mustAppend(t, s, name, eventstore.NoStream, newEvents(1))

	const writers = 20
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			<-start
			// Half single events, half batches: both paths must be safe.
			_, errs[i] = s.Append(ctx, name, res.Revision, newEvents(1+i%2))
		})
	}
	close(start)
	wg.Wait()

	var wins, conflicts, winner int
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
			winner = i
		case errors.Is(err, eventstore.ErrConflict):
			conflicts++
		default:
			t.Errorf("writer %d: %v, want nil or ErrConflict", i, err)
		}
	}
	if wins != 1 || conflicts != writers-1 {
		t.Fatalf("%d appends won and %d conflicted, want 1 and %d", wins, conflicts, writers-1)
	}
	if got, want := len(readStream(t, s, name)), 1+1+winner%2; got != want {
		t.Fatalf("ReadStream: %d events, want %d: the first one and the winner's", got, want)
	}
}

func testAppendInvalid(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	for _, name := range []string{"", "a.b", "a b", "a*", "a>", "ticket/1", "ü", strings.Repeat("x", 201)} {
		_, err := s.Append(ctx, name, eventstore.NoStream, newEvents(1))
		if !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("Append to stream %q: err = %v, want ErrInvalid", name, err)
		}
	}
	name := newStreamName()
	noID := newEvents(2)
	noID[1].ID = ""
	noType := newEvents(1)
	noType[0].Type = ""
	badType := newEvents(1)
	badType[0].Type = "Ticket\r\nOpened"
	repeated := newEvents(2)
	repeated[1].ID = repeated[0].ID
	for _, c := range []struct {
		what   string
		events []eventstore.EventData
	}{
		{"nil batch", nil},
		{"empty batch", []eventstore.EventData{}},
		{"event without ID", noID},
		{"event without type", noType},
		{"type with a line break", badType},
		{"ID repeated in the batch", repeated},
	} {
		_, err := s.Append(ctx, name, eventstore.NoStream, c.events)
		if !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("Append of %s: err = %v, want ErrInvalid", c.what, err)
		}
	}
	if _, err := s.ReadAll(ctx, 1, 0); !errors.Is(err, eventstore.ErrInvalid) {
		t.Errorf("ReadAll with max 0: err = %v, want ErrInvalid", err)
	}
	if last := lastPosition(t, s); last != 0 {
		t.Fatalf("LastPosition = %d after invalid appends, want 0", last)
	}
	// A name of exactly 200 characters is valid.
	mustAppend(t, s, strings.Repeat("x", 200), eventstore.NoStream, newEvents(1))
}

func testGlobalOrder(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	names := []string{newStreamName(), newStreamName(), newStreamName()}
	revisions := make(map[string]eventstore.Revision)
	var ids []string
	for i := range 30 {
		name := names[i%len(names)]
		events := newEvents(1 + i%3)
		res, err := s.Append(ctx, name, revisions[name], events)
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		revisions[name] = res.Revision
		for _, ev := range events {
			ids = append(ids, ev.ID)
		}
	}

	all := readAll(t, s, 1)
	if len(all) != len(ids) {
		t.Fatalf("ReadAll: %d events, want %d", len(all), len(ids))
	}
	for i, ev := range all {
		if ev.ID != ids[i] {
			t.Fatalf("ReadAll[%d] is event %s, want %s (append order)", i, ev.ID, ids[i])
		}
		if i > 0 && ev.Position <= all[i-1].Position {
			t.Fatalf("positions not strictly increasing: %d then %d", all[i-1].Position, ev.Position)
		}
	}
	if last := lastPosition(t, s); last != all[len(all)-1].Position {
		t.Fatalf("LastPosition = %d, last event is at %d", last, all[len(all)-1].Position)
	}

	mid := all[len(all)/2]
	tail := readAll(t, s, mid.Position)
	if len(tail) != len(all)-len(all)/2 || tail[0].ID != mid.ID {
		t.Fatalf("ReadAll from %d: %d events starting with %+v, want %d starting with %s",
			mid.Position, len(tail), tail[0], len(all)-len(all)/2, mid.ID)
	}

	// Each stream reads back in order, with its own events only.
	for _, name := range names {
		events := readStream(t, s, name)
		for i, ev := range events {
			if ev.Stream != name {
				t.Fatalf("ReadStream(%s) returned an event of %s", name, ev.Stream)
			}
			if i > 0 && (ev.Position <= events[i-1].Position || ev.Revision <= events[i-1].Revision) {
				t.Fatalf("ReadStream(%s) out of order at %d", name, i)
			}
		}
		if events[len(events)-1].Revision != revisions[name] {
			t.Fatalf("ReadStream(%s) ends at revision %d, last append said %d", name, events[len(events)-1].Revision, revisions[name])
		}
	}
}

// testReadAt: the events of a stream at given positions, in the order asked, whatever
// other streams hold between them; a position of another stream is refused.
func testReadAt(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	name, other := newStreamName(), newStreamName()
	rev, otherRev := eventstore.NoStream, eventstore.NoStream
	for i := range 4 {
		rev = mustAppend(t, s, name, rev, newEvents(1+i%2)).Revision
		otherRev = mustAppend(t, s, other, otherRev, newEvents(2)).Revision
	}
	stored := readStream(t, s, name)
	want := []eventstore.RecordedEvent{stored[4], stored[0], stored[2]}
	got, err := s.ReadAt(ctx, name, []uint64{want[0].Position, want[1].Position, want[2].Position})
	if err != nil {
		t.Fatalf("ReadAt: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("ReadAt: %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Position != want[i].Position || got[i].Revision != want[i].Revision ||
			got[i].Stream != name || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("ReadAt[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if got, err := s.ReadAt(ctx, name, nil); err != nil || len(got) != 0 {
		t.Fatalf("ReadAt of no position: %d events, %v", len(got), err)
	}
	otherFirst := readStream(t, s, other)[0].Position
	if _, err := s.ReadAt(ctx, name, []uint64{stored[1].Position, otherFirst}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("ReadAt of another stream's position: err = %v, want ErrInvalid", err)
	}
	if _, err := s.ReadAt(ctx, name, []uint64{lastPosition(t, s) + 10}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("ReadAt beyond the last position: err = %v, want ErrInvalid", err)
	}
}

// testLastEventID: the ID of a stream's newest event, right after each append, of one
// event or several; nothing for a stream without events.
func testLastEventID(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	name := newStreamName()
	last := func() string {
		t.Helper()
		id, err := s.LastEventID(ctx, name)
		if err != nil {
			t.Fatalf("LastEventID: %v", err)
		}
		return id
	}
	if id := last(); id != "" {
		t.Fatalf("LastEventID of a stream without events = %q, want none", id)
	}
	rev := eventstore.NoStream
	for _, n := range []int{1, 3, 1} {
		events := newEvents(n)
		rev = mustAppend(t, s, name, rev, events).Revision
		mustAppend(t, s, newStreamName(), eventstore.NoStream, newEvents(1)) // another stream moves on too
		if id := last(); id != events[n-1].ID {
			t.Fatalf("LastEventID after appending %d events = %q, want the last of them, %s", n, id, events[n-1].ID)
		}
	}
}

// testRevisionAt: a reader of the global order names each stream's revision from an
// event's position and its number in its stream, and appends with it.
func testRevisionAt(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	names := []string{newStreamName(), newStreamName()}
	revisions := make(map[string]eventstore.Revision)
	for i := range 8 {
		name := names[i%2]
		res, err := s.Append(ctx, name, revisions[name], newEvents(1+i%3))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		revisions[name] = res.Revision
	}
	counts := make(map[string]uint64)
	named := make(map[string]eventstore.Revision)
	for _, ev := range readAll(t, s, 1) {
		counts[ev.Stream]++
		named[ev.Stream] = s.RevisionAt(ev.Position, counts[ev.Stream])
	}
	for _, name := range names {
		if named[name] != revisions[name] {
			t.Fatalf("RevisionAt of %s's last event = %d, Append returned %d", name, named[name], revisions[name])
		}
		if _, err := s.Append(ctx, name, named[name], newEvents(1)); err != nil {
			t.Fatalf("Append to %s expecting the revision RevisionAt named: %v", name, err)
		}
	}
}

func testReadAllMax(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	name := newStreamName()
	res := mustAppend(t, s, name, eventstore.NoStream, newEvents(10))

	got, err := s.ReadAll(ctx, 0, 4)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if len(got) != 4 {
		t.Fatalf("ReadAll(0, 4): %d events, want 4", len(got))
	}
	rest, err := s.ReadAll(ctx, got[3].Position+1, 100)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if len(rest) != 6 || rest[5].Position != res.LastPosition {
		t.Fatalf("ReadAll after the first page: %d events, want the 6 others", len(rest))
	}
	beyond, err := s.ReadAll(ctx, res.LastPosition+1, 100)
	if err != nil {
		t.Fatalf("ReadAll beyond the end: %v", err)
	}
	if len(beyond) != 0 {
		t.Fatalf("ReadAll beyond the end: %d events, want 0", len(beyond))
	}
}

func testReadStreamUnknown(t *testing.T, s eventstore.Store) {
	// A stream whose name extends an existing one, to catch prefix matching.
	mustAppend(t, s, "ticket-1", eventstore.NoStream, newEvents(1))
	for _, name := range []string{"ticket-10", "ticket", newStreamName()} {
		got := readStream(t, s, name)
		if len(got) != 0 {
			t.Fatalf("ReadStream(%s): %d events, want 0", name, len(got))
		}
	}
}

func testRoundTrip(t *testing.T, s eventstore.Store) {
	before := time.Now()
	name := newStreamName()
	events := []eventstore.EventData{
		{ID: uuid.NewString(), Type: "TicketOpened", Data: []byte(`{"title":"Printer on fire"}`)},
		{ID: uuid.NewString(), Type: "BinaryPayload", Data: []byte{0, 1, '\r', '\n', 0xff, 0xfe}},
		{ID: uuid.NewString(), Type: "NoPayload"},
	}
	res := mustAppend(t, s, name, eventstore.NoStream, events)

	got := readStream(t, s, name)
	if len(got) != len(events) {
		t.Fatalf("ReadStream: %d events, want %d", len(got), len(events))
	}
	all := readAll(t, s, 1)
	for i, want := range events {
		for _, ev := range []eventstore.RecordedEvent{got[i], all[i]} {
			if ev.ID != want.ID || ev.Type != want.Type || !bytes.Equal(ev.Data, want.Data) || ev.Stream != name {
				t.Fatalf("event %d read back as %+v, want %+v in stream %s", i, ev, want, name)
			}
			if ev.Position != res.LastPosition-uint64(len(events)-1-i) {
				t.Fatalf("event %d at position %d, want %d", i, ev.Position, res.LastPosition-uint64(len(events)-1-i))
			}
			if ev.Revision == eventstore.NoStream {
				t.Fatalf("event %d has no revision", i)
			}
			if ev.RecordedAt.Before(before.Add(-time.Minute)) || ev.RecordedAt.After(time.Now().Add(time.Minute)) {
				t.Fatalf("event %d recorded at %v, want about %v", i, ev.RecordedAt, before)
			}
		}
	}
	if got[len(got)-1].Revision != res.Revision {
		t.Fatalf("last event revision %d, append said %d", got[len(got)-1].Revision, res.Revision)
	}

	// The store keeps its own copy of the data, and a read event's data is the
	// reader's: changing it changes nothing the store hands out later.
	events[0].Data[0] = 'X'
	got[0].Data[1] = 'Y'
	all[0].Data[2] = 'Z'
	for _, again := range []eventstore.RecordedEvent{readStream(t, s, name)[0], readAll(t, s, 1)[0]} {
		if !bytes.Equal(again.Data, []byte(`{"title":"Printer on fire"}`)) {
			t.Fatalf("changing an appended or a read buffer changed the stored event: %q", again.Data)
		}
	}
}

func testSubscribeCatchUpThenLive(t *testing.T, s eventstore.Store) {
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	names := []string{newStreamName(), newStreamName()}
	appendN := func(n int) {
		for i := range n {
			mustAppend(t, s, names[i%2], eventstore.AnyRevision, newEvents(1))
		}
	}
	appendN(50)

	sub := subscribe(ctx, s, 1)
	first := sub.wait(t, 50)
	appendN(50)
	got := sub.wait(t, 100)

	want := readAll(t, s, 1)
	if len(want) != 100 {
		t.Fatalf("ReadAll: %d events, want 100", len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Position != want[i].Position || got[i].Stream != want[i].Stream {
			t.Fatalf("Subscribe delivered %+v at index %d, ReadAll has %+v", got[i], i, want[i])
		}
	}
	if first[49].Position != want[49].Position {
		t.Fatalf("catch-up ended at %d, want %d", first[49].Position, want[49].Position)
	}

	cancel()
	if err := sub.result(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe returned %v after cancel, want context.Canceled", err)
	}
	if n := len(sub.events()); n != 100 {
		t.Fatalf("Subscribe delivered %d events, want 100", n)
	}
}

func testSubscribeFromMiddle(t *testing.T, s eventstore.Store) {
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	name := newStreamName()
	mustAppend(t, s, name, eventstore.NoStream, newEvents(20))
	all := readAll(t, s, 1)
	from := all[10].Position

	sub := subscribe(ctx, s, from)
	got := sub.wait(t, 10)
	for i, ev := range got {
		if ev.ID != all[10+i].ID {
			t.Fatalf("Subscribe from %d delivered %s at index %d, want %s", from, ev.ID, i, all[10+i].ID)
		}
	}
	cancel()
	if err := sub.result(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe returned %v after cancel, want context.Canceled", err)
	}
	if n := len(sub.events()); n != 10 {
		t.Fatalf("Subscribe delivered %d events, want 10", n)
	}
}

func testSubscribeCancel(t *testing.T, s eventstore.Store) {
	// On an empty store Subscribe waits for live events until the context ends.
	ctx, cancel := context.WithTimeout(testContext(t), 200*time.Millisecond)
	defer cancel()
	err := s.Subscribe(ctx, 1, func(ev eventstore.RecordedEvent) error {
		return fmt.Errorf("unexpected event %+v", ev)
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Subscribe returned %v, want context.DeadlineExceeded", err)
	}

	// Cancelled while waiting.
	mustAppend(t, s, newStreamName(), eventstore.NoStream, newEvents(3))
	ctx2, cancel2 := context.WithCancel(testContext(t))
	sub := subscribe(ctx2, s, 1)
	sub.wait(t, 3)
	cancel2()
	if err := sub.result(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe returned %v, want context.Canceled", err)
	}
}

func testSubscribeHandleError(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	mustAppend(t, s, newStreamName(), eventstore.NoStream, newEvents(5))
	errStop := errors.New("projection failed")
	var calls int
	err := s.Subscribe(ctx, 1, func(ev eventstore.RecordedEvent) error {
		calls++
		if calls == 3 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Subscribe returned %v, want the handler's error", err)
	}
	if calls != 3 {
		t.Fatalf("handler called %d times, want 3", calls)
	}
}

// subscription runs Subscribe in the background and records what it delivers.
type subscription struct {
	mu       sync.Mutex
	received []eventstore.RecordedEvent
	notify   chan struct{} // receives a value after each delivery
	done     chan error
}

func subscribe(ctx context.Context, s eventstore.Store, from uint64) *subscription {
	sub := &subscription{notify: make(chan struct{}, 1), done: make(chan error, 1)}
	go func() {
		sub.done <- s.Subscribe(ctx, from, func(ev eventstore.RecordedEvent) error {
			sub.mu.Lock()
			sub.received = append(sub.received, ev)
			sub.mu.Unlock()
			select {
			case sub.notify <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	return sub
}

func (sub *subscription) events() []eventstore.RecordedEvent {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return append([]eventstore.RecordedEvent(nil), sub.received...)
}

// wait returns the events once at least n were delivered.
func (sub *subscription) wait(t *testing.T, n int) []eventstore.RecordedEvent {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		if got := sub.events(); len(got) >= n {
			return got
		}
		select {
		case <-sub.notify:
		case err := <-sub.done:
			t.Fatalf("Subscribe returned %v after %d events, want %d", err, len(sub.events()), n)
		case <-timeout:
			t.Fatalf("Subscribe delivered %d events in %v, want %d", len(sub.events()), waitTimeout, n)
		}
	}
}

// result waits for Subscribe to return.
func (sub *subscription) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-sub.done:
		return err
	case <-time.After(waitTimeout):
		t.Fatalf("Subscribe did not return within %v", waitTimeout)
		return nil
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newStreamName returns a stream name no other test uses.
func newStreamName() string {
	return "ticket-" + uuid.NewString()
}

func newEvents(n int) []eventstore.EventData {
	events := make([]eventstore.EventData, n)
	for i := range events {
		id := uuid.NewString()
		events[i] = eventstore.EventData{ID: id, Type: "TestEvent", Data: fmt.Appendf(nil, `{"n":%d,"id":%q}`, i, id)}
	}
	return events
}

func mustAppend(t *testing.T, s eventstore.Store, name string, expected eventstore.Revision, events []eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(testContext(t), name, expected, events)
	if err != nil {
		t.Fatalf("Append %d events to %s at %d: %v", len(events), name, expected, err)
	}
	return res
}

func readStream(t *testing.T, s eventstore.Store, name string) []eventstore.RecordedEvent {
	t.Helper()
	events, err := s.ReadStream(testContext(t), name)
	if err != nil {
		t.Fatalf("ReadStream %s: %v", name, err)
	}
	if events == nil {
		// The port promises an empty slice, not nil, for an unknown stream; callers
		// may encode it as JSON.
		t.Fatalf("ReadStream %s returned nil", name)
	}
	return events
}

// readAll reads every event from position from on.
func readAll(t *testing.T, s eventstore.Store, from uint64) []eventstore.RecordedEvent {
	t.Helper()
	events, err := s.ReadAll(testContext(t), from, 1<<20)
	if err != nil {
		t.Fatalf("ReadAll from %d: %v", from, err)
	}
	return events
}

func lastPosition(t *testing.T, s eventstore.Store) uint64 {
	t.Helper()
	last, err := s.LastPosition(testContext(t))
	if err != nil {
		t.Fatalf("LastPosition: %v", err)
	}
	return last
}
