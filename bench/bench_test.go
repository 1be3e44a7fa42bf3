package bench

import (
	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/projections"

	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
)

// rebuildChildEnv makes the test binary run the rebuild phase as a child process.
const rebuildChildEnv = "TICKETCORE_BENCH_REBUILD_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(rebuildChildEnv) == "1" {
		res, err := Rebuild(context.Background(), os.Args[len(os.Args)-1])
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
		b.ReportMetric(res.RawCAS.EvPerSec, "raw-cas-ev/s")
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
	h, err := commands.NewHandler(ctx, store, commands.Options{Clock: clock.Now, NumberBlock: 100})
	if err != nil {
		b.Fatal(err)
	}
	if err := h.SeedDefaults(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := h.SaveSLA(ctx, benchSLA(), commands.Meta{}); err != nil {
		b.Fatal(err)
	}
	if _, err := runCommands(ctx, h, clock, Generate(n, 1), 0, make([]string, n), 2); err != nil {
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
		if _, err := rawReplay(context.Background(), store.Conn(), last); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(last)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkCommandComment measures one warm command end to end (decide, encode, hash,
// CAS append) next to the raw CAS publish of an event of the same size.
func BenchmarkCommandComment(b *testing.B) {
	ctx := context.Background()
	store, err := jetstream.Open(ctx, jetstream.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	h, err := commands.NewHandler(ctx, store, commands.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for range 100 {
		r, err := h.CreateTicket(ctx, domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{Subject: "s", RaisedBy: "a@example.com", Channel: domain.ChannelAPI}}, commands.Meta{})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, r.TicketID)
	}
	i := 0
	for b.Loop() {
		if _, err := h.Execute(ctx, ids[i%len(ids)], domain.AddComment{Body: "printer invoice login password error export report delay order refund shipping account access"}, commands.Meta{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
