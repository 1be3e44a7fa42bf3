package kurrentdb

// Unit tests of the mappings, with no server: revisions, positions, metadata, error
// classification and the conversion of events.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ticketcore/ticketcore/eventstore"
)

func TestExpectedRevision(t *testing.T) {
	for _, c := range []struct {
		port eventstore.Revision
		want esdb.ExpectedRevision
	}{
		{eventstore.NoStream, esdb.NoStream{}},
		{eventstore.AnyRevision, esdb.Any{}},
		{1, esdb.StreamRevision{Value: 0}},
		{2, esdb.StreamRevision{Value: 1}},
		{1001, esdb.StreamRevision{Value: 1000}},
		{eventstore.AnyRevision - 1, esdb.StreamRevision{Value: math.MaxUint64 - 2}},
	} {
		if got := expectedRevision(c.port); !reflect.DeepEqual(got, c.want) {
			t.Errorf("expectedRevision(%d) = %#v, want %#v", c.port, got, c.want)
		}
	}
	// The revision of a stream whose last event is number n is what the next append
	// expects: it maps back to n.
	for _, n := range []uint64{0, 1, 41} {
		if got := expectedRevision(portRevision(n)); got != (esdb.StreamRevision{Value: n}) {
			t.Errorf("expectedRevision(portRevision(%d)) = %#v", n, got)
		}
	}
	if portRevision(0) == eventstore.NoStream {
		t.Error("the first event's revision is NoStream")
	}
}

func TestPositionEncoding(t *testing.T) {
	for _, c := range []struct {
		base   uint64
		offset int
		want   uint64
	}{
		{0, 0, 0},
		{1234, 0, 12_340_000},
		{1234, 2, 12_340_002},
		{maxCommitPosition, maxAppendEvents - 1, maxCommitPosition*positionScale + maxAppendEvents - 1},
	} {
		got, err := encodePosition(c.base, c.offset)
		if err != nil || got != c.want {
			t.Errorf("encodePosition(%d, %d) = %d, %v; want %d", c.base, c.offset, got, err, c.want)
		}
		// The position and the one after it start reads at the append's first event.
		if startCommit(got) != c.base || startCommit(got+1) != c.base {
			t.Errorf("startCommit(%d) = %d, startCommit(+1) = %d; want %d", got, startCommit(got), startCommit(got+1), c.base)
		}
	}
	if p, _ := encodePosition(maxCommitPosition, maxAppendEvents-1); p == math.MaxUint64 {
		t.Error("no room left for position + 1")
	}
	for _, c := range []struct {
		base   uint64
		offset int
	}{{maxCommitPosition + 1, 0}, {1, -1}, {1, maxAppendEvents}} {
		if _, err := encodePosition(c.base, c.offset); err == nil {
			t.Errorf("encodePosition(%d, %d) succeeded", c.base, c.offset)
		}
	}
	// Positions 0 and 1 read $all from its start.
	if startCommit(0) != 0 || startCommit(1) != 0 {
		t.Error("positions 0 and 1 do not start at the beginning of $all")
	}
}

func TestAppendMetadata(t *testing.T) {
	for _, n := range []int{2, 3, maxAppendEvents} {
		for _, i := range []int{0, 1, n - 1} {
			meta := appendMetadata(i, n)
			if got := appendIndex(meta); got != i {
				t.Errorf("appendIndex(%s) = %d, want %d", meta, got, i)
			}
		}
	}
	if got := string(appendMetadata(1, 3)); got != `{"appendIndex":1,"appendCount":3}` {
		t.Errorf("metadata %s", got)
	}
	// Events of other writers, or of single-event appends, are first of their append.
	for _, meta := range []string{
		``, `{}`, `not json`, `{"appendIndex":2}`, `{"appendIndex":3,"appendCount":3}`,
		`{"appendIndex":-1,"appendCount":3}`, `{"appendIndex":1,"appendCount":20000}`,
		`{"$correlationId":"x"}`, `[1,2]`,
	} {
		if got := appendIndex([]byte(meta)); got != 0 {
			t.Errorf("appendIndex(%q) = %d, want 0", meta, got)
		}
	}
}

// fakeLog builds KurrentDB events as $all would return them: one record after the
// other, each at its own commit (= prepare) position.
type fakeLog struct {
	pos    uint64
	events []*esdb.RecordedEvent
	revs   map[string]uint64
}

func (l *fakeLog) append(stream string, n int, withMetadata bool) []*esdb.RecordedEvent {
	if l.revs == nil {
		l.revs = map[string]uint64{}
		l.pos = 1_000
	}
	var out []*esdb.RecordedEvent
	for i := range n {
		rev, seen := l.revs[stream]
		if seen {
			rev++
		}
		l.revs[stream] = rev
		ev := &esdb.RecordedEvent{
			EventID: uuid.New(), EventType: "TestEvent", StreamID: stream, EventNumber: rev,
			Position: esdb.Position{Commit: l.pos, Prepare: l.pos}, CreatedDate: time.Now(),
		}
		if n > 1 && withMetadata {
			ev.UserMetadata = appendMetadata(i, n)
		}
		l.pos += 137 + uint64(i%3)*11 // records of different sizes
		l.events = append(l.events, ev)
		out = append(out, ev)
	}
	return out
}

func TestChain(t *testing.T) {
	var log fakeLog
	type batch struct{ first, n int }
	var batches []batch
	add := func(stream string, n int) {
		batches = append(batches, batch{len(log.events), n})
		log.append(stream, n, true)
	}
	add("a", 1)
	add("a", 3)
	add("b", 2)
	add("a", 1)
	add("a", 1) // two single appends in a row to one stream: two appends
	add("c", 5)
	add("b", 1)

	var c chain
	positions := make([]uint64, len(log.events))
	for i, ev := range log.events {
		p, err := c.next(ev)
		if err != nil {
			t.Fatal(err)
		}
		positions[i] = p
		if i > 0 && p <= positions[i-1] {
			t.Fatalf("position %d after %d", p, positions[i-1])
		}
	}
	for _, b := range batches {
		base := log.events[b.first].Position.Commit
		for i := range b.n {
			if want := base*positionScale + uint64(i); positions[b.first+i] != want {
				t.Errorf("event %d of an append of %d at %d, want %d", i, b.n, positions[b.first+i], want)
			}
		}
	}

	// Reading one stream gives its events the same positions as reading $all.
	var sc chain
	for i, ev := range log.events {
		if ev.StreamID != "a" {
			continue
		}
		if p, _ := sc.next(ev); p != positions[i] {
			t.Errorf("stream read: event %d of a at %d, $all read at %d", ev.EventNumber, p, positions[i])
		}
	}

	// A read that starts at a position's startCommit sees the same positions.
	for start := range log.events {
		from := positions[start]
		var rc chain
		for i, ev := range log.events {
			if ev.Position.Commit < startCommit(from) {
				continue
			}
			p, _ := rc.next(ev)
			if p >= from && p != positions[i] {
				t.Fatalf("read from %d: event %d at %d, want %d", from, i, p, positions[i])
			}
		}
	}

	// LastPosition's backward walk agrees with the forward chain.
	for end := range log.events {
		newest := []*esdb.RecordedEvent{log.events[end]}
		for i := end - 1; i >= 0 && appendIndex(newest[len(newest)-1].UserMetadata) > 0; i-- {
			if !continues(log.events[i], newest[len(newest)-1]) {
				break
			}
			newest = append(newest, log.events[i])
		}
		var bc chain
		var p uint64
		for i := len(newest) - 1; i >= 0; i-- {
			p, _ = bc.next(newest[i])
		}
		if p != positions[end] {
			t.Errorf("backward walk from event %d gives %d, forward %d", end, p, positions[end])
		}
	}
}

func TestChainWithoutMetadata(t *testing.T) {
	// Events of other writers carry no index: each starts its own append, so a
	// multi-event append of theirs gets sparse but still increasing positions.
	var log fakeLog
	log.append("x", 3, false)
	var c chain
	var last uint64
	for i, ev := range log.events {
		p, err := c.next(ev)
		if err != nil {
			t.Fatal(err)
		}
		if p != ev.Position.Commit*positionScale || i > 0 && p <= last {
			t.Errorf("event %d at %d", i, p)
		}
		last = p
	}
	// An append whose first events are missing (truncated stream) restarts the count.
	var log2 fakeLog
	evs := log2.append("y", 4, true)
	var c2 chain
	p2, _ := c2.next(evs[2])
	p3, _ := c2.next(evs[3])
	if p2 != evs[2].Position.Commit*positionScale || p3 != p2+1 {
		t.Errorf("partial append at %d, %d", p2, p3)
	}
}

func TestCheckPosition(t *testing.T) {
	ev := &esdb.RecordedEvent{StreamID: "s", Position: esdb.Position{Commit: 10, Prepare: 10}}
	if err := checkPosition(ev); err != nil {
		t.Errorf("a regular event: %v", err)
	}
	ev.Position = esdb.Position{Commit: noPosition, Prepare: noPosition}
	if err := checkPosition(ev); err == nil || !strings.Contains(err.Error(), "22.6") {
		t.Errorf("an event without position: %v", err)
	}
	ev.Position = esdb.Position{Commit: 20, Prepare: 10}
	if err := checkPosition(ev); err == nil || !strings.Contains(err.Error(), "transaction") {
		t.Errorf("an event of an explicit transaction: %v", err)
	}
	var c chain
	if _, err := c.next(ev); err == nil {
		t.Error("chain accepted an event of an explicit transaction")
	}
}

func TestPortError(t *testing.T) {
	for _, c := range []struct {
		code esdb.ErrorCode
		grpc codes.Code
		want error
	}{
		{esdb.ErrorCodeWrongExpectedVersion, codes.OK, eventstore.ErrConflict},
		{esdb.ErrorUnavailable, codes.Unavailable, eventstore.ErrUnavailable},
		{esdb.ErrorCodeDeadlineExceeded, codes.DeadlineExceeded, eventstore.ErrUnavailable},
		{esdb.ErrorCodeNotLeader, codes.OK, eventstore.ErrUnavailable},
		{esdb.ErrorAborted, codes.Aborted, eventstore.ErrUnavailable},
		{esdb.ErrorCodeUnknown, codes.Unavailable, eventstore.ErrUnavailable},
		{esdb.ErrorCodeUnknown, codes.ResourceExhausted, eventstore.ErrUnavailable},
		{esdb.ErrorCodeUnknown, codes.InvalidArgument, eventstore.ErrInvalid},
		{esdb.ErrorCodeAccessDenied, codes.PermissionDenied, nil},
		{esdb.ErrorCodeUnauthenticated, codes.Unauthenticated, nil},
		{esdb.ErrorCodeStreamDeleted, codes.OK, nil},
		{esdb.ErrorCodeResourceNotFound, codes.OK, nil},
		{esdb.ErrorCodeConnectionClosed, codes.OK, eventstore.ErrUnavailable},
		{esdb.ErrorCodeUnknown, codes.Unknown, nil},
	} {
		if got := portError(c.code, c.grpc); got != c.want {
			t.Errorf("portError(%d, %v) = %v, want %v", c.code, c.grpc, got, c.want)
		}
	}
}

func TestClassify(t *testing.T) {
	// The client wraps gRPC errors it does not classify itself in an *esdb.Error
	// with ErrorCodeUnknown; FromError is the client's own way to build one.
	grpcErr := status.Error(codes.Unavailable, "Server Is Not Ready")
	esErr, _ := esdb.FromError(grpcErr)
	for _, err := range []error{grpcErr, esErr, fmt.Errorf("append: %w", esErr)} {
		code, grpcCode := classify(err)
		if code != esdb.ErrorCodeUnknown || grpcCode != codes.Unavailable {
			t.Errorf("classify(%v) = %d, %v", err, code, grpcCode)
		}
	}
	if code, grpcCode := classify(errors.New("plain")); code != esdb.ErrorCodeUnknown || grpcCode != codes.OK {
		t.Errorf("classify(plain) = %d, %v", code, grpcCode)
	}

	ctx := context.Background()
	err := appendError(ctx, "ticket-1", 3, esErr)
	if !errors.Is(err, eventstore.ErrUnavailable) || !errors.Is(err, esErr) || !strings.Contains(err.Error(), "ticket-1") {
		t.Errorf("appendError(unavailable) = %v", err)
	}
	tooBig, _ := esdb.FromError(status.Error(codes.InvalidArgument, "Maximum Append Size of 1048576 Exceeded."))
	if err := appendError(ctx, "ticket-1", 3, tooBig); !errors.Is(err, eventstore.ErrInvalid) {
		t.Errorf("appendError(too big) = %v", err)
	}
	wev, _ := esdb.FromError(status.Error(codes.FailedPrecondition, "Append failed due to WrongExpectedVersion."))
	if err := appendError(ctx, "ticket-1", 3, wev); !errors.Is(err, eventstore.ErrConflict) || !strings.Contains(err.Error(), "expected revision 3") {
		t.Errorf("appendError(FailedPrecondition) = %v", err)
	}
	if err := appendError(ctx, "ticket-1", 3, errors.New("access denied")); errors.Is(err, eventstore.ErrUnavailable) || errors.Is(err, eventstore.ErrConflict) {
		t.Errorf("appendError(other) = %v", err)
	}

	// A call cut by its context: the client reports a gRPC Canceled status.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	canceledErr, _ := esdb.FromError(status.Error(codes.Canceled, "context canceled"))
	err = appendError(cancelled, "ticket-1", 3, canceledErr)
	if !errors.Is(err, eventstore.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("appendError(cancelled) = %v", err)
	}
}

func TestProposedEvents(t *testing.T) {
	id := uuid.NewString()
	events := []eventstore.EventData{
		{ID: id, Type: "TicketOpened", Data: []byte(`{"title":"x"}`)},
		{ID: uuid.NewString(), Type: "Binary", Data: []byte{0, 0xff}},
		{ID: uuid.NewString(), Type: "Empty"},
	}
	data, err := proposedEvents(events)
	if err != nil {
		t.Fatal(err)
	}
	if data[0].EventID.String() != id || data[0].EventType != "TicketOpened" || string(data[0].Data) != `{"title":"x"}` {
		t.Errorf("event 0 = %+v", data[0])
	}
	if data[0].ContentType != esdb.ContentTypeJson || data[1].ContentType != esdb.ContentTypeBinary || data[2].ContentType != esdb.ContentTypeBinary {
		t.Errorf("content types %d %d %d", data[0].ContentType, data[1].ContentType, data[2].ContentType)
	}
	for i, d := range data {
		if appendIndex(d.Metadata) != i {
			t.Errorf("event %d has metadata %s", i, d.Metadata)
		}
	}
	single, _ := proposedEvents(events[:1])
	if single[0].Metadata != nil {
		t.Errorf("a single event has metadata %s", single[0].Metadata)
	}

	for _, c := range []struct {
		what string
		ev   eventstore.EventData
	}{
		{"not a UUID", eventstore.EventData{ID: "ticket-1-opened", Type: "T"}},
		{"upper-case UUID", eventstore.EventData{ID: strings.ToUpper(uuid.NewString()), Type: "T"}},
		{"UUID without hyphens", eventstore.EventData{ID: strings.ReplaceAll(uuid.NewString(), "-", ""), Type: "T"}},
		{"nil UUID", eventstore.EventData{ID: uuid.Nil.String(), Type: "T"}},
		{"system type", eventstore.EventData{ID: uuid.NewString(), Type: "$metadata"}},
	} {
		if _, err := proposedEvents([]eventstore.EventData{c.ev}); !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", c.what, err)
		}
	}
	tooMany := make([]eventstore.EventData, maxAppendEvents+1)
	if _, err := proposedEvents(tooMany); !errors.Is(err, eventstore.ErrInvalid) {
		t.Errorf("%d events: err = %v, want ErrInvalid", len(tooMany), err)
	}
}

func TestPortStream(t *testing.T) {
	plain := &Store{}
	prefixed := &Store{prefix: "prod-"}
	ev := func(stream, typ string) *esdb.RecordedEvent {
		return &esdb.RecordedEvent{StreamID: stream, EventType: typ}
	}
	for _, c := range []struct {
		s      *Store
		ev     *esdb.RecordedEvent
		name   string
		isPort bool
	}{
		{plain, ev("ticket-1", "TicketOpened"), "ticket-1", true},
		{plain, ev("$stats-127.0.0.1:2113", "$statsCollected"), "", false},
		{plain, ev("$ce-ticket", "$>"), "", false},
		{plain, ev("$$ticket-1", "$metadata"), "", false},
		{plain, ev("ticket-1", "$streamDeleted"), "", false},
		{plain, ev("order.1", "OrderPlaced"), "", false},
		{prefixed, ev("prod-ticket-1", "TicketOpened"), "ticket-1", true},
		{prefixed, ev("ticket-1", "TicketOpened"), "", false},
		{prefixed, ev("prod-", "TicketOpened"), "", false},
		{prefixed, ev("$ce-prod", "$>"), "", false},
		{plain, nil, "", false},
	} {
		name, ok := c.s.portStream(c.ev)
		if name != c.name || ok != c.isPort {
			t.Errorf("prefix %q, event %+v: %q, %v; want %q, %v", c.s.prefix, c.ev, name, ok, c.name, c.isPort)
		}
	}
	if f := streamFilter(""); f.Type != esdb.StreamFilterType || f.Regex == "" || len(f.Prefixes) != 0 {
		t.Errorf("filter without prefix: %+v", f)
	}
	if f := streamFilter("prod-"); f.Type != esdb.StreamFilterType || f.Regex != "" || !reflect.DeepEqual(f.Prefixes, []string{"prod-"}) {
		t.Errorf("filter with prefix: %+v", f)
	}
}

func TestRecorded(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	id := uuid.New()
	ev := &esdb.RecordedEvent{EventID: id, EventType: "TicketOpened", StreamID: "prod-ticket-1", EventNumber: 4, CreatedDate: at}
	got := recorded("ticket-1", 77, ev)
	want := eventstore.RecordedEvent{Stream: "ticket-1", Revision: 5, Position: 77, ID: id.String(), Type: "TicketOpened", Data: []byte{}, RecordedAt: at}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("recorded = %+v, want %+v", got, want)
	}
}

func TestAfter(t *testing.T) {
	a := esdb.Position{Commit: 10, Prepare: 10}
	if !after(esdb.Position{Commit: 11, Prepare: 11}, a) || after(a, a) || after(esdb.Position{Commit: 9, Prepare: 9}, a) {
		t.Error("after on commit positions")
	}
	if !after(esdb.Position{Commit: 10, Prepare: 11}, a) {
		t.Error("after on prepare positions")
	}
}

func TestConnectionString(t *testing.T) {
	for in, want := range map[string]string{
		"esdb://127.0.0.1:2113?tls=false":         "esdb://127.0.0.1:2113?tls=false",
		"kurrentdb://127.0.0.1:2113?tls=false":    "esdb://127.0.0.1:2113?tls=false",
		"kurrentdb+discover://cluster.local:2113": "esdb+discover://cluster.local:2113",
		"kdb://h:2113": "esdb://h:2113",
	} {
		if got := esdbScheme(in); got != want {
			t.Errorf("esdbScheme(%q) = %q, want %q", in, got, want)
		}
	}
	if got := redact("esdb://admin:changeit@h:2113?tls=true"); strings.Contains(got, "changeit") {
		t.Errorf("redact kept the password: %s", got)
	}
	if _, err := Open(t.Context(), Config{URL: "esdb://admin:changeit@h:2113?tls=false&maxDiscoverAttempts=x"}); err == nil || strings.Contains(err.Error(), "changeit") || !strings.Contains(err.Error(), "invalid connection string") {
		t.Errorf("Open with a bad connection string: %v", err)
	}
	if got := redact("esdb://h:2113?tls=false"); got != "esdb://h:2113?tls=false" {
		t.Errorf("redact(no credentials) = %s", got)
	}
}

func TestOpenRejects(t *testing.T) {
	ctx := t.Context()
	for _, cfg := range []Config{
		{},
		{URL: "http://127.0.0.1:2113"},
		{URL: "esdb://127.0.0.1:2113?tls=false", StreamPrefix: "bad prefix"},
		{URL: "esdb://127.0.0.1:2113?tls=false", StreamPrefix: "$ce-"},
		{URL: "esdb://127.0.0.1:2113?tls=false", StreamPrefix: strings.Repeat("p", 101)},
		{URL: "esdb://127.0.0.1:2113?tls=false", StartPosition: maxCommitPosition + 1},
	} {
		if s, err := Open(ctx, cfg); err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

// TestOpenUnreachable: Open fails, within its context, when nothing listens.
func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	began := time.Now()
	s, err := Open(ctx, Config{URL: "esdb://127.0.0.1:1?tls=false&maxDiscoverAttempts=1&discoveryInterval=10"})
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded with no server")
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("the error does not name the server: %v", err)
	}
	if elapsed := time.Since(began); elapsed > 6*time.Second {
		t.Errorf("Open took %v", elapsed)
	}
	t.Logf("Open without a server: %v (in %v)", err, time.Since(began).Round(time.Millisecond))
}
