package domain_test

// Tests of the hand-written envelope encoder: its bytes must be those encoding/json
// writes for the envelope, on which every stored hash was computed.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ticketcore/ticketcore/domain"
)

// oldEnvelope is domain.Event as encoding/json saw it when the hash chain was defined:
// the reference the hand-written encoder is compared with.
type oldEnvelope struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	Stream        string          `json:"stream"`
	Sequence      uint64          `json:"sequence"`
	OccurredAt    time.Time       `json:"occurred_at"`
	Actor         string          `json:"actor"`
	CommandID     string          `json:"command_id,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	CausationID   string          `json:"causation_id,omitempty"`
	PrevHash      string          `json:"prev_hash"`
	Hash          string          `json:"hash"`
	Data          json.RawMessage `json:"data"`
}

func oldEnvelopeOf(e domain.Event) oldEnvelope {
	return oldEnvelope{ID: e.ID, Type: e.Type, SchemaVersion: e.SchemaVersion, Stream: e.Stream, Sequence: e.Sequence,
		OccurredAt: e.OccurredAt, Actor: e.Actor, CommandID: e.CommandID, CorrelationID: e.CorrelationID,
		CausationID: e.CausationID, PrevHash: e.PrevHash, Hash: e.Hash, Data: e.Data}
}

// TestOldEnvelopeIsTheEventsJSONShape keeps the reference honest, and stops a new
// envelope field the hand-written encoder would not write.
func TestOldEnvelopeIsTheEventsJSONShape(t *testing.T) {
	shape := func(typ reflect.Type) []string {
		var fields []string
		for f := range typ.Fields() {
			if f.Tag.Get("json") != "-" {
				fields = append(fields, fmt.Sprintf("%s %s `%s`", f.Name, f.Type, f.Tag))
			}
		}
		return fields
	}
	if got, want := shape(reflect.TypeFor[domain.Event]()), shape(reflect.TypeFor[oldEnvelope]()); !slices.Equal(got, want) {
		t.Fatalf("the envelope's JSON fields changed: every stored hash is computed on them, and the encoder in envelope.go writes them by hand\n got  %q\n want %q", got, want)
	}
}

// checkEncoding compares Encode and ComputeHash with encoding/json on e, and, for an
// event NewEvents made, its hash and stored form.
func checkEncoding(t *testing.T, e domain.Event, fromNewEvents bool) {
	t.Helper()
	want, wantErr := json.Marshal(oldEnvelopeOf(e))
	got, err := e.Encode()
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Encode error %v where encoding/json's is %v, for %+v", err, wantErr, e)
	}
	if wantErr != nil {
		if !panics(func() { e.ComputeHash() }) {
			t.Fatalf("ComputeHash of an event encoding/json cannot encode did not panic: %+v", e)
		}
		return
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Encode differs from encoding/json:\n got  %q\n want %q", got, want)
	}
	if real, err := json.Marshal(e); err != nil || !bytes.Equal(real, want) {
		t.Fatalf("the reference differs from json.Marshal of the Event (%v):\n %q\n %q", err, real, want)
	}
	unhashed := oldEnvelopeOf(e)
	unhashed.Hash = ""
	b, err := json.Marshal(unhashed)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	wantHash := hex.EncodeToString(sum[:])
	if h := e.ComputeHash(); h != wantHash {
		t.Fatalf("ComputeHash = %s, encoding/json's hash is %s, for %q", h, wantHash, want)
	}
	if fromNewEvents {
		// NewEvents encodes the payload with go-json: its bytes must be encoding/json's.
		if data, err := json.Marshal(e.Payload); err != nil || !bytes.Equal(e.Data, data) {
			t.Fatalf("NewEvents data differs from encoding/json's (%v):\n got  %q\n want %q", err, e.Data, data)
		}
		if e.Hash != wantHash {
			t.Fatalf("NewEvents hash = %s, encoding/json's hash is %s", e.Hash, wantHash)
		}
		if !bytes.Equal(e.Encoded, want) {
			t.Fatalf("NewEvents stored form differs from encoding/json:\n got  %q\n want %q", e.Encoded, want)
		}
	}
}

func panics(f func()) (panicked bool) {
	defer func() { panicked = recover() != nil }()
	f()
	return false
}

// trickyStrings are strings encoding/json escapes in every way it can: HTML characters,
// quotes and backslashes, control characters, U+2028 and U+2029, invalid UTF-8 (which
// it replaces with U+FFFD), and multi-byte characters it leaves alone.
var trickyStrings = []string{
	`<script>alert("x & y")</script>`,
	"line\nbreak\r\ttab\b\f\x00\x01\x1f\x7f",
	"sep\u2028para\u2029",
	"bad utf8 \xff\xfe \xc3\x28 \xe2\x80 end \xed\xa0\x80",
	"emoji 🎫 and accents éàü, CJK 票",
	`back\slash "quoted" /slash`,
}

// pinnedBatch is one NewEvents batch over the tricky strings, every optional field set
// and a time with an offset and nanoseconds.
func pinnedBatch(t testing.TB) []domain.Event {
	t.Helper()
	meta := domain.Metadata{CommandID: "cmd-<1>", Actor: "ann & bob", CorrelationID: "corr\u2028", CausationID: "cause\x00",
		At: time.Date(2026, 3, 2, 10, 11, 12, 123456789, time.FixedZone("CET", 3600))}
	var payloads []domain.Payload
	for i, s := range trickyStrings {
		payloads = append(payloads, domain.CommentAdded{CommentID: fmt.Sprintf("c%d", i), Body: s},
			domain.ReplySent{MessageID: s, To: []string{s}, Subject: s, Body: s, HTMLBody: s})
	}
	events, err := domain.NewEvents("ticket-<s>", 6, "prev", meta, func(i int) string { return fmt.Sprintf("id-%d\xff", i) }, payloads)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// pinnedEnvelopes are envelopes as a store or an import may hold them, built field by
// field: times with offsets, data that is not compact or not HTML-escaped, no data.
func pinnedEnvelopes() []domain.Event {
	data := []string{
		"{\"a\": 1, \"b\" : [ true , null ],\n \"c\":\"x y\"}",
		"{\"html\":\"<b>&amp;</b>\",\"sep\":\"\u2028\u2029\"}",
		"\"bad \xff utf8\"",
		" 42 ",
		"",
		"{}",
		`{"esc":"\u003c\n\"\\"}`,
	}
	zones := []*time.Location{
		time.FixedZone("IST", 5*3600+1800), time.FixedZone("PST", -8*3600), time.UTC, time.FixedZone("LMT", 561),
	}
	var events []domain.Event
	for i, d := range data {
		s := trickyStrings[i%len(trickyStrings)]
		e := domain.Event{ID: "id-" + s, Type: "ticket.comment_added", SchemaVersion: i, Stream: "stream " + s, Sequence: uint64(i) << 40,
			OccurredAt: time.Date(2025+i, 11, 3, 9, 0, 0, []int{123456789, 100, 120000000, 0}[i%4], zones[i%len(zones)]),
			Actor:      s, PrevHash: "prev " + s, Hash: "stored " + s}
		if i%2 == 0 {
			e.CommandID, e.CorrelationID, e.CausationID = "cmd "+s, "corr "+s, "cause "+s
		}
		if d != "" {
			e.Data = json.RawMessage(d)
		}
		events = append(events, e)
	}
	events = append(events, domain.Event{Data: json.RawMessage(`{}`)}) // the zero time, every string empty
	return events
}

// TestHashesOfEventsMadeBeforeTheHandWrittenEncoder pins hashes computed with
// encoding/json, before envelope.go existed.
func TestHashesOfEventsMadeBeforeTheHandWrittenEncoder(t *testing.T) {
	batch := []string{
		"23419760d3a675c64305f1110df9483d1c1be6d2b13366149ab16bbb03971bbd",
		"ca9c5bd691511ba2bb35dc6979e8cda0c194c288bb3b21652e429816611ef038",
		"5d804a16d2a0954fc5744b6c8265535850587fe84d6dae14e814895521149a91",
		"1a82d33d6ab1ca24028ac156cbfdc908722fbf5bcad74acc5ae8cd25a9356065",
		"c6d04a290788244a06f4d56fba48eb09ef2fcd25f3c846967871b030c9e11bce",
		"86d934bc1efae12a39957a75cb7b7bf520f87871df975a9b9749a8416f884839",
		"a7845c060cdf1a190325a689df5402d107edbc54f6f8358d29ce329f07e476c9",
		"267ddb6ec176ef398cf2b81640487c7be2fb7e6a61f40c3825a4195bb7a5c897",
		"62a82a056afd4842cef8c3426c6197a0b66582cd97aff04883a89d9c1ce4f561",
		"79cc2a6a8f10a56ff6347e9464dd21cf7825ba01334cc7650e91a82b122f9997",
		"cdb0c2aeefc8dcbbce35d8f0511a4c81f941889b927e3aa4414cc175495afba0",
		"8a641fe0f6a714cbccb5da69123cff0743c153dfc2699657eebe936973be7b5c",
	}
	for i, e := range pinnedBatch(t) {
		if e.Hash != batch[i] || e.ComputeHash() != batch[i] {
			t.Errorf("batch event %d: hash %s, computed %s, want %s", i, e.Hash, e.ComputeHash(), batch[i])
		}
	}
	envelopes := []string{
		"c9a7555a043e2efd0fc7f6f077d2c51bfc2fefde29062560c8dde2589bcb7ac5",
		"746f2e4e87e903df2ed27eadaf34992b915294944339af7c5a9846b38aab9d5f",
		"ac7282cd6725dd92deaf7e5be42d83e6d12d78a6eeb1aea86f963e93904b966c",
		"e72863f34f97754777024cf2d53754d4ce48c07f83fc47f27c82e8dc1a13ebe7",
		"f16cb280bcef4945960c87feb39aaa84579b173a48c3daf46689ae10290d9bba",
		"c264ef5fa957bfa9ee38c3038c49aeb92d80c5168ea992b70f6f2162597450b5",
		"ff0e60d1e43fb925c2ce90c975f1aa2659aefa29c98de15640d6a35f56924ed6",
		"0b60ca638e16291a05111efbc795ff1a2f879652bc9b39d327c20e8c601b5ae8",
	}
	for i, e := range pinnedEnvelopes() {
		if h := e.ComputeHash(); h != envelopes[i] {
			t.Errorf("envelope %d: hash %s, want %s", i, h, envelopes[i])
		}
	}
}

func TestEnvelopeEncodingIsEncodingJSONs(t *testing.T) {
	metas := []domain.Metadata{
		{CommandID: "cmd", Actor: "agent@example.com", CorrelationID: "corr", CausationID: "cause",
			At: time.Date(2026, 3, 2, 10, 11, 12, 123456789, time.FixedZone("CET", 3600))},
		{At: t0},
	}
	t.Run("every event type", func(t *testing.T) {
		for _, meta := range metas {
			events, err := domain.NewEvents("some-stream", 0, "", meta, func(i int) string { return fmt.Sprint("id-", i) }, samplePayloads())
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range events {
				checkEncoding(t, e, true)
			}
			if i, why := domain.VerifyChain(events); i >= 0 {
				t.Fatalf("VerifyChain = %d (%s)", i, why)
			}
		}
	})
	t.Run("tricky strings", func(t *testing.T) {
		for _, e := range pinnedBatch(t) {
			checkEncoding(t, e, true)
		}
	})
	t.Run("envelopes as stored", func(t *testing.T) {
		for _, e := range pinnedEnvelopes() {
			checkEncoding(t, e, false)
		}
	})
	t.Run("random", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for range 5000 {
			e := domain.Event{ID: randomString(r), Type: randomString(r), SchemaVersion: r.IntN(5) - 1,
				Stream: randomString(r), Sequence: r.Uint64() >> r.IntN(64), OccurredAt: randomTime(r),
				Actor: randomString(r), CommandID: randomString(r), CorrelationID: randomString(r), CausationID: randomString(r),
				PrevHash: randomString(r), Hash: randomString(r), Data: randomData(r)}
			checkEncoding(t, e, false)
			meta := domain.Metadata{CommandID: e.CommandID, Actor: e.Actor, CorrelationID: e.CorrelationID, CausationID: e.CausationID, At: e.OccurredAt}
			events, err := domain.NewEvents(e.Stream, e.Sequence>>1, e.PrevHash, meta, func(int) string { return e.ID },
				[]domain.Payload{domain.CommentAdded{CommentID: e.Type, Body: string(e.Data)}})
			// NewEvents refuses a time encoding/json cannot write and metadata that is
			// not valid UTF-8, and nothing else.
			_, timeErr := e.OccurredAt.UTC().MarshalJSON()
			badUTF8 := !utf8.ValidString(meta.Actor) || !utf8.ValidString(meta.CommandID) ||
				!utf8.ValidString(meta.CorrelationID) || !utf8.ValidString(meta.CausationID)
			if (err != nil) != (timeErr != nil || badUTF8) {
				t.Fatalf("NewEvents error %v where the time's is %v and invalid UTF-8 is %v", err, timeErr, badUTF8)
			}
			if err == nil {
				checkEncoding(t, events[0], true)
			}
		}
	})
}

// randomString mixes the pieces encoding/json writes differently, and random bytes.
func randomString(r *rand.Rand) string {
	pieces := []string{"a", "Zé", "票", "🎫", "<", ">", "&", `"`, `\`, "/", "\u2028", "\u2029", "\ufffd", "\x7f", " ",
		"\t", "\n", "\r", "\b", "\f", "\x00", "\x1b", "\x1f", "\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ticket-42"}
	if r.IntN(6) == 0 {
		return "" // the optional fields are left out
	}
	var b strings.Builder
	for range r.IntN(12) {
		if r.IntN(5) == 0 {
			b.WriteByte(byte(r.IntN(256)))
		} else {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
	}
	return b.String()
}

// randomTime is any time encoding/json can write, in UTC or at any offset, and now and
// then one it refuses.
func randomTime(r *rand.Rand) time.Time {
	year := r.IntN(10000)
	if r.IntN(50) == 0 {
		year = []int{-1, 10000, 12345}[r.IntN(3)]
	}
	nsec := []int{0, r.IntN(1e9), r.IntN(1e6) * 1000, r.IntN(1000) * 1e6}[r.IntN(4)]
	loc := time.UTC
	if r.IntN(2) == 0 {
		loc = time.FixedZone("", r.IntN(2*86400)-86400)
	}
	return time.Date(year, time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), nsec, loc)
}

// randomData is JSON with insignificant spaces, and strings with raw HTML characters,
// U+2028, U+2029 and invalid UTF-8 that json.Marshal escapes or leaves as they are;
// now and then it is not JSON at all.
func randomData(r *rand.Rand) json.RawMessage {
	switch r.IntN(40) {
	case 0:
		return nil
	case 1:
		return json.RawMessage{}
	case 2:
		return json.RawMessage(`{"a":}`)
	case 3:
		return json.RawMessage("\"a\x01\"") // a control character in a string
	}
	return json.RawMessage(randomJSON(r, 0))
}

func randomJSON(r *rand.Rand, depth int) string {
	space := func() string { return []string{"", "", " ", "\n\t", "\r\n  "}[r.IntN(5)] }
	switch k := r.IntN(6); {
	case depth > 2 || k == 0:
		return []string{"true", "false", "null", "0", "-1.5e3", "123456789012345678901234567890"}[r.IntN(6)]
	case k <= 2:
		pieces := []string{"a", " ", "<", ">", "&", "\u2028", "\u2029", "é", "🎫", "\xff", "\x7f", `\"`, `\\`, `\n`, `\u00e9`, `\u2028`, `\/`}
		var b strings.Builder
		b.WriteByte('"')
		for range r.IntN(8) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		b.WriteByte('"')
		return b.String()
	default:
		open, close := "[", "]"
		if k == 3 {
			open, close = "{", "}"
		}
		parts := make([]string, r.IntN(4))
		for i := range parts {
			v := space() + randomJSON(r, depth+1) + space()
			if k == 3 {
				v = space() + fmt.Sprintf("%q", fmt.Sprint("k", i)) + space() + ":" + v
			}
			parts[i] = v
		}
		return open + space() + strings.Join(parts, ",") + space() + close
	}
}

// FuzzEnvelopeEncoding compares the encoders on any strings, data, time and offset.
func FuzzEnvelopeEncoding(f *testing.F) {
	for i, s := range trickyStrings {
		f.Add(s, s, "cmd "+s, s, `{"body": "`+s+`"}`, uint64(i), int64(i)*1e6+1, int64(123456789), 3600*i)
	}
	f.Add("", "", "", "", "{}", uint64(0), int64(0), int64(0), 0)
	f.Add("id", "actor", "", "hash", "not json", uint64(1), int64(253402300800), int64(0), 0) // year 10000
	f.Add("id", "actor", "cmd", "", "[1, 2]", uint64(1), int64(0), int64(0), 86400)           // a day's offset
	f.Fuzz(func(t *testing.T, id, actor, commandID, hash, data string, seq uint64, sec, nsec int64, offset int) {
		at := time.Unix(sec, nsec).In(time.FixedZone("", offset))
		e := domain.Event{ID: id, Type: "ticket." + id, SchemaVersion: int(seq % 3), Stream: commandID + "/" + id, Sequence: seq,
			OccurredAt: at, Actor: actor, CommandID: commandID, CorrelationID: actor, CausationID: hash,
			PrevHash: hash + id, Hash: hash, Data: json.RawMessage(data)}
		checkEncoding(t, e, false)
		meta := domain.Metadata{CommandID: commandID, Actor: actor, CorrelationID: hash, CausationID: id, At: at}
		events, err := domain.NewEvents(e.Stream, seq>>1, hash, meta, func(int) string { return id },
			[]domain.Payload{domain.CommentAdded{CommentID: actor, Body: data}})
		if err == nil {
			checkEncoding(t, events[0], true)
		}
	})
}

func TestEncodingErrors(t *testing.T) {
	for _, data := range []json.RawMessage{{}, json.RawMessage(`{"a":}`), json.RawMessage(`{} {}`), json.RawMessage("\"\x00\"")} {
		e := domain.Event{ID: "e", Data: data}
		if b, err := e.Encode(); err == nil {
			t.Errorf("data %q: encoded %q", data, b)
		}
		if !panics(func() { e.ComputeHash() }) {
			t.Errorf("data %q: ComputeHash did not panic", data)
		}
	}
	late := domain.Metadata{At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := domain.NewEvents("s", 0, "", late, func(int) string { return "e" }, []domain.Payload{domain.PutOnHold{}}); err == nil ||
		!strings.Contains(err.Error(), "year outside of range") {
		t.Errorf("NewEvents in the year 10000: err = %v", err)
	}
}

// benchmarkReply is a typical event: a reply of about 25 words.
func benchmarkReply(b *testing.B) ([]domain.Payload, domain.Metadata) {
	b.Helper()
	payloads := []domain.Payload{domain.ReplySent{MessageID: "f22d9d00-7919-5a67-a103-3d2451efe957", To: []string{raisedBy},
		Subject: "Re: Printer on fire [TKT-2026-000001]",
		Body: "Hello Ann, thanks for the details. We have reset the print queue and replaced the fuser; " +
			"please try again & tell us if the smoke comes back."}}
	meta := domain.Metadata{CommandID: "0b9f6c1e-2d3a-4e7b-9c0d-1a2b3c4d5e6f", Actor: "agent@example.com",
		CorrelationID: "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6", At: t0}
	return payloads, meta
}

// BenchmarkNewEvents is the cost of one event on the command path in package domain:
// wrapped, hashed and encoded for the store.
func BenchmarkNewEvents(b *testing.B) {
	payloads, meta := benchmarkReply(b)
	stream, prev := domain.TicketStream(ticketID), strings.Repeat("ab", 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := domain.NewEvents(stream, 4, prev, meta, func(int) string { return "a37152c6-a1a4-5cce-a828-471bac6cdf96" }, payloads); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkComputeHash is the verification of a stored event (ChainCheck).
func BenchmarkComputeHash(b *testing.B) {
	payloads, meta := benchmarkReply(b)
	events, err := domain.NewEvents(domain.TicketStream(ticketID), 0, "", meta, func(int) string { return "e" }, payloads)
	if err != nil {
		b.Fatal(err)
	}
	stored, err := events[0].Encode()
	if err != nil {
		b.Fatal(err)
	}
	e, err := domain.DecodeEvent(stored)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if e.ComputeHash() != e.Hash {
			b.Fatal("hash mismatch")
		}
	}
}
