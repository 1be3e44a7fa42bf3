package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/projections"
)

// readBatch is how many events verify reads at a time.
const readBatch = 4096

// storeFlags are the flags that say which event store to open.
type storeFlags struct {
	data    string
	natsURL string
	stream  string
	prefix  string
}

func (s *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.data, "data", "", "ticketd's data folder; its embedded store is DIR/jetstream (ticketd must be stopped)")
	fs.StringVar(&s.natsURL, "nats-url", "", "NATS server URL instead of --data (e.g. the nats_url a running ticketd logs)")
	fs.StringVar(&s.stream, "stream", "", "JetStream stream name (default "+jetstream.DefaultStreamName+")")
	fs.StringVar(&s.prefix, "subject-prefix", "", "subject prefix (default "+jetstream.DefaultSubjectPrefix+")")
}

// open opens the store the flags name. An embedded store must already exist: opening
// an empty folder would create a store, and report on nothing.
func (s *storeFlags) open(ctx context.Context) (*jetstream.Store, error) {
	if (s.data == "") == (s.natsURL == "") {
		return nil, usagef("give exactly one of --data DIR and --nats-url URL")
	}
	cfg := jetstream.Config{URL: s.natsURL, StreamName: s.stream, SubjectPrefix: s.prefix}
	if s.data != "" {
		dir, err := filepath.Abs(filepath.Join(s.data, "jetstream"))
		if err != nil {
			return nil, err
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("no event store in %s (expected the folder %s)", s.data, dir)
		}
		cfg.DataDir = dir
	}
	return jetstream.Open(ctx, cfg)
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress is a projection that only counts what the runner applies, and shows it on
// a terminal.
type progress struct {
	n, pos, total uint64
	w             io.Writer // nil: silent
	last          time.Time
}

func (p *progress) Name() string { return "progress" }
func (p *progress) Apply(_ domain.Event, pos uint64) error {
	if pos <= p.pos {
		return nil
	}
	p.n++
	p.pos = pos
	if p.w != nil && time.Since(p.last) >= 100*time.Millisecond {
		p.last = time.Now()
		pct := 100.0
		if p.total > 0 {
			pct = 100 * float64(pos) / float64(p.total)
		}
		fmt.Fprintf(p.w, "\rreplaying: %d events, position %d of %d (%.0f%%)", p.n, pos, p.total, pct)
	}
	return nil
}
func (p *progress) Position() uint64 { return p.pos }
func (p *progress) Reset()           { p.n, p.pos = 0, 0 }

// rebuildReport is the outcome of a rebuild.
type rebuildReport struct {
	Events          uint64  `json:"events"`
	Position        uint64  `json:"position"`
	Tickets         int     `json:"tickets"`
	Elapsed         string  `json:"elapsed"`
	ElapsedSeconds  float64 `json:"elapsed_seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
}

func cmdRebuild(ctx context.Context, e *env, args []string) error {
	fs := e.flags("rebuild")
	var sf storeFlags
	sf.register(fs)
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	store, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	total, err := store.LastPosition(ctx)
	if err != nil {
		return err
	}
	p := &progress{total: total}
	if isTerminal(e.stderr) {
		p.w = e.stderr
	}
	model := projections.NewTickets()
	runner := projections.NewRunner(store, slog.New(slog.NewTextHandler(io.Discard, nil)), model, p)
	began := time.Now()
	pos, err := runner.Rebuild(ctx)
	elapsed := time.Since(began)
	if p.w != nil {
		fmt.Fprint(p.w, "\r\033[K")
	}
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	r := rebuildReport{
		Events: p.n, Position: pos, Tickets: model.Count(),
		Elapsed: elapsed.Round(time.Millisecond).String(), ElapsedSeconds: elapsed.Seconds(),
	}
	if elapsed > 0 {
		r.EventsPerSecond = float64(p.n) / elapsed.Seconds()
	}
	if e.output == "json" {
		return e.printValue(r)
	}
	_, err = fmt.Fprintf(e.stdout, "rebuilt %d events (position %d) into %d tickets in %s: %.0f events/s\n",
		r.Events, r.Position, r.Tickets, r.Elapsed, r.EventsPerSecond)
	return err
}

// brokenLink is the first bad event of a stream.
type brokenLink struct {
	Stream   string `json:"stream"`
	Index    int    `json:"index"`              // 0-based, in the stream
	Sequence uint64 `json:"sequence,omitempty"` // as the event says
	Position uint64 `json:"position"`           // global position in the store
	EventID  string `json:"event_id,omitempty"`
	Reason   string `json:"reason"`
}

type verifyReport struct {
	Streams int          `json:"streams"`
	Events  int          `json:"events"`
	OK      bool         `json:"ok"`
	Broken  []brokenLink `json:"broken"`
}

func cmdVerify(ctx context.Context, e *env, args []string) error {
	fs := e.flags("verify")
	var sf storeFlags
	sf.register(fs)
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	store, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	report, err := verifyStore(ctx, store)
	if err != nil {
		return err
	}
	if e.output == "json" {
		if err := e.printValue(report); err != nil {
			return err
		}
	} else {
		for _, b := range report.Broken {
			fmt.Fprintf(e.stdout, "BROKEN %s: event %d (sequence %d, position %d, id %s): %s\n",
				b.Stream, b.Index, b.Sequence, b.Position, dash(b.EventID), b.Reason)
		}
		if report.OK {
			fmt.Fprintf(e.stdout, "ok: %d streams, %d events, every hash chain is intact\n", report.Streams, report.Events)
		} else {
			fmt.Fprintf(e.stdout, "FAILED: %d of %d streams broken (%d events read)\n", len(report.Broken), report.Streams, report.Events)
		}
	}
	if !report.OK {
		return &exitError{code: 1}
	}
	return nil
}

// verifyStore reads every event of the store, groups them by stream and checks each
// stream's hash chain. An event that does not decode breaks its stream there.
func verifyStore(ctx context.Context, store eventstore.Store) (verifyReport, error) {
	type streamState struct {
		events    []domain.Event
		positions []uint64
		broken    *brokenLink
	}
	streams := map[string]*streamState{}
	report := verifyReport{Broken: []brokenLink{}}
	for from := uint64(1); ; {
		recs, err := store.ReadAll(ctx, from, readBatch)
		if err != nil {
			return report, fmt.Errorf("read from position %d: %w", from, err)
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			report.Events++
			s := streams[rec.Stream]
			if s == nil {
				s = &streamState{}
				streams[rec.Stream] = s
			}
			if s.broken != nil {
				continue
			}
			bad := func(reason string, ev domain.Event) {
				s.broken = &brokenLink{Stream: rec.Stream, Index: len(s.events), Sequence: ev.Sequence, Position: rec.Position, EventID: rec.ID, Reason: reason}
			}
			ev, err := domain.DecodeEvent(rec.Data)
			if err != nil {
				var envelope domain.Event
				_ = json.Unmarshal(rec.Data, &envelope)
				bad(err.Error(), envelope)
				continue
			}
			if ev.Stream != rec.Stream {
				bad(fmt.Sprintf("the event belongs to stream %q", ev.Stream), ev)
				continue
			}
			s.events = append(s.events, ev)
			s.positions = append(s.positions, rec.Position)
		}
		from = recs[len(recs)-1].Position + 1
	}
	names := make([]string, 0, len(streams))
	for name := range streams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := streams[name]
		// The chain up to an undecodable event is checked too: an earlier break is
		// the first one.
		if i, reason := domain.VerifyChain(s.events); i >= 0 {
			ev := s.events[i]
			s.broken = &brokenLink{Stream: name, Index: i, Sequence: ev.Sequence, Position: s.positions[i], EventID: ev.ID, Reason: reason}
		}
		if s.broken != nil {
			report.Broken = append(report.Broken, *s.broken)
		}
	}
	report.Streams = len(streams)
	report.OK = len(report.Broken) == 0
	return report, nil
}
