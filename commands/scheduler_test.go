package commands_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
	"github.com/ticketcore/ticketcore/projections"
)

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

func countEvents(t *testing.T, h *commands.Handler, id, typ string) int {
	t.Helper()
	events, err := h.TicketEvents(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// Several processes notice the same deadline, before and after restarts: the ticket
// records it once, so one notification is published.
func TestDeadlineRecordedOnce(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	clock := &testClock{now: time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)} // Monday
	newHandler := func() *commands.Handler {
		h, err := commands.NewHandler(ctx, store, commands.Options{Clock: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	first := newHandler()
	if err := first.SeedDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	def := domain.SLADefinition{Name: "Standard", Default: true,
		Calendar:   domain.CalendarSpec{Timezone: "UTC", Hours: map[string][][2]string{"Monday": {{"09:00", "17:00"}}}},
		Priorities: []domain.SLAPriority{{Name: "Medium", Response: domain.Duration(time.Hour), Resolution: domain.Duration(4 * time.Hour), Default: true}}}
	if _, err := first.SaveSLA(ctx, def, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	res, err := first.CreateTicket(ctx, domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
		Subject: "late", RaisedBy: "c@example.com", Channel: domain.ChannelAPI}}, commands.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	project := func(s eventstore.Store) *projections.Tickets {
		m := projections.NewTickets()
		if _, err := projections.NewRunner(s, nil, m).CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		return m
	}

	// 10:45: a warning 30 minutes ahead is due, the response deadline (11:00) is not.
	clock.Set(time.Date(2026, 1, 5, 10, 45, 0, 0, time.UTC))
	due := project(store).DueDeadlines(clock.Now(), 30*time.Minute)
	if len(due) != 1 || !due[0].Warning || due[0].Kind != domain.DeadlineResponse {
		t.Fatalf("due at 10:45 = %+v", due)
	}
	if _, err := first.RecordDeadline(ctx, due[0]); err != nil {
		t.Fatal(err)
	}

	// 11:30: three processes see the missed response deadline at once.
	clock.Set(time.Date(2026, 1, 5, 11, 30, 0, 0, time.UTC))
	due = project(store).DueDeadlines(clock.Now(), 30*time.Minute)
	if len(due) != 1 || due[0].Warning || !due[0].Deadline.Equal(time.Date(2026, 1, 5, 11, 0, 0, 0, time.UTC)) {
		t.Fatalf("due at 11:30 = %+v", due)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func(h *commands.Handler) {
			defer wg.Done()
			if _, err := h.RecordDeadline(ctx, due[0]); err != nil {
				t.Error(err)
			}
		}(newHandler())
	}
	wg.Wait()
	// A restarted process whose projection lags sends it again.
	if r, err := newHandler().RecordDeadline(ctx, due[0]); err != nil || !r.Duplicate {
		t.Fatalf("after restart: %+v, %v", r, err)
	}
	if n := countEvents(t, first, res.TicketID, "ticket.sla_deadline_missed"); n != 1 {
		t.Fatalf("missed deadline recorded %d times", n)
	}
	if n := countEvents(t, first, res.TicketID, "ticket.sla_deadline_approaching"); n != 1 {
		t.Fatalf("warning recorded %d times", n)
	}
	// Once projected, nothing more is owed; the agreement status is Failed.
	model := project(store)
	if due := model.DueDeadlines(clock.Now(), 30*time.Minute); len(due) != 0 {
		t.Fatalf("still due: %+v", due)
	}
	if v, _ := model.Get(res.TicketID, clock.Now()); *v.AgreementStatus != domain.AgreementFailed {
		t.Fatalf("agreement status %s", *v.AgreementStatus)
	}
}

// A ticket left in Replied is closed automatically once, after auto_close_days, by
// whichever process runs the scheduler first; a customer message before that prevents it.
func TestAutoClose(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	clock := &testClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	h, err := commands.NewHandler(ctx, store, commands.Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.ChangeSettings(ctx, domain.SupportSettings{AutoCloseDays: 3}, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	create := func() string {
		res, err := h.CreateTicket(ctx, domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
			Subject: "s", RaisedBy: "c@example.com", Channel: domain.ChannelAPI}}, commands.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Execute(ctx, res.TicketID, domain.SendReply{Body: "answer"}, commands.Meta{}); err != nil {
			t.Fatal(err)
		}
		return res.TicketID
	}
	silent, answered := create(), create()
	clock.Set(time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC))
	if _, err := h.Execute(ctx, answered, domain.ReceiveCustomerMessage{Channel: domain.ChannelEmail, Body: "thanks, but"}, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	project := func() *projections.Tickets {
		m := projections.NewTickets()
		if _, err := projections.NewRunner(store, nil, m).CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		return m
	}
	// Day 2: nothing is due yet.
	if due := project().DueAutoCloses(clock.Now(), 3); len(due) != 0 {
		t.Fatalf("due too early: %+v", due)
	}
	// Day 3: two processes run the scheduler with the same, lagging view.
	clock.Set(time.Date(2026, 3, 5, 9, 0, 0, 0, time.UTC))
	model := project()
	h.RunDue(ctx, model, 0)
	other, _ := commands.NewHandler(ctx, store, commands.Options{Clock: clock.Now})
	other.RunDue(ctx, model, 0)
	if n := countEvents(t, h, silent, "ticket.closed"); n != 1 {
		t.Fatalf("silent ticket closed %d times", n)
	}
	if n := countEvents(t, h, answered, "ticket.closed"); n != 0 {
		t.Fatalf("a ticket the customer answered was closed")
	}
	v, _ := project().Get(silent, clock.Now())
	if v.Status != domain.StatusClosed || !v.ClosedAutomatically {
		t.Fatalf("status %s, automatic %v", v.Status, v.ClosedAutomatically)
	}
}
