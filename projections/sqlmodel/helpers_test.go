package sqlmodel_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
	"github.com/ticketcore/ticketcore/projections"
	"github.com/ticketcore/ticketcore/projections/projtest"
	"github.com/ticketcore/ticketcore/projections/sqlmodel"
)

// pgEnv names the PostgreSQL the tests use; CI (.ci/run) sets it.
const pgEnv = "TICKETCORE_PG_URL"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// historyTickets is the size of the shared generated history: 1 000 tickets by default
// (about 1 200 with the split-off ones, 12 000 events), 10 000 with TICKETCORE_LONG=1.
func historyTickets() int {
	if os.Getenv("TICKETCORE_LONG") == "1" {
		return 10000
	}
	if testing.Short() {
		return 300
	}
	return 1000
}

// history is a generated support-centre history in a memory store, with the missed
// deadlines the scheduler records at its end.
type history struct {
	store  *memstore.Store
	h      *commands.Handler
	stats  projtest.Stats
	last   uint64
	at     time.Time // when views are compared: late enough for deadlines to pass
	events []domain.Event
	pos    []uint64
	missed int // ticket.sla_deadline_missed events
}

var sharedHistory = sync.OnceValues(func() (*history, error) {
	return generate(historyTickets(), 20260105)
})

func generate(tickets int, seed uint64) (*history, error) {
	ctx := context.Background()
	store := memstore.New()
	clock := projtest.NewClock(projtest.Start)
	h, err := commands.NewHandler(ctx, store, commands.Options{Clock: clock.Now, Logger: quiet})
	if err != nil {
		return nil, err
	}
	stats, err := projtest.Generate(ctx, h, clock, mrand.New(mrand.NewPCG(seed, 7)), tickets)
	if err != nil {
		return nil, err
	}
	// The scheduler, a day and a half after the last command: missed deadlines and
	// automatic closes are recorded as events.
	mem := projections.NewTickets()
	if _, err := projections.NewRunner(store, quiet, mem).CatchUp(ctx); err != nil {
		return nil, err
	}
	clock.Set(stats.End.Add(36 * time.Hour))
	h.RunDue(ctx, mem, 0)
	hist := &history{store: store, h: h, stats: stats, at: stats.End.Add(72 * time.Hour)}
	if hist.last, err = store.LastPosition(ctx); err != nil {
		return nil, err
	}
	recs, err := store.ReadAll(ctx, 1, int(hist.last))
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		e, err := domain.DecodeEvent(rec.Data)
		if err != nil {
			return nil, err
		}
		if _, ok := e.Payload.(domain.SLADeadlineMissed); ok {
			hist.missed++
		}
		hist.events = append(hist.events, e)
		hist.pos = append(hist.pos, rec.Position)
	}
	return hist, nil
}

func loadHistory(t testing.TB) *history {
	t.Helper()
	began := time.Now()
	hist, err := sharedHistory()
	if err != nil {
		t.Fatalf("generate the history: %v", err)
	}
	if d := time.Since(began); d > 100*time.Millisecond {
		t.Logf("generated %d tickets (%d splits), %d events, %d missed deadlines in %v", hist.stats.Tickets, hist.stats.Splits,
			hist.last, hist.missed, d.Round(time.Millisecond))
	}
	return hist
}

// backend is one database the tests run on.
type backend struct {
	name string
	// config returns a configuration for fresh, empty tables, removed at the end of t.
	config func(t testing.TB) sqlmodel.Config
}

// eachBackend runs fn on SQLite, and on PostgreSQL when TICKETCORE_PG_URL is set.
func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, sqliteBackend) })
	t.Run("postgres", func(t *testing.T) {
		if os.Getenv(pgEnv) == "" {
			t.Skip(pgEnv + " is not set: skipping the PostgreSQL run (CI sets it; e.g. postgres://ticketcore:ticketcore@127.0.0.1:5432/ticketcore?sslmode=disable)")
		}
		fn(t, postgresBackend)
	})
}

var sqliteBackend = backend{name: "sqlite", config: func(t testing.TB) sqlmodel.Config {
	return sqlmodel.Config{Driver: "sqlite", URL: filepath.Join(t.TempDir(), "readmodel.sqlite"), Log: quiet}
}}

var postgresBackend = backend{name: "postgres", config: func(t testing.TB) sqlmodel.Config {
	var b [4]byte
	_, _ = rand.Read(b[:])
	schema := fmt.Sprintf("sqlmodel_test_%s", hex.EncodeToString(b[:]))
	url := os.Getenv(pgEnv)
	t.Cleanup(func() { dropSchemas(t, url, schema) })
	return sqlmodel.Config{Driver: "postgres", URL: url, Schema: schema, Log: quiet}
}}

// dropSchemas removes a test's schema and those its rebuilds left beside it.
func dropSchemas(t testing.TB, url, prefix string) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Errorf("drop test schemas: %v", err)
		return
	}
	defer db.Close()
	rows, err := db.Query(`SELECT nspname FROM pg_namespace WHERE nspname = $1 OR nspname LIKE $2`, prefix, prefix+`\_%`)
	if err != nil {
		t.Errorf("drop test schemas: %v", err)
		return
	}
	var names []string
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		if _, err := db.Exec("DROP SCHEMA " + n + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", n, err)
		}
	}
}

// pgReader is an independent PostgreSQL connection pool on a schema, as an analyst's
// tool would have.
func pgReader(t testing.TB, cfg sqlmodel.Config) *sql.DB {
	pc, err := pgx.ParseConfig(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	pc.RuntimeParams["search_path"] = cfg.Schema
	db := stdlib.OpenDB(*pc)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestMain removes what the shared models left.
func TestMain(m *testing.M) {
	code := m.Run()
	sharedMu.Lock()
	for _, s := range shared {
		s.m.Close()
		for _, fn := range s.cleanup {
			fn()
		}
	}
	sharedMu.Unlock()
	os.Exit(code)
}

// sharedModel is a model of the shared history on each backend, projected once for the
// tests that only read it.
type sharedModelT struct {
	m       *sqlmodel.Model
	mem     *projections.Tickets
	cleanup []func()
}

var (
	sharedMu sync.Mutex
	shared   = map[string]*sharedModelT{}
)

// cleanupTB collects the cleanups of a shared model, to run them at the end of the
// test binary rather than of the first test that asked for it.
type cleanupTB struct {
	testing.TB
	fns *[]func()
}

func (c cleanupTB) Cleanup(fn func()) { *c.fns = append(*c.fns, fn) }
func (c cleanupTB) TempDir() string {
	dir, err := os.MkdirTemp("", "sqlmodel-test-")
	if err != nil {
		c.Fatal(err)
	}
	c.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func sharedModel(t testing.TB, b backend, hist *history) (*sqlmodel.Model, *projections.Tickets) {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if s, ok := shared[b.name]; ok {
		return s.m, s.mem
	}
	s := &sharedModelT{}
	tb := cleanupTB{TB: t, fns: &s.cleanup}
	cfg := b.config(tb)
	m, mem := projectWith(tb, cfg, hist, false)
	s.m, s.mem = m, mem
	shared[b.name] = s
	return m, mem
}

// project opens a model on cfg and feeds it the whole history along with a fresh
// in-memory model, as ticketd does; it returns both.
func project(t testing.TB, cfg sqlmodel.Config, hist *history) (*sqlmodel.Model, *projections.Tickets) {
	t.Helper()
	return projectWith(t, cfg, hist, true)
}

func projectWith(t testing.TB, cfg sqlmodel.Config, hist *history, closeAtEnd bool) (*sqlmodel.Model, *projections.Tickets) {
	t.Helper()
	ctx := context.Background()
	m, err := sqlmodel.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if closeAtEnd {
		t.Cleanup(func() { m.Close() })
	}
	mem := projections.NewTickets()
	began := time.Now()
	pos, err := projections.NewRunner(hist.store, quiet, mem, m).CatchUp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pos != hist.last || m.Committed() != hist.last {
		t.Fatalf("caught up to %d, committed %d; the store ends at %d", pos, m.Committed(), hist.last)
	}
	t.Logf("%s: projected %d events in %v", m.Driver(), pos, time.Since(began).Round(time.Millisecond))
	return m, mem
}

// compareModels checks that the SQL model shows every ticket exactly as the in-memory
// model does at instant at.
func compareModels(t testing.TB, m *sqlmodel.Model, mem *projections.Tickets, at time.Time) {
	t.Helper()
	want := mem.Snapshot(at)
	got, err := m.Views(context.Background(), at)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("SQL holds %d tickets, the in-memory model %d", len(got), len(want))
	}
	bad := 0
	for i := range want {
		w, _ := json.Marshal(want[i])
		g, _ := json.Marshal(got[i])
		if string(w) != string(g) {
			bad++
			if bad <= 3 {
				t.Errorf("ticket %s differs:\nin memory: %s\nSQL:       %s", want[i].ID, w, g)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d tickets differ", bad, len(want))
	}
}
