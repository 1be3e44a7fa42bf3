package domain_test

// Tests of the event envelope: encoding, decoding (with the schema registry) and the
// hash chain.

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/domain"
)

// samplePayloads is one payload of every event type, with every field set, so that a
// field that does not survive the round trip shows.
func samplePayloads() []domain.Payload {
	att := []domain.Attachment{{Name: "log.txt", ContentType: "text/plain", Size: 12, SHA256: strings.Repeat("ab", 32)}}
	yes := true
	def := standardSLA()
	def.Enabled = &yes
	def.ApplyToResolution = &yes
	def.ValidFrom, def.ValidUntil = "2026-01-01", "2026-12-31"
	def.PauseOn = []domain.Status{domain.StatusOnHold}
	def.FulfilledOn = []domain.Status{domain.StatusResolved, domain.StatusClosed}
	def.Calendar.Holidays = []string{"2026-12-25"}
	def.Calendar.HolidayLists = []string{"France"}
	fields := domain.TicketFieldsData{
		Subject: "s", Description: "d", RaisedBy: raisedBy, Priority: "High", TicketType: "Bug", Customer: "c",
		CustomerGroup: "g", Territory: "t", Contact: "ct", Lead: "l", Company: "co", Project: "p", EmailAccount: "support",
		Channel: domain.ChannelPortal, ViaPortal: true,
	}
	return []domain.Payload{
		domain.TicketCreated{TicketID: ticketID, Number: number, TicketFieldsData: fields, OpeningMessageID: "m0", Attachments: att,
			SplitFrom: &domain.SplitOrigin{TicketID: "src", Number: "TKT-2026-000009", FromMessage: "m9"},
			Messages:  []domain.Message{{MessageID: "m9", Direction: domain.Outgoing, At: "2026-03-02T09:00:00Z", From: "a@b.cd", Subject: "s", Body: "b", HTMLBody: "<p>b</p>", Attachments: att}}},
		domain.CustomerMessageReceived{MessageID: "m1", Channel: domain.ChannelEmail, From: raisedBy, Subject: "s", Body: "b", HTMLBody: "<p>b</p>", Attachments: att, Reopened: true},
		domain.ReplySent{MessageID: "m2", To: []string{raisedBy}, CC: []string{"boss@example.com"}, Subject: "s", Body: "b", HTMLBody: "<p>b</p>", Attachments: att},
		domain.CommentAdded{CommentID: "c1", Body: "note"},
		domain.PutOnHold{Reason: "r"},
		domain.TicketResolved{ResolutionDetails: "fixed"},
		domain.TicketClosed{ClosedBy: domain.ClosedByAutoClose, Reason: "r"},
		domain.TicketReopened{Reason: "r"},
		domain.TicketSplit{NewTicketID: "n", NewNumber: "TKT-2026-000002", FromMessage: "m2", MovedMessages: []string{"m2", "m3"}, Subject: "s"},
		domain.PriorityChanged{From: "Low", To: "High"},
		domain.TypeChanged{From: "Bug", To: "Question"},
		domain.TicketAssigned{Assignee: "bob", Rule: "Support"},
		domain.TicketUnassigned{Assignee: "bob", Rule: "Support"},
		domain.SLAReset{Reason: "r", SLA: "Standard", SLAVersion: 2, Priority: "High"},
		domain.SLADeadlineMissed{Kind: domain.DeadlineResponse, Deadline: t0.Add(time.Hour), CycleStart: t0, SLA: "Standard", SLAVersion: 2},
		domain.SLADeadlineApproaching{Kind: domain.DeadlineResolution, Deadline: t0.Add(8 * time.Hour), CycleStart: t0, SLA: "Standard", SLAVersion: 2, WarnSeconds: 3600},

		domain.TicketTypeCreated{Name: "Bug", Description: "d"},
		domain.TicketTypeUpdated{Name: "Bug", NewName: "Defect", Description: "d"},
		domain.TicketTypeRemoved{Name: "Bug"},
		domain.TicketPriorityCreated{Name: "Urgent", Description: "d"},
		domain.TicketPriorityUpdated{Name: "Urgent", NewName: "P1", Description: "d"},
		domain.TicketPriorityRemoved{Name: "P1"},
		domain.SupportSettingsChanged{AutoCloseDays: 3, AllowSLAReset: true, UnrepliedAlertMinutes: 30},
		domain.SLASaved{Version: 2, Definition: def},
		domain.SLARemoved{Name: "Standard"},
		domain.HolidayListSaved{Name: "France", Description: "public holidays", Holidays: []string{"2026-05-01", "2026-07-14"}},
		domain.HolidayListRemoved{Name: "France"},
		domain.TokenIssued{TokenID: "0a1b2c3d4e5f6071", Name: "crm", Role: domain.RoleService, SecretHash: domain.HashSecret("s")},
		domain.TokenRevoked{TokenID: "0a1b2c3d4e5f6071"},
		domain.NumberBlockReserved{Year: 2026, From: 21, To: 40, Owner: "host/1"},
		// email.go
		domain.EmailAccountSaved{Address: "support@example.com", Name: "Support", DefaultPriority: "High", Relay: "eu",
			IMAP: &domain.EmailIMAP{Server: "imap.example.com:993", Username: "support", PasswordEnv: "SUPPORT_IMAP_PASSWORD"}},
		domain.EmailAccountRemoved{Address: "support@example.com"},
		domain.EmailReceived{MessageID: "m1@customer.example", Account: "support@example.com", From: "alice@example.com",
			CC: []string{"bob@example.com"}, InReplyTo: []string{"a@example.com"}, ThreadedBy: domain.ThreadedInReplyTo, Via: "smtp", Size: 1234},
		domain.EmailQueued{MessageID: "m2", Kind: domain.EmailKindReply, RFCMessageID: "m2@example.com", From: "support@example.com",
			To: []string{"alice@example.com"}, Subject: "Re: x [TKT-2026-000001]", InReplyTo: "m1@customer.example", Account: "support@example.com"},
		domain.EmailSent{MessageID: "m2", RFCMessageID: "m2@example.com", Attempt: 2, Relay: "smtp.example.com:587", Response: "2.0.0 Ok: queued as 4F"},
		domain.EmailFailed{MessageID: "m2", Attempt: 1, Code: 451, EnhancedCode: "4.3.0", Reason: "try later", RetryAt: t0},
		domain.DeliveryBounced{MessageID: "m2@example.com", Recipient: "alice@example.com", Status: "5.1.1", Action: "failed", Diagnostic: "user unknown"},
		// assignment.go, unreplied.go
		domain.UnrepliedAlert{MessageID: "m1", WaitingSince: t0, ThresholdMinutes: 30},
		domain.AssignmentRuleSaved{Version: 2, Rule: domain.AssignmentRuleDefinition{Name: "Support", Description: "d", Enabled: &yes,
			Priority: 3, Condition: `ticket_type == "Bug"`, UnassignCondition: `status == "Closed"`, Method: domain.MethodByField,
			Users: []string{"ann"}, Field: "ticket_type", FieldMap: map[string]string{"Bug": "dev"}}},
		domain.AssignmentRuleRemoved{Name: "Support"},
		domain.AssignmentSlotTaken{Rule: "Support", RuleVersion: 2, TicketID: ticketID, User: "ann", Slot: 7},
	}
}

// TestSamplesCoverEveryEventType keeps the round trip honest: a newly registered type
// without a sample fails here.
func TestSamplesCoverEveryEventType(t *testing.T) {
	var sampled []string
	for _, p := range samplePayloads() {
		sampled = append(sampled, p.EventType())
	}
	registered := domain.EventTypes()
	slices.Sort(sampled)
	slices.Sort(registered)
	if !slices.Equal(sampled, registered) {
		t.Fatalf("sampled types:\n %v\nregistered types:\n %v", sampled, registered)
	}
}

func TestEventRoundTrip(t *testing.T) {
	meta := domain.Metadata{CommandID: "cmd", Actor: "agent@example.com", CorrelationID: "corr", CausationID: "cause",
		At: time.Date(2026, 3, 2, 10, 11, 12, 123456789, time.FixedZone("CET", 3600))}
	for _, p := range samplePayloads() {
		t.Run(p.EventType(), func(t *testing.T) {
			events, err := domain.NewEvents("some-stream", 41, "prev", meta, func(i int) string { return "id-1" }, []domain.Payload{p})
			if err != nil {
				t.Fatal(err)
			}
			e := events[0]
			if e.Type != p.EventType() || e.SchemaVersion != domain.CurrentSchemaVersion(p.EventType()) ||
				e.Sequence != 42 || e.Stream != "some-stream" || e.PrevHash != "prev" || e.ID != "id-1" ||
				e.Actor != meta.Actor || e.CommandID != "cmd" || e.CorrelationID != "corr" || e.CausationID != "cause" {
				t.Fatalf("envelope = %+v", e)
			}
			if !e.OccurredAt.Equal(meta.At) || e.OccurredAt.Location() != time.UTC {
				t.Fatalf("occurred_at = %v, want %v in UTC", e.OccurredAt, meta.At)
			}
			if e.Hash == "" || e.Hash != e.ComputeHash() {
				t.Fatalf("hash %q, computed %q", e.Hash, e.ComputeHash())
			}

			b, err := e.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(e.Encoded, b) {
				t.Fatalf("the stored form NewEvents kept differs from Encode's:\n %s\n %s", e.Encoded, b)
			}
			got, err := domain.DecodeEvent(b)
			if err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			if !reflect.DeepEqual(got.Payload, p) {
				t.Fatalf("payload:\n got  %#v\n want %#v", got.Payload, p)
			}
			if reflect.TypeOf(got.Payload) != reflect.TypeOf(p) {
				t.Fatalf("payload type %T, want %T", got.Payload, p)
			}
			gotEnv, wantEnv := got, e
			gotEnv.Payload, wantEnv.Payload = nil, nil
			if gotEnv.Encoded != nil {
				t.Fatal("a decoded event has a stored form")
			}
			wantEnv.Encoded = nil
			if !gotEnv.OccurredAt.Equal(wantEnv.OccurredAt) {
				t.Fatalf("occurred_at %v, want %v", gotEnv.OccurredAt, wantEnv.OccurredAt)
			}
			gotEnv.OccurredAt, wantEnv.OccurredAt = time.Time{}, time.Time{}
			if !reflect.DeepEqual(gotEnv, wantEnv) {
				t.Fatalf("envelope:\n got  %+v\n want %+v", gotEnv, wantEnv)
			}
			// The decoded event still verifies: the hash covers exactly what is stored.
			if got.ComputeHash() != e.Hash {
				t.Fatal("the decoded event's hash differs from the stored one")
			}
			// Encoding again gives the same bytes: the stored form is canonical.
			again, err := got.Encode()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs:\n %s\n %s", again, b)
			}
		})
	}
}

func TestNewEventsChainsABatch(t *testing.T) {
	events, err := domain.NewEvents("s", 0, "", domain.Metadata{At: t0}, func(i int) string { return string(rune('a' + i)) },
		[]domain.Payload{domain.PutOnHold{}, domain.TicketResolved{}, domain.TicketClosed{}})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range events {
		if e.Sequence != uint64(i+1) || e.ID != string(rune('a'+i)) {
			t.Fatalf("event %d: sequence %d id %s", i, e.Sequence, e.ID)
		}
		if i > 0 && e.PrevHash != events[i-1].Hash {
			t.Fatalf("event %d does not chain to event %d", i, i-1)
		}
	}
	if i, why := domain.VerifyChain(events); i != -1 {
		t.Fatalf("VerifyChain = %d %s", i, why)
	}
}

// chain is a stored stream of five events, as bytes and decoded again.
func chain(t *testing.T) []domain.Event {
	t.Helper()
	events := history(created(), customerMessage("m-c1"), reply("m-r1"), domain.PutOnHold{Reason: "parts"}, domain.TicketResolved{ResolutionDetails: "fixed"})
	out := make([]domain.Event, len(events))
	for i, e := range events {
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if out[i], err = domain.DecodeEvent(b); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// tamperStored rewrites the stored bytes of an event and decodes them again, as an
// attacker with write access to the store would.
func tamperStored(t *testing.T, e domain.Event, old, new string) domain.Event {
	t.Helper()
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%q not in %s", old, b)
	}
	out, err := domain.DecodeEvent(bytes.Replace(b, []byte(old), []byte(new), 1))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyChain(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, events []domain.Event) []domain.Event
		bad    int    // index VerifyChain must report, -1 for an intact chain
		reason string // part of the reason
	}{
		{"intact", func(t *testing.T, es []domain.Event) []domain.Event { return es }, -1, ""},
		{"a modified payload", func(t *testing.T, es []domain.Event) []domain.Event {
			es[2] = tamperStored(t, es[2], "We are on it.", "We never said that.")
			return es
		}, 2, "hash does not match"},
		{"a modified payload with its own hash recomputed", func(t *testing.T, es []domain.Event) []domain.Event {
			es[1] = tamperStored(t, es[1], "Any news?", "I am happy")
			es[1].Hash = es[1].ComputeHash()
			return es
		}, 2, "prev_hash"},
		{"a modified actor", func(t *testing.T, es []domain.Event) []domain.Event {
			es[3] = tamperStored(t, es[3], `"actor":"agent@example.com"`, `"actor":"mallory@example.com"`)
			return es
		}, 3, "hash does not match"},
		{"a modified time", func(t *testing.T, es []domain.Event) []domain.Event {
			es[4].OccurredAt = es[4].OccurredAt.Add(-time.Hour)
			return es
		}, 4, "hash does not match"},
		{"a removed event", func(t *testing.T, es []domain.Event) []domain.Event {
			return slices.Delete(es, 2, 3)
		}, 2, "sequence"},
		{"a removed event with the sequences renumbered", func(t *testing.T, es []domain.Event) []domain.Event {
			es = slices.Delete(es, 2, 3)
			for i := 2; i < len(es); i++ {
				es[i].Sequence = uint64(i + 1)
			}
			return es
		}, 2, "prev_hash"},
		{"a removed last event is not detectable by the chain alone", func(t *testing.T, es []domain.Event) []domain.Event {
			return es[:len(es)-1]
		}, -1, ""},
		{"a removed first event", func(t *testing.T, es []domain.Event) []domain.Event {
			return es[1:]
		}, 0, "sequence"},
		{"two events swapped", func(t *testing.T, es []domain.Event) []domain.Event {
			es[1], es[2] = es[2], es[1]
			return es
		}, 1, "sequence"},
		{"two events swapped with their sequences", func(t *testing.T, es []domain.Event) []domain.Event {
			es[1], es[2] = es[2], es[1]
			es[1].Sequence, es[2].Sequence = 2, 3
			return es
		}, 1, "prev_hash"},
		{"an event inserted", func(t *testing.T, es []domain.Event) []domain.Event {
			extra := history(created(), domain.CommentAdded{CommentID: "x", Body: "forged"})[1]
			return slices.Insert(es, 1, extra)
		}, 2, "sequence"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i, why := domain.VerifyChain(tc.tamper(t, chain(t)))
			if i != tc.bad {
				t.Fatalf("VerifyChain = %d (%s), want %d", i, why, tc.bad)
			}
			if !strings.Contains(why, tc.reason) {
				t.Fatalf("reason %q does not mention %q", why, tc.reason)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	good, err := history(created())[0].Encode()
	if err != nil {
		t.Fatal(err)
	}
	rewrite := func(change func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		change(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"unknown type", rewrite(func(m map[string]any) { m["type"] = "ticket.teleported" }), "unknown event type"},
		{"schema version above the current one", rewrite(func(m map[string]any) { m["schema_version"] = 2 }), "unsupported schema version 2"},
		{"schema version 0", rewrite(func(m map[string]any) { m["schema_version"] = 0 }), "unsupported schema version 0"},
		{"no schema version", rewrite(func(m map[string]any) { delete(m, "schema_version") }), "unsupported schema version"},
		{"a payload of the wrong shape", rewrite(func(m map[string]any) { m["data"] = []any{1, 2} }), "decode event"},
		{"a field of the wrong type", rewrite(func(m map[string]any) { m["data"].(map[string]any)["subject"] = 42 }), "decode event"},
		{"not JSON", []byte("{not json"), "decode event envelope"},
		{"empty", nil, "decode event envelope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := domain.DecodeEvent(tc.data)
			if err == nil {
				t.Fatalf("decoded %+v", e)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if e.Payload != nil {
				t.Fatalf("a failed decode returned a payload %T", e.Payload)
			}
		})
	}
	if _, err := domain.DecodeEvent(good); err != nil {
		t.Fatalf("the unaltered event does not decode: %v", err)
	}
}
