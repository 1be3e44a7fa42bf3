package domain

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// The envelope's JSON is written by hand rather than by encoding/json because it is
// hashed and stored for every event a command produces, and json.Marshal of the
// envelope (reflection, and compacting Data again each time) was the largest part of a
// command's own CPU. The bytes must stay exactly those json.Marshal wrote for Event
// when the hash chain was defined: field order, omitempty, encoding/json's escaping of
// strings, time.Time's RFC 3339 form, Data compacted. Every stored hash is a hash of
// them. envelope_test.go compares the two encoders.

// envelopeSize bounds the envelope's fixed parts: the keys, quotes and separators,
// the two numbers, the time and the hash. With the lengths of the strings and of the
// data it is a capacity that holds the stored form unless strings need escaping.
const envelopeSize = len(`{"id":"","type":"","schema_version":,"stream":"","sequence":,"occurred_at":"","actor":"",`+
	`"command_id":"","correlation_id":"","causation_id":"","prev_hash":"","hash":"","data":}`) +
	2*len("-9223372036854775808") + len("2006-01-02T15:04:05.999999999-07:00") + 2*sha256.Size

func envelopeCap(e *Event) int {
	return envelopeSize + len(e.ID) + len(e.Type) + len(e.Stream) + len(e.Actor) + len(e.CommandID) +
		len(e.CorrelationID) + len(e.CausationID) + len(e.PrevHash) + len(e.Hash) + len(e.Data)
}

// seal sets the hash and the stored form of an event NewEvents made, from a single
// encoding: the envelope is written with an empty hash and hashed, then the hash is
// written between the empty hash's quotes.
func (e *Event) seal() error {
	e.Hash = ""
	b, hashAt, err := appendEnvelope(make([]byte, 0, envelopeCap(e)), e, true)
	if err != nil {
		return err
	}
	h := hexHash(b)
	e.Hash = string(h[:])
	e.Encoded = slices.Insert(b, hashAt, h[:]...)
	return nil
}

// hexHash is the SHA-256 of b in hex, the form of Event.Hash.
func hexHash(b []byte) [2 * sha256.Size]byte {
	sum := sha256.Sum256(b)
	var h [2 * sha256.Size]byte
	hex.Encode(h[:], sum[:])
	return h
}

// appendEnvelope appends e's JSON as json.Marshal writes it and returns where the
// value of the hash starts in it. dataCompact says that e.Data is json.Marshal output,
// already compact and escaped, to be copied as is; otherwise it is compacted and
// escaped as json.Marshal does with a RawMessage, and must be valid JSON.
func appendEnvelope(b []byte, e *Event, dataCompact bool) ([]byte, int, error) {
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"schema_version":`...)
	b = strconv.AppendInt(b, int64(e.SchemaVersion), 10)
	b = append(b, `,"stream":`...)
	b = appendString(b, e.Stream)
	b = append(b, `,"sequence":`...)
	b = strconv.AppendUint(b, e.Sequence, 10)
	b = append(b, `,"occurred_at":"`...)
	// AppendText writes what Time.MarshalJSON writes between its quotes, and refuses
	// the same times (years outside 0-9999, offsets of a day or more).
	b, err := e.OccurredAt.AppendText(b)
	if err != nil {
		return nil, 0, fmt.Errorf("occurred_at: %w", err)
	}
	b = append(b, `","actor":`...)
	b = appendString(b, e.Actor)
	if e.CommandID != "" {
		b = append(b, `,"command_id":`...)
		b = appendString(b, e.CommandID)
	}
	if e.CorrelationID != "" {
		b = append(b, `,"correlation_id":`...)
		b = appendString(b, e.CorrelationID)
	}
	if e.CausationID != "" {
		b = append(b, `,"causation_id":`...)
		b = appendString(b, e.CausationID)
	}
	b = append(b, `,"prev_hash":`...)
	b = appendString(b, e.PrevHash)
	b = append(b, `,"hash":"`...)
	hashAt := len(b)
	b = appendEscaped(b, e.Hash)
	b = append(b, `","data":`...)
	if dataCompact {
		b = append(b, e.Data...)
	} else if b, err = appendRawJSON(b, e.Data); err != nil {
		return nil, 0, fmt.Errorf("data: %w", err)
	}
	return append(b, '}'), hashAt, nil
}

// appendRawJSON appends d as json.Marshal writes a RawMessage: null when nil, else
// compacted, with <, > and & and U+2028 and U+2029 escaped (json.Compact alone leaves
// them). Like json.Marshal, it refuses invalid JSON, empty data included.
func appendRawJSON(b []byte, d json.RawMessage) ([]byte, error) {
	if d == nil {
		return append(b, "null"...), nil
	}
	start := len(b)
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, d); err != nil {
		return nil, err
	}
	b = buf.Bytes()
	compacted := b[start:]
	if !bytes.ContainsAny(compacted, "<>&") && !bytes.Contains(compacted, lineSeparator) && !bytes.Contains(compacted, paragraphSeparator) {
		return b, nil // the usual case: data from the store, written by json.Marshal
	}
	// Escaping after compacting gives json.Marshal's bytes: in valid JSON these
	// characters occur only inside strings, where compacting changes nothing.
	var escaped bytes.Buffer
	json.HTMLEscape(&escaped, compacted)
	return append(b[:start], escaped.Bytes()...), nil
}

var (
	lineSeparator      = []byte("\u2028")
	paragraphSeparator = []byte("\u2029")
)

// appendString appends s as a JSON string escaped as encoding/json escapes by default.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendEscaped(b, s)
	return append(b, '"')
}

// appendEscaped appends the inside of s's JSON string as encoding/json writes it:
// " and \ and the control characters escaped (\b \f \n \r \t by name, the others as
// \u00XX), <, > and & as \u003c \u003e \u0026, U+2028 and U+2029 as \u2028 \u2029, and
// each byte of invalid UTF-8 as \ufffd.
func appendEscaped(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}
