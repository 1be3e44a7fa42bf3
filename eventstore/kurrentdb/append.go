package kurrentdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	"github.com/ticketcore/ticketcore/eventstore"
)

// Append implements eventstore.Store. KurrentDB stores the events of one append
// atomically and contiguously in its log.
//
// KurrentDB answers the retry of a stored append (same event IDs after the same
// expected revision, or, for AnyRevision, IDs it still remembers) with success and
// the original result, and does not tell it from a new write. So Append first reads
// the revision of the stream's last event: an append whose first event lands at or
// before it stored nothing new, and is ErrDuplicate. Two identical appends racing
// each other can both report success (the second is stored once).
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.Revision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
	}
	data, err := proposedEvents(events)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
	}
	name := s.prefix + stream
	n := uint64(len(events))

	before, existed, err := s.lastEventNumber(ctx, name)
	if err != nil {
		return eventstore.AppendResult{}, wrapError(ctx, "append "+stream+": read the stream's revision", err)
	}
	res, err := s.appendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: expectedRevision(expected)}, data)
	if err != nil {
		return eventstore.AppendResult{}, appendError(ctx, stream, expected, err)
	}
	// NextExpectedVersion is the event number of the last event of the append (the
	// stored one, for an idempotent retry).
	last := res.NextExpectedVersion
	if last+1 < n {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: KurrentDB reported revision %d after appending %d events", stream, last, n)
	}
	first := last + 1 - n
	if existed && first <= before {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: event %s already stored at revision %d: %w", stream, events[0].ID, portRevision(first), eventstore.ErrDuplicate)
	}

	// The append's answer carries the commit position of its last event; the port
	// position is based on its first (see positionScale).
	base := res.CommitPosition
	if n > 1 || base == 0 {
		base, err = s.commitPositionOf(ctx, name, first, events[0].ID)
		if err != nil {
			// The events are stored: a retry will say ErrDuplicate.
			return eventstore.AppendResult{}, wrapError(ctx, fmt.Sprintf("append %s: appended at revision %d, reading back its position", stream, portRevision(last)), err)
		}
	}
	pos, err := encodePosition(base, int(n-1))
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
	}
	return eventstore.AppendResult{Revision: portRevision(last), LastPosition: pos}, nil
}

// proposedEvents converts the port's events, which ValidateAppend checked.
func proposedEvents(events []eventstore.EventData) ([]esdb.EventData, error) {
	if len(events) > maxAppendEvents {
		return nil, fmt.Errorf("%d events, at most %d in one append: %w", len(events), maxAppendEvents, eventstore.ErrInvalid)
	}
	data := make([]esdb.EventData, len(events))
	for i, ev := range events {
		id, err := uuid.Parse(ev.ID)
		// Only the canonical form reads back as the same string; the nil UUID would be
		// replaced by a random one by the client.
		if err != nil || id == uuid.Nil || id.String() != ev.ID {
			return nil, fmt.Errorf("event %d: ID %q is not a canonical (lower-case, hyphenated) UUID: %w", i, ev.ID, eventstore.ErrInvalid)
		}
		if strings.HasPrefix(ev.Type, "$") {
			return nil, fmt.Errorf("event %d: type %q: types starting with $ are KurrentDB's: %w", i, ev.Type, eventstore.ErrInvalid)
		}
		contentType := esdb.ContentTypeBinary
		if len(ev.Data) > 0 && json.Valid(ev.Data) {
			// Marked JSON so that KurrentDB's UI and projections can read it; the bytes
			// are stored as given either way.
			contentType = esdb.ContentTypeJson
		}
		var meta []byte
		if len(events) > 1 {
			meta = appendMetadata(i, len(events))
		}
		data[i] = esdb.EventData{EventID: id, EventType: ev.Type, ContentType: contentType, Data: ev.Data, Metadata: meta}
	}
	return data, nil
}

// appendError maps a failed append to the port's errors, with context. Anything that
// is not a definite answer of the server (lost connection, timeout, cancelled
// context) is ErrUnavailable: the append may or may not have happened, and a retry
// will tell (ErrDuplicate if it had).
func appendError(ctx context.Context, stream string, expected eventstore.Revision, err error) error {
	what := "append " + stream
	code, grpcCode := classify(err)
	switch {
	case code == esdb.ErrorCodeWrongExpectedVersion:
		return fmt.Errorf("%s: expected revision %d: %w: %w", what, expected, eventstore.ErrConflict, err)
	case code == esdb.ErrorCodeStreamDeleted:
		return fmt.Errorf("%s: the stream was deleted in KurrentDB: %w", what, err)
	case code == esdb.ErrorCodeUnknown && grpcCode == codes.FailedPrecondition:
		// Wrong expected version answered as a gRPC error (older servers).
		return fmt.Errorf("%s: expected revision %d: %w: %w", what, expected, eventstore.ErrConflict, err)
	}
	return wrapError(ctx, what, err)
}

// lastEventNumber is the event number of the stream's last event, if it has one.
func (s *Store) lastEventNumber(ctx context.Context, name string) (uint64, bool, error) {
	ev, err := s.readOne(ctx, name, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}, RequiresLeader: true})
	if err != nil || ev == nil {
		return 0, false, err
	}
	return ev.EventNumber, true, nil
}

// commitPositionOf reads the commit position of the stream's event number n, which
// must be the event id.
func (s *Store) commitPositionOf(ctx context.Context, name string, n uint64, id string) (uint64, error) {
	ev, err := s.readOne(ctx, name, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(n), RequiresLeader: true})
	if err != nil {
		return 0, err
	}
	if ev == nil || ev.EventNumber != n || ev.EventID.String() != id {
		return 0, fmt.Errorf("event %d of %s is not event %s", n, name, id)
	}
	if err := checkPosition(ev); err != nil {
		return 0, err
	}
	return ev.Position.Commit, nil
}

// readOne reads one event of a stream; nil when there is none there.
func (s *Store) readOne(ctx context.Context, name string, opts esdb.ReadStreamOptions) (*esdb.RecordedEvent, error) {
	rs, err := s.readStream(ctx, name, opts, 1)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	re, err := rs.Recv()
	if errors.Is(err, io.EOF) || err != nil && isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return re.OriginalEvent(), nil
}
