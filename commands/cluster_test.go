package commands_test

// Reliability of the command path on a 3-node JetStream cluster (R3 event stream).
// docs/reliability.md lists what each test promises and the figures they logged.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/eventstore/jetstream/jstest"
	"github.com/ticketcore/ticketcore/projections"
)

// long is true with TICKETCORE_LONG=1: the reliability tests run longer loads.
var long = os.Getenv("TICKETCORE_LONG") == "1"

// acked is one acknowledged command: the handler's result for it.
type acked struct {
	ticket, commandID string
	version           uint64
	duplicate         bool
}

// ackLog records acknowledged commands from many goroutines.
type ackLog struct {
	mu   sync.Mutex
	list []acked
}

func (l *ackLog) add(ticket, commandID string, res commands.Result) {
	l.mu.Lock()
	l.list = append(l.list, acked{ticket, commandID, res.Version, res.Duplicate})
	l.mu.Unlock()
}

func (l *ackLog) all() []acked {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]acked(nil), l.list...)
}

// storeReport is what verifyStore found.
type storeReport struct {
	events, streams, duplicates, missing, misplaced int
}

// verifyStore reads every event and checks: no event ID twice; in every stream the
// sequences are 1..n without gap, the hash chain verifies, and no command ID appears
// twice; every acknowledged command is stored once, at the version its result gave.
func verifyStore(t *testing.T, store eventstore.Store, acks []acked) storeReport {
	t.Helper()
	ctx := t.Context()
	var r storeReport
	streams := map[string][]domain.Event{}
	ids := map[string]bool{}
	for from := uint64(1); ; {
		recs, err := store.ReadAll(ctx, from, 4096)
		// A node just restarted may not create the read's consumer in time while the
		// machine is busy (other test packages run beside this one): the store says it
		// is unavailable, and a client tries again.
		for tries := 1; errors.Is(err, eventstore.ErrUnavailable) && tries < 10; tries++ {
			time.Sleep(time.Second)
			recs, err = store.ReadAll(ctx, from, 4096)
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			e, err := domain.DecodeEvent(rec.Data)
			if err != nil {
				t.Fatalf("position %d: %v", rec.Position, err)
			}
			if ids[e.ID] {
				r.duplicates++
				t.Errorf("event %s stored twice", e.ID)
			}
			ids[e.ID] = true
			streams[rec.Stream] = append(streams[rec.Stream], e)
			r.events++
		}
		from = recs[len(recs)-1].Position + 1
	}
	r.streams = len(streams)
	commandAt := map[string]map[string][]uint64{} // stream -> command ID -> sequences
	for name, events := range streams {
		seen := map[string][]uint64{}
		for i, e := range events {
			if e.Sequence != uint64(i+1) {
				t.Errorf("stream %s: event %d has sequence %d", name, i+1, e.Sequence)
			}
			if e.CommandID != "" {
				seen[e.CommandID] = append(seen[e.CommandID], e.Sequence)
			}
		}
		if i, reason := domain.VerifyChain(events); i >= 0 {
			t.Errorf("stream %s: hash chain broken at event %d: %s", name, i, reason)
		}
		for id, seqs := range seen {
			// One event per ticket command; a reference-data command may store
			// several (the seeding of the default priorities).
			if len(seqs) > 1 && strings.HasPrefix(name, "ticket-") {
				r.duplicates++
				t.Errorf("stream %s: command %s stored %d times (sequences %v)", name, id, len(seqs), seqs)
			}
		}
		commandAt[name] = seen
	}
	for _, a := range acks {
		seqs := commandAt[domain.TicketStream(a.ticket)][a.commandID]
		switch {
		case len(seqs) == 0:
			r.missing++
			t.Errorf("acknowledged command %s (ticket %s, version %d) is not stored", a.commandID, a.ticket, a.version)
		case seqs[0] != a.version:
			r.misplaced++
			t.Errorf("command %s acknowledged at version %d is stored at %d", a.commandID, a.version, seqs[0])
		}
	}
	return r
}

// sameTickets compares two read models ticket by ticket, evaluated at the same
// instant; it returns how many differ.
func sameTickets(t *testing.T, ids []string, got, want *projections.Tickets) int {
	t.Helper()
	at := time.Now()
	diffs := 0
	for _, id := range ids {
		a, okA := got.Get(id, at)
		b, okB := want.Get(id, at)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if okA != okB || !bytes.Equal(ja, jb) {
			diffs++
			t.Errorf("ticket %s differs:\nlive:    %s\nrebuilt: %s", id, ja, jb)
		}
	}
	if got.Count() != want.Count() {
		diffs++
		t.Errorf("live model has %d tickets, the rebuild %d", got.Count(), want.Count())
	}
	return diffs
}

// follow runs a runner until ctx ends, resuming it after errors as ticketd does.
func follow(ctx context.Context, r *projections.Runner) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			_ = r.Run(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return done
}

// TestClusterNodeLoss runs a command load through two handlers (two processes, each
// with its own connection to the cluster) on a 3-node JetStream cluster with the R3
// event stream, shuts down the node leading the stream mid-load (server.Shutdown),
// and restarts it on the same storage directory later.
//
// Promises: every command a handler acknowledged is stored exactly once, at the
// version of its result; no event is duplicated; every stream's sequence is gap-free
// and its hash chain verifies; a command whose outcome was unknown (ErrUnavailable
// during the failover), sent again with the same command ID, is applied once (a
// duplicate if the first attempt was stored); the live projection, which kept
// following through the failover, equals a rebuild from the cluster read through the
// restarted node.
//
// Short by default (about 5 s of load, one loss); TICKETCORE_LONG=1 loads for about a
// minute and shuts the stream leader down three times (whichever node leads then).
func TestClusterNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node JetStream cluster; skipped with -short")
	}
	c := jstest.StartCluster(t)
	testNodeLoss(t, c, c.Shutdown, 1)
}

// TestClusterNodeKilled is TestClusterNodeLoss with each node in a nats-server process
// of its own, and the stream leader killed (SIGKILL) instead of shut down: it hands
// nothing off and flushes nothing, as in a crash. The same promises hold.
func TestClusterNodeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node JetStream cluster in processes; skipped with -short")
	}
	c := jstest.StartClusterWith(t, jstest.Options{Processes: true})
	testNodeLoss(t, c, c.Kill, 1)
}

// TestClusterQuorumLost is TestClusterNodeKilled with two nodes of three killed at
// once, the stream leader and the node after it: the stream has no quorum until they
// are back, so no command can be acknowledged meanwhile. Commands then fail with
// ErrUnavailable (a client retries them with the same command ID), never with another
// error and never stuck beyond their deadline, and the same promises hold once the
// nodes are restarted.
func TestClusterQuorumLost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node JetStream cluster in processes; skipped with -short")
	}
	c := jstest.StartClusterWith(t, jstest.Options{Processes: true})
	testNodeLoss(t, c, c.Kill, 2)
}

// testNodeLoss runs the load of TestClusterNodeLoss on c, stopping with lose the
// stream leader and, when nodes is more than 1, the nodes after it, all at once.
func testNodeLoss(t *testing.T, c *jstest.Cluster, lose func(node int), nodes int) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	urls := c.URLs()
	openStore := func(url string) *jetstream.Store {
		s, err := jetstream.Open(ctx, jetstream.Config{URL: url, Replicas: 3})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	// Each process knows all three nodes, its own first.
	storeA := openStore(urls[0] + "," + c.URL())
	storeB := openStore(urls[1] + "," + c.URL())
	var handlers []*commands.Handler
	for _, s := range []*jetstream.Store{storeA, storeB} {
		h, err := commands.NewHandler(ctx, s, commands.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		handlers = append(handlers, h)
	}
	if err := handlers[0].SeedDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	live := projections.NewTickets()
	runner := projections.NewRunner(storeA, quiet, live)
	runCtx, stopRunner := context.WithCancel(ctx)
	runnerDone := follow(runCtx, runner)
	defer func() { stopRunner(); <-runnerDone }()

	var (
		acks                        ackLog
		ticketsMu                   sync.Mutex
		tickets                     []string
		unavailable, retriedOK, dup atomic.Int64
		conflicts, refused          atomic.Int64
		slowest                     atomic.Int64 // nanoseconds of the slowest acknowledged command
		stop                        atomic.Bool
		wg                          sync.WaitGroup
	)
	// run sends a command until it is acknowledged or refused, with the same command
	// ID each time, as a client retrying after an unknown outcome would.
	run := func(h *commands.Handler, ticket string, cmd domain.TicketCommand) {
		id := uuid.NewString()
		first := time.Now()
		for attempt := 1; ; attempt++ {
			var res commands.Result
			var err error
			// Each attempt is bounded as ticketd bounds a request without a deadline
			// of its own (the store's requestTimeout, 5 s).
			cmdCtx, cancelCmd := context.WithTimeout(ctx, 5*time.Second)
			if create, ok := cmd.(domain.CreateTicket); ok {
				res, err = h.CreateTicket(cmdCtx, create, commands.Meta{CommandID: id, Actor: "agent"})
			} else {
				res, err = h.Execute(cmdCtx, ticket, cmd, commands.Meta{CommandID: id, Actor: "agent"})
			}
			cancelCmd()
			if err == nil {
				acks.add(res.TicketID, id, res)
				if attempt > 1 {
					retriedOK.Add(1)
				}
				if res.Duplicate {
					dup.Add(1)
				}
				if d := time.Since(first); int64(d) > slowest.Load() {
					slowest.Store(int64(d))
				}
				if _, ok := cmd.(domain.CreateTicket); ok {
					ticketsMu.Lock()
					tickets = append(tickets, res.TicketID)
					ticketsMu.Unlock()
				}
				return
			}
			kind, _ := commands.Classify(err)
			switch {
			case kind == commands.KindUnavailable && attempt < 50:
				unavailable.Add(1)
				time.Sleep(100 * time.Millisecond)
				continue
			case kind == commands.KindConflict:
				conflicts.Add(1)
			case kind == commands.KindValidation || kind == commands.KindInvalidTransition:
				refused.Add(1)
			default:
				t.Errorf("command %s: %v (kind %s)", id, err, kind)
			}
			return
		}
	}
	pick := func(r *rand.Rand) string {
		ticketsMu.Lock()
		defer ticketsMu.Unlock()
		return tickets[r.IntN(len(tickets))]
	}
	for i := range 6 {
		run(handlers[i%2], "", domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
			Subject: fmt.Sprintf("ticket %d", i), RaisedBy: "customer@example.com", Channel: domain.ChannelAPI}})
	}
	const workers = 6
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			h := handlers[w%2]
			for i := 0; !stop.Load(); i++ {
				switch i % 6 {
				case 0:
					run(h, "", domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
						Subject: fmt.Sprintf("w%d #%d", w, i), RaisedBy: "customer@example.com", Channel: domain.ChannelAPI}})
				case 1, 4:
					run(h, pick(r), domain.AddComment{Body: "note"})
				case 2:
					run(h, pick(r), domain.SendReply{Body: "We are on it."})
				case 3:
					run(h, pick(r), domain.ReceiveCustomerMessage{Body: "Any news?", Channel: domain.ChannelPortal})
				case 5:
					run(h, pick(r), domain.AssignTicket{Assignee: []string{"alice", "bob"}[r.IntN(2)]})
				}
			}
		})
	}

	phase := 1500 * time.Millisecond
	losses := 1
	if long {
		phase, losses = 8*time.Second, c.Size()
	}
	var leaders []string
	restarted := 0 // the node restarted last
	for range losses {
		time.Sleep(phase)
		leader := c.StreamLeader(jetstream.DefaultStreamName)
		if leader < 0 {
			t.Fatal("no node leads the event stream")
		}
		leaders = append(leaders, c.Name(leader))
		for i := range nodes {
			lose((leader + i) % c.Size())
		}
		time.Sleep(phase)
		for i := range nodes {
			restarted = (leader + i) % c.Size()
			c.Restart(restarted)
		}
	}
	time.Sleep(phase)
	stop.Store(true)
	wg.Wait()
	loadTime := time.Since(began)

	if err := c.WaitStreamCurrent(jetstream.DefaultStreamName, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	last, err := storeA.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	convergeStart := time.Now()
	waitCtx, cancelWait := context.WithTimeout(ctx, 30*time.Second)
	defer cancelWait()
	if err := runner.WaitFor(waitCtx, last); err != nil {
		t.Fatalf("the live projection did not reach %d: %v (at %d)", last, err, runner.Position())
	}
	converge := time.Since(convergeStart)

	// Read back through the node restarted last: its replica caught up.
	check := openStore(urls[restarted])
	acklist := acks.all()
	rep := verifyStore(t, check, acklist)
	rebuilt := projections.NewTickets()
	if _, err := projections.NewRunner(check, quiet, rebuilt).Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	ticketsMu.Lock()
	ids := append([]string(nil), tickets...)
	ticketsMu.Unlock()
	diffs := sameTickets(t, ids, live, rebuilt)

	t.Logf("%d node(s) stopped at once and restarted, the stream leader first: %v; load %v", nodes, leaders, loadTime.Round(time.Millisecond))
	t.Logf("%d commands acknowledged (%d after retrying an unknown outcome, %d of them duplicates of a stored first attempt); %d unavailable answers retried; %d conflicts after the handler's retries; %d refusals; slowest acknowledged command %v",
		len(acklist), retriedOK.Load(), dup.Load(), unavailable.Load(), conflicts.Load(), refused.Load(), time.Duration(slowest.Load()).Round(time.Millisecond))
	t.Logf("store: %d events in %d streams; %d duplicates, %d acknowledged missing, %d at another version; live projection converged %v after the load; %d tickets differ from the rebuild",
		rep.events, rep.streams, rep.duplicates, rep.missing, rep.misplaced, converge.Round(time.Millisecond), diffs)
	if len(acklist) < 50 {
		t.Errorf("only %d commands acknowledged: the load did not run", len(acklist))
	}
}
