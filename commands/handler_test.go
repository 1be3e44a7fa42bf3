package commands_test

// Tests of the command handlers against real stores: the memory adapter for most, and
// the JetStream adapter (embedded server) for everything concurrency depends on. Two
// Handler instances on one store stand for two processes: they share nothing but the
// store.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
)

// clock is a settable clock, safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.Set(t)
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// monday is 2026-03-02 09:00 UTC.
var monday = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type storeKind struct {
	name string
	open func(t *testing.T) eventstore.Store
}

func openMem(t *testing.T) eventstore.Store { return memstore.New() }

func openJetStream(t *testing.T) eventstore.Store {
	t.Helper()
	s, err := jetstream.Open(context.Background(), jetstream.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open jetstream: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close jetstream: %v", err)
		}
	})
	return s
}

var (
	mem       = storeKind{"memstore", openMem}
	js        = storeKind{"jetstream", openJetStream}
	bothKinds = []storeKind{mem, js}
)

// newHandler is one "process" on store. Owner names it in number reservations.
func newHandler(t *testing.T, store eventstore.Store, owner string, c *clock) *commands.Handler {
	t.Helper()
	opts := commands.Options{Owner: owner, Logger: quiet, NumberBlock: 5}
	if c != nil {
		opts.Clock = c.Now
	}
	h, err := commands.NewHandler(context.Background(), store, opts)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	if err := h.SeedDefaults(context.Background()); err != nil {
		t.Fatalf("SeedDefaults: %v", err)
	}
	return h
}

func newTicket() domain.CreateTicket {
	return domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
		Subject: "Printer on fire", Description: "It smokes.", RaisedBy: "ann@example.com", Priority: "Medium", Channel: domain.ChannelEmail,
	}}
}

func create(t *testing.T, h *commands.Handler) commands.Result {
	t.Helper()
	res, err := h.CreateTicket(context.Background(), newTicket(), commands.Meta{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return res
}

func exec(t *testing.T, h *commands.Handler, id string, cmd domain.TicketCommand, meta commands.Meta) commands.Result {
	t.Helper()
	res, err := h.Execute(context.Background(), id, cmd, meta)
	if err != nil {
		t.Fatalf("%s: %v", cmd.CommandName(), err)
	}
	return res
}

func lastPosition(t *testing.T, s eventstore.Store) uint64 {
	t.Helper()
	pos, err := s.LastPosition(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// ticketEvents reads a ticket's stream and checks it is a valid history: sequences
// 1..n without gaps, and an unbroken hash chain.
func ticketEvents(t *testing.T, h *commands.Handler, id string) []domain.Event {
	t.Helper()
	events, err := h.TicketEvents(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if i, why := domain.VerifyChain(events); i >= 0 {
		t.Fatalf("ticket %s: event %d breaks the chain: %s", id, i, why)
	}
	return events
}

func countType[P domain.Payload](events []domain.Event) int {
	n := 0
	for _, e := range events {
		if _, ok := e.Payload.(P); ok {
			n++
		}
	}
	return n
}

var numberPattern = regexp.MustCompile(`^TKT-\d{4}-\d{6}$`)

func TestCreateReturnsIDAndNumber(t *testing.T) {
	store := memstore.New()
	c := newClock(monday)
	h := newHandler(t, store, "p1", c)
	for i, want := range []string{"TKT-2026-000001", "TKT-2026-000002", "TKT-2026-000003"} {
		res, err := h.CreateTicket(context.Background(), newTicket(), commands.Meta{Actor: "agent"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := uuid.Parse(res.TicketID); err != nil {
			t.Fatalf("id %q is not a UUID", res.TicketID)
		}
		if !numberPattern.MatchString(res.Number) || res.Number != want {
			t.Fatalf("ticket %d: number %q, want %s", i, res.Number, want)
		}
		if res.Version != 1 || res.Duplicate || len(res.Events) != 1 || res.Position != lastPosition(t, store) {
			t.Fatalf("result = %+v", res)
		}
		created, ok := res.Events[0].Payload.(domain.TicketCreated)
		if !ok || created.TicketID != res.TicketID || created.Number != res.Number || !res.Events[0].OccurredAt.Equal(monday) {
			t.Fatalf("first event = %+v", res.Events[0])
		}
		state, err := h.LoadTicket(context.Background(), res.TicketID)
		if err != nil || state.Status != domain.StatusOpen || state.Number != want {
			t.Fatalf("state = %+v, %v", state, err)
		}
	}
	// The number's year is the creation's year (UTC); numbering starts again.
	c.Set(time.Date(2027, 1, 1, 0, 0, 1, 0, time.UTC))
	if res := create(t, h); res.Number != "TKT-2027-000001" {
		t.Fatalf("first number of 2027 = %s", res.Number)
	}
	// A given ticket id must be a UUID.
	cmd := newTicket()
	cmd.TicketID = "not-a-uuid"
	_, err := h.CreateTicket(context.Background(), cmd, commands.Meta{})
	var verr *domain.ValidationError
	if !errors.As(err, &verr) || verr.Fields[0].Field != "ticket_id" {
		t.Fatalf("err = %v, want a validation error on ticket_id", err)
	}
}

func TestRefusedCommandsStoreNothing(t *testing.T) {
	store := memstore.New()
	h := newHandler(t, store, "p1", newClock(monday))
	ctx := context.Background()

	before := lastPosition(t, store)
	bad := newTicket()
	bad.RaisedBy = "not-an-email"
	bad.Subject = ""
	_, err := h.CreateTicket(ctx, bad, commands.Meta{})
	var verr *domain.ValidationError
	if !errors.As(err, &verr) || len(verr.Fields) != 2 {
		t.Fatalf("err = %v, want a validation error on subject and raised_by", err)
	}
	if got := lastPosition(t, store); got != before {
		t.Fatalf("a refused creation stored %d events", got-before)
	}
	// No number was taken by the refused creation.
	res := create(t, h)
	if res.Number != "TKT-2026-000001" {
		t.Fatalf("first accepted ticket got %s: the refused one consumed a number", res.Number)
	}

	refusals := []struct {
		name string
		id   string
		cmd  domain.TicketCommand
		err  error
	}{
		{"reply without body", res.TicketID, domain.SendReply{Body: ""}, domain.ErrValidation},
		{"reopen an open ticket", res.TicketID, domain.ReopenTicket{}, domain.ErrInvalidTransition},
		{"unknown priority", res.TicketID, domain.ChangePriority{Priority: "Urgent"}, domain.ErrValidation},
		{"unassign nobody", res.TicketID, domain.UnassignTicket{Assignee: "bob"}, domain.ErrValidation},
		{"reset SLA not allowed", res.TicketID, domain.ResetSLA{Reason: "r"}, domain.ErrInvalidTransition},
		{"split off an unknown message", res.TicketID, domain.SplitTicket{FromMessage: "nope"}, domain.ErrValidation},
		{"unknown ticket", uuid.NewString(), domain.HoldTicket{}, domain.ErrNotFound},
		{"not a ticket id", "TKT-2026-000001", domain.HoldTicket{}, domain.ErrNotFound},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			before := lastPosition(t, store)
			_, err := h.Execute(ctx, tc.id, tc.cmd, commands.Meta{})
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got := lastPosition(t, store); got != before {
				t.Fatalf("a refused command stored %d events", got-before)
			}
		})
	}
	// The split refused above did not take a number either.
	if res := create(t, h); res.Number != "TKT-2026-000002" {
		t.Fatalf("second ticket got %s", res.Number)
	}
}

func TestRetriedCommandIsIdempotent(t *testing.T) {
	store := memstore.New()
	c := newClock(monday)
	h := newHandler(t, store, "p1", c)
	other := newHandler(t, store, "p2", c) // another process, cold cache
	ctx := context.Background()
	ticket := create(t, h)

	first := exec(t, h, ticket.TicketID, domain.SendReply{Body: "On it."}, commands.Meta{CommandID: "reply-1"})
	if first.Duplicate || first.Version != 2 {
		t.Fatalf("first = %+v", first)
	}
	exec(t, h, ticket.TicketID, domain.AddComment{Body: "later"}, commands.Meta{CommandID: "comment-1"})
	pos := lastPosition(t, store)

	for name, handler := range map[string]*commands.Handler{"same process": h, "other process": other} {
		t.Run(name, func(t *testing.T) {
			// Even with another body, and an If-Match of the version the client saw
			// before its first attempt: the key identifies the command.
			stale := uint64(1)
			res, err := handler.Execute(ctx, ticket.TicketID, domain.SendReply{Body: "different"}, commands.Meta{CommandID: "reply-1", ExpectedVersion: &stale})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Duplicate || res.Version != first.Version || res.TicketID != ticket.TicketID || res.Number != ticket.Number || len(res.Events) != 0 {
				t.Fatalf("retry = %+v, want the first result (version %d) marked duplicate", res, first.Version)
			}
			if res.Position < first.Position {
				t.Fatalf("retry position %d is before the command's own %d", res.Position, first.Position)
			}
			if got := lastPosition(t, store); got != pos {
				t.Fatalf("the retry stored %d events", got-pos)
			}
		})
	}
	events := ticketEvents(t, h, ticket.TicketID)
	if n := countType[domain.ReplySent](events); n != 1 {
		t.Fatalf("%d replies stored, want 1", n)
	}
}

func TestRetriedCreateReturnsTheSameTicket(t *testing.T) {
	for _, kind := range bothKinds {
		t.Run(kind.name, func(t *testing.T) {
			store := kind.open(t)
			c := newClock(monday)
			h := newHandler(t, store, "p1", c)
			other := newHandler(t, store, "p2", c)
			ctx := context.Background()
			meta := commands.Meta{CommandID: "create-42", Actor: "portal"}

			first, err := h.CreateTicket(ctx, newTicket(), meta)
			if err != nil {
				t.Fatal(err)
			}
			pos := lastPosition(t, store)
			for name, handler := range map[string]*commands.Handler{"same process": h, "other process": other} {
				res, err := handler.CreateTicket(ctx, newTicket(), meta)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !res.Duplicate || res.TicketID != first.TicketID || res.Number != first.Number || res.Version != first.Version {
					t.Fatalf("%s: retry = %+v, want ticket %s %s", name, res, first.TicketID, first.Number)
				}
			}
			if got := lastPosition(t, store); got != pos {
				t.Fatalf("retries stored %d events", got-pos)
			}
			// A different key is a different ticket.
			second, err := h.CreateTicket(ctx, newTicket(), commands.Meta{CommandID: "create-43"})
			if err != nil || second.TicketID == first.TicketID || second.Number == first.Number || second.Duplicate {
				t.Fatalf("second = %+v, %v", second, err)
			}
		})
	}
}

// TestConcurrentCreatesNeverShareANumber: two processes create tickets at the same
// time, with small number blocks so that they reserve blocks against each other all
// the time. Same owner name too: two processes may well share a host name and pid
// (containers), which must not make them share a block.
func TestConcurrentCreatesNeverShareANumber(t *testing.T) {
	for _, kind := range bothKinds {
		for _, owners := range [][2]string{{"host-a/1", "host-b/1"}, {"same/1", "same/1"}} {
			t.Run(fmt.Sprintf("%s owners %s %s", kind.name, owners[0], owners[1]), func(t *testing.T) {
				const perProcess = 30
				store := kind.open(t)
				c := newClock(monday)
				handlers := []*commands.Handler{newHandler(t, store, owners[0], c), newHandler(t, store, owners[1], c)}
				var (
					mu      sync.Mutex
					numbers = map[string]string{} // number -> ticket id
					wg      sync.WaitGroup
					start   = make(chan struct{})
				)
				for _, h := range handlers {
					for range perProcess {
						wg.Go(func() {
							<-start
							res, err := h.CreateTicket(context.Background(), newTicket(), commands.Meta{})
							if err != nil {
								t.Errorf("create: %v", err)
								return
							}
							mu.Lock()
							defer mu.Unlock()
							if prev, dup := numbers[res.Number]; dup {
								t.Errorf("number %s given to tickets %s and %s", res.Number, prev, res.TicketID)
							}
							numbers[res.Number] = res.TicketID
						})
					}
				}
				close(start)
				wg.Wait()
				if len(numbers) != 2*perProcess {
					t.Fatalf("%d distinct numbers for %d tickets", len(numbers), 2*perProcess)
				}
				for n, id := range numbers {
					if !numberPattern.MatchString(n) {
						t.Fatalf("number %q", n)
					}
					// The number stored is the number returned.
					events := ticketEvents(t, handlers[0], id)
					if p := events[0].Payload.(domain.TicketCreated); p.Number != n {
						t.Fatalf("ticket %s stored number %s, returned %s", id, p.Number, n)
					}
				}
				// The reserved blocks never overlap.
				recs, err := store.ReadStream(context.Background(), domain.NumberStream(2026))
				if err != nil {
					t.Fatal(err)
				}
				var last uint64
				for _, r := range recs {
					e, err := domain.DecodeEvent(r.Data)
					if err != nil {
						t.Fatal(err)
					}
					b := e.Payload.(domain.NumberBlockReserved)
					if b.From != last+1 || b.To < b.From {
						t.Fatalf("block %d-%d follows %d", b.From, b.To, last)
					}
					last = b.To
				}
			})
		}
	}
}

// TestConcurrentCommandsLoseNoUpdate: two processes each add 50 comments to one ticket
// at the same time; every comment is stored once, in one gap-free, chained history.
func TestConcurrentCommandsLoseNoUpdate(t *testing.T) {
	for _, kind := range bothKinds {
		t.Run(kind.name, func(t *testing.T) {
			const perProcess = 50
			store := kind.open(t)
			c := newClock(monday)
			handlers := []*commands.Handler{newHandler(t, store, "p1", c), newHandler(t, store, "p2", c)}
			ticket := create(t, handlers[0])
			var wg sync.WaitGroup
			start := make(chan struct{})
			var versions sync.Map
			for p, h := range handlers {
				for i := range perProcess {
					wg.Go(func() {
						<-start
						res, err := h.Execute(context.Background(), ticket.TicketID,
							domain.AddComment{Body: fmt.Sprintf("comment %d of process %d", i, p)}, commands.Meta{CommandID: fmt.Sprintf("p%d-c%d", p, i)})
						if err != nil {
							t.Errorf("comment %d of process %d: %v", i, p, err)
							return
						}
						if prev, dup := versions.LoadOrStore(res.Version, res); dup {
							t.Errorf("version %d returned twice: %+v and %+v", res.Version, prev, res)
						}
					})
				}
			}
			close(start)
			wg.Wait()

			events := ticketEvents(t, handlers[1], ticket.TicketID) // checks 1..n and the chain
			if n := countType[domain.CommentAdded](events); n != 2*perProcess {
				t.Fatalf("%d comments stored, want %d", n, 2*perProcess)
			}
			if len(events) != int(ticket.Version)+2*perProcess {
				t.Fatalf("%d events, want %d", len(events), int(ticket.Version)+2*perProcess)
			}
			seen := map[string]bool{}
			for _, e := range events[ticket.Version:] {
				if seen[e.CommandID] {
					t.Fatalf("command %s stored twice", e.CommandID)
				}
				seen[e.CommandID] = true
			}
			// Both processes' states converge on the stored one.
			for _, h := range handlers {
				exec(t, h, ticket.TicketID, domain.AddComment{Body: "last"}, commands.Meta{})
			}
			if events := ticketEvents(t, handlers[0], ticket.TicketID); len(events) != int(ticket.Version)+2*perProcess+2 {
				t.Fatalf("%d events after the last comments", len(events))
			}
		})
	}
}

// TestConflictingCommandsOneWins: two processes resolve the same ticket at once. One
// succeeds; the other, retrying on the fresh state, is refused as an invalid
// transition, not as a concurrency conflict, and stores nothing.
func TestConflictingCommandsOneWins(t *testing.T) {
	for _, kind := range bothKinds {
		t.Run(kind.name, func(t *testing.T) {
			store := kind.open(t)
			c := newClock(monday)
			handlers := []*commands.Handler{newHandler(t, store, "p1", c), newHandler(t, store, "p2", c)}
			ctx := context.Background()

			t.Run("sequential, with a stale cache", func(t *testing.T) {
				ticket := create(t, handlers[0])
				for _, h := range handlers { // both processes have the ticket cached at version 1
					if s, err := h.LoadTicket(ctx, ticket.TicketID); err != nil || s.Version != ticket.Version {
						t.Fatalf("LoadTicket = %+v, %v", s, err)
					}
				}
				exec(t, handlers[0], ticket.TicketID, domain.ResolveTicket{}, commands.Meta{})
				pos := lastPosition(t, store)
				_, err := handlers[1].Execute(ctx, ticket.TicketID, domain.ResolveTicket{}, commands.Meta{})
				var terr *domain.TransitionError
				if !errors.As(err, &terr) || terr.From != domain.StatusResolved {
					t.Fatalf("err = %v, want an invalid transition from Resolved", err)
				}
				if lastPosition(t, store) != pos {
					t.Fatal("the refused resolve stored events")
				}
			})

			t.Run("concurrent", func(t *testing.T) {
				const rounds = 15
				for round := range rounds {
					ticket := create(t, handlers[round%2])
					for _, h := range handlers {
						if _, err := h.LoadTicket(ctx, ticket.TicketID); err != nil {
							t.Fatal(err)
						}
					}
					errs := make([]error, len(handlers))
					var wg sync.WaitGroup
					start := make(chan struct{})
					for i, h := range handlers {
						wg.Go(func() {
							<-start
							_, errs[i] = h.Execute(ctx, ticket.TicketID, domain.ResolveTicket{ResolutionDetails: fmt.Sprint("by ", i)}, commands.Meta{})
						})
					}
					close(start)
					wg.Wait()
					ok, refused := 0, 0
					for _, err := range errs {
						switch {
						case err == nil:
							ok++
						case errors.Is(err, domain.ErrInvalidTransition):
							refused++
						default:
							t.Fatalf("round %d: unexpected error %v", round, err)
						}
					}
					if ok != 1 || refused != 1 {
						t.Fatalf("round %d: %d succeeded, %d refused; want exactly one each", round, ok, refused)
					}
					if n := countType[domain.TicketResolved](ticketEvents(t, handlers[0], ticket.TicketID)); n != 1 {
						t.Fatalf("round %d: %d resolutions stored", round, n)
					}
				}
			})
		})
	}
}

func TestExpectedVersion(t *testing.T) {
	store := memstore.New()
	c := newClock(monday)
	h := newHandler(t, store, "p1", c)
	other := newHandler(t, store, "p2", c)
	ctx := context.Background()
	ticket := create(t, h)

	v := ticket.Version
	res, err := h.Execute(ctx, ticket.TicketID, domain.AddComment{Body: "matching"}, commands.Meta{ExpectedVersion: &v})
	if err != nil || res.Version != v+1 {
		t.Fatalf("matching If-Match: %+v, %v", res, err)
	}

	check := func(t *testing.T, h *commands.Handler, expected, actual uint64) {
		t.Helper()
		pos := lastPosition(t, store)
		_, err := h.Execute(ctx, ticket.TicketID, domain.AddComment{Body: "stale"}, commands.Meta{ExpectedVersion: &expected})
		var vm *commands.VersionMismatchError
		if !errors.As(err, &vm) || vm.Expected != expected || vm.Actual != actual {
			t.Fatalf("err = %v, want a version mismatch %d != %d", err, expected, actual)
		}
		if !errors.Is(err, domain.ErrConflict) {
			t.Fatalf("a version mismatch must wrap domain.ErrConflict: %v", err)
		}
		if lastPosition(t, store) != pos {
			t.Fatal("a version mismatch stored events")
		}
	}
	t.Run("older version", func(t *testing.T) { check(t, h, v, v+1) })
	t.Run("future version", func(t *testing.T) { check(t, h, v+5, v+1) })
	t.Run("zero", func(t *testing.T) { check(t, h, 0, v+1) })
	t.Run("stale cache in another process", func(t *testing.T) {
		// h's cache is at v+1; other writes; h must not accept If-Match v+1.
		if _, err := h.LoadTicket(ctx, ticket.TicketID); err != nil {
			t.Fatal(err)
		}
		exec(t, other, ticket.TicketID, domain.AddComment{Body: "elsewhere"}, commands.Meta{})
		check(t, h, v+1, v+2)
	})
}

// splitFixture is a ticket whose thread is the opening message, m1 (customer), m2
// (reply), m3 (customer).
func splitFixture(t *testing.T, h *commands.Handler, c *clock) commands.Result {
	t.Helper()
	ticket := create(t, h)
	c.Advance(time.Hour)
	exec(t, h, ticket.TicketID, domain.ReceiveCustomerMessage{MessageID: "m1", Channel: domain.ChannelEmail, Body: "first"}, commands.Meta{})
	c.Advance(time.Hour)
	exec(t, h, ticket.TicketID, domain.SendReply{MessageID: "m2", Body: "reply", To: []string{"ann@example.com"}}, commands.Meta{})
	c.Advance(time.Hour)
	exec(t, h, ticket.TicketID, domain.ReceiveCustomerMessage{MessageID: "m3", Channel: domain.ChannelPortal, From: "ann@example.com", Body: "another problem"}, commands.Meta{})
	c.Advance(time.Hour)
	return ticket
}

func checkSplit(t *testing.T, h *commands.Handler, source, split commands.Result) {
	t.Helper()
	if split.TicketID == source.TicketID || !numberPattern.MatchString(split.Number) || split.Number == source.Number {
		t.Fatalf("split result = %+v", split)
	}
	newEvents := ticketEvents(t, h, split.TicketID)
	created, ok := newEvents[0].Payload.(domain.TicketCreated)
	if !ok {
		t.Fatalf("new ticket starts with %T", newEvents[0].Payload)
	}
	wantOrigin := domain.SplitOrigin{TicketID: source.TicketID, Number: source.Number, FromMessage: "m2"}
	if created.SplitFrom == nil || *created.SplitFrom != wantOrigin {
		t.Fatalf("split_from = %+v, want %+v", created.SplitFrom, wantOrigin)
	}
	if created.TicketID != split.TicketID || created.Number != split.Number || created.Subject != "Second problem" || created.RaisedBy != "ann@example.com" {
		t.Fatalf("new ticket = %+v", created)
	}
	if len(created.Messages) != 2 {
		t.Fatalf("moved messages = %+v", created.Messages)
	}
	m2, m3 := created.Messages[0], created.Messages[1]
	if m2.MessageID != "m2" || m2.Direction != domain.Outgoing || m2.Body != "reply" || m2.At != monday.Add(2*time.Hour).Format(time.RFC3339Nano) {
		t.Fatalf("moved m2 = %+v", m2)
	}
	if m3.MessageID != "m3" || m3.Direction != domain.Incoming || m3.Body != "another problem" || m3.From != "ann@example.com" {
		t.Fatalf("moved m3 = %+v", m3)
	}
	if n := countType[domain.TicketCreated](newEvents); n != 1 {
		t.Fatalf("new ticket created %d times", n)
	}
	newState, err := h.LoadTicket(context.Background(), split.TicketID)
	if err != nil || newState.Status != domain.StatusOpen || newState.SplitFrom == nil || len(newState.Messages) != 2 {
		t.Fatalf("new ticket state = %+v, %v", newState, err)
	}

	sourceEvents := ticketEvents(t, h, source.TicketID)
	if n := countType[domain.TicketSplit](sourceEvents); n != 1 {
		t.Fatalf("%d split events on the source", n)
	}
	s := sourceEvents[len(sourceEvents)-1].Payload.(domain.TicketSplit)
	if s.NewTicketID != split.TicketID || s.NewNumber != split.Number || !slices.Equal(s.MovedMessages, []string{"m2", "m3"}) {
		t.Fatalf("split event = %+v", s)
	}
	state, err := h.LoadTicket(context.Background(), source.TicketID)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, m := range state.Messages {
		left = append(left, m.ID)
	}
	if len(left) != 2 || left[1] != "m1" {
		t.Fatalf("source thread after split = %v, want [opening m1]", left)
	}
}

func TestSplit(t *testing.T) {
	store := memstore.New()
	c := newClock(monday)
	h := newHandler(t, store, "p1", c)
	other := newHandler(t, store, "p2", c)
	ctx := context.Background()
	source := splitFixture(t, h, c)

	meta := commands.Meta{CommandID: "split-1"}
	split, err := h.Execute(ctx, source.TicketID, domain.SplitTicket{FromMessage: "m2", Subject: "Second problem"}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if split.Duplicate {
		t.Fatal("first split marked duplicate")
	}
	checkSplit(t, h, source, split)

	pos := lastPosition(t, store)
	for name, handler := range map[string]*commands.Handler{"same process": h, "other process": other} {
		again, err := handler.Execute(ctx, source.TicketID, domain.SplitTicket{FromMessage: "m2", Subject: "Second problem"}, meta)
		if err != nil {
			t.Fatalf("%s: retry: %v", name, err)
		}
		if !again.Duplicate || again.TicketID != split.TicketID || again.Number != split.Number {
			t.Fatalf("%s: retry = %+v, want %+v as a duplicate", name, again, split)
		}
	}
	if lastPosition(t, store) != pos {
		t.Fatal("a retried split stored events")
	}
	checkSplit(t, h, source, split)
}

// failingStore fails appends to the streams fail selects, while fail says so.
type failingStore struct {
	eventstore.Store
	fail atomic.Pointer[string]
}

func (s *failingStore) Append(ctx context.Context, stream string, expected eventstore.Revision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if p := s.fail.Load(); p != nil && *p == stream {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: injected failure: %w", stream, eventstore.ErrUnavailable)
	}
	return s.Store.Append(ctx, stream, expected, events)
}

// TestSplitInterrupted: the process fails between recording the split on the source
// and creating the new ticket; the retry of the same command completes the split with
// the id and number recorded the first time.
func TestSplitInterrupted(t *testing.T) {
	store := &failingStore{Store: memstore.New()}
	c := newClock(monday)
	h := newHandler(t, store, "p1", c)
	ctx := context.Background()
	source := splitFixture(t, h, c)

	meta := commands.Meta{CommandID: "split-2"}
	newStream := domain.TicketStream(commands.DeriveID(meta.CommandID, "split"))
	store.fail.Store(&newStream)
	_, err := h.Execute(ctx, source.TicketID, domain.SplitTicket{FromMessage: "m2", Subject: "Second problem"}, meta)
	if !errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("err = %v, want the injected failure", err)
	}
	sourceEvents := ticketEvents(t, h, source.TicketID)
	recorded := sourceEvents[len(sourceEvents)-1].Payload.(domain.TicketSplit)

	store.fail.Store(nil)
	// Retried by another process, as after a crash.
	split, err := newHandler(t, store, "p2", c).Execute(ctx, source.TicketID, domain.SplitTicket{FromMessage: "m2", Subject: "Second problem"}, meta)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if split.TicketID != recorded.NewTicketID || split.Number != recorded.NewNumber {
		t.Fatalf("retry created %s %s, the split recorded %s %s", split.TicketID, split.Number, recorded.NewTicketID, recorded.NewNumber)
	}
	checkSplit(t, h, source, split)
}

func TestCatalogueCommands(t *testing.T) {
	store := memstore.New()
	c := newClock(monday)
	h := newHandler(t, store, "p1", c)
	other := newHandler(t, store, "p2", c)
	ctx := context.Background()

	if got := h.Catalogues().TicketPriorities(); len(got) != 3 || got[0].Name != "Low" || got[2].Name != "High" {
		t.Fatalf("seeded priorities = %+v", got)
	}
	// Seeding again (another process starting) adds nothing.
	pos := lastPosition(t, store)
	if err := other.SeedDefaults(ctx); err != nil || lastPosition(t, store) != pos {
		t.Fatalf("second seed: %v, %d events", err, lastPosition(t, store)-pos)
	}

	if _, err := h.ChangeCatalogue(ctx, false, domain.CatalogueCommand{Op: "create", Name: "Bug"}, nil, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	// The other process has a stale catalogue: its duplicate is still refused, after a
	// reload on the store's conflict.
	_, err := other.ChangeCatalogue(ctx, false, domain.CatalogueCommand{Op: "create", Name: "BUG"}, nil, commands.Meta{})
	if !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("duplicate from a stale process: %v", err)
	}
	if got := other.Catalogues().TicketTypes(); len(got) != 1 || got[0].Name != "Bug" {
		t.Fatalf("other process types after reload = %+v", got)
	}
	// A type in use cannot be removed.
	cmd := newTicket()
	cmd.TicketType = "Bug"
	if _, err := h.CreateTicket(ctx, cmd, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	_, err = h.ChangeCatalogue(ctx, false, domain.CatalogueCommand{Op: "remove", Name: "Bug"}, usage{"ticket_type/Bug": 1}, commands.Meta{})
	if !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("remove in use: %v", err)
	}

	// SLA versions through the handler.
	for want := 1; want <= 2; want++ {
		events, err := h.SaveSLA(ctx, slaDefinition(), commands.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		if v := events[0].Payload.(domain.SLASaved).Version; v != want {
			t.Fatalf("save %d gave version %d", want, v)
		}
	}
	for v := 1; v <= 2; v++ {
		if _, ok := h.Catalogues().LookupSLA("Standard", v); !ok {
			t.Fatalf("version %d does not resolve", v)
		}
	}
	res := create(t, h)
	events := ticketEvents(t, h, res.TicketID)
	if a := events[0].Payload.(domain.TicketCreated).SLA; a.SLA != "Standard" || a.SLAVersion != 2 || a.Priority != "Medium" {
		t.Fatalf("selection = %+v", a)
	}
}

type usage map[string]int

func (u usage) TicketsUsing(field, name string) int { return u[field+"/"+name] }

func slaDefinition() domain.SLADefinition {
	hours := map[string][][2]string{"Monday": {{"09:00", "17:00"}}, "Tuesday": {{"09:00", "17:00"}}}
	return domain.SLADefinition{
		Name: "Standard", Default: true, Calendar: domain.CalendarSpec{Timezone: "UTC", Hours: hours},
		Priorities: []domain.SLAPriority{
			{Name: "Medium", Response: domain.Duration(4 * time.Hour), Resolution: domain.Duration(16 * time.Hour), Default: true},
		},
	}
}

// Metadata that is not valid UTF-8 would be stored as U+FFFD and break the event's
// hash once read back: it is refused, and nothing is stored.
func TestInvalidUTF8MetadataStoresNothing(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	h := newHandler(t, store, "p", nil)
	res := create(t, h)
	before, err := store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, meta := range []commands.Meta{{Actor: "agent\xff"}, {CorrelationID: "c\xc3"}, {CausationID: "\x80"}, {CommandID: "cmd-\xfe"}} {
		_, err := h.Execute(ctx, res.TicketID, domain.AddComment{Body: "note"}, meta)
		if !errors.Is(err, domain.ErrValidation) {
			t.Errorf("meta %+v: err %v, want a validation error", meta, err)
		}
	}
	if after, err := store.LastPosition(ctx); err != nil || after != before {
		t.Fatalf("store moved from %d to %d (%v)", before, after, err)
	}
}

// readCountingStore counts stream reads: a command that decides on a cached state
// reads nothing.
type readCountingStore struct {
	eventstore.Store
	reads atomic.Int64
}

func (s *readCountingStore) ReadStream(ctx context.Context, stream string) ([]eventstore.RecordedEvent, error) {
	s.reads.Add(1)
	return s.Store.ReadStream(ctx, stream)
}

// observeFrom feeds h every event of store after position from, as ticketd's runner
// does: decoded as views of a buffer that is overwritten afterwards, so that a state
// keeping a view would change.
func observeFrom(t *testing.T, h *commands.Handler, store eventstore.Store, from uint64) uint64 {
	t.Helper()
	recs, err := store.ReadAll(context.Background(), from+1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		buf := slices.Clone(rec.Data)
		e, err := domain.DecodeEventNoCopy(buf)
		if err != nil {
			t.Fatal(err)
		}
		h.Observe(e, rec.Position)
		clear(buf)
		from = rec.Position
	}
	return from
}

// repliedTickets opens a store of kind with a writing process (p1) that has created n
// tickets and replied to each, for the tests of a second process reading behind it.
func repliedTickets(t *testing.T, kind storeKind, c *clock, n int) (eventstore.Store, *commands.Handler, []string) {
	t.Helper()
	base := kind.open(t)
	writer := newHandler(t, base, "p1", c)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = create(t, writer).TicketID
		exec(t, writer, ids[i], domain.SendReply{Body: "On it."}, commands.Meta{})
	}
	return base, writer, ids
}

// TestObserveFollowsOtherProcesses: a process that reads the store in the global
// order keeps the decision states it caches current with what another process
// appends, so that its next command on those tickets reads no stream; it reads a
// stream again where it missed an event, and caches nothing it did not hold.
func TestObserveFollowsOtherProcesses(t *testing.T) {
	for _, kind := range bothKinds {
		t.Run(kind.name, func(t *testing.T) {
			ctx := context.Background()
			c := newClock(monday)
			base, writer, ids := repliedTickets(t, kind, c, 4)
			store := &readCountingStore{Store: base}
			reader := newHandler(t, store, "p2", c)
			for _, id := range ids[:3] {
				if _, err := reader.LoadTicket(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			store.reads.Store(0)
			seen := observeFrom(t, reader, store, 0) // all of it already folded

			exec(t, writer, ids[0], domain.AssignTicket{Assignee: "bob@example.com"}, commands.Meta{})
			exec(t, writer, ids[0], domain.SendReply{Body: "Any news?"}, commands.Meta{})
			seen = observeFrom(t, reader, store, seen)
			want, err := writer.LoadTicket(ctx, ids[0])
			if err != nil {
				t.Fatal(err)
			}
			got, err := reader.LoadTicket(ctx, ids[0])
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("followed state:\n%+v\nwant\n%+v", got, want)
			}
			exec(t, reader, ids[0], domain.AddComment{Body: "Waiting."}, commands.Meta{})
			if n := store.reads.Load(); n != 0 {
				t.Fatalf("%d stream reads after following another process's events, want 0", n)
			}

			// A missed event: the state is dropped and the next command reads the stream.
			exec(t, writer, ids[1], domain.SendReply{Body: "First."}, commands.Meta{})
			skipped := lastPosition(t, store)
			exec(t, writer, ids[1], domain.SendReply{Body: "Second."}, commands.Meta{})
			observeFrom(t, reader, store, skipped)
			exec(t, reader, ids[1], domain.AddComment{Body: "Read again."}, commands.Meta{})
			if n := store.reads.Load(); n != 1 {
				t.Fatalf("%d stream reads after a missed event, want 1", n)
			}

			// A ticket the reader never held is not cached by observing it.
			exec(t, reader, ids[3], domain.AddComment{Body: "New here."}, commands.Meta{})
			if n := store.reads.Load(); n != 2 {
				t.Fatalf("%d stream reads after a command on a ticket never held, want 2", n)
			}
			for _, id := range ids {
				ticketEvents(t, reader, id)
			}
		})
	}
}

// staleReader is two processes on store: a writer that created a ticket, and a reader
// that has cached it at its first version, so that whatever the writer does next leaves
// the reader's state behind.
func staleReader(t *testing.T, store eventstore.Store) (writer, reader *commands.Handler, id string) {
	t.Helper()
	c := newClock(monday)
	writer, reader = newHandler(t, store, "p1", c), newHandler(t, store, "p2", c)
	id = create(t, writer).TicketID
	if _, err := reader.LoadTicket(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	return writer, reader, id
}

// TestStaleCacheDoesNotRefuse: a process whose cached state of a ticket is stale (another
// process closed the ticket since) does not refuse a command the ticket as stored
// accepts: a refusal that depends on the ticket's state is checked against the stream.
func TestStaleCacheDoesNotRefuse(t *testing.T) {
	for _, kind := range bothKinds {
		t.Run(kind.name, func(t *testing.T) {
			ctx := context.Background()
			a, b, id := staleReader(t, kind.open(t)) // b caches the ticket open
			exec(t, a, id, domain.ResolveTicket{ResolutionDetails: "Fixed."}, commands.Meta{})
			exec(t, a, id, domain.CloseTicket{Reason: "done"}, commands.Meta{})
			res := exec(t, b, id, domain.ReopenTicket{Reason: "Still broken."}, commands.Meta{})
			if res.Version != 4 {
				t.Fatalf("reopened at version %d, want 4", res.Version)
			}
			// A refusal the stored ticket confirms is still a refusal.
			if _, err := b.Execute(ctx, id, domain.ReopenTicket{}, commands.Meta{}); !errors.Is(err, domain.ErrInvalidTransition) {
				t.Fatalf("reopening an open ticket: err = %v, want ErrInvalidTransition", err)
			}
			ticketEvents(t, a, id)
		})
	}
}

// TestLoadAtKnownPositions: a handler told where a read model saw a ticket's events
// reads them there; positions behind the store (the read model lags) or wrong ones
// cost a read of the stream, never a wrong result.
func TestLoadAtKnownPositions(t *testing.T) {
	for _, kind := range bothKinds {
		t.Run(kind.name, func(t *testing.T) {
			ctx := context.Background()
			c := newClock(monday)
			base, writer, ids := repliedTickets(t, kind, c, 3)
			lagging, closed, other := ids[0], ids[1], ids[2]
			// The read model as it stands now: it will not see what follows.
			seen := map[string][]uint64{}
			recs, err := base.ReadAll(ctx, 1, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				seen[r.Stream] = append(seen[r.Stream], r.Position)
			}
			exec(t, writer, lagging, domain.AddComment{Body: "Unseen."}, commands.Meta{})
			exec(t, writer, closed, domain.ResolveTicket{ResolutionDetails: "Fixed."}, commands.Meta{})
			exec(t, writer, closed, domain.CloseTicket{}, commands.Meta{})

			store := &readCountingStore{Store: base}
			positions := func(id string) []uint64 { return seen[domain.TicketStream(id)] }
			h, err := commands.NewHandler(ctx, store, commands.Options{Owner: "p2", Logger: quiet, Clock: c.Now, EventPositions: func(id string) []uint64 {
				if id == other {
					return positions(lagging) // wrong: another ticket's events
				}
				return positions(id)
			}})
			if err != nil {
				t.Fatal(err)
			}
			fresh := create(t, writer).TicketID // positions unknown: read the stream
			checks := []struct {
				id      string
				cmd     domain.TicketCommand
				reads   int64
				version uint64
			}{
				{lagging, domain.AddComment{Body: "Seen?"}, 1, 4},     // the append conflicts, the stream is read
				{closed, domain.ReopenTicket{Reason: "Again."}, 1, 5}, // refused on the state read, decided again
				{other, domain.AddComment{Body: "Mine."}, 1, 3},       // wrong positions: the stream is read
				{fresh, domain.AddComment{Body: "New."}, 1, 2},        // nothing known
			}
			for _, ch := range checks {
				before := store.reads.Load()
				res := exec(t, h, ch.id, ch.cmd, commands.Meta{})
				if res.Version != ch.version {
					t.Fatalf("%s: version %d, want %d", ch.cmd.CommandName(), res.Version, ch.version)
				}
				if got := store.reads.Load() - before; got != ch.reads {
					t.Fatalf("%s: %d reads of the stream, want %d", ch.cmd.CommandName(), got, ch.reads)
				}
				ticketEvents(t, h, ch.id)
			}
			// Positions that are right: no read of the stream.
			seen[domain.TicketStream(lagging)] = nil
			recs, err = base.ReadAll(ctx, 1, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.Stream == domain.TicketStream(other) {
					seen[r.Stream] = append(seen[r.Stream], r.Position)
				}
			}
			h2, err := commands.NewHandler(ctx, store, commands.Options{Owner: "p3", Logger: quiet, Clock: c.Now, EventPositions: positions})
			if err != nil {
				t.Fatal(err)
			}
			before := store.reads.Load()
			exec(t, h2, other, domain.AddComment{Body: "Known."}, commands.Meta{})
			if got := store.reads.Load() - before; got != 0 {
				t.Fatalf("%d reads of the stream with the positions known, want 0", got)
			}
		})
	}
}

// TestStaleCacheIfMatch: a client that read the ticket's current version elsewhere
// (If-Match) is not refused by a process whose cached state is behind; a version that
// the stored ticket does not have is still refused.
func TestStaleCacheIfMatch(t *testing.T) {
	for _, kind := range bothKinds {
		t.Run(kind.name, func(t *testing.T) {
			ctx := context.Background()
			a, b, id := staleReader(t, kind.open(t)) // b caches version 1
			current := exec(t, a, id, domain.SendReply{Body: "On it."}, commands.Meta{}).Version
			res := exec(t, b, id, domain.AddComment{Body: "Seen."}, commands.Meta{ExpectedVersion: &current})
			if res.Version != current+1 {
				t.Fatalf("version %d, want %d", res.Version, current+1)
			}
			var mismatch *commands.VersionMismatchError
			if _, err := b.Execute(ctx, id, domain.AddComment{Body: "Late."}, commands.Meta{ExpectedVersion: &current}); !errors.As(err, &mismatch) || mismatch.Actual != current+1 {
				t.Fatalf("an outdated If-Match: err = %v, want a version mismatch at %d", err, current+1)
			}
		})
	}
}
