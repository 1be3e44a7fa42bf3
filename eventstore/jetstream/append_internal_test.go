package jetstream

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/eventstore"
)

// TestAppendErrorMapping covers the answers that are hard to provoke on a single
// embedded server. Wrong-sequence answers need a store and run in the conformance suite.
func TestAppendErrorMapping(t *testing.T) {
	apiErr := func(code int, errCode natsjs.ErrorCode) error {
		// As js.PublishMsg returns them.
		return fmt.Errorf("nats: %w", &natsjs.APIError{Code: code, ErrorCode: errCode, Description: "test"})
	}
	cases := []struct {
		name string
		err  error
		want error // nil: none of the port's errors
	}{
		{"duplicate ack", errDuplicateAck, eventstore.ErrDuplicate},
		{"batch duplicate", apiErr(400, codeBatchDuplicate), eventstore.ErrDuplicate},
		{"message too large", apiErr(400, codeMessageTooLarge), eventstore.ErrInvalid},
		{"header too large", apiErr(400, codeHeaderTooLarge), eventstore.ErrInvalid},
		{"batch too large", apiErr(400, codeBatchTooLarge), eventstore.ErrInvalid},
		{"max payload", nats.ErrMaxPayload, eventstore.ErrInvalid},
		{"account limits", apiErr(400, codeAccountLimits), eventstore.ErrUnavailable},
		{"batch incomplete", apiErr(400, codeBatchIncomplete), eventstore.ErrUnavailable},
		{"duplicate in process", apiErr(409, codeDuplicateInProcess), eventstore.ErrUnavailable},
		{"insufficient resources", apiErr(503, 10023), eventstore.ErrUnavailable},
		{"store failed", apiErr(503, 10077), eventstore.ErrUnavailable},
		{"too many batches in flight", apiErr(429, 10210), eventstore.ErrUnavailable},
		{"timeout", nats.ErrTimeout, eventstore.ErrUnavailable},
		{"deadline", context.DeadlineExceeded, eventstore.ErrUnavailable},
		{"no stream", natsjs.ErrNoStreamResponse, eventstore.ErrUnavailable},
		{"connection closed", nats.ErrConnectionClosed, eventstore.ErrUnavailable},
		{"atomic publish disabled", apiErr(400, 10174), nil},
	}
	sentinels := []error{eventstore.ErrConflict, eventstore.ErrDuplicate, eventstore.ErrInvalid, eventstore.ErrUnavailable}
	s := &Store{}
	for _, c := range cases {
		got := s.appendError(t.Context(), "ticket-1", eventstore.NoStream, "id-1", c.err)
		for _, sentinel := range sentinels {
			if errors.Is(got, sentinel) != (sentinel == c.want) {
				t.Errorf("%s: mapped to %v, want %v", c.name, got, c.want)
			}
		}
		if !errors.Is(got, c.err) && c.err != errDuplicateAck {
			t.Errorf("%s: %v does not wrap the cause", c.name, got)
		}
	}
}

func TestParsePubAck(t *testing.T) {
	s := &Store{ackPrefix: []byte(`{"stream":"EVENTS","seq":`)}
	cases := []struct {
		ack     string
		seq     uint64
		wantErr error // nil: none; errAny: some error
	}{
		{`{"stream":"EVENTS","seq":42}`, 42, nil},
		{`{"stream":"EVENTS","seq":9999999999999999999}`, 9999999999999999999, nil},
		{`{"stream":"EVENTS","seq":18446744073709551615}`, 18446744073709551615, nil}, // 20 digits: decoded as JSON
		{`{"stream":"EVENTS","domain":"hub","seq":7}`, 7, nil},
		{`{"stream":"EVENTS", "seq": 8}`, 8, nil},
		{`{"stream":"EVENTS","seq":5,"duplicate":true}`, 0, errDuplicateAck},
		{`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"},"stream":"EVENTS","seq":0}`, 0, errAny},
		{`{"stream":"EVENTS","seq":1x}`, 0, errAny},
		{`{"stream":"EVENTS","seq":}`, 0, errAny},
		{`{"stream":"","seq":3}`, 0, errAny},
		{``, 0, errAny},
	}
	for _, c := range cases {
		seq, err := s.parsePubAck([]byte(c.ack))
		switch {
		case c.wantErr == nil && (err != nil || seq != c.seq):
			t.Errorf("%s: %d, %v; want %d", c.ack, seq, err, c.seq)
		case c.wantErr == errAny && err == nil:
			t.Errorf("%s: %d, want an error", c.ack, seq)
		case c.wantErr != nil && c.wantErr != errAny && !errors.Is(err, c.wantErr):
			t.Errorf("%s: %v, want %v", c.ack, err, c.wantErr)
		}
	}
	var apiErr *natsjs.APIError
	if _, err := s.parsePubAck([]byte(cases[6].ack)); !errors.As(err, &apiErr) || apiErr.ErrorCode != codeWrongLastSequence {
		t.Errorf("an error answer gives %v, want the API error", err)
	}
}

var errAny = errors.New("any error")
