package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/projections"
	"github.com/ticketcore/ticketcore/projections/projtest"
)

// generated is a history generated into a data folder laid out as ticketd's.
type generated struct {
	data  string
	stats projtest.Stats
	// events of every ticket, by ticket ID
	events map[string][]domain.Event
}

func generateStore(t *testing.T, tickets int, seed uint64) generated {
	t.Helper()
	ctx := t.Context()
	data := t.TempDir()
	store, err := jetstream.Open(ctx, jetstream.Config{DataDir: filepath.Join(data, "jetstream")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	clock := projtest.NewClock(projtest.Start)
	h, err := commands.NewHandler(ctx, store, commands.Options{Clock: clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	stats, err := projtest.Generate(ctx, h, clock, rand.New(rand.NewPCG(seed, 7)), tickets)
	if err != nil {
		t.Fatal(err)
	}
	g := generated{data: data, stats: stats, events: map[string][]domain.Event{}}
	for _, id := range stats.TicketIDs {
		if g.events[id], err = h.TicketEvents(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// openData opens the store of a data folder.
func openData(t *testing.T, data string) *jetstream.Store {
	t.Helper()
	store, err := jetstream.Open(t.Context(), jetstream.Config{DataDir: filepath.Join(data, "jetstream")})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// tamperer works on the TICKETS_EVENTS stream with the JetStream API, under the
// adapter: what someone with write access to the NATS server can do.
type tamperer struct {
	t      *testing.T
	store  *jetstream.Store
	stream natsjs.Stream
}

func newTamperer(t *testing.T, store *jetstream.Store) *tamperer {
	ctx := t.Context()
	stream, err := store.JetStream().Stream(ctx, jetstream.DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	// The stream remembers message IDs for 30 seconds and would drop the
	// republished copies as duplicates: shorten the window, as a tamperer would.
	cfg := stream.CachedInfo().Config
	cfg.Duplicates = 100 * time.Millisecond // the least JetStream accepts
	if _, err := store.JetStream().UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	return &tamperer{t: t, store: store, stream: stream}
}

// rewrite replaces the messages of one event stream by new ones, in place as far as
// the stream's own order goes: it purges the subject and publishes every event again,
// the k-th (0-based) changed by change, with the headers the adapter writes.
func (tp *tamperer) rewrite(streamName string, k int, change func(e *domain.Event)) (position uint64) {
	t, ctx := tp.t, tp.t.Context()
	recs, err := tp.store.ReadStream(ctx, streamName)
	if err != nil {
		t.Fatal(err)
	}
	subject := jetstream.DefaultSubjectPrefix + "." + streamName
	if err := tp.stream.Purge(ctx, natsjs.WithPurgeSubject(subject)); err != nil {
		t.Fatal(err)
	}
	for i, rec := range recs {
		data := rec.Data
		if i == k {
			ev, err := domain.DecodeEvent(rec.Data)
			if err != nil {
				t.Fatal(err)
			}
			change(&ev)
			if data, err = ev.Encode(); err != nil {
				t.Fatal(err)
			}
		}
		msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{"Nats-Msg-Id": {rec.ID}, "Tkt-Event-Type": {rec.Type}}}
		// The server forgets message IDs on a timer of its own: a copy it still takes
		// for a duplicate was dropped, and is published again a little later.
		var ack *natsjs.PubAck
		for deadline := time.Now().Add(5 * time.Second); ; {
			if ack, err = tp.store.JetStream().PublishMsg(ctx, msg); err != nil {
				t.Fatal(err)
			}
			if !ack.Duplicate {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the republished event %s was still taken for a duplicate after 5 s", rec.ID)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if i == k {
			position = ack.Sequence
		}
	}
	return position
}

// TestVerifyFindsTamperingInJetStream changes stored events directly in JetStream,
// below the adapter, in three ways, and checks that verify names the first broken
// link of each stream: stream, sequence, position and reason.
func TestVerifyFindsTamperingInJetStream(t *testing.T) {
	ctx := t.Context()
	g := generateStore(t, 30, 11)
	var victims []string // tickets with at least 4 events
	for _, id := range g.stats.TicketIDs {
		if len(g.events[id]) >= 4 {
			victims = append(victims, id)
		}
	}
	if len(victims) < 4 {
		t.Fatalf("only %d tickets with 4 events or more", len(victims))
	}
	if out := ok(t, "verify", "--data", g.data); !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("verify before tampering: %s", out)
	}

	store := openData(t, g.data)
	tp := newTamperer(t, store)
	// 1. Content changed, hash left alone: the event itself is caught.
	edited, rehashed, removed, truncated := victims[0], victims[1], victims[2], victims[3]
	editedPos := tp.rewrite(domain.TicketStream(edited), 1, func(e *domain.Event) { e.Actor = "mallory" })
	// 2. Content changed and the event's own hash recomputed: the next event's
	// prev_hash no longer matches.
	tp.rewrite(domain.TicketStream(rehashed), 1, func(e *domain.Event) {
		e.OccurredAt = e.OccurredAt.Add(-time.Hour)
		e.Hash = e.ComputeHash()
	})
	// 3. An event removed from the middle of a stream: a gap in the sequence.
	recs, err := store.ReadStream(ctx, domain.TicketStream(removed))
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.stream.SecureDeleteMsg(ctx, recs[1].Position); err != nil {
		t.Fatal(err)
	}
	// 4. The last event removed: the chain that is left is valid, only shorter. The
	// hash chain cannot see this (docs/events.md says so).
	last, err := store.ReadStream(ctx, domain.TicketStream(truncated))
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.stream.DeleteMsg(ctx, last[len(last)-1].Position); err != nil {
		t.Fatal(err)
	}
	// The rehashed stream's next event, now at a new position.
	after, err := store.ReadStream(ctx, domain.TicketStream(rehashed))
	if err != nil {
		t.Fatal(err)
	}
	store.Close()

	r := ctl(t, "verify", "--data", g.data)
	if r.code != 1 {
		t.Fatalf("verify after tampering: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"BROKEN " + domain.TicketStream(edited) + ": event 1 (sequence 2, position " + itoa(int(editedPos)) + ", id " + g.events[edited][1].ID + "): hash does not match the event's content",
		"BROKEN " + domain.TicketStream(rehashed) + ": event 2 (sequence 3, position " + itoa(int(after[2].Position)) + ", id " + g.events[rehashed][2].ID + "): prev_hash does not match the previous event's hash",
		"BROKEN " + domain.TicketStream(removed) + ": event 1 (sequence 3, position " + itoa(int(recs[2].Position)) + ", id " + g.events[removed][2].ID + "): sequence 3 where 2 was expected",
		"FAILED: 3 of ",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("verify output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, domain.TicketStream(truncated)) {
		t.Errorf("a stream that only lost its last event is reported:\n%s", r.stdout)
	}
	rep := decode[verifyReport](t, ctl(t, "verify", "--data", g.data, "-o", "json").stdout)
	if rep.OK || len(rep.Broken) != 3 {
		t.Fatalf("verify -o json: %+v", rep)
	}
	for _, b := range rep.Broken {
		if b.Stream == domain.TicketStream(edited) && (b.Sequence != 2 || b.Position != editedPos || b.EventID != g.events[edited][1].ID) {
			t.Errorf("edited stream reported as %+v", b)
		}
	}

	// The history endpoint's fold shows the same break for one ticket.
	store = openData(t, g.data)
	defer store.Close()
	h, err := storeHistory(ctx, store, edited)
	if err != nil {
		t.Fatal(err)
	}
	if h.ChainIntact || h.ChainBreak == nil || h.ChainBreak.Sequence != 2 || h.Entries[1].Actor != "mallory" {
		t.Errorf("history of the edited ticket: intact %v, break %+v", h.ChainIntact, h.ChainBreak)
	}
}

// cancelOn is a stderr that cancels a context when a progress line matching re is
// drawn: an interruption (Ctrl-C) at a known point of a long operation.
type cancelOn struct {
	mu     sync.Mutex
	re     *regexp.Regexp
	cancel context.CancelFunc
	buf    bytes.Buffer
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.re.Match(p) {
		c.cancel()
	}
	return c.buf.Write(p)
}

// runCancelled runs the CLI with progress on, cancelling it when a progress line
// matches re.
func runCancelled(t *testing.T, re string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stderr := &cancelOn{re: regexp.MustCompile(re), cancel: cancel}
	var stdout bytes.Buffer
	code := run(ctx, args, &stdout, stderr)
	return result{code, stdout.String(), stderr.buf.String()}
}

// forceProgress makes the CLI draw progress on any stderr for the test.
func forceProgress(t *testing.T) {
	saved := showProgress
	showProgress = func(io.Writer) bool { return true }
	t.Cleanup(func() { showProgress = saved })
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(b, []byte("\n")) {
		t.Fatalf("%s does not end with a newline", path)
	}
	return bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

// snapshot rebuilds the ticket read model of a store and returns every ticket at
// instant at.
func snapshot(t *testing.T, store eventstore.Store, at time.Time) []projections.TicketView {
	t.Helper()
	model := projections.NewTickets()
	if _, err := projections.NewRunner(store, slog.New(slog.NewTextHandler(io.Discard, nil)), model).CatchUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	return model.Snapshot(at)
}

// TestExportImport exports a generated history, imports it into a fresh store, and
// checks that the copy is the same history: the same bytes in the same order, every
// chain intact, the same projections at the same instant. It interrupts an export and
// an import half-way and completes them with --resume.
func TestExportImport(t *testing.T) {
	ctx := t.Context()
	g := generateStore(t, 40, 3)
	dir := t.TempDir()
	file := filepath.Join(dir, "history.jsonl")
	saved := readBatch
	readBatch = 64 // several pages, so that an interruption leaves work to resume
	t.Cleanup(func() { readBatch = saved })

	src := openData(t, g.data)
	stored, err := src.ReadAll(ctx, 1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	at := g.stats.End.Add(48 * time.Hour)
	want := snapshot(t, src, at)
	src.Close()

	// Export to a file: the header, then exactly the stored bytes in global order.
	out := ok(t, "export", "--data", g.data, "--out", file)
	if !strings.Contains(out, "exported "+itoa(len(stored))+" events") {
		t.Errorf("export output: %s", out)
	}
	lines := readLines(t, file)
	var header exportHeader
	if err := json.Unmarshal(lines[0], &header); err != nil {
		t.Fatal(err)
	}
	if header.Format != "ticketcore-export" || header.Version != 1 || header.Events != uint64(len(stored)) ||
		header.Schema != "docs/export-schema.json" || header.LastPosition != stored[len(stored)-1].Position || header.ExportedAt.IsZero() {
		t.Fatalf("header: %s", lines[0])
	}
	if !regexp.MustCompile(`^\{"format":"ticketcore-export","version":1,"exported_at":"[^"]+","events":\d+,"schema":"docs/export-schema.json","last_position":\d+\}$`).Match(lines[0]) {
		t.Errorf("header line: %s", lines[0])
	}
	checkHeaderSchema(t, lines[0])
	if len(lines)-1 != len(stored) {
		t.Fatalf("%d event lines, %d stored events", len(lines)-1, len(stored))
	}
	for i, rec := range stored {
		if !bytes.Equal(lines[i+1], rec.Data) {
			t.Fatalf("line %d is not the stored event at position %d:\n%s\n%s", i+2, rec.Position, lines[i+1], rec.Data)
		}
	}
	// To standard output: the same lines; nothing else is printed there.
	std := ok(t, "export", "--data", g.data)
	if stdLines := strings.Split(strings.TrimSuffix(std, "\n"), "\n"); len(stdLines) != len(lines) || stdLines[len(stdLines)-1] != string(lines[len(lines)-1]) {
		t.Errorf("export to standard output: %d lines, want %d", len(stdLines), len(lines))
	}
	fails(t, 1, []string{"already exists", "--resume"}, "export", "--data", g.data, "--out", file)
	fails(t, 2, []string{"--resume needs --out FILE"}, "export", "--data", g.data, "--resume")

	// An export cut in the middle of a line is completed by --resume, to the byte.
	full, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.jsonl")
	third := bytes.Index(full[len(full)/3:], []byte("\n")) + len(full)/3
	if err := os.WriteFile(cut, full[:third+40], 0o644); err != nil { // 40 bytes into a line
		t.Fatal(err)
	}
	if out := ok(t, "export", "--data", g.data, "--out", cut, "--resume"); !strings.Contains(out, "completed the export") {
		t.Errorf("export --resume: %s", out)
	}
	if resumed, _ := os.ReadFile(cut); !bytes.Equal(resumed, full) {
		t.Fatalf("the resumed export differs from the full one (%d and %d bytes)", len(resumed), len(full))
	}
	// An export interrupted by a signal (context cancelled) says how to resume.
	forceProgress(t)
	interrupted := filepath.Join(dir, "interrupted.jsonl")
	r := runCancelled(t, `export: \d+ of`, "export", "--data", g.data, "--out", interrupted)
	if r.code != 1 || !strings.Contains(r.stderr, "export interrupted after") || !strings.Contains(r.stderr, "--resume") {
		t.Fatalf("interrupted export: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := len(readLines(t, interrupted)); n <= 1 || n >= len(lines) {
		t.Fatalf("the interrupted export holds %d lines of %d", n, len(lines))
	}
	r = ctl(t, "export", "--data", g.data, "--out", interrupted, "--resume")
	if r.code != 0 {
		t.Fatalf("export --resume: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if resumed, _ := os.ReadFile(interrupted); !bytes.Equal(resumed[bytes.IndexByte(resumed, '\n'):], full[bytes.IndexByte(full, '\n'):]) {
		t.Fatal("the export completed after an interruption differs from the full one")
	}

	// Import into a new data folder, interrupted after its first appends, then resumed.
	dst := t.TempDir()
	r = runCancelled(t, `\x1b\[Kimport: \d+ of`, "import", "--data", dst, file)
	if r.code != 1 || !strings.Contains(r.stderr, "import interrupted after") {
		t.Fatalf("interrupted import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	fails(t, 1, []string{"already holds events"}, "import", "--data", dst, file)
	imp := decode[importReport](t, ok(t, "import", "--data", dst, "--resume", file, "-o", "json"))
	if imp.Events != uint64(len(stored)) || imp.Skipped == 0 || imp.Imported+imp.Skipped != imp.Events {
		t.Fatalf("import --resume: %+v", imp)
	}
	if out := ok(t, "verify", "--data", dst); !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("verify of the imported store: %s", out)
	}
	// Resuming a complete import does nothing.
	again := decode[importReport](t, ok(t, "import", "--data", dst, "--resume", file, "-o", "json"))
	if again.Imported != 0 || again.Skipped != uint64(len(stored)) {
		t.Fatalf("import --resume of a complete import: %+v", again)
	}

	// The copy: same bytes, same order (same positions: the source has no gaps), same
	// per-stream sequences, same projections at the same instant.
	copied := openData(t, dst)
	got, err := copied.ReadAll(ctx, 1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(stored) {
		t.Fatalf("imported %d events, exported %d", len(got), len(stored))
	}
	for i := range stored {
		if got[i].Position != stored[i].Position || got[i].Stream != stored[i].Stream || got[i].ID != stored[i].ID ||
			got[i].Type != stored[i].Type || !bytes.Equal(got[i].Data, stored[i].Data) {
			t.Fatalf("event %d differs:\n%+v\n%+v", i, got[i], stored[i])
		}
	}
	if copy := snapshot(t, copied, at); !reflect.DeepEqual(copy, want) {
		t.Fatalf("the projections of the copy differ from the original's (%d and %d tickets)", len(copy), len(want))
	}
	copied.Close()
	id := g.stats.TicketIDs[5]
	if a, b := ok(t, "history", id, "--data", g.data), ok(t, "history", id, "--data", dst); a != b || !strings.Contains(a, `"chain_intact": true`) {
		t.Errorf("history of ticket %s differs between the original and the copy", id)
	}

	// A store that holds other events is refused, even with --resume.
	other := t.TempDir()
	ostore, err := jetstream.Open(ctx, jetstream.Config{DataDir: filepath.Join(other, "jetstream")})
	if err != nil {
		t.Fatal(err)
	}
	oh, err := commands.NewHandler(ctx, ostore, commands.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := oh.SeedDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	ostore.Close()
	fails(t, 1, []string{"differs from the file"}, "import", "--data", other, "--resume", file)

	// A file whose chain is broken is refused before anything is written.
	var forged bytes.Buffer
	for i, l := range lines {
		if i == 10 {
			l = bytes.Replace(l, []byte(`"actor":"`), []byte(`"actor":"x`), 1)
		}
		forged.Write(l)
		forged.WriteByte('\n')
	}
	forgedFile := filepath.Join(dir, "forged.jsonl")
	if err := os.WriteFile(forgedFile, forged.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	fails(t, 1, []string{"line 11", "hash does not match"}, "import", "--data", empty, forgedFile)
	if es := openData(t, empty); true {
		if pos, _ := es.LastPosition(ctx); pos != 0 {
			t.Errorf("a refused import stored %d events", pos)
		}
		es.Close()
	}
	// A truncated file is refused.
	truncatedFile := filepath.Join(dir, "truncated.jsonl")
	if err := os.WriteFile(truncatedFile, full[:third+1], 0o644); err != nil {
		t.Fatal(err)
	}
	fails(t, 1, []string{"the file is incomplete"}, "import", "--data", t.TempDir(), truncatedFile)
	fails(t, 1, []string{"not a ticketcore export"}, "import", "--data", t.TempDir(), filepath.Join("..", "..", "go.mod"))
}

// TestProgress: long operations draw a progress line with a rate on a terminal and
// clear it when done; otherwise they print nothing on stderr.
func TestProgress(t *testing.T) {
	g := generateStore(t, 10, 5)
	for _, args := range [][]string{{"verify", "--data", g.data}, {"rebuild", "--data", g.data}, {"export", "--data", g.data, "--out", filepath.Join(t.TempDir(), "x.jsonl")}} {
		if r := ctl(t, args...); r.code != 0 || r.stderr != "" {
			t.Errorf("%s without a terminal: exit %d, stderr %q", args[0], r.code, r.stderr)
		}
	}
	forceProgress(t)
	for _, args := range [][]string{{"verify", "--data", g.data}, {"rebuild", "--data", g.data}} {
		r := ctl(t, args...)
		if r.code != 0 || !strings.Contains(r.stderr, "\r\033[K"+args[0]+": ") || !strings.Contains(r.stderr, "events/s") ||
			!strings.HasSuffix(r.stderr, "\r\033[K") {
			t.Errorf("%s on a terminal: exit %d, stderr %q", args[0], r.code, r.stderr)
		}
	}

	// The reporter itself: rate and time left, counted from this run's start.
	var buf bytes.Buffer
	e := &env{stderr: &buf}
	p := e.progress("test", 1000)
	start := p.start
	now := start
	p.now = func() time.Time { return now }
	p.resumeAt(500)
	now = start.Add(2 * time.Second)
	p.add(100)
	if line := buf.String(); !strings.Contains(line, "test: 600 of 1000 events (60.0%)") || !strings.Contains(line, "50 events/s") || !strings.Contains(line, "about 8s left") {
		t.Errorf("progress line: %q", line)
	}
	p.finish()
	if !strings.HasSuffix(buf.String(), "\r\033[K") {
		t.Errorf("finish does not clear the line: %q", buf.String())
	}

	// Waiting without a count (what-if waits for ticketd): the time elapsed.
	buf.Reset()
	p = e.progress("what-if", 0)
	p.ticking()
	time.Sleep(3 * progressEvery)
	p.finish()
	if out := buf.String(); !strings.Contains(out, "what-if: 0s elapsed") || !strings.HasSuffix(out, "\r\033[K") {
		t.Errorf("ticking progress: %q", out)
	}
}

// TestHistoryCommand: the timeline of a ticket over the API.
func TestHistoryCommand(t *testing.T) {
	url := startServer(t)
	s := func(args ...string) []string { return append([]string{"--server", url}, args...) }
	v := decode[projections.TicketView](t, ok(t, s("create", "--subject", "Printer on fire", "--raised-by", "jane@acme.example.com", "--actor", "jane@acme.example.com")...))
	ok(t, s("reply", v.ID, "--body", "On our way.", "--actor", "bob")...)
	ok(t, s("hold", v.ID, "--reason", "parts", "--actor", "bob")...)
	ok(t, s("close", v.ID, "--actor", "carol")...)

	h := decode[projections.History](t, ok(t, s("history", v.Number)...))
	if h.TicketID != v.ID || len(h.Entries) != 4 || !h.ChainIntact {
		t.Fatalf("history: %+v", h)
	}
	table := ok(t, s("history", v.ID, "-o", "table")...)
	for _, want := range []string{v.Number + " (" + v.ID + "): 4 event(s), hash chain intact",
		"#2  ", "bob  ticket.reply_sent v1", "Agent bob replied to jane@acme.example.com", "status Open -> Replied",
		"- First response recorded", "Put on hold: parts", "- Hold started: the SLA clock is paused",
		"carol  ticket.closed v2", "Closed by carol", "status On Hold -> Closed", "hash " + h.Entries[3].Hash} {
		if !strings.Contains(table, want) {
			t.Errorf("history -o table lacks %q:\n%s", want, table)
		}
	}
	fails(t, 1, []string{"error: Not found"}, s("history", "0b8a3c52-5a64-4bde-8f55-111111111111")...)
	fails(t, 2, []string{"give the ticket's ID"}, "history", v.Number, "--data", t.TempDir())
}

// checkHeaderSchema holds docs/export-schema.json to the header ticketctl writes: the
// same properties, all required.
func checkHeaderSchema(t *testing.T, line []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", exportSchema))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Defs struct {
			Header struct {
				Properties map[string]json.RawMessage `json:"properties"`
				Required   []string                   `json:"required"`
			} `json:"header"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	var header map[string]any
	if err := json.Unmarshal(line, &header); err != nil {
		t.Fatal(err)
	}
	h := schema.Defs.Header
	if len(h.Properties) != len(header) || len(h.Required) != len(header) {
		t.Errorf("%s lists %d properties (%d required), the header has %d: %s", exportSchema, len(h.Properties), len(h.Required), len(header), line)
	}
	for _, name := range h.Required {
		if _, ok := header[name]; !ok {
			t.Errorf("the header lacks %q, which %s requires", name, exportSchema)
		}
	}
}
