package jetstream

import (
	"errors"
	"fmt"
	"testing"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/eventstore"
)

// TestConflictCodes checks that both wrong-sequence answers of JetStream are
// ErrConflict: 10071 (JSStreamWrongLastSequenceErrF, any stream) and 10164
// (JSStreamWrongLastSequenceConstantErr, which the leader of a replicated stream gives
// while earlier writes to the subject are still being proposed). The mapping looks for
// a retry of a stored append first, so it needs a store to read from; and a stored
// event that is the expected one is a duplicate, not a conflict.
func TestConflictCodes(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stored := eventstore.EventData{ID: "0b0e1a54-8a43-4f7c-8d3c-6a0a3bb3f2a1", Type: "T", Data: []byte(`{}`)}
	if _, err := s.Append(ctx, "ticket-1", eventstore.NoStream, []eventstore.EventData{stored}); err != nil {
		t.Fatal(err)
	}
	for _, code := range []natsjs.ErrorCode{codeWrongLastSequence, codeWrongLastSequenceConstant} {
		cause := fmt.Errorf("nats: %w", &natsjs.APIError{Code: 400, ErrorCode: code, Description: "wrong last sequence"})
		// Another writer's event follows the expected revision: a conflict.
		got := s.appendError(ctx, "ticket-1", eventstore.NoStream, "another-event", cause)
		if !errors.Is(got, eventstore.ErrConflict) || errors.Is(got, eventstore.ErrDuplicate) {
			t.Errorf("code %d: mapped to %v, want ErrConflict", code, got)
		}
		var apiErr *natsjs.APIError
		if !errors.As(got, &apiErr) || apiErr.ErrorCode != code {
			t.Errorf("code %d: %v does not wrap the server's answer", code, got)
		}
		// The expected revision is followed by this very event: the retry of a stored
		// append, a duplicate.
		got = s.appendError(ctx, "ticket-1", eventstore.NoStream, stored.ID, cause)
		if !errors.Is(got, eventstore.ErrDuplicate) || errors.Is(got, eventstore.ErrConflict) {
			t.Errorf("code %d, stored event: mapped to %v, want ErrDuplicate", code, got)
		}
		// A stream with nothing after the expected revision: a conflict too.
		got = s.appendError(ctx, "ticket-2", eventstore.Revision(5), "x", cause)
		if !errors.Is(got, eventstore.ErrConflict) {
			t.Errorf("code %d, empty stream: mapped to %v, want ErrConflict", code, got)
		}
	}
}
