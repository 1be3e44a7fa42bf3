package domain_test

// Tests of the envelope's fast decoder: on any input, DecodeEventNoCopy must give what
// the general decoder (go-json on the whole envelope) gives, and stored envelopes must
// take the fast path.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/ticketcore/ticketcore/domain"
)

// checkDecoding compares the fast decoder with the general one on b.
func checkDecoding(t *testing.T, b []byte) {
	t.Helper()
	want, wantErr := domain.DecodeEventWith(b, gojson.Unmarshal)
	got, err := domain.DecodeEventNoCopy(b)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("decoding %q: error %v where the general decoder's is %v", b, err, wantErr)
	}
	if err != nil {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoding %q:\n got  %+v\n want %+v", b, got, want)
	}
	input := bytes.Clone(b)
	copied, err := domain.DecodeEvent(input)
	for i := range input {
		input[i] = 'x' // DecodeEvent's event shares nothing with its input
	}
	if err != nil || !reflect.DeepEqual(copied, want) {
		t.Fatalf("DecodeEvent of %q = %+v, %v; want %+v", b, copied, err, want)
	}
}

// storedForms are events as NewEvents stores them: every type, with and without the
// optional metadata, strings that need escaping, and a chain.
func storedForms(t *testing.T) [][]byte {
	t.Helper()
	metas := []domain.Metadata{
		{CommandID: "cmd", Actor: "agent@example.com", CorrelationID: "corr", CausationID: "cause", At: time.Date(2026, 3, 2, 10, 11, 12, 123456789, time.UTC)},
		{Actor: "Zoé 票", At: time.Date(2026, 3, 2, 10, 11, 12, 0, time.FixedZone("CET", 3600))},
	}
	var forms [][]byte
	for _, meta := range metas {
		events, err := domain.NewEvents("ticket-0b9f6c1e-2d3a-4e7b-9c0d-1a2b3c4d5e6f", 3, strings.Repeat("ab", 32), meta,
			func(i int) string { return fmt.Sprint("id-", i) }, samplePayloads())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			forms = append(forms, e.Encoded)
		}
	}
	return forms
}

func TestDecodeEventFastPath(t *testing.T) {
	for _, b := range storedForms(t) {
		var e domain.Event
		if !domain.ParseEnvelope(b, &e, true) {
			t.Fatalf("a stored envelope did not take the fast path: %q", b)
		}
		checkDecoding(t, b)
	}
	for _, e := range pinnedBatch(t) { // escaped strings: the general decoder's case
		checkDecoding(t, e.Encoded)
	}
}

// TestDecodeEventOtherForms feeds the fast decoder what it must hand over to the
// general one: other key orders, spaces, escapes, duplicate keys, numbers out of its
// range, broken data; decoding must not change.
func TestDecodeEventOtherForms(t *testing.T) {
	b := storedForms(t)[0]
	edits := []struct{ old, new string }{
		{`{"id":`, `{ "id":`},
		{`"type":`, `"type" :`},
		{`"data":`, `"data": `},
		{`"actor":"agent@example.com"`, `"actor":"agent\u0040example.com"`},
		{`"actor":"agent@example.com"`, `"actor":"agent@exa\tmple.com"`},
		{`"actor":"agent@example.com"`, "\"actor\":\"agent@\xffexample.com\""},
		{`"actor":"agent@example.com"`, `"actor":"agent@example.com","actor":"other"`},
		{`"command_id":"cmd",`, ``},
		{`"command_id":"cmd"`, `"command_id":""`},
		{`"schema_version":1`, `"schema_version":01`},
		{`"schema_version":1`, `"schema_version":-1`},
		{`"schema_version":1`, `"schema_version":99999999999`},
		{`"schema_version":1`, `"schema_version":1.0`},
		{`"sequence":4`, `"sequence":18446744073709551615`},
		{`"sequence":4`, `"sequence":18446744073709551616`},
		{`"sequence":4`, `"sequence":40000000000000000000`},
		{`"occurred_at":"2026-03-02T10:11:12.123456789Z"`, `"occurred_at":"2026-03-02 10:11:12Z"`},
		{`"occurred_at":"2026-03-02T10:11:12.123456789Z"`, `"occurred_at":"2026-03-02T10:11:12+01:00"`},
		{`"data":{`, `"data":{"extra":1,`},
		{`"data":{`, `"data":[{`},
		{`"hash":`, `"Hash":`},
		{`"ID":`, `"id":`},
		{`}`, `} `},
		{`"type":"ticket.created"`, `"type":"ticket.unknown"`},
	}
	for _, edit := range edits {
		for _, form := range [][]byte{bytes.Replace(b, []byte(edit.old), []byte(edit.new), 1), bytes.Replace(b, []byte(edit.old), []byte(edit.new), -1)} {
			checkDecoding(t, form)
		}
	}
	tail := bytes.LastIndexByte(b, '}')
	checkDecoding(t, append(b[:tail:tail], `,"id":"later"}`...))
	for i := range len(b) + 1 { // every truncation
		checkDecoding(t, b[:i])
	}
}

func TestDecodeEventRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		e := domain.Event{ID: randomString(r), Type: "ticket.comment_added", SchemaVersion: r.IntN(3),
			Stream: randomString(r), Sequence: r.Uint64() >> r.IntN(64), OccurredAt: randomTime(r),
			Actor: randomString(r), CommandID: randomString(r), CorrelationID: randomString(r), CausationID: randomString(r),
			PrevHash: randomString(r), Hash: randomString(r), Data: randomData(r)}
		if r.IntN(2) == 0 {
			e.Data = []byte(fmt.Sprintf(`{"comment_id":%q,"body":%s}`, randomString(r), randomJSON(r, 2)))
		}
		b, err := e.Encode()
		if err != nil {
			continue
		}
		checkDecoding(t, b)
	}
}

// FuzzDecodeEvent compares the decoders on any input, seeded with stored envelopes.
func FuzzDecodeEvent(f *testing.F) {
	for _, e := range pinnedEnvelopes() {
		if b, err := e.Encode(); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecoding(t, b) })
}

// BenchmarkDecodeEvent is the decoding of one typical stored event (a reply), the way
// replay does it and the general way, for comparison.
func BenchmarkDecodeEvent(b *testing.B) {
	payloads, meta := benchmarkReply(b)
	events, err := domain.NewEvents(domain.TicketStream(ticketID), 4, strings.Repeat("ab", 32), meta,
		func(int) string { return "a37152c6-a1a4-5cce-a828-471bac6cdf96" }, payloads)
	if err != nil {
		b.Fatal(err)
	}
	stored := events[0].Encoded
	for _, c := range []struct {
		name   string
		decode func([]byte) (domain.Event, error)
	}{
		{"no-copy", domain.DecodeEventNoCopy},
		{"copy", domain.DecodeEvent},
		{"go-json", func(b []byte) (domain.Event, error) { return domain.DecodeEventWith(b, gojson.Unmarshal) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.decode(stored); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
