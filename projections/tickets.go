// Package projections holds the read models derived from events. Each is a
// deterministic fold: the same events give the same state, live or rebuilt.
package projections

import (
	"encoding/binary"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ticketcore/ticketcore/domain"
)

// Projection is a read model fed by the Runner.
type Projection interface {
	Name() string
	// Apply folds one event stored at global position pos. Positions at or below the
	// projection's checkpoint are ignored, which makes redelivery harmless.
	Apply(e domain.Event, pos uint64) error
	// Position is the checkpoint: the last global position applied.
	Position() uint64
	// Reset empties the model (before a rebuild).
	Reset()
}

// Tickets is the ticket read model: every ticket with its thread, comments and SLA
// metrics, plus the SLA versions tickets name (folded from the SLA catalogue stream).
type Tickets struct {
	mu       sync.RWMutex
	pos      uint64
	byID     ticketIndex
	order    []*TicketState // creation order
	slas     domain.SLACatalogue
	byNumber map[string]*TicketState
}

// NewTickets returns an empty model.
func NewTickets() *Tickets {
	t := &Tickets{}
	t.Reset()
	return t
}

func (m *Tickets) Name() string { return "tickets" }

func (m *Tickets) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pos = 0
	m.byID = ticketIndex{}
	m.byNumber = nil
	m.order = nil
	m.slas = domain.SLACatalogue{}
}

func (m *Tickets) Position() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.pos
}

func (m *Tickets) Apply(e domain.Event, pos uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pos <= m.pos {
		return nil
	}
	m.pos = pos
	if e.Stream == domain.SLAStream {
		domain.EvolveSLACatalogue(&m.slas, e)
		return nil
	}
	id := domain.TicketIDFromStream(e.Stream)
	if id == "" {
		return nil
	}
	t := m.byID.get(id)
	if t == nil {
		if _, ok := e.Payload.(domain.TicketCreated); !ok {
			return nil
		}
		t = &TicketState{}
		m.byID.put(id, t)
		m.order = append(m.order, t)
	}
	number := t.Number
	t.Apply(e, m.slas.Lookup)
	t.recordPosition(e.Sequence, pos)
	// Only ticket.created sets the number: indexing it on every event was a map
	// assignment per event, a cache miss on a large model.
	if m.byNumber != nil && t.Number != number && t.Number != "" {
		m.byNumber[t.Number] = t
	}
	return nil
}

// indexNumbers builds the index by number, which Apply keeps up to date once it
// exists. It waits for the first lookup by number, so that a rebuild does not pay for
// an index nobody may use before the next one.
func (m *Tickets) indexNumbers() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byNumber != nil {
		return
	}
	m.byNumber = make(map[string]*TicketState, len(m.order))
	for _, t := range m.order { // creation order: a later ticket wins, as in Apply
		if t.Number != "" {
			m.byNumber[t.Number] = t
		}
	}
}

// ticketIndex finds tickets by ID. Ticket IDs are UUIDs: the index keys each by its 16
// bytes folded into 64 bits, and the ticket's own copy of the 16 bytes confirms the
// match. A lookup then hashes and compares one word in the map's own memory, where a
// string key cost a pointer to follow per probe (a twentieth of a rebuild's time at
// 110 000 tickets) and its string to mark. IDs that are not UUIDs, and the rare UUID
// whose folded key is taken by another ticket, go to a map by string.
type ticketIndex struct {
	folded map[uint64]*TicketState
	others map[string]*TicketState
}

func foldUUID(u uuid.UUID) uint64 {
	return binary.LittleEndian.Uint64(u[:8]) ^ binary.LittleEndian.Uint64(u[8:])
}

func (x *ticketIndex) get(id string) *TicketState {
	if u, ok := parseUUID(id); ok {
		if t := x.folded[foldUUID(u)]; t != nil && t.indexKey == u {
			return t
		}
	}
	return x.others[id]
}

func (x *ticketIndex) put(id string, t *TicketState) {
	if u, ok := parseUUID(id); ok {
		if x.folded == nil {
			x.folded = make(map[uint64]*TicketState)
		}
		k := foldUUID(u)
		if taken := x.folded[k]; taken == nil || taken.indexKey == u {
			t.indexKey = u
			x.folded[k] = t
			return
		}
	}
	if x.others == nil {
		x.others = make(map[string]*TicketState)
	}
	x.others[strings.Clone(id)] = t // not a view of the event's buffer (DecodeEventNoCopy)
}

// parseUUID accepts only the canonical form (36 characters, lower-case hex), so that
// one ticket has one key: uuid.Parse also takes braces, a urn: prefix, no dashes and
// upper case, which would be other IDs of the ticket for anything keyed by string. It
// is written out because it runs for every event of a replay.
func parseUUID(id string) (u uuid.UUID, ok bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return u, false
	}
	for i, at := range [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34} {
		hi, ok1 := lowerHex(id[at])
		lo, ok2 := lowerHex(id[at+1])
		if !ok1 || !ok2 {
			return uuid.UUID{}, false
		}
		u[i] = hi<<4 | lo
	}
	return u, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// LookupSLA resolves an SLA version the model has seen.
func (m *Tickets) LookupSLA(name string, version int) (*domain.SLA, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.slas.Lookup(name, version)
}

// Get returns the summary view of one ticket (by id or number) at instant at: every
// field and metric, without the thread (FoldTicket gives that from the stream).
func (m *Tickets) Get(idOrNumber string, at time.Time) (TicketView, bool) {
	m.mu.RLock()
	t, indexed := m.byID.get(idOrNumber), m.byNumber != nil
	if t == nil && indexed {
		t = m.byNumber[idOrNumber]
	}
	var view TicketView
	if t != nil {
		view = t.View(at, false)
	}
	m.mu.RUnlock()
	if t == nil && !indexed {
		m.indexNumbers()
		return m.Get(idOrNumber, at)
	}
	return view, t != nil
}

// inlinePositions is how many event positions a ticket keeps in its state: most
// tickets have fewer events.
const inlinePositions = 16

// recordPosition notes where the event of sequence seq is. Events come in order (an
// event applied again lands where it was); a position that does not follow the ones
// known is not kept, and EventPositions then knows the ticket no more.
func (t *TicketState) recordPosition(seq, pos uint64) {
	if seq == 0 {
		return // not an event of a stream
	}
	if seq <= inlinePositions {
		t.positions[seq-1] = pos
		return
	}
	switch later := int(seq - inlinePositions - 1); {
	case later < len(t.laterPositions):
		t.laterPositions[later] = pos
	case later == len(t.laterPositions):
		t.laterPositions = append(t.laterPositions, pos)
	}
}

// EventPositions returns the global positions of a ticket's events, in order, when the
// model knows them all, else nil. The detail view and the command handler read the
// events there (eventstore.Store.ReadAt) rather than search the store for them.
func (m *Tickets) EventPositions(id string) []uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := m.byID.get(id)
	if t == nil || t.Version == 0 || t.Version > inlinePositions+uint64(len(t.laterPositions)) {
		return nil
	}
	inline := min(t.Version, inlinePositions)
	return append(slices.Clone(t.positions[:inline]), t.laterPositions[:t.Version-inline]...)
}

// Filter selects tickets in a list. Empty fields do not filter.
type Filter struct {
	Status, Priority, TicketType, Customer, Contact, Lead, Company, Project string
	EmailAccount, Assignee, RaisedBy, Channel, SLA, AgreementStatus         string
	Breached                                                                *bool     // agreement status Failed (true) or not (false)
	DueBefore                                                               time.Time // response_by or resolution_by before this instant
	Limit                                                                   int       // default 50, at most 1000
	Offset                                                                  int
	NewestFirst                                                             bool
}

// Page is one page of a list.
type Page struct {
	Tickets []TicketView `json:"tickets"`
	Total   int          `json:"total"`
	Offset  int          `json:"offset"`
	Limit   int          `json:"limit"`
}

// List returns the tickets matching f, evaluated at instant at, in creation order.
func (m *Tickets) List(f Filter, at time.Time) Page {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 1000)
	m.mu.RLock()
	defer m.mu.RUnlock()
	page := Page{Tickets: []TicketView{}, Offset: f.Offset, Limit: f.Limit}
	n := len(m.order)
	for i := range n {
		t := m.order[i]
		if f.NewestFirst {
			t = m.order[n-1-i]
		}
		if !f.matches(t, at) {
			continue
		}
		if page.Total >= f.Offset && len(page.Tickets) < f.Limit {
			page.Tickets = append(page.Tickets, t.View(at, false))
		}
		page.Total++
	}
	return page
}

func (f *Filter) matches(t *TicketState, at time.Time) bool {
	fields := t.Fields
	eq := func(want, have string) bool { return want == "" || want == have }
	if !eq(f.Status, string(t.Metrics.Status)) || !eq(f.Priority, t.Fields.Priority) || !eq(f.TicketType, fields.TicketType) ||
		!eq(f.Customer, fields.Customer) || !eq(f.Contact, fields.Contact) || !eq(f.Lead, fields.Lead) ||
		!eq(f.Company, fields.Company) || !eq(f.Project, fields.Project) || !eq(f.EmailAccount, fields.EmailAccount) ||
		!eq(f.Channel, string(fields.Channel)) || !eq(f.SLA, t.Metrics.SLAName) ||
		(f.RaisedBy != "" && !strings.EqualFold(f.RaisedBy, fields.RaisedBy)) {
		return false
	}
	if f.Assignee != "" && !contains(t.Assignees, f.Assignee) {
		return false
	}
	if f.AgreementStatus != "" || f.Breached != nil {
		status := t.Metrics.AgreementStatus(at)
		if !eq(f.AgreementStatus, status) || (f.Breached != nil && *f.Breached != (status == domain.AgreementFailed)) {
			return false
		}
	}
	if !f.DueBefore.IsZero() {
		m := &t.Metrics
		due := (m.FirstRespondedOn.IsZero() && !m.ResponseBy.IsZero() && m.ResponseBy.Before(f.DueBefore)) ||
			(m.ResolutionDate.IsZero() && !m.ResolutionByNow().IsZero() && m.ResolutionByNow().Before(f.DueBefore))
		if !due {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TicketsUsing counts tickets whose field ("ticket_type" or "priority") is name.
func (m *Tickets) TicketsUsing(field, name string) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, t := range m.order {
		if (field == "ticket_type" && t.Fields.TicketType == name) || (field == "priority" && t.Fields.Priority == name) {
			n++
		}
	}
	return n
}

// Count is the number of tickets.
func (m *Tickets) Count() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.order)
}

// Snapshot returns every ticket's summary view at instant at, sorted by id (for
// comparisons).
func (m *Tickets) Snapshot(at time.Time) []TicketView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]TicketView, 0, len(m.order))
	for _, t := range m.order {
		out = append(out, t.View(at, false))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// DueDeadlines lists every deadline notification owed at instant now.
func (m *Tickets) DueDeadlines(now time.Time, warnBefore time.Duration) []domain.DueDeadline {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []domain.DueDeadline
	for _, t := range m.order {
		for _, d := range t.DueDeadlines(now, warnBefore) {
			out = append(out, domain.DueDeadline{TicketID: t.ID, RecordDeadline: d})
		}
	}
	return out
}

// DueAutoCloses lists the tickets that have been Replied for at least days days (the
// support settings' auto_close_days; 0 never closes) at instant now.
func (m *Tickets) DueAutoCloses(now time.Time, days int) []domain.DueAutoClose {
	if days <= 0 {
		return nil
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []domain.DueAutoClose
	for _, t := range m.order {
		if t.Metrics.Status == domain.StatusReplied && !now.Before(t.StatusSince.AddDate(0, 0, days)) {
			out = append(out, domain.DueAutoClose{TicketID: t.ID, RepliedSince: t.StatusSince})
		}
	}
	return out
}
