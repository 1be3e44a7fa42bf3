package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/scenario"
)

// scenarioResult is the outcome of one scenario file.
type scenarioResult struct {
	File       string              `json:"file"`
	Name       string              `json:"name,omitempty"`
	Steps      int                 `json:"steps"`
	OK         bool                `json:"ok"`
	Error      string              `json:"error,omitempty"`
	Mismatches []scenario.Mismatch `json:"mismatches"`
	Seconds    float64             `json:"seconds"`
}

func cmdScenario(ctx context.Context, e *env, args []string) error {
	fs := e.flags("scenario")
	pos, err := e.parse(fs, args, 1, -1)
	if err != nil {
		return err
	}
	if pos[0] != "run" {
		return usagef("unknown scenario action %q: use run", pos[0])
	}
	files := pos[1:]
	if len(files) == 0 {
		return usagef("scenario run needs at least one FILE")
	}
	// The handler and runner log through the default logger; keep stderr for
	// warnings and errors.
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	defer slog.SetDefault(prev)

	var results []scenarioResult
	failed := 0
	for _, path := range files {
		r := runScenario(ctx, path)
		if !r.OK {
			failed++
		}
		results = append(results, r)
		if e.output == "json" {
			continue
		}
		for _, m := range r.Mismatches {
			fmt.Fprintf(e.stdout, "  mismatch: %s\n", m)
		}
		switch {
		case r.Error != "":
			fmt.Fprintf(e.stdout, "ERROR %s: %s\n", r.File, r.Error)
		case !r.OK:
			fmt.Fprintf(e.stdout, "FAIL  %s (%s): %d mismatch(es) in %d steps (%.2fs)\n", r.File, r.Name, len(r.Mismatches), r.Steps, r.Seconds)
		default:
			fmt.Fprintf(e.stdout, "ok    %s (%s): %d steps (%.2fs)\n", r.File, r.Name, r.Steps, r.Seconds)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if e.output == "json" {
		if err := e.printValue(results); err != nil {
			return err
		}
	} else if len(files) > 1 {
		fmt.Fprintf(e.stdout, "%d of %d scenario file(s) passed\n", len(files)-failed, len(files))
	}
	if failed > 0 {
		return &exitError{code: 1}
	}
	return nil
}

// runScenario plays one file on an embedded JetStream store in a fresh temporary
// folder, removed afterwards.
func runScenario(ctx context.Context, path string) scenarioResult {
	r := scenarioResult{File: path, Mismatches: []scenario.Mismatch{}}
	began := time.Now()
	fail := func(err error) scenarioResult {
		r.Error = err.Error()
		r.Seconds = time.Since(began).Seconds()
		return r
	}
	f, err := scenario.Load(path)
	if err != nil {
		return fail(err)
	}
	r.Name, r.Steps = f.Name, len(f.Steps)
	dir, err := os.MkdirTemp("", "ticketctl-scenario-*")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	store, err := jetstream.Open(ctx, jetstream.Config{DataDir: filepath.Join(dir, "jetstream")})
	if err != nil {
		return fail(err)
	}
	mismatches, err := scenario.Run(ctx, f, store)
	if cerr := store.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	if mismatches != nil {
		r.Mismatches = mismatches
	}
	r.OK = len(mismatches) == 0
	r.Seconds = time.Since(began).Seconds()
	return r
}
