package domain

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
)

// Payload is the data of one kind of event. Type names are stable, dotted, past-tense
// strings ("ticket.created"), never Go type names, and each has a schema version.
type Payload interface {
	EventType() string
}

// Event is the envelope every stored event has. The envelope is what is hashed and
// stored; Payload is its decoded Data.
type Event struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	Stream        string          `json:"stream"`
	Sequence      uint64          `json:"sequence"` // 1-based position in its stream: the aggregate's version
	OccurredAt    time.Time       `json:"occurred_at"`
	Actor         string          `json:"actor"`
	CommandID     string          `json:"command_id,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	CausationID   string          `json:"causation_id,omitempty"`
	PrevHash      string          `json:"prev_hash"`
	Hash          string          `json:"hash"`
	Data          json.RawMessage `json:"data"`

	Payload Payload `json:"-"`
	// Encoded is the stored form of the envelope, what Encode returns, set by NewEvents
	// so that a command encodes each event once; nil on decoded events. It is not kept
	// in step with the fields: an event changed after NewEvents must be encoded again.
	Encoded []byte `json:"-"`
}

// Metadata is what the handler knows about the command that caused events.
type Metadata struct {
	CommandID     string
	Actor         string
	CorrelationID string
	CausationID   string
	At            time.Time
}

// validUTF8 refuses metadata that is not valid UTF-8. The envelope would store an
// invalid byte as \ufffd, which decodes to a different string than the one hashed: the
// event would fail verification once read back.
func (m Metadata) validUTF8() error {
	for _, f := range []struct{ name, value string }{
		{"actor", m.Actor}, {"command_id", m.CommandID}, {"correlation_id", m.CorrelationID}, {"causation_id", m.CausationID},
	} {
		if !utf8.ValidString(f.value) {
			return Invalid(f.name, "must be valid UTF-8")
		}
	}
	return nil
}

// NewEvents wraps the payloads decided for one command into envelopes that continue a
// stream at version after and chain to prevHash. ids supplies the event IDs (the handler
// derives them from the command ID, so that a retried command produces the same IDs).
// Each event is encoded once, for its hash and its stored form (Encoded).
func NewEvents(stream string, after uint64, prevHash string, meta Metadata, ids func(i int) string, payloads []Payload) ([]Event, error) {
	if err := meta.validUTF8(); err != nil {
		return nil, err
	}
	events := make([]Event, len(payloads))
	for i, p := range payloads {
		// go-json writes encoding/json's bytes (checked on every payload type and on
		// strings encoding/json escapes) in about half the time.
		data, err := gojson.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", p.EventType(), err)
		}
		e := Event{
			ID:            ids(i),
			Type:          p.EventType(),
			SchemaVersion: CurrentSchemaVersion(p.EventType()),
			Stream:        stream,
			Sequence:      after + uint64(i) + 1,
			OccurredAt:    meta.At.UTC(),
			Actor:         meta.Actor,
			CommandID:     meta.CommandID,
			CorrelationID: meta.CorrelationID,
			CausationID:   meta.CausationID,
			PrevHash:      prevHash,
			Data:          data,
			Payload:       p,
		}
		if err := e.seal(); err != nil {
			return nil, fmt.Errorf("encode %s: %w", p.EventType(), err)
		}
		prevHash = e.Hash
		events[i] = e
	}
	return events, nil
}

// ComputeHash is the SHA-256 of the envelope's canonical JSON with an empty hash field.
// Because the envelope contains prev_hash, every event commits to the whole stream
// before it: altering, removing or reordering any stored event breaks the chain.
func (e Event) ComputeHash() string {
	e.Hash = ""
	b, _, err := appendEnvelope(make([]byte, 0, envelopeCap(&e)), &e, false)
	if err != nil {
		// Encoding fails only on data that is not JSON or a time outside years 0-9999,
		// which decoding and NewEvents rule out.
		panic(fmt.Sprintf("hash event %s: %v", e.ID, err))
	}
	h := hexHash(b)
	return string(h[:])
}

// Encode returns the stored form of an event. It does not use Encoded, which may be
// stale: see Event.
func (e Event) Encode() ([]byte, error) {
	b, _, err := appendEnvelope(make([]byte, 0, envelopeCap(&e)), &e, false)
	return b, err
}

// DecodeEvent parses a stored envelope, upcasts older schema versions and decodes the
// payload. Unknown types are an error: a store must never hold events nobody can read.
// The envelope's stored form is read by parseEnvelope (envelope_decode.go), anything
// else and every payload by go-json, about four times faster than encoding/json on our
// events (replay and rebuild are decode-bound); encoding and hashing write the
// canonical form the hash chain is defined on, encoding/json's (envelope.go). The
// event shares nothing with b.
func DecodeEvent(b []byte) (Event, error) {
	e, err := decodeEvent(b, false)
	e.Data = slices.Clone(e.Data)
	return e, err
}

// DecodeEventNoCopy is DecodeEvent for a b that nobody changes again: the event's data
// and the strings of its envelope are views of b, not copies. Replay reads every event
// into a buffer of its own and decodes hundreds of thousands of them, so it saves eight
// allocations an event. Whatever keeps one of those strings keeps all of b: state that
// lives long (a cache, a map key) keeps a strings.Clone of it.
func DecodeEventNoCopy(b []byte) (Event, error) {
	return decodeEvent(b, true)
}

func decodeEvent(b []byte, view bool) (Event, error) {
	var e Event
	if parseEnvelope(b, &e, view) {
		if e, err := withPayload(e, gojson.Unmarshal); err == nil {
			return e, nil
		}
		// parseEnvelope took everything after "data": for the data; the general
		// decoder tells what b really is, and says what is wrong with it.
	}
	return DecodeEventWith(b, gojson.Unmarshal)
}

// DecodeEventWith decodes with the given JSON decoder (benchmarks compare decoders).
func DecodeEventWith(b []byte, unmarshal Unmarshaler) (Event, error) {
	var e Event
	if err := unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("decode event envelope: %w", err)
	}
	return withPayload(e, unmarshal)
}

// withPayload decodes e's Data into its Payload.
func withPayload(e Event, unmarshal Unmarshaler) (Event, error) {
	p, err := decodePayload(e.Type, e.SchemaVersion, e.Data, unmarshal)
	if err != nil {
		return Event{}, fmt.Errorf("decode event %s (%s v%d): %w", e.ID, e.Type, e.SchemaVersion, err)
	}
	e.Payload = p
	return e, nil
}

// VerifyChain checks that events form an unbroken hash chain from the start of a stream.
// It returns the index of the first bad event and why, or -1.
func VerifyChain(events []Event) (int, string) {
	var c ChainCheck
	for i, e := range events {
		if reason := c.Next(e); reason != "" {
			return i, reason
		}
	}
	return -1, ""
}

// ChainCheck verifies one stream's hash chain an event at a time, in stream order,
// holding only the previous hash: VerifyChain over a stream too large to hold, or
// over many streams read interleaved from the global order.
type ChainCheck struct {
	n    uint64 // events accepted
	prev string // hash of the last accepted event
}

// Next checks the next event of the stream and returns why it breaks the chain, or ""
// if it continues it. A bad event is not accepted: the check stays where it was.
func (c *ChainCheck) Next(e Event) string {
	switch {
	case e.Sequence != c.n+1:
		return fmt.Sprintf("sequence %d where %d was expected", e.Sequence, c.n+1)
	case e.PrevHash != c.prev:
		return "prev_hash does not match the previous event's hash"
	case e.ComputeHash() != e.Hash:
		return "hash does not match the event's content"
	}
	c.n, c.prev = e.Sequence, e.Hash
	return ""
}

// Len is the number of events accepted so far: the verified length of the stream.
func (c *ChainCheck) Len() uint64 { return c.n }

// LastHash is the hash of the last accepted event ("" before the first).
func (c *ChainCheck) LastHash() string { return c.prev }
