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
