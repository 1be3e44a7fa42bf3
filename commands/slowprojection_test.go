package commands_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/projections"
)

// slowProjection delays every event it applies, as a projection writing to a slow
// database would.
type slowProjection struct {
	projections.Projection
	delay time.Duration
}

func (p slowProjection) Apply(e domain.Event, pos uint64) error {
	time.Sleep(p.delay)
	return p.Projection.Apply(e, pos)
}

// TestSlowProjectionUnderBurst sends a burst of commands while the only projection
// takes 1 ms per event (at most 1 000 events/s, far below what the handler acknowledges).
//
// Promises: the handler acknowledges every command without waiting for the projection
// (the burst ends long before the projection has applied it: it lags); the projection
// then catches up by itself, and equals a rebuild from the store; every acknowledged
// command is stored once at its version.
func TestSlowProjectionUnderBurst(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	store := openJetStream(t)
	h, err := commands.NewHandler(ctx, store, commands.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SeedDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	const delay = time.Millisecond
	tickets := projections.NewTickets()
	runner := projections.NewRunner(store, quiet, slowProjection{tickets, delay})
	runCtx, stopRunner := context.WithCancel(ctx)
	done := follow(runCtx, runner)
	defer func() { stopRunner(); <-done }()

	workers, perWorker := 8, 60 // 480 tickets, 4 commands each: 1 920 events
	if long {
		perWorker = 400
	}
	var (
		acks   ackLog
		maxLag atomic.Uint64
		wg     sync.WaitGroup
		ids    = make([][]string, workers)
	)
	began := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				id := uuid.NewString()
				res, err := h.CreateTicket(ctx, domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
					Subject: fmt.Sprintf("burst %d/%d", w, i), RaisedBy: "customer@example.com", Channel: domain.ChannelAPI}},
					commands.Meta{CommandID: id})
				if err != nil {
					t.Error(err)
					return
				}
				acks.add(res.TicketID, id, res)
				ids[w] = append(ids[w], res.TicketID)
				for _, cmd := range []domain.TicketCommand{
					domain.SendReply{Body: "On it."}, domain.AddComment{Body: "note"}, domain.ReceiveCustomerMessage{Body: "Thanks", Channel: domain.ChannelPortal},
				} {
					cid := uuid.NewString()
					r, err := h.Execute(ctx, res.TicketID, cmd, commands.Meta{CommandID: cid})
					if err != nil {
						t.Error(err)
						return
					}
					acks.add(res.TicketID, cid, r)
					if lag := r.Position - min(runner.Position(), r.Position); lag > maxLag.Load() {
						maxLag.Store(lag)
					}
				}
			}
		})
	}
	wg.Wait()
	burst := time.Since(began)
	last, err := store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lagAtEnd := last - min(runner.Position(), last)
	catchUpStart := time.Now()
	waitCtx, cancelWait := context.WithTimeout(ctx, time.Minute)
	defer cancelWait()
	if err := runner.WaitFor(waitCtx, last); err != nil {
		t.Fatalf("the slow projection did not catch up with %d: at %d", last, runner.Position())
	}
	catchUp := time.Since(catchUpStart)

	acklist := acks.all()
	rep := verifyStore(t, store, acklist)
	rebuilt := projections.NewTickets()
	if _, err := projections.NewRunner(store, quiet, rebuilt).Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, w := range ids {
		all = append(all, w...)
	}
	diffs := sameTickets(t, all, tickets, rebuilt)
	t.Logf("burst: %d commands acknowledged in %v (%.0f/s) with a projection applying at most %.0f events/s",
		len(acklist), burst.Round(time.Millisecond), float64(len(acklist))/burst.Seconds(), float64(time.Second)/float64(delay))
	t.Logf("projection lag: at most %d events behind an acknowledged command, %d at the end of the burst; caught up %v later; %d tickets differ from the rebuild; store: %d events, %d duplicates, %d acknowledged missing",
		maxLag.Load(), lagAtEnd, catchUp.Round(time.Millisecond), diffs, rep.events, rep.duplicates, rep.missing)
	if lagAtEnd == 0 && maxLag.Load() == 0 {
		t.Error("the projection never lagged: the burst did not outrun it, so the test proves nothing")
	}
}
