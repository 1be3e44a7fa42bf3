package projections_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
	"github.com/ticketcore/ticketcore/projections"
	"github.com/ticketcore/ticketcore/projections/projtest"
)

// benchTickets is the size of the generated history the projection benchmarks apply.
const benchTickets = 2000

// projectionHistory is one generated history, decoded once, in two forms: as recorded
// (SLA selections naming the business-hours SLAs of projtest) and "plain" (the same
// events with every SLA selection naming no SLA, so that no calendar maths runs).
var projectionHistory = sync.OnceValues(func() (*benchHistory, error) {
	ctx := context.Background()
	store := memstore.New()
	clock := projtest.NewClock(projtest.Start)
	h, err := commands.NewHandler(ctx, store, commands.Options{Clock: clock.Now})
	if err != nil {
		return nil, err
	}
	stats, err := projtest.Generate(ctx, h, clock, rand.New(rand.NewPCG(20260105, 7)), benchTickets)
	if err != nil {
		return nil, err
	}
	last, err := store.LastPosition(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := store.ReadAll(ctx, 1, int(last))
	if err != nil {
		return nil, err
	}
	hist := &benchHistory{tickets: stats.Tickets, end: stats.End}
	for _, rec := range recs {
		e, err := domain.DecodeEvent(rec.Data)
		if err != nil {
			return nil, err
		}
		hist.positions = append(hist.positions, rec.Position)
		hist.recorded = append(hist.recorded, e)
		hist.plain = append(hist.plain, withoutSLA(e))
	}
	return hist, nil
})

type benchHistory struct {
	recorded, plain []domain.Event
	positions       []uint64
	tickets         int
	end             time.Time
}

// withoutSLA returns e with the SLA selection it records (creation, priority and type
// changes, resets) naming no SLA; the priority is kept. Other events are returned as
// they are.
func withoutSLA(e domain.Event) domain.Event {
	none := func(s domain.SLASelection) domain.SLASelection { return domain.SLASelection{Priority: s.Priority} }
	switch p := e.Payload.(type) {
	case domain.TicketCreated:
		p.SLA = none(p.SLA)
		e.Payload = p
	case domain.PriorityChanged:
		p.SLA = none(p.SLA)
		e.Payload = p
	case domain.TypeChanged:
		p.SLA = none(p.SLA)
		e.Payload = p
	case domain.SLAReset:
		p.SLA, p.SLAVersion = "", 0
		e.Payload = p
	}
	return e
}

// BenchmarkProjectPlain and BenchmarkProjectWithSLA apply the same decoded events into
// a fresh ticket read model per iteration; only the SLA selections differ, so the
// ratio of their events/s is the cost of the SLA metrics (business-hours calendars,
// deadlines, pauses) over the plain read model. Decoding is not measured.
//
//	go test ./projections -run '^$' -bench Project -benchtime 20x
func BenchmarkProjectPlain(b *testing.B) {
	benchmarkProject(b, func(h *benchHistory) []domain.Event { return h.plain }, false)
}

func BenchmarkProjectWithSLA(b *testing.B) {
	benchmarkProject(b, func(h *benchHistory) []domain.Event { return h.recorded }, true)
}

func benchmarkProject(b *testing.B, events func(*benchHistory) []domain.Event, withSLA bool) {
	hist, err := projectionHistory()
	if err != nil {
		b.Fatal(err)
	}
	evs := events(hist)
	project := func() *projections.Tickets {
		m := projections.NewTickets()
		for i, e := range evs {
			if err := m.Apply(e, hist.positions[i]); err != nil {
				b.Fatal(err)
			}
		}
		return m
	}
	// The two variants must really differ in what they compute: every ticket has an
	// SLA as recorded, and none in the plain variant.
	m := project()
	withAnSLA := 0
	for _, v := range m.Snapshot(hist.end) {
		if v.SLA != nil {
			withAnSLA++
		}
	}
	if m.Count() != hist.tickets || (withSLA && withAnSLA != hist.tickets) || (!withSLA && withAnSLA != 0) {
		b.Fatalf("%d tickets, %d with an SLA; generated %d (with SLA: %t)", m.Count(), withAnSLA, hist.tickets, withSLA)
	}
	for b.Loop() {
		project()
	}
	b.ReportMetric(float64(len(evs))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(b.Elapsed().Seconds()*1e9/(float64(len(evs))*float64(b.N)), "ns/event")
}
