// Package kurrentdb is an eventstore.Store over KurrentDB (formerly EventStoreDB),
// through its gRPC client (github.com/EventStore/EventStore-Client-Go/v4, package
// esdb).
//
// Mapping:
//
//   - Streams. A port stream is the KurrentDB stream Config.StreamPrefix + name (port
//     names are already [A-Za-z0-9_-]{1,200}). Reads only see streams of that form:
//     KurrentDB's own streams ($-prefixed: $stats, $ce-..., $$metadata...) and events
//     whose type starts with $ are never port events.
//   - Revisions. The port's Revision is the KurrentDB revision (event number) of the
//     stream's last event + 1, so NoStream (0) maps to esdb.NoStream{}, r >= 1 to
//     esdb.StreamRevision{Value: r-1}, AnyRevision to esdb.Any{}. A wrong expected
//     version is ErrConflict.
//   - Event IDs are the KurrentDB event IDs (canonical UUIDs), which KurrentDB uses for
//     idempotency: it accepts the retry of a stored append silently. Append reads the
//     stream's last revision first and reports such a retry as ErrDuplicate.
//   - Global positions come from $all commit positions: see positionScale. They are
//     large, sparse and strictly increasing; the events of one append are at
//     consecutive positions. A position (or a position + 1) decodes back to the commit
//     position where a read of $all starts.
//   - ReadAll and LastPosition read $all (the client offers no server-side filter for
//     plain reads, so they filter on the client); Subscribe is a catch-up subscription
//     to $all with a server-side stream-name filter. Filtered subscriptions also send
//     checkpoints, which can point past the last event: the adapter ignores them and
//     only ever reports the positions of events.
//
// Requirements: KurrentDB, or EventStoreDB 22.6 or later (stream reads must carry
// $all positions), read access to $all. Every append costs two round trips (read the
// stream's last revision, append), three for several events (read back the commit
// position of the first one).
package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ticketcore/ticketcore/eventstore"
)

// openTimeout bounds Open when its context has no deadline.
const openTimeout = 10 * time.Second

// Config says which KurrentDB to use and which part of it.
type Config struct {
	// URL is the KurrentDB connection string, for instance
	// esdb://127.0.0.1:2113?tls=false (insecure single node) or
	// esdb://admin:changeit@node1:2113,node2:2113,node3:2113 (cluster);
	// kurrentdb:// and kurrentdb+discover:// are accepted as esdb:// and esdb+discover://.
	URL string
	// StreamPrefix is prepended to the port's stream names, and the store only sees the
	// streams that start with it: several deployments (or test runs) can share one
	// KurrentDB, each with its own prefix, each seeing an empty store at first. Empty: the
	// store sees every stream whose name is a valid port stream name. It must itself be
	// made of [A-Za-z0-9_-] (at most 100 characters) and should end with a separator,
	// such as "prod-".
	StreamPrefix string
	// StartPosition is a $all commit position (of an event, as the KurrentDB UI or
	// Store.HeadCommitPosition shows it) before which this store has no events: ReadAll,
	// Subscribe and LastPosition never read $all before it. 0 reads $all from its start.
	// It saves scanning a large shared database for a StreamPrefix first used later.
	StartPosition uint64
	// Logger receives the client library's log lines, at debug level. Nil discards them.
	Logger *slog.Logger
}

// Store is the KurrentDB adapter. It is safe for concurrent use.
type Store struct {
	conf   *esdb.Configuration
	url    string // Config.URL, password hidden
	prefix string
	floor  uint64 // Config.StartPosition
	filter *esdb.SubscriptionFilter

	mu     sync.Mutex
	client *esdb.Client // replaced when it gives up: see call
	closed bool
}

var _ eventstore.Store = (*Store)(nil)

// Open connects to KurrentDB and checks that it answers and that $all can be read.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.URL == "" {
		return nil, errors.New("open event store: kurrentdb: no URL")
	}
	if cfg.StreamPrefix != "" && (len(cfg.StreamPrefix) > 100 || !eventstore.ValidStreamName(cfg.StreamPrefix)) {
		return nil, fmt.Errorf("open event store: kurrentdb: stream prefix %q must be at most 100 characters of [A-Za-z0-9_-]", cfg.StreamPrefix)
	}
	if cfg.StartPosition > maxCommitPosition {
		return nil, fmt.Errorf("open event store: kurrentdb: start position %d is too large", cfg.StartPosition)
	}
	shown := redact(cfg.URL)
	conf, err := esdb.ParseConnectionString(esdbScheme(cfg.URL))
	if err != nil {
		if shown != cfg.URL {
			// The parser's message may quote the URL, password included.
			return nil, fmt.Errorf("open event store: kurrentdb %s: invalid connection string", shown)
		}
		return nil, fmt.Errorf("open event store: kurrentdb %s: %w", shown, err)
	}
	conf.Logger = clientLogger(cfg.Logger)
	client, err := esdb.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("open event store: kurrentdb %s: %w", shown, err)
	}
	s := &Store{conf: conf, client: client, url: shown, prefix: cfg.StreamPrefix, floor: cfg.StartPosition, filter: streamFilter(cfg.StreamPrefix)}

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, openTimeout)
		defer cancel()
	}
	if _, err := s.HeadCommitPosition(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open event store: kurrentdb %s: %w", shown, err)
	}
	return s, nil
}

// Close closes the client connection; subscriptions in progress end with an error.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.client.Close()
	}
	return nil
}

// Client is the underlying KurrentDB client, for tools.
func (s *Store) Client() *esdb.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client
}

// call runs f with the client, and once more with a new client if the client had
// given up. The client (v4.2.0) stops for good when it cannot reconnect (its
// discovery fails, as while KurrentDB restarts) and from then on answers every call
// with ErrorCodeConnectionClosed; the store then replaces it. The old one is not
// closed: its connection goroutine has stopped already, and closing its channel
// would make a call still reporting an error to it panic.
func (s *Store) call(f func(c *esdb.Client) error) error {
	c := s.Client()
	err := f(c)
	if code, _ := classify(err); err == nil || code != esdb.ErrorCodeConnectionClosed {
		return err
	}
	s.mu.Lock()
	if !s.closed && s.client == c {
		if fresh, newErr := esdb.NewClient(s.conf); newErr == nil {
			s.client = fresh
		}
	}
	renewed := !s.closed && s.client != c
	s.mu.Unlock()
	if !renewed {
		return err
	}
	return f(s.Client())
}

func (s *Store) readStream(ctx context.Context, name string, opts esdb.ReadStreamOptions, count uint64) (rs *esdb.ReadStream, err error) {
	err = s.call(func(c *esdb.Client) error {
		rs, err = c.ReadStream(ctx, name, opts, count)
		return err
	})
	return rs, err
}

func (s *Store) readAll(ctx context.Context, opts esdb.ReadAllOptions, count uint64) (rs *esdb.ReadStream, err error) {
	err = s.call(func(c *esdb.Client) error {
		rs, err = c.ReadAll(ctx, opts, count)
		return err
	})
	return rs, err
}

func (s *Store) appendToStream(ctx context.Context, name string, opts esdb.AppendToStreamOptions, events []esdb.EventData) (res *esdb.WriteResult, err error) {
	err = s.call(func(c *esdb.Client) error {
		res, err = c.AppendToStream(ctx, name, opts, events...)
		return err
	})
	return res, err
}

func (s *Store) subscribeToAll(ctx context.Context, opts esdb.SubscribeToAllOptions) (sub *esdb.Subscription, err error) {
	err = s.call(func(c *esdb.Client) error {
		sub, err = c.SubscribeToAll(ctx, opts)
		return err
	})
	return sub, err
}

// StreamPrefix is Config.StreamPrefix.
func (s *Store) StreamPrefix() string { return s.prefix }

// URL is the connection string, its password hidden: for logs.
func (s *Store) URL() string { return s.url }

// esdbScheme rewrites the kurrentdb:// schemes newer tools use to the esdb:// ones
// this client parses.
func esdbScheme(u string) string {
	for _, p := range [...][2]string{{"kurrentdb+discover://", "esdb+discover://"}, {"kurrentdb://", "esdb://"}, {"kdb://", "esdb://"}} {
		if rest, ok := strings.CutPrefix(u, p[0]); ok {
			return p[1] + rest
		}
	}
	return u
}

// redact hides the password of a connection string in messages.
func redact(u string) string {
	parsed, err := url.Parse(u)
	if err != nil || parsed.User == nil {
		if err != nil && strings.Contains(u, "@") {
			return "(connection string)"
		}
		return u
	}
	return parsed.Redacted()
}

func clientLogger(log *slog.Logger) esdb.LoggingFunc {
	if log == nil {
		return esdb.NoopLogging()
	}
	return func(level esdb.LogLevel, format string, args ...any) {
		log.Debug(fmt.Sprintf(format, args...), "component", "kurrentdb-client", "client_level", level)
	}
}

// streamFilter is the server-side filter of subscriptions: the stream prefix, or
// stream names that are valid port stream names (which excludes KurrentDB's own
// $-prefixed streams).
func streamFilter(prefix string) *esdb.SubscriptionFilter {
	if prefix != "" {
		return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{prefix}}
	}
	return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Regex: "^[A-Za-z0-9_-]+$"}
}

// portStream is the port name of a KurrentDB event's stream, if the event is one of
// this store's: in a stream of the prefix whose rest is a valid port stream name, of
// a type that is not a KurrentDB system type ($...). The same test as the server-side
// filter, and more: reads of $all filter on the client.
func (s *Store) portStream(ev *esdb.RecordedEvent) (string, bool) {
	if ev == nil || strings.HasPrefix(ev.EventType, "$") {
		return "", false
	}
	name, ok := strings.CutPrefix(ev.StreamID, s.prefix)
	if !ok || !eventstore.ValidStreamName(name) {
		return "", false
	}
	return name, true
}

// recorded converts a KurrentDB event of stream name at port position pos.
func recorded(name string, pos uint64, ev *esdb.RecordedEvent) eventstore.RecordedEvent {
	data := ev.Data
	if data == nil {
		data = []byte{}
	}
	return eventstore.RecordedEvent{
		Stream:     name,
		Revision:   portRevision(ev.EventNumber),
		Position:   pos,
		ID:         ev.EventID.String(),
		Type:       ev.EventType,
		Data:       data,
		RecordedAt: ev.CreatedDate,
	}
}

// portError is the port error a client error stands for, or nil. code is the
// client's classification, grpcCode the gRPC status the client wraps (codes.OK when
// none). KurrentDB answers a wrong expected version in the append response
// (ErrorCodeWrongExpectedVersion); servers that answer it with a gRPC
// FailedPrecondition (also "stream deleted", which the client classifies itself) are
// covered by the append-only mapping in appendError.
func portError(code esdb.ErrorCode, grpcCode codes.Code) error {
	switch code {
	case esdb.ErrorCodeWrongExpectedVersion:
		return eventstore.ErrConflict
	case esdb.ErrorUnavailable, esdb.ErrorCodeDeadlineExceeded, esdb.ErrorCodeNotLeader, esdb.ErrorAborted, esdb.ErrorCodeConnectionClosed:
		// Not ready, too busy, no leader (the client reconnects to the leader),
		// server-side timeout (gRPC Aborted), deadline, a client that gave up (the
		// store replaces it): the operation may be retried.
		return eventstore.ErrUnavailable
	}
	switch grpcCode {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted:
		return eventstore.ErrUnavailable
	case codes.InvalidArgument:
		// Maximum append size exceeded, a missing required property.
		return eventstore.ErrInvalid
	}
	return nil
}

// classify extracts the client's error code and the gRPC status code of err.
func classify(err error) (esdb.ErrorCode, codes.Code) {
	code := esdb.ErrorCodeUnknown
	var esErr *esdb.Error
	if errors.As(err, &esErr) {
		code = esErr.Code()
	}
	grpcCode := codes.OK
	if st, ok := status.FromError(err); ok && st != nil {
		grpcCode = st.Code()
	}
	return code, grpcCode
}

// wrapError adds the port error err stands for, if any, and the context error if the
// context ended (the client reports a cancelled call as a gRPC status, which does not
// match context.Canceled).
func wrapError(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("%s: %w: %w: %w", what, eventstore.ErrUnavailable, ctxErr, err)
	}
	if perr := portError(classify(err)); perr != nil && !errors.Is(err, perr) {
		return fmt.Errorf("%s: %w: %w", what, perr, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// isNotFound reports a read of a stream that does not exist.
func isNotFound(err error) bool {
	code, _ := classify(err)
	return code == esdb.ErrorCodeResourceNotFound
}
