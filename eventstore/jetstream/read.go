package jetstream

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/eventstore"
)

// Reads take one of two paths:
//
//   - ReadStream (and the retry check of Append) use batched direct gets by subject:
//     one request, no server state, answered by any replica. The server adds six
//     headers to every message it returns that way, which makes each message about
//     twice as expensive as through a consumer; for the few events of one stream
//     that does not matter.
//   - ReadAll and Subscribe read the whole stream through an ordered consumer, which
//     streams the stored messages as they are and checks that none is missed.

// Direct get protocol, as in nats-server's server/stream.go (getDirectRequest): each
// message comes with these headers added; a batch ends with a 204 status message that
// tells how many matching messages are left, and a batch that matches nothing is a
// single 404 status message.
const (
	hdrSubject    = "Nats-Subject"
	hdrSequence   = "Nats-Sequence"
	hdrTimeStamp  = "Nats-Time-Stamp"
	hdrNumPending = "Nats-Num-Pending"
	hdrStatus     = "Status" // set by nats.go from the status line
	hdrStatusDesc = "Description"

	statusEndOfBatch = "204"
	statusNotFound   = "404"
)

const (
	// getBatch is the number of messages asked for in one direct get: large enough
	// to make the round trip negligible, small enough to bound the client's buffer.
	getBatch = 1024
	// getMaxBytes makes the server end a batch early when the messages are large.
	getMaxBytes = 4 << 20
)

// directGetRequest holds the fields of the server's JSApiMsgGetRequest that we use.
type directGetRequest struct {
	Seq      uint64 `json:"seq"`
	NextFor  string `json:"next_by_subj"`
	Batch    int    `json:"batch"`
	MaxBytes int    `json:"max_bytes"`
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error) {
	if !eventstore.ValidStreamName(stream) {
		// Not a subject token, so it cannot have been appended to.
		return []eventstore.RecordedEvent{}, nil
	}
	if s.replicated {
		return s.readStreamReplicated(ctx, stream) // replicated.go
	}
	events := []eventstore.RecordedEvent{}
	err := s.scan(ctx, stream, 1, math.MaxInt, func(ev eventstore.RecordedEvent) {
		events = append(events, ev)
	})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	return events, nil
}

// firstEventAfter returns the first event of stream after position after, or nil.
func (s *Store) firstEventAfter(ctx context.Context, stream string, after uint64) (*eventstore.RecordedEvent, error) {
	var first *eventstore.RecordedEvent
	err := s.scan(ctx, stream, after+1, 1, func(ev eventstore.RecordedEvent) {
		first = &ev
	})
	return first, err
}

// scan calls emit, in order, for up to limit events of stream with position >= from,
// reading them with batched direct gets. An unknown stream costs one round trip.
func (s *Store) scan(ctx context.Context, stream string, from uint64, limit int, emit func(eventstore.RecordedEvent)) error {
	// One inbox for all the batches of this scan; each batch is read to its end
	// before the next is requested, so their messages cannot mix, and a channel
	// sized for one batch and its end marker never overflows. (SubscribeSync would
	// allocate a channel for half a million messages on every call.)
	inbox := nats.NewInbox()
	replies := make(chan *nats.Msg, min(limit, getBatch)+1)
	sub, err := s.nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return fmt.Errorf("%w: %w", eventstore.ErrUnavailable, err)
	}
	defer sub.Unsubscribe()

	next := from
	for limit > 0 {
		req, err := json.Marshal(directGetRequest{Seq: next, NextFor: s.prefix + stream, Batch: min(limit, getBatch), MaxBytes: getMaxBytes})
		if err != nil {
			return fmt.Errorf("direct get from %d: %w", next, err)
		}
		if err := s.nc.PublishRequest(s.getSubject, inbox, req); err != nil {
			return fmt.Errorf("%w: direct get from %d: %w", eventstore.ErrUnavailable, next, err)
		}
		// The timeout is per batch: a long scan is fine, a silent server is not.
		batchCtx, cancel := withTimeout(ctx)
		more, err := s.receiveBatch(batchCtx, replies, func(ev eventstore.RecordedEvent) {
			emit(ev)
			next = ev.Position + 1
			limit--
		})
		cancel()
		if err != nil {
			return fmt.Errorf("direct get from %d: %w", next, err)
		}
		if !more {
			return nil
		}
	}
	return nil
}

// receiveBatch reads the answer to one batched direct get, passing each message to
// emit. It reports whether the server has more matching messages after the batch.
func (s *Store) receiveBatch(ctx context.Context, replies <-chan *nats.Msg, emit func(eventstore.RecordedEvent)) (bool, error) {
	for {
		var msg *nats.Msg
		select {
		case msg = <-replies:
		case <-ctx.Done():
			return false, fmt.Errorf("%w: %w", eventstore.ErrUnavailable, ctx.Err())
		}
		switch status := msg.Header.Get(hdrStatus); status {
		case "":
			ev, err := s.directGetEvent(msg)
			if err != nil {
				return false, err
			}
			emit(ev)
		case statusEndOfBatch:
			return msg.Header.Get(hdrNumPending) != "0", nil
		case statusNotFound:
			return false, nil
		default:
			// 503 no responders (stream unreachable), 408 request refused...
			return false, fmt.Errorf("%w: status %s %s", eventstore.ErrUnavailable, status, msg.Header.Get(hdrStatusDesc))
		}
	}
}

// directGetEvent decodes a message of a direct get answer.
func (s *Store) directGetEvent(msg *nats.Msg) (eventstore.RecordedEvent, error) {
	seq, err := strconv.ParseUint(msg.Header.Get(hdrSequence), 10, 64)
	if err != nil {
		return eventstore.RecordedEvent{}, fmt.Errorf("direct get: bad %s header: %w", hdrSequence, err)
	}
	ts, err := time.Parse(time.RFC3339Nano, msg.Header.Get(hdrTimeStamp))
	if err != nil {
		return eventstore.RecordedEvent{}, fmt.Errorf("direct get: message %d: bad %s header: %w", seq, hdrTimeStamp, err)
	}
	return s.event(msg.Header.Get(hdrSubject), seq, ts, msg.Header, msg.Data), nil
}

// event builds the recorded event of a stored message. The revision of an event is
// its own sequence: once it is stored, it is the sequence of the stream's last message.
func (s *Store) event(subject string, seq uint64, ts time.Time, h nats.Header, data []byte) eventstore.RecordedEvent {
	return eventstore.RecordedEvent{
		Stream:     strings.TrimPrefix(subject, s.prefix),
		Revision:   eventstore.Revision(seq),
		Position:   seq,
		ID:         h.Get(hdrMsgID),
		Type:       h.Get(hdrEventType),
		Data:       data,
		RecordedAt: ts,
	}
}

// ReadAll implements eventstore.Store. Deleted messages are skipped. It creates a
// consumer for the call, so it suits reading pages of many events; following the
// store as it grows is what Subscribe is for.
func (s *Store) ReadAll(ctx context.Context, from uint64, max int) ([]eventstore.RecordedEvent, error) {
	if max <= 0 {
		return nil, fmt.Errorf("read all from %d: max %d must be positive: %w", from, max, eventstore.ErrInvalid)
	}
	events := []eventstore.RecordedEvent{}
	err := s.consume(ctx, from, max, func(ev eventstore.RecordedEvent) error {
		events = append(events, ev)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read all from %d: %w", from, err)
	}
	return events, nil
}

// Subscribe implements eventstore.Store.
func (s *Store) Subscribe(ctx context.Context, from uint64, handle func(eventstore.RecordedEvent) error) error {
	return s.consume(ctx, from, 0, handle)
}

// consume passes the events with position >= from to handle, in order, through an
// ordered consumer (which the client recreates after the last delivered message if
// it detects a gap). With max > 0 it stops after max events or after the last event
// stored when it started, whichever comes first; with max 0 it goes on with events
// as they are appended. It returns ctx.Err() and handle's errors as they are.
func (s *Store) consume(ctx context.Context, from uint64, max int, handle func(eventstore.RecordedEvent) error) error {
	var until uint64 // a bounded read of a replicated stream stops there (replicated.go)
	if max > 0 && s.replicated {
		var err error
		if max, until, err = s.boundedRead(ctx, from, max); err != nil || max == 0 {
			return err
		}
	}
	cfg := natsjs.OrderedConsumerConfig{DeliverPolicy: natsjs.DeliverAllPolicy}
	if from > 1 {
		cfg.DeliverPolicy = natsjs.DeliverByStartSequencePolicy
		cfg.OptStartSeq = from
	}
	createCtx, cancel := withTimeout(ctx)
	consumer, err := s.js.OrderedConsumer(createCtx, s.streamName, cfg)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("read from %d: %w: %w", from, eventstore.ErrUnavailable, err)
	}
	defer s.deleteConsumer(ctx, consumer)

	// The server sends an idle heartbeat every consumeHeartbeat; after two missed ones
	// the client recreates the consumer (its node left the cluster, a request was lost).
	opts := []natsjs.PullMessagesOpt{natsjs.PullHeartbeat(consumeHeartbeat)}
	if max > 0 {
		// The server never says "that was the last one", so a bounded read counts the
		// messages there were when the consumer was created.
		if until == 0 {
			max = int(min(uint64(max), consumer.CachedInfo().NumPending))
		}
		if max == 0 {
			return nil
		}
		opts = append(opts, natsjs.StopAfter(max))
	}
	msgs, err := consumer.Messages(opts...)
	if err != nil {
		return fmt.Errorf("read from %d: %w: %w", from, eventstore.ErrUnavailable, err)
	}
	defer msgs.Stop()

	for n := 0; max == 0 || n < max; n++ {
		nextCtx, cancelNext := ctx, context.CancelFunc(func() {})
		if until > 0 {
			nextCtx, cancelNext = context.WithTimeout(ctx, requestTimeout) // see boundedRead
		}
		msg, err := msgs.Next(natsjs.NextContext(nextCtx))
		cancelNext()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read from %d: %w: %w", from, eventstore.ErrUnavailable, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read from %d: %w", from, err)
		}
		if err := handle(s.event(msg.Subject(), meta.Sequence.Stream, meta.Timestamp, msg.Headers(), msg.Data())); err != nil {
			return err
		}
		if until > 0 && meta.Sequence.Stream >= until {
			return nil
		}
	}
	return nil
}

// deleteConsumer removes the server side of an ordered consumer once it is no longer
// read. Stopping the iterator leaves it on the server until its inactivity threshold
// (five minutes), which adds up when reads come and go. Failing here is harmless for
// the same reason, so the error is dropped.
func (s *Store) deleteConsumer(ctx context.Context, consumer natsjs.Consumer) {
	info := consumer.CachedInfo()
	if info == nil {
		return
	}
	// ctx is often cancelled by now; the deletion gets its own short deadline.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = s.js.DeleteConsumer(ctx, s.streamName, info.Name)
}

// consumeHeartbeat is the idle heartbeat of the ordered consumers. The client's
// default (half the 30 s pull expiry) would leave a subscription whose consumer was
// lost silent for 30 s.
const consumeHeartbeat = time.Second

// LastPosition implements eventstore.Store.
func (s *Store) LastPosition(ctx context.Context) (uint64, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("last position: %w: %w", eventstore.ErrUnavailable, err)
	}
	return info.State.LastSeq, nil
}
