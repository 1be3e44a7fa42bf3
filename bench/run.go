package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/projections"
)

// Config sizes a run.
type Config struct {
	Tickets int    // tickets loaded by 4 clients before the 1-client phase
	Extra   int    // tickets run by 1 client on top (default Tickets/10, at least 50)
	Dir     string // data folder (a fresh temporary one when empty)
	Seed    uint64
	Log     io.Writer // progress lines; nil for none
	// RebuildExe is the program to run the rebuild in, as `RebuildExe RebuildArgs... DIR`
	// (a separate process, so that its peak memory is its own). Empty: no rebuild phase.
	RebuildExe  string
	RebuildArgs []string
	RebuildEnv  []string
	// HeapProfile, when set, receives a heap profile taken after the command phases,
	// with the whole store loaded (what the handler and the embedded server hold).
	HeapProfile io.Writer
	// CPUProfile, when set, receives a CPU profile of the two command phases (with the
	// raw turns taken beside them), the part of the run the command targets measure.
	CPUProfile io.Writer
}

// Rate is a throughput with its latency distribution.
type Rate struct {
	Ops       int     `json:"ops"`
	Events    int     `json:"events"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_sec"`
	EvPerSec  float64 `json:"events_per_sec"`
	P50Millis float64 `json:"p50_ms"`
	P99Millis float64 `json:"p99_ms"`
	// CPUSeconds is the CPU time (user + system) the whole process used during the
	// phase: the client side and the embedded NATS server alike.
	CPUSeconds float64 `json:"cpu_seconds"`
}

// ReplayResult is what a replay process reports: the rebuild, or the raw replay
// (Tickets 0).
type ReplayResult struct {
	Events       int     `json:"events"`
	Tickets      int     `json:"tickets"`
	Seconds      float64 `json:"seconds"`
	EvPerSec     float64 `json:"events_per_sec"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	CPUSeconds   float64 `json:"cpu_seconds"` // of the rebuild process during the rebuild
}

// Result is one run.
type Result struct {
	Tickets    int   `json:"tickets_in_store"`
	Events     int   `json:"events_in_store"`
	StoreBytes int64 `json:"store_bytes_on_disk"`
	Commands4  Rate  `json:"commands_4_clients"`
	Commands1  Rate  `json:"commands_1_client"`
	// The raw baselines taken in turns with each command phase (see rawCAS).
	RawCASBeside4 Rate `json:"raw_cas_publish_beside_4_clients"`
	RawCASBeside1 Rate `json:"raw_cas_publish_beside_1_client"`
	// RawCAS4Publishers is the raw publish by four publishers on a connection each,
	// taken beside the 4-client phase: the ceiling four clients could reach.
	RawCAS4Publishers Rate          `json:"raw_cas_publish_4_publishers"`
	ColdLoad          Rate          `json:"cold_ticket_load"`
	RawReplay         Rate          `json:"raw_ordered_consumer_replay"` // the best of RawReplayRuns
	RawReplayRuns     []float64     `json:"raw_replay_runs_events_per_sec,omitempty"`
	RebuildRuns       []float64     `json:"rebuild_runs_events_per_sec,omitempty"`
	Rebuild           *ReplayResult `json:"rebuild,omitempty"`
	RatioCmd1         float64       `json:"ratio_commands_1_vs_raw_cas"`
	RatioCmd4         float64       `json:"ratio_commands_4_vs_raw_cas"`
	RatioRebuild      float64       `json:"ratio_rebuild_vs_raw_replay,omitempty"`
	RatioRSSToDisk    float64       `json:"ratio_rebuild_peak_rss_vs_store_size,omitempty"`
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

// Run performs every phase and returns the figures.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Extra == 0 {
		cfg.Extra = max(cfg.Tickets/10, 50)
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "ticketcore-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		cfg.Dir = dir
	}
	storeDir := filepath.Join(cfg.Dir, "jetstream")
	store, err := jetstream.Open(ctx, jetstream.Config{DataDir: storeDir})
	if err != nil {
		return nil, err
	}
	closed := false
	defer func() {
		if !closed {
			store.Close()
		}
	}()
	res := &Result{}

	// Commands: 4 clients load the main workload, then 1 client runs more tickets on top,
	// so its latency is measured with the whole store in place.
	clock := newWorkloadClock()
	h, err := newBenchHandler(ctx, store, clock)
	if err != nil {
		return nil, err
	}
	raw, err := newRawCAS(ctx, store)
	if err != nil {
		return nil, err
	}
	main := Generate(cfg.Tickets, cfg.Seed)
	cfg.logf("commands, 4 clients: %d tickets, %d commands, raw CAS publish in turns", cfg.Tickets, len(main.Steps))
	ids := make([]string, cfg.Tickets+cfg.Extra)
	stopProfile := func() {}
	if cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
			raw.close(ctx)
			return nil, err
		}
		stopProfile = sync.OnceFunc(pprof.StopCPUProfile)
		defer stopProfile()
	}
	four, err := runCommands(ctx, h, clock, main, 0, ids, 4, raw)
	if err != nil {
		raw.close(ctx)
		return nil, err
	}
	extra := Generate(cfg.Extra, cfg.Seed+1)
	cfg.logf("commands, 1 client: %d more tickets, %d commands, raw CAS publish in turns", cfg.Extra, len(extra.Steps))
	one, err := runCommands(ctx, h, clock, extra, cfg.Tickets, ids, 1, raw)
	stopProfile()
	raw.close(ctx)
	if err != nil {
		return nil, err
	}
	res.Commands4, res.RawCASBeside4, res.RawCAS4Publishers = four.commands, four.rawOne.rate(), four.rawFour.rate()
	res.Commands1, res.RawCASBeside1 = one.commands, one.rawOne.rate()
	if cfg.HeapProfile != nil {
		runtime.GC()
		if err := pprof.WriteHeapProfile(cfg.HeapProfile); err != nil {
			return nil, err
		}
	}
	last, err := store.LastPosition(ctx)
	if err != nil {
		return nil, err
	}
	res.Events, res.Tickets = int(last), cfg.Tickets+cfg.Extra

	cfg.logf("cold ticket loads")
	if res.ColdLoad, err = coldLoads(ctx, store, ids, cfg.Seed); err != nil {
		return nil, err
	}
	store.Close()
	closed = true
	if res.StoreBytes, err = dirSize(storeDir); err != nil {
		return nil, err
	}
	if cfg.RebuildExe != "" {
		if err := replayPhases(ctx, cfg, storeDir, res); err != nil {
			return nil, err
		}
	}
	res.RatioCmd1 = res.Commands1.EvPerSec / res.RawCASBeside1.EvPerSec
	res.RatioCmd4 = res.Commands4.EvPerSec / res.RawCASBeside4.EvPerSec
	return res, nil
}

// newBenchHandler is the handler the workload runs through: the default reference
// data, the bench's SLA, the workload's clock.
func newBenchHandler(ctx context.Context, store eventstore.Store, clock *workloadClock) (*commands.Handler, error) {
	h, err := commands.NewHandler(ctx, store, commands.Options{Clock: clock.Now, NumberBlock: 100})
	if err != nil {
		return nil, err
	}
	if err := h.SeedDefaults(ctx); err != nil {
		return nil, err
	}
	if _, err := h.SaveSLA(ctx, benchSLA(), commands.Meta{Actor: "bench"}); err != nil {
		return nil, err
	}
	return h, nil
}

// benchSLA is a business-hours SLA, so that every command also computes deadlines.
func benchSLA() domain.SLADefinition {
	hours := map[string][][2]string{}
	for _, d := range []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"} {
		hours[d] = [][2]string{{"09:00", "12:30"}, {"13:30", "18:00"}}
	}
	return domain.SLADefinition{
		Name: "Standard", Default: true,
		Calendar: domain.CalendarSpec{Timezone: "Europe/Paris", Hours: hours, Holidays: []string{"2026-12-25", "2027-01-01"}},
		Priorities: []domain.SLAPriority{
			{Name: "Low", Response: domain.Duration(24 * time.Hour), Resolution: domain.Duration(72 * time.Hour)},
			{Name: "Medium", Response: domain.Duration(8 * time.Hour), Resolution: domain.Duration(24 * time.Hour), Default: true},
			{Name: "High", Response: domain.Duration(time.Hour), Resolution: domain.Duration(4 * time.Hour)},
		},
	}
}

// workloadClock gives each command its step's instant: the handler reads it once per
// command, and clients set it just before sending, under the same lock order.
type workloadClock struct {
	start time.Time
	mu    sync.Mutex
	now   time.Time
}

func newWorkloadClock() *workloadClock {
	start := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	return &workloadClock{start: start, now: start}
}

func (c *workloadClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// advance moves the clock forward only, so that concurrent clients never make it go
// back (event times stay monotonic per ticket).
func (c *workloadClock) advance(offset time.Duration) {
	c.mu.Lock()
	if t := c.start.Add(offset); t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
}

// withCPU sets the CPU time the process used since cpu0.
func withCPU(r Rate, cpu0 float64) Rate {
	r.CPUSeconds = cpuSeconds() - cpu0
	return r
}

func rate(ops, events int, elapsed time.Duration, latencies []time.Duration) Rate {
	r := Rate{Ops: ops, Events: events, Seconds: elapsed.Seconds()}
	r.OpsPerSec = float64(ops) / elapsed.Seconds()
	r.EvPerSec = float64(events) / elapsed.Seconds()
	if len(latencies) > 0 {
		slices.Sort(latencies)
		pct := func(p float64) float64 {
			return float64(latencies[min(len(latencies)-1, int(p*float64(len(latencies))))].Microseconds()) / 1000
		}
		r.P50Millis, r.P99Millis = pct(0.50), pct(0.99)
	}
	return r
}

// coldLoads measures loading a ticket's decision state from the store, cache empty.
func coldLoads(ctx context.Context, store *jetstream.Store, ids []string, seed uint64) (Rate, error) {
	h, err := commands.NewHandler(ctx, store, commands.Options{})
	if err != nil {
		return Rate{}, err
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	n := min(2000, len(ids))
	latencies := make([]time.Duration, 0, n)
	cpu0 := cpuSeconds()
	start := time.Now()
	for range n {
		id := ids[rng.IntN(len(ids))]
		t0 := time.Now()
		if _, err := h.LoadTicket(ctx, id); err != nil {
			return Rate{}, err
		}
		latencies = append(latencies, time.Since(t0))
		h, _ = commands.NewHandler(ctx, store, commands.Options{}) // keep every load cold
	}
	return withCPU(rate(n, 0, time.Since(start), latencies), cpu0), nil
}

// rawReplay reads the whole event stream with an ordered consumer, in one goroutine,
// and decodes every event with encoding/json: the plain way to replay JetStream, which
// a rebuild is compared with.
func rawReplay(ctx context.Context, nc *nats.Conn, last uint64) error {
	js, err := natsjs.New(nc)
	if err != nil {
		return err
	}
	cons, err := js.OrderedConsumer(ctx, jetstream.DefaultStreamName, natsjs.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	msgs, err := cons.Messages()
	if err != nil {
		return err
	}
	defer msgs.Stop()
	var n uint64
	for n < last {
		msg, err := msgs.Next()
		if err != nil {
			return err
		}
		if _, err := domain.DecodeEventWith(msg.Data(), json.Unmarshal); err != nil {
			return err
		}
		n++
	}
	return nil
}

func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		return nil
	})
	return total, err
}

// replayRounds is how many times the raw replay and the rebuild each run, in turns.
const replayRounds = 2

// replayPhases runs the raw replay and the rebuild in turns, each in a process of its
// own on the closed store (so that each peak RSS is its own, and neither replays
// against the other's heap), and keeps the best rate of each: taking turns exposes
// both to the same load on a shared machine, and the best of several runs is the one
// least slowed by other work. The peak RSS reported is the highest of the rebuilds.
func replayPhases(ctx context.Context, cfg Config, storeDir string, res *Result) error {
	for round := 1; round <= replayRounds; round++ {
		cfg.logf("raw JetStream replay (ordered consumer + encoding/json) in a separate process, round %d of %d", round, replayRounds)
		raw, err := replayInChild(ctx, cfg, storeDir, true)
		if err != nil {
			return err
		}
		res.RawReplayRuns = append(res.RawReplayRuns, raw.EvPerSec)
		if raw.EvPerSec > res.RawReplay.EvPerSec {
			res.RawReplay = Rate{Ops: raw.Events, Events: raw.Events, Seconds: raw.Seconds, OpsPerSec: raw.EvPerSec,
				EvPerSec: raw.EvPerSec, CPUSeconds: raw.CPUSeconds}
		}
		cfg.logf("rebuild in a separate process, round %d of %d", round, replayRounds)
		rb, err := replayInChild(ctx, cfg, storeDir, false)
		if err != nil {
			return err
		}
		res.RebuildRuns = append(res.RebuildRuns, rb.EvPerSec)
		peak := rb.PeakRSSBytes
		if res.Rebuild != nil {
			peak = max(peak, res.Rebuild.PeakRSSBytes)
		}
		if res.Rebuild == nil || rb.EvPerSec > res.Rebuild.EvPerSec {
			res.Rebuild = rb
		}
		res.Rebuild.PeakRSSBytes = peak
	}
	res.RatioRebuild = res.Rebuild.EvPerSec / res.RawReplay.EvPerSec
	res.RatioRSSToDisk = float64(res.Rebuild.PeakRSSBytes) / float64(res.StoreBytes)
	return nil
}

// rawReplayFlag makes the replay process run the raw replay instead of the rebuild.
const rawReplayFlag = "--raw"

func replayInChild(ctx context.Context, cfg Config, storeDir string, raw bool) (*ReplayResult, error) {
	args := slices.Clone(cfg.RebuildArgs)
	if raw {
		args = append(args, rawReplayFlag)
	}
	cmd := exec.CommandContext(ctx, cfg.RebuildExe, append(args, storeDir)...)
	cmd.Env = append(os.Environ(), cfg.RebuildEnv...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("replay process: %w", err)
	}
	var rb ReplayResult
	line := out[strings.LastIndexByte(strings.TrimSpace(string(out)), '\n')+1:]
	if err := json.Unmarshal(line, &rb); err != nil {
		return nil, fmt.Errorf("replay process output %q: %w", out, err)
	}
	return &rb, nil
}

// Rebuild is the rebuild phase, run in its own process: open the store, replay every
// event into a fresh ticket read model, and report the rate and the peak RSS.
func Rebuild(ctx context.Context, storeDir string) (*ReplayResult, error) {
	return measureReplay(ctx, storeDir, func(store *jetstream.Store) (uint64, int, error) {
		model := projections.NewTickets()
		pos, err := projections.NewRunner(store, nil, model).Rebuild(ctx)
		return pos, model.Count(), err
	})
}

// RawReplay is the raw baseline of the rebuild, run in its own process likewise: the
// whole stream through an ordered consumer, decoded with encoding/json.
func RawReplay(ctx context.Context, storeDir string) (*ReplayResult, error) {
	return measureReplay(ctx, storeDir, func(store *jetstream.Store) (uint64, int, error) {
		last, err := store.LastPosition(ctx)
		if err != nil {
			return 0, 0, err
		}
		return last, 0, rawReplay(ctx, store.Conn(), last)
	})
}

// measureReplay opens the store (not timed), times replay, and reports its rate, CPU
// and the process's peak RSS.
func measureReplay(ctx context.Context, storeDir string, replay func(*jetstream.Store) (events uint64, tickets int, err error)) (*ReplayResult, error) {
	store, err := jetstream.Open(ctx, jetstream.Config{DataDir: storeDir})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	cpu0 := cpuSeconds()
	start := time.Now()
	events, tickets, err := replay(store)
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	cpu := cpuSeconds() - cpu0
	rss, err := peakRSS()
	if err != nil {
		return nil, err
	}
	return &ReplayResult{Events: int(events), Tickets: tickets, Seconds: elapsed.Seconds(),
		EvPerSec: float64(events) / elapsed.Seconds(), PeakRSSBytes: rss, CPUSeconds: cpu}, nil
}

// peakRSS reads the process's peak resident set size (VmHWM) from /proc.
func peakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}
