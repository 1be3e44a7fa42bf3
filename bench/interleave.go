package bench

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
)

// Slices of a command phase: the phase takes turns with its raw baseline this many
// times, and each raw turn republishes this share of the events of the slice before
// it, once by one publisher and once by four.
const (
	slicesPerPhase = 40
	rawShare       = 4 // one event in rawShare
	rawPublishers  = 4
	rawStreamName  = "BENCH_RAW"
)

// rawCAS is the raw JetStream baseline of the command phases. Between slices of
// commands, it republishes a sample of the events those commands have just stored into
// a scratch stream, with the expected-last-subject-sequence check and the message IDs
// the adapter uses, through the JetStream client's PublishMsg: first one event at a
// time by one publisher (the baseline of the targets), then by four publishers on a
// connection each (the raw ceiling four clients could hope for, reported beside).
//
// Taking turns slice by slice exposes commands and baseline to the same load: on a
// shared machine the absolute rates drift by 2x within minutes, and a baseline measured
// before or after a phase would make its ratio a measure of that drift.
type rawCAS struct {
	store   *jetstream.Store
	one     natsjs.JetStream
	four    []natsjs.JetStream
	conns   []*nats.Conn
	lastSeq []map[string]uint64 // per publisher: the one publisher's first, then the four's
	sampled uint64              // store position up to which events were sampled
}

// rawTally accumulates the raw turns of one phase.
type rawTally struct {
	ops       int
	elapsed   time.Duration
	cpu       float64
	latencies []time.Duration
}

func (t *rawTally) rate() Rate {
	r := rate(t.ops, t.ops, t.elapsed, t.latencies)
	r.CPUSeconds = t.cpu
	return r
}

func newRawCAS(ctx context.Context, store *jetstream.Store) (*rawCAS, error) {
	one, err := natsjs.New(store.Conn())
	if err != nil {
		return nil, err
	}
	_ = one.DeleteStream(ctx, rawStreamName)
	if _, err := one.CreateStream(ctx, natsjs.StreamConfig{Name: rawStreamName, Subjects: []string{"bench.raw.>"},
		Storage: natsjs.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		return nil, err
	}
	r := &rawCAS{store: store, one: one}
	r.lastSeq = make([]map[string]uint64, 1+rawPublishers)
	for i := range r.lastSeq {
		r.lastSeq[i] = map[string]uint64{}
	}
	for range rawPublishers {
		nc, err := nats.Connect(store.ClientURL())
		if err != nil {
			r.close(ctx)
			return nil, err
		}
		js, err := natsjs.New(nc)
		if err != nil {
			nc.Close()
			r.close(ctx)
			return nil, err
		}
		r.conns, r.four = append(r.conns, nc), append(r.four, js)
	}
	if r.sampled, err = store.LastPosition(ctx); err != nil {
		r.close(ctx)
		return nil, err
	}
	return r, nil
}

// close removes the scratch stream, so that the store's size on disk is the events'.
func (r *rawCAS) close(ctx context.Context) {
	for _, nc := range r.conns {
		nc.Close()
	}
	_ = r.one.DeleteStream(ctx, rawStreamName)
}

// turn samples the events stored since the last turn: the first `take` are published
// by one publisher into one, the next `take` by four publishers into four.
func (r *rawCAS) turn(ctx context.Context, take int, one, four *rawTally) error {
	last, err := r.store.LastPosition(ctx)
	if err != nil {
		return err
	}
	if last <= r.sampled {
		return nil
	}
	recs, err := r.store.ReadAll(ctx, r.sampled+1, int(min(last-r.sampled, uint64(2*take))))
	if err != nil {
		return err
	}
	r.sampled = last
	first := recs[:min(take, len(recs))]
	if err := r.publishBy(ctx, first, []natsjs.JetStream{r.one}, r.lastSeq[:1], "bench.raw.one.", one); err != nil {
		return err
	}
	return r.publishBy(ctx, recs[len(first):], r.four, r.lastSeq[1:], "bench.raw.four.", four)
}

// publishBy splits the events among the publishers by stream, so that no two race on
// one subject's expected sequence, and publishes each share one event at a time.
func (r *rawCAS) publishBy(ctx context.Context, recs []eventstore.RecordedEvent, publishers []natsjs.JetStream,
	lastSeq []map[string]uint64, prefix string, t *rawTally) error {
	parts := make([][]eventstore.RecordedEvent, len(publishers))
	for _, rec := range recs {
		h := fnv.New32a()
		h.Write([]byte(rec.Stream))
		k := int(h.Sum32() % uint32(len(publishers)))
		parts[k] = append(parts[k], rec)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	cpu0, start := cpuSeconds(), time.Now()
	for k, part := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lats := make([]time.Duration, 0, len(part))
			for _, rec := range part {
				lat, err := r.publish(ctx, publishers[k], lastSeq[k], prefix+rec.Stream, rec)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				lats = append(lats, lat)
			}
			mu.Lock()
			t.latencies = append(t.latencies, lats...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.elapsed += time.Since(start)
	t.cpu += cpuSeconds() - cpu0
	t.ops += len(recs)
	return firstErr
}

func (r *rawCAS) publish(ctx context.Context, js natsjs.JetStream, lastSeq map[string]uint64, subject string, rec eventstore.RecordedEvent) (time.Duration, error) {
	msg := &nats.Msg{Subject: subject, Data: rec.Data, Header: nats.Header{}}
	msg.Header.Set(natsjs.MsgIDHeader, rec.ID)
	msg.Header.Set(natsjs.ExpectedLastSubjSeqHeader, strconv.FormatUint(lastSeq[subject], 10))
	t0 := time.Now()
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		return 0, fmt.Errorf("raw publish: %w", err)
	}
	lastSeq[subject] = ack.Sequence
	return time.Since(t0), nil
}

// phaseResult is one command phase with the raw turns taken beside it.
type phaseResult struct {
	commands Rate
	rawOne   rawTally
	rawFour  rawTally
}

// runCommands sends the workload through the handler with n clients; each client owns
// the tickets whose index is its number modulo n, so clients never contend on a ticket.
// Every 1/slicesPerPhase of the workload, the clients pause and raw takes its turn;
// the phase's time and CPU exclude the turns. A nil raw takes no turns.
func runCommands(ctx context.Context, h *commands.Handler, clock *workloadClock, w Workload, base int, ids []string, n int, raw *rawCAS) (phaseResult, error) {
	var res phaseResult
	sliceOps := int64(max(len(w.Steps)/slicesPerPhase, 1))
	take := max(int(sliceOps)/rawShare, 1)
	var gate sync.RWMutex // clients hold it shared while running a command; a raw turn holds it alone
	var done atomic.Int64
	var rawTime time.Duration
	var rawCPU float64

	var mu sync.Mutex
	var latencies []time.Duration
	events := 0
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	var wg sync.WaitGroup
	cpu0 := cpuSeconds()
	start := time.Now()
	for client := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			count := 0
			for _, s := range w.Steps {
				ticket := int(s.Ticket)
				if ticket%n != client {
					continue
				}
				create, cmd := w.Command(s)
				gate.RLock()
				clock.advance(s.At)
				t0 := time.Now()
				var r commands.Result
				var err error
				if create != nil {
					r, err = h.CreateTicket(ctx, *create, commands.Meta{Actor: "bench"})
					ids[base+ticket] = r.TicketID
				} else {
					r, err = h.Execute(ctx, ids[base+ticket], cmd, commands.Meta{Actor: "bench"})
				}
				lat := time.Since(t0)
				gate.RUnlock()
				if err != nil {
					fail(fmt.Errorf("ticket %d step %d: %w", ticket, s.Kind, err))
					return
				}
				mine = append(mine, lat)
				count += len(r.Events)
				if done.Add(1)%sliceOps == 0 && raw != nil {
					gate.Lock()
					t, c := time.Now(), cpuSeconds()
					err := raw.turn(ctx, take, &res.rawOne, &res.rawFour)
					rawTime += time.Since(t)
					rawCPU += cpuSeconds() - c
					gate.Unlock()
					if err != nil {
						fail(err)
						return
					}
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			events += count
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	res.commands = rate(len(latencies), events, time.Since(start)-rawTime, latencies)
	res.commands.CPUSeconds = cpuSeconds() - cpu0 - rawCPU
	return res, nil
}
