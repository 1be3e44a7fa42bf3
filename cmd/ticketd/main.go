// Command ticketd is the ticketing service: event store (embedded NATS JetStream by
// default), command handlers, projections and the HTTP API.
package main

import (
	"errors"
	_ "time/tzdata" // the same zone rules on every host, whatever its zoneinfo

	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/commands/httpapi"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/eventstore/kurrentdb"
	"github.com/ticketcore/ticketcore/projections"
)

// config is the service configuration: each flag also reads an environment variable.
type config struct {
	dataDir  string
	httpAddr string
	natsURL  string
	logJSON  bool
	nats     natsConfig
	sql      sqlConfig
	email    emailConfig   // email.go
	cluster  clusterConfig // cluster.go: replicas, leases
	// store selects the event store (jetstream, kurrentdb); eventstoreURL is KurrentDB's.
	store, eventstoreURL string
	// slaWarning is how long before an SLA deadline a warning event is recorded (0: none).
	slaWarning time.Duration
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func parseConfig(args []string) (config, error) {
	var c config
	err := newFlagSet(&c).Parse(args)
	return c, err
}

func newFlagSet(c *config) *flag.FlagSet {
	fs := flag.NewFlagSet("ticketd", flag.ContinueOnError)
	fs.StringVar(&c.dataDir, "data", envOr("TICKETD_DATA", "./data"), "data folder of the embedded event store (env TICKETD_DATA)")
	fs.StringVar(&c.httpAddr, "http", envOr("TICKETD_HTTP", "127.0.0.1:8080"), "HTTP listen address (env TICKETD_HTTP)")
	fs.StringVar(&c.natsURL, "nats-url", envOr("TICKETD_NATS_URL", ""), "external NATS URL; empty runs an embedded server (env TICKETD_NATS_URL)")
	fs.StringVar(&c.store, "store", envOr("TICKETD_STORE", "jetstream"), "event store: jetstream (in NATS) or kurrentdb (at --eventstore-url; NATS then only carries integration events and NATS commands) (env TICKETD_STORE)")
	fs.StringVar(&c.eventstoreURL, "eventstore-url", os.Getenv("EVENTSTORE_URL"), "KurrentDB connection string for --store kurrentdb, e.g. esdb://127.0.0.1:2113?tls=false (env EVENTSTORE_URL)")
	warn, _ := time.ParseDuration(envOr("TICKETD_SLA_WARNING", "0s"))
	fs.DurationVar(&c.slaWarning, "sla-warning", warn, "record a warning this long before an SLA deadline, 0 for none (env TICKETD_SLA_WARNING)")
	addNATSFlags(fs, &c.nats)
	addSQLFlags(fs, &c.sql)
	addEmailFlags(fs, &c.email)
	addClusterFlags(fs, &c.cluster)
	fs.BoolVar(&c.logJSON, "log-json", os.Getenv("TICKETD_LOG_JSON") == "1", "log as JSON lines (env TICKETD_LOG_JSON=1)")
	return fs
}

func main() {
	cfg, err := parseConfig(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	var handler slog.Handler = slog.NewTextHandler(os.Stderr, nil)
	if cfg.logJSON {
		handler = slog.NewJSONHandler(os.Stderr, nil)
	}
	log := slog.New(handler)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("ticketd stopped", "err", err)
		os.Exit(1)
	}
	log.Info("ticketd stopped cleanly")
}

func run(ctx context.Context, cfg config, log *slog.Logger) error {
	events, err := openEventStore(ctx, cfg, log) // nil: the JetStream store below
	if err != nil {
		return err
	}
	if events != nil {
		defer events.Close()
	}
	storeCfg := jetstream.Config{URL: cfg.natsURL}
	if cfg.natsURL == "" {
		dir, err := filepath.Abs(filepath.Join(cfg.dataDir, "jetstream"))
		if err != nil {
			return err
		}
		storeCfg.DataDir = dir
	}
	if err := cfg.nats.apply(&storeCfg, log); err != nil {
		return err
	}
	if err := cfg.cluster.apply(&storeCfg, log); err != nil {
		return err
	}
	store, err := jetstream.Open(ctx, storeCfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if cfg.natsURL == "" {
		log.Info("embedded NATS JetStream started", "data", storeCfg.DataDir, "nats_url", store.ClientURL())
	} else {
		log.Info("connected to NATS", "url", cfg.natsURL)
	}
	if events == nil {
		events = store
	}

	// The in-memory list model; the handler reads a ticket's events where it saw them.
	tickets := projections.NewTickets()
	h, err := commands.NewHandler(ctx, events, commands.Options{Logger: log, EventPositions: tickets.EventPositions})
	if err != nil {
		return err
	}
	if err := h.SeedDefaults(ctx); err != nil {
		return fmt.Errorf("seed reference data: %w", err)
	}
	readModel, err := openReadModel(ctx, cfg, log) // SQL tables for analysts (docs/analytics.md)
	if err != nil {
		return err
	}
	defer readModel.Close()
	automation := projections.NewAutomation() // assignment rules, unreplied alerts (docs/automation.md)
	// The email channel (email.go, docs/email.md).
	mail := newEmailService(cfg.email, cfg.dataDir, h, log)
	// The handler follows what the runner reads: reference-data changes written by other
	// processes reach its catalogues, and ticket events the decision states it caches
	// (Handler.Observe).
	runner := projections.NewRunner(events, log, tickets, automation,
		projections.Follower{Label: "catalogues", Fold: func(e domain.Event, _ uint64) { h.Catalogues().Apply(e) }},
		projections.Follower{Label: "decision states", Fold: h.Observe},
		mail)
	pos, err := runner.CatchUp(ctx)
	if err != nil {
		return err
	}
	log.Info("projections caught up", "position", pos, "tickets", tickets.Count())

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	projDone := make(chan error, 1)
	go func() { projDone <- keepRunning(runCtx, "projections", runner.Run, log) }()
	// The SQL read model, when it is this process's own, follows the store on a runner
	// of its own: command answers then wait for the in-memory models only, and a model
	// catching up (a new file, say) does not hold ticketd's start back. Reports wait for
	// it (httpapi.Server.ReportsRunner). A shared one is written by the holder of its
	// lease, from a runner of its own too (cluster.go).
	var sqlRunner *projections.Runner
	if !sharedSQL(cfg.sql) {
		sqlRunner = projections.NewRunner(events, log, readModel)
		sqlDone := make(chan struct{})
		go func() {
			defer close(sqlDone)
			_ = keepRunning(runCtx, "SQL read model", sqlRunner.Run, log)
		}()
		defer func() { cancelRun(); <-sqlDone }() // before the model is closed
	}
	startReadModelRebuild(runCtx, cfg.sql, readModel, events, log)
	go h.RunScheduler(runCtx, tickets, time.Second, cfg.slaWarning)
	go commands.NewAutomation(h, automation).Run(runCtx, time.Second)
	// The integration event forwarder, the email outbox and a shared SQL model's
	// writer: one process at a time (cluster.go).
	outbox, err := mail.outbox(runner)
	if err != nil {
		return err
	}
	stopSingletons, err := startSingletons(ctx, runCtx, cfg, events, store, outbox, log)
	if err != nil {
		return err
	}
	defer stopSingletons()
	if err := mail.start(runCtx, runner); err != nil {
		return err
	}
	defer mail.stopAndWait()
	if err := serveNATSCommands(ctx, runCtx, h, store, tickets, cfg.cluster.replicas, log); err != nil {
		return err
	}

	if err := ensureAdminToken(ctx, h, cfg.dataDir, log); err != nil {
		return err
	}
	api := &httpapi.Server{Handler: h, Tickets: tickets, Runner: runner, Log: log, Auth: h.Catalogues(), Reports: readModel, ReportsRunner: sqlRunner}
	srv := &http.Server{Addr: cfg.httpAddr, Handler: api.Routes(), ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return err
	}
	log.Info("HTTP API listening", "addr", ln.Addr().String())
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(ln) }()

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-httpDone:
		return fmt.Errorf("http server: %w", err)
	case err := <-projDone:
		return fmt.Errorf("projections: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("HTTP shutdown", "err", err)
	}
	cancelRun()
	<-projDone
	return nil
}

// openEventStore opens the event store --store selects when it is not the JetStream
// store in NATS (nil then). With KurrentDB, ticketd still opens NATS as configured
// (embedded, or --nats-url): the integration event forwarder publishes there and the
// NATS commands are served there; its JetStream event stream is created but stays
// empty.
func openEventStore(ctx context.Context, cfg config, log *slog.Logger) (eventstore.Store, error) {
	switch cfg.store {
	case "jetstream":
		return nil, nil
	case "kurrentdb":
		if cfg.eventstoreURL == "" {
			return nil, errors.New("--store kurrentdb needs --eventstore-url (env EVENTSTORE_URL), such as esdb://127.0.0.1:2113?tls=false")
		}
		s, err := kurrentdb.Open(ctx, kurrentdb.Config{URL: cfg.eventstoreURL, Logger: log})
		if err != nil {
			return nil, err
		}
		log.Info("event store: KurrentDB; NATS carries integration events and NATS commands only", "url", s.URL())
		return s, nil
	}
	return nil, fmt.Errorf("--store %q: want jetstream or kurrentdb", cfg.store)
}

// keepRunning runs a follower (projections, forwarder) until ctx ends, resuming it
// with back-off after a transient error such as a NATS reconnect: each resumes from
// its own checkpoint.
func keepRunning(ctx context.Context, name string, run func(context.Context) error, log *slog.Logger) error {
	backoff := 100 * time.Millisecond
	for {
		err := run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn(name+" stopped; resuming", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// bootstrapTokenCommand is the command ID of the first admin token: several processes
// starting on an empty store issue it once.
const bootstrapTokenCommand = "bootstrap-admin-token"

// ensureAdminToken issues a first admin token when no token exists and writes it to
// admin.token (mode 0600) in the data folder, so that a new installation can be used
// and can issue the tokens of its users.
func ensureAdminToken(ctx context.Context, h *commands.Handler, dataDir string, log *slog.Logger) error {
	if h.Catalogues().TokenCount() > 0 {
		return nil
	}
	issued, err := h.IssueToken(ctx, "admin", domain.RoleAdmin, "", commands.Meta{CommandID: bootstrapTokenCommand, Actor: "system:bootstrap"})
	if errors.Is(err, domain.ErrConflict) {
		log.Info("a first admin token was issued by another process; see its data folder")
		return nil
	}
	if err != nil {
		return fmt.Errorf("issue the first admin token: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	path, err := filepath.Abs(filepath.Join(dataDir, "admin.token"))
	if err != nil {
		return err
	}
	// Written aside and renamed, so that whoever waits for the file (a script, a test)
	// never reads it empty or half written.
	if err := os.WriteFile(path+".new", []byte(issued.Token+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the first admin token: %w", err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		return fmt.Errorf("write the first admin token: %w", err)
	}
	log.Info("first admin token written; use it as 'Authorization: Bearer <token>' to issue users' tokens", "file", path)
	return nil
}
