package projections_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
	"github.com/ticketcore/ticketcore/projections"
)

func TestTicketHistory(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	now := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC) // a Monday
	h, err := commands.NewHandler(ctx, store, commands.Options{Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SeedDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	allWeek := map[string][][2]string{}
	for _, d := range []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"} {
		allWeek[d] = [][2]string{{"00:00", "24:00"}}
	}
	hours := func(n int) domain.Duration { return domain.Duration(time.Duration(n) * time.Hour) }
	if _, err := h.SaveSLA(ctx, domain.SLADefinition{Name: "Round the clock", Default: true,
		Calendar: domain.CalendarSpec{Timezone: "UTC", Hours: allWeek},
		Priorities: []domain.SLAPriority{
			{Name: "Low", Response: hours(8), Resolution: hours(24)},
			{Name: "Medium", Response: hours(4), Resolution: hours(16), Default: true},
			{Name: "High", Response: hours(1), Resolution: hours(4)},
		}}, commands.Meta{Actor: "admin"}); err != nil {
		t.Fatal(err)
	}
	res, err := h.CreateTicket(ctx, domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{Subject: "Printer on fire",
		RaisedBy: "alice@example.com", Priority: "Low", Channel: domain.ChannelEmail, Description: "Smoke"}}, commands.Meta{Actor: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	id := res.TicketID
	at := func(d time.Duration, actor string, c domain.TicketCommand) {
		t.Helper()
		now = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC).Add(d)
		if _, err := h.Execute(ctx, id, c, commands.Meta{Actor: actor}); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	at(30*time.Minute, "bob", domain.ChangePriority{Priority: "High"})
	at(45*time.Minute, "bob", domain.SendReply{Body: "On our way."})
	at(time.Hour, "bob", domain.HoldTicket{Reason: "waiting for parts"})
	at(3*time.Hour, "alice@example.com", domain.ReceiveCustomerMessage{Channel: domain.ChannelEmail, Body: "Still smoking"})
	at(4*time.Hour, "bob", domain.ResolveTicket{ResolutionDetails: "Replaced the fuser"})
	at(5*time.Hour, "alice@example.com", domain.ReceiveCustomerMessage{Channel: domain.ChannelEmail, Body: "It is back"})
	at(6*time.Hour, "carol", domain.CloseTicket{Reason: "replaced the printer"})

	tickets := projections.NewTickets()
	if _, err := projections.NewRunner(store, nil, tickets).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	events, err := h.TicketEvents(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	hist, ok := projections.TicketHistory(events, tickets.LookupSLA)
	if !ok || hist.TicketID != id || !hist.ChainIntact || len(hist.Entries) != len(events) {
		t.Fatalf("history: ok %v, %+v", ok, hist)
	}
	for i, e := range hist.Entries {
		t.Logf("%d %s %s %s -> %s: %s %q", e.Sequence, e.OccurredAt.Format(time.TimeOnly), e.Actor, e.StatusBefore, e.StatusAfter, e.Summary, e.Effects)
		if e.Sequence != events[i].Sequence || e.EventID != events[i].ID || e.Hash != events[i].Hash || e.Type != events[i].Type {
			t.Errorf("entry %d does not name its event: %+v", i, e)
		}
		if i > 0 && hist.Entries[i-1].StatusAfter != e.StatusBefore {
			t.Errorf("entry %d: status before %s, the previous entry left %s", i, e.StatusBefore, hist.Entries[i-1].StatusAfter)
		}
	}
	want := []struct {
		summary, before, after string
		effects                []string
	}{
		{`Ticket ` + hist.Number + ` opened by alice@example.com via email: "Printer on fire" (priority Low); SLA Round the clock v1 (Low targets), response due 2026-01-05T17:00:00Z, resolution due 2026-01-06T09:00:00Z`,
			"", "Open", []string{"Measured against SLA Round the clock v1 (Low targets)", "Agreement status changed from none to First Response Due (evaluated at 2026-01-05T09:00:00Z)"}},
		{"Priority changed from Low to High; SLA Round the clock v1 (High targets), response due 2026-01-05T10:00:00Z, resolution due 2026-01-05T13:00:00Z",
			"Open", "Open", []string{"response_by moved from 2026-01-05T17:00:00Z to 2026-01-05T10:00:00Z", "resolution_by moved from 2026-01-06T09:00:00Z to 2026-01-05T13:00:00Z"}},
		{"Agent bob replied to alice@example.com", "Open", "Replied", []string{
			"First response recorded: 45m (45m business)",
			"Response to the customer measured; average response time now 45m (45m business)",
			"Agreement status changed from First Response Due to Resolution Due (evaluated at 2026-01-05T09:45:00Z)"}},
		{"Put on hold: waiting for parts", "Replied", "On Hold", []string{"Hold started: the SLA clock is paused",
			"resolution_by moved from 2026-01-05T13:00:00Z to none (paused)", "Agreement status changed from Resolution Due to Paused (evaluated at 2026-01-05T10:00:00Z)"}},
		{"Customer message received by email from alice@example.com", "On Hold", "Open", []string{
			"Hold ended after 2h (2h business); total hold 2h (2h business)", "resolution_by moved from none to 2026-01-05T15:00:00Z",
			"Agreement status changed from Paused to Resolution Due (evaluated at 2026-01-05T12:00:00Z)"}},
		{"Resolved: Replaced the fuser", "Open", "Resolved", []string{
			"Resolution recorded: resolution time 4h (4h business), user resolution time 1h 45m (1h 45m business)",
			"Agreement status changed from Resolution Due to Fulfilled (evaluated at 2026-01-05T13:00:00Z)"}},
		{"Customer message received by email from alice@example.com (reopened the ticket)", "Resolved", "Open", []string{
			"1h (1h business) while resolved or closed added to the hold time; total hold 3h (3h business)", "Resolution cleared", "Reopen counted (1 in all)",
			"resolution_by moved from 2026-01-05T15:00:00Z to 2026-01-05T16:00:00Z", "Agreement status changed from Fulfilled to Resolution Due (evaluated at 2026-01-05T14:00:00Z)"}},
		{"Closed by carol: replaced the printer", "Open", "Closed", []string{
			"Resolution recorded: resolution time 6h (6h business), user resolution time 3h 45m (3h 45m business)",
			"Agreement status changed from Resolution Due to Fulfilled (evaluated at 2026-01-05T15:00:00Z)"}},
	}
	// User resolution time leaves out the time the team waited for the customer:
	// from the reply at 09:45 to the customer's message at 12:00.
	if len(want) != len(hist.Entries) {
		t.Fatalf("%d entries, want %d", len(hist.Entries), len(want))
	}
	for i, w := range want {
		e := hist.Entries[i]
		if e.Summary != w.summary || string(e.StatusBefore) != w.before || string(e.StatusAfter) != w.after || !slices.Equal(e.Effects, w.effects) {
			t.Errorf("entry %d:\n got  %s | %s -> %s | %q\n want %s | %s -> %s | %q", i+1,
				e.Summary, e.StatusBefore, e.StatusAfter, e.Effects, w.summary, w.before, w.after, w.effects)
		}
	}
	// Machine-readable changes name the view's fields.
	reply := hist.Entries[2]
	fields := map[string]projections.FieldChange{}
	for _, c := range reply.Changes {
		fields[c.Field] = c
	}
	if c := fields["first_responded_on"]; c.Before != nil || c.After != "2026-01-05T09:45:00Z" {
		t.Errorf("reply changes first_responded_on: %+v (all: %+v)", c, reply.Changes)
	}
	if c := fields["status"]; c.Before != "Open" || c.After != "Replied" {
		t.Errorf("reply changes status: %+v", c)
	}
	for _, c := range hist.Entries[0].Changes {
		if c.Field == "created_at" && c.Before != nil {
			t.Errorf("creation changes created_at from %v, want null", c.Before)
		}
	}
	if _, ok := fields["updated_at"]; ok {
		t.Errorf("changes list updated_at, which every event changes")
	}
	// The last entry's state is the ticket's.
	final, _ := projections.FoldTicket(events, time.Time{}, tickets.LookupSLA)
	if v := final.View(hist.Entries[7].OccurredAt, false); v.Status != hist.Entries[7].StatusAfter || *v.AgreementStatus != *hist.Entries[7].AgreementAfter {
		t.Errorf("fold gives %s / %s", v.Status, *v.AgreementStatus)
	}

	// A tampered event shows in the chain status, and the timeline is still given.
	tampered := slices.Clone(events)
	tampered[3].Actor = "mallory"
	hist, _ = projections.TicketHistory(tampered, tickets.LookupSLA)
	if hist.ChainIntact || hist.ChainBreak == nil || hist.ChainBreak.Sequence != 4 || !strings.Contains(hist.ChainBreak.Reason, "hash") {
		t.Errorf("tampered history: intact %v, break %+v", hist.ChainIntact, hist.ChainBreak)
	}
	if _, ok := projections.TicketHistory(nil, nil); ok {
		t.Error("history of no events")
	}
}
