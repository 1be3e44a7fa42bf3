package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for ticketctl when bench runs its rebuild
// phase in a separate process: bench runs os.Executable() (here the test binary) with
// the hidden bench-rebuild command.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == benchRebuildCommand {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestBench runs the whole bench, rebuild process included, on a small workload.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("the bench runs every phase on an embedded store")
	}
	began := time.Now()
	r := ctl(t, "bench", "--tickets", "200", "--extra", "50", "--dir", t.TempDir(), "-o", "json")
	if r.code != 0 {
		t.Fatalf("bench: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if took := time.Since(began); took > 60*time.Second {
		t.Errorf("bench --tickets 200 took %v, more than a minute", took)
	}
	rep := decode[benchReport](t, r.stdout)
	res := rep.Result
	if res == nil || res.Tickets != 250 || res.Events < 250*8 || res.StoreBytes <= 0 {
		t.Fatalf("bench store: %+v", res)
	}
	if res.Commands4.Ops != 200*8 || res.Commands1.Ops != 50*8 || res.Commands1.P99Millis <= 0 ||
		res.RawCASBeside4.Events <= 0 || res.RawCAS4Publishers.Events <= 0 || res.RawCASBeside1.Events <= 0 ||
		res.RawReplay.Events != res.Events || res.ColdLoad.Ops != 250 {
		t.Errorf("bench phases: 4 clients %+v, raw CAS beside %+v and with 4 publishers %+v, 1 client %+v, raw CAS beside %+v, raw replay %+v, cold loads %+v",
			res.Commands4, res.RawCASBeside4, res.RawCAS4Publishers, res.Commands1, res.RawCASBeside1, res.RawReplay, res.ColdLoad)
	}
	if len(res.RawReplayRuns) != 2 || len(res.RebuildRuns) != 2 {
		t.Errorf("replay rounds: raw %v, rebuild %v; want 2 of each", res.RawReplayRuns, res.RebuildRuns)
	}
	if rb := res.Rebuild; rb == nil || rb.Events != res.Events || rb.Tickets != 250 || rb.PeakRSSBytes <= 0 ||
		res.RatioRebuild <= 0 || res.RatioRSSToDisk <= 0 {
		t.Fatalf("bench rebuild: %+v, ratios %v %v", rb, res.RatioRebuild, res.RatioRSSToDisk)
	}
	if len(rep.Targets) != 6 {
		t.Fatalf("targets: %+v", rep.Targets)
	}
	for _, w := range []string{"commands, 4 clients: 200 tickets", "commands, 1 client: 50 more tickets", "rebuild in a separate process"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("progress on stderr lacks %q:\n%s", w, r.stderr)
		}
	}

	// The text report of the same figures: every row, each target judged.
	var out strings.Builder
	if err := printBench(&out, rep); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, w := range []string{"store: 250 tickets", "raw CAS publish beside 4 clients (baseline)", "raw CAS publish beside 1 client (baseline)", "commands, 1 client", "commands, 4 clients",
		"command p99, 1 client", "command p99, 4 clients", "cold ticket load p50", "raw ordered-consumer replay, best run (baseline)",
		"rebuild, best run (separate process)", "rebuild peak RSS", ">= 1.0x", ">= 2.0x", "<= 2 ms", "<= 1.5x", "targets met"} {
		if !strings.Contains(text, w) {
			t.Errorf("bench text lacks %q:\n%s", w, text)
		}
	}
	if n := strings.Count(text, "PASS") + strings.Count(text, "FAIL"); n != 6 {
		t.Errorf("bench text judges %d targets, want 6:\n%s", n, text)
	}
	t.Logf("\n%s", text)

	fails(t, 2, []string{"--tickets must be positive"}, "bench", "--tickets", "0")
	fails(t, 1, []string{"already holds a store"}, "bench", "--tickets", "10", "--dir", storeParent(t))
}

// storeParent is a folder that already holds a store folder.
func storeParent(t *testing.T) string {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "jetstream"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
