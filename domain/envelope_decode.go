package domain

import (
	"encoding/json"
	"unicode/utf8"
	"unsafe"
)

// parseEnvelope reads the stored form exactly as appendEnvelope writes it: the keys in
// that order, no spaces, strings without escapes. It is what replay spends most of its
// decoding on, so it reads in one pass and leaves Data as a slice of b; Type is the
// registry's own string, and the others are copies of b's bytes, or, with view, views
// of them that allocate nothing. Anything else, valid JSON or not, is not its case: it
// returns false and the caller decodes with a general JSON decoder, which gives the
// same Event whenever parseEnvelope also succeeds (envelope_decode_test.go).
func parseEnvelope(b []byte, e *Event, view bool) bool {
	r := envelopeReader{b: b, view: view}
	return r.key(`{"id":`) && r.str(&e.ID) &&
		r.key(`,"type":`) && r.eventType(&e.Type) &&
		r.key(`,"schema_version":`) && r.version(&e.SchemaVersion) &&
		r.key(`,"stream":`) && r.str(&e.Stream) &&
		r.key(`,"sequence":`) && r.uint(&e.Sequence) &&
		r.key(`,"occurred_at":`) && r.time(e) &&
		r.key(`,"actor":`) && r.str(&e.Actor) &&
		r.omitEmpty(`,"command_id":`, &e.CommandID) &&
		r.omitEmpty(`,"correlation_id":`, &e.CorrelationID) &&
		r.omitEmpty(`,"causation_id":`, &e.CausationID) &&
		r.key(`,"prev_hash":`) && r.str(&e.PrevHash) &&
		r.key(`,"hash":`) && r.str(&e.Hash) &&
		r.key(`,"data":`) && r.data(&e.Data)
}

type envelopeReader struct {
	b    []byte
	i    int
	view bool // strings share b's memory
}

// key consumes k if the input continues with it.
func (r *envelopeReader) key(k string) bool {
	if len(r.b)-r.i < len(k) || string(r.b[r.i:r.i+len(k)]) != k {
		return false
	}
	r.i += len(k)
	return true
}

// bytes reads a JSON string that needs no unescaping and returns its inside: no
// backslash, no control character, valid UTF-8 (a decoder would replace invalid
// bytes, so such a string is left to it).
func (r *envelopeReader) bytes() ([]byte, bool) {
	if r.i >= len(r.b) || r.b[r.i] != '"' {
		return nil, false
	}
	start := r.i + 1
	ascii := true
	for i := start; i < len(r.b); i++ {
		c := r.b[i]
		if plainASCII[c] {
			continue
		}
		switch {
		case c == '"':
			s := r.b[start:i]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			r.i = i + 1
			return s, true
		case c == '\\' || c < ' ':
			return nil, false
		default:
			ascii = false
		}
	}
	return nil, false
}

// plainASCII marks the bytes a JSON string holds as they are: printable ASCII but the
// quote and the backslash. One lookup a byte is what reading a string costs.
var plainASCII = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (r *envelopeReader) str(dst *string) bool {
	s, ok := r.bytes()
	switch {
	case !ok:
		return false
	case r.view && len(s) > 0:
		// b is immutable from here on (DecodeEventNoCopy's contract), so a string may
		// share its memory.
		*dst = unsafe.String(&s[0], len(s))
	default:
		*dst = string(s)
	}
	return true
}

// omitEmpty reads a string field the encoder leaves out when empty: absent is "", and
// present but empty is not the stored form.
func (r *envelopeReader) omitEmpty(key string, dst *string) bool {
	if !r.key(key) {
		return true
	}
	return r.str(dst) && *dst != ""
}

// eventType reads the type as the registry's own string, which costs no allocation.
func (r *envelopeReader) eventType(dst *string) bool {
	s, ok := r.bytes()
	if !ok {
		return false
	}
	if k, known := registry[string(s)]; known {
		*dst = k.name
	} else {
		*dst = string(s)
	}
	return true
}

func (r *envelopeReader) version(dst *int) bool {
	var v uint64
	if !r.uint(&v) || v > 1<<31-1 {
		return false
	}
	*dst = int(v)
	return true
}

// uint reads a non-negative integer without sign, fraction or exponent, and refuses
// the leading zeros JSON does not allow.
func (r *envelopeReader) uint(dst *uint64) bool {
	end := r.i
	for end < len(r.b) && r.b[end] >= '0' && r.b[end] <= '9' {
		end++
	}
	digits := r.b[r.i:end]
	if len(digits) == 0 || len(digits) > 1 && digits[0] == '0' {
		return false
	}
	if len(digits) > 19 { // 19 digits cannot overflow; longer numbers are left to the decoder
		return false
	}
	var n uint64
	for _, d := range digits {
		n = n*10 + uint64(d-'0')
	}
	r.i = end
	*dst = n
	return true
}

// time reads occurred_at with the parser encoding/json and go-json use for time.Time.
func (r *envelopeReader) time(e *Event) bool {
	at, ok := r.bytes()
	return ok && e.OccurredAt.UnmarshalText(at) == nil
}

// data takes the rest but the closing brace. Whether it is one valid JSON value is left
// to the payload's decoder, which reads all of it.
func (r *envelopeReader) data(dst *json.RawMessage) bool {
	if len(r.b)-r.i < 2 || r.b[len(r.b)-1] != '}' {
		return false
	}
	data := r.b[r.i : len(r.b)-1 : len(r.b)-1]
	if isSpace(data[0]) || isSpace(data[len(data)-1]) { // not part of the value
		return false
	}
	*dst = data
	return true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
