package projections_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
	"github.com/ticketcore/ticketcore/projections"
)

// The automation read model is a fold: rebuilt from the store it equals the model that
// followed the events live, and replaying never runs a rule (the store does not grow).
// It also follows the waiting customer message through replies and splits.
func TestAutomationModel(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	h, err := commands.NewHandler(ctx, store, commands.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SeedDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	live := projections.NewAutomation()
	runner := projections.NewRunner(store, nil, live)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = runner.Run(runCtx) }()
	sync := func() {
		t.Helper()
		pos, err := store.LastPosition(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wait, done := context.WithTimeout(ctx, 5*time.Second)
		defer done()
		if err := runner.WaitFor(wait, pos); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.ChangeSettings(ctx, domain.SupportSettings{UnrepliedAlertMinutes: 10}, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.SaveAssignmentRule(ctx, domain.AssignmentRuleDefinition{Name: "RR", Method: domain.MethodRoundRobin,
		Users: []string{"ann", "bob"}, UnassignCondition: `status == "Closed"`}, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	auto := commands.NewAutomation(h, live)
	create := func() string {
		res, err := h.CreateTicket(ctx, domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
			Subject: "s", RaisedBy: "c@example.com", Channel: domain.ChannelAPI}}, commands.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		return res.TicketID
	}
	do := func(id string, cmd domain.TicketCommand) {
		t.Helper()
		if _, err := h.Execute(ctx, id, cmd, commands.Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	a, b, c := create(), create(), create()
	do(a, domain.SendReply{Body: "r"})
	do(a, domain.ReceiveCustomerMessage{MessageID: "m-a2", Channel: domain.ChannelEmail, Body: "more"})
	do(b, domain.SendReply{MessageID: "r-b", Body: "r"})
	do(b, domain.ReceiveCustomerMessage{MessageID: "m-b2", Channel: domain.ChannelEmail, Body: "m"})
	do(b, domain.SplitTicket{FromMessage: "r-b"}) // the waiting message moves to the new ticket
	sync()
	auto.RunOnce(ctx)
	do(c, domain.CloseTicket{})
	sync()
	auto.RunOnce(ctx)
	now = now.Add(11 * time.Minute)
	sync()
	report := auto.RunOnce(ctx)
	sync()

	due := live.DueUnrepliedAlerts(now, 10)
	if report.Alerts != 2 || len(due) != 0 {
		// a (m-a2), c (closed: no), the split ticket (m-b2); b waits for nothing after the split.
		t.Fatalf("alerts %+v, still due %+v", report, due)
	}
	before, _ := store.LastPosition(ctx)
	rebuilt := projections.NewAutomation()
	if _, err := projections.NewRunner(store, nil, rebuilt).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if after, _ := store.LastPosition(ctx); after != before {
		t.Fatalf("replaying stored %d events", after-before)
	}
	if l, r := live.AssignmentSnapshot(nil), rebuilt.AssignmentSnapshot(nil); !reflect.DeepEqual(l.Candidates, r.Candidates) ||
		!reflect.DeepEqual(l.Assignments, r.Assignments) || !reflect.DeepEqual(l.OpenTickets, r.OpenTickets) || len(l.Rules) != len(r.Rules) ||
		l.Rules[0].SavedAt != r.Rules[0].SavedAt {
		t.Fatalf("live %+v\nrebuilt %+v", l, r)
	}
	if by := rebuilt.AssignedBy(a); by["ann"] != "RR" {
		t.Fatalf("a assigned by %v", by)
	}
	if by := rebuilt.AssignedBy(c); len(by) != 0 {
		t.Fatalf("closed c still assigned: %v", by)
	}
	if open := rebuilt.OpenTickets(); open["ann"]+open["bob"] != 3 { // a, b and the split ticket
		t.Fatalf("open tickets %v", open)
	}
}
