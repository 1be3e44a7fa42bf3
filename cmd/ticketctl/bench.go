package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/ticketcore/ticketcore/bench"
)

// benchRebuildCommand is the hidden subcommand the bench runs its rebuild phase in: a
// separate process, so that the peak memory it reports is the rebuild's own.
const benchRebuildCommand = "bench-rebuild"

// Performance targets, each judged against the raw JetStream baseline of the same run.
const (
	targetCmd1Ratio    = 1.0 // commands, 1 client, events/s over raw CAS publish events/s
	targetCmd4Ratio    = 2.0 // commands, 4 clients, over the same raw CAS baseline
	targetP99Millis    = 2.0 // command latency, 99th percentile
	targetRebuildRatio = 2.0 // rebuild events/s over raw ordered-consumer replay events/s
	targetRSSRatio     = 1.5 // rebuild peak RSS over the store's size on disk
)

// benchTarget is one target and whether the run met it.
type benchTarget struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`  // the figure compared: a ratio, or milliseconds
	Target string  `json:"target"` // e.g. ">= 2.0x", "<= 2 ms"
	Pass   bool    `json:"pass"`
}

// benchReport is what bench prints with -o json: every figure of the run, and the
// verdict on each target.
type benchReport struct {
	*bench.Result
	Seed    uint64        `json:"seed"`
	Targets []benchTarget `json:"targets"`
}

func cmdBench(ctx context.Context, e *env, args []string) error {
	fs := e.flags("bench")
	tickets := fs.Int("tickets", 20000, "tickets loaded by 4 clients (the store the 1-client phase runs on)")
	extra := fs.Int("extra", 0, "tickets run by 1 client on top (default tickets/10, at least 50)")
	dir := fs.String("dir", "", "data folder for the store, kept afterwards (default: a temporary folder, removed)")
	seed := fs.Uint64("seed", 1, "workload seed")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the command phases (with their raw turns) to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile, taken after the command phases, to this file")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *tickets <= 0 || *extra < 0 {
		return usagef("--tickets must be positive and --extra not negative")
	}
	if *dir != "" {
		// A store already there would add its events to the figures.
		if _, err := os.Stat(filepath.Join(*dir, "jetstream")); err == nil {
			return fmt.Errorf("%s already holds a store (%s): bench needs a fresh folder", *dir, filepath.Join(*dir, "jetstream"))
		}
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: finding this program to run the rebuild in: %w", err)
	}
	cfg := bench.Config{
		Tickets: *tickets, Extra: *extra, Dir: *dir, Seed: *seed, Log: e.stderr,
		RebuildExe: exe, RebuildArgs: []string{benchRebuildCommand},
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.CPUProfile = f
	}
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.HeapProfile = f
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	report := benchReport{Result: res, Seed: *seed, Targets: benchTargets(res)}
	if e.output == "json" {
		return e.printValue(report)
	}
	return printBench(e.stdout, report)
}

// cmdBenchRebuild is the rebuild phase of bench, in its own process: it replays the
// store in DIR into a fresh ticket read model (with --raw: the raw replay baseline
// instead) and prints the result as one JSON line, the last line of its output (bench
// reads that line).
func cmdBenchRebuild(ctx context.Context, e *env, args []string) error {
	fs := e.flags(benchRebuildCommand)
	raw := fs.Bool("raw", false, "run the raw replay baseline instead of the rebuild")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	replay := bench.Rebuild
	if *raw {
		replay = bench.RawReplay
	}
	res, err := replay(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("bench rebuild: %w", err)
	}
	return json.NewEncoder(e.stdout).Encode(res)
}

func benchTargets(r *bench.Result) []benchTarget {
	ts := []benchTarget{
		{Name: "commands, 1 client / raw CAS publish", Value: r.RatioCmd1, Target: fmt.Sprintf(">= %.1fx", targetCmd1Ratio), Pass: r.RatioCmd1 >= targetCmd1Ratio},
		{Name: "commands, 4 clients / raw CAS publish", Value: r.RatioCmd4, Target: fmt.Sprintf(">= %.1fx", targetCmd4Ratio), Pass: r.RatioCmd4 >= targetCmd4Ratio},
		{Name: "command p99 ms, 1 client", Value: r.Commands1.P99Millis, Target: fmt.Sprintf("<= %g ms", targetP99Millis), Pass: r.Commands1.P99Millis <= targetP99Millis},
		{Name: "command p99 ms, 4 clients", Value: r.Commands4.P99Millis, Target: fmt.Sprintf("<= %g ms", targetP99Millis), Pass: r.Commands4.P99Millis <= targetP99Millis},
	}
	rebuild := benchTarget{Name: "rebuild / raw ordered-consumer replay", Target: fmt.Sprintf(">= %.1fx", targetRebuildRatio)}
	rss := benchTarget{Name: "rebuild peak RSS / store size on disk", Target: fmt.Sprintf("<= %.1fx", targetRSSRatio)}
	if r.Rebuild != nil {
		rebuild.Value, rebuild.Pass = r.RatioRebuild, r.RatioRebuild >= targetRebuildRatio
		rss.Value, rss.Pass = r.RatioRSSToDisk, r.RatioRSSToDisk <= targetRSSRatio
	}
	return append(ts, rebuild, rss)
}

// printBench writes the report as text: the store, then one row per figure with its
// raw baseline, the ratio, the target and the verdict, then the phase details.
func printBench(out io.Writer, rep benchReport) error {
	r := rep.Result
	fmt.Fprintf(out, "store: %d tickets, %d events, %s on disk (seed %d)\n\n", r.Tickets, r.Events, mib(r.StoreBytes), rep.Seed)

	verdict := func(pass bool) string {
		if pass {
			return "PASS"
		}
		return "FAIL"
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FIGURE\tVALUE\tRAW BASELINE\tRATIO\tTARGET\tRESULT")
	row := func(figure, value, baseline string, ratio float64, target, result string) {
		rs := "-"
		if ratio > 0 {
			rs = fmt.Sprintf("%.2fx", ratio)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", figure, value, baseline, rs, target, result)
	}
	ratio := func(a, b float64) float64 {
		if b <= 0 {
			return 0
		}
		return a / b
	}
	// Each command phase is compared with the raw publish taken in turns with it.
	cas1, cas4 := r.RawCASBeside1, r.RawCASBeside4
	t := rep.Targets
	row("raw CAS publish beside 4 clients (baseline)", evs(cas4.EvPerSec), evs(cas4.EvPerSec)+" raw CAS", 1, "-", "-")
	row("raw CAS publish, 4 publishers (ceiling)", evs(r.RawCAS4Publishers.EvPerSec), evs(cas4.EvPerSec)+" raw CAS", ratio(r.RawCAS4Publishers.EvPerSec, cas4.EvPerSec), "-", "-")
	row("commands, 4 clients", evs(r.Commands4.EvPerSec), evs(cas4.EvPerSec)+" raw CAS", r.RatioCmd4, t[1].Target, verdict(t[1].Pass))
	row("command p50, 4 clients", ms(r.Commands4.P50Millis), ms(cas4.P50Millis)+" raw CAS p50", ratio(r.Commands4.P50Millis, cas4.P50Millis), "-", "-")
	row("command p99, 4 clients", ms(r.Commands4.P99Millis), ms(cas4.P99Millis)+" raw CAS p99", ratio(r.Commands4.P99Millis, cas4.P99Millis), t[3].Target, verdict(t[3].Pass))
	row("raw CAS publish beside 1 client (baseline)", evs(cas1.EvPerSec), evs(cas1.EvPerSec)+" raw CAS", 1, "-", "-")
	row("commands, 1 client", evs(r.Commands1.EvPerSec), evs(cas1.EvPerSec)+" raw CAS", r.RatioCmd1, t[0].Target, verdict(t[0].Pass))
	row("command p50, 1 client", ms(r.Commands1.P50Millis), ms(cas1.P50Millis)+" raw CAS p50", ratio(r.Commands1.P50Millis, cas1.P50Millis), "-", "-")
	row("command p99, 1 client", ms(r.Commands1.P99Millis), ms(cas1.P99Millis)+" raw CAS p99", ratio(r.Commands1.P99Millis, cas1.P99Millis), t[2].Target, verdict(t[2].Pass))
	row("cold ticket load p50", ms(r.ColdLoad.P50Millis), "-", 0, "-", "-")
	row("cold ticket load p99", ms(r.ColdLoad.P99Millis), "-", 0, "-", "-")
	replay := evs(r.RawReplay.EvPerSec) + " raw replay"
	row("raw ordered-consumer replay, best run (baseline)", evs(r.RawReplay.EvPerSec), replay, 1, "-", "-")
	if rb := r.Rebuild; rb != nil {
		row("rebuild, best run (separate process)", evs(rb.EvPerSec), replay, r.RatioRebuild, t[4].Target, verdict(t[4].Pass))
		row("rebuild peak RSS", mib(rb.PeakRSSBytes), mib(r.StoreBytes)+" store on disk", r.RatioRSSToDisk, t[5].Target, verdict(t[5].Pass))
	} else {
		row("rebuild, best run (separate process)", "not run", replay, 0, t[4].Target, "FAIL")
		row("rebuild peak RSS", "not run", mib(r.StoreBytes)+" store on disk", 0, t[5].Target, "FAIL")
	}
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PHASE\tOPS\tEVENTS\tSECONDS\tOPS/S\tEVENTS/S\tP50 MS\tP99 MS\tCPU S\tCORES\tCPU US/OP")
	// cpu: the process's CPU time in the phase (embedded server included), the cores
	// that makes on average, and the CPU time per operation.
	cpu := func(cpuSec, seconds float64, ops int) string {
		if cpuSec <= 0 || seconds <= 0 || ops <= 0 {
			return "-\t-\t-"
		}
		return fmt.Sprintf("%.2f\t%.2f\t%.1f", cpuSec, cpuSec/seconds, cpuSec*1e6/float64(ops))
	}
	phase := func(name string, p bench.Rate, latency bool) {
		p50, p99 := "-", "-"
		if latency {
			p50, p99 = fmt.Sprintf("%.3f", p.P50Millis), fmt.Sprintf("%.3f", p.P99Millis)
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%.2f\t%.0f\t%.0f\t%s\t%s\t%s\n", name, p.Ops, p.Events, p.Seconds, p.OpsPerSec, p.EvPerSec, p50, p99,
			cpu(p.CPUSeconds, p.Seconds, p.Ops))
	}
	phase("commands, 4 clients", r.Commands4, true)
	phase("raw CAS publish beside them", r.RawCASBeside4, true)
	phase("raw CAS publish, 4 publishers", r.RawCAS4Publishers, true)
	phase("commands, 1 client", r.Commands1, true)
	phase("raw CAS publish beside it", r.RawCASBeside1, true)
	phase("cold ticket loads", r.ColdLoad, true)
	phase("raw ordered-consumer replay (best)", r.RawReplay, false)
	if rb := r.Rebuild; rb != nil {
		fmt.Fprintf(w, "rebuild (%d tickets)\t%d\t%d\t%.2f\t-\t%.0f\t-\t-\t%s\n", rb.Tickets, rb.Events, rb.Events, rb.Seconds, rb.EvPerSec,
			cpu(rb.CPUSeconds, rb.Seconds, rb.Events))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	passed := 0
	for _, t := range rep.Targets {
		if t.Pass {
			passed++
		}
	}
	_, err := fmt.Fprintf(out, "\n%d of %d targets met\n", passed, len(rep.Targets))
	return err
}

func evs(v float64) string { return fmt.Sprintf("%.0f ev/s", v) }

func ms(v float64) string { return fmt.Sprintf("%.3f ms", v) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
