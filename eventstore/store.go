// Package eventstore defines the event store port used by the command handlers and
// the projections, and holds its adapters (memory, JetStream) and the conformance
// suite every adapter must pass.
//
// The port knows nothing of tickets: it stores opaque, already-serialised events in
// named streams, with optimistic concurrency per stream and one global order.
package eventstore

import (
	"context"
	"errors"
	"time"
)

// Revision is an adapter-specific, per-stream concurrency token: the value returned for
// the last event of a stream is what the next Append must expect. Callers treat it as
// opaque (JetStream uses the global sequence of the stream's last message, the memory
// adapter the same); NoStream means "the stream must not exist yet".
type Revision uint64

// NoStream is the expected revision of a stream that has no event yet.
const NoStream Revision = 0

// AnyRevision skips the concurrency check (reference data that tolerates last-writer-wins
// must not use it; it exists for imports and tests).
const AnyRevision Revision = ^Revision(0)

// EventData is one event to append. ID is a UUID that also serves as the idempotency key:
// appending an event whose ID the store already holds in the same stream is a duplicate.
type EventData struct {
	ID   string
	Type string
	Data []byte
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	Stream   string
	Revision Revision // the stream's revision once this event is stored
	Position uint64   // global position, strictly increasing across all streams, from 1
	ID       string
	Type     string
	// Data is the reader's: a store never writes into it once it has handed it over,
	// so that decoding may keep views of it (domain.DecodeEventNoCopy).
	Data       []byte
	RecordedAt time.Time
}

// AppendResult tells where the appended events landed.
type AppendResult struct {
	Revision     Revision // new revision of the stream (expect this on the next append)
	LastPosition uint64   // global position of the last appended event
}

// Store is the port. Implementations must be safe for concurrent use.
type Store interface {
	// Append stores events at the end of stream, all or nothing, provided the stream is
	// at revision expected. A retry of an append whose events are already stored (same
	// event IDs, same stream) returns ErrDuplicate and stores nothing more.
	Append(ctx context.Context, stream string, expected Revision, events []EventData) (AppendResult, error)
	// ReadStream returns the events of one stream in order; an unknown stream gives an
	// empty slice and no error.
	ReadStream(ctx context.Context, stream string) ([]RecordedEvent, error)
	// ReadAll returns up to max events with Position >= from, in global order.
	ReadAll(ctx context.Context, from uint64, max int) ([]RecordedEvent, error)
	// Subscribe calls handle for every event with Position >= from, in global order:
	// first the stored ones (catch-up), then new ones as they are appended (live). It
	// returns when ctx ends (with ctx.Err()) or when handle returns an error.
	Subscribe(ctx context.Context, from uint64, handle func(RecordedEvent) error) error
	// LastPosition is the global position of the newest stored event (0 when empty).
	LastPosition(ctx context.Context) (uint64, error)
	// ReadAt returns the events of stream stored at the given global positions, in the
	// order given. A position that holds no event of stream is an error wrapping
	// ErrInvalid. A reader that knows where a stream's events are (a read model) reads
	// them so: a store may have to search for the events of one stream among those of
	// every other (JetStream scans its file blocks).
	ReadAt(ctx context.Context, stream string, positions []uint64) ([]RecordedEvent, error)
	// LastEventID is the ID of the newest event of stream ("" when it has none), as of
	// every append acknowledged before the call: a reader that holds a stream's events
	// checks with it that they are current without reading the stream again.
	LastEventID(ctx context.Context, stream string) (string, error)
	// RevisionAt is the revision of a stream whose last event is its n-th (from 1),
	// stored at global position pos: what Append returned for it. A reader of the
	// global order (the command handler's decision cache) can then append after what it
	// read without reading the stream again.
	RevisionAt(pos, n uint64) Revision
	Close() error
}

var (
	// ErrConflict: the stream is not at the expected revision.
	ErrConflict = errors.New("eventstore: wrong expected revision")
	// ErrDuplicate: the events were already appended (an idempotent retry).
	ErrDuplicate = errors.New("eventstore: events already appended")
	// ErrInvalid: the append itself is malformed (bad stream name, empty batch, too large).
	ErrInvalid = errors.New("eventstore: invalid append")
	// ErrUnavailable: the store cannot take writes now (full disk, no quorum); retryable.
	ErrUnavailable = errors.New("eventstore: unavailable")
)

// ValidStreamName reports whether name can be used as a stream name by every adapter:
// 1 to 200 characters of [A-Za-z0-9_-] (a single NATS subject token, a KurrentDB stream).
func ValidStreamName(name string) bool {
	if len(name) == 0 || len(name) > 200 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
