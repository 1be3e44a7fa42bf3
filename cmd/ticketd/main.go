// Command ticketd is the ticketing service: event store (embedded NATS JetStream by
// default), command handlers, projections and the HTTP API.
package main

import (
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
	"github.com/ticketcore/ticketcore/commands/natsapi"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/projections"
)

// config is the service configuration: each flag also reads an environment variable.
type config struct {
	dataDir  string
	httpAddr string
	natsURL  string
	logJSON  bool
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
	warn, _ := time.ParseDuration(envOr("TICKETD_SLA_WARNING", "0s"))
	fs.DurationVar(&c.slaWarning, "sla-warning", warn, "record a warning this long before an SLA deadline, 0 for none (env TICKETD_SLA_WARNING)")
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
	storeCfg := jetstream.Config{URL: cfg.natsURL}
	if cfg.natsURL == "" {
		dir, err := filepath.Abs(filepath.Join(cfg.dataDir, "jetstream"))
		if err != nil {
			return err
		}
		storeCfg.DataDir = dir
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

	h, err := commands.NewHandler(ctx, store, commands.Options{Logger: log})
	if err != nil {
		return err
	}
	if err := h.SeedDefaults(ctx); err != nil {
		return fmt.Errorf("seed reference data: %w", err)
	}
	tickets := projections.NewTickets()
	runner := projections.NewRunner(store, log, tickets, catalogueFollower{h.Catalogues()})
	pos, err := runner.CatchUp(ctx)
	if err != nil {
		return err
	}
	log.Info("projections caught up", "position", pos, "tickets", tickets.Count())

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	projDone := make(chan error, 1)
	go func() { projDone <- keepRunning(runCtx, "projections", runner.Run, log) }()
	go h.RunScheduler(runCtx, tickets, time.Second, cfg.slaWarning)
	forwarder, err := natsapi.NewForwarder(ctx, store, store.Conn(), log)
	if err != nil {
		return err
	}
	go keepRunning(runCtx, "integration event forwarder", forwarder.Run, log)

	api := &httpapi.Server{Handler: h, Tickets: tickets, Runner: runner, Log: log}
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

// catalogueFollower feeds reference-data changes written by other processes to the
// handler's catalogues. Its checkpoint is always that of the runner's other
// projections, so it never holds the runner back.
type catalogueFollower struct{ c *commands.Catalogues }

func (f catalogueFollower) Name() string { return "catalogues" }
func (f catalogueFollower) Apply(e domain.Event, _ uint64) error {
	f.c.Apply(e)
	return nil
}
func (f catalogueFollower) Position() uint64 { return ^uint64(0) }
func (f catalogueFollower) Reset()           {}
