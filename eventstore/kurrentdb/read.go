package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"io"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/ticketcore/ticketcore/eventstore"
)

// readPage is how many events one read request asks for.
const readPage = 1000

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error) {
	events := []eventstore.RecordedEvent{}
	if !eventstore.ValidStreamName(stream) {
		return events, nil
	}
	name := s.prefix + stream
	var c chain
	from := uint64(0)
	for {
		rs, err := s.readStream(ctx, name, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(from)}, readPage)
		if err != nil {
			return nil, wrapError(ctx, "read stream "+stream, err)
		}
		n, err := func() (int, error) {
			defer rs.Close()
			n := 0
			for {
				re, err := rs.Recv()
				if errors.Is(err, io.EOF) {
					return n, nil
				}
				if err != nil {
					return n, err
				}
				n++
				ev := re.OriginalEvent()
				if ev == nil {
					continue
				}
				from = ev.EventNumber + 1
				if _, ok := s.portStream(ev); !ok {
					continue
				}
				pos, err := c.next(ev)
				if err != nil {
					return n, err
				}
				events = append(events, recorded(stream, pos, ev))
			}
		}()
		if err != nil {
			if isNotFound(err) {
				return events, nil
			}
			return nil, wrapError(ctx, "read stream "+stream, err)
		}
		if n < readPage {
			return events, nil
		}
	}
}

// ReadAll implements eventstore.Store. The client has no filter for plain reads of
// $all, so ReadAll reads every event from the start position on and keeps this
// store's.
func (s *Store) ReadAll(ctx context.Context, from uint64, max int) ([]eventstore.RecordedEvent, error) {
	if max <= 0 {
		return nil, fmt.Errorf("read all: max %d: %w", max, eventstore.ErrInvalid)
	}
	var events []eventstore.RecordedEvent
	var c chain
	var last uint64
	err := s.scanForward(ctx, s.startAt(from), func(ev *esdb.RecordedEvent) (bool, error) {
		name, ok := s.portStream(ev)
		if !ok {
			return true, nil
		}
		pos, err := c.next(ev)
		if err != nil {
			return false, err
		}
		if pos < from {
			return true, nil
		}
		if len(events) > 0 && pos <= last {
			return false, fmt.Errorf("event %d of %s at position %d after position %d: $all is out of order for the adapter", ev.EventNumber, ev.StreamID, pos, last)
		}
		last = pos
		events = append(events, recorded(name, pos, ev))
		return len(events) < max, nil
	})
	if err != nil {
		return nil, wrapError(ctx, fmt.Sprintf("read all from %d", from), err)
	}
	return events, nil
}

// ReadAt implements eventstore.Store. KurrentDB reads a stream by its own index, so
// reading the whole stream costs it no search.
func (s *Store) ReadAt(ctx context.Context, stream string, positions []uint64) ([]eventstore.RecordedEvent, error) {
	events, err := s.ReadStream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return eventstore.PickPositions(stream, events, positions)
}

// LastEventID implements eventstore.Store: it reads the stream backwards, one event.
func (s *Store) LastEventID(ctx context.Context, stream string) (string, error) {
	if !eventstore.ValidStreamName(stream) {
		return "", nil
	}
	rs, err := s.readStream(ctx, s.prefix+stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return "", wrapError(ctx, "last event of "+stream, err)
	}
	defer rs.Close()
	re, err := rs.Recv()
	switch {
	case errors.Is(err, io.EOF) || isNotFound(err):
		return "", nil
	case err != nil:
		return "", wrapError(ctx, "last event of "+stream, err)
	case re.OriginalEvent() == nil:
		return "", nil
	}
	return re.OriginalEvent().EventID.String(), nil
}

// RevisionAt implements eventstore.Store: a stream's revision is its last event's
// number, from 0, plus one (portRevision).
func (s *Store) RevisionAt(_, n uint64) eventstore.Revision { return portRevision(n - 1) }

// LastPosition implements eventstore.Store: it reads $all backwards to the newest
// event of this store, then to the first event of its append.
func (s *Store) LastPosition(ctx context.Context) (uint64, error) {
	var appended []*esdb.RecordedEvent // the newest event's append, newest first
	err := s.scanBackward(ctx, func(ev *esdb.RecordedEvent) (bool, error) {
		if _, ok := s.portStream(ev); !ok {
			return true, nil
		}
		if len(appended) > 0 && !continues(ev, appended[len(appended)-1]) {
			return false, nil
		}
		appended = append(appended, ev)
		return appendIndex(ev.UserMetadata) > 0 && len(appended) < maxAppendEvents, nil
	})
	if err != nil {
		return 0, wrapError(ctx, "last position", err)
	}
	if len(appended) == 0 {
		return 0, nil
	}
	var c chain
	var pos uint64
	for i := len(appended) - 1; i >= 0; i-- {
		if pos, err = c.next(appended[i]); err != nil {
			return 0, fmt.Errorf("last position: %w", err)
		}
	}
	return pos, nil
}

// HeadCommitPosition is the commit position of the newest event of $all, whatever its
// stream (0 for an empty database): a value for Config.StartPosition.
func (s *Store) HeadCommitPosition(ctx context.Context) (uint64, error) {
	rs, err := s.readAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return 0, wrapError(ctx, "read the end of $all", err)
	}
	defer rs.Close()
	re, err := rs.Recv()
	if errors.Is(err, io.EOF) {
		return 0, nil
	}
	if err != nil {
		return 0, wrapError(ctx, "read the end of $all", err)
	}
	if ev := re.OriginalEvent(); ev != nil {
		return ev.Position.Commit, nil
	}
	return 0, nil
}

// Subscribe implements eventstore.Store with a catch-up subscription to $all,
// filtered on the server by stream name, that turns live once caught up.
func (s *Store) Subscribe(ctx context.Context, from uint64, handle func(eventstore.RecordedEvent) error) error {
	// Subscriptions start after the given position: start after the event just before
	// the first one wanted.
	var start esdb.AllPosition = esdb.Start{}
	if at := s.startCommit(from); at > 0 {
		before, ok, err := s.eventBefore(ctx, at)
		if err != nil {
			return s.subscribeError(ctx, from, err)
		}
		if ok {
			start = before
		}
	}
	sub, err := s.subscribeToAll(ctx, esdb.SubscribeToAllOptions{From: start, Filter: s.filter})
	if err != nil {
		return s.subscribeError(ctx, from, err)
	}
	defer sub.Close()

	var c chain
	var seen *esdb.Position
	var last uint64
	delivered := false
	for {
		msg := sub.Recv()
		switch {
		case msg.EventAppeared != nil:
			ev := msg.EventAppeared.OriginalEvent()
			if ev == nil {
				continue
			}
			if seen != nil && !after(ev.Position, *seen) {
				continue // delivered twice across the catch-up/live switch
			}
			p := ev.Position
			seen = &p
			if p.Commit < s.floor {
				continue
			}
			name, ok := s.portStream(ev)
			if !ok {
				continue
			}
			pos, err := c.next(ev)
			if err != nil {
				return fmt.Errorf("subscribe from %d: %w", from, err)
			}
			if pos < from {
				continue
			}
			if delivered && pos <= last {
				return fmt.Errorf("subscribe from %d: event %d of %s at position %d after position %d: $all is out of order for the adapter", from, ev.EventNumber, ev.StreamID, pos, last)
			}
			if err := handle(recorded(name, pos, ev)); err != nil {
				return err
			}
			last, delivered = pos, true
		case msg.SubscriptionDropped != nil:
			return s.subscribeError(ctx, from, msg.SubscriptionDropped.Error)
		default:
			// Checkpoints (a filtered subscription's progress through $all, which can
			// be past the last event of this store), caught up, fell behind: the
			// port's position only moves with events.
		}
	}
}

func (s *Store) subscribeError(ctx context.Context, from uint64, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// gRPC derives its deadline from ctx and can report it a moment before ctx itself
	// is done: the caller's deadline ended the subscription, so say so.
	if code := status.Code(err); code == codes.DeadlineExceeded || code == codes.Canceled {
		if _, hasDeadline := ctx.Deadline(); hasDeadline || code == codes.Canceled {
			<-ctx.Done()
			return ctx.Err()
		}
	}
	if err == nil {
		err = errors.New("dropped")
	}
	return fmt.Errorf("subscribe from %d: %w: %w", from, eventstore.ErrUnavailable, err)
}

// startCommit is the commit position reads for positions >= from start at, never
// before Config.StartPosition.
func (s *Store) startCommit(from uint64) uint64 {
	return max(startCommit(from), s.floor)
}

// startAt is where a forward read of $all for positions >= from starts (inclusive).
func (s *Store) startAt(from uint64) esdb.AllPosition {
	if at := s.startCommit(from); at > 0 {
		return esdb.Position{Commit: at, Prepare: at}
	}
	return esdb.Start{}
}

// eventBefore is the position of the event of $all (any stream) right before commit
// position at.
func (s *Store) eventBefore(ctx context.Context, at uint64) (esdb.Position, bool, error) {
	rs, err := s.readAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.Position{Commit: at, Prepare: at}}, 1)
	if err != nil {
		return esdb.Position{}, false, err
	}
	defer rs.Close()
	re, err := rs.Recv()
	if errors.Is(err, io.EOF) {
		return esdb.Position{}, false, nil
	}
	if err != nil {
		return esdb.Position{}, false, err
	}
	if ev := re.OriginalEvent(); ev != nil {
		return ev.Position, true, nil
	}
	return esdb.Position{}, false, nil
}

// scanForward reads $all forwards from start (inclusive), page by page, and calls
// visit with each event in order until visit says stop or $all ends.
func (s *Store) scanForward(ctx context.Context, start esdb.AllPosition, visit func(*esdb.RecordedEvent) (bool, error)) error {
	return s.scan(ctx, esdb.Forwards, start, visit)
}

// scanBackward reads $all backwards from its end down to Config.StartPosition, page
// by page, and calls visit with each event until visit says stop.
func (s *Store) scanBackward(ctx context.Context, visit func(*esdb.RecordedEvent) (bool, error)) error {
	return s.scan(ctx, esdb.Backwards, esdb.End{}, visit)
}

// scan pages through $all in one direction. Each page starts with the last event of
// the previous one, which is skipped; a backward scan stops below Config.StartPosition.
func (s *Store) scan(ctx context.Context, dir esdb.Direction, start esdb.AllPosition, visit func(*esdb.RecordedEvent) (bool, error)) error {
	var seen *esdb.Position
	beyond := func(p esdb.Position) bool { // p comes after what was seen, in scan order
		if dir == esdb.Forwards {
			return after(p, *seen)
		}
		return after(*seen, p)
	}
	for {
		rs, err := s.readAll(ctx, esdb.ReadAllOptions{Direction: dir, From: start}, readPage)
		if err != nil {
			return err
		}
		n, more, err := func() (int, bool, error) {
			defer rs.Close()
			n := 0
			for {
				re, err := rs.Recv()
				if errors.Is(err, io.EOF) {
					return n, true, nil
				}
				if err != nil {
					return n, false, err
				}
				n++
				ev := re.OriginalEvent()
				if ev == nil {
					continue
				}
				if seen != nil && !beyond(ev.Position) {
					continue
				}
				p := ev.Position
				seen = &p
				if dir == esdb.Backwards && p.Commit < s.floor {
					return n, false, nil
				}
				if more, err := visit(ev); err != nil || !more {
					return n, false, err
				}
			}
		}()
		if err != nil || !more || n < readPage || seen == nil {
			return err
		}
		start = *seen
	}
}
