package domain

import "time"

// Ticket event payloads. Each is a fact in the past tense; field names are the JSON
// schema (documented in docs/events.md). Adding an optional field keeps the schema
// version; renaming or changing the meaning of a field bumps it and adds an upcaster.

// Channel says how a ticket or a message reached the helpdesk.
type Channel string

const (
	ChannelEmail  Channel = "email"
	ChannelPortal Channel = "portal"
	ChannelAPI    Channel = "api"
	ChannelManual Channel = "manual"
)

// Valid reports whether c is a known channel.
func (c Channel) Valid() bool {
	switch c {
	case ChannelEmail, ChannelPortal, ChannelAPI, ChannelManual:
		return true
	}
	return false
}

// Attachment references stored content; events never hold the bytes.
type Attachment struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
}

// Direction of a thread message.
type Direction string

const (
	Incoming Direction = "incoming" // from the customer
	Outgoing Direction = "outgoing" // an agent reply
)

// Message is one message of a ticket's thread as carried by a split.
type Message struct {
	MessageID   string       `json:"message_id"`
	Direction   Direction    `json:"direction"`
	At          string       `json:"at"` // RFC 3339, when it was originally received or sent
	From        string       `json:"from,omitempty"`
	Subject     string       `json:"subject,omitempty"`
	Body        string       `json:"body,omitempty"`
	HTMLBody    string       `json:"html_body,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
}

// TicketFieldsData are the descriptive fields of a ticket, shared by creation and the
// condition an SLA is selected by.
type TicketFieldsData struct {
	Subject       string  `json:"subject"`
	Description   string  `json:"description,omitempty"`
	RaisedBy      string  `json:"raised_by"`
	Priority      string  `json:"priority,omitempty"`
	TicketType    string  `json:"ticket_type,omitempty"`
	Customer      string  `json:"customer,omitempty"`
	CustomerGroup string  `json:"customer_group,omitempty"`
	Territory     string  `json:"territory,omitempty"`
	Contact       string  `json:"contact,omitempty"`
	Lead          string  `json:"lead,omitempty"`
	Company       string  `json:"company,omitempty"`
	Project       string  `json:"project,omitempty"`
	EmailAccount  string  `json:"email_account,omitempty"`
	Channel       Channel `json:"channel"`
	ViaPortal     bool    `json:"via_portal,omitempty"`
}

// SplitOrigin records where a split ticket came from.
type SplitOrigin struct {
	TicketID    string `json:"ticket_id"`
	Number      string `json:"number"`
	FromMessage string `json:"from_message"`
}

// SLASelection records the SLA selection made with a change: the SLA's name and version
// (so a later edit of the SLA never rewrites history) and the priority whose targets
// apply. An empty SLA means no SLA applies. It travels inside the event of the change
// itself, so that a command is one event, appended in one round trip.
type SLASelection struct {
	SLA        string `json:"sla"`
	SLAVersion int    `json:"sla_version,omitempty"`
	Priority   string `json:"sla_priority"`
}

type TicketCreated struct {
	TicketID string `json:"ticket_id"`
	Number   string `json:"number"`
	TicketFieldsData
	// SLA is the selection made at creation.
	SLA SLASelection `json:"sla_selection,omitzero"`
	// OpeningMessageID identifies the opening customer message (the description).
	OpeningMessageID string       `json:"opening_message_id"`
	Attachments      []Attachment `json:"attachments,omitempty"`
	SplitFrom        *SplitOrigin `json:"split_from,omitempty"`
	// Messages are the thread messages a split moved here, in thread order.
	Messages []Message `json:"messages,omitempty"`
}

type CustomerMessageReceived struct {
	MessageID   string       `json:"message_id"`
	Channel     Channel      `json:"channel"`
	From        string       `json:"from"`
	Subject     string       `json:"subject,omitempty"`
	Body        string       `json:"body"`
	HTMLBody    string       `json:"html_body,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
	// Reopened is true when the message moved a Resolved or Closed ticket back to Open.
	Reopened bool `json:"reopened,omitempty"`
}

type ReplySent struct {
	MessageID   string       `json:"message_id"`
	To          []string     `json:"to,omitempty"`
	CC          []string     `json:"cc,omitempty"`
	Subject     string       `json:"subject,omitempty"`
	Body        string       `json:"body"`
	HTMLBody    string       `json:"html_body,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
}

type CommentAdded struct {
	CommentID string `json:"comment_id"`
	Body      string `json:"body"`
}

type PutOnHold struct {
	Reason string `json:"reason,omitempty"`
}

type TicketResolved struct {
	ResolutionDetails string `json:"resolution_details,omitempty"`
}

// Closer says who closed a ticket.
type Closer string

const (
	ClosedByAgent     Closer = "agent"      // a person, with a close command
	ClosedByAutoClose Closer = "auto-close" // the scheduler, after auto_close_days in Replied
)

// TicketClosed records that a ticket was closed, by an agent or automatically. Schema
// version 2; version 1 had a boolean "automatic" (true for an automatic close, absent
// otherwise) instead of closed_by, and is read as closed_by "auto-close" or "agent".
type TicketClosed struct {
	// ClosedBy says who closed the ticket: an agent, or the automatic close.
	ClosedBy Closer `json:"closed_by"`
	// Reason is free text; an automatic close says how long the ticket waited.
	Reason string `json:"reason,omitempty"`
}

// Automatic reports whether the scheduler closed the ticket.
func (p TicketClosed) Automatic() bool { return p.ClosedBy == ClosedByAutoClose }

type TicketReopened struct {
	Reason string `json:"reason,omitempty"`
}

// TicketSplit is recorded on the source ticket: messages from FromMessage on moved to
// the new ticket.
type TicketSplit struct {
	NewTicketID   string   `json:"new_ticket_id"`
	NewNumber     string   `json:"new_number"`
	FromMessage   string   `json:"from_message"`
	MovedMessages []string `json:"moved_messages"`
	Subject       string   `json:"subject"`
}

// PriorityChanged carries the SLA selection made again for the new priority.
type PriorityChanged struct {
	From string       `json:"from"`
	To   string       `json:"to"`
	SLA  SLASelection `json:"sla_selection,omitzero"`
}

// TypeChanged carries the SLA selection made again for the new type.
type TypeChanged struct {
	From string       `json:"from"`
	To   string       `json:"to"`
	SLA  SLASelection `json:"sla_selection,omitzero"`
}

type TicketAssigned struct {
	Assignee string `json:"assignee"`
	// Rule names the assignment rule that made the assignment; absent for a person's.
	Rule string `json:"rule,omitempty"`
}

type TicketUnassigned struct {
	Assignee string `json:"assignee"`
	// Rule names the assignment rule whose unassign condition removed the assignee.
	Rule string `json:"rule,omitempty"`
}

// SLAReset restarts the SLA clock at the event's occurred_at and records the new
// selection.
type SLAReset struct {
	Reason     string `json:"reason"`
	SLA        string `json:"sla"`
	SLAVersion int    `json:"sla_version,omitempty"`
	Priority   string `json:"priority"`
}

func (TicketCreated) EventType() string           { return "ticket.created" }
func (CustomerMessageReceived) EventType() string { return "ticket.customer_message_received" }
func (ReplySent) EventType() string               { return "ticket.reply_sent" }
func (CommentAdded) EventType() string            { return "ticket.comment_added" }
func (PutOnHold) EventType() string               { return "ticket.put_on_hold" }
func (TicketResolved) EventType() string          { return "ticket.resolved" }
func (TicketClosed) EventType() string            { return "ticket.closed" }
func (TicketReopened) EventType() string          { return "ticket.reopened" }
func (TicketSplit) EventType() string             { return "ticket.split" }
func (PriorityChanged) EventType() string         { return "ticket.priority_changed" }
func (TypeChanged) EventType() string             { return "ticket.type_changed" }
func (TicketAssigned) EventType() string          { return "ticket.assigned" }
func (TicketUnassigned) EventType() string        { return "ticket.unassigned" }
func (SLAReset) EventType() string                { return "ticket.sla_reset" }

// Deadline kinds.
const (
	DeadlineResponse   = "response"
	DeadlineResolution = "resolution"
)

// SLADeadlineMissed records that an SLA deadline passed unmet. It is recorded once per
// deadline (the command ID derives from ticket, kind and deadline), so the
// notification other services receive is published exactly once.
type SLADeadlineMissed struct {
	Kind       string    `json:"kind"` // response or resolution
	Deadline   time.Time `json:"deadline"`
	CycleStart time.Time `json:"cycle_start"`
	SLA        string    `json:"sla"`
	SLAVersion int       `json:"sla_version"`
}

// SLADeadlineApproaching warns that an SLA deadline is near.
type SLADeadlineApproaching struct {
	Kind        string    `json:"kind"`
	Deadline    time.Time `json:"deadline"`
	CycleStart  time.Time `json:"cycle_start"`
	SLA         string    `json:"sla"`
	SLAVersion  int       `json:"sla_version"`
	WarnSeconds int64     `json:"warn_seconds"`
}

func (SLADeadlineMissed) EventType() string      { return "ticket.sla_deadline_missed" }
func (SLADeadlineApproaching) EventType() string { return "ticket.sla_deadline_approaching" }
