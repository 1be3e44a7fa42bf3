package domain

import "time"

// Ticket commands: requests that may be refused. Handlers fill the identities and
// numbers the decider cannot invent (ticket id, ticket number, message ids).

// TicketCommand is any command addressed to one ticket.
type TicketCommand interface {
	CommandName() string
}

type CreateTicket struct {
	TicketID string `json:"ticket_id,omitempty"`
	Number   string `json:"-"`
	TicketFieldsData
	OpeningMessageID string       `json:"opening_message_id,omitempty"`
	Attachments      []Attachment `json:"attachments,omitempty"`
	// SplitFrom and Messages are set only by a split.
	SplitFrom *SplitOrigin `json:"-"`
	Messages  []Message    `json:"-"`
}

type ReceiveCustomerMessage struct {
	MessageID   string       `json:"message_id,omitempty"`
	Channel     Channel      `json:"channel,omitempty"`
	From        string       `json:"from,omitempty"`
	Subject     string       `json:"subject,omitempty"`
	Body        string       `json:"body"`
	HTMLBody    string       `json:"html_body,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
}

type SendReply struct {
	MessageID   string       `json:"message_id,omitempty"`
	To          []string     `json:"to,omitempty"`
	CC          []string     `json:"cc,omitempty"`
	Subject     string       `json:"subject,omitempty"`
	Body        string       `json:"body"`
	HTMLBody    string       `json:"html_body,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
}

type AddComment struct {
	CommentID string `json:"comment_id,omitempty"`
	Body      string `json:"body"`
}

type HoldTicket struct {
	Reason string `json:"reason,omitempty"`
}

type ResolveTicket struct {
	ResolutionDetails string `json:"resolution_details,omitempty"`
}

type CloseTicket struct {
	Automatic bool   `json:"-"` // only the auto-close scheduler sets it
	Reason    string `json:"reason,omitempty"`
}

type ReopenTicket struct {
	Reason string `json:"reason,omitempty"`
}

type SplitTicket struct {
	FromMessage string `json:"from_message"`
	Subject     string `json:"subject,omitempty"`
	NewTicketID string `json:"-"`
	NewNumber   string `json:"-"`
}

type ChangePriority struct {
	Priority string `json:"priority"`
}

type ChangeType struct {
	TicketType string `json:"ticket_type"`
}

type AssignTicket struct {
	Assignee string `json:"assignee"`
}

type UnassignTicket struct {
	Assignee string `json:"assignee"`
}

type ResetSLA struct {
	Reason string `json:"reason"`
}

// RecordDeadline records a missed (or, with Warning, an approaching) SLA deadline. The
// deadline watcher sends it; the handler derives its command ID from the deadline.
type RecordDeadline struct {
	Kind        string
	Deadline    time.Time
	CycleStart  time.Time
	SLA         string
	SLAVersion  int
	Warning     bool
	WarnSeconds int64
}

// DueDeadline is a deadline notification a ticket owes.
type DueDeadline struct {
	TicketID string
	RecordDeadline
}

// DueAutoClose is a ticket left in Replied long enough to be closed automatically.
type DueAutoClose struct {
	TicketID     string
	RepliedSince time.Time
}

func (RecordDeadline) CommandName() string         { return "record_deadline" }
func (CreateTicket) CommandName() string           { return "create" }
func (ReceiveCustomerMessage) CommandName() string { return "customer_message" }
func (SendReply) CommandName() string              { return "reply" }
func (AddComment) CommandName() string             { return "comment" }
func (HoldTicket) CommandName() string             { return "hold" }
func (ResolveTicket) CommandName() string          { return "resolve" }
func (CloseTicket) CommandName() string            { return "close" }
func (ReopenTicket) CommandName() string           { return "reopen" }
func (SplitTicket) CommandName() string            { return "split" }
func (ChangePriority) CommandName() string         { return "set_priority" }
func (ChangeType) CommandName() string             { return "set_type" }
func (AssignTicket) CommandName() string           { return "assign" }
func (UnassignTicket) CommandName() string         { return "unassign" }
func (ResetSLA) CommandName() string               { return "reset_sla" }
