package commands_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
	"github.com/ticketcore/ticketcore/projections"
)

// A holiday list named by an SLA: saving the SLA snapshots the list's dates into the
// SLA version; changing the list saves a new SLA version, so new tickets get the new
// holidays while a ticket created before keeps the deadlines of the version it recorded.
func TestHolidayListsAreReusableAndVersioned(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	clock := &testClock{now: time.Date(2026, 4, 29, 16, 0, 0, 0, time.UTC)} // Wednesday
	h, err := commands.NewHandler(ctx, store, commands.Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SeedDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	days := map[string][][2]string{}
	for _, d := range []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"} {
		days[d] = [][2]string{{"09:00", "17:00"}}
	}
	def := domain.SLADefinition{Name: "Standard", Default: true,
		Calendar:   domain.CalendarSpec{Timezone: "UTC", Hours: days, HolidayLists: []string{"France"}},
		Priorities: []domain.SLAPriority{{Name: "Medium", Response: domain.Duration(8 * time.Hour), Resolution: domain.Duration(16 * time.Hour), Default: true}}}

	// An SLA cannot name a list that does not exist.
	if _, err := h.SaveSLA(ctx, def, commands.Meta{}); !errors.Is(err, domain.ErrValidation) {
		t.Fatalf("unknown list: %v", err)
	}
	if _, err := h.SaveHolidayList(ctx, domain.HolidayList{Name: "France", Holidays: []string{"2026-05-01"}}, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.SaveSLA(ctx, def, commands.Meta{}); err != nil {
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
	// Wednesday 16:00 + 8 working hours: Thursday 16:00 (Friday 1 May is a holiday).
	before := create()

	// May 1st is dropped, 30 April added: the SLA is saved again as version 2.
	events, err := h.SaveHolidayList(ctx, domain.HolidayList{Name: "France", Holidays: []string{"2026-04-30"}}, commands.Meta{CommandID: "france-v2"})
	if err != nil {
		t.Fatal(err)
	}
	if n := slices.IndexFunc(events, func(e domain.Event) bool { return e.Type == "sla.saved" }); n < 0 {
		t.Fatalf("no new SLA version among %d events", len(events))
	}
	after := create()

	model := projections.NewTickets()
	if _, err := projections.NewRunner(store, nil, model).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(id string, version int, responseBy time.Time) {
		t.Helper()
		v, _ := model.Get(id, clock.Now())
		if *v.SLAVersion != version || !v.ResponseBy.Equal(responseBy) {
			t.Errorf("ticket on SLA v%d due %s, want v%d due %s", *v.SLAVersion, v.ResponseBy, version, responseBy)
		}
	}
	check(before, 1, time.Date(2026, 4, 30, 16, 0, 0, 0, time.UTC))
	// Thursday 30 April is now the holiday: Wednesday 1 h, then Friday 09:00 + 7 h.
	check(after, 2, time.Date(2026, 5, 1, 16, 0, 0, 0, time.UTC))

	// The list as written is kept; the listing names lists, not their dates.
	if written, _ := h.Catalogues().WrittenSLA("Standard"); len(written.Calendar.Holidays) != 0 || written.Calendar.HolidayLists[0] != "France" {
		t.Fatalf("written definition = %+v", written.Calendar)
	}
	// A retried save is recognised and adds nothing, cascade included.
	pos, _ := store.LastPosition(ctx)
	if _, err := h.SaveHolidayList(ctx, domain.HolidayList{Name: "France", Holidays: []string{"2026-04-30"}}, commands.Meta{CommandID: "france-v2"}); err != nil {
		t.Fatal(err)
	}
	if now, _ := store.LastPosition(ctx); now != pos {
		t.Fatalf("the retry stored %d events", now-pos)
	}
	// A list in use cannot be removed.
	if _, err := h.RemoveHolidayList(ctx, "France", commands.Meta{}); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("remove a list in use: %v", err)
	}
}

// Catalogue commands are idempotent under their command ID, like ticket commands.
func TestCatalogueRetryIsIdempotent(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	h, err := commands.NewHandler(ctx, store, commands.Options{})
	if err != nil {
		t.Fatal(err)
	}
	meta := commands.Meta{CommandID: "create-bug"}
	first, err := h.ChangeCatalogue(ctx, false, domain.CatalogueCommand{Op: "create", Name: "Bug"}, nil, meta)
	if err != nil {
		t.Fatal(err)
	}
	pos, _ := store.LastPosition(ctx)
	other, _ := commands.NewHandler(ctx, store, commands.Options{}) // another process
	for _, handler := range []*commands.Handler{h, other} {
		again, err := handler.ChangeCatalogue(ctx, false, domain.CatalogueCommand{Op: "create", Name: "Bug"}, nil, meta)
		if err != nil || len(again) != 1 || again[0].ID != first[0].ID {
			t.Fatalf("retry = %v, %v; want the first event again", again, err)
		}
	}
	if now, _ := store.LastPosition(ctx); now != pos {
		t.Fatalf("retries stored %d events", now-pos)
	}
}

// TestStaleCatalogueDoesNotRefuse: a process whose catalogue is behind another
// process's writes does not refuse a change the stored catalogue accepts.
func TestStaleCatalogueDoesNotRefuse(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	a, b := newHandler(t, store, "p1", nil), newHandler(t, store, "p2", nil)
	if _, err := a.ChangeCatalogue(ctx, false, domain.CatalogueCommand{Op: "create", Name: "Bug"}, nil, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	// b has not seen "Bug" (no runner feeds it here): removing it must still work.
	if _, err := b.ChangeCatalogue(ctx, false, domain.CatalogueCommand{Op: "remove", Name: "Bug"}, nil, commands.Meta{}); err != nil {
		t.Fatalf("remove a type another process created: %v", err)
	}
	// A refusal the stored catalogue confirms is still one.
	if _, err := b.ChangeCatalogue(ctx, false, domain.CatalogueCommand{Op: "remove", Name: "Bug"}, nil, commands.Meta{}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("remove a removed type: err = %v, want ErrNotFound", err)
	}
}
