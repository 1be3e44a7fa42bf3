package bench

import (
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/projections"
	"github.com/ticketcore/ticketcore/projections/sqlmodel"

	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// rebuildChildEnv makes the test binary run the rebuild phase as a child process.
const rebuildChildEnv = "TICKETCORE_BENCH_REBUILD_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(rebuildChildEnv) == "1" {
		replay := Rebuild
		if slices.Contains(os.Args, rawReplayFlag) {
			replay = RawReplay
		}
		res, err := replay(context.Background(), os.Args[len(os.Args)-1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		_ = json.NewEncoder(os.Stdout).Encode(res)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// BenchmarkWorkload runs every phase once on BENCH_TICKETS tickets (default 2000) and
// reports each figure and its ratio to the raw JetStream baseline of the same run:
//
//	go test ./bench -run '^$' -bench Workload -benchtime 1x
func BenchmarkWorkload(b *testing.B) {
	tickets := 2000
	if v, err := strconv.Atoi(os.Getenv("BENCH_TICKETS")); err == nil && v > 0 {
		tickets = v
	}
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		res, err := Run(context.Background(), Config{
			Tickets: tickets, Seed: 1, Dir: b.TempDir(),
			RebuildExe: exe, RebuildArgs: []string{"-test.run=^$"}, RebuildEnv: []string{rebuildChildEnv + "=1"},
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.RawCASBeside4.EvPerSec, "raw-cas-ev/s")
		b.ReportMetric(res.Commands1.EvPerSec, "cmd1-ev/s")
		b.ReportMetric(res.Commands4.EvPerSec, "cmd4-ev/s")
		b.ReportMetric(res.RatioCmd1, "cmd1/raw")
		b.ReportMetric(res.RatioCmd4, "cmd4/raw")
		b.ReportMetric(res.Commands1.P99Millis, "cmd1-p99-ms")
		b.ReportMetric(res.ColdLoad.P50Millis, "load-p50-ms")
		b.ReportMetric(res.RawReplay.EvPerSec, "raw-replay-ev/s")
		b.ReportMetric(res.Rebuild.EvPerSec, "rebuild-ev/s")
		b.ReportMetric(res.RatioRebuild, "rebuild/raw")
		b.ReportMetric(res.RatioRSSToDisk, "rss/disk")
		out, _ := json.MarshalIndent(res, "", "  ")
		b.Logf("%s", out)
	}
}

// loadedStore generates a store of n tickets once per benchmark.
func loadedStore(b *testing.B, n int) *jetstream.Store { return loadedStoreT(b, n) }

func loadedStoreT(b testing.TB, n int) *jetstream.Store {
	b.Helper()
	ctx := context.Background()
	store, err := jetstream.Open(ctx, jetstream.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	clock := newWorkloadClock()
	h, err := newBenchHandler(ctx, store, clock)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := runCommands(ctx, h, clock, Generate(n, 1), 0, make([]string, n), 2, nil); err != nil {
		b.Fatal(err)
	}
	return store
}

// BenchmarkRebuild and BenchmarkRawReplay read the same store: the projection rebuild
// against the raw ordered-consumer replay with JSON decoding.
func BenchmarkRebuild(b *testing.B) {
	store := loadedStore(b, 2000)
	last, _ := store.LastPosition(context.Background())
	b.ResetTimer()
	for b.Loop() {
		if _, err := projections.NewRunner(store, nil, projections.NewTickets()).Rebuild(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(last)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkRawReplay(b *testing.B) {
	store := loadedStore(b, 2000)
	last, _ := store.LastPosition(context.Background())
	b.ResetTimer()
	for b.Loop() {
		if err := rawReplay(context.Background(), store.Conn(), last); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(last)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRawReplayNoDecode is BenchmarkRawReplay without the decoding: the transport
// alone (the server reading its blocks and delivering, the client receiving), the
// floor under any replay through an ordered consumer.
func BenchmarkRawReplayNoDecode(b *testing.B) {
	store := loadedStore(b, 2000)
	last, _ := store.LastPosition(context.Background())
	b.ResetTimer()
	for b.Loop() {
		js, err := natsjs.New(store.Conn())
		if err != nil {
			b.Fatal(err)
		}
		cons, err := js.OrderedConsumer(context.Background(), jetstream.DefaultStreamName, natsjs.OrderedConsumerConfig{})
		if err != nil {
			b.Fatal(err)
		}
		msgs, err := cons.Messages()
		if err != nil {
			b.Fatal(err)
		}
		for n := uint64(0); n < last; n++ {
			if _, err := msgs.Next(); err != nil {
				b.Fatal(err)
			}
		}
		msgs.Stop()
	}
	b.ReportMetric(float64(last)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDirectGetReplay reads the same store as BenchmarkRawReplay with batched
// direct gets (1024 messages a request, over every subject, as the adapter's ReadStream
// does for one subject) and the same encoding/json decode: the alternative to the
// ordered consumer that catch-up and rebuild do not use.
func BenchmarkDirectGetReplay(b *testing.B) {
	store := loadedStore(b, 2000)
	last, _ := store.LastPosition(context.Background())
	b.ResetTimer()
	for b.Loop() {
		if err := directGetReplay(context.Background(), store.Conn(), last, json.Unmarshal); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(last)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDirectGetReplayNoDecode is BenchmarkDirectGetReplay without the decoding,
// to compare with BenchmarkRawReplayNoDecode: the two transports alone.
func BenchmarkDirectGetReplayNoDecode(b *testing.B) {
	store := loadedStore(b, 2000)
	last, _ := store.LastPosition(context.Background())
	b.ResetTimer()
	for b.Loop() {
		if err := directGetReplay(context.Background(), store.Conn(), last, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(last)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReadDataNoDecode is the transport of Runner.CatchUp: the store's bulk read
// (direct gets by sequence without headers, see jetstream.Store.ReadData), to compare
// with the two above.
func BenchmarkReadDataNoDecode(b *testing.B) {
	store := loadedStore(b, 2000)
	last, _ := store.LastPosition(context.Background())
	b.ResetTimer()
	for b.Loop() {
		n := 0
		err := store.ReadData(context.Background(), 1, last, func(batch []eventstore.RecordedEvent) error {
			n += len(batch)
			return nil
		})
		if err != nil || uint64(n) != last {
			b.Fatalf("ReadData: %d events, %v", n, err)
		}
	}
	b.ReportMetric(float64(last)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// directGetReplay reads positions 1 to last with batched direct gets and decodes every
// event with decode (encoding/json, unless nil for none).
func directGetReplay(ctx context.Context, nc *nats.Conn, last uint64, decode domain.Unmarshaler) error {
	inbox := nats.NewInbox()
	replies := make(chan *nats.Msg, 1025)
	sub, err := nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	subject := "$JS.API.DIRECT.GET." + jetstream.DefaultStreamName
	for next := uint64(1); next <= last; {
		req, _ := json.Marshal(map[string]any{"seq": next, "next_by_subj": jetstream.DefaultSubjectPrefix + ".>", "batch": 1024, "max_bytes": 4 << 20})
		if err := nc.PublishRequest(subject, inbox, req); err != nil {
			return err
		}
	batch:
		for {
			var msg *nats.Msg
			select {
			case msg = <-replies:
			case <-time.After(10 * time.Second):
				return fmt.Errorf("direct get from %d: no answer", next)
			case <-ctx.Done():
				return ctx.Err()
			}
			switch status := msg.Header.Get("Status"); status {
			case "":
				seq, err := strconv.ParseUint(msg.Header.Get("Nats-Sequence"), 10, 64)
				if err != nil {
					return err
				}
				if decode != nil {
					if _, err := domain.DecodeEventWith(msg.Data, decode); err != nil {
						return err
					}
				}
				next = seq + 1
			case "204":
				break batch
			default:
				return fmt.Errorf("direct get from %d: status %s %s", next, status, msg.Header.Get("Description"))
			}
		}
	}
	return nil
}

// BenchmarkRebuildDir is the bench's rebuild phase on a kept store (BENCH_STORE, the
// jetstream folder of `ticketctl bench --dir`), opened afresh for every iteration as the
// rebuild process does, so that it can be profiled:
//
//	BENCH_STORE=/tmp/b/jetstream go test ./bench -run '^$' -bench RebuildDir -benchtime 3x -cpuprofile cpu.out
func BenchmarkRebuildDir(b *testing.B) {
	dir := os.Getenv("BENCH_STORE")
	if dir == "" {
		b.Skip("BENCH_STORE is not set")
	}
	var events, seconds, cpu float64
	for b.Loop() {
		res, err := Rebuild(context.Background(), dir)
		if err != nil {
			b.Fatal(err)
		}
		events += float64(res.Events)
		seconds += res.Seconds
		cpu += res.CPUSeconds
	}
	b.ReportMetric(events/seconds, "events/s")
	b.ReportMetric(cpu/events*1e6, "cpu-µs/event")
}

// BenchmarkSQLCatchUpDir is a fresh SQLite read model catching up on a kept store
// (BENCH_STORE, as for BenchmarkRebuildDir): what ticketd does on its first start over
// an existing store, or after the read model's file is removed.
//
//	BENCH_STORE=/tmp/b/jetstream go test ./bench -run '^$' -bench SQLCatchUpDir -benchtime 1x -cpuprofile cpu.out
func BenchmarkSQLCatchUpDir(b *testing.B) {
	dir := os.Getenv("BENCH_STORE")
	if dir == "" {
		b.Skip("BENCH_STORE is not set")
	}
	ctx := context.Background()
	store, err := jetstream.Open(ctx, jetstream.Config{DataDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	var events float64
	for b.Loop() {
		model, err := sqlmodel.Open(ctx, sqlmodel.Config{URL: filepath.Join(b.TempDir(), "readmodel.sqlite")})
		if err != nil {
			b.Fatal(err)
		}
		pos, err := projections.NewRunner(store, nil, model).CatchUp(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := model.Close(); err != nil {
			b.Fatal(err)
		}
		events += float64(pos)
	}
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
}
