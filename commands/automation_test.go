package commands_test

// Tests of the automation reactor (assignment rules, unreplied alert) against real
// stores, with a controlled clock. A "process" is a handler, its own automation read
// model (rebuilt from the store, as ticketd does at start) and its own reactor: two of
// them on one store share nothing but the store, and a restart is a new one.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/memstore"
	"github.com/ticketcore/ticketcore/projections"
)

var _ commands.AutomationSource = (*projections.Automation)(nil)

// process is one ticketd process as far as the automation goes.
type process struct {
	h     *commands.Handler
	model *projections.Automation
	auto  *commands.Automation
	store eventstore.Store
}

func startProcess(t *testing.T, store eventstore.Store, name string, c *clock) *process {
	t.Helper()
	p := &process{h: newHandler(t, store, name, c), model: projections.NewAutomation(), store: store}
	p.auto = commands.NewAutomation(p.h, p.model)
	p.catchUp(t)
	return p
}

// catchUp brings the read model to the store's last position.
func (p *process) catchUp(t *testing.T) {
	t.Helper()
	if _, err := projections.NewRunner(p.store, quiet, p.model).CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// pass catches up and runs the reactor once.
func (p *process) pass(t *testing.T) commands.AutomationReport {
	t.Helper()
	p.catchUp(t)
	return p.auto.RunOnce(context.Background())
}

func (p *process) create(t *testing.T, f domain.TicketFieldsData) string {
	t.Helper()
	if f.Subject == "" {
		f.Subject = "help"
	}
	f.RaisedBy, f.Channel = "cust@example.com", domain.ChannelAPI
	res, err := p.h.CreateTicket(context.Background(), domain.CreateTicket{TicketFieldsData: f}, commands.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	return res.TicketID
}

func (p *process) do(t *testing.T, id string, cmd domain.TicketCommand) {
	t.Helper()
	if _, err := p.h.Execute(context.Background(), id, cmd, commands.Meta{}); err != nil {
		t.Fatalf("%s on %s: %v", cmd.CommandName(), id, err)
	}
}

func (p *process) saveRule(t *testing.T, def domain.AssignmentRuleDefinition) {
	t.Helper()
	if _, err := p.h.SaveAssignmentRule(context.Background(), def, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
}

// ticketEvents returns the payloads of one type on a ticket.
func payloadsOf[P domain.Payload](t *testing.T, h *commands.Handler, id string) []P {
	t.Helper()
	events, err := h.TicketEvents(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []P
	for _, e := range events {
		if p, ok := e.Payload.(P); ok {
			out = append(out, p)
		}
	}
	return out
}

func assigneesOf(t *testing.T, h *commands.Handler, id string) []string {
	t.Helper()
	tk, err := h.LoadTicket(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tk.Assignees
}

// slots reads a rule's cursor stream.
func slots(t *testing.T, store eventstore.Store, rule string) []domain.AssignmentSlotTaken {
	t.Helper()
	recs, err := store.ReadStream(context.Background(), domain.AssignmentCursorStream(rule))
	if err != nil {
		t.Fatal(err)
	}
	var out []domain.AssignmentSlotTaken
	for _, r := range recs {
		e, err := domain.DecodeEvent(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e.Payload.(domain.AssignmentSlotTaken))
	}
	return out
}

// Three processes apply a round robin rule to the same tickets at the same time: every
// ticket is assigned once, the slots are 1..n without gaps or repeats, the users get
// their turns in order, and each ticket's assignee is the user of its slot.
func TestRoundRobinFairAcrossProcesses(t *testing.T) {
	for _, kind := range bothKinds {
		t.Run(kind.name, func(t *testing.T) {
			store := kind.open(t)
			clk := newClock(monday)
			a := startProcess(t, store, "a", clk)
			a.saveRule(t, domain.AssignmentRuleDefinition{Name: "Support rota", Method: domain.MethodRoundRobin,
				Users: []string{"ann", "bob", "cid"}, UnassignCondition: `status == "Closed"`})
			const n = 30
			var ids []string
			for range n {
				ids = append(ids, a.create(t, domain.TicketFieldsData{}))
			}
			b := startProcess(t, store, "b", clk)
			a.catchUp(t)

			c := startProcess(t, store, "c", clk)
			reports := make([]commands.AutomationReport, 3)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, p := range []*process{a, b, c} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					reports[i] = p.auto.RunOnce(context.Background())
				}()
			}
			close(start)
			wg.Wait()
			t.Logf("concurrent passes: %+v", reports)
			// A ticket one process found changed under it is done by the next pass.
			for _, p := range []*process{a, b, a} {
				r := p.pass(t)
				reports = append(reports, r)
			}
			total := 0
			for _, r := range reports {
				total += r.Assigned
			}
			if total != n {
				t.Errorf("assignments reported %d, want %d", total, n)
			}

			taken := slots(t, store, "Support rota")
			if len(taken) != n {
				t.Fatalf("%d slots taken for %d tickets", len(taken), n)
			}
			users := []string{"ann", "bob", "cid"}
			perUser := map[string]int{}
			slotOf := map[string]domain.AssignmentSlotTaken{}
			for i, s := range taken {
				if s.Slot != uint64(i+1) || s.User != users[i%3] {
					t.Fatalf("slot %d: %+v, want slot %d for %s", i, s, i+1, users[i%3])
				}
				if _, dup := slotOf[s.TicketID]; dup {
					t.Fatalf("ticket %s took two slots", s.TicketID)
				}
				slotOf[s.TicketID] = s
				perUser[s.User]++
			}
			for _, id := range ids {
				assigned := payloadsOf[domain.TicketAssigned](t, a.h, id)
				if len(assigned) != 1 || assigned[0].Rule != "Support rota" || assigned[0].Assignee != slotOf[id].User {
					t.Fatalf("ticket %s: assigned %+v, slot %+v", id, assigned, slotOf[id])
				}
			}
			if perUser["ann"] != n/3 || perUser["bob"] != n/3 || perUser["cid"] != n/3 {
				t.Fatalf("turns per user %v", perUser)
			}
			// A restart: a new process, its read model rebuilt, assigns nothing again.
			if r := startProcess(t, store, "d", clk).pass(t); r != (commands.AutomationReport{}) {
				t.Fatalf("after a restart: %+v", r)
			}
			if got := len(slots(t, store, "Support rota")); got != n {
				t.Fatalf("%d slots after the restart", got)
			}
		})
	}
}

// flakyStore fails the next append to one stream, as a crash between two appends would
// leave things: the round robin slot is taken, the ticket not yet assigned.
type flakyStore struct {
	eventstore.Store
	mu     sync.Mutex
	failOn string
}

func (s *flakyStore) Append(ctx context.Context, stream string, expected eventstore.Revision, events []eventstore.EventData) (eventstore.AppendResult, error) {
	s.mu.Lock()
	fail := s.failOn != "" && stream == s.failOn
	if fail {
		s.failOn = ""
	}
	s.mu.Unlock()
	if fail {
		return eventstore.AppendResult{}, fmt.Errorf("crash before the append: %w", eventstore.ErrUnavailable)
	}
	return s.Store.Append(ctx, stream, expected, events)
}

// A process takes a round robin slot for a ticket and dies before assigning it. After
// a restart (new handler, read model rebuilt) the ticket gets the user of that slot,
// and no other slot is taken; restarting again, or a process whose read model lags,
// changes nothing.
func TestRoundRobinRestartInTheMiddle(t *testing.T) {
	ctx := context.Background()
	clk := newClock(monday)
	store := &flakyStore{Store: memstore.New()}
	first := startProcess(t, store, "first", clk)
	first.saveRule(t, domain.AssignmentRuleDefinition{Name: "RR", Method: domain.MethodRoundRobin, Users: []string{"ann", "bob"}})
	t1 := first.create(t, domain.TicketFieldsData{Subject: "one"})
	t2 := first.create(t, domain.TicketFieldsData{Subject: "two"})
	lagging := startProcess(t, store, "lagging", clk) // its read model stops here

	store.mu.Lock()
	store.failOn = domain.TicketStream(t1)
	store.mu.Unlock()
	if r := first.pass(t); r.Assigned != 1 {
		t.Fatalf("first pass: %+v", r)
	}
	if got := assigneesOf(t, first.h, t1); len(got) != 0 {
		t.Fatalf("t1 assigned despite the crash: %v", got)
	}
	if got := slots(t, store, "RR"); len(got) != 2 || got[0].TicketID != t1 || got[0].User != "ann" || got[1].User != "bob" {
		t.Fatalf("slots %+v", got)
	}

	// Restart.
	second := startProcess(t, store, "second", clk)
	if r := second.pass(t); r.Assigned != 1 {
		t.Fatalf("after the restart: %+v", r)
	}
	if got := assigneesOf(t, second.h, t1); !slices.Equal(got, []string{"ann"}) {
		t.Fatalf("t1 assignees %v, want the user of its slot", got)
	}
	if got := assigneesOf(t, second.h, t2); !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("t2 assignees %v", got)
	}
	if got := len(slots(t, store, "RR")); got != 2 {
		t.Fatalf("%d slots after the restart, want 2", got)
	}
	// A process whose read model still shows both tickets unassigned sends the same
	// commands: they are recognised, nothing is stored.
	before, _ := store.LastPosition(ctx)
	if r := lagging.auto.RunOnce(ctx); r != (commands.AutomationReport{}) {
		t.Fatalf("lagging process: %+v", r)
	}
	if after, _ := store.LastPosition(ctx); after != before {
		t.Fatalf("the lagging process stored %d events", after-before)
	}
	if r := startProcess(t, store, "third", clk).pass(t); r != (commands.AutomationReport{}) {
		t.Fatalf("second restart: %+v", r)
	}
	for _, id := range []string{t1, t2} {
		if n := len(payloadsOf[domain.TicketAssigned](t, first.h, id)); n != 1 {
			t.Fatalf("ticket %s assigned %d times", id, n)
		}
	}
}

// Load balancing gives each ticket to the user with the fewest open tickets (read
// model counts, including this pass's own assignments), ties by the rule's order;
// resolved and closed tickets do not count.
func TestLoadBalancing(t *testing.T) {
	p := startProcess(t, memstore.New(), "p", newClock(monday))
	manual := func(user string) string {
		id := p.create(t, domain.TicketFieldsData{Subject: "manual"})
		p.do(t, id, domain.AssignTicket{Assignee: user})
		return id
	}
	manual("ann")
	manual("ann")
	manual("bob")
	closed := manual("cid")
	manual("cid")
	p.do(t, closed, domain.CloseTicket{}) // cid: 1 open ticket
	p.saveRule(t, domain.AssignmentRuleDefinition{Name: "LB", Method: domain.MethodLoadBalancing, Users: []string{"ann", "bob", "cid"}})
	var ids []string
	for range 4 {
		ids = append(ids, p.create(t, domain.TicketFieldsData{Subject: "new"}))
	}
	if r := p.pass(t); r.Assigned != 4 {
		t.Fatalf("pass: %+v", r)
	}
	// open before: ann 2, bob 1, cid 1 -> bob (tie, first in order), cid, then all at 2 -> ann, bob.
	var got []string
	for _, id := range ids {
		got = append(got, assigneesOf(t, p.h, id)...)
	}
	if want := []string{"bob", "cid", "ann", "bob"}; !slices.Equal(got, want) {
		t.Fatalf("assignees %v, want %v", got, want)
	}
	p.catchUp(t)
	if open := p.model.OpenTickets(); open["ann"] != 3 || open["bob"] != 3 || open["cid"] != 2 {
		t.Fatalf("open tickets %v", open)
	}
}

// Rules apply in priority order; by_field maps a field to its assignee; a ticket that
// changes so that a rule starts to match is assigned then; a ticket unchanged since
// before the rule was saved is left alone until it changes; a manual assignee blocks
// the rules.
func TestRulesPriorityByFieldAndChanges(t *testing.T) {
	ctx := context.Background()
	p := startProcess(t, memstore.New(), "p", newClock(monday))
	for _, typ := range []string{"Bug", "Question"} {
		if _, err := p.h.ChangeCatalogue(ctx, false, domain.CatalogueCommand{Op: "create", Name: typ}, nil, commands.Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	old := p.create(t, domain.TicketFieldsData{TicketType: "Bug", Priority: "Low"}) // before the rules
	p.saveRule(t, domain.AssignmentRuleDefinition{Name: "By type", Priority: 20, Method: domain.MethodByField,
		Field: "ticket_type", FieldMap: map[string]string{"Bug": "dev-team"}})
	p.saveRule(t, domain.AssignmentRuleDefinition{Name: "Urgent", Priority: 10, Method: domain.MethodRoundRobin,
		Users: []string{"zoe"}, Condition: `priority == "High"`})
	urgentBug := p.create(t, domain.TicketFieldsData{TicketType: "Bug", Priority: "High"})
	bug := p.create(t, domain.TicketFieldsData{TicketType: "Bug", Priority: "Low"})
	question := p.create(t, domain.TicketFieldsData{TicketType: "Question", Priority: "Low"})
	manual := p.create(t, domain.TicketFieldsData{TicketType: "Bug", Priority: "High"})
	p.do(t, manual, domain.AssignTicket{Assignee: "max"})

	if r := p.pass(t); r.Assigned != 2 {
		t.Fatalf("pass: %+v", r)
	}
	want := map[string][]string{urgentBug: {"zoe"}, bug: {"dev-team"}, question: nil, manual: {"max"}, old: nil}
	for id, w := range want {
		if got := assigneesOf(t, p.h, id); !slices.Equal(got, w) {
			t.Fatalf("ticket %s: assignees %v, want %v", id, got, w)
		}
	}
	if a := payloadsOf[domain.TicketAssigned](t, p.h, bug); a[0].Rule != "By type" {
		t.Fatalf("assigned event %+v", a)
	}
	p.catchUp(t)
	if by := p.model.AssignedBy(urgentBug); by["zoe"] != "Urgent" {
		t.Fatalf("assigned by %v", by)
	}
	// Nothing changed: the next pass does nothing.
	if r := p.pass(t); r != (commands.AutomationReport{}) {
		t.Fatalf("idle pass: %+v", r)
	}
	// The question becomes a bug, the old ticket gets a comment: both are assigned now.
	p.do(t, question, domain.ChangeType{TicketType: "Bug"})
	p.do(t, old, domain.AddComment{Body: "still there?"})
	if r := p.pass(t); r.Assigned != 2 {
		t.Fatalf("pass after the changes: %+v", r)
	}
	for _, id := range []string{question, old} {
		if got := assigneesOf(t, p.h, id); !slices.Equal(got, []string{"dev-team"}) {
			t.Fatalf("ticket %s: assignees %v", id, got)
		}
	}
}

// A rule's unassign condition removes the assignee it gave (not a person's); a ticket
// reopened later is assigned again, once.
func TestUnassignCondition(t *testing.T) {
	clk := newClock(monday)
	store := memstore.New()
	p := startProcess(t, store, "p", clk)
	p.saveRule(t, domain.AssignmentRuleDefinition{Name: "RR", Method: domain.MethodRoundRobin,
		Users: []string{"ann", "bob"}, UnassignCondition: `status == "Closed"`})
	id := p.create(t, domain.TicketFieldsData{})
	if r := p.pass(t); r.Assigned != 1 {
		t.Fatalf("pass: %+v", r)
	}
	p.do(t, id, domain.AssignTicket{Assignee: "max"}) // a person adds a second assignee
	p.do(t, id, domain.ResolveTicket{})
	if r := p.pass(t); r != (commands.AutomationReport{}) {
		t.Fatalf("resolved: %+v", r)
	}
	p.do(t, id, domain.CloseTicket{})
	if r := p.pass(t); r.Unassigned != 1 || r.Assigned != 0 {
		t.Fatalf("closed: %+v", r)
	}
	if got := assigneesOf(t, p.h, id); !slices.Equal(got, []string{"max"}) {
		t.Fatalf("assignees after close %v", got)
	}
	un := payloadsOf[domain.TicketUnassigned](t, p.h, id)
	if len(un) != 1 || un[0] != (domain.TicketUnassigned{Assignee: "ann", Rule: "RR"}) {
		t.Fatalf("unassigned events %+v", un)
	}
	// A second process and a restart do not unassign again.
	if r := startProcess(t, store, "q", clk).pass(t); r != (commands.AutomationReport{}) {
		t.Fatalf("restart: %+v", r)
	}

	// Reopened, the person removed: no assignee, the rule assigns the next user.
	p.do(t, id, domain.ReopenTicket{})
	p.do(t, id, domain.UnassignTicket{Assignee: "max"})
	if r := p.pass(t); r.Assigned != 1 {
		t.Fatalf("reopened: %+v", r)
	}
	if got := assigneesOf(t, p.h, id); !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("assignees after reopen %v", got)
	}
	if r := startProcess(t, store, "r", clk).pass(t); r != (commands.AutomationReport{}) {
		t.Fatalf("restart after reopen: %+v", r)
	}
	if n := len(payloadsOf[domain.TicketAssigned](t, p.h, id)); n != 3 { // ann (rule), max, bob (rule)
		t.Fatalf("%d assignments", n)
	}
}

// The unreplied alert is recorded once per waiting customer message, after the
// configured time, by whichever process sees it first; not when a reply came first;
// not again for later messages of the same wait; again for a new wait.
func TestUnrepliedAlert(t *testing.T) {
	ctx := context.Background()
	clk := newClock(monday)
	store := memstore.New()
	a := startProcess(t, store, "a", clk)
	if _, err := a.h.ChangeSettings(ctx, domain.SupportSettings{AutoCloseDays: 7, UnrepliedAlertMinutes: 30}, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	waiting := a.create(t, domain.TicketFieldsData{Subject: "waiting"})
	answered := a.create(t, domain.TicketFieldsData{Subject: "answered"})
	clk.Advance(10 * time.Minute)
	a.do(t, answered, domain.SendReply{Body: "on it"})
	clk.Advance(10 * time.Minute) // 09:20
	a.do(t, answered, domain.ReceiveCustomerMessage{Channel: domain.ChannelEmail, Body: "and now?"})

	clk.Set(monday.Add(29 * time.Minute))
	if r := a.pass(t); r.Alerts != 0 {
		t.Fatalf("29 minutes: %+v", r)
	}
	// 09:31: two processes see the opening message of "waiting" due.
	clk.Set(monday.Add(31 * time.Minute))
	b := startProcess(t, store, "b", clk)
	a.catchUp(t)
	var wg sync.WaitGroup
	for _, p := range []*process{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); p.auto.RunOnce(ctx) }()
	}
	wg.Wait()
	alerts := payloadsOf[domain.UnrepliedAlert](t, a.h, waiting)
	if len(alerts) != 1 || alerts[0].WaitingSince != monday || alerts[0].ThresholdMinutes != 30 {
		t.Fatalf("alerts %+v", alerts)
	}
	if n := len(payloadsOf[domain.UnrepliedAlert](t, a.h, answered)); n != 0 {
		t.Fatalf("the answered ticket has %d alerts at 09:31", n)
	}
	// The customer insists: the same wait, no second alert.
	a.do(t, waiting, domain.ReceiveCustomerMessage{Channel: domain.ChannelEmail, Body: "hello?"})
	clk.Set(monday.Add(2 * time.Hour))
	a.pass(t)
	if n := len(payloadsOf[domain.UnrepliedAlert](t, a.h, waiting)); n != 1 {
		t.Fatalf("%d alerts for one wait", n)
	}
	// The answered ticket's new message (09:20) waited too: alerted once, since 09:20.
	got := payloadsOf[domain.UnrepliedAlert](t, a.h, answered)
	if len(got) != 1 || !got[0].WaitingSince.Equal(monday.Add(20*time.Minute)) {
		t.Fatalf("answered ticket alerts %+v", got)
	}
	// A reply before the threshold: no alert.
	quick := a.create(t, domain.TicketFieldsData{Subject: "quick"})
	clk.Advance(20 * time.Minute)
	a.do(t, quick, domain.SendReply{Body: "done"})
	clk.Advance(time.Hour)
	a.pass(t)
	if n := len(payloadsOf[domain.UnrepliedAlert](t, a.h, quick)); n != 0 {
		t.Fatalf("a ticket replied in time has %d alerts", n)
	}
	// A new wait after a reply: a new alert.
	a.do(t, waiting, domain.SendReply{Body: "sorry"})
	a.do(t, waiting, domain.ReceiveCustomerMessage{Channel: domain.ChannelEmail, Body: "still broken"})
	clk.Advance(31 * time.Minute)
	if r := a.pass(t); r.Alerts != 1 {
		t.Fatalf("new wait: %+v", r)
	}
	// Restarts and lagging processes record nothing more.
	if r := startProcess(t, store, "c", clk).pass(t); r != (commands.AutomationReport{}) {
		t.Fatalf("restart: %+v", r)
	}
	if r := b.auto.RunOnce(ctx); r.Alerts != 0 { // b's model lags behind
		t.Fatalf("lagging process: %+v", r)
	}
	if n := len(payloadsOf[domain.UnrepliedAlert](t, a.h, waiting)); n != 2 {
		t.Fatalf("%d alerts, want 2", n)
	}
	// Disabled: nothing is due.
	if _, err := a.h.ChangeSettings(ctx, domain.SupportSettings{AutoCloseDays: 7}, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	a.do(t, quick, domain.ReceiveCustomerMessage{Channel: domain.ChannelEmail, Body: "again"})
	clk.Advance(24 * time.Hour)
	if r := a.pass(t); r.Alerts != 0 {
		t.Fatalf("disabled: %+v", r)
	}
}

// The rule catalogue: versions, idempotent retries under a command ID, validation.
func TestAssignmentRuleCatalogueCommands(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	h := newHandler(t, store, "p", nil)
	def := domain.AssignmentRuleDefinition{Name: "RR", Method: domain.MethodRoundRobin, Users: []string{"ann"}}
	meta := commands.Meta{CommandID: "save-1"}
	for range 2 { // a retry of the same command stores nothing more
		if _, err := h.SaveAssignmentRule(ctx, def, meta); err != nil {
			t.Fatal(err)
		}
	}
	def.Users = append(def.Users, "bob")
	if _, err := h.SaveAssignmentRule(ctx, def, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	if r, ok := h.Catalogues().AssignmentRule("RR"); !ok || r.Version != 2 {
		t.Fatalf("rule %+v", r)
	}
	recs, _ := store.ReadStream(ctx, domain.AssignmentRulesStream)
	if len(recs) != 2 {
		t.Fatalf("%d catalogue events", len(recs))
	}
	// Another process reads the catalogue from the store.
	other := newHandler(t, store, "q", nil)
	if r, ok := other.Catalogues().AssignmentRule("RR"); !ok || r.Version != 2 || !slices.Equal(r.Rule.Users(), []string{"ann", "bob"}) {
		t.Fatalf("other process: %+v", r)
	}
	_, err := h.SaveAssignmentRule(ctx, domain.AssignmentRuleDefinition{Name: "Bad", Method: domain.MethodRoundRobin, Users: []string{"a"},
		Condition: `priority = "High"`}, commands.Meta{})
	var v *domain.ValidationError
	if !errors.As(err, &v) || v.Fields[0].Field != "condition" || !strings.Contains(v.Fields[0].Message, "line 1, column") {
		t.Fatalf("bad condition: %v", err)
	}
	if _, err := h.RemoveAssignmentRule(ctx, "RR", commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.RemoveAssignmentRule(ctx, "RR", commands.Meta{}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("second removal: %v", err)
	}
	if len(h.Catalogues().AssignmentRules()) != 0 {
		t.Fatal("rule still listed")
	}
}
