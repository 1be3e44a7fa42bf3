package sqlmodel

import (
	"strings"
)

// SchemaVersion is the version of the tables below. A model refuses to open tables of
// another version: rebuild them (Model.Rebuild, or drop them and start again).
const SchemaVersion = 1

// checkpointName is this projection's row in projection_checkpoints.
const checkpointName = "tickets-sql"

// schemaDDL creates the read model. It is the same text on both databases but for the
// instant type ({ts}: TIMESTAMPTZ on PostgreSQL, fixed-width UTC TEXT on SQLite); every
// other type is spelt so that both read it alike (BOOLEAN is 0/1 on SQLite, TRUE and
// FALSE work on both). docs/analytics.md documents every table, column and index.
var schemaDDL = []string{
	`CREATE TABLE readmodel_info (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
)`,
	`CREATE TABLE projection_checkpoints (
	name     TEXT PRIMARY KEY,
	position BIGINT NOT NULL
)`,
	`CREATE TABLE tickets (
	ticket_id                     TEXT PRIMARY KEY,
	number                        TEXT NOT NULL,
	version                       BIGINT NOT NULL,
	subject                       TEXT NOT NULL,
	raised_by                     TEXT NOT NULL,
	status                        TEXT NOT NULL,
	status_class                  TEXT NOT NULL,
	paused                        BOOLEAN NOT NULL,
	status_since                  {ts},
	priority                      TEXT,
	ticket_type                   TEXT,
	customer                      TEXT,
	customer_group                TEXT,
	territory                     TEXT,
	contact                       TEXT,
	lead                          TEXT,
	company                       TEXT,
	project                       TEXT,
	email_account                 TEXT,
	channel                       TEXT,
	via_portal                    BOOLEAN NOT NULL,
	split_from                    TEXT,
	split_from_number             TEXT,
	split_from_message            TEXT,
	resolution_details            TEXT,
	closed_automatically          BOOLEAN NOT NULL,
	created_at                    {ts} NOT NULL,
	updated_at                    {ts} NOT NULL,
	opened_at                     {ts} NOT NULL,
	opened_day                    TEXT NOT NULL,
	opened_week                   TEXT NOT NULL,
	opened_month                  TEXT NOT NULL,
	sla                           TEXT,
	sla_version                   INTEGER,
	sla_priority                  TEXT,
	resolution_applies            BOOLEAN NOT NULL,
	agreement_status              TEXT,
	failed                        BOOLEAN NOT NULL,
	sla_started_at                {ts},
	response_by                   {ts},
	resolution_by                 {ts},
	first_responded_on            {ts},
	on_hold_since                 {ts},
	resolution_date               {ts},
	cycle                         INTEGER NOT NULL,
	reopens                       INTEGER NOT NULL,
	replies                       INTEGER NOT NULL,
	customer_messages             INTEGER NOT NULL,
	mins_to_first_response        DOUBLE PRECISION,
	first_response_time_calendar  DOUBLE PRECISION,
	first_response_time_business  DOUBLE PRECISION,
	avg_response_time_calendar    DOUBLE PRECISION,
	avg_response_time_business    DOUBLE PRECISION,
	total_hold_time_calendar      DOUBLE PRECISION,
	total_hold_time_business      DOUBLE PRECISION,
	resolution_time_calendar      DOUBLE PRECISION,
	resolution_time_business      DOUBLE PRECISION,
	user_resolution_time_calendar DOUBLE PRECISION,
	user_resolution_time_business DOUBLE PRECISION,
	created_position              BIGINT NOT NULL,
	last_position                 BIGINT NOT NULL
)`,
	`CREATE UNIQUE INDEX tickets_number ON tickets (number)`,
	`CREATE INDEX tickets_status ON tickets (status)`,
	`CREATE INDEX tickets_priority ON tickets (priority)`,
	`CREATE INDEX tickets_ticket_type ON tickets (ticket_type)`,
	`CREATE INDEX tickets_customer ON tickets (customer)`,
	`CREATE INDEX tickets_opened_at ON tickets (opened_at)`,
	`CREATE INDEX tickets_opened_month ON tickets (opened_month)`,
	`CREATE INDEX tickets_sla ON tickets (sla, agreement_status)`,
	`CREATE INDEX tickets_response_by ON tickets (response_by)`,
	`CREATE INDEX tickets_resolution_by ON tickets (resolution_by)`,
	`CREATE INDEX tickets_split_from ON tickets (split_from)`,
	`CREATE TABLE ticket_assignees (
	ticket_id TEXT NOT NULL,
	assignee  TEXT NOT NULL,
	seq       INTEGER NOT NULL,
	PRIMARY KEY (ticket_id, assignee)
)`,
	`CREATE INDEX ticket_assignees_assignee ON ticket_assignees (assignee)`,
	`CREATE TABLE messages (
	ticket_id    TEXT NOT NULL,
	message_id   TEXT NOT NULL,
	seq          INTEGER NOT NULL,
	direction    TEXT NOT NULL,
	sent_at      {ts} NOT NULL,
	from_address TEXT,
	to_addresses TEXT,
	cc_addresses TEXT,
	subject      TEXT,
	body         TEXT NOT NULL,
	channel      TEXT,
	actor        TEXT,
	attachments  INTEGER NOT NULL,
	position     BIGINT NOT NULL,
	PRIMARY KEY (ticket_id, message_id)
)`,
	`CREATE INDEX messages_thread ON messages (ticket_id, seq)`,
	`CREATE INDEX messages_sent_at ON messages (sent_at)`,
	`CREATE TABLE comments (
	ticket_id  TEXT NOT NULL,
	comment_id TEXT NOT NULL,
	added_at   {ts} NOT NULL,
	author     TEXT,
	body       TEXT NOT NULL,
	position   BIGINT NOT NULL,
	PRIMARY KEY (ticket_id, comment_id)
)`,
	`CREATE INDEX comments_added_at ON comments (added_at)`,
	`CREATE TABLE status_history (
	ticket_id        TEXT NOT NULL,
	seq              INTEGER NOT NULL,
	status           TEXT NOT NULL,
	status_class     TEXT NOT NULL,
	from_at          {ts} NOT NULL,
	to_at            {ts},
	seconds_calendar DOUBLE PRECISION,
	seconds_business DOUBLE PRECISION,
	sla              TEXT,
	sla_version      INTEGER,
	PRIMARY KEY (ticket_id, seq)
)`,
	`CREATE INDEX status_history_status ON status_history (status, from_at)`,
	`CREATE TABLE sla_cycles (
	ticket_id          TEXT NOT NULL,
	cycle              INTEGER NOT NULL,
	started_at         {ts} NOT NULL,
	ended_at           {ts},
	reset_reason       TEXT,
	sla                TEXT,
	sla_version        INTEGER,
	priority           TEXT,
	resolution_applies BOOLEAN NOT NULL,
	response_by        {ts},
	resolution_by      {ts},
	first_responded_on {ts},
	resolution_date    {ts},
	failed             BOOLEAN NOT NULL,
	agreement_status   TEXT,
	PRIMARY KEY (ticket_id, cycle)
)`,
	`CREATE INDEX sla_cycles_started_at ON sla_cycles (started_at)`,
	`CREATE TABLE sla_breaches (
	event_id       TEXT PRIMARY KEY,
	ticket_id      TEXT NOT NULL,
	kind           TEXT NOT NULL,
	deadline       {ts} NOT NULL,
	deadline_day   TEXT NOT NULL,
	deadline_week  TEXT NOT NULL,
	deadline_month TEXT NOT NULL,
	cycle_start    {ts},
	sla            TEXT,
	sla_version    INTEGER,
	recorded_at    {ts} NOT NULL
)`,
	`CREATE INDEX sla_breaches_ticket ON sla_breaches (ticket_id)`,
	`CREATE INDEX sla_breaches_deadline ON sla_breaches (deadline)`,
	`CREATE TABLE ticket_splits (
	ticket_id      TEXT NOT NULL,
	new_ticket_id  TEXT NOT NULL,
	new_number     TEXT NOT NULL,
	from_message   TEXT NOT NULL,
	moved_messages INTEGER NOT NULL,
	split_at       {ts} NOT NULL,
	position       BIGINT NOT NULL,
	PRIMARY KEY (ticket_id, new_ticket_id)
)`,
	`CREATE INDEX ticket_splits_new_ticket ON ticket_splits (new_ticket_id)`,
	// tickets_now adds the agreement status evaluated when the query runs.
	`CREATE VIEW tickets_now AS
SELECT t.*, ` + agreementStatusSQL("CURRENT_TIMESTAMP") + ` AS agreement_status_now
FROM tickets t`,
}

// agreementStatusSQL is the agreement status of a tickets row at instant at (an SQL
// expression), the spec's rules in the spec's order: failed is the
// verdict as of the last event, and the two targets that can only be missed by time
// passing (no first response by response_by; running, unresolved, past resolution_by)
// are checked against at. It equals the in-memory view's agreement status at any
// instant from the ticket's last event on (tested for every generated ticket).
func agreementStatusSQL(at string) string {
	return strings.NewReplacer("{at}", at).Replace(`CASE
	WHEN sla IS NULL THEN NULL
	WHEN failed
		OR (first_responded_on IS NULL AND response_by < {at})
		OR (status_class = 'running' AND resolution_date IS NULL AND resolution_by < {at})
		THEN 'Failed'
	WHEN paused THEN 'Paused'
	WHEN first_responded_on IS NULL THEN 'First Response Due'
	WHEN resolution_applies AND resolution_date IS NULL THEN 'Resolution Due'
	ELSE 'Fulfilled'
END`)
}

// ddl is the schema for a dialect.
func (d *dialect) ddl() []string {
	out := make([]string, len(schemaDDL))
	for i, s := range schemaDDL {
		out[i] = strings.ReplaceAll(s, "{ts}", d.timestamp)
	}
	return out
}

// tableExistsSQL asks whether the read model's tables exist in the target.
func (d *dialect) tableExistsSQL() string {
	if d == sqliteDialect {
		return `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'readmodel_info'`
	}
	return `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'readmodel_info'`
}
