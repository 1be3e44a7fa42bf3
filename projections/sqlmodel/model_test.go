package sqlmodel_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
	"github.com/ticketcore/ticketcore/projections"
	"github.com/ticketcore/ticketcore/projections/projtest"
	"github.com/ticketcore/ticketcore/projections/sqlmodel"
)

// TestMatchesInMemoryModel projects a generated history into the SQL model alongside
// the in-memory model and checks, for every ticket, every field and metric (the
// agreement status computed in SQL at an instant after the history), the stored
// agreement status as of the last event, the thread and comments, and the other tables.
func TestMatchesInMemoryModel(t *testing.T) {
	hist := loadHistory(t)
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		m, mem := sharedModel(t, b, hist)
		// At the end of the history (before the scheduler's events) and after it.
		for _, at := range []time.Time{hist.stats.End.Add(36 * time.Hour), hist.at} {
			compareModels(t, m, mem, at)
		}

		// The stored agreement status is the view's at the ticket's last event.
		err := m.Read(ctx, func(db *sql.DB) error {
			rows, err := db.QueryContext(ctx, `SELECT ticket_id, updated_at, agreement_status FROM tickets`)
			if err != nil {
				return err
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				var id string
				var updated sqlTime
				var status sql.NullString
				if err := rows.Scan(&id, &updated, &status); err != nil {
					return err
				}
				v, ok := mem.Get(id, updated.Time)
				want := ""
				if ok && v.AgreementStatus != nil {
					want = *v.AgreementStatus
				}
				if status.String != want {
					t.Errorf("ticket %s: stored agreement status %q, the view at %s says %q", id, status.String, updated.Time, want)
				}
				n++
			}
			if n != mem.Count() {
				t.Errorf("%d rows, %d tickets", n, mem.Count())
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatal(err)
		}

		// Thread and comments, as the detail view folds them from each stream.
		for _, id := range hist.stats.TicketIDs {
			events, err := hist.h.TicketEvents(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := projections.FoldTicket(events, time.Time{}, mem.LookupSLA)
			thread, comments, err := m.Thread(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			want := st.View(hist.at, true)
			for i := range want.Thread {
				want.Thread[i].HTMLBody, want.Thread[i].Attachments = "", nil
			}
			if !sameJSON(want.Thread, thread) || !sameJSON(want.Comments, comments) {
				t.Fatalf("ticket %s: thread or comments differ\nview: %s\n      %s\nSQL:  %s\n      %s", id,
					jsonOf(want.Thread), jsonOf(want.Comments), jsonOf(thread), jsonOf(comments))
			}
		}

		checkTables(t, m, mem, hist)
	})
}

// checkTables checks status_history, sla_cycles, sla_breaches and ticket_splits.
func checkTables(t *testing.T, m *sqlmodel.Model, mem *projections.Tickets, hist *history) {
	ctx := t.Context()
	resets, splits := 0, 0
	for _, e := range hist.events {
		switch e.Payload.(type) {
		case domain.SLAReset:
			resets++
		case domain.TicketSplit:
			splits++
		}
	}
	counts := map[string]int{}
	err := m.Read(ctx, func(db *sql.DB) error {
		for table, query := range map[string]string{
			"breaches":     `SELECT count(*) FROM sla_breaches`,
			"cycles":       `SELECT count(*) FROM sla_cycles`,
			"open cycles":  `SELECT count(*) FROM sla_cycles WHERE ended_at IS NULL`,
			"splits":       `SELECT count(*) FROM ticket_splits`,
			"open periods": `SELECT count(*) FROM status_history WHERE to_at IS NULL`,
			// Each ticket's intervals follow each other without gap or overlap.
			"gaps": `SELECT count(*) FROM status_history h JOIN status_history n
				ON n.ticket_id = h.ticket_id AND n.seq = h.seq + 1 WHERE h.to_at IS NULL OR h.to_at <> n.from_at`,
			// The open interval is the ticket's status.
			"wrong status": `SELECT count(*) FROM status_history h JOIN tickets t ON t.ticket_id = h.ticket_id
				WHERE h.to_at IS NULL AND (h.status <> t.status OR h.status_class <> t.status_class)`,
			"negative durations":  `SELECT count(*) FROM status_history WHERE seconds_calendar < 0 OR seconds_business < 0 OR seconds_business > seconds_calendar`,
			"tickets with a hold": `SELECT count(*) FROM tickets WHERE total_hold_time_calendar > 0`,
		} {
			var n int
			if err := db.QueryRowContext(ctx, query).Scan(&n); err != nil {
				return err
			}
			counts[table] = n
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n := mem.Count()
	want := map[string]int{"breaches": hist.missed, "cycles": n + resets, "open cycles": n, "splits": splits, "open periods": n,
		"gaps": 0, "wrong status": 0, "negative durations": 0}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("%s: %d, want %d", k, counts[k], v)
		}
	}
	if hist.missed == 0 || resets == 0 || splits == 0 || counts["tickets with a hold"] == 0 {
		t.Errorf("the history lacks breaches (%d), resets (%d), splits (%d) or holds (%d)", hist.missed, resets, splits, counts["tickets with a hold"])
	}
	t.Logf("tables: %v", counts)
}

// TestCrashResume applies part of the history in batches, makes a commit fail half-way
// through a batch, "kills" the model without flushing what is pending, then reopens
// it: it resumes from its checkpoint, and the result equals the in-memory model, with
// no event applied twice (a second insert of a message would fail on its key).
func TestCrashResume(t *testing.T) {
	hist := loadHistory(t)
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		cfg := b.config(t)
		cfg.BatchSize = 400
		m, err := sqlmodel.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		cut := len(hist.events) * 2 / 5
		for i := range cut {
			if err := m.Apply(hist.events[i], hist.pos[i]); err != nil {
				t.Fatal(err)
			}
		}
		committed := m.Committed()
		if committed == 0 || committed >= hist.pos[cut-1] || m.Pending() == 0 {
			t.Fatalf("committed %d of %d applied, %d pending: want some batches committed and some pending", committed, hist.pos[cut-1], m.Pending())
		}
		// A crash in the middle of a commit: the transaction has written rows when it fails.
		crash := errors.New("simulated crash")
		m.SetFailCommit(func() error { return crash })
		for i := cut; i < len(hist.events) && m.Err() == nil; i++ {
			if err := m.Apply(hist.events[i], hist.pos[i]); err != nil {
				t.Fatal(err) // a failed commit is retried later, not returned
			}
		}
		if !errors.Is(m.Err(), crash) || m.Pending() == 0 {
			t.Fatalf("last commit error: %v, want the simulated crash with the batch pending", m.Err())
		}
		// Flushes in the back-off do not try again; a flush once the database is back
		// would commit the pending batch.
		if err := m.Flush(); err != nil || !errors.Is(m.Err(), crash) {
			t.Fatalf("flush during the back-off: %v, last error %v", err, m.Err())
		}
		if m.Committed() != committed {
			t.Fatalf("the failed commit moved the checkpoint to %d", m.Committed())
		}
		m.Kill()

		m2, err := sqlmodel.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer m2.Close()
		if m2.Committed() != committed {
			t.Fatalf("reopened at checkpoint %d, want %d", m2.Committed(), committed)
		}
		mem := projections.NewTickets()
		if _, err := projections.NewRunner(hist.store, quiet, mem, m2).CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		if m2.Committed() != hist.last {
			t.Fatalf("resumed to %d, want %d", m2.Committed(), hist.last)
		}
		compareModels(t, m2, mem, hist.at)
		checkTables(t, m2, mem, hist)
	})
}

// TestLive follows a history live, event by event, as ticketd does: after WaitFor the
// SQL model has committed the position.
func TestLive(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		store := memstore.New()
		clock := projtest.NewClock(projtest.Start)
		h, err := commands.NewHandler(ctx, store, commands.Options{Clock: clock.Now, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		m, err := sqlmodel.Open(ctx, b.config(t))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		mem := projections.NewTickets()
		runner := projections.NewRunner(store, quiet, mem, m)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- runner.Run(runCtx) }()
		defer func() {
			stop()
			<-done
		}()
		stats, err := projtest.Generate(ctx, h, clock, rand.New(rand.NewPCG(7, 11)), 60)
		if err != nil {
			t.Fatal(err)
		}
		last, _ := store.LastPosition(ctx)
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := runner.WaitFor(wctx, last); err != nil {
			t.Fatal(err)
		}
		if m.Committed() != last {
			t.Fatalf("WaitFor(%d) returned with the SQL model at %d", last, m.Committed())
		}
		compareModels(t, m, mem, stats.End.Add(48*time.Hour))
	})
}

// TestRebuildSwap rebuilds the tables while a reader keeps reading them: every read
// sees a complete model (all tickets, all messages, the final checkpoint), first the
// old tables, then the new ones, never a half-built one.
func TestRebuildSwap(t *testing.T) {
	hist := loadHistory(t)
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		// A model of its own: the test ends by writing past the history into the
		// rebuilt tables, which a shared model would carry into the next test.
		m, mem := project(t, b.config(t), hist)
		cfg := m.Config()
		var msgs int
		const state = `SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM messages),
			(SELECT position FROM projection_checkpoints WHERE name = 'tickets-sql'),
			(SELECT value FROM readmodel_info WHERE key = 'generation')`
		// An analyst's own connection on PostgreSQL; the model's guarded pool on SQLite,
		// whose file is replaced.
		read := func(dest ...any) error {
			return m.Read(ctx, func(db *sql.DB) error { return db.QueryRowContext(ctx, state).Scan(dest...) })
		}
		if b.name == "postgres" {
			reader := pgReader(t, cfg)
			read = func(dest ...any) error { return reader.QueryRowContext(ctx, state).Scan(dest...) }
		}
		var first string
		var n, pos int
		if err := read(&n, &msgs, &pos, &first); err != nil {
			t.Fatal(err)
		}

		var (
			stop    atomic.Bool
			wg      sync.WaitGroup
			mu      sync.Mutex
			gens    = map[string]int{}
			reads   int
			readErr error
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				var n, k, pos int
				var gen string
				err := read(&n, &k, &pos, &gen)
				mu.Lock()
				reads++
				switch {
				case err != nil:
					readErr = err
				case n != mem.Count() || k != msgs || uint64(pos) != hist.last:
					readErr = errors.New("a read saw an incomplete model")
					t.Errorf("read %d: %d tickets, %d messages, checkpoint %d (generation %s); want %d, %d, %d", reads, n, k, pos, gen, mem.Count(), msgs, hist.last)
				default:
					gens[gen]++
				}
				mu.Unlock()
				if readErr != nil {
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		pos2, err := m.Rebuild(ctx, hist.store)
		if err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatal(err)
		}
		// Go on reading until the new tables have been seen.
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			k := len(gens)
			mu.Unlock()
			if k >= 2 || readErr != nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		stop.Store(true)
		wg.Wait()
		if readErr != nil {
			t.Fatal(readErr)
		}
		if pos2 != hist.last {
			t.Fatalf("rebuilt to %d, want %d", pos2, hist.last)
		}
		if len(gens) != 2 || gens[first] == 0 {
			t.Fatalf("the reader saw generations %v (first %s): want the old one, then the new one", gens, first)
		}
		t.Logf("%d reads during the rebuild: %v", reads, gens)
		compareModels(t, m, mem, hist.at)

		// The live model goes on writing into the new tables.
		if err := m.Apply(domain.Event{Stream: "numbers-2026", Payload: nil}, hist.last+1); err != nil {
			t.Fatal(err)
		}
		if err := m.Flush(); err != nil {
			t.Fatal(err)
		}
		if m.Committed() != hist.last+1 {
			t.Fatalf("after the swap the model committed %d, want %d", m.Committed(), hist.last+1)
		}
	})
}

// sqlTime scans an instant stored by either database.
type sqlTime struct{ Time time.Time }

func (s *sqlTime) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		s.Time = time.Time{}
		return nil
	case time.Time:
		s.Time = x.UTC()
		return nil
	case string:
		t, err := time.Parse("2006-01-02 15:04:05.000000000", x)
		s.Time = t
		return err
	case []byte:
		return s.Scan(string(x))
	}
	return errors.New("not an instant")
}

func sameJSON(a, b any) bool { return jsonOf(a) == jsonOf(b) }

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	s := string(b)
	if s == "null" {
		return "[]"
	}
	return s
}

// TestCommitRetry: while the database refuses commits the batch stays pending (the
// runner goes on), and it is committed by itself once the database is back.
func TestCommitRetry(t *testing.T) {
	hist := loadHistory(t)
	eachBackend(t, func(t *testing.T, b backend) {
		cfg := b.config(t)
		cfg.BatchSize = 100
		m, err := sqlmodel.Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		down := errors.New("database unreachable")
		m.SetFailCommit(func() error { return down })
		n := 600
		for i := range n {
			if err := m.Apply(hist.events[i], hist.pos[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.Flush(); err != nil {
			t.Fatal(err)
		}
		if m.Committed() != 0 || !errors.Is(m.Err(), down) || m.Pending() != n {
			t.Fatalf("committed %d, pending %d, last error %v", m.Committed(), m.Pending(), m.Err())
		}
		m.SetFailCommit(nil)
		deadline := time.Now().Add(10 * time.Second)
		for m.Committed() != hist.pos[n-1] && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if m.Committed() != hist.pos[n-1] || m.Err() != nil {
			t.Fatalf("after the database came back: committed %d, want %d; last error %v", m.Committed(), hist.pos[n-1], m.Err())
		}
	})
}

// TestConstraintFailureRollsBack: a commit that breaks a constraint half-way (a row the
// model did not write is in the way) leaves nothing of its batch in the tables and the
// batch pending; once the row is gone, the batch commits whole.
func TestConstraintFailureRollsBack(t *testing.T) {
	hist := loadHistory(t)
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		m, err := sqlmodel.Open(ctx, b.config(t))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		const n = 200
		var ticketID, messageID string
		for i := range n {
			if created, ok := hist.events[i].Payload.(domain.TicketCreated); ok && ticketID == "" {
				ticketID, messageID = hist.events[i].Stream[len("ticket-"):], created.OpeningMessageID
			}
			if err := m.Apply(hist.events[i], hist.pos[i]); err != nil {
				t.Fatal(err)
			}
		}
		if ticketID == "" || m.Committed() != 0 {
			t.Fatalf("no ticket created in the first %d events, or a commit already (%d)", n, m.Committed())
		}
		exec := func(query string, args ...any) {
			t.Helper()
			if err := m.Read(ctx, func(db *sql.DB) error {
				_, err := db.ExecContext(ctx, m.Rebind(query), args...)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		count := func(table string) (n int) {
			t.Helper()
			if err := m.Read(ctx, func(db *sql.DB) error {
				return db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n)
			}); err != nil {
				t.Fatal(err)
			}
			return n
		}
		exec(`INSERT INTO messages (ticket_id, message_id, seq, direction, sent_at, body, attachments, position)
			VALUES (?, ?, 0, 'in', ?, 'in the way', 0, 0)`, ticketID, messageID, m.Time(time.Now()))
		if err := m.Flush(); err != nil {
			t.Fatal(err) // a failed commit is retried later, not returned
		}
		if m.Err() == nil || m.Committed() != 0 || m.Pending() != n {
			t.Fatalf("commit over a conflicting row: error %v, checkpoint %d, %d pending", m.Err(), m.Committed(), m.Pending())
		}
		if got := count("tickets") + count("comments") + count("status_history"); got != 0 || count("messages") != 1 {
			t.Fatalf("a failed commit left rows: %d besides the messages, %d messages", got, count("messages"))
		}
		exec(`DELETE FROM messages WHERE ticket_id = ? AND message_id = ?`, ticketID, messageID)
		deadline := time.Now().Add(10 * time.Second) // the retry comes after a back-off
		for m.Err() != nil || m.Pending() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the batch was not committed again: %v, %d pending", m.Err(), m.Pending())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if m.Committed() != hist.pos[n-1] || count("tickets") == 0 {
			t.Fatalf("checkpoint %d, %d tickets; want %d and some", m.Committed(), count("tickets"), hist.pos[n-1])
		}
	})
}
