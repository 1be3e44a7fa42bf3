package jetstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/eventstore"
)

// hdrEventType carries the event type. The event ID is the message ID (Nats-Msg-Id):
// JetStream needs it there for deduplication, and a second copy would cost bytes on
// every stored event and time on every read.
const hdrEventType = "Tkt-Event-Type"

// JetStream headers, as named in nats-server's server/stream.go.
const (
	hdrMsgID               = "Nats-Msg-Id"
	hdrExpectedLastSubjSeq = "Nats-Expected-Last-Subject-Sequence"
	hdrBatchID             = "Nats-Batch-Id"
	hdrBatchSeq            = "Nats-Batch-Sequence"
	hdrBatchCommit         = "Nats-Batch-Commit"
)

// JetStream API error codes Append maps to the port's errors, from nats-server's
// server/jetstream_errors_generated.go.
const (
	codeWrongLastSequence         natsjs.ErrorCode = 10071 // JSStreamWrongLastSequenceErrF
	codeWrongLastSequenceConstant natsjs.ErrorCode = 10164 // JSStreamWrongLastSequenceConstantErr (replicated streams)
	codeBatchDuplicate            natsjs.ErrorCode = 10201 // JSAtomicPublishContainsDuplicateMessageErr
	codeMessageTooLarge           natsjs.ErrorCode = 10054 // JSStreamMessageExceedsMaximumErr
	codeHeaderTooLarge            natsjs.ErrorCode = 10097 // JSStreamHeaderExceedsMaximumErr
	codeBatchTooLarge             natsjs.ErrorCode = 10199 // JSAtomicPublishTooLargeBatchErrF
	codeAccountLimits             natsjs.ErrorCode = 10002 // JSAccountResourcesExceededErr
	codeBatchIncomplete           natsjs.ErrorCode = 10176 // JSAtomicPublishIncompleteBatchErr
	codeDuplicateInProcess        natsjs.ErrorCode = 10158 // JSStreamDuplicateMessageConflict
)

// Append implements eventstore.Store. One event is a plain JetStream publish; several
// are one atomic batch, so that they are stored together, contiguously, or not at all.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.Revision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
	}
	conn := s.appendConn()
	var last uint64
	var err error
	if len(events) == 1 {
		last, err = s.publishOne(ctx, conn, stream, expected, events[0])
	} else {
		last, err = s.publishBatch(ctx, conn, stream, expected, events)
	}
	if err != nil {
		ctx, cancel := withTimeout(ctx)
		defer cancel()
		return eventstore.AppendResult{}, s.appendError(ctx, stream, expected, events[0].ID, err)
	}
	return eventstore.AppendResult{Revision: eventstore.Revision(last), LastPosition: last}, nil
}

// eventMsg builds the message of one event. Its message ID is the event ID, so that
// JetStream drops a retried event within the duplicate window.
func (s *Store) eventMsg(stream string, ev eventstore.EventData) *nats.Msg {
	return &nats.Msg{
		Subject: s.prefix + stream,
		Data:    ev.Data,
		Header: nats.Header{
			hdrMsgID:     []string{ev.ID},
			hdrEventType: []string{ev.Type},
		},
	}
}

// errDuplicateAck reports a publish JetStream acknowledged as a duplicate.
var errDuplicateAck = errors.New("acknowledged as a duplicate")

// publishOne stores one event: a request to the stream's subject, answered with a
// PubAck, on a pipe if one is free (pipe.go), else on conn. On conn it is what the
// JetStream client's PublishMsg does, without its context wrapping and
// reflection-based decoding of the answer, which cost about a fifth of an append's
// time on the embedded server.
func (s *Store) publishOne(ctx context.Context, conn *nats.Conn, stream string, expected eventstore.Revision, ev eventstore.EventData) (uint64, error) {
	return retryNoResponders(ctx, func() (uint64, error) {
		if pc := s.pipes.get(); pc != nil {
			pc.header = appendEventHeader(pc.header[:0], ev, expected)
			answer, err := pc.request(ctx, s.prefix+stream, pc.header, ev.Data)
			if err == nil {
				// The answer is the pipe's until it goes back to the pool.
				var seq uint64
				seq, err = s.parsePubAck(answer)
				s.pipes.put(pc)
				return seq, err
			}
			s.pipes.put(pc)
			if !errors.Is(err, errPipeUnsent) {
				return 0, err
			}
			// Nothing was sent: the connection below takes the append.
		}
		msg := s.eventMsg(stream, ev)
		if expected != eventstore.AnyRevision {
			// 0 means "no message on the subject yet", which is NoStream.
			msg.Header.Set(hdrExpectedLastSubjSeq, strconv.FormatUint(uint64(expected), 10))
		}
		reply, err := request(ctx, conn, msg)
		if err != nil {
			return 0, err
		}
		return s.parsePubAck(reply.Data)
	})
}

// appendEventHeader appends the NATS header block of an event's message to dst: the
// headers of eventMsg and the expected sequence of publishOne.
func appendEventHeader(dst []byte, ev eventstore.EventData, expected eventstore.Revision) []byte {
	dst = append(dst, "NATS/1.0\r\n"+hdrMsgID+": "...)
	dst = append(dst, ev.ID...)
	dst = append(dst, "\r\n"+hdrEventType+": "...)
	dst = append(dst, ev.Type...)
	if expected != eventstore.AnyRevision {
		dst = append(dst, "\r\n"+hdrExpectedLastSubjSeq+": "...)
		dst = strconv.AppendUint(dst, uint64(expected), 10)
	}
	return append(dst, "\r\n\r\n"...)
}

// parsePubAck returns the stream sequence a PubAck names, or its error. The usual
// answer, {"stream":"<the store's stream>","seq":<n>}, is read as it is written; any
// other (an error, a duplicate, a domain) is decoded as JSON.
func (s *Store) parsePubAck(data []byte) (uint64, error) {
	if rest, ok := bytes.CutPrefix(data, s.ackPrefix); ok {
		if seq, ok := ackSequence(rest); ok {
			return seq, nil
		}
	}
	var ack pubAck
	if err := gojson.Unmarshal(data, &ack); err != nil {
		return 0, fmt.Errorf("malformed acknowledgement %q: %w", data, err)
	}
	if ack.Error != nil {
		return 0, ack.Error
	}
	if ack.Stream == "" {
		return 0, fmt.Errorf("malformed acknowledgement %q", data)
	}
	// A duplicate is not an error for JetStream: it answers with the sequence of the
	// message already stored.
	if ack.Duplicate {
		return 0, errDuplicateAck
	}
	return ack.Sequence, nil
}

// ackSequence reads "<n>}", n a positive decimal of at most 19 digits (so that it
// cannot overflow).
func ackSequence(b []byte) (uint64, bool) {
	digits, ok := bytes.CutSuffix(b, []byte("}"))
	if !ok || len(digits) == 0 || len(digits) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, n > 0
}

// pubAck is the server's answer to a publish into a stream.
type pubAck struct {
	Error     *natsjs.APIError `json:"error,omitempty"`
	Stream    string           `json:"stream"`
	Sequence  uint64           `json:"seq"`
	Duplicate bool             `json:"duplicate,omitempty"`
}

// noRespondersRetries and noRespondersWait are the JetStream client's defaults for a
// publish nobody answers: a stream without a leader for a moment (an election) does
// not answer, and a publish sent again a little later usually is.
const (
	noRespondersRetries = 2
	noRespondersWait    = 250 * time.Millisecond
)

// retryNoResponders runs attempt again while it fails because nobody answered: no
// stream took the message, so nothing was stored and sending it again is safe.
func retryNoResponders[T any](ctx context.Context, attempt func() (T, error)) (T, error) {
	res, err := attempt()
	for retry := 0; errors.Is(err, nats.ErrNoResponders) && retry < noRespondersRetries; retry++ {
		select {
		case <-ctx.Done():
			return res, err
		case <-time.After(noRespondersWait):
		}
		res, err = attempt()
	}
	return res, err
}

// request sends msg and waits for the answer until ctx's deadline or, when ctx has
// none, for requestTimeout. The second case uses the client's pooled timers instead
// of a context with a deadline, which a request per append would pay for in timer
// allocations; ctx's cancellation is then only checked before sending (an append
// already sent is better awaited than abandoned, so that the caller knows its outcome).
func request(ctx context.Context, conn *nats.Conn, msg *nats.Msg) (*nats.Msg, error) {
	if _, ok := ctx.Deadline(); ok {
		return conn.RequestMsgWithContext(ctx, msg)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return conn.RequestMsg(msg, requestTimeout)
}

// batchAck is the answer to the commit of an atomic batch: a PubAck for the last
// message, with the batch ID and size, or an API error.
type batchAck struct {
	Error    *natsjs.APIError `json:"error,omitempty"`
	Sequence uint64           `json:"seq"`
	BatchID  string           `json:"batch"`
	Count    int              `json:"count"`
}

// publishBatch publishes events as one atomic batch: every message carries the batch
// ID and its 1-based sequence in the batch, the last one also Nats-Batch-Commit: 1.
// The server stages the messages and, on the commit, checks them all (expected
// sequence, duplicates) and stores all or none of them.
//
// Only the commit is a request. The messages before it are plain publishes: they
// reach the server in order on this connection, and if one of them is lost or
// refused, the server drops the batch and answers the commit with an error
// (incomplete batch), so waiting for each staging ack would only cost a round trip
// per event.
func (s *Store) publishBatch(ctx context.Context, conn *nats.Conn, stream string, expected eventstore.Revision, events []eventstore.EventData) (uint64, error) {
	// A commit nobody answered reached no stream: any message staged before it is
	// dropped with its unfinished batch, so the whole batch is sent again, under a new
	// batch ID.
	return retryNoResponders(ctx, func() (uint64, error) { return s.sendBatch(ctx, conn, stream, expected, events) })
}

func (s *Store) sendBatch(ctx context.Context, conn *nats.Conn, stream string, expected eventstore.Revision, events []eventstore.EventData) (uint64, error) {
	batchID := uuid.NewString() // at most 64 characters
	var commit *nats.Msg
	for i, ev := range events {
		msg := s.eventMsg(stream, ev)
		msg.Header.Set(hdrBatchID, batchID)
		msg.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		// The server accepts the expected sequence only on a message that comes
		// before any other of the batch on the subject: the first one.
		if i == 0 && expected != eventstore.AnyRevision {
			msg.Header.Set(hdrExpectedLastSubjSeq, strconv.FormatUint(uint64(expected), 10))
		}
		if i == len(events)-1 {
			msg.Header.Set(hdrBatchCommit, "1")
			commit = msg
			break
		}
		if err := conn.PublishMsg(msg); err != nil {
			return 0, err
		}
	}

	reply, err := request(ctx, conn, commit)
	if err != nil {
		return 0, err
	}
	var ack batchAck
	if err := json.Unmarshal(reply.Data, &ack); err != nil {
		return 0, fmt.Errorf("commit of batch %s: malformed answer %q: %w", batchID, reply.Data, err)
	}
	if ack.Error != nil {
		return 0, ack.Error
	}
	if ack.BatchID != batchID || ack.Count != len(events) {
		return 0, fmt.Errorf("commit of batch %s: acknowledged batch %s of %d messages, sent %d", batchID, ack.BatchID, ack.Count, len(events))
	}
	return ack.Sequence, nil
}

// appendError maps a failed publish to the port's errors, with context. Anything that
// is not a definite answer of the server (timeouts, lost connections, cancelled
// contexts) is ErrUnavailable: the append may or may not have happened, and a retry
// will tell (it fails with ErrDuplicate if it had).
func (s *Store) appendError(ctx context.Context, stream string, expected eventstore.Revision, firstID string, err error) error {
	if errors.Is(err, errDuplicateAck) {
		return fmt.Errorf("append %s: event %s: %w", stream, firstID, eventstore.ErrDuplicate)
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		return fmt.Errorf("append %s: %w: %w", stream, eventstore.ErrInvalid, err)
	}
	var apiErr *natsjs.APIError
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("append %s: %w: %w", stream, eventstore.ErrUnavailable, err)
	}
	switch apiErr.ErrorCode {
	case codeWrongLastSequence, codeWrongLastSequenceConstant:
		return s.resolveConflict(ctx, stream, expected, firstID, apiErr)
	case codeBatchDuplicate:
		return fmt.Errorf("append %s: %w: %w", stream, eventstore.ErrDuplicate, apiErr)
	case codeMessageTooLarge, codeHeaderTooLarge, codeBatchTooLarge:
		return fmt.Errorf("append %s: %w: %w", stream, eventstore.ErrInvalid, apiErr)
	case codeAccountLimits, codeBatchIncomplete:
		return fmt.Errorf("append %s: %w: %w", stream, eventstore.ErrUnavailable, apiErr)
	case codeDuplicateInProcess:
		// The same events are being stored by another, unfinished append: whether
		// they will be is not known yet, so the caller must retry.
		return fmt.Errorf("append %s: %w: %w", stream, eventstore.ErrUnavailable, apiErr)
	}
	// Server-side trouble (503 no quorum, storage failure, insufficient resources;
	// 429 too many requests or batches in flight) is temporary.
	if apiErr.Code >= 500 || apiErr.Code == 429 {
		return fmt.Errorf("append %s: %w: %w", stream, eventstore.ErrUnavailable, apiErr)
	}
	return fmt.Errorf("append %s: %w", stream, apiErr)
}

// resolveConflict tells a real conflict from the retry of an append that was stored.
// JetStream checks the expected sequence before it looks for duplicates on a single
// publish, and forgets message IDs after the duplicate window, so a retry can come
// back as a wrong-sequence error. If the append did happen, its first event is the
// first message of the subject after the expected revision.
func (s *Store) resolveConflict(ctx context.Context, stream string, expected eventstore.Revision, firstID string, conflict error) error {
	next, err := s.firstEventAfter(ctx, stream, uint64(expected))
	if err != nil {
		return fmt.Errorf("append %s: checking for a retry after %v: %w", stream, conflict, err)
	}
	if next != nil && next.ID == firstID {
		return fmt.Errorf("append %s: event %s stored at %d: %w", stream, firstID, next.Position, eventstore.ErrDuplicate)
	}
	return fmt.Errorf("append %s: expected revision %d: %w: %w", stream, expected, eventstore.ErrConflict, conflict)
}
