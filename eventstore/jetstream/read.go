package jetstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
//   - ReadData (a projection catch-up or rebuild) uses batched direct gets by sequence
//     that ask the server to leave every header out (see ReadData).

// Direct get protocol, as in nats-server's server/stream.go (getDirectRequest): each
// message comes with these headers added; a batch ends with a 204 status message that
// tells how many matching messages are left, and a batch that matches nothing is a
// single 404 status message.
const (
	hdrSubject    = "Nats-Subject"
	hdrSequence   = "Nats-Sequence"
	hdrTimeStamp  = "Nats-Time-Stamp"
	hdrNumPending = "Nats-Num-Pending"
	hdrLastSeq    = "Nats-Last-Sequence"
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
	// NoHeaders leaves every header out of the messages (not of the status messages).
	NoHeaders bool `json:"no_hdr,omitempty"`
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

// ReadAt implements eventstore.Store with one direct get by sequence per position, all
// sent before the answers are read: each finds its message through the file store's
// index, where a read of the stream makes the server scan every message between two
// of the stream's (about 3 ms for a ticket of 8 events on a store of 110 000 tickets).
// A replicated stream is read whole instead (readStreamReplicated), since a replica
// may not have the latest writes yet.
func (s *Store) ReadAt(ctx context.Context, stream string, positions []uint64) ([]eventstore.RecordedEvent, error) {
	if len(positions) == 0 {
		return []eventstore.RecordedEvent{}, nil
	}
	if s.replicated {
		events, err := s.ReadStream(ctx, stream)
		if err != nil {
			return nil, err
		}
		return eventstore.PickPositions(stream, events, positions)
	}
	inbox := nats.NewInbox()
	replies := make(chan *nats.Msg, len(positions))
	sub, err := s.nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", eventstore.ErrUnavailable, err)
	}
	defer sub.Unsubscribe()
	for _, pos := range positions {
		req := strconv.AppendUint([]byte(`{"seq":`), pos, 10)
		if err := s.nc.PublishRequest(s.getSubject, inbox, append(req, '}')); err != nil {
			return nil, fmt.Errorf("%w: read %s at position %d: %w", eventstore.ErrUnavailable, stream, pos, err)
		}
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	read := make(map[uint64]eventstore.RecordedEvent, len(positions))
	for range positions {
		var msg *nats.Msg
		select {
		case msg = <-replies:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: read %s at positions: %w", eventstore.ErrUnavailable, stream, ctx.Err())
		}
		switch status := msg.Header.Get(hdrStatus); status {
		case "":
		case statusNotFound:
			return nil, fmt.Errorf("read %s at positions: a position holds no event: %w", stream, eventstore.ErrInvalid)
		default:
			return nil, fmt.Errorf("%w: read %s at positions: status %s %s", eventstore.ErrUnavailable, stream, status, msg.Header.Get(hdrStatusDesc))
		}
		ev, err := s.directGetEvent(msg)
		if err != nil {
			return nil, err
		}
		if ev.Stream != stream {
			return nil, fmt.Errorf("read %s at position %d: no event of the stream there: %w", stream, ev.Position, eventstore.ErrInvalid)
		}
		read[ev.Position] = ev
	}
	out := make([]eventstore.RecordedEvent, len(positions))
	for i, pos := range positions {
		out[i] = read[pos]
	}
	return out, nil
}

// LastEventID implements eventstore.Store. It asks the stream's leader (the JetStream
// API's message get), which has every acknowledged append, where a direct get may be
// answered by a replica that has not applied the latest yet.
func (s *Store) LastEventID(ctx context.Context, stream string) (string, error) {
	if !eventstore.ValidStreamName(stream) {
		return "", nil
	}
	seq, hdr, err := s.leaderLast(ctx, stream)
	if err != nil || seq == 0 {
		return "", err
	}
	h, err := nats.DecodeHeadersMsg(hdr)
	if err != nil {
		return "", fmt.Errorf("last event of %s: headers of message %d: %w", stream, seq, err)
	}
	return h.Get(hdrMsgID), nil
}

// RevisionAt implements eventstore.Store: a stream's revision is the global sequence
// of its last message.
func (s *Store) RevisionAt(pos, _ uint64) eventstore.Revision { return eventstore.Revision(pos) }

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

// Bulk reads.
//
// A catch-up or a rebuild needs the data and position of every event and nothing else,
// yet through the ordered consumer each message also carries the event's headers, which
// the client decodes into a map, and a reply subject of about 100 bytes, which it parses
// for the position. A batched direct get by sequence can leave all headers out
// (no_hdr): then the server sends the data alone, and the client does about half the
// work per message (measured on 2 cores: about 5 µs of CPU per event against 10 µs).
//
// Such an answer does not say where each message was stored. The messages of a batch
// are consecutive unless some were deleted, and the end-of-batch marker gives the
// sequence of the last one sent: a batch of k messages from sequence first that ends at
// first+k-1 has no gap, so its positions are first to first+k-1. Anything else (a gap,
// or no message at all, as from a replica behind the leader) is read again through the
// ordered consumer, which knows the position of every message.

const (
	// dataBatch is the number of messages asked for in one bulk direct get.
	dataBatch = 1024
	// dataInFlight is how many bulk direct gets are outstanding at a time, so that the
	// server prepares the next batch while the client takes in the last one.
	dataInFlight = 2
)

// errRangeRead ends the ordered consumer of readDataSlow at the end of its range.
var errRangeRead = errors.New("range read")

// dataRequest is one bulk direct get: its inbox and the positions it asked for.
type dataRequest struct {
	inbox    string
	replies  chan *nats.Msg
	from, to uint64
}

// ReadData calls fn, in order, with batches of the events stored at positions from to
// to, to included (to at most LastPosition). Only Position and Data of each event are
// set. fn may keep the batch and the data. Deleted messages are skipped. It returns
// fn's errors as they are, and ctx.Err() once ctx ends.
func (s *Store) ReadData(ctx context.Context, from, to uint64, fn func([]eventstore.RecordedEvent) error) error {
	if from == 0 {
		from = 1
	}
	if from > to {
		return nil
	}
	if s.pipes != nil {
		if pc, err := s.pipes.dial(readPipe); err == nil {
			return s.readDataPipe(ctx, pc, from, to, fn)
		}
	}
	return s.readDataConn(ctx, from, to, fn)
}

// readDataConn is ReadData on the store's connection, dataInFlight requests at a time.
func (s *Store) readDataConn(ctx context.Context, from, to uint64, fn func([]eventstore.RecordedEvent) error) error {
	var queue []*dataRequest // outstanding requests, in the order of their positions
	for range dataInFlight {
		// One inbox per request: each reply channel holds one whole batch and its end
		// marker, so it never overflows, and batches cannot mix.
		r := &dataRequest{inbox: nats.NewInbox(), replies: make(chan *nats.Msg, dataBatch+1)}
		sub, err := s.nc.ChanSubscribe(r.inbox, r.replies)
		if err != nil {
			return fmt.Errorf("read data from %d: %w: %w", from, eventstore.ErrUnavailable, err)
		}
		defer sub.Unsubscribe()
		queue = append(queue, r)
	}
	next := from // the first position not asked for yet
	for i, r := range queue {
		if next > to {
			queue = queue[:i]
			break
		}
		if err := s.requestData(r, next, min(to, next+dataBatch-1)); err != nil {
			return err
		}
		next = r.to + 1
	}
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		if err := s.receiveData(ctx, r, fn); err != nil {
			return err
		}
		if next <= to {
			if err := s.requestData(r, next, min(to, next+dataBatch-1)); err != nil {
				return err
			}
			next = r.to + 1
			queue = append(queue, r)
		}
	}
	return nil
}

// requestData asks for the messages at positions from to to, without headers.
func (s *Store) requestData(r *dataRequest, from, to uint64) error {
	r.from, r.to = from, to
	req, err := json.Marshal(directGetRequest{Seq: from, Batch: int(to - from + 1), MaxBytes: getMaxBytes, NoHeaders: true})
	if err != nil {
		return fmt.Errorf("direct get from %d: %w", from, err)
	}
	if err := s.nc.PublishRequest(s.getSubject, r.inbox, req); err != nil {
		return fmt.Errorf("%w: direct get from %d: %w", eventstore.ErrUnavailable, from, err)
	}
	return nil
}

// receiveData passes the answer to r to fn. A batch the server cut short (getMaxBytes)
// is completed with another request on the same inbox; a batch whose positions are not
// known, through the ordered consumer.
func (s *Store) receiveData(ctx context.Context, r *dataRequest, fn func([]eventstore.RecordedEvent) error) error {
	for {
		batch := make([]eventstore.RecordedEvent, 0, r.to-r.from+1)
		batchCtx, cancel := withTimeout(ctx)
		last, err := receiveDataBatch(batchCtx, r.replies, func(data []byte) {
			batch = append(batch, eventstore.RecordedEvent{Position: r.from + uint64(len(batch)), Data: data})
		})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("direct get from %d: %w", r.from, err)
		}
		if len(batch) == 0 || last != batch[len(batch)-1].Position {
			return s.readDataSlow(ctx, r.from, r.to, fn)
		}
		if err := fn(batch); err != nil {
			return err
		}
		if last >= r.to {
			return nil
		}
		if err := s.requestData(r, last+1, r.to); err != nil {
			return err
		}
	}
}

// receiveDataBatch reads the answer to one bulk direct get, passing the data of each
// message to emit, and returns the sequence of the last message the server sent (0 if
// it had none to send).
func receiveDataBatch(ctx context.Context, replies <-chan *nats.Msg, emit func([]byte)) (uint64, error) {
	for {
		var msg *nats.Msg
		select {
		case msg = <-replies:
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: %w", eventstore.ErrUnavailable, ctx.Err())
		}
		if status := msg.Header.Get(hdrStatus); status != "" {
			return batchEnd(status, msg.Header.Get(hdrLastSeq), msg.Header.Get(hdrStatusDesc))
		}
		emit(msg.Data)
	}
}

// batchEnd reads the status message that ends the answer to a bulk direct get: the
// end of the batch, with the sequence of the last message sent, or nothing found (0).
func batchEnd(status, lastSeq, description string) (uint64, error) {
	switch status {
	case statusEndOfBatch:
		last, err := strconv.ParseUint(lastSeq, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("end of batch: bad %s header: %w", hdrLastSeq, err)
		}
		return last, nil
	case statusNotFound:
		return 0, nil
	}
	return 0, fmt.Errorf("%w: status %s %s", eventstore.ErrUnavailable, status, description)
}

// Bulk reads on a pipe.
//
// With the embedded server, ReadData reads on a pipe of its own (pipe.go), one bulk
// direct get at a time. Through the nats.Conn, the client's reader goroutine parses
// every message of an answer into a message value of its own, with its own copy of the
// data, and hands it over a channel; on the pipe, the reading goroutine takes the
// answer off the connection itself and copies each event's data next to the others'.
// The server prepares a batch while the previous one is decoded and applied on other
// goroutines; the round trip between batches is a small part of one.

// dataArena is the size of the buffers the events read on a pipe are copied into, many
// to a buffer: one allocation for hundreds of events.
const dataArena = 1 << 20

// readDataPipe is ReadData on pc, which it closes.
func (s *Store) readDataPipe(ctx context.Context, pc *pipe, from, to uint64, fn func([]eventstore.RecordedEvent) error) error {
	defer pc.conn.Close()
	stop := context.AfterFunc(ctx, func() { pc.conn.SetDeadline(time.Now()) })
	defer stop()
	var arena []byte
	for from <= to {
		if err := ctx.Err(); err != nil {
			return err
		}
		last := min(to, from+dataBatch-1)
		batch := make([]eventstore.RecordedEvent, 0, last-from+1)
		end, err := s.requestDataOn(pc, from, last, func(data []byte) {
			if len(arena)+len(data) > cap(arena) {
				arena = make([]byte, 0, max(dataArena, len(data)))
			}
			start := len(arena)
			arena = append(arena, data...)
			batch = append(batch, eventstore.RecordedEvent{Position: from + uint64(len(batch)), Data: arena[start:len(arena):len(arena)]})
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("direct get from %d: %w", from, err)
		}
		if len(batch) == 0 || end != batch[len(batch)-1].Position {
			// Not known to be consecutive (see Bulk reads): the positions come from the
			// ordered consumer.
			if err := s.readDataSlow(ctx, from, last, fn); err != nil {
				return err
			}
			from = last + 1
			continue
		}
		if err := fn(batch); err != nil {
			return err
		}
		// The server ends a batch early at getMaxBytes: the rest is asked for next.
		from = end + 1
	}
	return nil
}

// requestDataOn asks, on pc, for the messages at positions from to to without
// headers, passes the data of each to emit, and returns the sequence of the last one
// sent (0 if there was none).
func (s *Store) requestDataOn(pc *pipe, from, to uint64, emit func([]byte)) (uint64, error) {
	req, err := json.Marshal(directGetRequest{Seq: from, Batch: int(to - from + 1), MaxBytes: getMaxBytes, NoHeaders: true})
	if err != nil {
		return 0, err
	}
	if err := pc.conn.SetDeadline(time.Now().Add(requestTimeout)); err != nil {
		return 0, fmt.Errorf("%w: %w", eventstore.ErrUnavailable, err)
	}
	out := append(pc.out[:0], "PUB "...)
	out = append(out, s.getSubject...)
	out = append(out, ' ')
	out = append(out, pc.inbox...)
	out = append(out, ' ')
	out = strconv.AppendInt(out, int64(len(req)), 10)
	out = append(out, "\r\n"...)
	out = append(out, req...)
	out = append(out, "\r\n"...)
	pc.out = out
	if _, err := pc.conn.Write(out); err != nil {
		return 0, fmt.Errorf("%w: %w", eventstore.ErrUnavailable, err)
	}
	for {
		header, payload, err := pc.readMessage()
		if err != nil {
			return 0, fmt.Errorf("%w: %w", eventstore.ErrUnavailable, err)
		}
		// Data comes without headers (no_hdr): a header block is a status.
		if status, description, ok := headerStatus(header); ok {
			return batchEnd(status, headerValue(header, hdrLastSeq), description)
		}
		emit(payload)
	}
}

// headerStatus returns the status code and description of a NATS header block's first
// line ("NATS/1.0 204 EOB"), and false when it has none.
func headerStatus(header []byte) (status, description string, ok bool) {
	line, _, _ := bytes.Cut(header, []byte("\r\n"))
	rest, found := bytes.CutPrefix(line, []byte("NATS/1.0 "))
	if !found {
		return "", "", false
	}
	code, desc, _ := bytes.Cut(rest, []byte(" "))
	return string(code), string(desc), len(code) > 0
}

// headerValue returns the value of the header named key in a NATS header block.
func headerValue(header []byte, key string) string {
	lines := bytes.Split(header, []byte("\r\n"))
	for _, line := range lines[1:] {
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && string(name) == key {
			return string(bytes.TrimSpace(value))
		}
	}
	return ""
}

// readDataSlow passes the events at positions from to to to fn in one batch, read
// through the ordered consumer.
func (s *Store) readDataSlow(ctx context.Context, from, to uint64, fn func([]eventstore.RecordedEvent) error) error {
	var batch []eventstore.RecordedEvent
	err := s.consume(ctx, from, int(to-from+1), func(ev eventstore.RecordedEvent) error {
		if ev.Position > to {
			return errRangeRead
		}
		batch = append(batch, eventstore.RecordedEvent{Position: ev.Position, Data: ev.Data})
		if ev.Position == to {
			return errRangeRead
		}
		return nil
	})
	if err != nil && !errors.Is(err, errRangeRead) {
		return fmt.Errorf("read data from %d: %w", from, err)
	}
	if len(batch) == 0 {
		return nil
	}
	return fn(batch)
}
