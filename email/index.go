package email

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ticketcore/ticketcore/domain"
)

// Index is the email channel's read model, a projection of the ticket streams fed by
// the projection runner like every other:
//
//   - message ID -> ticket: every thread message ID (an email's is its Message-ID),
//     and the Message-IDs of the mail we sent (email.queued), for threading by
//     In-Reply-To and References, for recognising a message delivered twice, and for
//     matching a bounce to its ticket;
//   - ticket number -> ticket, and each ticket's participants (requester, senders,
//     recipients and CCs), for the [TKT-...] subject token;
//   - automatic replies per recipient with their instants, for the rate limit;
//   - the outbox: replies not yet handed to the relay, their queued headers and
//     their failed attempts, which is all the outbox worker's progress.
//
// Everything is derived from events, so it is the same after a restart or in another
// process.
type Index struct {
	mu          sync.RWMutex
	pos         uint64
	byMsg       map[string]string // message ID -> ticket ID
	byNumber    map[string]string
	tickets     map[string]*ticketEntry
	autoReplies map[string][]time.Time // recipient -> instants of auto replies queued to it
	pending     map[string]*OutboxItem // message ID -> outbound mail not done yet
	notify      chan struct{}
}

type threadRef struct {
	ID       string
	RFC      string // the Message-ID it travelled with, when known
	Incoming bool
}

type ticketEntry struct {
	ID, Number, Subject, Requester, Account string
	Split                                   bool // split off another ticket
	Participants                            map[string]bool
	Thread                                  []threadRef
	// Failing are recipients a bounce reported, with the status.
	Failing map[string]string
}

// OutboxItem is an outbound mail of the outbox.
type OutboxItem struct {
	TicketID  string
	MessageID string
	// Reply is the agent reply (nil for an automatic reply); ReplyAt when it was
	// recorded.
	Reply   *domain.ReplySent
	ReplyAt time.Time
	// Queued holds the headers once queued; QueuedAt when.
	Queued   *domain.EmailQueued
	QueuedAt time.Time
	// Attempts counts the failed attempts; RetryAt is when the next one is due.
	Attempts int
	RetryAt  time.Time
	LastErr  string
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	ix := &Index{notify: make(chan struct{}, 1)}
	ix.Reset()
	return ix
}

func (ix *Index) Name() string { return "email-index" }

func (ix *Index) Reset() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.pos = 0
	ix.byMsg = make(map[string]string)
	ix.byNumber = make(map[string]string)
	ix.tickets = make(map[string]*ticketEntry)
	ix.autoReplies = make(map[string][]time.Time)
	ix.pending = make(map[string]*OutboxItem)
}

func (ix *Index) Position() uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.pos
}

// Changed is signalled (without blocking) when the outbox may have new work.
func (ix *Index) Changed() <-chan struct{} { return ix.notify }

func (ix *Index) poke() {
	select {
	case ix.notify <- struct{}{}:
	default:
	}
}

// Apply folds one event.
func (ix *Index) Apply(e domain.Event, pos uint64) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if pos <= ix.pos {
		return nil
	}
	ix.pos = pos
	id := domain.TicketIDFromStream(e.Stream)
	if id == "" {
		return nil
	}
	t := ix.tickets[id]
	if t == nil {
		if _, ok := e.Payload.(domain.TicketCreated); !ok {
			return nil
		}
		t = &ticketEntry{ID: id, Participants: map[string]bool{}}
		ix.tickets[id] = t
	}
	switch p := e.Payload.(type) {
	case domain.TicketCreated:
		t.Number, t.Subject, t.Requester, t.Account = p.Number, p.Subject, lower(p.RaisedBy), lower(p.EmailAccount)
		t.Split = p.SplitFrom != nil
		t.Participants[t.Requester] = true
		ix.byNumber[p.Number] = id
		for _, m := range p.ThreadMessages(e.OccurredAt) {
			ix.addMessage(t, threadRef{ID: m.ID, Incoming: m.Direction == domain.Incoming})
		}
		for _, m := range p.Messages {
			t.Participants[lower(m.From)] = m.From != ""
		}
	case domain.CustomerMessageReceived:
		ix.addMessage(t, threadRef{ID: p.MessageID, Incoming: true})
		t.Participants[lower(p.From)] = true
	case domain.ReplySent:
		ix.addMessage(t, threadRef{ID: p.MessageID})
		for _, a := range slices.Concat(p.To, p.CC) {
			t.Participants[lower(a)] = true
		}
		if t.Account != "" { // a ticket with no email account is not answered by mail
			ix.pending[p.MessageID] = &OutboxItem{TicketID: id, MessageID: p.MessageID, Reply: &p, ReplyAt: e.OccurredAt}
			ix.poke()
		}
	case domain.TicketSplit:
		if k := slices.IndexFunc(t.Thread, func(r threadRef) bool { return r.ID == p.FromMessage }); k >= 0 {
			t.Thread = t.Thread[:k:k]
		}
	case domain.EmailReceived:
		for _, a := range slices.Concat(p.To, p.CC, []string{p.From}) {
			t.Participants[lower(a)] = true
		}
	case domain.EmailQueued:
		ix.byMsg[p.RFCMessageID] = id
		ix.byMsg[p.MessageID] = id
		for i := range t.Thread {
			if t.Thread[i].ID == p.MessageID {
				t.Thread[i].RFC = p.RFCMessageID
			}
		}
		if p.Kind == domain.EmailKindAutoReply {
			for _, to := range p.To {
				// Only the last day is kept: the rate limit looks back an hour.
				recent := slices.DeleteFunc(ix.autoReplies[lower(to)], func(at time.Time) bool {
					return at.Before(e.OccurredAt.Add(-24 * time.Hour))
				})
				ix.autoReplies[lower(to)] = append(recent, e.OccurredAt)
			}
		}
		item := ix.pending[p.MessageID]
		if item == nil {
			item = &OutboxItem{TicketID: id, MessageID: p.MessageID}
			ix.pending[p.MessageID] = item
		}
		q := p
		item.Queued, item.QueuedAt = &q, e.OccurredAt
		ix.poke()
	case domain.EmailSent:
		delete(ix.pending, p.MessageID)
	case domain.EmailFailed:
		if item := ix.pending[p.MessageID]; item != nil {
			if p.Permanent {
				delete(ix.pending, p.MessageID)
			} else {
				item.Attempts, item.RetryAt, item.LastErr = p.Attempt, p.RetryAt, p.Reason
			}
		}
		ix.poke()
	case domain.DeliveryBounced:
		if t.Failing == nil {
			t.Failing = map[string]string{}
		}
		t.Failing[lower(p.Recipient)] = p.Status
	}
	delete(t.Participants, "")
	return nil
}

func (ix *Index) addMessage(t *ticketEntry, r threadRef) {
	if r.ID == "" {
		return
	}
	t.Thread = append(t.Thread, r)
	ix.byMsg[r.ID] = t.ID
}

func lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// TicketByMessage finds the ticket a message ID (bare, as in a Message-ID header)
// belongs to. Our own Message-IDs are <thread message id@domain>, so the part before
// the @ is tried too when the whole ID is unknown.
func (ix *Index) TicketByMessage(id string) (string, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if t, ok := ix.byMsg[id]; ok {
		return t, true
	}
	if local, _, ok := strings.Cut(id, "@"); ok && uuid.Validate(local) == nil {
		if t, ok := ix.byMsg[local]; ok {
			return t, true
		}
	}
	return "", false
}

// TicketByNumber finds a ticket by its number.
func (ix *Index) TicketByNumber(number string) (string, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	t, ok := ix.byNumber[number]
	return t, ok
}

// TicketInfo is what the email channel knows of a ticket.
type TicketInfo struct {
	ID, Number, Subject, Requester, Account string
	// Split is true for a ticket split off another (its first message did not open it).
	Split bool
	// Thread is the ticket's messages in order: ID and the Message-ID each travelled
	// with (ours are <id@domain> until queued with another).
	Thread []ThreadMessage
	// Failing are recipients reported failing by bounces, with their status.
	Failing map[string]string
}

// ThreadMessage is one message of TicketInfo.Thread.
type ThreadMessage struct {
	ID, RFCMessageID string
	Incoming         bool
}

// Ticket returns what the index knows of a ticket.
func (ix *Index) Ticket(id string) (TicketInfo, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	t := ix.tickets[id]
	if t == nil {
		return TicketInfo{}, false
	}
	info := TicketInfo{ID: t.ID, Number: t.Number, Subject: t.Subject, Requester: t.Requester, Account: t.Account, Split: t.Split}
	for _, r := range t.Thread {
		info.Thread = append(info.Thread, ThreadMessage{ID: r.ID, RFCMessageID: r.RFC, Incoming: r.Incoming})
	}
	if len(t.Failing) > 0 {
		info.Failing = make(map[string]string, len(t.Failing))
		for k, v := range t.Failing {
			info.Failing[k] = v
		}
	}
	return info, true
}

// IsParticipant reports whether address wrote to the ticket, was written to, or was
// copied on it (or is its requester).
func (ix *Index) IsParticipant(ticketID, address string) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	t := ix.tickets[ticketID]
	return t != nil && t.Participants[lower(address)]
}

// AutoRepliesSince counts the automatic replies queued to address at or after since.
func (ix *Index) AutoRepliesSince(address string, since time.Time) int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := 0
	for _, at := range ix.autoReplies[lower(address)] {
		if !at.Before(since) {
			n++
		}
	}
	return n
}

// Pending lists the outbox: mail not yet sent nor failed for good, oldest first.
func (ix *Index) Pending() []OutboxItem {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make([]OutboxItem, 0, len(ix.pending))
	for _, item := range ix.pending {
		out = append(out, *item)
	}
	slices.SortFunc(out, func(a, b OutboxItem) int {
		return a.since().Compare(b.since())
	})
	return out
}

func (i OutboxItem) since() time.Time {
	if i.Reply != nil {
		return i.ReplyAt
	}
	return i.QueuedAt
}
