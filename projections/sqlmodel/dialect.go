package sqlmodel

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"
)

// Drivers chosen by configuration.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// dialect holds every difference between the two databases, so that one code path
// (database/sql, the same statements) serves both.
type dialect struct {
	name string
	// timestamp is the column type of an instant: TIMESTAMPTZ on PostgreSQL; TEXT on
	// SQLite, holding fixed-width UTC text (sqliteTimeLayout) that sorts, compares
	// with CURRENT_TIMESTAMP and is understood by SQLite's date functions.
	timestamp string
	// positional placeholders ($1, $2...) instead of ?.
	dollar bool
	// beginTx is run first in every write transaction.
	beginTx []string
	// insert starts the model's inserts. On SQLite, INSERT OR ROLLBACK: a statement
	// that writes several rows and may fail on a constraint otherwise keeps a journal
	// of the pages it changes, to undo just itself, which was a fifth of a catch-up's
	// time; a failed commit is rolled back whole anyway.
	insert string
}

// sqliteTimeLayout is how SQLite stores instants: UTC, nanoseconds, fixed width, so
// that text order is time order.
const sqliteTimeLayout = "2006-01-02 15:04:05.000000000"

var (
	sqliteDialect = &dialect{name: DriverSQLite, timestamp: "TEXT", insert: "INSERT OR ROLLBACK INTO "}
	// PostgreSQL: the checkpoint commits with the rows, so a commit lost in a crash of
	// the database server is simply replayed: no need to wait for its flush to disk.
	postgresDialect = &dialect{name: DriverPostgres, timestamp: "TIMESTAMPTZ", dollar: true,
		beginTx: []string{"SET LOCAL synchronous_commit TO OFF"}, insert: "INSERT INTO "}
)

// rebind turns the ? placeholders of a statement into the dialect's.
func (d *dialect) rebind(query string) string {
	if !d.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ts is the value stored for an instant; the zero time is NULL.
func (d *dialect) ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	if d == sqliteDialect {
		return t.UTC().Format(sqliteTimeLayout)
	}
	return t.UTC()
}

// tsPtr is ts of an optional instant.
func (d *dialect) tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return d.ts(*t)
}

// nullTime scans an instant of either dialect.
type nullTime struct {
	Time  time.Time
	Valid bool
}

func (n *nullTime) Scan(v any) error {
	n.Time, n.Valid = time.Time{}, false
	switch x := v.(type) {
	case nil:
		return nil
	case time.Time:
		n.Time, n.Valid = x.UTC(), true
		return nil
	case string:
		return n.parse(x)
	case []byte:
		return n.parse(string(x))
	}
	return fmt.Errorf("sqlmodel: cannot scan %T as an instant", v)
}

func (n *nullTime) parse(s string) error {
	for _, layout := range []string{sqliteTimeLayout, time.RFC3339Nano, "2006-01-02 15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			n.Time, n.Valid = t.UTC(), true
			return nil
		}
	}
	return fmt.Errorf("sqlmodel: %q is not an instant", s)
}

func (n nullTime) ptr() *time.Time {
	if !n.Valid {
		return nil
	}
	t := n.Time
	return &t
}

// target is where a model's tables live: a SQLite file, or a PostgreSQL schema.
type target struct {
	d      *dialect
	path   string // SQLite: the database file
	url    string // PostgreSQL: the connection URL
	schema string // PostgreSQL: the schema holding the tables
}

// identRe is what a PostgreSQL schema name may be (it is spliced into DDL).
var identRe = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// open connects to the target. On PostgreSQL every connection's search_path is the
// target's schema, so statements name tables alone, as on SQLite.
func (t target) open() (*sql.DB, error) {
	switch t.d {
	case sqliteDialect:
		if dir := filepath.Dir(t.path); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
		}
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "cache_size(-32768)") // 32 MiB of pages per connection
		q.Set("_txlock", "immediate")
		db, err := sql.Open("sqlite", "file:"+t.path+"?"+q.Encode())
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(8)
		db.SetConnMaxIdleTime(time.Minute)
		return db, nil
	case postgresDialect:
		cfg, err := pgx.ParseConfig(t.url)
		if err != nil {
			return nil, fmt.Errorf("sql url: %w", err)
		}
		cfg.RuntimeParams["search_path"] = t.schema
		db := stdlib.OpenDB(*cfg)
		db.SetMaxOpenConns(8)
		db.SetConnMaxIdleTime(time.Minute)
		return db, nil
	}
	return nil, errors.New("sqlmodel: unknown dialect")
}

// prepare makes sure the target can hold tables: the PostgreSQL schema exists.
func (t target) prepare(ctx context.Context, db *sql.DB) error {
	if t.d != postgresDialect {
		return nil
	}
	_, err := db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+t.schema)
	return err
}
