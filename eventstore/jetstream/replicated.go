package jetstream

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/ticketcore/ticketcore/eventstore"
)

// Reads of a replicated stream.
//
// A direct get is answered by any replica of the stream, and a follower applies a write
// a moment after the leader acknowledged it: a ReadStream right after an append could
// miss it. The command handler would recover (the next append conflicts), but a reader
// that must see an acknowledged write (the HTTP answer to a command, a read with
// min_position) would not. So, on a stream with more than one replica, ReadStream first
// asks the leader (the JetStream API's message get, which only the leader answers) for
// the sequence of the stream's last event, then reads with direct gets, asking again
// while the replica that answered is behind that sequence. It costs one more round
// trip per ReadStream, and only on replicated streams.
//
// ReadAll has the same problem: its ordered consumer may be placed on a follower,
// whose count of pending messages (which bounds the read on a single server) can miss
// the latest writes. So a bounded read of a replicated stream asks the leader for the
// stream's last position first and reads until it (boundedRead).

const (
	// noMessageFound is the API error code of a message get that matches nothing.
	noMessageFound = 10037
	// staleRetries bounds how often ReadStream asks again when replicas are behind
	// the leader; the pauses grow from 1 ms to 50 ms, about a second in all.
	staleRetries = 25
)

// msgGetResponse holds the fields of the server's JSApiMsgGetResponse that we use.
type msgGetResponse struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error,omitempty"`
	Message *struct {
		Sequence uint64 `json:"seq"`
		Header   []byte `json:"hdrs,omitempty"`
	} `json:"message,omitempty"`
}

// leaderGetTimeout bounds one message get sent to the leader. Only the leader answers
// it: during an election nobody does, and the request is sent again.
const leaderGetTimeout = time.Second

// leaderLastSeq asks the stream's leader for the global position of the last event of
// stream: 0 when it has none.
func (s *Store) leaderLastSeq(ctx context.Context, stream string) (uint64, error) {
	seq, _, err := s.leaderLast(ctx, stream)
	return seq, err
}

// leaderLast asks the stream's leader for the global position and the header block of
// the last event of stream: 0 and nil when it has none. It tries for requestTimeout at
// most, whatever ctx's deadline, since a request nobody answers only ends with its
// deadline.
func (s *Store) leaderLast(ctx context.Context, stream string) (uint64, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := json.Marshal(struct {
		LastFor string `json:"last_by_subj"`
	}{s.prefix + stream})
	if err != nil {
		return 0, nil, err
	}
	subject := "$JS.API.STREAM.MSG.GET." + s.streamName
	for attempt := 0; ; attempt++ {
		attemptCtx, cancelAttempt := context.WithTimeout(ctx, leaderGetTimeout)
		reply, err := s.nc.RequestWithContext(attemptCtx, subject, req)
		cancelAttempt()
		var resp msgGetResponse
		if err == nil {
			if err := json.Unmarshal(reply.Data, &resp); err != nil {
				return 0, nil, fmt.Errorf("last event from the stream leader: malformed answer %q: %w", reply.Data, err)
			}
			switch {
			case resp.Error != nil && resp.Error.ErrCode == noMessageFound:
				return 0, nil, nil
			case resp.Error != nil && resp.Error.Code == 503:
				// No leader at the moment (JSClusterNotAvail): ask again.
				err = fmt.Errorf("%s (%d)", resp.Error.Description, resp.Error.ErrCode)
			case resp.Error != nil:
				return 0, nil, fmt.Errorf("%w: last event from the stream leader: %s (%d)", eventstore.ErrUnavailable, resp.Error.Description, resp.Error.ErrCode)
			case resp.Message == nil:
				return 0, nil, fmt.Errorf("last event from the stream leader: empty answer %q", reply.Data)
			default:
				return resp.Message.Sequence, resp.Message.Header, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, nil, fmt.Errorf("%w: last event from the stream leader, %d attempts: %w", eventstore.ErrUnavailable, attempt+1, err)
		case <-time.After(min(10*time.Millisecond<<attempt, 200*time.Millisecond)):
		}
	}
}

// readStreamReplicated is ReadStream on a replicated stream: it returns at least every
// event the leader had stored when it was called.
func (s *Store) readStreamReplicated(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error) {
	last, err := s.leaderLastSeq(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	events := []eventstore.RecordedEvent{}
	if last == 0 {
		return events, nil
	}
	next := uint64(1)
	for attempt := 0; ; attempt++ {
		err := s.scan(ctx, stream, next, math.MaxInt, func(ev eventstore.RecordedEvent) {
			events = append(events, ev)
			next = ev.Position + 1
		})
		if err != nil {
			return nil, fmt.Errorf("read stream %s: %w", stream, err)
		}
		if next > last {
			return events, nil
		}
		// The replica that answered has not applied the last writes yet: ask again
		// from where it stopped (another replica, or the same one a little later).
		if attempt == staleRetries {
			return nil, fmt.Errorf("read stream %s: %w: the replicas stay behind the leader's position %d (at %d)", stream, eventstore.ErrUnavailable, last, next-1)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("read stream %s: %w: %w", stream, eventstore.ErrUnavailable, ctx.Err())
		case <-time.After(min(time.Millisecond<<attempt, 50*time.Millisecond)):
		}
	}
}

// boundedRead bounds a read of at most max events from position from on a replicated
// stream: it reads until the leader's last position at the time of the call (until),
// and at most that many events. A replica that stays silent before until (it cannot
// catch up, or the messages there were deleted) ends the read with ErrUnavailable
// after requestTimeout, rather than with fewer events than were stored.
func (s *Store) boundedRead(ctx context.Context, from uint64, max int) (int, uint64, error) {
	last, err := s.LastPosition(ctx) // stream info: answered by the leader
	if err != nil {
		return 0, 0, fmt.Errorf("read from %d: %w", from, err)
	}
	from = max1(from)
	if last < from {
		return 0, 0, nil
	}
	return int(min(uint64(max), last-from+1)), last, nil
}

func max1(n uint64) uint64 { return max(n, 1) }
