package jetstream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/eventstore/jetstream/jstest"
)

// TestReadData checks the bulk read against ReadAll on the three kinds of deployment:
// the embedded server, an external one, and a stream replicated on a 3-node cluster,
// where the direct gets may be answered by a follower that is behind.
func TestReadData(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		checkReadData(t, open(t, jetstream.Config{DataDir: t.TempDir()}))
	})
	t.Run("external", func(t *testing.T) {
		checkReadData(t, open(t, jetstream.Config{URL: runServer(t).ClientURL()}))
	})
	t.Run("cluster", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts a 3-node JetStream cluster; skipped with -short")
		}
		c := jstest.StartCluster(t)
		checkReadData(t, open(t, jetstream.Config{URL: c.URL(), Replicas: 3, Options: []nats.Option{nats.Name("readdata-r3")}}))
	})
}

// checkReadData appends events over several batches of the bulk read, reads them back
// right away, in whole and in parts, and compares with ReadAll.
func checkReadData(t *testing.T, s *jetstream.Store) {
	ctx := t.Context()
	const n = 2500 // more than two bulk batches
	for i := range n / 10 {
		if _, err := s.Append(ctx, fmt.Sprintf("ticket-%d", i%37), eventstore.AnyRevision, newEvents(10)); err != nil {
			t.Fatal(err)
		}
	}
	// Read first, while the followers of a cluster may still be catching up.
	ranges := [][2]uint64{{1, n}, {0, n}, {1, 1}, {1000, 1030}, {1024, 2049}, {n, n}, {7, 3}}
	got := make([][]eventstore.RecordedEvent, len(ranges))
	for i, r := range ranges {
		got[i] = readData(t, s, r[0], r[1])
	}
	want, err := s.ReadAll(ctx, 1, n)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range ranges {
		from := max(r[0], 1)
		var expect []eventstore.RecordedEvent
		for _, ev := range want {
			if ev.Position >= from && ev.Position <= r[1] {
				expect = append(expect, ev)
			}
		}
		sameEvents(t, fmt.Sprintf("ReadData(%d, %d)", r[0], r[1]), got[i], expect)
	}
}

// TestReadDataGaps reads a stream some messages of which were deleted: at the start,
// alone, in runs across the end of a bulk batch, and at the end.
func TestReadDataGaps(t *testing.T) {
	ctx := t.Context()
	s := open(t, jetstream.Config{DataDir: t.TempDir()})
	const n = 3000
	for i := range n / 10 {
		if _, err := s.Append(ctx, fmt.Sprintf("ticket-%d", i%7), eventstore.AnyRevision, newEvents(10)); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := s.JetStream().Stream(ctx, jetstream.DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	deleted := []uint64{1, 2, 500, 1020, 1021, 1022, 1023, 1024, 1025, 1026, 2048, 2999, 3000}
	for _, seq := range deleted {
		if err := stream.DeleteMsg(ctx, seq); err != nil {
			t.Fatalf("delete %d: %v", seq, err)
		}
	}
	want, err := s.ReadAll(ctx, 1, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != n-len(deleted) {
		t.Fatalf("ReadAll: %d events, want %d", len(want), n-len(deleted))
	}
	for _, r := range [][2]uint64{{1, n}, {1, 2}, {3, 1030}, {1020, 1026}, {2000, n}} {
		var expect []eventstore.RecordedEvent
		for _, ev := range want {
			if ev.Position >= r[0] && ev.Position <= r[1] {
				expect = append(expect, ev)
			}
		}
		sameEvents(t, fmt.Sprintf("ReadData(%d, %d)", r[0], r[1]), readData(t, s, r[0], r[1]), expect)
	}
}

// TestReadDataLarge reads events large enough for the server to cut a bulk batch short
// at its byte limit.
func TestReadDataLarge(t *testing.T) {
	ctx := t.Context()
	s := open(t, jetstream.Config{DataDir: t.TempDir()})
	const n = 40
	for i := range n {
		ev := newEvents(1)
		ev[0].Data = fmt.Appendf(nil, `{"i":%d,"pad":%q}`, i, strings.Repeat("x", 300_000))
		if _, err := s.Append(ctx, "big", eventstore.AnyRevision, ev); err != nil {
			t.Fatal(err)
		}
	}
	want, err := s.ReadAll(ctx, 1, n)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "ReadData", readData(t, s, 1, n), want)
}

// TestReadDataErrors checks that fn's error and the end of ctx come back as they are.
func TestReadDataErrors(t *testing.T) {
	ctx := t.Context()
	s := open(t, jetstream.Config{DataDir: t.TempDir()})
	for range 300 {
		if _, err := s.Append(ctx, "a", eventstore.AnyRevision, newEvents(10)); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err := s.ReadData(ctx, 1, 3000, func([]eventstore.RecordedEvent) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("ReadData = %v after %d calls, want the error of fn after 1", err, calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	err = s.ReadData(cctx, 1, 3000, func([]eventstore.RecordedEvent) error {
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadData after cancel = %v, want context.Canceled", err)
	}
}

// readData collects what ReadData passes to fn, checking that each batch is in order.
func readData(t *testing.T, s *jetstream.Store, from, to uint64) []eventstore.RecordedEvent {
	t.Helper()
	var got []eventstore.RecordedEvent
	err := s.ReadData(t.Context(), from, to, func(batch []eventstore.RecordedEvent) error {
		if len(batch) == 0 {
			t.Errorf("ReadData(%d, %d): empty batch", from, to)
		}
		got = append(got, batch...)
		return nil
	})
	if err != nil {
		t.Fatalf("ReadData(%d, %d): %v", from, to, err)
	}
	return got
}

// sameEvents compares the positions and data of got with want.
func sameEvents(t *testing.T, what string, got, want []eventstore.RecordedEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i].Position != want[i].Position || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("%s: event %d at position %d (%d bytes), want position %d (%d bytes)",
				what, i, got[i].Position, len(got[i].Data), want[i].Position, len(want[i].Data))
		}
	}
}
