package main

import (
	"context"
	"flag"
	"log/slog"
	"os"

	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/projections/sqlmodel"
)

// sqlConfig chooses the SQL read model's database (docs/analytics.md#operating-it).
type sqlConfig struct {
	driver  string // sqlite or postgres
	url     string // SQLite file or PostgreSQL URL; empty: <data>/readmodel.sqlite
	schema  string // PostgreSQL schema
	rebuild bool   // rebuild the tables in the background after start
}

func addSQLFlags(fs *flag.FlagSet, c *sqlConfig) {
	fs.StringVar(&c.driver, "sql-driver", envOr("TICKETD_SQL_DRIVER", sqlmodel.DriverSQLite), "SQL read model database: sqlite or postgres (env TICKETD_SQL_DRIVER)")
	fs.StringVar(&c.url, "sql-url", envOr("TICKETD_SQL_URL", ""), "SQL read model: the SQLite file (default <data>/readmodel.sqlite) or the PostgreSQL URL (env TICKETD_SQL_URL)")
	fs.StringVar(&c.schema, "sql-schema", envOr("TICKETD_SQL_SCHEMA", sqlmodel.DefaultSchema), "PostgreSQL schema of the SQL read model (env TICKETD_SQL_SCHEMA)")
	fs.BoolVar(&c.rebuild, "sql-rebuild", os.Getenv("TICKETD_SQL_REBUILD") == "1", "rebuild the SQL read model in the background after start, then swap it in (env TICKETD_SQL_REBUILD=1)")
}

// openReadModel opens the SQL read model the runner feeds along with the in-memory one.
func openReadModel(ctx context.Context, cfg config, log *slog.Logger) (*sqlmodel.Model, error) {
	url := cfg.sql.url
	if url == "" && (cfg.sql.driver == "" || cfg.sql.driver == sqlmodel.DriverSQLite) {
		url = sqlmodel.DefaultSQLitePath(cfg.dataDir)
	}
	m, err := sqlmodel.Open(ctx, sqlmodel.Config{Driver: cfg.sql.driver, URL: url, Schema: cfg.sql.schema, Log: log})
	if err != nil {
		return nil, err
	}
	log.Info("SQL read model opened", "driver", m.Driver(), "checkpoint", m.Committed())
	return m, nil
}

// startReadModelRebuild rebuilds the SQL tables in the background when asked to.
func startReadModelRebuild(ctx context.Context, cfg sqlConfig, m *sqlmodel.Model, store eventstore.Store, log *slog.Logger) {
	if !cfg.rebuild || sharedSQL(cfg) {
		return // a shared model is rebuilt by the holder of its lease (cluster.go)
	}
	go func() {
		if _, err := m.Rebuild(ctx, store); err != nil && ctx.Err() == nil {
			log.Error("SQL read model rebuild failed; the previous tables stay in place", "err", err)
		}
	}()
}
