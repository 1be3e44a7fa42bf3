// Package jetstream is the production eventstore.Store, over NATS JetStream.
//
// All events live in one JetStream stream. Each event stream is one subject,
// <prefix>.<stream name>, so the JetStream sequence is the global position and the
// sequence of a subject's last message is the stream's revision. Appends use the
// per-subject expected-last-sequence check for optimistic concurrency, the message ID
// (the event ID) for deduplication, and atomic batch publish (nats-server 2.12+) for
// appends of several events. ReadStream uses batched direct gets by subject
// (nats-server 2.11+); ReadAll and Subscribe use an ordered consumer.
//
// Direct gets may be answered by any replica of a replicated stream, so a ReadStream
// that follows a write can miss it for a moment; the revision check of the next
// append catches that as ErrConflict.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/eventstore"
)

// Defaults of Config.
const (
	DefaultStreamName    = "TICKETS_EVENTS"
	DefaultSubjectPrefix = "tkt.ev"
)

const (
	// duplicateWindow is how long JetStream remembers message IDs. Retries within it
	// are recognised by the server; later ones by Append itself (see resolveConflict):
	// every append carries an expected revision, so the window is only a shortcut. It
	// is short because the server keeps every ID of the window in memory, and reloads
	// them when it starts: 2 minutes at 25 000 appends a second were 70 MB of heap, and
	// a rebuild started right after the writes peaked at 1.1x the store's size instead
	// of 0.7x. At 40 000 appends a second, a 30-second window held 1.2 million IDs, two
	// thirds of the live objects of the process that the garbage collector marks on
	// every cycle; with 5 seconds, 4 concurrent commands stored 1.87x to 2.07x the raw
	// publish rate instead of 1.65x to 1.89x (four runs each, in alternation).
	duplicateWindow = 5 * time.Second
	// requestTimeout bounds a request whose context has no deadline.
	requestTimeout = 5 * time.Second
	// startTimeout bounds the start of the embedded server.
	startTimeout = 10 * time.Second
	// drainPoll is how often Close checks whether the drain has finished.
	drainPoll = 5 * time.Millisecond
)

// Config says where the events are stored.
type Config struct {
	// URL of the NATS servers to connect to (comma separated). Empty starts an
	// embedded server in this process; it listens on 127.0.0.1 on a random port
	// (see ClientURL), without authentication unless ConfigureServer adds it.
	URL string
	// DataDir is the embedded server's storage directory; required when URL is empty.
	DataDir string
	// StreamName is the JetStream stream holding the events. Default DefaultStreamName.
	StreamName string
	// SubjectPrefix is prepended to stream names to form subjects; the stream owns
	// <SubjectPrefix>.>. Default DefaultSubjectPrefix.
	SubjectPrefix string
	// Replicas of the JetStream stream, set at every Open. 0 keeps the count of an
	// existing stream (so that a tool opening the store does not change it) and
	// creates a new one with 1.
	Replicas int
	// SyncAlways makes the embedded server fsync every write before acknowledging it.
	// A remote server is configured on its own side; this field does not reach it.
	SyncAlways bool
	// Options are passed to nats.Connect (credentials, TLS, name...).
	Options []nats.Option
	// ConfigureServer, when set, adjusts the embedded server's options before it
	// starts (users and permissions, for instance; the store's own connection then
	// needs credentials in Options). It does not reach a remote server.
	ConfigureServer func(*server.Options) error
	// ServerLogger, when set, receives the embedded server's log, which tells why
	// JetStream refuses or stops (a full disk, say). Default: the server logs nothing.
	ServerLogger server.Logger
	// AppendConns is how many connections appends are spread over, and, with the
	// embedded server, how many pipes (pipe.go) appends take first. Default
	// DefaultAppendConns; 1 sends them on the store's one connection.
	AppendConns int
}

// DefaultAppendConns is the default of Config.AppendConns. A NATS connection has one
// reader goroutine on each side, which every acknowledgement goes through: concurrent
// appends on a single connection queue behind it, and a few connections let them
// overlap (measured: 4 concurrent appenders store 1.2x to 1.4x as many events a second
// over 4 connections as over one; more connections add nothing on 2 cores). Pipes
// likewise: 4 appenders on a pipe each stored 1.17x to 1.35x what they stored with
// their requests multiplexed on one pipe, a reader goroutine handing out the answers.
const DefaultAppendConns = 4

// Store is the JetStream adapter. It is safe for concurrent use.
type Store struct {
	nc *nats.Conn
	// appendConns are the connections appends take turns on; the first is nc.
	appendConns []*nats.Conn
	nextConn    atomic.Uint32
	pipes       *pipePool // appends to the embedded server, nil when remote (pipe.go)
	js          natsjs.JetStream
	stream      natsjs.Stream
	srv         *server.Server // the embedded server, nil when connected to URL
	url         string

	streamName string
	prefix     string // subject prefix, with the trailing dot
	getSubject string // direct get API subject of the stream
	ackPrefix  []byte // how the stream's PubAcks start (parsePubAck)
	replicated bool   // more than one replica: ReadStream asks the leader too (replicated.go)

	closeOnce sync.Once
	closeErr  error
}

var _ eventstore.Store = (*Store)(nil)

// Open connects to JetStream (starting the embedded server if cfg.URL is empty) and
// creates the stream, or updates its configuration if it exists.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.StreamName == "" {
		cfg.StreamName = DefaultStreamName
	}
	if cfg.SubjectPrefix == "" {
		cfg.SubjectPrefix = DefaultSubjectPrefix
	}

	s := &Store{
		url:        cfg.URL,
		streamName: cfg.StreamName,
		prefix:     cfg.SubjectPrefix + ".",
		getSubject: "$JS.API.DIRECT.GET." + cfg.StreamName,
		ackPrefix:  []byte(`{"stream":"` + cfg.StreamName + `","seq":`),
	}
	opts := cfg.Options
	if cfg.URL == "" {
		srv, err := startServer(cfg)
		if err != nil {
			return nil, err
		}
		s.srv = srv
		s.url = srv.ClientURL()
		// Our own connection skips the network; the listener is there for tools.
		opts = append([]nats.Option{nats.InProcessServer(srv)}, cfg.Options...)
	}

	nc, err := nats.Connect(s.url, opts...)
	if err != nil {
		s.shutdownServer()
		return nil, fmt.Errorf("open event store: connect to %s: %w", s.url, err)
	}
	s.nc = nc
	s.appendConns = []*nats.Conn{nc}
	if cfg.AppendConns == 0 {
		cfg.AppendConns = DefaultAppendConns
	}
	for len(s.appendConns) < cfg.AppendConns {
		extra, err := nats.Connect(s.url, opts...)
		if err != nil {
			s.closeConns()
			s.shutdownServer()
			return nil, fmt.Errorf("open event store: connect to %s: %w", s.url, err)
		}
		s.appendConns = append(s.appendConns, extra)
	}

	if s.srv != nil {
		if s.pipes, err = newPipePool(s.srv, cfg.Options, cfg.AppendConns); err != nil {
			s.closeConns()
			s.shutdownServer()
			return nil, fmt.Errorf("open event store: %w", err)
		}
	}

	if err := s.setup(ctx, cfg); err != nil {
		s.pipes.close()
		s.closeConns()
		s.shutdownServer()
		return nil, fmt.Errorf("open event store: %w", err)
	}
	return s, nil
}

// appendConn is the connection for the next append: all of one append's messages go
// on it, in order.
func (s *Store) appendConn() *nats.Conn {
	n := s.nextConn.Add(1)
	return s.appendConns[int(n)%len(s.appendConns)]
}

func (s *Store) closeConns() {
	for _, c := range s.appendConns {
		c.Close()
	}
}

func (s *Store) setup(ctx context.Context, cfg Config) error {
	js, err := natsjs.New(s.nc)
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
		if existing, err := js.Stream(ctx, cfg.StreamName); err == nil {
			cfg.Replicas = existing.CachedInfo().Config.Replicas
		}
	}
	stream, err := js.CreateOrUpdateStream(ctx, natsjs.StreamConfig{
		Name:     cfg.StreamName,
		Subjects: []string{cfg.SubjectPrefix + ".>"},
		Storage:  natsjs.FileStorage,
		Replicas: cfg.Replicas,
		// An event store keeps every event: no limits. The discard policy only
		// matters if an operator adds one.
		Retention:          natsjs.LimitsPolicy,
		Discard:            natsjs.DiscardOld,
		MaxMsgs:            -1,
		MaxBytes:           -1,
		MaxMsgsPerSubject:  -1,
		Duplicates:         duplicateWindow,
		AllowAtomicPublish: true,
		AllowDirect:        true,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", cfg.StreamName, err)
	}
	s.js, s.stream = js, stream
	s.replicated = stream.CachedInfo().Config.Replicas > 1
	return nil
}

// startServer starts the embedded server and waits until it accepts clients.
func startServer(cfg Config) (*server.Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("open event store: an embedded server needs Config.DataDir")
	}
	opts := &server.Options{
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   cfg.DataDir,
		SyncAlways: cfg.SyncAlways,
		NoLog:      true,
		NoSigs:     true,
	}
	if cfg.ConfigureServer != nil {
		if err := cfg.ConfigureServer(opts); err != nil {
			return nil, fmt.Errorf("open event store: embedded server options: %w", err)
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("open event store: embedded server: %w", err)
	}
	if cfg.ServerLogger != nil {
		srv.SetLogger(cfg.ServerLogger, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(startTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("open event store: embedded server not ready after %v", startTimeout)
	}
	return srv, nil
}

// Conn is the store's connection, for other uses of the same servers (KV buckets,
// request/reply). Close drains it.
func (s *Store) Conn() *nats.Conn { return s.nc }

// JetStream is the store's JetStream context.
func (s *Store) JetStream() natsjs.JetStream { return s.js }

// ClientURL is the URL other clients can connect to: the embedded server's listener,
// or Config.URL.
func (s *Store) ClientURL() string { return s.url }

// Close drains the connection, so that requests in flight get their answers, then shuts
// the embedded server down. Subscribe calls in progress return. Calls after the first
// return the first one's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.pipes.close()
		for _, c := range s.appendConns {
			if err := c.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				s.closeErr = fmt.Errorf("close event store: drain: %w", err)
				c.Close()
			}
		}
		// Drain works in the background and closes the connection when done (or after
		// the connection's DrainTimeout). Polling is the one way to wait for that which
		// does not depend on the closed callback, which an option can turn off.
		for _, c := range s.appendConns {
			for !c.IsClosed() {
				time.Sleep(drainPoll)
			}
		}
		s.shutdownServer()
	})
	return s.closeErr
}

func (s *Store) shutdownServer() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
}

// withTimeout bounds ctx by requestTimeout unless it already has a deadline, so that
// no request waits forever for a server that does not answer.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, requestTimeout)
}
