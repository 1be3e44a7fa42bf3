package sqlmodel

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/projections"
)

// Rebuild replays the whole store into fresh tables beside the live ones, brings them
// up to the position the live model has reached, and swaps them in at once, so that
// readers see either the old complete tables or the new complete ones, never a
// half-built one:
//
//   - PostgreSQL: the tables are built in schema <schema>_rebuild_<n>; one transaction
//     renames the live schema away and the new one into its place; the old one is
//     dropped after.
//   - SQLite: the tables are built in a new database file beside the live one, which is
//     then renamed over it (an atomic rename); the model's connections are closed
//     before and opened again after. Other processes must not hold the file open
//     across a rebuild (the swap refuses when they do: their write-ahead log is there).
//
// The live model keeps following events while the new tables are built; it pauses only
// for the last catch-up and the swap. It returns the position the new tables hold.
func (m *Model) Rebuild(ctx context.Context, store eventstore.Store) (uint64, error) {
	next := m.tgt
	n := strconv.FormatInt(time.Now().UnixNano(), 36)
	if next.d == sqliteDialect {
		next.path = m.tgt.path + ".rebuild-" + n
	} else {
		next.schema = m.tgt.schema + "_rebuild_" + n
	}
	b, err := openTarget(ctx, m.cfg, next)
	if err != nil {
		return 0, err
	}
	b.strict = true
	swapped := false
	defer func() {
		if !swapped {
			b.discard(context.Background())
		}
	}()
	began := time.Now()
	if _, err := projections.NewRunner(store, m.log, b).CatchUp(ctx); err != nil {
		return 0, fmt.Errorf("sqlmodel: rebuild: %w", err)
	}

	old, err := m.catchUpAndSwap(ctx, store, b)
	if err != nil {
		return 0, err
	}
	swapped = true
	pos := m.Committed()
	if old != "" {
		// Readers still on the old tables finish first: DROP waits for their locks.
		err := m.Read(ctx, func(db *sql.DB) error {
			_, err := db.ExecContext(ctx, "DROP SCHEMA "+old+" CASCADE")
			return err
		})
		if err != nil {
			m.log.Warn("sqlmodel: drop the replaced schema", "schema", old, "err", err)
		}
	}
	m.log.Info("SQL read model rebuilt and swapped in", "at", m.describe(), "position", pos, "took", time.Since(began).Round(time.Millisecond))
	return pos, nil
}

// catchUpAndSwap brings b to the live model's position, swaps it in and makes the live
// model go on from b's fold. It returns the PostgreSQL schema left to drop.
func (m *Model) catchUpAndSwap(ctx context.Context, store eventstore.Store, b *Model) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", errors.New("sqlmodel: the model is closed")
	}
	// Events the live model applied while the new tables were built.
catchUp:
	for b.seen < m.seen {
		recs, err := store.ReadAll(ctx, b.seen+1, 1000)
		if err != nil {
			return "", fmt.Errorf("sqlmodel: rebuild: %w", err)
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			if rec.Position > m.seen {
				break catchUp
			}
			e, err := domain.DecodeEventNoCopy(rec.Data)
			if err != nil {
				return "", fmt.Errorf("sqlmodel: rebuild at position %d: %w", rec.Position, err)
			}
			if err := b.Apply(e, rec.Position); err != nil {
				return "", err
			}
		}
	}
	if err := b.Flush(); err != nil {
		return "", err
	}
	old, err := m.swap(ctx, b)
	if err != nil {
		return "", err
	}
	// The live model goes on from the new tables' fold; what it had pending is in them.
	b.mu.Lock()
	m.seen, m.committed, m.slas, m.tickets = b.seen, b.committed, b.slas, b.tickets
	b.closed = true
	b.mu.Unlock()
	m.batch.reset()
	return old, nil
}

// swap puts b's tables in place of m's. m.mu is held.
func (m *Model) swap(ctx context.Context, b *Model) (string, error) {
	m.dbMu.Lock()
	defer m.dbMu.Unlock()
	b.dbMu.Lock()
	defer b.dbMu.Unlock()
	if m.tgt.d == sqliteDialect {
		return "", m.swapSQLite(b)
	}
	return m.swapPostgres(ctx, b)
}

func (m *Model) swapSQLite(b *Model) error {
	// Closing the last connection checkpoints a database's write-ahead log into it and
	// removes the log, so each file then stands alone.
	if err := b.db.Close(); err != nil {
		return err
	}
	if err := m.db.Close(); err != nil {
		return err
	}
	reopen := func() error {
		db, err := m.tgt.open()
		if err != nil {
			return err
		}
		m.db = db
		return nil
	}
	for _, suffix := range []string{"-wal", "-journal"} {
		for _, p := range []string{m.tgt.path, b.tgt.path} {
			if _, err := os.Stat(p + suffix); err == nil {
				return errors.Join(fmt.Errorf("sqlmodel: cannot swap: %s%s exists: another process has the database open", p, suffix), reopen())
			}
		}
	}
	if err := os.Rename(b.tgt.path, m.tgt.path); err != nil {
		return errors.Join(fmt.Errorf("sqlmodel: swap: %w", err), reopen())
	}
	_ = os.Remove(m.tgt.path + "-shm")
	if dir, err := os.Open(filepath.Dir(m.tgt.path)); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	return reopen()
}

func (m *Model) swapPostgres(ctx context.Context, b *Model) (string, error) {
	old := m.tgt.schema + "_old_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	for _, stmt := range []string{
		"ALTER SCHEMA " + m.tgt.schema + " RENAME TO " + old,
		"ALTER SCHEMA " + b.tgt.schema + " RENAME TO " + m.tgt.schema,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return "", fmt.Errorf("sqlmodel: swap: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("sqlmodel: swap: %w", err)
	}
	// New connections, so that no statement prepared on the old tables is used again.
	b.db.Close()
	m.db.Close()
	db, err := m.tgt.open()
	if err != nil {
		return "", err
	}
	m.db = db
	return old, nil
}

// discard removes a model's tables that were never swapped in.
func (b *Model) discard(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.dbMu.Lock()
	defer b.dbMu.Unlock()
	if b.tgt.d == sqliteDialect {
		b.db.Close()
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			_ = os.Remove(b.tgt.path + suffix)
		}
		return
	}
	if _, err := b.db.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+b.tgt.schema+" CASCADE"); err != nil {
		b.log.Warn("sqlmodel: drop an unfinished rebuild", "schema", b.tgt.schema, "err", err)
	}
	b.db.Close()
}
