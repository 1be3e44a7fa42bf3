package main

// Export and import of the whole event history, for audits, archives and moving a
// store: JSON Lines, one stored envelope per line, exactly the stored bytes, in
// global order, after a header line (docs/audit.md, docs/export-schema.json).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
)

// The export format.
const (
	exportFormat  = "ticketcore-export"
	exportVersion = 1
	exportSchema  = "docs/export-schema.json"
)

// exportHeader is the first line of an export.
type exportHeader struct {
	Format     string    `json:"format"`
	Version    int       `json:"version"`
	ExportedAt time.Time `json:"exported_at"`
	// Events is the number of event lines that follow.
	Events uint64 `json:"events"`
	Schema string `json:"schema"`
	// LastPosition is the global position of the last event exported: the export
	// holds every event stored at or before it when the export began.
	LastPosition uint64 `json:"last_position"`
}

// envelopeKeys are the envelope fields import and export read from a line.
type envelopeKeys struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Stream   string `json:"stream"`
	Sequence uint64 `json:"sequence"`
	Hash     string `json:"hash"`
}

// storeExtent is how many events the store holds and the global position of the
// last one, read together. JetStream tells both in one answer (a store whose messages
// were deleted holds fewer events than its last position); other adapters are
// counted.
func storeExtent(ctx context.Context, store eventstore.Store, streamName string) (count, last uint64, err error) {
	if js, ok := store.(*jetstream.Store); ok {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		st, err := js.JetStream().Stream(ctx, streamName)
		if err != nil {
			return 0, 0, fmt.Errorf("stream %s: %w", streamName, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("stream %s: %w", streamName, err)
		}
		return info.State.Msgs, info.State.LastSeq, nil
	}
	if last, err = store.LastPosition(ctx); err != nil {
		return 0, 0, err
	}
	for from := uint64(1); from <= last; {
		recs, err := store.ReadAll(ctx, from, readBatch)
		if err != nil {
			return 0, 0, err
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			if rec.Position <= last {
				count++
			}
		}
		from = recs[len(recs)-1].Position + 1
	}
	return count, last, nil
}

// exportReport is the outcome of an export.
type exportReport struct {
	File            string  `json:"file"`
	Events          uint64  `json:"events"`  // lines in the file
	Written         uint64  `json:"written"` // lines written by this run
	LastPosition    uint64  `json:"last_position"`
	Resumed         bool    `json:"resumed"`
	ElapsedSeconds  float64 `json:"elapsed_seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
}

func cmdExport(ctx context.Context, e *env, args []string) error {
	fs := e.flags("export")
	var sf storeFlags
	sf.register(fs)
	out := fs.String("out", "-", "file to write (- for standard output)")
	resume := fs.Bool("resume", false, "complete an interrupted export: append to --out FILE after the last whole line it holds")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *resume && *out == "-" {
		return usagef("--resume needs --out FILE: standard output cannot be resumed")
	}
	store, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()

	var (
		w       io.Writer = e.stdout
		file    *os.File
		header  exportHeader
		done    uint64 // event lines already in the file
		from    uint64 = 1
		resumed bool
	)
	if *out != "-" {
		var state *exportState
		if *resume {
			if state, err = readExportState(*out); err != nil {
				return err
			}
		} else if fi, err := os.Stat(*out); err == nil && fi.Size() > 0 {
			return fmt.Errorf("%s already exists: use --resume to complete it, or remove it", *out)
		}
		if state != nil && state.header != nil {
			resumed, header, done = true, *state.header, state.lines
			if file, err = os.OpenFile(*out, os.O_WRONLY, 0); err != nil {
				return err
			}
			// A line cut short by the interruption is dropped and written again.
			if err := file.Truncate(state.end); err != nil {
				file.Close()
				return err
			}
			if _, err := file.Seek(state.end, io.SeekStart); err != nil {
				file.Close()
				return err
			}
			if from, err = resumePosition(ctx, store, state); err != nil {
				file.Close()
				return err
			}
		} else if file, err = os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644); err != nil {
			return err
		}
		defer file.Close()
		w = file
	}
	if !resumed {
		count, last, err := storeExtent(ctx, store, sf.streamName())
		if err != nil {
			return err
		}
		header = exportHeader{Format: exportFormat, Version: exportVersion, ExportedAt: time.Now().UTC(),
			Events: count, Schema: exportSchema, LastPosition: last}
		line, _ := json.Marshal(header)
		if _, err := w.Write(append(line, '\n')); err != nil {
			return err
		}
	}

	p := e.progress("export", header.Events)
	p.resumeAt(done)
	bw := bufio.NewWriterSize(w, 1<<20)
	written, err := exportEvents(ctx, store, bw, from, header.LastPosition, p)
	p.finish()
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if file != nil {
		if serr := file.Sync(); err == nil {
			err = serr
		}
	}
	total := done + written
	if err != nil {
		switch {
		case ctx.Err() != nil && file != nil:
			return fmt.Errorf("export interrupted after %d of %d events: run it again with --resume to complete %s", total, header.Events, *out)
		case ctx.Err() != nil:
			return fmt.Errorf("export interrupted after %d of %d events (standard output cannot be resumed: use --out FILE)", total, header.Events)
		}
		return fmt.Errorf("export: %w", err)
	}
	if total != header.Events {
		return fmt.Errorf("export: %d events written where the header announces %d: the store changed during the export (events deleted?)", total, header.Events)
	}
	if file == nil {
		return nil // standard output holds the export: nothing else goes there
	}
	r := exportReport{File: *out, Events: total, Written: written, LastPosition: header.LastPosition, Resumed: resumed,
		ElapsedSeconds: p.elapsed().Seconds(), EventsPerSecond: p.rate()}
	if e.output == "json" {
		return e.printValue(r)
	}
	how := "exported"
	if resumed {
		how = fmt.Sprintf("completed the export (%d events were already written):", done)
	}
	_, err = fmt.Fprintf(e.stdout, "%s %d events (global positions up to %d) to %s in %s: %.0f events/s\n",
		how, total, header.LastPosition, *out, p.elapsed().Round(time.Millisecond), r.EventsPerSecond)
	return err
}

// exportEvents writes the events stored at positions from to last, one stored
// envelope per line, and returns how many it wrote.
func exportEvents(ctx context.Context, store eventstore.Store, w io.Writer, from, last uint64, p *progress) (uint64, error) {
	var n uint64
	for from <= last {
		recs, err := store.ReadAll(ctx, from, readBatch)
		if err != nil {
			return n, err
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			if rec.Position > last {
				return n, nil
			}
			// Ticketcore writes compact JSON, which never holds a raw newline; a line
			// that did could not be exported as its exact bytes.
			if bytes.IndexByte(rec.Data, '\n') >= 0 {
				return n, fmt.Errorf("the event at position %d (%s) holds a newline: it cannot be one JSON line as stored", rec.Position, rec.ID)
			}
			if _, err := w.Write(rec.Data); err != nil {
				return n, err
			}
			if _, err := w.Write([]byte{'\n'}); err != nil {
				return n, err
			}
			n++
		}
		from = recs[len(recs)-1].Position + 1
		p.setNote(fmt.Sprintf("position %d of %d", from-1, last))
		p.add(uint64(len(recs)))
	}
	return n, nil
}

// exportState is what an existing export file holds.
type exportState struct {
	header *exportHeader // nil: not even a whole header line
	lines  uint64        // whole event lines after the header
	last   []byte        // the last whole event line
	end    int64         // the offset just after the last whole line
}

// readExportState reads an export file to resume it. A missing file is an empty
// state: the export starts from the beginning.
func readExportState(path string) (*exportState, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return &exportState{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st := &exportState{}
	r := bufio.NewReaderSize(f, 1<<20)
	first, err := r.ReadBytes('\n')
	if errors.Is(err, io.EOF) {
		return st, nil // no whole header line: start again
	}
	if err != nil {
		return nil, err
	}
	var h exportHeader
	if err := json.Unmarshal(first, &h); err != nil || h.Format != exportFormat {
		return nil, fmt.Errorf("%s is not a ticketcore export (its first line is not the header)", path)
	}
	if h.Version != exportVersion {
		return nil, fmt.Errorf("%s is an export of format version %d; this ticketctl writes version %d", path, h.Version, exportVersion)
	}
	st.header = &h
	st.end = int64(len(first))
	// Count the whole lines; remember where the last one starts.
	offset, lastStart := st.end, int64(-1)
	buf := make([]byte, 1<<20)
	for {
		n, err := r.Read(buf)
		for i := 0; i < n; i++ {
			if buf[i] == '\n' {
				lastStart = st.end
				st.end = offset + int64(i) + 1
				st.lines++
			}
		}
		offset += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if st.lines > 0 {
		st.last = make([]byte, st.end-1-lastStart)
		if _, err := f.ReadAt(st.last, lastStart); err != nil {
			return nil, err
		}
	}
	if st.lines > h.Events {
		return nil, fmt.Errorf("%s holds %d events where its header announces %d", path, st.lines, h.Events)
	}
	return st, nil
}

// resumePosition is the global position to export from after the last line of an
// export file: the position, in this store, of the event that line holds.
func resumePosition(ctx context.Context, store eventstore.Store, st *exportState) (uint64, error) {
	if st.lines == 0 {
		return 1, nil
	}
	var k envelopeKeys
	if err := json.Unmarshal(st.last, &k); err != nil || k.ID == "" || !eventstore.ValidStreamName(k.Stream) {
		return 0, fmt.Errorf("the last line of the export is not an event envelope (%v): export again without --resume", err)
	}
	recs, err := store.ReadStream(ctx, k.Stream)
	if err != nil {
		return 0, err
	}
	for _, rec := range recs {
		if rec.ID == k.ID {
			if !bytes.Equal(rec.Data, st.last) {
				return 0, fmt.Errorf("event %s differs between the export and the store: the export does not come from this store", k.ID)
			}
			return rec.Position + 1, nil
		}
	}
	return 0, fmt.Errorf("the last exported event (%s in %s) is not in this store: the export does not come from it", k.ID, k.Stream)
}

// importReport is the outcome of an import.
type importReport struct {
	File            string  `json:"file"`
	Events          uint64  `json:"events"`   // event lines in the file
	Imported        uint64  `json:"imported"` // appended by this run
	Skipped         uint64  `json:"skipped"`  // already in the store (--resume)
	Streams         int     `json:"streams"`
	ElapsedSeconds  float64 `json:"elapsed_seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
}

// targetStream is what the store already holds of one stream.
type targetStream struct {
	n        uint64              // events
	revision eventstore.Revision // to expect on the next append
	lastID   string
	lastHash string
}

func cmdImport(ctx context.Context, e *env, args []string) error {
	fs := e.flags("import")
	var sf storeFlags
	sf.register(fs)
	resume := fs.Bool("resume", false, "complete an interrupted import: skip the events the store already holds")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	path := pos[0]
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	header, err := readImportHeader(f, path)
	if err != nil {
		return err
	}

	store, err := sf.openStore(ctx, true)
	if err != nil {
		return err
	}
	defer store.Close()
	existing, err := store.ReadAll(ctx, 1, 1)
	if err != nil {
		return err
	}
	if len(existing) > 0 && !*resume {
		return errors.New("the store already holds events: import fills an empty store (stop ticketd, or use a new --data folder); --resume completes an interrupted import of this file")
	}
	began := time.Now()
	target := map[string]*targetStream{}
	if len(existing) > 0 {
		if target, err = scanTarget(ctx, store, e.progress("import: reading the store", 0)); err != nil {
			return err
		}
	}

	// First pass: the whole file is checked before anything is written. Every line
	// must be an envelope this build can read, every stream's hash chain must hold,
	// and what the store already holds must be the start of the file's streams.
	check := e.progress("import: checking "+path, header.Events)
	fileStreams, err := checkImport(ctx, f, header, target, check)
	check.finish()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("import interrupted while checking %s: nothing was written", path)
		}
		return fmt.Errorf("import: %s: %w", path, err)
	}
	for name, t := range target {
		if fileStreams[name] < t.n {
			return fmt.Errorf("import: the store's stream %s holds %d events, %s only %d: the store holds events the file does not", name, t.n, path, fileStreams[name])
		}
	}

	// Second pass: append, in the file's (global) order, each event to its stream
	// with the expected revision.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	if _, err := r.ReadBytes('\n'); err != nil { // the header
		return err
	}
	p := e.progress("import", header.Events)
	var imported, skipped uint64
	err = func() error {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			line, err := r.ReadBytes('\n')
			if errors.Is(err, io.EOF) && len(line) == 0 {
				return nil
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			line = bytes.TrimSuffix(line, []byte{'\n'})
			var k envelopeKeys
			if err := gojson.Unmarshal(line, &k); err != nil {
				return err
			}
			t := target[k.Stream]
			if t == nil {
				t = &targetStream{}
				target[k.Stream] = t
			}
			if k.Sequence <= t.n {
				skipped++
				p.add(1)
				continue
			}
			res, err := store.Append(ctx, k.Stream, t.revision, []eventstore.EventData{{ID: k.ID, Type: k.Type, Data: line}})
			if err != nil {
				return fmt.Errorf("append %s sequence %d (%s): %w", k.Stream, k.Sequence, k.ID, err)
			}
			t.n, t.revision = k.Sequence, res.Revision
			imported++
			p.add(1)
		}
	}()
	p.finish()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("import interrupted after %d of %d events: run it again with --resume to complete it", imported+skipped, header.Events)
		}
		return fmt.Errorf("import: %w", err)
	}
	elapsed := time.Since(began)
	rep := importReport{File: path, Events: header.Events, Imported: imported, Skipped: skipped, Streams: len(target),
		ElapsedSeconds: elapsed.Seconds(), EventsPerSecond: p.rate()}
	if e.output == "json" {
		return e.printValue(rep)
	}
	_, err = fmt.Fprintf(e.stdout, "imported %d events into %d streams (%d already there) from %s in %s: %.0f events/s\n",
		imported, len(target), skipped, path, elapsed.Round(time.Millisecond), rep.EventsPerSecond)
	return err
}

// readImportHeader reads and checks the header line of an export.
func readImportHeader(f *os.File, path string) (exportHeader, error) {
	r := bufio.NewReader(f)
	first, err := r.ReadBytes('\n')
	var h exportHeader
	if err != nil || json.Unmarshal(first, &h) != nil || h.Format != exportFormat {
		return h, fmt.Errorf("%s is not a ticketcore export: its first line is not the header {\"format\":%q,...}", path, exportFormat)
	}
	if h.Version != exportVersion {
		return h, fmt.Errorf("%s is an export of format version %d; this ticketctl reads version %d", path, h.Version, exportVersion)
	}
	return h, nil
}

// scanTarget reads what a store holds, stream by stream: the count, the revision to
// expect, and the last event's ID and hash.
func scanTarget(ctx context.Context, store eventstore.Store, p *progress) (map[string]*targetStream, error) {
	defer p.finish()
	target := map[string]*targetStream{}
	for from := uint64(1); ; {
		recs, err := store.ReadAll(ctx, from, readBatch)
		if err != nil {
			return nil, err
		}
		if len(recs) == 0 {
			return target, nil
		}
		for _, rec := range recs {
			var k envelopeKeys
			if err := gojson.Unmarshal(rec.Data, &k); err != nil {
				return nil, fmt.Errorf("the store's event at position %d is not an envelope: %w", rec.Position, err)
			}
			t := target[rec.Stream]
			if t == nil {
				t = &targetStream{}
				target[rec.Stream] = t
			}
			if k.Sequence != t.n+1 {
				return nil, fmt.Errorf("the store's stream %s has sequence %d where %d was expected", rec.Stream, k.Sequence, t.n+1)
			}
			t.n, t.revision, t.lastID, t.lastHash = k.Sequence, rec.Revision, rec.ID, k.Hash
		}
		from = recs[len(recs)-1].Position + 1
		p.add(uint64(len(recs)))
	}
}

// checkImport reads the event lines of an export (f just after the header) and checks
// them all; it returns how many events each stream has in the file.
func checkImport(ctx context.Context, f *os.File, h exportHeader, target map[string]*targetStream, p *progress) (map[string]uint64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	if _, err := r.ReadBytes('\n'); err != nil {
		return nil, err
	}
	chains := map[string]*domain.ChainCheck{}
	var lines uint64
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		lines++
		if !bytes.HasSuffix(line, []byte{'\n'}) {
			return nil, fmt.Errorf("line %d is cut short (no newline at its end): the file is incomplete", lines+1)
		}
		line = line[:len(line)-1]
		ev, err := domain.DecodeEvent(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lines+1, err)
		}
		if !eventstore.ValidStreamName(ev.Stream) {
			return nil, fmt.Errorf("line %d: event %s has an invalid stream name %q", lines+1, ev.ID, ev.Stream)
		}
		c := chains[ev.Stream]
		if c == nil {
			c = &domain.ChainCheck{}
			chains[ev.Stream] = c
		}
		if reason := c.Next(ev); reason != "" {
			return nil, fmt.Errorf("line %d: stream %s breaks its hash chain at sequence %d (event %s): %s", lines+1, ev.Stream, ev.Sequence, ev.ID, reason)
		}
		if t := target[ev.Stream]; t != nil && ev.Sequence == t.n && (ev.ID != t.lastID || ev.Hash != t.lastHash) {
			return nil, fmt.Errorf("line %d: the store's stream %s differs from the file at sequence %d (store: event %s, file: event %s): not an interrupted import of this file",
				lines+1, ev.Stream, ev.Sequence, t.lastID, ev.ID)
		}
		p.add(1)
	}
	if lines != h.Events {
		return nil, fmt.Errorf("%d events where the header announces %d: the file is incomplete", lines, h.Events)
	}
	counts := make(map[string]uint64, len(chains))
	for name, c := range chains {
		counts[name] = c.Len()
	}
	return counts, nil
}
