package domain

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The email channel (docs/email.md). Two kinds of facts live here:
//
//   - the email accounts: the support addresses mail is accepted for, reference data
//     in the catalogue stream catalogue-email-accounts;
//   - the email facts of a ticket, recorded on the ticket's own stream next to the
//     thread: which email a message came in as (email.received), each outbound email
//     and its delivery (email.queued, email.sent, email.failed), and bounces
//     (ticket.delivery_bounced). None of them changes the ticket's status or its SLA
//     metrics: a message is counted by ticket.customer_message_received and
//     ticket.reply_sent, never by its delivery.

// EmailAccountsStream is the stream of the email account catalogue.
const EmailAccountsStream = "catalogue-email-accounts"

// EmailIMAP tells how to poll an existing mailbox of an account. The password is never
// stored in an event: PasswordEnv names the environment variable of ticketd that
// holds it.
type EmailIMAP struct {
	// Server is host:port of the IMAP server.
	Server   string `json:"server"`
	Username string `json:"username"`
	// PasswordEnv is the name of the environment variable holding the password.
	PasswordEnv string `json:"password_env,omitempty"`
	// Security is "tls" (implicit TLS, the default), "starttls" or "none".
	Security string `json:"security,omitempty"`
	// Mailbox is the folder polled (default INBOX).
	Mailbox string `json:"mailbox,omitempty"`
	// MoveTo, when set, is the folder processed messages are moved to; otherwise they
	// are marked \Seen and stay.
	MoveTo string `json:"move_to,omitempty"`
}

// EmailAccount is a support address: mail to it opens or continues tickets, and
// replies on its tickets are sent from it.
type EmailAccount struct {
	// Address is the support address, lower case (e.g. support@example.com).
	Address string `json:"address"`
	// Name is the display name of outbound mail ("Example Support").
	Name string `json:"name,omitempty"`
	// DefaultTicketType and DefaultPriority are given to tickets opened by mail.
	DefaultTicketType string `json:"default_ticket_type,omitempty"`
	DefaultPriority   string `json:"default_priority,omitempty"`
	// Relay names the outbound relay settings of ticketd used for this account's
	// mail; empty is the default relay (--smtp-relay).
	Relay string `json:"relay,omitempty"`
	// NoAutoReply turns the automatic acknowledgement of new tickets off.
	NoAutoReply bool `json:"no_auto_reply,omitempty"`
	// IMAP, when set, is a mailbox ticketd polls for this account.
	IMAP *EmailIMAP `json:"imap,omitempty"`
}

// Domain is the part of the address after the @.
func (a EmailAccount) Domain() string {
	return a.Address[strings.LastIndexByte(a.Address, '@')+1:]
}

// EmailAccountSaved creates an account or replaces its settings.
type EmailAccountSaved EmailAccount

// EmailAccountRemoved removes an account: mail to it is refused from then on. Its
// tickets keep the address they recorded.
type EmailAccountRemoved struct {
	Address string `json:"address"`
}

func (EmailAccountSaved) EventType() string   { return "email_account.saved" }
func (EmailAccountRemoved) EventType() string { return "email_account.removed" }

// EmailAccountsState is the email account catalogue.
type EmailAccountsState struct {
	Version  uint64
	LastHash string
	CommandLog
	// Accounts by address; replaced on every change, never mutated, so snapshots stay
	// valid.
	Accounts map[string]EmailAccount
}

// Lookup finds an account by address, case-insensitively.
func (s *EmailAccountsState) Lookup(address string) (EmailAccount, bool) {
	a, ok := s.Accounts[strings.ToLower(strings.TrimSpace(address))]
	return a, ok
}

var (
	relayName = regexp.MustCompile(`^[A-Za-z0-9_-]{0,50}$`)
	envName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// DecideSaveEmailAccount validates an account; ref checks the default type and
// priority.
func DecideSaveEmailAccount(s *EmailAccountsState, a EmailAccount, ref Reference) ([]Payload, error) {
	var v ValidationError
	a.Address = strings.ToLower(strings.TrimSpace(a.Address))
	if a.Address == "" {
		v.Add("address", "is required")
	} else if !ValidEmail(a.Address) {
		v.Add("address", "%q is not a valid email address", a.Address)
	}
	if utf8.RuneCountInString(a.Name) > MaxNameLen || strings.ContainsAny(a.Name, "\r\n") {
		v.Add("name", "must be one line of at most %d characters", MaxNameLen)
	}
	if a.DefaultTicketType != "" && !ref.TicketTypeExists(a.DefaultTicketType) {
		v.Add("default_ticket_type", "unknown ticket type %q", a.DefaultTicketType)
	}
	if a.DefaultPriority != "" && !ref.PriorityExists(a.DefaultPriority) {
		v.Add("default_priority", "unknown priority %q", a.DefaultPriority)
	}
	if !relayName.MatchString(a.Relay) {
		v.Add("relay", "must be up to 50 letters, digits, '-' or '_'")
	}
	if m := a.IMAP; m != nil {
		if m.Server == "" || !strings.Contains(m.Server, ":") {
			v.Add("imap.server", "must be host:port")
		}
		if strings.TrimSpace(m.Username) == "" {
			v.Add("imap.username", "is required")
		}
		if m.PasswordEnv != "" && !envName.MatchString(m.PasswordEnv) {
			v.Add("imap.password_env", "must be an environment variable name")
		}
		switch m.Security {
		case "", "tls", "starttls", "none":
		default:
			v.Add("imap.security", "must be tls, starttls or none")
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if old, ok := s.Accounts[a.Address]; ok && equalAccounts(old, a) {
		return nil, nil
	}
	return []Payload{EmailAccountSaved(a)}, nil
}

func equalAccounts(a, b EmailAccount) bool {
	ia, ib := a.IMAP, b.IMAP
	a.IMAP, b.IMAP = nil, nil
	if a != b {
		return false
	}
	if ia == nil || ib == nil {
		return ia == ib
	}
	return *ia == *ib
}

// DecideRemoveEmailAccount removes an account.
func DecideRemoveEmailAccount(s *EmailAccountsState, address string) ([]Payload, error) {
	a, ok := s.Lookup(address)
	if !ok {
		return nil, fmt.Errorf("email account %q: %w", address, ErrNotFound)
	}
	return []Payload{EmailAccountRemoved{Address: a.Address}}, nil
}

// EvolveEmailAccounts applies an email account event.
func EvolveEmailAccounts(s *EmailAccountsState, e Event) {
	s.Version, s.LastHash = e.Sequence, e.Hash
	s.record(e)
	accounts := make(map[string]EmailAccount, len(s.Accounts)+1)
	for k, v := range s.Accounts {
		accounts[k] = v
	}
	switch p := e.Payload.(type) {
	case EmailAccountSaved:
		accounts[p.Address] = EmailAccount(p)
	case EmailAccountRemoved:
		delete(accounts, p.Address)
	}
	s.Accounts = accounts
}

// Ticket email events.

// How an inbound email was matched to its ticket (EmailReceived.ThreadedBy).
const (
	ThreadedNew          = "new"           // no match: it opened the ticket
	ThreadedInReplyTo    = "in-reply-to"   // its In-Reply-To names a message of the ticket
	ThreadedReferences   = "references"    // its References name a message of the ticket
	ThreadedSubjectToken = "subject-token" // [TKT-...] in the subject, from a participant
)

// EmailReceived records how a thread message arrived by email: the envelope the
// thread message itself does not carry (recipients, threading headers) and what was
// decided about it. It follows the ticket.created or ticket.customer_message_received
// of the same message (MessageID).
type EmailReceived struct {
	// MessageID is the RFC 5322 Message-ID without angle brackets: the thread message's
	// ID.
	MessageID string `json:"message_id"`
	// Account is the support address that received it.
	Account string   `json:"account"`
	From    string   `json:"from"`
	To      []string `json:"to,omitempty"`
	CC      []string `json:"cc,omitempty"`
	// InReplyTo and References are the message's threading headers (bare IDs).
	InReplyTo  []string `json:"in_reply_to,omitempty"`
	References []string `json:"references,omitempty"`
	// ThreadedBy says how the message was matched to the ticket: new, in-reply-to,
	// references or subject-token.
	ThreadedBy string `json:"threaded_by"`
	// Via is the transport: smtp, lmtp or imap.
	Via string `json:"via"`
	// Size is the size of the raw message in bytes.
	Size int64 `json:"size"`
	// NoAutoReply, on a message that opened a ticket, says why no acknowledgement
	// was sent (an automatic message, the rate limit, the account's setting).
	NoAutoReply string `json:"no_auto_reply,omitempty"`
}

// Kinds of outbound email.
const (
	EmailKindReply     = "reply"      // an agent reply (ticket.reply_sent)
	EmailKindAutoReply = "auto_reply" // the automatic acknowledgement of a new ticket
)

// EmailQueued puts an outbound email in the outbox with the exact headers it is sent
// with, so that every attempt, in any process, after any restart, sends the same
// message.
type EmailQueued struct {
	// MessageID is the thread message being sent (the message_id of the
	// ticket.reply_sent) or, for an automatic reply, an ID of its own.
	MessageID string `json:"message_id"`
	// Kind is reply or auto_reply.
	Kind string `json:"kind"`
	// RFCMessageID is the Message-ID header, without angle brackets.
	RFCMessageID string   `json:"rfc_message_id"`
	From         string   `json:"from"`
	FromName     string   `json:"from_name,omitempty"`
	To           []string `json:"to"`
	CC           []string `json:"cc,omitempty"`
	Subject      string   `json:"subject"`
	// InReplyTo and References are the threading headers (bare IDs).
	InReplyTo  string   `json:"in_reply_to,omitempty"`
	References []string `json:"references,omitempty"`
	// Account is the email account the mail is sent from; Relay the relay settings.
	Account string `json:"account"`
	Relay   string `json:"relay,omitempty"`
	// Body is the text of an automatic reply; a reply's text is in its
	// ticket.reply_sent.
	Body string `json:"body,omitempty"`
}

// EmailSent records that the relay accepted an outbound email.
type EmailSent struct {
	MessageID    string `json:"message_id"`
	RFCMessageID string `json:"rfc_message_id"`
	// Attempt counts the attempts, this one included.
	Attempt int    `json:"attempt"`
	Relay   string `json:"relay"`
	// Response is the relay's answer to the end of data (e.g. "2.0.0 Ok: queued as
	// 4Fx...").
	Response string `json:"response"`
	// Refused are recipients the relay refused while accepting the others.
	Refused []string `json:"refused,omitempty"`
}

// EmailFailed records a failed attempt to hand an outbound email to the relay.
type EmailFailed struct {
	MessageID string `json:"message_id"`
	Attempt   int    `json:"attempt"`
	// Permanent failures are not retried (a 5xx answer, or too many attempts).
	Permanent bool `json:"permanent,omitempty"`
	// Code and EnhancedCode are the SMTP reply, when there was one.
	Code         int    `json:"code,omitempty"`
	EnhancedCode string `json:"enhanced_code,omitempty"`
	Reason       string `json:"reason"`
	// RetryAt is when the next attempt is due (temporary failures).
	RetryAt time.Time `json:"retry_at,omitzero"`
}

// DeliveryBounced records a delivery status notification about an email of the
// ticket: the recipient is failing. It neither reopens the ticket nor counts as a
// customer message.
type DeliveryBounced struct {
	// MessageID is the Message-ID (bare) of the email that bounced.
	MessageID string `json:"message_id"`
	Recipient string `json:"recipient"`
	// Status is the RFC 3463 status code (e.g. 5.1.1); Action the DSN action (failed).
	Status     string `json:"status"`
	Action     string `json:"action,omitempty"`
	Diagnostic string `json:"diagnostic,omitempty"`
	// ReportingMTA is who reported it; DSNMessageID the Message-ID of the report.
	ReportingMTA string `json:"reporting_mta,omitempty"`
	DSNMessageID string `json:"dsn_message_id,omitempty"`
}

func (EmailReceived) EventType() string   { return "email.received" }
func (EmailQueued) EventType() string     { return "email.queued" }
func (EmailSent) EventType() string       { return "email.sent" }
func (EmailFailed) EventType() string     { return "email.failed" }
func (DeliveryBounced) EventType() string { return "ticket.delivery_bounced" }

// Ticket commands of the email channel. They record facts decided outside the domain
// (by the mail transports and the outbox), so their deciders only validate.

type RecordEmailReceived EmailReceived
type QueueEmail EmailQueued
type RecordEmailSent EmailSent
type RecordEmailFailed EmailFailed
type RecordBounce DeliveryBounced

func (RecordEmailReceived) CommandName() string { return "email_received" }
func (QueueEmail) CommandName() string          { return "email_queue" }
func (RecordEmailSent) CommandName() string     { return "email_sent" }
func (RecordEmailFailed) CommandName() string   { return "email_failed" }
func (RecordBounce) CommandName() string        { return "delivery_bounced" }

// emailCommand is a ticket command DecideTicket hands to the email channel's deciders.
type emailCommand interface {
	TicketCommand
	decideEmail(t *Ticket) ([]Payload, error)
}

// maxHeaderValue bounds the strings copied from mail headers into events.
const maxHeaderValue = 1000

func (c RecordEmailReceived) decideEmail(t *Ticket) ([]Payload, error) {
	var v ValidationError
	requireHeader(&v, "message_id", c.MessageID)
	requireHeader(&v, "account", c.Account)
	if c.From != "" && !ValidEmail(c.From) {
		v.Add("from", "%q is not a valid email address", c.From)
	}
	switch c.ThreadedBy {
	case ThreadedNew, ThreadedInReplyTo, ThreadedReferences, ThreadedSubjectToken:
	default:
		v.Add("threaded_by", "must be new, in-reply-to, references or subject-token")
	}
	if len(c.To)+len(c.CC)+len(c.InReplyTo)+len(c.References) > 500 {
		v.Add("to", "too many addresses or references")
	}
	return decided(EmailReceived(c), &v)
}

func (c QueueEmail) decideEmail(t *Ticket) ([]Payload, error) {
	var v ValidationError
	requireHeader(&v, "message_id", c.MessageID)
	requireHeader(&v, "rfc_message_id", c.RFCMessageID)
	if c.Kind != EmailKindReply && c.Kind != EmailKindAutoReply {
		v.Add("kind", "must be reply or auto_reply")
	}
	if !ValidEmail(c.From) {
		v.Add("from", "%q is not a valid email address", c.From)
	}
	if len(c.To) == 0 {
		v.Add("to", "is required")
	}
	for i, addr := range slices.Concat(c.To, c.CC) {
		if !ValidEmail(addr) {
			v.Add(fmt.Sprintf("recipients[%d]", i), "%q is not a valid email address", addr)
		}
	}
	if strings.ContainsAny(c.Subject+c.FromName, "\r\n") {
		v.Add("subject", "must be one line")
	}
	if len(c.Body) > MaxBodyLen {
		v.Add("body", "is larger than %d bytes", MaxBodyLen)
	}
	return decided(EmailQueued(c), &v)
}

func (c RecordEmailSent) decideEmail(t *Ticket) ([]Payload, error) {
	var v ValidationError
	requireHeader(&v, "message_id", c.MessageID)
	if c.Attempt < 1 {
		v.Add("attempt", "must be at least 1")
	}
	return decided(EmailSent(c), &v)
}

func (c RecordEmailFailed) decideEmail(t *Ticket) ([]Payload, error) {
	var v ValidationError
	requireHeader(&v, "message_id", c.MessageID)
	if c.Attempt < 1 {
		v.Add("attempt", "must be at least 1")
	}
	if !c.Permanent && c.RetryAt.IsZero() {
		v.Add("retry_at", "is required for a temporary failure")
	}
	c.RetryAt = c.RetryAt.UTC()
	return decided(EmailFailed(c), &v)
}

func (c RecordBounce) decideEmail(t *Ticket) ([]Payload, error) {
	var v ValidationError
	requireHeader(&v, "message_id", c.MessageID)
	requireHeader(&v, "recipient", c.Recipient)
	if len(c.Diagnostic) > maxHeaderValue {
		c.Diagnostic = c.Diagnostic[:maxHeaderValue]
	}
	return decided(DeliveryBounced(c), &v)
}

// decided is the payload, or the validation error and no payload.
func decided(p Payload, v *ValidationError) ([]Payload, error) {
	if err := v.Err(); err != nil {
		return nil, err
	}
	return []Payload{p}, nil
}

func requireHeader(v *ValidationError, field, s string) {
	switch {
	case strings.TrimSpace(s) == "":
		v.Add(field, "is required")
	case len(s) > maxHeaderValue:
		v.Add(field, "is longer than %d bytes", maxHeaderValue)
	}
}
