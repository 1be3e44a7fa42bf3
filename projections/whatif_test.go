package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
	"github.com/ticketcore/ticketcore/projections"
)

func weekdays(from, to string) map[string][][2]string {
	h := map[string][][2]string{}
	for _, d := range []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"} {
		h[d] = [][2]string{{from, to}}
	}
	return h
}

func slaDef(name string, response, resolution time.Duration) domain.SLADefinition {
	return domain.SLADefinition{
		Name: name, Default: true,
		Calendar:   domain.CalendarSpec{Timezone: "UTC", Hours: weekdays("10:00", "18:00")},
		Priorities: []domain.SLAPriority{{Name: "Medium", Response: domain.Duration(response), Resolution: domain.Duration(resolution), Default: true}},
	}
}

func TestWhatIfTighterSLA(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC) // a Monday
	h, err := commands.NewHandler(ctx, store, commands.Options{Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SeedDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.SaveSLA(ctx, slaDef("Standard", 4*time.Hour, 8*time.Hour), commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	create := func() string {
		res, err := h.CreateTicket(ctx, domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
			Subject: "s", RaisedBy: "c@example.com", Channel: domain.ChannelAPI}}, commands.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		return res.TicketID
	}
	fast, slow := create(), create()
	now = now.Add(30 * time.Minute)
	if _, err := h.Execute(ctx, fast, domain.SendReply{Body: "hi"}, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour) // 12:30: 2h30 after creation
	if _, err := h.Execute(ctx, slow, domain.SendReply{Body: "hi"}, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	model := projections.NewTickets()
	if _, err := projections.NewRunner(store, nil, model).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	before, _ := store.LastPosition(ctx)

	tight, err := domain.CompileSLA(slaDef("Tight", time.Hour, 8*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	run := projections.NewWhatIf(tight, now, model.LookupSLA, nil)
	if _, err := projections.Replay(ctx, store, func(e domain.Event, _ uint64) error { run.Apply(e); return nil }); err != nil {
		t.Fatal(err)
	}
	report := run.Report()
	after, _ := store.LastPosition(ctx)
	if after != before {
		t.Fatalf("what-if wrote %d events", after-before)
	}
	tot := report.Totals
	if tot.Tickets != 2 || tot.BreachedActual != 0 || tot.BreachedWhatIf != 1 || tot.NewlyBreached != 1 || tot.Changed != 2 {
		t.Fatalf("totals = %+v", tot)
	}
	if *tot.ComplianceActual != 100 || *tot.ComplianceWhatIf != 50 {
		t.Fatalf("compliance %v -> %v, want 100 -> 50", *tot.ComplianceActual, *tot.ComplianceWhatIf)
	}
	for _, tk := range report.Tickets {
		wantResponse := time.Date(2026, 1, 5, 11, 0, 0, 0, time.UTC)
		if !tk.WhatIf.ResponseBy.Equal(wantResponse) || *tk.WhatIf.SLA != "Tight" || *tk.Actual.SLA != "Standard" {
			t.Errorf("ticket %s: %+v", tk.Number, tk)
		}
		if tk.ID == slow && (!tk.WhatIf.Breached || *tk.WhatIf.AgreementStatus != domain.AgreementFailed) {
			t.Errorf("the slow reply must breach the tight SLA: %+v", tk.WhatIf)
		}
	}
	// The live model is untouched by the replay.
	if v, _ := model.Get(slow, now); *v.SLA != "Standard" || *v.AgreementStatus == domain.AgreementFailed {
		t.Errorf("the model changed: %v %v", *v.SLA, *v.AgreementStatus)
	}
}

// A ticket created after the evaluation instant is not part of the report.
func TestWhatIfLeavesOutLaterTickets(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	now := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	h, err := commands.NewHandler(ctx, store, commands.Options{Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.SaveSLA(ctx, slaDef("Standard", 4*time.Hour, 8*time.Hour), commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := h.CreateTicket(ctx, domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
			Subject: "s", RaisedBy: "c@example.com", Channel: domain.ChannelAPI}}, commands.Meta{}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Hour)
	}
	model := projections.NewTickets()
	if _, err := projections.NewRunner(store, nil, model).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	sla, _ := domain.CompileSLA(slaDef("Tight", time.Hour, 2*time.Hour))
	run := projections.NewWhatIf(sla, time.Date(2026, 1, 5, 10, 30, 0, 0, time.UTC), model.LookupSLA, nil)
	if _, err := projections.Replay(ctx, store, func(e domain.Event, _ uint64) error { run.Apply(e); return nil }); err != nil {
		t.Fatal(err)
	}
	if r := run.Report(); r.Totals.Tickets != 1 || r.Tickets[0].ID == "" {
		t.Fatalf("report as of 10:30 = %+v", r.Totals)
	}
}
