// Package commands holds the application handlers: load an aggregate, decide, append
// with optimistic concurrency. Transports (HTTP, NATS, CLI) call these handlers and
// nothing else writes events.
package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
)

// maxAttempts bounds how often a command is decided again after a concurrency
// conflict before the conflict is returned to the caller.
const maxAttempts = 10

// Meta is what a transport knows of the command it forwards.
type Meta struct {
	CommandID     string // idempotency key; generated when empty
	Actor         string
	CorrelationID string
	CausationID   string
	// ExpectedVersion, when set, refuses the command unless the ticket is at that
	// version (HTTP If-Match).
	ExpectedVersion *uint64

	// freshID is true when the handler generated CommandID: such a command cannot be a
	// retry of an earlier one.
	freshID bool
}

// Result is the answer to an accepted command.
type Result struct {
	TicketID string `json:"id"`
	Number   string `json:"number"`
	Version  uint64 `json:"version"`
	// Position is the global position the projections must reach to show the command's
	// effect (read-your-writes).
	Position uint64 `json:"position"`
	// Duplicate is true when the command had already been applied and nothing was added.
	Duplicate bool           `json:"duplicate,omitempty"`
	Events    []domain.Event `json:"-"`
	// History is the ticket's stream up to just before Events, when the handler read it
	// to decide the command (the ticket's decision state was not cached); nil
	// otherwise. The HTTP API folds its answer from it rather than read it again.
	History []domain.Event `json:"-"`
}

// VersionMismatchError is returned when Meta.ExpectedVersion does not match; it wraps
// domain.ErrConflict.
type VersionMismatchError struct {
	Expected, Actual uint64
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("ticket is at version %d, not %d", e.Actual, e.Expected)
}

func (e *VersionMismatchError) Unwrap() error { return domain.ErrConflict }

// Options tune a Handler.
type Options struct {
	Clock       func() time.Time // defaults to time.Now
	CacheSize   int              // ticket states kept in memory (default 200000)
	NumberBlock uint64           // ticket numbers reserved at a time (default 20)
	Owner       string           // this process's name in number reservations
	Logger      *slog.Logger
	// EventPositions, when set, says where a read model saw a ticket's events (nil when
	// it does not know them all). The first read of a ticket for a command reads them
	// there (eventstore.Store.ReadAt) rather than make the store search for them. A
	// read model behind the store costs no correctness: an append on the state read
	// meets the revision check, a refusal is decided again, and both read the stream.
	EventPositions func(ticketID string) []uint64
}

// Handler executes commands.
type Handler struct {
	store   eventstore.Store
	ref     *Catalogues
	numbers *Numbers
	cache   *stateCache
	now     func() time.Time
	log     *slog.Logger
	// positions is Options.EventPositions.
	positions func(ticketID string) []uint64
}

// NewHandler wires a handler to a store; it loads the reference data.
func NewHandler(ctx context.Context, store eventstore.Store, opts Options) (*Handler, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 200_000
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ref, err := LoadCatalogues(ctx, store)
	if err != nil {
		return nil, err
	}
	return &Handler{
		store:     store,
		ref:       ref,
		numbers:   NewNumbers(store, opts.NumberBlock, opts.Owner, opts.Clock),
		cache:     newStateCache(opts.CacheSize),
		now:       opts.Clock,
		log:       opts.Logger,
		positions: opts.EventPositions,
	}, nil
}

// Catalogues gives access to the reference data the handler decides with.
func (h *Handler) Catalogues() *Catalogues { return h.ref }

// Store is the event store the handler writes to.
func (h *Handler) Store() eventstore.Store { return h.store }

// CreateTicket opens a ticket. Its ID derives from the command ID unless given, so a
// retried creation finds the ticket it created the first time.
func (h *Handler) CreateTicket(ctx context.Context, cmd domain.CreateTicket, meta Meta) (Result, error) {
	meta = h.withDefaults(meta)
	if cmd.TicketID == "" {
		cmd.TicketID = DeriveID(meta.CommandID, "ticket")
	} else if _, err := uuid.Parse(cmd.TicketID); err != nil {
		return Result{}, domain.Invalid("ticket_id", "must be a UUID")
	}
	if cmd.OpeningMessageID == "" {
		cmd.OpeningMessageID = DeriveID(meta.CommandID, "opening-message")
	}
	return h.execute(ctx, cmd.TicketID, cmd, meta)
}

// Execute runs a command on an existing ticket.
func (h *Handler) Execute(ctx context.Context, ticketID string, cmd domain.TicketCommand, meta Meta) (Result, error) {
	if _, err := uuid.Parse(ticketID); err != nil {
		return Result{}, fmt.Errorf("ticket %q: %w", ticketID, domain.ErrNotFound)
	}
	meta = h.withDefaults(meta)
	switch c := cmd.(type) {
	case domain.CreateTicket:
		c.TicketID = ticketID
		return h.CreateTicket(ctx, c, meta)
	case domain.SplitTicket:
		return h.split(ctx, ticketID, c, meta)
	case domain.ReceiveCustomerMessage:
		if c.MessageID == "" {
			c.MessageID = DeriveID(meta.CommandID, "message")
		}
		cmd = c
	case domain.SendReply:
		if c.MessageID == "" {
			c.MessageID = DeriveID(meta.CommandID, "message")
		}
		cmd = c
	case domain.AddComment:
		if c.CommentID == "" {
			c.CommentID = DeriveID(meta.CommandID, "comment")
		}
		cmd = c
	}
	return h.execute(ctx, ticketID, cmd, meta)
}

func (h *Handler) withDefaults(meta Meta) Meta {
	if meta.CommandID == "" {
		meta.CommandID, meta.freshID = uuid.NewString(), true
	}
	if meta.CorrelationID == "" {
		meta.CorrelationID = meta.CommandID
	}
	if meta.Actor == "" {
		meta.Actor = "system"
	}
	return meta
}

// execute is the load-decide-append loop. The ticket's state stays cached between
// commands; a stale cache is caught by the store's revision check and reloaded.
func (h *Handler) execute(ctx context.Context, ticketID string, cmd domain.TicketCommand, meta Meta) (Result, error) {
	stream := domain.TicketStream(ticketID)
	entry := h.cache.entry(ticketID)
	entry.mu.Lock()
	defer entry.mu.Unlock()
	var history []domain.Event // the stream as read to decide, when this call read it
	for attempt := 1; ; attempt++ {
		read := false // whether this attempt decides on the whole stream as just read
		if !entry.loaded {
			if _, creating := cmd.(domain.CreateTicket); creating && meta.freshID && attempt == 1 {
				// A creation under a command ID generated here cannot be a retry, so its
				// ticket's stream is new: no need to read it (the NoStream check guards).
				entry.state, entry.revision, entry.loaded = domain.Ticket{}, eventstore.NoStream, true
			} else {
				var err error
				// After a conflict or a refusal, the stream itself: the positions a read
				// model knows may be what made the state stale.
				if history, read, err = h.load(ctx, ticketID, entry, attempt == 1); err != nil {
					return Result{}, err
				}
			}
		}
		t := &entry.state
		if v, ok := t.Commands.Version(meta.CommandID); ok {
			pos, err := h.store.LastPosition(ctx)
			if err != nil {
				return Result{}, mapStoreError(err)
			}
			return Result{TicketID: ticketID, Number: t.Number, Version: v, Position: pos, Duplicate: true}, nil
		}
		// A refusal on a state this call did not read whole may come from a cached state
		// that another process has left behind (or a read model's stale positions), and
		// a refusal never reaches the store's revision check: it is decided again on the
		// stream. So are a version the client saw elsewhere and the refusals that depend
		// on the ticket's state (refusedOnState).
		if meta.ExpectedVersion != nil && *meta.ExpectedVersion != t.Version {
			if !read {
				entry.loaded = false
				continue
			}
			return Result{}, &VersionMismatchError{Expected: *meta.ExpectedVersion, Actual: t.Version}
		}
		now := h.now()
		decision := domain.Decision{Now: now, Ref: h.ref.Reference()}
		payloads, err := h.decide(ctx, t, cmd, decision)
		if err != nil {
			if !read && refusedOnState(err) {
				entry.loaded = false
				continue
			}
			return Result{}, fmt.Errorf("%s: %w", cmd.CommandName(), err)
		}
		dm := domain.Metadata{CommandID: meta.CommandID, Actor: meta.Actor, CorrelationID: meta.CorrelationID, CausationID: meta.CausationID, At: now}
		events, err := domain.NewEvents(stream, t.Version, t.LastHash, dm, func(i int) string {
			return DeriveID(meta.CommandID, stream, strconv.Itoa(i))
		}, payloads)
		if err != nil {
			return Result{}, err
		}
		data, err := encode(events)
		if err != nil {
			return Result{}, err
		}
		res, err := h.store.Append(ctx, stream, entry.revision, data)
		if err == nil {
			for _, e := range events {
				domain.EvolveTicket(t, e)
			}
			entry.revision = res.Revision
			return Result{TicketID: ticketID, Number: t.Number, Version: t.Version, Position: res.LastPosition, Events: events, History: history}, nil
		}
		if (errors.Is(err, eventstore.ErrConflict) || errors.Is(err, eventstore.ErrDuplicate)) && attempt < maxAttempts {
			// Someone else wrote (or our earlier attempt did): decide again on fresh state.
			entry.loaded = false
			if errors.Is(err, eventstore.ErrConflict) {
				if err := conflictBackoff(ctx, attempt); err != nil {
					return Result{}, fmt.Errorf("%s: %w", cmd.CommandName(), err)
				}
			}
			continue
		}
		entry.loaded = false
		return Result{}, fmt.Errorf("%s: %w", cmd.CommandName(), mapStoreError(err))
	}
}

// conflictBackoff pauses before a command that lost a race is decided again. The
// winner's cached state is warm, so it writes its next command at once, while the loser
// must re-read the stream first: retrying at once loses again for as long as the other
// process has commands queued for the ticket. A short, growing, random pause lets such
// a burst pass instead of failing the command after maxAttempts straight defeats.
func conflictBackoff(ctx context.Context, attempt int) error {
	ceiling := min(time.Millisecond<<attempt, 100*time.Millisecond)
	timer := time.NewTimer(ceiling/2 + rand.N(ceiling/2))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// decide runs the decider; a creation takes its ticket number only once the command
// is known to be valid, so refused commands do not consume numbers.
func (h *Handler) decide(ctx context.Context, t *domain.Ticket, cmd domain.TicketCommand, d domain.Decision) ([]domain.Payload, error) {
	const pending = "pending"
	switch c := cmd.(type) {
	case domain.CreateTicket:
		if c.Number != "" {
			break
		}
		c.Number = pending
		if _, err := domain.DecideTicket(t, c, d); err != nil {
			return nil, err
		}
		n, err := h.numbers.Next(ctx, d.Now)
		if err != nil {
			return nil, err
		}
		c.Number = n
		cmd = c
	case domain.SplitTicket:
		if c.NewNumber != "" {
			break
		}
		c.NewNumber = pending
		if _, err := domain.DecideTicket(t, c, d); err != nil {
			return nil, err
		}
		n, err := h.numbers.Next(ctx, d.Now)
		if err != nil {
			return nil, err
		}
		c.NewNumber = n
		cmd = c
	}
	return domain.DecideTicket(t, cmd, d)
}

// load reads a ticket's stream into its cache entry: at the positions a read model
// knows when atKnown and Options.EventPositions has them, else the whole stream, and
// reports which (whole).
func (h *Handler) load(ctx context.Context, ticketID string, entry *cacheEntry, atKnown bool) (events []domain.Event, whole bool, err error) {
	stream := domain.TicketStream(ticketID)
	var rev eventstore.Revision
	if positions := h.knownPositions(ticketID, atKnown); positions != nil {
		events, rev, err = loadAt(ctx, h.store, stream, positions)
	}
	if events == nil || err != nil {
		// Nothing known, or the read model's positions did not hold the ticket's events.
		if events, rev, err = loadStream(ctx, h.store, stream); err != nil {
			return nil, false, mapStoreError(err)
		}
		whole = true
	}
	entry.state = domain.Ticket{}
	for _, e := range events {
		domain.EvolveTicket(&entry.state, e)
	}
	entry.revision, entry.loaded = rev, true
	return events, whole, nil
}

func (h *Handler) knownPositions(ticketID string, wanted bool) []uint64 {
	if !wanted || h.positions == nil {
		return nil
	}
	return h.positions(ticketID)
}

// Observe folds an event read from the store, in the global order at position pos,
// into the decision state this handler keeps for its ticket, if it keeps one. ticketd
// passes it every event its projections read, so that what other processes append
// reaches the states cached here before the next command on them, which then neither
// meets a conflict nor reads the stream again. Tickets not cached stay so: filling the
// cache from the catch-up at start held 300 MB more on a store of 110 000 tickets, and
// saved no read to the HTTP API, whose answers read the ticket's history anyway.
//
// An event already folded (this process's own) changes nothing. An event that does not
// follow the cached state (some were missed) drops the state: the next command reads
// the stream. An entry a command holds is left alone, since that command's append
// checks the revision anyway.
func (h *Handler) Observe(e domain.Event, pos uint64) {
	id := domain.TicketIDFromStream(e.Stream)
	if id == "" {
		return
	}
	entry := h.cache.cached(id)
	if entry == nil || !entry.mu.TryLock() {
		return
	}
	defer entry.mu.Unlock()
	switch {
	case entry.loaded && e.Sequence <= entry.state.Version:
		return
	case entry.loaded && e.Sequence == entry.state.Version+1:
	case e.Sequence == 1:
		entry.state = domain.Ticket{}
	default:
		entry.state, entry.loaded = domain.Ticket{}, false
		return
	}
	e.Hash = strings.Clone(e.Hash) // the state keeps it, and e may be a view of a read buffer
	domain.EvolveTicket(&entry.state, e)
	entry.revision, entry.loaded = h.store.RevisionAt(pos, e.Sequence), true
}

// LoadTicket returns the decision state of a ticket (from the cache when warm).
func (h *Handler) LoadTicket(ctx context.Context, ticketID string) (domain.Ticket, error) {
	entry := h.cache.entry(ticketID)
	entry.mu.Lock()
	defer entry.mu.Unlock()
	if !entry.loaded {
		if _, _, err := h.load(ctx, ticketID, entry, false); err != nil {
			return domain.Ticket{}, err
		}
	}
	return entry.state, nil
}

// split moves messages to a new ticket: first the decision on the source ticket
// (recorded with the new ticket's id and number), then the new ticket's creation. Both
// steps are idempotent under the command ID, so a retry after a failure between them
// completes the split.
func (h *Handler) split(ctx context.Context, sourceID string, cmd domain.SplitTicket, meta Meta) (Result, error) {
	cmd.NewTicketID = DeriveID(meta.CommandID, "split")
	if _, err := h.execute(ctx, sourceID, cmd, meta); err != nil {
		return Result{}, err
	}
	events, _, err := loadStream(ctx, h.store, domain.TicketStream(sourceID))
	if err != nil {
		return Result{}, mapStoreError(err)
	}
	var source domain.Ticket
	var split *domain.TicketSplit
	var moved []domain.Message
	for _, e := range events {
		if s, ok := e.Payload.(domain.TicketSplit); ok && e.CommandID == meta.CommandID {
			split = &s
			moved = collectMessages(events, s.MovedMessages)
			break
		}
		domain.EvolveTicket(&source, e)
	}
	if split == nil {
		return Result{}, fmt.Errorf("split: the split event of command %s is missing", meta.CommandID)
	}
	f := source.Fields
	f.Subject = split.Subject
	f.Description = ""
	create := domain.CreateTicket{
		TicketID:         split.NewTicketID,
		Number:           split.NewNumber,
		TicketFieldsData: f,
		SplitFrom:        &domain.SplitOrigin{TicketID: sourceID, Number: source.Number, FromMessage: split.FromMessage},
		Messages:         moved,
	}
	return h.execute(ctx, split.NewTicketID, create, meta)
}

// collectMessages copies the content of the given thread messages from a stream.
func collectMessages(events []domain.Event, ids []string) []domain.Message {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	var out []domain.Message
	for _, e := range events {
		at := e.OccurredAt.Format(time.RFC3339Nano)
		switch p := e.Payload.(type) {
		case domain.TicketCreated:
			for _, m := range p.Messages {
				if want[m.MessageID] {
					out = append(out, m)
				}
			}
		case domain.CustomerMessageReceived:
			if want[p.MessageID] {
				out = append(out, domain.Message{MessageID: p.MessageID, Direction: domain.Incoming, At: at, From: p.From,
					Subject: p.Subject, Body: p.Body, HTMLBody: p.HTMLBody, Attachments: p.Attachments})
			}
		case domain.ReplySent:
			if want[p.MessageID] {
				out = append(out, domain.Message{MessageID: p.MessageID, Direction: domain.Outgoing, At: at,
					Subject: p.Subject, Body: p.Body, HTMLBody: p.HTMLBody, Attachments: p.Attachments})
			}
		}
	}
	return out
}

// refusedOnState reports a refusal that depends on the state of the aggregate rather
// than on the command alone (an invalid transition, something not found, a conflict
// such as a name already taken): decided on a state that may be stale, it is decided
// again on the stream before it is returned.
func refusedOnState(err error) bool {
	return errors.Is(err, domain.ErrInvalidTransition) || errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrConflict)
}

// mapStoreError turns store errors into domain errors where the caller can act on them.
func mapStoreError(err error) error {
	switch {
	case errors.Is(err, eventstore.ErrConflict):
		return fmt.Errorf("%w: %w", domain.ErrConflict, err)
	case errors.Is(err, eventstore.ErrInvalid):
		return fmt.Errorf("%w: %w", domain.ErrValidation, err)
	}
	return err
}

// TicketEventsAt reads the events of a ticket stored at the given global positions (a
// read model knows them): see eventstore.Store.ReadAt.
func (h *Handler) TicketEventsAt(ctx context.Context, ticketID string, positions []uint64) ([]domain.Event, error) {
	stream, err := ticketStream(ticketID)
	if err != nil {
		return nil, err
	}
	events, _, err := loadAt(ctx, h.store, stream, positions)
	if err != nil {
		return nil, mapStoreError(err)
	}
	return events, nil
}

// TicketLastEventID is the ID of the newest event of a ticket's stream in the store
// ("" for an unknown ticket): a reader holding the ticket's history checks with it
// that the history is current.
func (h *Handler) TicketLastEventID(ctx context.Context, ticketID string) (string, error) {
	stream, err := ticketStream(ticketID)
	if err != nil {
		return "", err
	}
	id, err := h.store.LastEventID(ctx, stream)
	if err != nil {
		return "", mapStoreError(err)
	}
	return id, nil
}

// ticketStream is the stream of a ticket ID given by a caller; an ID that is not a
// UUID names no ticket.
func ticketStream(ticketID string) (string, error) {
	if _, err := uuid.Parse(ticketID); err != nil {
		return "", fmt.Errorf("ticket %q: %w", ticketID, domain.ErrNotFound)
	}
	return domain.TicketStream(ticketID), nil
}

// TicketEvents reads a ticket's whole history from the store.
func (h *Handler) TicketEvents(ctx context.Context, ticketID string) ([]domain.Event, error) {
	stream, err := ticketStream(ticketID)
	if err != nil {
		return nil, err
	}
	events, _, err := loadStream(ctx, h.store, stream)
	if err != nil {
		return nil, mapStoreError(err)
	}
	return events, nil
}
