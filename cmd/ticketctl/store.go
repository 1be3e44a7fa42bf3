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

// readBatch is how many events verify, export and import read at a time (a variable:
// tests make it small to see several pages).
var readBatch = 4096

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
	return s.openStore(ctx, false)
}

// openStore opens the store the flags name; with create, an embedded store is created
// in a data folder that has none (import fills a new store).
func (s *storeFlags) openStore(ctx context.Context, create bool) (*jetstream.Store, error) {
	if (s.data == "") == (s.natsURL == "") {
		return nil, usagef("give exactly one of --data DIR and --nats-url URL")
	}
	cfg := jetstream.Config{URL: s.natsURL, StreamName: s.stream, SubjectPrefix: s.prefix}
	if s.data != "" {
		dir, err := filepath.Abs(filepath.Join(s.data, "jetstream"))
		if err != nil {
			return nil, err
		}
		if fi, err := os.Stat(dir); !create && (err != nil || !fi.IsDir()) {
			return nil, fmt.Errorf("no event store in %s (expected the folder %s)", s.data, dir)
		}
		cfg.DataDir = dir
	}
	return jetstream.Open(ctx, cfg)
}

// streamName is the JetStream stream the flags name.
func (s *storeFlags) streamName() string {
	if s.stream != "" {
		return s.stream
	}
	return jetstream.DefaultStreamName
}

// progressProjection is a projection that only counts what the runner applies, for
// the progress line of a rebuild.
type progressProjection struct {
	p        *progress
	n, pos   uint64
	reported uint64 // events counted on p so far
	lastSeen uint64 // the store's last position when the rebuild started
}

func (p *progressProjection) Name() string { return "progress" }
func (p *progressProjection) Apply(_ domain.Event, pos uint64) error {
	if pos <= p.pos {
		return nil
	}
	p.n++
	p.pos = pos
	if p.reported == 0 || p.n-p.reported >= progressStep { // a rebuild is fast: count in steps
		p.p.setNote(fmt.Sprintf("position %d of %d", pos, p.lastSeen))
		p.p.add(p.n - p.reported)
		p.reported = p.n
	}
	return nil
}

// progressStep is how many events a rebuild applies between two progress counts.
const progressStep = 256

func (p *progressProjection) Position() uint64 { return p.pos }
func (p *progressProjection) Reset()           { p.n, p.pos, p.reported = 0, 0, 0 }

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
	count, last, err := storeExtent(ctx, store, sf.streamName())
	if err != nil {
		return err
	}
	// Rebuild only reads the store: an interrupted rebuild is resumed by running it again.
	p := &progressProjection{p: e.progress("rebuild", count), lastSeen: last}
	model := projections.NewTickets()
	runner := projections.NewRunner(store, slog.New(slog.NewTextHandler(io.Discard, nil)), model, p)
	began := time.Now()
	pos, err := runner.Rebuild(ctx)
	elapsed := time.Since(began)
	p.p.finish()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("rebuild interrupted after %d events (it only reads the store: run it again)", p.n)
		}
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
	count, _, err := storeExtent(ctx, store, sf.streamName())
	if err != nil {
		return err
	}
	p := e.progress("verify", count)
	report, err := verifyStore(ctx, store, p)
	p.finish()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("verify interrupted after %d events (it only reads the store: run it again)", p.count())
		}
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

// verifyStore reads every event of the store in global order and checks each stream's
// hash chain as its events come, holding only each stream's last hash. An event that
// does not decode breaks its stream there. p counts the events read.
func verifyStore(ctx context.Context, store eventstore.Store, p *progress) (verifyReport, error) {
	type streamState struct {
		chain  domain.ChainCheck
		broken *brokenLink
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
				s.broken = &brokenLink{Stream: rec.Stream, Index: int(s.chain.Len()), Sequence: ev.Sequence, Position: rec.Position, EventID: rec.ID, Reason: reason}
			}
			ev, err := domain.DecodeEvent(rec.Data)
			switch {
			case err != nil:
				var envelope domain.Event
				_ = json.Unmarshal(rec.Data, &envelope)
				bad(err.Error(), envelope)
			case ev.Stream != rec.Stream:
				bad(fmt.Sprintf("the event belongs to stream %q", ev.Stream), ev)
			default:
				if reason := s.chain.Next(ev); reason != "" {
					bad(reason, ev)
					s.broken.EventID = ev.ID
				}
			}
		}
		from = recs[len(recs)-1].Position + 1
		p.setNote(fmt.Sprintf("%d streams", len(streams)))
		p.add(uint64(len(recs)))
	}
	names := make([]string, 0, len(streams))
	for name, s := range streams {
		if s.broken != nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		report.Broken = append(report.Broken, *streams[name].broken)
	}
	report.Streams = len(streams)
	report.OK = len(report.Broken) == 0
	return report, nil
}
