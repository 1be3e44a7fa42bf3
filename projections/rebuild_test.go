package projections_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/projections"
	"github.com/ticketcore/ticketcore/projections/projtest"
)

// TestLiveEqualsRebuildEqualsFold generates a seeded support-centre history through the
// command handler on the JetStream store, with a live projection following it, and
// checks that three ways of reading the same events agree: the live model, a model
// rebuilt from the store afterwards, and each ticket folded alone from its stream.
func TestLiveEqualsRebuildEqualsFold(t *testing.T) {
	tickets := 400
	if testing.Short() {
		tickets = 80
	}
	ctx := t.Context()
	store, err := jetstream.Open(ctx, jetstream.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	clock := projtest.NewClock(projtest.Start)
	h, err := commands.NewHandler(ctx, store, commands.Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	live := projections.NewTickets()
	runner := projections.NewRunner(store, nil, live)
	runCtx, stop := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- runner.Run(runCtx) }()
	defer func() {
		stop()
		<-runDone
	}()

	began := time.Now()
	stats, err := projtest.Generate(ctx, h, clock, rand.New(rand.NewPCG(20260105, 42)), tickets)
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	t.Logf("generated in %v: %d tickets (%d splits), %d commands accepted, %d refused, %d events, %s to %s; actions %v",
		time.Since(began).Round(time.Millisecond), stats.Tickets, stats.Splits, stats.Commands, stats.Refused, stats.Events,
		stats.Start.Format(time.DateOnly), stats.End.Format(time.DateOnly), stats.Actions)
	if !testing.Short() && (stats.Tickets < 400 || stats.Events < 3000 || stats.Refused == 0 || stats.Splits == 0) {
		t.Fatalf("the history is too small to mean much: %+v", stats)
	}

	last, err := store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := runner.WaitFor(waitCtx, last); err != nil {
		t.Fatalf("live projection did not reach %d (at %d): %v", last, runner.Position(), err)
	}

	at := stats.End.Add(36 * time.Hour) // late enough for some deadlines to pass
	liveSnap := live.Snapshot(at)
	if len(liveSnap) != stats.Tickets {
		t.Fatalf("live model has %d tickets, generated %d", len(liveSnap), stats.Tickets)
	}

	rebuilt := projections.NewTickets()
	began = time.Now()
	pos, err := projections.NewRunner(store, nil, rebuilt).CatchUp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rebuilt %d events in %v", pos, time.Since(began).Round(time.Millisecond))
	if pos != last {
		t.Fatalf("rebuild reached %d, store ends at %d", pos, last)
	}
	rebuiltSnap := rebuilt.Snapshot(at)
	compareViews(t, "live", liveSnap, "rebuilt", rebuiltSnap)

	// Each ticket folded alone from its own stream, as GET ?as_of= does.
	folded := make([]projections.TicketView, 0, len(liveSnap))
	for _, v := range liveSnap {
		events, err := h.TicketEvents(ctx, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) == 0 {
			t.Fatalf("ticket %s has no events", v.ID)
		}
		ts, ok := projections.FoldTicket(events, events[len(events)-1].OccurredAt, live.LookupSLA)
		if !ok {
			t.Fatalf("ticket %s does not fold", v.ID)
		}
		folded = append(folded, ts.View(at, false))
		if thread := ts.View(at, true).Thread; len(thread) == 0 {
			t.Fatalf("ticket %s folds without a thread", v.ID)
		}
	}
	compareViews(t, "live", liveSnap, "folded", folded)

	// The metrics must not be trivial: SLAs applied, deadlines met and missed, time
	// measured in business hours.
	var withSLA, failed, fulfilled, business, versions2 int
	for _, v := range liveSnap {
		if v.SLA != nil {
			withSLA++
			if *v.SLA == "Standard" && *v.SLAVersion == 2 {
				versions2++
			}
			switch *v.AgreementStatus {
			case "Failed":
				failed++
			case "Fulfilled":
				fulfilled++
			}
		}
		if v.FirstResponseTimeBusiness != nil && *v.FirstResponseTimeBusiness > 0 {
			business++
		}
	}
	t.Logf("with SLA %d, Failed %d, Fulfilled %d, business first response %d, Standard v2 %d",
		withSLA, failed, fulfilled, business, versions2)
	if withSLA != len(liveSnap) || failed == 0 || fulfilled == 0 || business == 0 || versions2 == 0 {
		t.Errorf("metrics look trivial: with SLA %d of %d, Failed %d, Fulfilled %d, business first response %d, Standard v2 %d",
			withSLA, len(liveSnap), failed, fulfilled, business, versions2)
	}
}

// compareViews requires two lists of views to be deeply equal, and names the first
// ticket and field that differ when they are not.
func compareViews(t *testing.T, nameA string, a []projections.TicketView, nameB string, b []projections.TicketView) {
	t.Helper()
	if reflect.DeepEqual(a, b) {
		return
	}
	if len(a) != len(b) {
		t.Fatalf("%s has %d tickets, %s %d", nameA, len(a), nameB, len(b))
	}
	for i := range a {
		ja, _ := json.Marshal(a[i])
		jb, _ := json.Marshal(b[i])
		if reflect.DeepEqual(a[i], b[i]) {
			continue
		}
		if bytes.Equal(ja, jb) {
			t.Errorf("ticket %s: %s and %s differ in memory but not as JSON: %s", a[i].ID, nameA, nameB, firstDiff(a[i], b[i]))
			continue
		}
		t.Fatalf("ticket %s differs: %s\n%s: %s\n%s: %s", a[i].ID, firstDiff(a[i], b[i]), nameA, ja, nameB, jb)
	}
}

// firstDiff names the JSON fields whose values differ.
func firstDiff(a, b projections.TicketView) string {
	var ma, mb map[string]any
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	_ = json.Unmarshal(ja, &ma)
	_ = json.Unmarshal(jb, &mb)
	var out string
	for k, va := range ma {
		if !reflect.DeepEqual(va, mb[k]) {
			out += fmt.Sprintf("%s: %v != %v; ", k, va, mb[k])
		}
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			out += fmt.Sprintf("%s only in the second; ", k)
		}
	}
	if out == "" {
		return "(only in-memory representation differs)"
	}
	return out
}
