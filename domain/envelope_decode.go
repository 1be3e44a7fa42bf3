package domain

import (
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
	var ok bool
	if !r.key(`{"id":`) {
		return false
	}
	if e.ID, ok = r.str(); !ok || !r.key(`,"type":`) {
		return false
	}
	typ, ok := r.bytes()
	if !ok {
		return false
	}
	if k, known := registry[string(typ)]; known {
		e.Type = k.name
	} else {
		e.Type = string(typ)
	}
	if !r.key(`,"schema_version":`) {
		return false
	}
	v, ok := r.uint()
	if !ok || v > 1<<31-1 {
		return false
	}
	e.SchemaVersion = int(v)
	if !r.key(`,"stream":`) {
		return false
	}
	if e.Stream, ok = r.str(); !ok || !r.key(`,"sequence":`) {
		return false
	}
	if e.Sequence, ok = r.uint(); !ok || !r.key(`,"occurred_at":`) {
		return false
	}
	at, ok := r.bytes()
	if !ok || e.OccurredAt.UnmarshalText(at) != nil || !r.key(`,"actor":`) {
		return false
	}
	if e.Actor, ok = r.str(); !ok {
		return false
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{`,"command_id":`, &e.CommandID}, {`,"correlation_id":`, &e.CorrelationID}, {`,"causation_id":`, &e.CausationID}} {
		if r.key(f.key) {
			// An empty value is omitted when written: one that is present is not the
			// stored form.
			if *f.dst, ok = r.str(); !ok || *f.dst == "" {
				return false
			}
		}
	}
	if !r.key(`,"prev_hash":`) {
		return false
	}
	if e.PrevHash, ok = r.str(); !ok || !r.key(`,"hash":`) {
		return false
	}
	if e.Hash, ok = r.str(); !ok || !r.key(`,"data":`) {
		return false
	}
	// Data is the rest but the closing brace. Whether it is one valid JSON value is
	// left to the payload's decoder, which reads all of it.
	if len(b)-r.i < 2 || b[len(b)-1] != '}' {
		return false
	}
	data := b[r.i : len(b)-1 : len(b)-1]
	if isSpace(data[0]) || isSpace(data[len(data)-1]) { // not part of the value
		return false
	}
	e.Data = data
	return true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

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

func (r *envelopeReader) str() (string, bool) {
	s, ok := r.bytes()
	if r.view && len(s) > 0 {
		// b is immutable from here on (DecodeEventNoCopy's contract), so a string may
		// share its memory.
		return unsafe.String(&s[0], len(s)), ok
	}
	return string(s), ok
}

// uint reads a non-negative integer without sign, fraction or exponent, and refuses
// the leading zeros JSON does not allow.
func (r *envelopeReader) uint() (uint64, bool) {
	end := r.i
	for end < len(r.b) && r.b[end] >= '0' && r.b[end] <= '9' {
		end++
	}
	digits := r.b[r.i:end]
	if len(digits) == 0 || len(digits) > 1 && digits[0] == '0' {
		return 0, false
	}
	if len(digits) > 19 { // 19 digits cannot overflow; longer numbers are left to the decoder
		return 0, false
	}
	var n uint64
	for _, d := range digits {
		n = n*10 + uint64(d-'0')
	}
	r.i = end
	return n, true
}
