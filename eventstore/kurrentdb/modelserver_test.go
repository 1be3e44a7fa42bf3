package kurrentdb

// A model of the KurrentDB gRPC streams service, to run the adapter's own logic
// (revisions, positions, duplicate detection, paging, filtering, subscription start
// and checkpoints) through the real client and the conformance suite on machines
// without KurrentDB. It is NOT KurrentDB: it implements the server behaviour the
// adapter relies on, as read in the KurrentDB sources (AllReader, IndexWriter's
// CheckCommit, the gRPC Streams.Read/Append services, the filtered $all catch-up
// subscription), and nothing else. Passing it says nothing about a real server; the
// conformance run against KurrentDB is TestConformance (EVENTSTORE_URL).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/storetest"
)

type modelRecord struct {
	id          uuid.UUID
	stream      string
	number      uint64
	eventType   string
	contentType string
	data, meta  []byte
	pos         uint64 // log position: commit = prepare position
	created     time.Time
}

type modelServer struct {
	api.UnimplementedStreamsServer

	mu      sync.Mutex
	log     []*modelRecord
	next    uint64 // log position of the next record
	streams map[string][]*modelRecord
	changed chan struct{} // closed and replaced at every write
	systems atomic.Int64
	invalid atomic.Int64 // reads at positions that are not record boundaries
}

func newModelServer() *modelServer {
	m := &modelServer{next: 0, streams: map[string][]*modelRecord{}, changed: make(chan struct{})}
	// A real log starts with the server's own records.
	m.mu.Lock()
	for range 3 {
		m.writeSystemLocked()
	}
	m.mu.Unlock()
	return m
}

// writeLocked appends records to the log; each takes a size that depends on its
// content, like a real record, so that positions are sparse.
func (m *modelServer) writeLocked(stream string, events []*api.AppendReq_ProposedMessage) []*modelRecord {
	var out []*modelRecord
	for _, ev := range events {
		number := uint64(len(m.streams[stream]))
		most, least := ev.Id.GetStructured().GetMostSignificantBits(), ev.Id.GetStructured().GetLeastSignificantBits()
		id, _ := esdb.ParseUUIDFromInt64(most, least)
		rec := &modelRecord{
			id: id, stream: stream, number: number, eventType: ev.Metadata["type"], contentType: ev.Metadata["content-type"],
			data: bytes.Clone(ev.Data), meta: bytes.Clone(ev.CustomMetadata), pos: m.next, created: time.Now(),
		}
		m.next += 80 + uint64(len(stream)+len(rec.eventType)+len(rec.data)+len(rec.meta))
		m.log = append(m.log, rec)
		m.streams[stream] = append(m.streams[stream], rec)
		out = append(out, rec)
	}
	close(m.changed)
	m.changed = make(chan struct{})
	return out
}

// writeSystemLocked writes what projections and statistics write between appends.
func (m *modelServer) writeSystemLocked() {
	n := m.systems.Add(1)
	stream, typ := "$stats-127.0.0.1:2113", "$statsCollected"
	if n%2 == 0 {
		stream, typ = "$ce-ticket", "$>"
	}
	m.writeLocked(stream, []*api.AppendReq_ProposedMessage{{
		Id:       &shared.UUID{Value: &shared.UUID_Structured_{Structured: structured(uuid.New())}},
		Metadata: map[string]string{"type": typ, "content-type": "application/json"},
		Data:     []byte(`{}`),
	}})
}

func structured(id uuid.UUID) *shared.UUID_Structured {
	most, least := esdb.UUIDAsInt64(id)
	return &shared.UUID_Structured{MostSignificantBits: most, LeastSignificantBits: least}
}

func (m *modelServer) Append(srv api.Streams_AppendServer) error {
	first, err := srv.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "no options")
	}
	stream := string(opts.StreamIdentifier.GetStreamName())
	var events []*api.AppendReq_ProposedMessage
	for {
		req, err := srv.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		ev := req.GetProposedMessage()
		if ev.Metadata["type"] == "" || ev.Metadata["content-type"] == "" {
			return status.Error(codes.InvalidArgument, "Required Metadata Property is missing")
		}
		events = append(events, ev)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	recs := m.streams[stream]
	current := int64(len(recs)) - 1 // -1: no stream
	var expected int64
	switch e := opts.ExpectedStreamRevision.(type) {
	case *api.AppendReq_Options_Any:
		expected = -2
	case *api.AppendReq_Options_NoStream:
		expected = -1
	case *api.AppendReq_Options_StreamExists:
		expected = -4
	case *api.AppendReq_Options_Revision:
		expected = int64(e.Revision)
	}
	idOf := func(ev *api.AppendReq_ProposedMessage) uuid.UUID {
		id, _ := esdb.ParseUUIDFromInt64(ev.Id.GetStructured().GetMostSignificantBits(), ev.Id.GetStructured().GetLeastSignificantBits())
		return id
	}
	success := func(last *modelRecord) error {
		return srv.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
			CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: last.number},
			PositionOption:        &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: last.pos, PreparePosition: last.pos}},
		}}})
	}
	wrong := func() error {
		w := &api.AppendResp_WrongExpectedVersion{}
		if current < 0 {
			w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		} else {
			w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(current)}
		}
		return srv.SendAndClose(&api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}})
	}
	// CheckCommit's idempotency: the IDs at the expected revision + 1... (or, for Any,
	// anywhere in the stream, in order) are those of the append.
	matchAt := func(from int64) (matched, partial bool) {
		for i, ev := range events {
			n := from + int64(i)
			if n < 0 || n >= int64(len(recs)) || recs[n].id != idOf(ev) {
				return false, i > 0
			}
		}
		return true, false
	}
	switch {
	case expected == -2 || expected == -4:
		for i, r := range recs {
			if r.id == idOf(events[0]) {
				if ok, _ := matchAt(int64(i)); ok {
					return success(recs[i+len(events)-1])
				}
				return wrong()
			}
		}
		if expected == -4 && current < 0 {
			return wrong()
		}
	case expected < current:
		if ok, _ := matchAt(expected + 1); ok {
			return success(recs[expected+int64(len(events))])
		}
		return wrong()
	case expected > current:
		return wrong()
	}
	written := m.writeLocked(stream, events)
	last := written[len(written)-1]
	m.writeSystemLocked()
	return success(last)
}

func (m *modelServer) readEvent(r *modelRecord, withPosition bool) *api.ReadResp {
	ev := &api.ReadResp_ReadEvent{Event: &api.ReadResp_ReadEvent_RecordedEvent{
		Id:               &shared.UUID{Value: &shared.UUID_Structured_{Structured: structured(r.id)}},
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
		StreamRevision:   r.number,
		CommitPosition:   r.pos,
		PreparePosition:  r.pos,
		Metadata: map[string]string{
			"type": r.eventType, "content-type": r.contentType,
			"created": strconv.FormatInt(r.created.UnixNano()/100, 10),
		},
		CustomMetadata: r.meta,
		Data:           r.data,
	}}
	if withPosition {
		ev.Position = &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.pos}
	} else {
		ev.Position = &api.ReadResp_ReadEvent_NoPosition{NoPosition: &shared.Empty{}}
	}
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: ev}}
}

// boundary is the index in the log of the record at pos (len(log) for the end), or
// an InvalidPosition error, as the server answers reads at a position that is not
// the start of a record.
func (m *modelServer) boundary(pos uint64) (int, error) {
	for i, r := range m.log {
		if r.pos == pos {
			return i, nil
		}
		if r.pos > pos {
			break
		}
	}
	if pos == m.next {
		return len(m.log), nil
	}
	m.invalid.Add(1)
	return 0, status.Errorf(codes.InvalidArgument, "invalid position %d", pos)
}

func (m *modelServer) Read(req *api.ReadReq, srv api.Streams_ReadServer) error {
	o := req.Options
	if _, ok := o.FilterOption.(*api.ReadReq_Options_Filter); ok && o.GetSubscription() == nil {
		return status.Error(codes.InvalidArgument, "The combination of (All, Count, Forwards, Filter) is invalid.")
	}
	if o.GetSubscription() != nil {
		return m.subscribe(req, srv)
	}
	count := int(min(o.GetCount(), 1<<20))
	backwards := o.ReadDirection == api.ReadReq_Options_Backwards

	m.mu.Lock()
	var out []*api.ReadResp
	if so := o.GetStream(); so != nil {
		recs := m.streams[string(so.StreamIdentifier.GetStreamName())]
		if len(recs) == 0 {
			m.mu.Unlock()
			return srv.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{StreamIdentifier: so.StreamIdentifier}}})
		}
		from := int64(0)
		switch r := so.RevisionOption.(type) {
		case *api.ReadReq_Options_StreamOptions_Revision:
			from = int64(r.Revision)
		case *api.ReadReq_Options_StreamOptions_End:
			from = int64(len(recs)) - 1
		}
		for i := from; i >= 0 && i < int64(len(recs)) && len(out) < count; {
			out = append(out, m.readEvent(recs[i], false))
			if backwards {
				i--
			} else {
				i++
			}
		}
	} else {
		ao := o.GetAll()
		start := 0
		if backwards {
			start = len(m.log)
		}
		if p := ao.GetPosition(); p != nil {
			if p.CommitPosition != p.PreparePosition {
				m.mu.Unlock()
				return status.Error(codes.InvalidArgument, "commit and prepare positions differ")
			}
			var err error
			if start, err = m.boundary(p.CommitPosition); err != nil {
				m.mu.Unlock()
				return err
			}
		} else if ao.GetEnd() != nil && !backwards {
			start = len(m.log)
		}
		if backwards { // records before the position
			for i := start - 1; i >= 0 && len(out) < count; i-- {
				out = append(out, m.readEvent(m.log[i], true))
			}
		} else { // records from the position on
			for i := start; i < len(m.log) && len(out) < count; i++ {
				out = append(out, m.readEvent(m.log[i], true))
			}
		}
	}
	m.mu.Unlock()
	for _, r := range out {
		if err := srv.Send(r); err != nil {
			return err
		}
	}
	return nil
}

// subscribe is the filtered catch-up subscription to $all: it starts after the given
// position, sends matching events, and a checkpoint every 32 records it considered
// (past the last matching event, often), then waits for new records.
func (m *modelServer) subscribe(req *api.ReadReq, srv api.Streams_ReadServer) error {
	o := req.Options
	ao := o.GetAll()
	if ao == nil {
		return status.Error(codes.Unimplemented, "stream subscriptions are not modelled")
	}
	match := func(*modelRecord) bool { return true }
	if f := o.GetFilter(); f != nil {
		expr, onStream := f.GetStreamIdentifier(), true
		if expr == nil {
			expr, onStream = f.GetEventType(), false
		}
		var re *regexp.Regexp
		if expr.Regex != "" {
			var err error
			if re, err = regexp.Compile(expr.Regex); err != nil {
				return status.Error(codes.InvalidArgument, err.Error())
			}
		}
		match = func(r *modelRecord) bool {
			s := r.eventType
			if onStream {
				s = r.stream
			}
			if re != nil {
				return re.MatchString(s)
			}
			for _, p := range expr.Prefix {
				if strings.HasPrefix(s, p) {
					return true
				}
			}
			return false
		}
	}
	m.mu.Lock()
	next := 0
	switch {
	case ao.GetPosition() != nil:
		i, err := m.boundary(ao.GetPosition().CommitPosition)
		if err != nil {
			m.mu.Unlock()
			return err
		}
		next = i + 1 // exclusive
		if i == len(m.log) {
			next = i
		}
	case ao.GetEnd() != nil:
		next = len(m.log)
	}
	m.mu.Unlock()
	if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: uuid.NewString()}}}); err != nil {
		return err
	}
	considered := 0
	caughtUp := false
	for {
		m.mu.Lock()
		batch := m.log[next:]
		changed := m.changed
		end := m.next
		m.mu.Unlock()
		for _, r := range batch {
			next++
			considered++
			if match(r) {
				if err := srv.Send(m.readEvent(r, true)); err != nil {
					return err
				}
			}
			if considered%32 == 0 {
				if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{CommitPosition: r.pos, PreparePosition: r.pos}}}); err != nil {
					return err
				}
			}
		}
		if !caughtUp {
			caughtUp = true
			// A checkpoint at the end of the log: past the last event of any store.
			if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{CommitPosition: end, PreparePosition: 0}}}); err != nil {
				return err
			}
			if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}); err != nil {
				return err
			}
		}
		select {
		case <-srv.Context().Done():
			return srv.Context().Err()
		case <-changed:
		}
	}
}

func startModelServer(t testing.TB) (*modelServer, string) {
	t.Helper()
	m := newModelServer()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	api.RegisterStreamsServer(srv, m)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return m, fmt.Sprintf("esdb://%s?tls=false", lis.Addr())
}

// TestAdapterAgainstModelServer runs the conformance suite through the real client
// against the model server, several stores sharing it with their own prefixes and
// start positions, as the KurrentDB conformance run does. See the file comment: this
// tests the adapter, not KurrentDB.
func TestAdapterAgainstModelServer(t *testing.T) {
	m, url := startModelServer(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		ctx := t.Context()
		probe, err := Open(ctx, Config{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		head, err := probe.HeadCommitPosition(ctx)
		probe.Close()
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(ctx, Config{URL: url, StreamPrefix: fmt.Sprintf("t%d-", n.Add(1)), StartPosition: head})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
	if bad := m.invalid.Load(); bad != 0 {
		t.Errorf("the adapter read $all %d times at positions that are not record boundaries", bad)
	}
}

// TestModelServerWithoutPrefix: a store without prefix or start position sees every
// port-named stream and none of the server's own.
func TestModelServerWithoutPrefix(t *testing.T) {
	m, url := startModelServer(t)
	ctx := t.Context()
	s, err := Open(ctx, Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if last, err := s.LastPosition(ctx); err != nil || last != 0 {
		t.Fatalf("LastPosition of a store holding only system events = %d, %v", last, err)
	}
	res, err := s.Append(ctx, "ticket-1", eventstore.NoStream, []eventstore.EventData{
		{ID: uuid.NewString(), Type: "A", Data: []byte(`{}`)},
		{ID: uuid.NewString(), Type: "B"},
	})
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.ReadAll(ctx, 0, 100)
	if err != nil || len(all) != 2 || all[1].Position != res.LastPosition || all[0].Position+1 != all[1].Position {
		t.Fatalf("ReadAll = %+v, %v", all, err)
	}
	// The page size is smaller than the log: many pages, positions still right.
	for range 3 * readPage / 2 {
		if _, err := s.Append(ctx, "ticket-2", eventstore.AnyRevision, []eventstore.EventData{{ID: uuid.NewString(), Type: "C"}}); err != nil {
			t.Fatal(err)
		}
	}
	all, err = s.ReadAll(ctx, 1, 1<<20)
	if err != nil || len(all) != 2+3*readPage/2 {
		t.Fatalf("ReadAll over pages: %d events, %v", len(all), err)
	}
	last, err := s.LastPosition(ctx)
	if err != nil || last != all[len(all)-1].Position {
		t.Fatalf("LastPosition = %d, %v; last event at %d", last, err, all[len(all)-1].Position)
	}
	if bad := m.invalid.Load(); bad != 0 {
		t.Errorf("%d reads at positions that are not record boundaries", bad)
	}
}

// TestReconnectAfterServerRestart: the client gives up for good when it cannot
// reconnect; the store replaces it, so that it works again once the server is back.
func TestReconnectAfterServerRestart(t *testing.T) {
	m := newModelServer()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	first := grpc.NewServer()
	api.RegisterStreamsServer(first, m)
	go first.Serve(lis)

	ctx := t.Context()
	s, err := Open(ctx, Config{URL: "esdb://" + addr + "?tls=false&maxDiscoverAttempts=1&discoveryInterval=10"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, "ticket-1", eventstore.NoStream, []eventstore.EventData{{ID: uuid.NewString(), Type: "A"}}); err != nil {
		t.Fatal(err)
	}

	first.Stop()
	for i := range 4 {
		callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := s.LastPosition(callCtx)
		cancel()
		if !errors.Is(err, eventstore.ErrUnavailable) {
			t.Fatalf("call %d with the server down: %v, want ErrUnavailable", i, err)
		}
	}

	lis2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	second := grpc.NewServer()
	api.RegisterStreamsServer(second, m)
	go second.Serve(lis2)
	defer second.Stop()

	// gRPC reconnects the client's connection with back-off (1 s, then longer): calls
	// keep failing fast for a moment after the server is back.
	var last uint64
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last, err = s.LastPosition(callCtx)
		cancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		if !errors.Is(err, eventstore.ErrUnavailable) {
			t.Fatalf("call %d after the restart: %v, want ErrUnavailable until it works", i, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || last == 0 {
		t.Fatalf("LastPosition after the server came back: %d, %v", last, err)
	}
	if _, err := s.Append(ctx, "ticket-1", 1, []eventstore.EventData{{ID: uuid.NewString(), Type: "B"}}); err != nil {
		t.Fatalf("Append after the server came back: %v", err)
	}
}
