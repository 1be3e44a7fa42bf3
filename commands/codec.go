package commands

import (
	"context"
	"crypto/sha1"
	"fmt"

	"github.com/google/uuid"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
)

// idNamespace scopes the name-based UUIDs derived from command IDs.
var idNamespace = uuid.MustParse("5f6b2c1e-8d3a-4e7b-9c0d-1a2b3c4d5e6f")

// DeriveID is a stable UUID for a purpose within a command: a retried command derives
// the same ticket IDs and event IDs, which is what makes retries idempotent end to end.
// Its name, the command ID then each purpose after a NUL byte, must never change:
// stored IDs were derived from it.
func DeriveID(commandID string, purpose ...string) string {
	// uuid.NewSHA1 computed in place: the SHA-1 of the namespace then the name, with
	// the version (5) and variant bits set. A name fits the stack buffer in practice.
	var buf [160]byte
	name := append(buf[:0], idNamespace[:]...)
	name = append(name, commandID...)
	for _, p := range purpose {
		name = append(name, 0)
		name = append(name, p...)
	}
	sum := sha1.Sum(name)
	var id uuid.UUID
	copy(id[:], sum[:])
	id[6] = id[6]&0x0f | 0x50
	id[8] = id[8]&0x3f | 0x80
	return id.String()
}

// encode turns envelopes into store records. Events from NewEvents carry their stored
// form already; others are encoded here.
func encode(events []domain.Event) ([]eventstore.EventData, error) {
	data := make([]eventstore.EventData, len(events))
	for i, e := range events {
		b := e.Encoded
		if b == nil {
			var err error
			if b, err = e.Encode(); err != nil {
				return nil, fmt.Errorf("encode event %s: %w", e.Type, err)
			}
		}
		data[i] = eventstore.EventData{ID: e.ID, Type: e.Type, Data: b}
	}
	return data, nil
}

// loadStream reads and decodes a whole stream. The revision is the store's token for
// the stream's last event (NoStream when empty). The events share nothing with the
// bytes read (DecodeEvent, not DecodeEventNoCopy): what they are folded into is kept
// in caches for long, and a stream of a few events is not worth views.
func loadStream(ctx context.Context, store eventstore.Store, stream string) ([]domain.Event, eventstore.Revision, error) {
	recs, err := store.ReadStream(ctx, stream)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", stream, err)
	}
	return decodeAll(stream, recs)
}

// loadAt is loadStream for the events of stream at the given positions.
func loadAt(ctx context.Context, store eventstore.Store, stream string, positions []uint64) ([]domain.Event, eventstore.Revision, error) {
	recs, err := store.ReadAt(ctx, stream, positions)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", stream, err)
	}
	return decodeAll(stream, recs)
}

// decodeAll decodes the events read from stream, and gives the revision of the last
// (NoStream when there is none).
func decodeAll(stream string, recs []eventstore.RecordedEvent) ([]domain.Event, eventstore.Revision, error) {
	events := make([]domain.Event, len(recs))
	for i, r := range recs {
		var err error
		if events[i], err = domain.DecodeEvent(r.Data); err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", stream, err)
		}
	}
	rev := eventstore.NoStream
	if n := len(recs); n > 0 {
		rev = recs[n-1].Revision
	}
	return events, rev, nil
}
