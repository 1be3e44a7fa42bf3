package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/projections/sqlmodel"
)

func TestClusterFlags(t *testing.T) {
	t.Setenv("TICKETD_NATS_REPLICAS", "3")
	t.Setenv("TICKETD_LEASE_TTL", "4s")
	t.Setenv("TICKETD_NATS_MAX_STORE", "512M")
	t.Setenv("TICKETD_NATS_SYNC_ALWAYS", "1")
	cfg, err := parseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.cluster.replicas != 3 || cfg.cluster.leaseTTL != 4*time.Second || cfg.cluster.maxStore != 512<<20 || !cfg.cluster.syncAlways {
		t.Errorf("from the environment: %+v", cfg.cluster)
	}
	cfg, err = parseConfig([]string{"--nats-replicas", "1", "--lease-ttl", "10s", "--nats-max-store", "1G"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.cluster.replicas != 1 || cfg.cluster.leaseTTL != 10*time.Second || cfg.cluster.maxStore != 1<<30 {
		t.Errorf("flags win over the environment: %+v", cfg.cluster)
	}
	if _, err := parseConfig([]string{"--nats-max-store", "lots"}); err == nil {
		t.Error("--nats-max-store lots accepted")
	}

	for name, c := range map[string]struct {
		cluster clusterConfig
		url     string
	}{
		"replicas on the embedded server": {clusterConfig{replicas: 3}, ""},
		"no replica":                      {clusterConfig{replicas: 0}, "nats://127.0.0.1:4222"},
		"a storage cap on an external":    {clusterConfig{replicas: 1, maxStore: 1 << 20}, "nats://127.0.0.1:4222"},
		"sync always on an external":      {clusterConfig{replicas: 1, syncAlways: true}, "nats://127.0.0.1:4222"},
	} {
		sc := jetstream.Config{URL: c.url}
		if err := c.cluster.apply(&sc, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// ticketd refuses them before it starts anything.
	cfg, err = parseConfig([]string{"--nats-replicas", "3", "--data", t.TempDir(), "--http", "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := run(ctx, cfg, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("--nats-replicas 3 with the embedded server started")
	}
}

func TestSQLLease(t *testing.T) {
	sqlite := sqlConfig{driver: sqlmodel.DriverSQLite, url: "/data/readmodel.sqlite"}
	pg := sqlConfig{driver: sqlmodel.DriverPostgres, url: "postgres://db/ticketcore", schema: "readmodel"}
	if sharedSQL(sqlite) || !sharedSQL(pg) {
		t.Error("SQLite is each process's own, PostgreSQL is shared")
	}
	other := pg
	other.schema = "other"
	if sqlLeaseKey(pg) == sqlLeaseKey(other) || sqlLeaseKey(pg) != sqlLeaseKey(pg) {
		t.Error("one lease per SQL model: driver, URL and schema")
	}
}
