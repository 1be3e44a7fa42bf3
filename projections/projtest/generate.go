// Package projtest is test support for the projections: a seeded generator of a
// realistic support-centre history, sent through the real command handler, so that
// tests and benchmarks can compare live, rebuilt and per-ticket folds of the same
// events.
//
// It imports commands, which the projections package itself must not; only tests
// and benchmarks import projtest.
package projtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
)

// Start is a convenient first instant for a history: a Monday morning.
var Start = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)

// Clock is a controlled clock, safe for concurrent use. Pass its Now method as
// commands.Options.Clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's instant.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t (backwards too: the caller decides).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Advance moves the clock forward by d and returns the new instant.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Stats describes a generated history.
type Stats struct {
	Tickets  int            // tickets created, split-off ones included
	Splits   int            // tickets created by a split
	Commands int            // accepted commands, reference data included
	Refused  int            // commands deliberately sent to be refused (all were, with a typed error)
	Events   uint64         // events appended to the store by Generate
	Actions  map[string]int // accepted ticket commands by name (create, reply, split...)
	Start    time.Time      // clock at the start
	End      time.Time      // clock at the end: the instant of the last command
	// TicketIDs lists every ticket created, in creation order.
	TicketIDs []string
	// SLAVersions counts the SLA versions saved by Generate.
	SLAVersions int
}

// Reference data of the generated support centre.
var (
	TicketTypes = []string{"Incident", "Question", "Bug", "Billing", "Feature Request"}
	Priorities  = []string{"Low", "Medium", "High", "Urgent"} // the defaults plus Urgent
	Customers   = []string{"Acme Corp", "Globex", "Initech", "Umbrella", "Stark Industries", "Wayne Enterprises", "Hooli", "Soylent"}
	Agents      = []string{"alice", "bob", "carol", "dave", "erin", "frank"}
)

var (
	channels = []domain.Channel{domain.ChannelEmail, domain.ChannelEmail, domain.ChannelPortal, domain.ChannelAPI, domain.ChannelManual}
	people   = []string{"jane", "john", "li", "maria", "omar", "priya", "sam", "yuki"}
	subjects = []string{"Cannot log in", "Invoice is wrong", "Export fails with error 500", "How do I add a user?",
		"Slow dashboard", "Password reset email never arrives", "Feature: dark mode", "API returns 429",
		"Data missing after import", "Refund request", "SSO configuration", "Mobile app crashes on start"}
	projects = []string{"", "", "Migration", "Onboarding", "Q1 Rollout"}
)

// SLADefinitions are the agreements Generate saves before the history starts: an
// "Enterprise" SLA for two customers on a Paris business calendar with a lunch break
// and holidays, and a default "Standard" SLA on a New York calendar whose clock also
// pauses while a ticket is Replied.
func SLADefinitions() []domain.SLADefinition {
	h := func(d time.Duration) domain.Duration { return domain.Duration(d) }
	weekdays := func(windows ...[2]string) map[string][][2]string {
		m := map[string][][2]string{}
		for _, d := range []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"} {
			m[d] = windows
		}
		return m
	}
	return []domain.SLADefinition{
		{
			Name:      "Enterprise",
			Condition: `customer in ["Acme Corp", "Globex"]`,
			Calendar: domain.CalendarSpec{
				Timezone: "Europe/Paris",
				Hours:    weekdays([2]string{"08:00", "12:00"}, [2]string{"13:00", "19:00"}),
				Holidays: []string{"2026-01-01", "2026-04-06", "2026-05-01", "2026-05-08", "2026-05-14", "2026-05-25"},
			},
			Priorities: []domain.SLAPriority{
				{Name: "Low", Response: h(8 * time.Hour), Resolution: h(40 * time.Hour)},
				{Name: "Medium", Response: h(4 * time.Hour), Resolution: h(16 * time.Hour), Default: true},
				{Name: "High", Response: h(time.Hour), Resolution: h(8 * time.Hour)},
				{Name: "Urgent", Response: h(30 * time.Minute), Resolution: h(4 * time.Hour)},
			},
		},
		{
			Name:    "Standard",
			Default: true,
			Calendar: domain.CalendarSpec{
				Timezone: "America/New_York",
				Hours:    weekdays([2]string{"09:00", "17:00"}),
				Holidays: []string{"2026-01-19", "2026-02-16", "2026-05-25"},
			},
			Priorities: []domain.SLAPriority{
				{Name: "Low", Response: h(24 * time.Hour), Resolution: h(120 * time.Hour)},
				{Name: "Medium", Response: h(8 * time.Hour), Resolution: h(40 * time.Hour), Default: true},
				{Name: "High", Response: h(4 * time.Hour), Resolution: h(16 * time.Hour)},
				{Name: "Urgent", Response: h(time.Hour), Resolution: h(8 * time.Hour)},
			},
			PauseOn: []domain.Status{domain.StatusOnHold, domain.StatusReplied},
		},
	}
}

// standardV2 is the Standard SLA as revised half-way through the history: tighter
// targets, so tickets created before and after record different versions.
func standardV2() domain.SLADefinition {
	def := SLADefinitions()[1]
	def.Priorities = slices.Clone(def.Priorities)
	def.Priorities[2].Response = domain.Duration(2 * time.Hour)
	def.Priorities[3].Response = domain.Duration(30 * time.Minute)
	def.Priorities[3].Resolution = domain.Duration(6 * time.Hour)
	return def
}

// gen is one generation run.
type gen struct {
	h     *commands.Handler
	clock *Clock
	rng   *rand.Rand
	stats Stats
}

// Generate plays a seeded, realistic support-centre history through h: reference data
// (priorities, ticket types, settings allowing SLA resets, SLADefinitions), then
// tickets created over time with random priority, type, customer and channel, and on
// them replies, customer messages, comments, holds, resolutions, closes, reopens,
// assignments, priority and type changes, SLA resets, splits, and a few commands that
// must be refused. The Standard SLA gets a second version half-way through.
//
// h must read clock.Now (commands.Options.Clock); Generate advances the clock by a
// random number of minutes before each command, with occasional overnight gaps. The
// same seed on an empty store gives the same ticket and reference-data events, ids
// included (the ticket-number stream records its owner, commands.Options.Owner, and
// the wall-clock time of each reservation). tickets is the number of tickets created
// directly; splits add more.
func Generate(ctx context.Context, h *commands.Handler, clock *Clock, rng *rand.Rand, tickets int) (Stats, error) {
	g := &gen{h: h, clock: clock, rng: rng}
	g.stats.Actions = map[string]int{}
	g.stats.Start = clock.Now()
	first, err := h.Store().LastPosition(ctx)
	if err != nil {
		return g.stats, err
	}
	if err := g.setUp(ctx); err != nil {
		return g.stats, fmt.Errorf("set up reference data: %w", err)
	}

	steps := tickets * 11
	created, revised := 0, false
	for i := 0; created < tickets || i < steps; i++ {
		if err := ctx.Err(); err != nil {
			return g.stats, err
		}
		g.tick()
		if !revised && created >= tickets/2 {
			revised = true
			if _, err := h.SaveSLA(ctx, standardV2(), g.meta("admin")); err != nil {
				return g.stats, fmt.Errorf("revise SLA: %w", err)
			}
			g.stats.Commands++
			g.stats.SLAVersions++
		}
		remaining := max(steps-i, 1)
		if created < tickets && (len(g.stats.TicketIDs) == 0 || g.rng.IntN(remaining) < tickets-created) {
			if err := g.create(ctx); err != nil {
				return g.stats, err
			}
			created++
			continue
		}
		if err := g.act(ctx, g.pickTicket()); err != nil {
			return g.stats, err
		}
	}
	g.stats.End = clock.Now()
	last, err := h.Store().LastPosition(ctx)
	if err != nil {
		return g.stats, err
	}
	g.stats.Events = last - first
	return g.stats, nil
}

// tick advances the clock: mostly minutes, sometimes hours, now and then a night or a
// weekend.
func (g *gen) tick() {
	var d time.Duration
	switch r := g.rng.Float64(); {
	case r < 0.80:
		d = time.Duration(g.rng.IntN(8)) * time.Minute
	case r < 0.98:
		d = time.Duration(8+g.rng.IntN(32)) * time.Minute
	case r < 0.998:
		d = time.Duration(2+g.rng.IntN(10)) * time.Hour
	default:
		d = time.Duration(40+g.rng.IntN(20)) * time.Hour
	}
	d += time.Duration(g.rng.IntN(60)) * time.Second
	g.clock.Advance(d)
}

func (g *gen) setUp(ctx context.Context) error {
	meta := g.meta("admin")
	if err := g.h.SeedDefaults(ctx); err != nil {
		return err
	}
	ref := g.h.Catalogues().Reference()
	for _, p := range Priorities {
		if !ref.PriorityExists(p) {
			if _, err := g.h.ChangeCatalogue(ctx, true, domain.CatalogueCommand{Op: "create", Name: p}, nil, g.meta("admin")); err != nil {
				return err
			}
			g.stats.Commands++
		}
	}
	for _, t := range TicketTypes {
		if !ref.TicketTypeExists(t) {
			if _, err := g.h.ChangeCatalogue(ctx, false, domain.CatalogueCommand{Op: "create", Name: t, Description: t + " tickets"}, nil, g.meta("admin")); err != nil {
				return err
			}
			g.stats.Commands++
		}
	}
	if _, err := g.h.ChangeSettings(ctx, domain.SupportSettings{AutoCloseDays: 7, AllowSLAReset: true}, meta); err != nil {
		return err
	}
	g.stats.Commands++
	saved := map[string]bool{}
	for _, v := range g.h.Catalogues().SLAs() {
		saved[v.SLA.Name()] = true
	}
	for _, def := range SLADefinitions() {
		if saved[def.Name] {
			continue
		}
		if _, err := g.h.SaveSLA(ctx, def, g.meta("admin")); err != nil {
			return fmt.Errorf("sla %s: %w", def.Name, err)
		}
		g.stats.Commands++
		g.stats.SLAVersions++
	}
	return nil
}

// newID is a version 4 UUID drawn from the generator's source, so runs repeat.
func (g *gen) newID() string {
	var u uuid.UUID
	for i := range u {
		u[i] = byte(g.rng.UintN(256))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u.String()
}

func (g *gen) meta(actor string) commands.Meta {
	return commands.Meta{CommandID: g.newID(), Actor: actor}
}

func pick[T any](rng *rand.Rand, list []T) T { return list[rng.IntN(len(list))] }

func (g *gen) agent() string { return pick(g.rng, Agents) }

func (g *gen) create(ctx context.Context) error {
	customer := pick(g.rng, Customers)
	domainName := slugify(customer) + ".example.com"
	f := domain.TicketFieldsData{
		Subject:     pick(g.rng, subjects),
		RaisedBy:    pick(g.rng, people) + "@" + domainName,
		Customer:    customer,
		Company:     customer,
		Project:     pick(g.rng, projects),
		Channel:     pick(g.rng, channels),
		Description: "Hello, " + pick(g.rng, subjects) + ". Thanks.",
	}
	if g.rng.IntN(5) > 0 {
		f.Priority = pick(g.rng, Priorities)
	}
	if g.rng.IntN(4) > 0 {
		f.TicketType = pick(g.rng, TicketTypes)
	}
	actor := f.RaisedBy
	if f.Channel == domain.ChannelManual {
		actor = g.agent()
	}
	res, err := g.h.CreateTicket(ctx, domain.CreateTicket{TicketFieldsData: f}, g.meta(actor))
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	g.accepted("create")
	g.stats.Tickets++
	g.stats.TicketIDs = append(g.stats.TicketIDs, res.TicketID)
	return nil
}

func slugify(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			out = append(out, c)
		case c >= 'A' && c <= 'Z':
			out = append(out, c+'a'-'A')
		}
	}
	return string(out)
}

// pickTicket prefers recent tickets, as a support centre's activity does.
func (g *gen) pickTicket() string {
	ids := g.stats.TicketIDs
	if g.rng.IntN(4) == 0 {
		return pick(g.rng, ids)
	}
	window := min(len(ids), 40)
	return ids[len(ids)-1-g.rng.IntN(window)]
}

func (g *gen) accepted(action string) {
	g.stats.Commands++
	g.stats.Actions[action]++
}

type choice struct {
	weight int
	cmd    func() (domain.TicketCommand, string) // command and actor
}

// act sends one command to a ticket: usually one its status allows, sometimes one
// that must be refused.
func (g *gen) act(ctx context.Context, id string) error {
	t, err := g.h.LoadTicket(ctx, id)
	if err != nil {
		return err
	}
	if g.rng.IntN(25) == 0 {
		return g.refused(ctx, id, t)
	}
	agent := func(c domain.TicketCommand) func() (domain.TicketCommand, string) {
		return func() (domain.TicketCommand, string) { return c, g.agent() }
	}
	customerMsg := func() (domain.TicketCommand, string) {
		ch := domain.ChannelEmail
		if g.rng.IntN(3) == 0 {
			ch = domain.ChannelPortal
		}
		return domain.ReceiveCustomerMessage{Channel: ch, Body: "Any news? " + pick(g.rng, subjects)}, t.Fields.RaisedBy
	}
	reply := agent(domain.SendReply{Body: "We are looking into it."})
	comment := agent(domain.AddComment{Body: "Internal note: checked the logs."})
	var choices []choice
	add := func(w int, c func() (domain.TicketCommand, string)) { choices = append(choices, choice{w, c}) }
	open := t.Status != domain.StatusClosed
	switch t.Status {
	case domain.StatusOpen:
		add(30, reply)
		add(6, customerMsg)
		add(6, agent(domain.HoldTicket{Reason: "waiting for a third party"}))
		add(6, agent(domain.ResolveTicket{ResolutionDetails: "fixed"}))
		add(1, agent(domain.CloseTicket{Reason: "duplicate"}))
	case domain.StatusReplied:
		add(20, customerMsg)
		add(5, reply)
		add(4, agent(domain.HoldTicket{Reason: "waiting for the customer"}))
		add(12, agent(domain.ResolveTicket{ResolutionDetails: "answered"}))
		add(2, agent(domain.CloseTicket{}))
	case domain.StatusOnHold:
		add(10, customerMsg)
		add(4, reply)
		add(8, agent(domain.ResolveTicket{ResolutionDetails: "third party fixed it"}))
		add(1, agent(domain.CloseTicket{}))
	case domain.StatusResolved:
		add(12, agent(domain.CloseTicket{Reason: "confirmed"}))
		add(4, agent(domain.ReopenTicket{Reason: "not fixed after all"}))
		add(4, customerMsg)
	case domain.StatusClosed:
		add(3, agent(domain.ReopenTicket{Reason: "customer came back"}))
		add(3, customerMsg)
	}
	add(6, comment)
	if open {
		add(3, func() (domain.TicketCommand, string) {
			return domain.ChangePriority{Priority: other(g.rng, Priorities, t.Fields.Priority)}, g.agent()
		})
		add(2, func() (domain.TicketCommand, string) {
			return domain.ChangeType{TicketType: other(g.rng, TicketTypes, t.Fields.TicketType)}, g.agent()
		})
		if len(t.Assignees) < len(Agents) {
			add(5, func() (domain.TicketCommand, string) {
				free := slices.DeleteFunc(slices.Clone(Agents), func(a string) bool { return slices.Contains(t.Assignees, a) })
				return domain.AssignTicket{Assignee: pick(g.rng, free)}, "dispatcher"
			})
		}
		if len(t.Assignees) > 0 {
			add(2, func() (domain.TicketCommand, string) {
				return domain.UnassignTicket{Assignee: pick(g.rng, t.Assignees)}, "dispatcher"
			})
		}
		if len(t.Messages) >= 2 {
			add(2, func() (domain.TicketCommand, string) {
				k := 1 + g.rng.IntN(len(t.Messages)-1)
				return domain.SplitTicket{FromMessage: t.Messages[k].ID, Subject: "Split: " + t.Fields.Subject}, g.agent()
			})
		}
		if t.Status != domain.StatusResolved {
			add(1, agent(domain.ResetSLA{Reason: "customer changed the request"}))
		}
	}
	total := 0
	for _, c := range choices {
		total += c.weight
	}
	r := g.rng.IntN(total)
	var c choice
	for _, c = range choices {
		if r < c.weight {
			break
		}
		r -= c.weight
	}
	cmd, actor := c.cmd()
	res, err := g.h.Execute(ctx, id, cmd, g.meta(actor))
	if err != nil {
		return fmt.Errorf("ticket %s (%s) %s by %s: %w", id, t.Status, cmd.CommandName(), actor, err)
	}
	g.accepted(cmd.CommandName())
	if _, ok := cmd.(domain.SplitTicket); ok {
		g.stats.Tickets++
		g.stats.Splits++
		g.stats.TicketIDs = append(g.stats.TicketIDs, res.TicketID)
	}
	return nil
}

// other picks an element of list different from current.
func other(rng *rand.Rand, list []string, current string) string {
	for {
		if v := pick(rng, list); v != current {
			return v
		}
	}
}

// refused sends a command the ticket's state refuses, and checks that it is refused
// with a typed error.
func (g *gen) refused(ctx context.Context, id string, t domain.Ticket) error {
	var candidates []domain.TicketCommand
	switch t.Status {
	case domain.StatusOpen, domain.StatusReplied, domain.StatusOnHold:
		candidates = append(candidates, domain.ReopenTicket{Reason: "by mistake"})
	case domain.StatusResolved:
		candidates = append(candidates, domain.HoldTicket{}, domain.ResetSLA{Reason: "too late"})
	case domain.StatusClosed:
		candidates = append(candidates, domain.SendReply{Body: "late reply"}, domain.ResolveTicket{},
			domain.ChangePriority{Priority: other(g.rng, Priorities, t.Fields.Priority)})
	}
	if t.Status != domain.StatusClosed {
		candidates = append(candidates,
			domain.ChangePriority{Priority: "Critical-" + g.newID()[:4]},
			domain.SplitTicket{FromMessage: t.Messages[0].ID},
			domain.SendReply{Body: "   "})
	}
	if len(t.Assignees) > 0 {
		candidates = append(candidates, domain.AssignTicket{Assignee: t.Assignees[0]})
	}
	candidates = append(candidates, domain.UnassignTicket{Assignee: "nobody"}, domain.AddComment{})
	cmd := pick(g.rng, candidates)
	_, err := g.h.Execute(ctx, id, cmd, g.meta(g.agent()))
	if err == nil {
		return fmt.Errorf("ticket %s (%s): %s %+v was accepted; it should have been refused", id, t.Status, cmd.CommandName(), cmd)
	}
	for _, target := range []error{domain.ErrValidation, domain.ErrInvalidTransition, domain.ErrConflict, domain.ErrNotFound} {
		if errors.Is(err, target) {
			g.stats.Refused++
			return nil
		}
	}
	return fmt.Errorf("ticket %s: %s refused with an untyped error: %w", id, cmd.CommandName(), err)
}
