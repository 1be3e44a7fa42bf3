package domain

import (
	"crypto/sha256"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on free text, so one command cannot bloat a stream.
const (
	MaxSubjectLen = 500
	MaxBodyLen    = 1 << 20
	MaxNameLen    = 200
)

// MessageRef is what the decider needs to know of a thread message.
type MessageRef struct {
	ID        string
	Direction Direction
	At        time.Time
}

// Ticket is the decision state of one ticket: what Decide needs, folded by Evolve.
// Read models keep their own, richer state.
type Ticket struct {
	ID          string
	Number      string
	Version     uint64
	LastHash    string
	Fields      TicketFieldsData
	Status      Status
	StatusSince time.Time
	SLA         SLASelection
	Messages    []MessageRef
	Assignees   []string
	SplitFrom   *SplitOrigin
	// Commands are the commands already applied, so that a retried command returns its
	// first result and adds nothing.
	Commands AppliedCommands
}

// AppliedCommands maps the IDs of the commands applied to a ticket to the version each
// produced. It keeps a 128-bit digest of each ID in a pointer-free slice rather than a
// map of strings: the handler caches a decision state per ticket for the ticket's whole
// life, and the garbage collector marks every pointer of that cache on every cycle,
// while a slice without pointers costs it nothing. A ticket has tens of commands, so
// a scan is as fast as a map lookup.
type AppliedCommands []appliedCommand

type appliedCommand struct {
	digest  [16]byte
	version uint64
}

func commandDigest(id string) [16]byte {
	// Through a stack buffer: []byte(id) would be an allocation per call, twice per
	// command (the retry check, then the fold).
	var buf [64]byte
	sum := sha256.Sum256(append(buf[:0], id...))
	return [16]byte(sum[:16])
}

// Version is the ticket version the command produced, if it was applied.
func (a AppliedCommands) Version(commandID string) (uint64, bool) {
	if i := a.index(commandDigest(commandID)); i >= 0 {
		return a[i].version, true
	}
	return 0, false
}

// record notes that the command produced version v (the last of its events wins).
func (a *AppliedCommands) record(commandID string, v uint64) {
	d := commandDigest(commandID)
	if i := a.index(d); i >= 0 {
		(*a)[i].version = v
		return
	}
	*a = append(*a, appliedCommand{digest: d, version: v})
}

// index is the position of the command with digest d, or -1; recent commands first.
func (a AppliedCommands) index(d [16]byte) int {
	for i := len(a) - 1; i >= 0; i-- {
		if a[i].digest == d {
			return i
		}
	}
	return -1
}

// Exists reports whether the ticket has been created.
func (t *Ticket) Exists() bool { return t.Version > 0 }

// SelectionFields are the ticket fields an SLA condition sees.
func (f TicketFieldsData) SelectionFields() TicketFields {
	return TicketFields{
		"ticket_type":    f.TicketType,
		"priority":       f.Priority,
		"customer":       f.Customer,
		"customer_group": f.CustomerGroup,
		"territory":      f.Territory,
		"company":        f.Company,
		"project":        f.Project,
		"channel":        string(f.Channel),
		"raised_by":      f.RaisedBy,
		"contact":        f.Contact,
		"lead":           f.Lead,
		"email_account":  f.EmailAccount,
		"subject":        f.Subject,
	}
}

// VersionedSLA is an SLA definition with the version of the catalogue entry it came from.
type VersionedSLA struct {
	SLA     *SLA
	Version int
}

// Reference is the reference data a ticket decision reads. Implementations are
// in-memory snapshots, so deciding stays free of I/O.
type Reference interface {
	PriorityExists(name string) bool
	TicketTypeExists(name string) bool
	Settings() SupportSettings
	SLAs() []VersionedSLA
}

// Decision is the context of one decision.
type Decision struct {
	Now time.Time
	Ref Reference
}

// DecideTicket decides what a command means for a ticket: the events to record, or
// a typed error and no event.
func DecideTicket(t *Ticket, cmd TicketCommand, d Decision) ([]Payload, error) {
	if c, ok := cmd.(CreateTicket); ok {
		return decideCreate(t, c, d)
	}
	if !t.Exists() {
		return nil, fmt.Errorf("ticket: %w", ErrNotFound)
	}
	if c, ok := cmd.(ticketDecider); ok { // commands kept in their own files (assignment.go, unreplied.go)
		return c.decideTicket(t, d)
	}
	switch c := cmd.(type) {
	case ReceiveCustomerMessage:
		return decideCustomerMessage(t, c)
	case SendReply:
		return decideReply(t, c)
	case AddComment:
		if err := requireText("body", c.Body, MaxBodyLen); err != nil {
			return nil, err
		}
		return []Payload{CommentAdded{CommentID: c.CommentID, Body: c.Body}}, nil
	case HoldTicket:
		if err := t.requireStatus("put on hold", StatusOpen, StatusReplied); err != nil {
			return nil, err
		}
		return []Payload{PutOnHold{Reason: c.Reason}}, nil
	case ResolveTicket:
		if err := t.requireStatus("resolve", StatusOpen, StatusReplied, StatusOnHold); err != nil {
			return nil, err
		}
		return []Payload{TicketResolved{ResolutionDetails: c.ResolutionDetails}}, nil
	case CloseTicket:
		return decideClose(t, c, d)
	case ReopenTicket:
		if err := t.requireStatus("reopen", StatusResolved, StatusClosed); err != nil {
			return nil, err
		}
		return []Payload{TicketReopened{Reason: c.Reason}}, nil
	case SplitTicket:
		return decideSplit(t, c)
	case ChangePriority:
		return decideChangePriority(t, c, d)
	case ChangeType:
		return decideChangeType(t, c, d)
	case AssignTicket:
		if err := requireName("assignee", c.Assignee); err != nil {
			return nil, err
		}
		if slices.Contains(t.Assignees, c.Assignee) {
			return nil, fmt.Errorf("%s is already assigned: %w", c.Assignee, ErrConflict)
		}
		return []Payload{TicketAssigned{Assignee: c.Assignee}}, nil
	case UnassignTicket:
		if !slices.Contains(t.Assignees, c.Assignee) {
			return nil, Invalid("assignee", "%q is not assigned to this ticket", c.Assignee)
		}
		return []Payload{TicketUnassigned{Assignee: c.Assignee}}, nil
	case ResetSLA:
		return decideResetSLA(t, c, d)
	case RecordDeadline:
		if c.Kind != DeadlineResponse && c.Kind != DeadlineResolution {
			return nil, Invalid("kind", "must be response or resolution")
		}
		if c.Warning {
			return []Payload{SLADeadlineApproaching{Kind: c.Kind, Deadline: c.Deadline.UTC(), CycleStart: c.CycleStart.UTC(), SLA: c.SLA, SLAVersion: c.SLAVersion, WarnSeconds: c.WarnSeconds}}, nil
		}
		return []Payload{SLADeadlineMissed{Kind: c.Kind, Deadline: c.Deadline.UTC(), CycleStart: c.CycleStart.UTC(), SLA: c.SLA, SLAVersion: c.SLAVersion}}, nil
	}
	if c, ok := cmd.(emailCommand); ok {
		return c.decideEmail(t) // domain/email.go
	}
	return nil, Invalid("command", "unknown command %T", cmd)
}

func (t *Ticket) requireStatus(action string, allowed ...Status) error {
	if slices.Contains(allowed, t.Status) {
		return nil
	}
	return &TransitionError{Action: action, From: t.Status}
}

func decideCreate(t *Ticket, c CreateTicket, d Decision) ([]Payload, error) {
	if t.Exists() {
		return nil, fmt.Errorf("ticket %s already exists: %w", t.ID, ErrConflict)
	}
	var v ValidationError
	f := c.TicketFieldsData
	if strings.TrimSpace(f.Subject) == "" {
		v.Add("subject", "is required")
	} else if utf8.RuneCountInString(f.Subject) > MaxSubjectLen {
		v.Add("subject", "is longer than %d characters", MaxSubjectLen)
	}
	if len(f.Description) > MaxBodyLen {
		v.Add("description", "is larger than %d bytes", MaxBodyLen)
	}
	if f.RaisedBy == "" {
		v.Add("raised_by", "is required")
	} else if !ValidEmail(f.RaisedBy) {
		v.Add("raised_by", "%q is not a valid email address", f.RaisedBy)
	}
	if !f.Channel.Valid() {
		v.Add("channel", "must be one of email, portal, api, manual")
	}
	if f.Priority != "" && !d.Ref.PriorityExists(f.Priority) {
		v.Add("priority", "unknown priority %q", f.Priority)
	}
	if f.TicketType != "" && !d.Ref.TicketTypeExists(f.TicketType) {
		v.Add("ticket_type", "unknown ticket type %q", f.TicketType)
	}
	for _, field := range []struct{ name, value string }{
		{"customer", f.Customer}, {"customer_group", f.CustomerGroup}, {"territory", f.Territory},
		{"contact", f.Contact}, {"lead", f.Lead}, {"company", f.Company}, {"project", f.Project},
		{"email_account", f.EmailAccount},
	} {
		if utf8.RuneCountInString(field.value) > MaxNameLen {
			v.Add(field.name, "is longer than %d characters", MaxNameLen)
		}
	}
	if c.TicketID == "" || c.Number == "" {
		v.Add("ticket_id", "the handler must assign an id and a number")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	selection := selectSLA(f, d)
	if f.Priority == "" {
		f.Priority = selection.Priority
	}
	created := TicketCreated{
		TicketID:         c.TicketID,
		Number:           c.Number,
		TicketFieldsData: f,
		SLA:              selection,
		OpeningMessageID: c.OpeningMessageID,
		Attachments:      c.Attachments,
		SplitFrom:        c.SplitFrom,
		Messages:         c.Messages,
	}
	return []Payload{created}, nil
}

// selectSLA picks the SLA for the ticket's fields; the priority whose targets apply is
// the ticket's when the SLA defines it, else the SLA's default priority.
func selectSLA(f TicketFieldsData, d Decision) SLASelection {
	slas := d.Ref.SLAs()
	candidates := make([]*SLA, len(slas))
	for i, s := range slas {
		candidates[i] = s.SLA
	}
	chosen := SelectSLA(candidates, f.SelectionFields(), d.Now)
	if chosen == nil {
		return SLASelection{Priority: f.Priority}
	}
	selection := SLASelection{SLA: chosen.Name(), Priority: chosen.DefaultPriority().Name}
	if _, ok := chosen.Priority(f.Priority); ok {
		selection.Priority = f.Priority
	}
	for _, s := range slas {
		if s.SLA == chosen {
			selection.SLAVersion = s.Version
		}
	}
	return selection
}

func decideCustomerMessage(t *Ticket, c ReceiveCustomerMessage) ([]Payload, error) {
	var v ValidationError
	if c.MessageID == "" {
		v.Add("message_id", "is required")
	}
	if c.Channel != ChannelEmail && c.Channel != ChannelPortal {
		v.Add("channel", "must be email or portal")
	}
	if c.From != "" && !ValidEmail(c.From) {
		v.Add("from", "%q is not a valid email address", c.From)
	}
	if len(c.Body) > MaxBodyLen {
		v.Add("body", "is larger than %d bytes", MaxBodyLen)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if t.hasMessage(c.MessageID) {
		return nil, fmt.Errorf("message %s is already in the thread: %w", c.MessageID, ErrConflict)
	}
	from := c.From
	if from == "" {
		from = t.Fields.RaisedBy
	}
	return []Payload{CustomerMessageReceived{
		MessageID: c.MessageID, Channel: c.Channel, From: from, Subject: c.Subject,
		Body: c.Body, HTMLBody: c.HTMLBody, Attachments: c.Attachments,
		Reopened: t.Status == StatusResolved || t.Status == StatusClosed,
	}}, nil
}

func decideReply(t *Ticket, c SendReply) ([]Payload, error) {
	if t.Status == StatusClosed {
		return nil, &TransitionError{Action: "reply to", From: t.Status}
	}
	var v ValidationError
	if c.MessageID == "" {
		v.Add("message_id", "is required")
	}
	if err := requireText("body", c.Body, MaxBodyLen); err != nil {
		return nil, err
	}
	for i, addr := range slices.Concat(c.To, c.CC) {
		if !ValidEmail(addr) {
			v.Add(fmt.Sprintf("recipients[%d]", i), "%q is not a valid email address", addr)
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	to := c.To
	if len(to) == 0 {
		to = []string{t.Fields.RaisedBy}
	}
	return []Payload{ReplySent{
		MessageID: c.MessageID, To: to, CC: c.CC, Subject: c.Subject,
		Body: c.Body, HTMLBody: c.HTMLBody, Attachments: c.Attachments,
	}}, nil
}

func decideClose(t *Ticket, c CloseTicket, d Decision) ([]Payload, error) {
	if !c.Automatic {
		if err := t.requireStatus("close", StatusOpen, StatusReplied, StatusOnHold, StatusResolved); err != nil {
			return nil, err
		}
		return []Payload{TicketClosed{ClosedBy: ClosedByAgent, Reason: c.Reason}}, nil
	}
	if err := t.requireStatus("close automatically", StatusReplied); err != nil {
		return nil, err
	}
	days := d.Ref.Settings().AutoCloseDays
	if days <= 0 {
		// The settings define 0 as "never close automatically".
		return nil, fmt.Errorf("automatic closing is disabled (auto_close_days is %d): %w", days, ErrInvalidTransition)
	}
	if due := t.StatusSince.AddDate(0, 0, days); d.Now.Before(due) {
		return nil, fmt.Errorf("cannot close automatically before %s (replied %s, %d days): %w",
			due.Format(time.RFC3339), t.StatusSince.Format(time.RFC3339), days, ErrInvalidTransition)
	}
	reason := c.Reason
	if reason == "" {
		reason = fmt.Sprintf("no customer message %d days after the last reply", days)
	}
	return []Payload{TicketClosed{ClosedBy: ClosedByAutoClose, Reason: reason}}, nil
}

func decideSplit(t *Ticket, c SplitTicket) ([]Payload, error) {
	if t.Status == StatusClosed {
		return nil, &TransitionError{Action: "split", From: t.Status}
	}
	k := slices.IndexFunc(t.Messages, func(m MessageRef) bool { return m.ID == c.FromMessage })
	switch {
	case c.FromMessage == "":
		return nil, Invalid("from_message", "is required")
	case k < 0:
		return nil, Invalid("from_message", "message %q is not in this ticket's thread", c.FromMessage)
	case k == 0:
		return nil, Invalid("from_message", "the opening message cannot be split off")
	case c.NewTicketID == "" || c.NewNumber == "":
		return nil, Invalid("new_ticket_id", "the handler must assign an id and a number")
	}
	if utf8.RuneCountInString(c.Subject) > MaxSubjectLen {
		return nil, Invalid("subject", "is longer than %d characters", MaxSubjectLen)
	}
	subject := c.Subject
	if strings.TrimSpace(subject) == "" {
		subject = t.Fields.Subject
	}
	moved := make([]string, 0, len(t.Messages)-k)
	for _, m := range t.Messages[k:] {
		moved = append(moved, m.ID)
	}
	return []Payload{TicketSplit{
		NewTicketID: c.NewTicketID, NewNumber: c.NewNumber, FromMessage: c.FromMessage,
		MovedMessages: moved, Subject: subject,
	}}, nil
}

func decideChangePriority(t *Ticket, c ChangePriority, d Decision) ([]Payload, error) {
	if t.Status == StatusClosed {
		return nil, &TransitionError{Action: "change the priority of", From: t.Status}
	}
	if c.Priority == "" {
		return nil, Invalid("priority", "is required")
	}
	if !d.Ref.PriorityExists(c.Priority) {
		return nil, Invalid("priority", "unknown priority %q", c.Priority)
	}
	if c.Priority == t.Fields.Priority {
		return nil, Invalid("priority", "is already %q", c.Priority)
	}
	f := t.Fields
	f.Priority = c.Priority
	return []Payload{PriorityChanged{From: t.Fields.Priority, To: c.Priority, SLA: selectSLA(f, d)}}, nil
}

func decideChangeType(t *Ticket, c ChangeType, d Decision) ([]Payload, error) {
	if t.Status == StatusClosed {
		return nil, &TransitionError{Action: "change the type of", From: t.Status}
	}
	if c.TicketType != "" && !d.Ref.TicketTypeExists(c.TicketType) {
		return nil, Invalid("ticket_type", "unknown ticket type %q", c.TicketType)
	}
	if c.TicketType == t.Fields.TicketType {
		return nil, Invalid("ticket_type", "is already %q", c.TicketType)
	}
	f := t.Fields
	f.TicketType = c.TicketType
	return []Payload{TypeChanged{From: t.Fields.TicketType, To: c.TicketType, SLA: selectSLA(f, d)}}, nil
}

func decideResetSLA(t *Ticket, c ResetSLA, d Decision) ([]Payload, error) {
	if !d.Ref.Settings().AllowSLAReset {
		return nil, fmt.Errorf("the support settings do not allow an SLA reset: %w", ErrInvalidTransition)
	}
	if strings.TrimSpace(c.Reason) == "" {
		return nil, Invalid("reason", "is required")
	}
	if t.Status == StatusResolved || t.Status == StatusClosed {
		return nil, &TransitionError{Action: "reset the SLA of", From: t.Status}
	}
	s := selectSLA(t.Fields, d)
	return []Payload{SLAReset{Reason: c.Reason, SLA: s.SLA, SLAVersion: s.SLAVersion, Priority: s.Priority}}, nil
}

func (t *Ticket) hasMessage(id string) bool {
	return slices.ContainsFunc(t.Messages, func(m MessageRef) bool { return m.ID == id })
}

// EvolveTicket applies one stored event to the decision state.
func EvolveTicket(t *Ticket, e Event) {
	t.Version = e.Sequence
	t.LastHash = e.Hash
	if e.CommandID != "" {
		t.Commands.record(e.CommandID, e.Sequence)
	}
	if next := NextStatus(t.Status, e.Payload); next != t.Status {
		t.Status, t.StatusSince = next, e.OccurredAt
	}
	switch p := e.Payload.(type) {
	case TicketCreated:
		t.ID, t.Number, t.Fields, t.SplitFrom, t.SLA = p.TicketID, p.Number, p.TicketFieldsData, p.SplitFrom, p.SLA
		t.Messages = append(t.Messages, p.ThreadMessages(e.OccurredAt)...)
	case CustomerMessageReceived:
		t.Messages = append(t.Messages, MessageRef{ID: p.MessageID, Direction: Incoming, At: e.OccurredAt})
	case ReplySent:
		t.Messages = append(t.Messages, MessageRef{ID: p.MessageID, Direction: Outgoing, At: e.OccurredAt})
	case TicketSplit:
		k := slices.IndexFunc(t.Messages, func(m MessageRef) bool { return m.ID == p.FromMessage })
		if k >= 0 {
			t.Messages = t.Messages[:k:k]
		}
	case PriorityChanged:
		t.Fields.Priority, t.SLA = p.To, p.SLA
	case TypeChanged:
		t.Fields.TicketType, t.SLA = p.To, p.SLA
	case TicketAssigned:
		t.Assignees = append(t.Assignees, p.Assignee)
	case TicketUnassigned:
		t.Assignees = slices.DeleteFunc(slices.Clone(t.Assignees), func(a string) bool { return a == p.Assignee })
	case SLAReset:
		t.SLA = SLASelection{SLA: p.SLA, SLAVersion: p.SLAVersion, Priority: p.Priority}
	}
}

// NextStatus is the status table of the spec applied to a recorded event: the status a
// ticket has after the event, given the status it had before.
func NextStatus(current Status, p Payload) Status {
	switch p.(type) {
	case TicketCreated:
		return StatusOpen
	case CustomerMessageReceived:
		return StatusOpen
	case ReplySent:
		if current == StatusOpen {
			return StatusReplied
		}
	case PutOnHold:
		return StatusOnHold
	case TicketResolved:
		return StatusResolved
	case TicketClosed:
		return StatusClosed
	case TicketReopened:
		return StatusOpen
	}
	return current
}

// ThreadMessages are the thread a ticket starts with: its opening message, or the
// messages a split moved to it.
func (p TicketCreated) ThreadMessages(at time.Time) []MessageRef {
	if p.SplitFrom == nil {
		return []MessageRef{{ID: p.OpeningMessageID, Direction: Incoming, At: at}}
	}
	refs := make([]MessageRef, 0, len(p.Messages))
	for _, m := range p.Messages {
		mAt, _ := time.Parse(time.RFC3339Nano, m.At)
		refs = append(refs, MessageRef{ID: m.MessageID, Direction: m.Direction, At: mAt})
	}
	return refs
}

// ValidEmail reports whether s is a single bare email address (no display name).
func ValidEmail(s string) bool {
	if len(s) > 254 {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".")
}

func requireText(field, s string, max int) error {
	switch {
	case strings.TrimSpace(s) == "":
		return Invalid(field, "is required")
	case len(s) > max:
		return Invalid(field, "is larger than %d bytes", max)
	}
	return nil
}

func requireName(field, s string) error {
	switch {
	case strings.TrimSpace(s) == "":
		return Invalid(field, "is required")
	case utf8.RuneCountInString(s) > MaxNameLen:
		return Invalid(field, "is longer than %d characters", MaxNameLen)
	}
	return nil
}
