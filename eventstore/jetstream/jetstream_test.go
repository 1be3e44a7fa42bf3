package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/eventstore/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		return open(t, jetstream.Config{DataDir: t.TempDir()})
	})
}

// TestExternalServer runs the suite against a server the store does not own, with one
// JetStream stream and subject prefix per store, as several deployments sharing a
// server would.
func TestExternalServer(t *testing.T) {
	srv := runServer(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		i := n.Add(1)
		s := open(t, jetstream.Config{
			URL:           srv.ClientURL(),
			StreamName:    fmt.Sprintf("EVENTS_%d", i),
			SubjectPrefix: fmt.Sprintf("ev%d", i),
			Options:       []nats.Option{nats.Name("storetest")},
		})
		if s.ClientURL() != srv.ClientURL() {
			t.Fatalf("ClientURL = %s, want %s", s.ClientURL(), srv.ClientURL())
		}
		return s
	})
	if !srv.Running() {
		t.Fatal("closing the stores shut the external server down")
	}
}

// TestRestart checks that events, revisions and duplicate detection survive a restart
// of the embedded server on the same directory.
func TestRestart(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	single, batch := newEvents(1), newEvents(3)

	s := open(t, jetstream.Config{DataDir: dir, SyncAlways: true})
	a, err := s.Append(ctx, "ticket-a", eventstore.NoStream, single)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	b, err := s.Append(ctx, "ticket-b", eventstore.NoStream, batch)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t, jetstream.Config{DataDir: dir})
	if last, err := s.LastPosition(ctx); err != nil || last != b.LastPosition {
		t.Fatalf("LastPosition after restart = %d, %v; want %d", last, err, b.LastPosition)
	}
	got, err := s.ReadStream(ctx, "ticket-b")
	if err != nil {
		t.Fatalf("ReadStream: %v", err)
	}
	if len(got) != 3 || got[0].ID != batch[0].ID || got[2].ID != batch[2].ID || got[2].Revision != b.Revision {
		t.Fatalf("ReadStream after restart: %+v", got)
	}
	for _, retry := range []struct {
		stream string
		events []eventstore.EventData
	}{{"ticket-a", single}, {"ticket-b", batch}} {
		if _, err := s.Append(ctx, retry.stream, eventstore.NoStream, retry.events); !errors.Is(err, eventstore.ErrDuplicate) {
			t.Fatalf("retry on %s after restart: err = %v, want ErrDuplicate", retry.stream, err)
		}
	}
	next, err := s.Append(ctx, "ticket-a", a.Revision, newEvents(1))
	if err != nil {
		t.Fatalf("Append at the revision from before the restart: %v", err)
	}
	if next.LastPosition != b.LastPosition+1 {
		t.Fatalf("Append after restart at position %d, want %d", next.LastPosition, b.LastPosition+1)
	}
}

// TestRetryAfterDuplicateWindow checks that a retry is still recognised once
// JetStream has forgotten the message IDs, when the server answers with a wrong
// sequence instead of a duplicate.
func TestRetryAfterDuplicateWindow(t *testing.T) {
	ctx := t.Context()
	s := open(t, jetstream.Config{DataDir: t.TempDir()})
	stream, err := s.JetStream().Stream(ctx, jetstream.DefaultStreamName)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	cfg := stream.CachedInfo().Config
	cfg.Duplicates = 100 * time.Millisecond // the server's minimum
	if _, err := s.JetStream().UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("UpdateStream: %v", err)
	}

	single, batch := newEvents(1), newEvents(3)
	first, err := s.Append(ctx, "ticket-1", eventstore.NoStream, single)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if _, err := s.Append(ctx, "ticket-1", first.Revision, batch); err != nil {
		t.Fatalf("Append: %v", err)
	}
	time.Sleep(400 * time.Millisecond)

	if _, err := s.Append(ctx, "ticket-1", eventstore.NoStream, single); !errors.Is(err, eventstore.ErrDuplicate) {
		t.Fatalf("late retry of one event: err = %v, want ErrDuplicate", err)
	}
	if _, err := s.Append(ctx, "ticket-1", first.Revision, batch); !errors.Is(err, eventstore.ErrDuplicate) {
		t.Fatalf("late retry of a batch: err = %v, want ErrDuplicate", err)
	}
	if _, err := s.Append(ctx, "ticket-1", first.Revision, newEvents(3)); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("other events at the same revision: err = %v, want ErrConflict", err)
	}
	if got, err := s.ReadStream(ctx, "ticket-1"); err != nil || len(got) != 4 {
		t.Fatalf("ReadStream: %d events, %v; want 4", len(got), err)
	}
}

// TestEmbeddedServerListens checks that other clients can reach the embedded server
// and that the store shares its connection.
func TestEmbeddedServerListens(t *testing.T) {
	ctx := t.Context()
	s := open(t, jetstream.Config{DataDir: t.TempDir()})
	if _, err := s.Append(ctx, "ticket-1", eventstore.NoStream, newEvents(2)); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if !strings.HasPrefix(s.ClientURL(), "nats://127.0.0.1:") {
		t.Fatalf("ClientURL = %s, want a local listener", s.ClientURL())
	}
	if !s.Conn().IsConnected() {
		t.Fatal("Conn is not connected")
	}
	if _, err := s.JetStream().Stream(ctx, jetstream.DefaultStreamName); err != nil {
		t.Fatalf("JetStream().Stream: %v", err)
	}

	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("connect to %s: %v", s.ClientURL(), err)
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	stream, err := js.Stream(ctx, jetstream.DefaultStreamName)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := stream.Info(ctx, natsjs.WithSubjectFilter(jetstream.DefaultSubjectPrefix+".>"))
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	if info.State.Msgs != 2 || info.State.Subjects[jetstream.DefaultSubjectPrefix+".ticket-1"] != 2 {
		t.Fatalf("another client sees %d messages on %v, want 2 on ticket-1", info.State.Msgs, info.State.Subjects)
	}
}

func TestOpenWithoutDataDir(t *testing.T) {
	if _, err := jetstream.Open(t.Context(), jetstream.Config{}); err == nil {
		t.Fatal("Open of an embedded server without DataDir succeeded")
	}
}

// TestLimits checks that appends beyond the server's limits are ErrInvalid, not
// retryable errors.
func TestLimits(t *testing.T) {
	ctx := t.Context()
	s := open(t, jetstream.Config{DataDir: t.TempDir()})

	huge := newEvents(1)
	huge[0].Data = make([]byte, 2<<20) // over the default 1 MB max payload
	tooMany := newEvents(1001)         // over the default 1000 messages of an atomic batch
	for name, events := range map[string][]eventstore.EventData{"huge event": huge, "batch of 1001": tooMany} {
		if _, err := s.Append(ctx, "ticket-1", eventstore.NoStream, events); !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("Append of a %s: err = %v, want ErrInvalid", name, err)
		}
	}
	if last, err := s.LastPosition(ctx); err != nil || last != 0 {
		t.Fatalf("LastPosition = %d, %v; want 0", last, err)
	}
}

// TestCloseEndsSubscribe checks that Close does not wait for subscribers to go away.
func TestCloseEndsSubscribe(t *testing.T) {
	s, err := jetstream.Open(t.Context(), jetstream.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(context.Background(), 1, func(eventstore.RecordedEvent) error {
			close(started)
			return nil
		})
	}()
	if _, err := s.Append(t.Context(), "ticket-1", eventstore.NoStream, newEvents(1)); err != nil {
		t.Fatalf("Append: %v", err)
	}
	<-started
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, eventstore.ErrUnavailable) {
			t.Fatalf("Subscribe returned %v after Close, want ErrUnavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe still running 5s after Close")
	}
}

// TestSubscribeRemovesConsumer checks that Subscribe leaves no consumer behind.
func TestSubscribeRemovesConsumer(t *testing.T) {
	s := open(t, jetstream.Config{DataDir: t.TempDir()})
	if _, err := s.Append(t.Context(), "ticket-1", eventstore.NoStream, newEvents(3)); err != nil {
		t.Fatalf("Append: %v", err)
	}
	errStop := errors.New("stop")
	for range 3 {
		err := s.Subscribe(t.Context(), 1, func(eventstore.RecordedEvent) error { return errStop })
		if !errors.Is(err, errStop) {
			t.Fatalf("Subscribe: %v", err)
		}
	}
	stream, err := s.JetStream().Stream(t.Context(), jetstream.DefaultStreamName)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if info.State.Consumers != 0 {
		t.Fatalf("%d consumers left after Subscribe returned, want 0", info.State.Consumers)
	}
}

// open opens a store that is closed when the test ends.
func open(t testing.TB, cfg jetstream.Config) *jetstream.Store {
	t.Helper()
	s, err := jetstream.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// runServer starts a JetStream server with a TCP listener, as a separate deployment
// would be.
func runServer(t testing.TB) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

func newEvents(n int) []eventstore.EventData {
	events := make([]eventstore.EventData, n)
	for i := range events {
		id := uuid.NewString()
		events[i] = eventstore.EventData{
			ID:   id,
			Type: "TicketCommented",
			Data: fmt.Appendf(nil, `{"ticket_id":%q,"author":"agent-%d","body":"Restarted the spooler, printer works again."}`, id, i),
		}
	}
	return events
}
