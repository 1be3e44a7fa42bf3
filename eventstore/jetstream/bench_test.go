package jetstream_test

import (
	"bytes"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
)

// benchStreams is the number of event streams the append benchmarks cycle through,
// as many tickets being worked on at once would.
const benchStreams = 1000

func BenchmarkAppendSingle(b *testing.B) {
	benchmarkAppend(b, 1)
}

func BenchmarkAppendBatch8(b *testing.B) {
	benchmarkAppend(b, 8)
}

func benchmarkAppend(b *testing.B, size int) {
	s := open(b, jetstream.Config{DataDir: b.TempDir()})
	ctx := b.Context()
	revisions := make([]eventstore.Revision, benchStreams)
	var appended int
	for b.Loop() {
		i := appended / size % benchStreams
		res, err := s.Append(ctx, fmt.Sprintf("ticket-%d", i), revisions[i], newEvents(size))
		if err != nil {
			b.Fatalf("Append: %v", err)
		}
		revisions[i] = res.Revision
		appended += size
	}
	b.ReportMetric(float64(appended)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppendConcurrent appends single events from 4, 8 and 16 goroutines, each
// on streams of its own, as concurrent commands do.
func BenchmarkAppendConcurrent(b *testing.B) {
	for _, appenders := range []int{4, 8, 16} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			s := open(b, jetstream.Config{DataDir: b.TempDir()})
			ctx := b.Context()
			var next atomic.Int64
			b.SetParallelism((appenders + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.RunParallel(func(pb *testing.PB) {
				me := next.Add(1)
				revisions := make([]eventstore.Revision, benchStreams/appenders)
				i := 0
				for pb.Next() {
					k := i % len(revisions)
					res, err := s.Append(ctx, fmt.Sprintf("ticket-%d-%d", me, k), revisions[k], newEvents(1))
					if err != nil {
						b.Errorf("Append: %v", err)
						return
					}
					revisions[k] = res.Revision
					i++
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func BenchmarkReadAll(b *testing.B) {
	const total = 100_000
	s := open(b, jetstream.Config{DataDir: b.TempDir()})
	ctx := b.Context()
	for i := 0; i < total; i += 500 {
		if _, err := s.Append(ctx, fmt.Sprintf("ticket-%d", i), eventstore.NoStream, newEvents(500)); err != nil {
			b.Fatalf("Append: %v", err)
		}
	}
	var read int
	for b.Loop() {
		events, err := s.ReadAll(ctx, 1, total)
		if err != nil {
			b.Fatalf("ReadAll: %v", err)
		}
		if len(events) != total {
			b.Fatalf("ReadAll: %d events, want %d", len(events), total)
		}
		read += len(events)
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkReadStream(b *testing.B) {
	s := open(b, jetstream.Config{DataDir: b.TempDir()})
	ctx := b.Context()
	// A ticket of 20 events among 10,000 others.
	for i := range 200 {
		if _, err := s.Append(ctx, fmt.Sprintf("ticket-%d", i), eventstore.NoStream, newEvents(50)); err != nil {
			b.Fatalf("Append: %v", err)
		}
	}
	rev := eventstore.NoStream
	for range 20 {
		res, err := s.Append(ctx, "ticket-x", rev, newEvents(1))
		if err != nil {
			b.Fatalf("Append: %v", err)
		}
		rev = res.Revision
	}
	var read int
	for b.Loop() {
		events, err := s.ReadStream(ctx, "ticket-x")
		if err != nil || len(events) != 20 {
			b.Fatalf("ReadStream: %d events, %v", len(events), err)
		}
		read += len(events)
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReadLongTicket reads a ticket of 40 events among 2 000 tickets worked on
// at once, so that its events are 2 000 positions apart, as a long ticket's are in a
// busy store: the whole stream (the file store searches its blocks for the ticket's
// subject, message by message) against its events' positions (a look-up each).
func BenchmarkReadLongTicket(b *testing.B) {
	const tickets, events = 2000, 40
	s := open(b, jetstream.Config{DataDir: b.TempDir()})
	ctx := b.Context()
	revisions := make([]eventstore.Revision, tickets)
	var positions []uint64 // of ticket-0
	for range events {
		for i := range tickets {
			res, err := s.Append(ctx, fmt.Sprintf("ticket-%d", i), revisions[i], newEvents(1))
			if err != nil {
				b.Fatalf("Append: %v", err)
			}
			revisions[i] = res.Revision
			if i == 0 {
				positions = append(positions, res.LastPosition)
			}
		}
	}
	read := func(b *testing.B, f func() ([]eventstore.RecordedEvent, error)) {
		for b.Loop() {
			if recs, err := f(); err != nil || len(recs) != events {
				b.Fatalf("%d events, %v", len(recs), err)
			}
		}
	}
	b.Run("stream", func(b *testing.B) {
		read(b, func() ([]eventstore.RecordedEvent, error) { return s.ReadStream(ctx, "ticket-0") })
	})
	b.Run("at-positions", func(b *testing.B) {
		read(b, func() ([]eventstore.RecordedEvent, error) { return s.ReadAt(ctx, "ticket-0", positions) })
	})
}

// BenchmarkAppendCeiling measures, in turns on one embedded server, the raw baseline
// of the workload benchmark (one publisher, the JetStream client's PublishMsg with a
// message ID and an expected subject sequence) and the store's own appends of the same
// 700-byte events with nothing else around them, by 4 appenders and by 1: the
// ceiling of the bench's command ratios, since a command is such an append plus the
// handler's work.
//
//	go test ./eventstore/jetstream -run '^$' -bench AppendCeiling -benchtime 3x
func BenchmarkAppendCeiling(b *testing.B) {
	const streams, perTurn = 2000, 40000
	s := open(b, jetstream.Config{DataDir: b.TempDir()})
	ctx := b.Context()
	js, err := natsjs.New(s.Conn())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, natsjs.StreamConfig{Name: "BENCH_RAW", Subjects: []string{"bench.raw.>"}, Storage: natsjs.FileStorage}); err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("abcdefghij"), 70)
	rawSeq := make([]uint64, streams)
	raw := func() time.Duration {
		start := time.Now()
		for i := range perTurn {
			k := i % streams
			msg := &nats.Msg{Subject: "bench.raw.ticket-" + strconv.Itoa(k), Data: data, Header: nats.Header{}}
			msg.Header.Set("Nats-Msg-Id", uuid.NewString())
			msg.Header.Set("Nats-Expected-Last-Subject-Sequence", strconv.FormatUint(rawSeq[k], 10))
			ack, err := js.PublishMsg(ctx, msg)
			if err != nil {
				b.Fatal(err)
			}
			rawSeq[k] = ack.Sequence
		}
		return time.Since(start)
	}
	revisions := make([]eventstore.Revision, streams)
	appendBy := func(appenders int) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for a := range appenders {
			wg.Go(func() {
				// Appender a owns the streams whose index is a modulo appenders.
				for i := a; i < perTurn; i += appenders {
					k := i % streams
					ev := eventstore.EventData{ID: uuid.NewString(), Type: "ticket.comment_added", Data: data}
					res, err := s.Append(ctx, "ticket-"+strconv.Itoa(k), revisions[k], []eventstore.EventData{ev})
					if err != nil {
						b.Error(err)
						return
					}
					revisions[k] = res.Revision
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	var rawTime, four, one time.Duration
	for b.Loop() {
		rawTime += raw()
		four += appendBy(4)
		one += appendBy(1)
	}
	b.ReportMetric(float64(b.N*perTurn)/rawTime.Seconds(), "raw-ev/s")
	b.ReportMetric(rawTime.Seconds()/four.Seconds(), "append4/raw")
	b.ReportMetric(rawTime.Seconds()/one.Seconds(), "append1/raw")
}
