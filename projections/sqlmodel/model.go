// Package sqlmodel is the SQL read model for analysts: every ticket with every field
// and metric of spec/metrics.md, its thread, comments, status intervals, SLA cycles,
// breaches and splits, in tables documented in docs/analytics.md, kept up to date by a
// projection the projections.Runner feeds.
//
// Two databases, one code path (database/sql) and one schema: an embedded SQLite file
// (modernc.org/sqlite, pure Go; the default) or PostgreSQL (pgx). The differences (the
// instant type, placeholders, PostgreSQL's schema) are in one small dialect struct.
//
// The metrics are not computed here: the projection folds each ticket's events into a
// projections.TicketState (domain.SLAMetrics) in memory, exactly as the in-memory
// model does, and writes what that fold shows.
//
// Exactly-once effect: the rows a batch of events changes and the projection's
// checkpoint (projection_checkpoints) are committed in one transaction. At start the
// model reads its checkpoint; the in-memory fold is rebuilt from the events (Position
// is 0 until it has been, so the runner replays from the start, as it does for the
// in-memory model anyway), and rows are written only for events past the checkpoint.
// A crash therefore loses at most an uncommitted batch, which is replayed, and never
// applies an event twice.
package sqlmodel

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/projections"
)

// Config chooses the database.
type Config struct {
	// Driver is "sqlite" (the default) or "postgres".
	Driver string
	// URL is the SQLite database file, or the PostgreSQL connection URL.
	URL string
	// Schema is the PostgreSQL schema holding the tables (default "readmodel"; a
	// rebuild builds the next one beside it and renames it into place).
	Schema string
	// BatchSize is the most events one transaction holds (default
	// projections.CatchUpFlush, at most maxPendingEvents). The runner also commits every
	// projections.CatchUpFlush events of a catch-up and after each live event
	// (projections.Flusher). A transaction costs about as much
	// for the pages of the tables and indexes it writes as for its rows, so a catch-up
	// goes faster in large ones (docs/performance.md).
	BatchSize int
	Log       *slog.Logger
}

// DefaultSchema is the PostgreSQL schema of the read model.
const DefaultSchema = "readmodel"

// DefaultSQLitePath is the database file in ticketd's data folder.
func DefaultSQLitePath(dataDir string) string { return filepath.Join(dataDir, "readmodel.sqlite") }

// Model is the SQL read model, a projections.Projection and projections.Flusher.
type Model struct {
	cfg Config
	log *slog.Logger
	tgt target

	dbMu sync.RWMutex // readers hold it shared; a rebuild's swap holds it alone
	db   *sql.DB

	mu        sync.Mutex
	seen      uint64 // last position folded into memory
	committed uint64 // checkpoint stored with the rows
	slas      domain.SLACatalogue
	tickets   map[string]*entry
	batch     batch
	closed    bool

	// A failed commit leaves the batch pending and is tried again with back-off, so
	// that an unreachable database does not stop the runner (and the API's
	// read-your-writes) with it; strict models (a rebuild) return the error instead.
	strict   bool
	failures int
	retryAt  time.Time
	retry    *time.Timer
	lastErr  error

	// failCommit, when set (tests), is called just before a commit; an error aborts it.
	failCommit func() error
}

// entry is one ticket as the projection keeps it between events.
type entry struct {
	id        string
	st        projections.TicketState
	threadLen int    // messages now in the thread (the next message's seq)
	cycle     int    // current SLA cycle, from 1
	reason    string // reason of the reset that started the cycle
	createdAt uint64 // position of ticket.created
	lastPos   uint64 // position of its last event
	hist      interval
	histSeq   int
	assignees bool // assignees changed in the pending batch
}

// interval is the status interval a ticket is in.
type interval struct {
	open       bool
	status     domain.Status
	class      string
	sla        string
	slaVersion int
	from       time.Time
}

// batch is what the next commit writes: the rows of the events past the checkpoint.
type batch struct {
	last   uint64 // position reached (0: nothing pending)
	events int
	rows   rowSet
	dirty  []*entry // tickets whose row is written with their state at commit
	marked map[*entry]bool
}

func (b *batch) reset() { *b = batch{} }

func (b *batch) touch(e *entry) {
	if b.marked == nil {
		b.marked = map[*entry]bool{}
	}
	if !b.marked[e] {
		b.marked[e] = true
		b.dirty = append(b.dirty, e)
	}
}

// table is how rows reach one table: multi-row inserts (upserts when key > 0, where the
// first key columns identify a row), or one statement per row (deletes).
type table struct {
	name   string
	cols   []string
	key    int    // upsert on the first key columns; 0: plain insert
	single string // run once per row instead (a delete)
}

// Tables in the order a commit writes them. Nothing depends on another table; within
// messages, a message split off in the same batch is inserted before it is deleted.
var (
	messagesT = &table{name: "messages", cols: []string{"ticket_id", "message_id", "seq", "direction", "sent_at", "from_address",
		"to_addresses", "cc_addresses", "subject", "body", "channel", "actor", "attachments", "position"}}
	commentsT = &table{name: "comments", cols: []string{"ticket_id", "comment_id", "added_at", "author", "body", "position"}}
	splitsT   = &table{name: "ticket_splits", cols: []string{"ticket_id", "new_ticket_id", "new_number", "from_message",
		"moved_messages", "split_at", "position"}}
	breachesT = &table{name: "sla_breaches", cols: []string{"event_id", "ticket_id", "kind", "deadline", "deadline_day",
		"deadline_week", "deadline_month", "cycle_start", "sla", "sla_version", "recorded_at"}}
	intervalsT = &table{name: "status_history", key: 2, cols: []string{"ticket_id", "seq", "status", "status_class", "from_at",
		"to_at", "seconds_calendar", "seconds_business", "sla", "sla_version"}}
	cyclesT = &table{name: "sla_cycles", key: 2, cols: []string{"ticket_id", "cycle", "started_at", "ended_at", "reset_reason",
		"sla", "sla_version", "priority", "resolution_applies", "response_by", "resolution_by", "first_responded_on",
		"resolution_date", "failed", "agreement_status"}}
	messageDeletesT  = &table{name: "messages", single: `DELETE FROM messages WHERE ticket_id = ? AND message_id = ?`}
	ticketsT         = &table{name: "tickets", key: 1, cols: ticketColumns}
	assigneeDeletesT = &table{name: "ticket_assignees", single: `DELETE FROM ticket_assignees WHERE ticket_id = ?`}
	assigneesT       = &table{name: "ticket_assignees", cols: []string{"ticket_id", "assignee", "seq"}}

	writeOrder = []*table{messagesT, commentsT, splitsT, breachesT, intervalsT, cyclesT, messageDeletesT, ticketsT, assigneeDeletesT, assigneesT}
)

// rowSet holds rows per table; an upserted row replaces an earlier one of the same key
// (every upsert writes the whole row, so the last one is the row).
type rowSet struct {
	rows  map[*table][][]any
	index map[*table]map[string]int
}

func (r *rowSet) add(t *table, row []any) {
	if r.rows == nil {
		r.rows, r.index = map[*table][][]any{}, map[*table]map[string]int{}
	}
	if t.key > 0 {
		k := fmt.Sprintf("%v", row[:t.key])
		if r.index[t] == nil {
			r.index[t] = map[string]int{}
		}
		if i, ok := r.index[t][k]; ok {
			r.rows[t][i] = row
			return
		}
		r.index[t][k] = len(r.rows[t])
	}
	r.rows[t] = append(r.rows[t], row)
}

// statement is the multi-row statement writing n rows to t on d.
func (t *table) statement(d *dialect, n int) string {
	var b strings.Builder
	b.WriteString(d.insert + t.name + " (" + strings.Join(t.cols, ", ") + ") VALUES ")
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(t.cols)), ", ") + ")"
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	if t.key > 0 {
		var set []string
		for _, c := range t.cols[t.key:] {
			set = append(set, c+" = excluded."+c)
		}
		b.WriteString(" ON CONFLICT (" + strings.Join(t.cols[:t.key], ", ") + ") DO UPDATE SET " + strings.Join(set, ", "))
	}
	return b.String()
}

// Open connects to the database, creates the tables if they do not exist and reads
// the checkpoint.
func Open(ctx context.Context, cfg Config) (*Model, error) {
	tgt, err := cfg.target()
	if err != nil {
		return nil, err
	}
	return openTarget(ctx, cfg, tgt)
}

func (cfg *Config) target() (target, error) {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = projections.CatchUpFlush
	}
	cfg.BatchSize = min(cfg.BatchSize, maxPendingEvents)
	switch strings.ToLower(cfg.Driver) {
	case "", DriverSQLite, "sqlite3":
		if cfg.URL == "" {
			return target{}, errors.New("sqlmodel: the SQLite database file is required")
		}
		return target{d: sqliteDialect, path: strings.TrimPrefix(cfg.URL, "file:")}, nil
	case DriverPostgres, "postgresql", "pgx":
		if cfg.URL == "" {
			return target{}, errors.New("sqlmodel: the PostgreSQL URL is required")
		}
		if cfg.Schema == "" {
			cfg.Schema = DefaultSchema
		}
		if !identRe.MatchString(cfg.Schema) {
			return target{}, fmt.Errorf("sqlmodel: schema %q: use lower-case letters, digits and _", cfg.Schema)
		}
		return target{d: postgresDialect, url: cfg.URL, schema: cfg.Schema}, nil
	}
	return target{}, fmt.Errorf("sqlmodel: unknown driver %q: use sqlite or postgres", cfg.Driver)
}

func openTarget(ctx context.Context, cfg Config, tgt target) (*Model, error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	db, err := tgt.open()
	if err != nil {
		return nil, err
	}
	m := &Model{cfg: cfg, log: log, tgt: tgt, db: db, tickets: map[string]*entry{}}
	if err := m.init(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return m, nil
}

// init creates the schema when it is missing and reads the checkpoint.
func (m *Model) init(ctx context.Context) error {
	d := m.tgt.d
	if err := m.tgt.prepare(ctx, m.db); err != nil {
		return fmt.Errorf("sqlmodel: prepare %s: %w", m.describe(), err)
	}
	var n int
	if err := m.db.QueryRowContext(ctx, d.tableExistsSQL()).Scan(&n); err != nil {
		return fmt.Errorf("sqlmodel: open %s: %w", m.describe(), err)
	}
	if n == 0 {
		tx, err := m.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for _, stmt := range d.ddl() {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("sqlmodel: create schema: %w\n%s", err, stmt)
			}
		}
		for k, v := range map[string]string{
			"schema_version": strconv.Itoa(SchemaVersion),
			"generation":     strconv.FormatInt(time.Now().UnixNano(), 36),
		} {
			if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO readmodel_info (key, value) VALUES (?, ?)`), k, v); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO projection_checkpoints (name, position) VALUES (?, 0)`), checkpointName); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlmodel: create schema: %w", err)
		}
	}
	var version string
	if err := m.db.QueryRowContext(ctx, `SELECT value FROM readmodel_info WHERE key = 'schema_version'`).Scan(&version); err != nil {
		return fmt.Errorf("sqlmodel: read the schema version: %w", err)
	}
	if version != strconv.Itoa(SchemaVersion) {
		return fmt.Errorf("sqlmodel: %s holds schema version %s, this build writes version %d: drop it (delete the file or the schema) and the model is built again from the events", m.describe(), version, SchemaVersion)
	}
	var pos int64
	if err := m.db.QueryRowContext(ctx, d.rebind(`SELECT position FROM projection_checkpoints WHERE name = ?`), checkpointName).Scan(&pos); err != nil {
		return fmt.Errorf("sqlmodel: read the checkpoint: %w", err)
	}
	m.committed = uint64(pos)
	return nil
}

func (m *Model) describe() string {
	if m.tgt.d == sqliteDialect {
		return "SQLite " + m.tgt.path
	}
	return "PostgreSQL schema " + m.tgt.schema
}

// Driver is "sqlite" or "postgres".
func (m *Model) Driver() string { return m.tgt.d.name }

// Name implements projections.Projection.
func (m *Model) Name() string { return "sql" }

// Position is the checkpoint the runner resumes from: the committed position, once
// the in-memory fold has caught up with it (0 before, so that the runner replays the
// events the fold needs).
func (m *Model) Position() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return min(m.seen, m.committed)
}

// Committed is the position whose effects are stored.
func (m *Model) Committed() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.committed
}

// Reset forgets the in-memory fold, so that the runner replays every event into it.
// The tables keep what they hold (rows are written only past the checkpoint): a SQL
// rebuild is Rebuild, which never shows a half-built table.
func (m *Model) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen = 0
	m.slas = domain.SLACatalogue{}
	m.tickets = map[string]*entry{}
	m.batch.reset()
}

// Apply implements projections.Projection: it folds the event in memory and, past the
// checkpoint, adds its rows to the pending batch; a full batch is committed.
func (m *Model) Apply(e domain.Event, pos uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pos <= m.seen {
		return nil
	}
	m.seen = pos
	write := pos > m.committed
	if write {
		m.batch.last = pos
		m.batch.events++
	}
	m.fold(e, pos, write)
	if write && m.batch.events >= m.cfg.BatchSize {
		return m.flushLocked()
	}
	return nil
}

// Flush commits the pending batch (projections.Flusher).
func (m *Model) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.flushLocked()
}

// Close commits what is pending and closes the database.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	if m.retry != nil {
		m.retry.Stop()
	}
	err := m.flushWith(true)
	m.closed = true
	m.dbMu.Lock()
	defer m.dbMu.Unlock()
	return errors.Join(err, m.db.Close())
}

// fold applies one event to the in-memory state and, when write is set, records the
// rows it changes.
func (m *Model) fold(e domain.Event, pos uint64, write bool) {
	if e.Stream == domain.SLAStream {
		domain.EvolveSLACatalogue(&m.slas, e)
		return
	}
	id := domain.TicketIDFromStream(e.Stream)
	if id == "" {
		return
	}
	en := m.tickets[id]
	if en == nil {
		if _, ok := e.Payload.(domain.TicketCreated); !ok {
			return
		}
		id = strings.Clone(id) // kept for good: not a view of the event's buffer
		en = &entry{id: id, createdAt: pos, cycle: 1}
		m.tickets[id] = en
	}
	d := m.tgt.d
	at := e.OccurredAt.UTC()
	if r, ok := e.Payload.(domain.SLAReset); ok {
		// The cycle ends at the reset: its row as it stood then, evaluated then.
		if write {
			m.batch.rows.add(cyclesT, m.cycleRow(en, at, at))
		}
		en.cycle++
		en.reason = r.Reason
	}
	en.st.Apply(e, m.slas.Lookup)
	en.lastPos = pos

	switch p := e.Payload.(type) {
	case domain.TicketCreated, domain.CustomerMessageReceived, domain.ReplySent, domain.CommentAdded:
		// The thread and comments exactly as the detail view folds them.
		one, _ := projections.FoldTicket([]domain.Event{e}, time.Time{}, nil)
		for _, msg := range one.Thread {
			if write {
				m.batch.rows.add(messagesT, []any{
					id, msg.MessageID, en.threadLen, string(msg.Direction), d.ts(msg.At), nullStr(msg.From),
					nullStr(strings.Join(msg.To, ",")), nullStr(strings.Join(msg.CC, ",")), nullStr(msg.Subject), msg.Body,
					nullStr(string(msg.Channel)), nullStr(msg.Actor), len(msg.Attachments), int64(pos)})
			}
			en.threadLen++
		}
		for _, c := range one.Comments {
			if write {
				m.batch.rows.add(commentsT, []any{id, c.CommentID, d.ts(c.At), nullStr(c.Author), c.Body, int64(pos)})
			}
		}
	case domain.TicketSplit:
		for _, mid := range p.MovedMessages {
			if write {
				m.batch.rows.add(messageDeletesT, []any{id, mid})
			}
		}
		en.threadLen = max(en.threadLen-len(p.MovedMessages), 0)
		if write {
			m.batch.rows.add(splitsT, []any{id, p.NewTicketID, p.NewNumber, p.FromMessage, len(p.MovedMessages), d.ts(at), int64(pos)})
		}
	case domain.SLADeadlineMissed:
		if write {
			dl := p.Deadline.UTC()
			day, week, month := Buckets(dl)
			m.batch.rows.add(breachesT, []any{e.ID, id, p.Kind, d.ts(dl), day, week, month,
				d.ts(p.CycleStart), nullStr(p.SLA), nullInt(p.SLAVersion, p.SLA != ""), d.ts(at)})
		}
	case domain.TicketAssigned, domain.TicketUnassigned:
		en.assignees = en.assignees || write
	}
	m.trackStatus(en, at, write)
	if write {
		m.batch.touch(en)
	}
}

// trackStatus opens a new status_history interval when the status, its class or the
// SLA measuring it changes, closing the previous one.
func (m *Model) trackStatus(en *entry, at time.Time, write bool) {
	met := &en.st.Metrics
	next := interval{open: true, status: met.Status, class: m.classOf(met), from: at}
	if met.HasSLA() {
		next.sla, next.slaVersion = met.SLAName, met.SLAVersion
	}
	cur := en.hist
	if cur.open && cur.status == next.status && cur.class == next.class && cur.sla == next.sla && cur.slaVersion == next.slaVersion {
		return
	}
	d := m.tgt.d
	if cur.open && write {
		cal := at.Sub(cur.from).Seconds()
		var bus any
		if s, ok := m.slas.Lookup(cur.sla, cur.slaVersion); ok && cur.sla != "" {
			bus = s.Calendar().Business(cur.from, at).Seconds()
		}
		m.batch.rows.add(intervalsT, []any{en.id, en.histSeq, string(cur.status), cur.class,
			d.ts(cur.from), d.ts(at), cal, bus, nullStr(cur.sla), nullInt(cur.slaVersion, cur.sla != "")})
	}
	if cur.open {
		en.histSeq++
	}
	en.hist = next
	if write {
		m.batch.rows.add(intervalsT, []any{en.id, en.histSeq, string(next.status), next.class,
			d.ts(at), nil, nil, nil, nullStr(next.sla), nullInt(next.slaVersion, next.sla != "")})
	}
}

// defaultClasses classify statuses when no SLA applies: the spec's default pause and
// fulfilled statuses, as the metrics fold uses them.
var defaultClasses, _ = domain.CompileSLA(domain.SLADefinition{
	Name:       "default-classes",
	Calendar:   domain.CalendarSpec{Timezone: "UTC", Hours: map[string][][2]string{"Monday": {{"00:00", "24:00"}}}},
	Priorities: []domain.SLAPriority{{Name: "Medium", Response: domain.Duration(time.Hour), Resolution: domain.Duration(time.Hour), Default: true}},
})

// classOf is the class of the ticket's status under the SLA measuring it.
func (m *Model) classOf(met *domain.SLAMetrics) string {
	s := defaultClasses
	if met.HasSLA() {
		if found, ok := m.slas.Lookup(met.SLAName, met.SLAVersion); ok {
			s = found
		}
	}
	return className(s.ClassOf(met.Status))
}

func className(c domain.StatusClass) string {
	switch c {
	case domain.ClassPaused:
		return "paused"
	case domain.ClassFulfilled:
		return "fulfilled"
	}
	return "running"
}

// resolutionApplies reports whether the ticket's SLA tracks the resolution target.
func (m *Model) resolutionApplies(met *domain.SLAMetrics) bool {
	if !met.HasSLA() {
		return false
	}
	s, ok := m.slas.Lookup(met.SLAName, met.SLAVersion)
	return ok && s.AppliesToResolution()
}

// Buckets are the UTC day (2026-01-05), ISO week (its Monday, 2026-01-05) and month
// (2026-01) of an instant, as the *_day, *_week and *_month columns hold them.
func Buckets(t time.Time) (day, week, month string) {
	t = t.UTC()
	day = t.Format(time.DateOnly)
	offset := (int(t.Weekday()) + 6) % 7 // days since Monday
	week = t.AddDate(0, 0, -offset).Format(time.DateOnly)
	month = t.Format("2006-01")
	return day, week, month
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(v int, valid bool) any {
	if !valid {
		return nil
	}
	return v
}

func nullFloat(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// Statements of the checkpoint.
const (
	advanceCheckpt = `UPDATE projection_checkpoints SET position = ? WHERE name = ? AND position = ?`
	readCheckpt    = `SELECT position FROM projection_checkpoints WHERE name = ?`
)

// ticketColumns are the columns of tickets in the order ticketRow gives them.
var ticketColumns = []string{
	"ticket_id", "number", "version", "subject", "raised_by", "status", "status_class", "paused", "status_since",
	"priority", "ticket_type", "customer", "customer_group", "territory", "contact", "lead", "company", "project",
	"email_account", "channel", "via_portal", "split_from", "split_from_number", "split_from_message",
	"resolution_details", "closed_automatically", "created_at", "updated_at", "opened_at", "opened_day", "opened_week",
	"opened_month", "sla", "sla_version", "sla_priority", "resolution_applies", "agreement_status", "failed",
	"sla_started_at", "response_by", "resolution_by", "first_responded_on", "on_hold_since", "resolution_date", "cycle",
	"reopens", "replies", "customer_messages", "mins_to_first_response",
	"first_response_time_calendar", "first_response_time_business", "avg_response_time_calendar",
	"avg_response_time_business", "total_hold_time_calendar", "total_hold_time_business", "resolution_time_calendar",
	"resolution_time_business", "user_resolution_time_calendar", "user_resolution_time_business",
	"created_position", "last_position",
}

// ticketRow is the tickets row of a ticket: its view, rendered by the in-memory
// model's own code, as of its last event.
func (m *Model) ticketRow(en *entry) []any {
	d := m.tgt.d
	st := &en.st
	met := &st.Metrics
	v := st.View(st.UpdatedAt, false)
	class := m.classOf(met)
	day, week, month := Buckets(v.OpenedAt)
	var splitFrom, splitNumber, splitMessage string
	if v.SplitFrom != nil {
		splitFrom, splitNumber, splitMessage = v.SplitFrom.TicketID, v.SplitFrom.Number, v.SplitFrom.FromMessage
	}
	var sla, agreement any
	var slaVersion any
	var slaPriority any
	if v.SLA != nil {
		sla, slaVersion, slaPriority, agreement = *v.SLA, *v.SLAVersion, nullStr(met.Priority), *v.AgreementStatus
	}
	failed := v.AgreementStatus != nil && *v.AgreementStatus == domain.AgreementFailed
	return []any{
		v.ID, v.Number, int64(v.Version), v.Subject, v.RaisedBy, string(v.Status), class, class == "paused", d.ts(st.StatusSince),
		nullStr(v.Priority), nullStr(v.TicketType), nullStr(v.Customer), nullStr(v.CustomerGroup), nullStr(v.Territory),
		nullStr(v.Contact), nullStr(v.Lead), nullStr(v.Company), nullStr(v.Project),
		nullStr(v.EmailAccount), nullStr(string(v.Channel)), v.ViaPortal, nullStr(splitFrom), nullStr(splitNumber), nullStr(splitMessage),
		nullStr(v.Resolution), v.ClosedAutomatically, d.ts(v.CreatedAt), d.ts(v.UpdatedAt), d.ts(v.OpenedAt), day, week,
		month, sla, slaVersion, slaPriority, m.resolutionApplies(met), agreement, failed,
		d.tsPtr(v.SLAStartedAt), d.tsPtr(v.ResponseBy), d.tsPtr(v.ResolutionBy), d.tsPtr(v.FirstRespondedOn), d.tsPtr(v.OnHoldSince), d.tsPtr(v.ResolutionDate), en.cycle,
		v.Reopens, v.Replies, v.CustomerMessages, nullFloat(v.MinsToFirstResponse),
		nullFloat(v.FirstResponseTimeCalendar), nullFloat(v.FirstResponseTimeBusiness), nullFloat(v.AvgResponseTimeCalendar),
		nullFloat(v.AvgResponseTimeBusiness), nullFloat(v.TotalHoldTimeCalendar), nullFloat(v.TotalHoldTimeBusiness), nullFloat(v.ResolutionTimeCalendar),
		nullFloat(v.ResolutionTimeBusiness), nullFloat(v.UserResolutionTimeCalendar), nullFloat(v.UserResolutionTimeBusiness),
		int64(en.createdAt), int64(en.lastPos),
	}
}

// cycleRow is the sla_cycles row of the ticket's current cycle evaluated at instant at;
// ended is when it ended (zero while it runs).
func (m *Model) cycleRow(en *entry, at, ended time.Time) []any {
	d := m.tgt.d
	met := &en.st.Metrics
	v := en.st.View(at, false)
	var sla, slaVersion, agreement any
	if v.SLA != nil {
		sla, slaVersion, agreement = *v.SLA, *v.SLAVersion, *v.AgreementStatus
	}
	failed := v.AgreementStatus != nil && *v.AgreementStatus == domain.AgreementFailed
	return []any{en.id, en.cycle, d.ts(met.Start), d.ts(ended), nullStr(en.reason), sla, slaVersion,
		nullStr(met.Priority), m.resolutionApplies(met), d.tsPtr(v.ResponseBy), d.tsPtr(v.ResolutionBy),
		d.tsPtr(v.FirstRespondedOn), d.tsPtr(v.ResolutionDate), failed, agreement}
}

// flushLocked commits the pending batch with the checkpoint, in one transaction. On
// failure the batch stays pending and is tried again at the next flush.
func (m *Model) flushLocked() error {
	return m.flushWith(false)
}

// maxPendingEvents bounds what a model keeps pending while its database fails: past
// it, the error stops the runner.
const maxPendingEvents = 100_000

func (m *Model) flushWith(force bool) error {
	if m.batch.last == 0 {
		return nil
	}
	if m.closed {
		return errors.New("sqlmodel: the model is closed")
	}
	tooMany := m.batch.events >= maxPendingEvents
	if !force && !m.strict && !tooMany && time.Now().Before(m.retryAt) {
		return nil // backing off after a failure
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m.dbMu.RLock()
	err := m.commit(ctx, m.db)
	m.dbMu.RUnlock()
	if errors.Is(err, errAlreadyCommitted) {
		err = nil
	} else if err == nil {
		m.committed = m.batch.last
		m.batch.reset()
	}
	if err == nil {
		if m.failures > 0 {
			m.log.Info("sqlmodel: commits succeed again", "checkpoint", m.committed, "failures", m.failures)
		}
		m.failures, m.retryAt, m.lastErr = 0, time.Time{}, nil
		return nil
	}
	err = fmt.Errorf("sqlmodel: commit up to position %d: %w", m.batch.last, err)
	m.lastErr = err
	if m.strict || force || tooMany {
		return err
	}
	m.failures++
	backoff := min(time.Second<<min(m.failures-1, 5), 30*time.Second)
	m.retryAt = time.Now().Add(backoff)
	if m.failures == 1 || m.failures%10 == 0 {
		m.log.Warn("sqlmodel: commit failed; the batch stays pending and is tried again", "err", err,
			"pending_events", m.batch.events, "retry_in", backoff, "failures", m.failures)
	}
	if m.retry != nil {
		m.retry.Stop()
	}
	m.retry = time.AfterFunc(backoff, func() { _ = m.Flush() })
	return nil
}

// Err is the error of the last commit, nil once a commit succeeds.
func (m *Model) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr
}

var errAlreadyCommitted = errors.New("already committed")

func (m *Model) commit(ctx context.Context, db *sql.DB) error {
	d := m.tgt.d
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, s := range d.beginTx {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	// The checkpoint first: it moves only from the position this model read, so a
	// batch whose commit was in fact done (an error after the commit) is not applied
	// twice, and a second writer on the same tables is noticed.
	res, err := tx.ExecContext(ctx, d.rebind(advanceCheckpt), int64(m.batch.last), checkpointName, int64(m.committed))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		var cur int64
		if err := tx.QueryRowContext(ctx, d.rebind(readCheckpt), checkpointName).Scan(&cur); err != nil {
			return err
		}
		if uint64(cur) >= m.batch.last {
			m.log.Warn("sqlmodel: the batch was already committed", "position", m.batch.last, "checkpoint", cur)
			m.committed = uint64(cur)
			m.batch.reset()
			return errAlreadyCommitted
		}
		return fmt.Errorf("the checkpoint is at %d, this model expected %d: %w", cur, m.committed, ErrOtherWriter)
	}
	// The pending rows, then each changed ticket's row, current cycle and assignees as
	// they stand now (built afresh, so that a failed commit can be tried again).
	var rows rowSet
	for _, t := range writeOrder {
		for _, row := range m.batch.rows.rows[t] {
			rows.add(t, row)
		}
	}
	for _, en := range m.batch.dirty {
		rows.add(ticketsT, m.ticketRow(en))
		rows.add(cyclesT, m.cycleRow(en, en.st.UpdatedAt, time.Time{}))
		if en.assignees {
			rows.add(assigneeDeletesT, []any{en.id})
			for i, a := range en.st.Assignees {
				rows.add(assigneesT, []any{en.id, a, i})
			}
		}
	}
	for _, t := range writeOrder {
		if err := m.write(ctx, tx, t, rows.rows[t]); err != nil {
			return err
		}
	}
	if m.failCommit != nil {
		if err := m.failCommit(); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	for _, en := range m.batch.dirty {
		en.assignees = false
	}
	return nil
}

// write writes rows to t, in multi-row statements.
func (m *Model) write(ctx context.Context, tx *sql.Tx, t *table, rows [][]any) error {
	d := m.tgt.d
	if t.single != "" {
		q := d.rebind(t.single)
		for _, row := range rows {
			if _, err := tx.ExecContext(ctx, q, row...); err != nil {
				return fmt.Errorf("%s: %w", firstLine(t.single), err)
			}
		}
		return nil
	}
	per := max(1, min(500, 30000/len(t.cols)))
	for len(rows) > 0 {
		n := min(per, len(rows))
		args := make([]any, 0, n*len(t.cols))
		for _, row := range rows[:n] {
			args = append(args, row...)
		}
		if _, err := tx.ExecContext(ctx, d.rebind(t.statement(d, n)), args...); err != nil {
			return fmt.Errorf("write %d rows to %s: %w", n, t.name, err)
		}
		rows = rows[n:]
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Read runs fn on the database, which no rebuild swaps away while fn runs. Analysts'
// own connections see the same tables; fn must not keep db.
func (m *Model) Read(ctx context.Context, fn func(db *sql.DB) error) error {
	m.dbMu.RLock()
	defer m.dbMu.RUnlock()
	return fn(m.db)
}

// Rebind turns a statement written with ? placeholders into the database's form.
func (m *Model) Rebind(query string) string { return m.tgt.d.rebind(query) }

// Time is the value to bind for an instant in a query on this database.
func (m *Model) Time(t time.Time) any { return m.tgt.d.ts(t) }
