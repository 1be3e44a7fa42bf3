package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ticketcore/ticketcore/commands/natsapi"
	"github.com/ticketcore/ticketcore/email"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/projections"
	"github.com/ticketcore/ticketcore/projections/sqlmodel"
)

// Running several ticketd processes on one NATS cluster (docs/operations.md#several-processes):
// replicated streams, and the leases that keep the integration event forwarder and the
// writer of a shared SQL read model to one process at a time.

// clusterConfig is what ticketd needs to know to share a NATS (JetStream) cluster.
type clusterConfig struct {
	// replicas of every stream and bucket ticketd creates (1, or 3 on a 3-node cluster).
	replicas int
	// leaseTTL is how long a lease outlives its holder's last refresh.
	leaseTTL time.Duration
	// maxStore caps the embedded server's JetStream storage, in bytes (0: NATS's
	// default, 75% of the free disk space at start).
	maxStore int64
	// syncAlways makes the embedded server fsync every write before acknowledging it.
	syncAlways bool
}

func addClusterFlags(fs *flag.FlagSet, c *clusterConfig) {
	replicas := 1
	if n, err := strconv.Atoi(os.Getenv("TICKETD_NATS_REPLICAS")); err == nil {
		replicas = n
	}
	fs.IntVar(&c.replicas, "nats-replicas", replicas,
		"replicas of ticketd's JetStream streams and buckets on a NATS cluster (--nats-url), e.g. 3 (env TICKETD_NATS_REPLICAS)")
	ttl := natsapi.DefaultLeaseTTL
	if d, err := time.ParseDuration(os.Getenv("TICKETD_LEASE_TTL")); err == nil {
		ttl = d
	}
	fs.DurationVar(&c.leaseTTL, "lease-ttl", ttl,
		"with --nats-url, how long the lease of a singleton (integration forwarder, email outbox, shared SQL writer) outlives its holder; the same in every process (env TICKETD_LEASE_TTL)")
	fs.Func("nats-max-store", "cap of the embedded NATS server's JetStream storage in bytes (suffix K, M, G: 1024-based); default 75% of the free disk space at start (env TICKETD_NATS_MAX_STORE)",
		func(s string) error {
			n, err := parseBytes(s)
			c.maxStore = n
			return err
		})
	fs.BoolVar(&c.syncAlways, "nats-sync-always", os.Getenv("TICKETD_NATS_SYNC_ALWAYS") == "1",
		"the embedded NATS server fsyncs every write before acknowledging it (default: every 2 minutes) (env TICKETD_NATS_SYNC_ALWAYS=1)")
	if v := os.Getenv("TICKETD_NATS_MAX_STORE"); v != "" {
		if n, err := parseBytes(v); err == nil {
			c.maxStore = n
		}
	}
}

// parseBytes reads 123, 64K, 512M, 2G (powers of 1024).
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		mult = 1 << 10
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult = 1 << 20
	case strings.HasSuffix(s, "G"), strings.HasSuffix(s, "g"):
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q: want a number of bytes, such as 536870912 or 512M", s)
	}
	return n * mult, nil
}

// apply sets the store's replicas and the embedded server's storage cap, and passes
// the embedded server's warnings and errors to the log.
func (c clusterConfig) apply(storeCfg *jetstream.Config, log *slog.Logger) error {
	storeCfg.ServerLogger = natsServerLog{log}
	if c.replicas < 1 {
		return fmt.Errorf("--nats-replicas %d: want 1 or more", c.replicas)
	}
	if c.replicas > 1 && storeCfg.URL == "" {
		return fmt.Errorf("--nats-replicas %d needs a NATS cluster (--nats-url); the embedded server is a single node", c.replicas)
	}
	storeCfg.Replicas = c.replicas
	if c.syncAlways {
		if storeCfg.URL != "" {
			return errors.New("--nats-sync-always configures the embedded NATS server; an external one has its own (jetstream { sync_interval: always })")
		}
		storeCfg.SyncAlways = true
	}
	if c.maxStore > 0 {
		if storeCfg.URL != "" {
			return errors.New("--nats-max-store caps the embedded NATS server; an external one has its own limits (jetstream.max_file_store)")
		}
		prev := storeCfg.ConfigureServer
		storeCfg.ConfigureServer = func(o *server.Options) error {
			if prev != nil {
				if err := prev(o); err != nil {
					return err
				}
			}
			o.JetStreamMaxStore = c.maxStore
			return nil
		}
	}
	return nil
}

// sharedSQL reports whether the SQL read model is a database other processes may write
// too (PostgreSQL), so that it must be written under a lease. A SQLite file lives in
// this process's data folder, which no other process opens.
func sharedSQL(c sqlConfig) bool {
	return c.driver != "" && c.driver != sqlmodel.DriverSQLite && c.driver != "sqlite3"
}

// Lease keys.
const (
	forwarderLease = "integration-forwarder"
	outboxLease    = "email-outbox"
)

// sqlLeaseKey names the lease of one SQL read model: processes writing the same
// database (same driver, URL and schema, as configured) share it.
func sqlLeaseKey(c sqlConfig) string {
	sum := sha256.Sum256([]byte(c.driver + "\x00" + c.url + "\x00" + c.schema))
	return "sql-readmodel-" + hex.EncodeToString(sum[:8])
}

// startSingletons starts the work one process of a deployment does at a time: the
// integration event forwarder, the email outbox when there is one (nil: none), and,
// when it is shared, the SQL read model's writer.
// With the embedded server (one process per data folder) they simply run; with
// --nats-url each runs while this process holds its lease in the KV bucket
// ticketcore_leases, and stops when the lease is lost. The returned function stops
// them and waits (a few seconds at most) until they have saved their checkpoints and
// released their leases, so that another process takes over at once.
func startSingletons(ctx, runCtx context.Context, cfg config, events eventstore.Store, store *jetstream.Store, outbox *email.Outbox, log *slog.Logger) (stop func(), err error) {
	forwarder, err := natsapi.NewForwarder(ctx, events, store.Conn(), log, natsapi.Replicas(cfg.cluster.replicas))
	if err != nil {
		return nil, err
	}
	runForwarder := func(ctx context.Context) {
		keepRunning(ctx, "integration event forwarder", forwarder.Run, log)
	}
	var runSQL func(context.Context)
	if sharedSQL(cfg.sql) {
		rebuild := cfg.sql.rebuild
		runSQL = func(ctx context.Context) {
			runSharedSQLWriter(ctx, cfg, events, rebuild, log)
			rebuild = false // once, by the first term of this process
		}
	}
	type job struct {
		lease string // its lease key (unused with the embedded server)
		work  func(context.Context)
	}
	jobs := []job{{forwarderLease, runForwarder}}
	if outbox != nil {
		jobs = append(jobs, job{outboxLease, func(ctx context.Context) {
			keepRunning(ctx, "email outbox", outbox.Run, log)
		}})
	}
	if runSQL != nil {
		jobs = append(jobs, job{sqlLeaseKey(cfg.sql), runSQL})
	}
	singleCtx, cancel := context.WithCancel(runCtx)
	var wg sync.WaitGroup
	stop = func() {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			log.Warn("singletons still stopping after 5s; leaving them")
		}
	}
	for _, j := range jobs {
		if cfg.natsURL == "" {
			wg.Go(func() { j.work(singleCtx) })
			continue
		}
		l, err := natsapi.NewLease(ctx, natsapi.LeaseConfig{
			Conn: store.Conn(), Key: j.lease, TTL: cfg.cluster.leaseTTL, Replicas: cfg.cluster.replicas, Log: log,
		})
		if err != nil {
			stop()
			return nil, err
		}
		log.Info("runs while this process holds its lease", "lease", j.lease, "owner", l.Owner())
		wg.Go(func() { _ = l.Run(singleCtx, j.work) })
	}
	return stop, nil
}

// runSharedSQLWriter writes the shared SQL read model until ctx ends: a model of its
// own (which reads the checkpoint the previous writer left), fed by a runner of its
// own. If a commit finds that another process moved the checkpoint (a previous lease
// holder across the expiry boundary), nothing of the batch was stored; the model is
// dropped and a new one opened from the current checkpoint.
func runSharedSQLWriter(ctx context.Context, cfg config, events eventstore.Store, rebuild bool, log *slog.Logger) {
	for ctx.Err() == nil {
		m, err := openReadModel(ctx, cfg, log)
		if err != nil {
			log.Warn("SQL read model writer: open failed; trying again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
			continue
		}
		termCtx, cancel := context.WithCancel(ctx)
		go func() {
			ticker := time.NewTicker(time.Second)
			defer ticker.Stop()
			for {
				select {
				case <-termCtx.Done():
					return
				case <-ticker.C:
					if err := m.Err(); errors.Is(err, sqlmodel.ErrOtherWriter) {
						log.Warn("SQL read model writer: another process wrote the tables; reopening from their checkpoint", "err", err)
						cancel()
						return
					}
				}
			}
		}()
		if rebuild {
			rebuild = false
			go func() {
				if _, err := m.Rebuild(termCtx, events); err != nil && termCtx.Err() == nil {
					log.Error("SQL read model rebuild failed; the previous tables stay in place", "err", err)
				}
			}()
		}
		runner := projections.NewRunner(events, log, m)
		keepRunning(termCtx, "SQL read model", runner.Run, log)
		cancel()
		if err := m.Close(); err != nil && !errors.Is(err, sqlmodel.ErrOtherWriter) {
			log.Warn("SQL read model writer: close", "err", err)
		}
	}
}

// natsServerLog passes the embedded NATS server's warnings and errors (such as
// "JetStream out of resources, will be DISABLED" on a full disk) to ticketd's log; its
// notices, debug and trace lines are dropped.
type natsServerLog struct{ log *slog.Logger }

func (l natsServerLog) Noticef(string, ...any) {}
func (l natsServerLog) Debugf(string, ...any)  {}
func (l natsServerLog) Tracef(string, ...any)  {}
func (l natsServerLog) Warnf(format string, v ...any) {
	l.log.Warn("embedded NATS: " + fmt.Sprintf(format, v...))
}
func (l natsServerLog) Errorf(format string, v ...any) {
	l.log.Error("embedded NATS: " + fmt.Sprintf(format, v...))
}
func (l natsServerLog) Fatalf(format string, v ...any) {
	l.log.Error("embedded NATS (fatal): " + fmt.Sprintf(format, v...))
}
