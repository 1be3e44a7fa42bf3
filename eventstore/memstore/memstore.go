// Package memstore is an in-memory eventstore.Store for unit tests. It keeps every
// event in one slice in global order and passes the same conformance suite
// (eventstore/storetest) as the JetStream adapter.
//
// One difference remains: memstore remembers every event ID of a stream forever, so
// an append whose first event ID is already in the stream is always ErrDuplicate,
// whatever its expected revision. JetStream recognises retries (same events, same
// expected revision) at any time, but other re-appends of stored IDs may come back as
// ErrConflict, or, with AnyRevision after its duplicate window, be stored again.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ticketcore/ticketcore/eventstore"
)

// Store holds the events in memory. The zero value is not usable; call New.
type Store struct {
	mu      sync.Mutex
	log     []eventstore.RecordedEvent // log[i] has Position i+1
	streams map[string]*stream
	// changed is closed (and replaced) on every append and on Close, so that
	// subscribers can wait for news and for their context at the same time,
	// which a sync.Cond cannot do.
	changed chan struct{}
	closed  bool
}

// stream is the per-stream index into the log.
type stream struct {
	revision eventstore.Revision // position of the last event of the stream
	ids      map[string]struct{} // every event ID ever stored in the stream
	indexes  []int               // indexes into Store.log, in stream order
}

// New returns an empty store.
func New() *Store {
	return &Store{
		streams: make(map[string]*stream),
		changed: make(chan struct{}),
	}
}

var _ eventstore.Store = (*Store)(nil)

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, name string, expected eventstore.Revision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(name, events); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: %w", name, err)
	}
	if err := s.lockOpen(ctx, "append "+name); err != nil {
		return eventstore.AppendResult{}, err
	}
	defer s.mu.Unlock()

	current := eventstore.NoStream
	st := s.streams[name]
	if st != nil {
		// Duplicates are checked before the revision: a retry carries the revision the
		// stream had before the first attempt, so it would otherwise look like a conflict.
		if _, ok := st.ids[events[0].ID]; ok {
			return eventstore.AppendResult{}, fmt.Errorf("append %s: event %s: %w", name, events[0].ID, eventstore.ErrDuplicate)
		}
		current = st.revision
	}
	if expected != eventstore.AnyRevision && expected != current {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: expected revision %d, stream is at %d: %w", name, expected, current, eventstore.ErrConflict)
	}

	if st == nil {
		st = &stream{ids: make(map[string]struct{})}
		s.streams[name] = st
	}
	now := time.Now().UTC()
	for _, ev := range events {
		pos := uint64(len(s.log)) + 1
		s.log = append(s.log, eventstore.RecordedEvent{
			Stream:     name,
			Revision:   eventstore.Revision(pos),
			Position:   pos,
			ID:         ev.ID,
			Type:       ev.Type,
			Data:       bytes.Clone(ev.Data), // the caller may reuse its buffer
			RecordedAt: now,
		})
		st.indexes = append(st.indexes, len(s.log)-1)
		st.ids[ev.ID] = struct{}{}
	}
	last := uint64(len(s.log))
	st.revision = eventstore.Revision(last)
	s.notifyLocked()
	return eventstore.AppendResult{Revision: st.revision, LastPosition: last}, nil
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, name string) ([]eventstore.RecordedEvent, error) {
	if err := s.lockOpen(ctx, "read stream "+name); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		return []eventstore.RecordedEvent{}, nil
	}
	out := make([]eventstore.RecordedEvent, 0, len(st.indexes))
	for _, i := range st.indexes {
		out = append(out, copyEvent(s.log[i]))
	}
	return out, nil
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, from uint64, max int) ([]eventstore.RecordedEvent, error) {
	if max <= 0 {
		return nil, fmt.Errorf("read all from %d: max %d must be positive: %w", from, max, eventstore.ErrInvalid)
	}
	if err := s.lockOpen(ctx, fmt.Sprintf("read all from %d", from)); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.readLocked(from, max), nil
}

// readLocked copies up to max events with Position >= from. Lock must be held.
func (s *Store) readLocked(from uint64, max int) []eventstore.RecordedEvent {
	start := from
	if start == 0 {
		start = 1
	}
	if start > uint64(len(s.log)) {
		return []eventstore.RecordedEvent{}
	}
	end := min(uint64(len(s.log)), start-1+uint64(max))
	out := make([]eventstore.RecordedEvent, 0, end-start+1)
	for _, ev := range s.log[start-1 : end] {
		out = append(out, copyEvent(ev))
	}
	return out
}

// subscribeChunk bounds how many events a subscriber copies under the lock at once.
const subscribeChunk = 256

// Subscribe implements eventstore.Store.
func (s *Store) Subscribe(ctx context.Context, from uint64, handle func(eventstore.RecordedEvent) error) error {
	next := max(from, 1)
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return fmt.Errorf("subscribe at %d: store closed: %w", next, eventstore.ErrUnavailable)
		}
		batch := s.readLocked(next, subscribeChunk)
		changed := s.changed
		s.mu.Unlock()

		// handle runs without the lock so that it may append or read.
		for _, ev := range batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := handle(ev); err != nil {
				return err
			}
			next = ev.Position + 1
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// ReadAt implements eventstore.Store.
func (s *Store) ReadAt(ctx context.Context, name string, positions []uint64) ([]eventstore.RecordedEvent, error) {
	if err := s.lockOpen(ctx, "read "+name+" at positions"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make([]eventstore.RecordedEvent, len(positions))
	for i, pos := range positions {
		if pos == 0 || pos > uint64(len(s.log)) || s.log[pos-1].Stream != name {
			return nil, fmt.Errorf("read %s at position %d: no event of the stream there: %w", name, pos, eventstore.ErrInvalid)
		}
		out[i] = copyEvent(s.log[pos-1])
	}
	return out, nil
}

// LastEventID implements eventstore.Store.
func (s *Store) LastEventID(ctx context.Context, name string) (string, error) {
	if err := s.lockOpen(ctx, "last event of "+name); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		return "", nil
	}
	return s.log[st.indexes[len(st.indexes)-1]].ID, nil
}

// RevisionAt implements eventstore.Store: as in the JetStream adapter, a stream's
// revision is the position of its last event.
func (s *Store) RevisionAt(pos, _ uint64) eventstore.Revision { return eventstore.Revision(pos) }

// LastPosition implements eventstore.Store.
func (s *Store) LastPosition(ctx context.Context) (uint64, error) {
	if err := s.lockOpen(ctx, "last position"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	return uint64(len(s.log)), nil
}

// lockOpen locks the store for the operation named op, unless ctx has ended or the
// store is closed: then it returns why, wrapped with op, and leaves the store unlocked.
func (s *Store) lockOpen(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("%s: store closed: %w", op, eventstore.ErrUnavailable)
	}
	return nil
}

// Close ends every Subscribe and makes every later call fail with ErrUnavailable.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.notifyLocked()
	}
	return nil
}

// notifyLocked wakes every waiting subscriber. Lock must be held.
func (s *Store) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// copyEvent returns ev with its own Data, so callers cannot alter the stored events.
func copyEvent(ev eventstore.RecordedEvent) eventstore.RecordedEvent {
	ev.Data = bytes.Clone(ev.Data)
	return ev
}
