package natsapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/commands"
)

// Config wires the NATS command transport.
type Config struct {
	Handler *commands.Handler
	// Conn is the connection to serve on (ticketd: the store's).
	Conn *nats.Conn
	Log  *slog.Logger
	// ResolveNumber turns a ticket number (TKT-2026-000001) into the ticket's ID, so
	// that commands may name a ticket by number; nil accepts IDs only.
	ResolveNumber func(number string) (id string, ok bool)
	// Auth, when set, requires every command to carry an API token (header
	// Authorization: Bearer tkc_...) whose role may send ticket commands; the token's
	// principal becomes the actor. ticketd always sets it; nil is for tests.
	Auth Authenticator
	// Workers bounds the request/reply commands handled at once (default 64).
	Workers int
	// CommandTimeout bounds the handling of one command (default 30 s).
	CommandTimeout time.Duration
	// MaxDeliveries is how often a durable command that keeps failing is delivered
	// before it is dead-lettered (default 5).
	MaxDeliveries int
	// RedeliveryDelay is the first pause before a failed durable command is delivered
	// again; it doubles with every delivery, up to 30 s (default 1 s).
	RedeliveryDelay time.Duration
	// Replicas of the command streams on a JetStream cluster (default 1).
	Replicas int
}

// Server receives ticket commands over NATS: request/reply on tickets.cmd.<command>
// (core NATS, queue group "ticketd") and durable commands from the JetStream work queue
// tickets.cmdq.<command>. See docs/commands.md.
type Server struct {
	cfg Config
	x   executor
	log *slog.Logger
}

// NewServer checks the configuration and creates the durable command streams and
// consumer if needed.
func NewServer(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Handler == nil || cfg.Conn == nil {
		return nil, errors.New("natsapi: a command server needs a handler and a connection")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = 30 * time.Second
	}
	if cfg.MaxDeliveries <= 0 {
		cfg.MaxDeliveries = 5
	}
	if cfg.RedeliveryDelay <= 0 {
		cfg.RedeliveryDelay = time.Second
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, err
	}
	if err := EnsureStreams(ctx, js, Replicas(cfg.Replicas)); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, x: executor{handler: cfg.Handler, resolve: cfg.ResolveNumber, auth: cfg.Auth}, log: cfg.Log}, nil
}

// Run serves both kinds of commands until ctx ends, then finishes the commands in
// hand and returns nil; it returns an error if either stops on its own (a closed
// connection), so that the caller can run it again.
func (s *Server) Run(ctx context.Context) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- s.runRequests(ctx) }()
	go func() { errs <- processor{s}.run(ctx) }()
	var failed []error
	for i := range 2 {
		err := <-errs
		if i == 0 {
			cancel()
		}
		// Stopped while starting (setting the streams up, say): the cancellation is
		// the stop that was asked for, not a failure.
		if err != nil && !(parent.Err() != nil && errors.Is(err, context.Canceled)) {
			failed = append(failed, err)
		}
	}
	return errors.Join(failed...)
}

// runRequests answers request/reply commands. Each is handled in its own goroutine, at
// most Workers at a time; commands on one ticket are serialised by the handler.
func (s *Server) runRequests(ctx context.Context) error {
	// Commands in hand finish even when ctx ends, within their own timeout.
	base := context.WithoutCancel(ctx)
	slots := make(chan struct{}, s.cfg.Workers)
	var wg sync.WaitGroup
	sub, err := s.cfg.Conn.QueueSubscribe(RequestSubjectPrefix+".*", QueueGroup, func(m *nats.Msg) {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			s.serveRequest(base, m)
		}()
	})
	if err != nil {
		return fmt.Errorf("subscribe to %s.*: %w", RequestSubjectPrefix, err)
	}
	closed := make(chan struct{})
	go func() {
		// The subscription ends with the connection, too.
		for sub.IsValid() && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
		close(closed)
	}()
	<-closed
	if sub.IsValid() {
		// Let the requests already received be answered, then stop.
		if err := sub.Drain(); err == nil {
			for deadline := time.Now().Add(5 * time.Second); sub.IsValid() && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
		}
		_ = sub.Unsubscribe()
	}
	wg.Wait()
	if ctx.Err() == nil {
		return errors.New("request/reply subscription ended")
	}
	return nil
}

// serveRequest handles one request/reply command and answers it (when it has a reply
// subject: a plain publish on tickets.cmd.<command> runs the command unanswered).
func (s *Server) serveRequest(ctx context.Context, m *nats.Msg) {
	name := strings.TrimPrefix(m.Subject, RequestSubjectPrefix+".")
	req, err := decodeRequest(name, natsHeader(m.Header), m.Data, "")
	var o outcome
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.CommandTimeout)
		var res commands.Result
		res, err = s.x.execute(ctx, req)
		cancel()
		if err == nil {
			o = success(res, req.meta.CommandID)
		}
	}
	if err != nil {
		o = failure(err, req.meta.CommandID)
		if o.kind == commands.KindInternal || o.kind == commands.KindUnavailable {
			s.log.Error("NATS command failed", "subject", m.Subject, "command_id", req.meta.CommandID, "err", err)
		}
	}
	if m.Reply == "" {
		return
	}
	reply := &nats.Msg{Subject: m.Reply, Data: o.body, Header: nats.Header{}}
	for k, v := range o.headers {
		reply.Header.Set(k, v)
	}
	if err := s.cfg.Conn.PublishMsg(reply); err != nil {
		s.log.Warn("NATS command: cannot answer", "subject", m.Subject, "err", err)
	}
}
