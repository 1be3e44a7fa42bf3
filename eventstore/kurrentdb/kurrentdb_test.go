package kurrentdb_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/kurrentdb"
	"github.com/ticketcore/ticketcore/eventstore/storetest"
)

// serverURL is the KurrentDB the server tests run against, or it skips them. No
// machine of the project's CI runs KurrentDB: see docs/operations.md.
func serverURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("EVENTSTORE_URL")
	if url == "" {
		t.Skip("EVENTSTORE_URL not set: the KurrentDB conformance run needs a server (docker compose --profile kurrentdb up kurrentdb); skipped")
	}
	return url
}

// runID keeps the streams of this test run apart from those of earlier runs on the
// same server.
var runID = uuid.NewString()[:8]

var prefixes atomic.Int64

// openFresh opens a store that sees an empty KurrentDB: its own stream prefix, and a
// start position at the current end of $all so that it does not scan earlier runs.
func openFresh(t *testing.T, url string) *kurrentdb.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	probe, err := kurrentdb.Open(ctx, kurrentdb.Config{URL: url})
	if err != nil {
		t.Fatalf("Open %s: %v", url, err)
	}
	head, err := probe.HeadCommitPosition(ctx)
	probe.Close()
	if err != nil {
		t.Fatalf("HeadCommitPosition: %v", err)
	}
	s, err := kurrentdb.Open(ctx, kurrentdb.Config{
		URL:           url,
		StreamPrefix:  fmt.Sprintf("st%s-%d-", runID, prefixes.Add(1)),
		StartPosition: head,
	})
	if err != nil {
		t.Fatalf("Open %s: %v", url, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	url := serverURL(t)
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		return openFresh(t, url)
	})
}

// TestPrefixesAreIsolated: two stores with different prefixes on one server see
// only their own streams, in ReadAll, LastPosition and ReadStream.
func TestPrefixesAreIsolated(t *testing.T) {
	url := serverURL(t)
	ctx := t.Context()
	a, b := openFresh(t, url), openFresh(t, url)
	defer a.Close()
	defer b.Close()

	resA, err := a.Append(ctx, "ticket-1", eventstore.NoStream, newEvents(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, "ticket-1", eventstore.NoStream, newEvents(3)); err != nil {
		t.Fatalf("the same stream name under another prefix: %v", err)
	}
	all, err := a.ReadAll(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[1].Position != resA.LastPosition {
		t.Fatalf("store a reads %d events (last at %v), want its 2 ending at %d", len(all), all, resA.LastPosition)
	}
	if last, err := a.LastPosition(ctx); err != nil || last != resA.LastPosition {
		t.Fatalf("LastPosition of a = %d, %v; want %d", last, err, resA.LastPosition)
	}
	if events, err := b.ReadStream(ctx, "ticket-1"); err != nil || len(events) != 3 {
		t.Fatalf("ReadStream of b: %d events, %v; want 3", len(events), err)
	}
}

// TestPositionsAreCommitPositions checks the position mapping against the client:
// an event's port position is the $all commit position of the first event of its
// append, times 10 000, plus its offset in the append.
func TestPositionsAreCommitPositions(t *testing.T) {
	url := serverURL(t)
	ctx := t.Context()
	s := openFresh(t, url)
	defer s.Close()

	res, err := s.Append(ctx, "ticket-pos", eventstore.NoStream, newEvents(3))
	if err != nil {
		t.Fatal(err)
	}
	events, err := s.ReadStream(ctx, "ticket-pos")
	if err != nil || len(events) != 3 {
		t.Fatalf("ReadStream: %d events, %v", len(events), err)
	}
	rs, err := s.Client().ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 200)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	commits := map[string]uint64{}
	for {
		re, err := rs.Recv()
		if err != nil {
			break
		}
		commits[re.OriginalEvent().EventID.String()] = re.OriginalEvent().Position.Commit
	}
	first, ok := commits[events[0].ID]
	if !ok {
		t.Fatal("the first event is not among the last 200 events of $all")
	}
	for i, ev := range events {
		if want := first*10_000 + uint64(i); ev.Position != want {
			t.Errorf("event %d at position %d, want %d (commit position %d)", i, ev.Position, want, first)
		}
		if commits[ev.ID] <= first && i > 0 {
			t.Errorf("event %d has commit position %d, not after the first's %d", i, commits[ev.ID], first)
		}
	}
	if res.LastPosition != events[2].Position {
		t.Errorf("Append said %d, the last event is at %d", res.LastPosition, events[2].Position)
	}
}

// TestReopen: positions, revisions and duplicate detection do not depend on the
// process.
func TestReopen(t *testing.T) {
	url := serverURL(t)
	ctx := t.Context()
	s := openFresh(t, url)
	batch := newEvents(4)
	res, err := s.Append(ctx, "ticket-r", eventstore.NoStream, batch)
	if err != nil {
		t.Fatal(err)
	}
	before, err := s.ReadAll(ctx, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	prefix := s.StreamPrefix()
	s.Close()

	// Same prefix, no start position: it scans $all from its start.
	again, err := kurrentdb.Open(ctx, kurrentdb.Config{URL: url, StreamPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	after, err := again.ReadAll(ctx, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) || after[3].Position != before[3].Position || after[3].Revision != res.Revision {
		t.Fatalf("after reopening: %+v, before: %+v", after, before)
	}
	if _, err := again.Append(ctx, "ticket-r", eventstore.NoStream, batch); !errors.Is(err, eventstore.ErrDuplicate) {
		t.Fatalf("retry after reopening: %v, want ErrDuplicate", err)
	}
}

func newEvents(n int) []eventstore.EventData {
	events := make([]eventstore.EventData, n)
	for i := range events {
		events[i] = eventstore.EventData{ID: uuid.NewString(), Type: "TestEvent", Data: fmt.Appendf(nil, `{"n":%d}`, i)}
	}
	return events
}
