package email

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
)

// Accounts gives the email accounts (commands.Catalogues).
type Accounts interface {
	EmailAccount(address string) (domain.EmailAccount, bool)
	EmailAccounts() []domain.EmailAccount
}

// Envelope is what the transport knows of a message besides its content.
type Envelope struct {
	// MailFrom is the SMTP reverse path ("" for the null sender <>).
	MailFrom string
	// NullSender is true when the reverse path is <> (a bounce or another automatic
	// message); over IMAP, when Return-Path is <>.
	NullSender bool
	// Rcpts are the accepted recipients (support addresses).
	Rcpts []string
	// Account is the account a polled mailbox belongs to (IMAP).
	Account string
	// Via is the transport: smtp, lmtp or imap.
	Via string
}

// RejectError refuses a message with an SMTP reply; nothing was stored.
type RejectError struct {
	Code     int
	Enhanced [3]int
	Message  string
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("%d %d.%d.%d %s", e.Code, e.Enhanced[0], e.Enhanced[1], e.Enhanced[2], e.Message)
}

// Temporary reports a 4xx refusal (the sender should try again).
func (e *RejectError) Temporary() bool { return e.Code/100 == 4 }

// Outcome says what an inbound message did.
type Outcome struct {
	TicketID, Number string
	// Action is created, appended, duplicate, bounce, bounce-ignored or
	// bounce-unmatched.
	Action     string
	ThreadedBy string
	// AutoReply is "queued", or why no acknowledgement was sent (new tickets only).
	AutoReply string
	// Problems are the parser's recovered problems (a broken body kept as text).
	Problems []string
}

// Ingester turns inbound messages into ticket commands. Every transport (SMTP, LMTP,
// IMAP) goes through Ingest. Messages are ingested one at a time, each seeing the
// effects of the previous ones in the Index.
type Ingester struct {
	Handler     *commands.Handler
	Index       *Index
	Accounts    Accounts
	Attachments *AttachmentStore
	// WaitFor blocks until the projections (the Index) have applied a position
	// (projections.Runner.WaitFor).
	WaitFor func(ctx context.Context, pos uint64) error
	Clock   func() time.Time
	// AutoReplyLimit is the most automatic replies sent to one address in an hour
	// (default 3; negative: no automatic replies at all).
	AutoReplyLimit int
	Log            *slog.Logger

	mu sync.Mutex
}

const (
	actorEmail     = "system:email"
	autoReplyLimit = 3
)

func (in *Ingester) now() time.Time {
	if in.Clock != nil {
		return in.Clock()
	}
	return time.Now()
}

func (in *Ingester) log() *slog.Logger {
	if in.Log != nil {
		return in.Log
	}
	return slog.Default()
}

// Ingest stores one inbound message: a new ticket, a message on an existing one, or a
// bounce on the ticket it concerns. A RejectError refuses it with nothing stored;
// another error is temporary (the store is unavailable: the sender retries, and the
// retry is recognised by its Message-ID). Every step is idempotent, so a message
// delivered again after a failure in the middle completes what the first delivery
// began and adds nothing twice.
func (in *Ingester) Ingest(ctx context.Context, env Envelope, raw []byte) (Outcome, error) {
	msg, err := ParseInbound(raw)
	if err != nil {
		return Outcome{}, &RejectError{554, [3]int{5, 6, 0}, err.Error()}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	id := boundedID(msg.MessageID)
	if msg.MessageID == "" {
		id = syntheticMessageID(raw)
	}
	if msg.DSN != nil && (msg.Report || env.NullSender) {
		return in.bounce(ctx, msg, id)
	}
	account, ok := in.account(env)
	if !ok {
		return Outcome{}, &RejectError{550, [3]int{5, 1, 1}, "no such support address here"}
	}
	sender := ""
	if msg.From != nil && domain.ValidEmail(msg.From.Address) {
		sender = msg.From.Address
	} else if addr := strings.ToLower(env.MailFrom); domain.ValidEmail(addr) {
		sender = addr
	}
	if sender == "" {
		return Outcome{}, &RejectError{550, [3]int{5, 1, 7}, "the message has no valid sender address (From)"}
	}

	out := Outcome{Problems: msg.Problems}
	ticketID, threadedBy := in.thread(msg, sender)
	known, duplicate := in.Index.TicketByMessage(id)
	if duplicate {
		// Delivered before: the ticket has it. Complete the follow-up steps only.
		out.Action = "duplicate"
		if known != ticketID {
			threadedBy = domain.ThreadedReferences
			if info, ok := in.Index.Ticket(known); ok && !info.Split && len(info.Thread) > 0 && info.Thread[0].ID == id {
				threadedBy = domain.ThreadedNew
			}
		}
		ticketID = known
	}
	meta := commands.Meta{CommandID: commands.DeriveID("email", id), Actor: actorEmail}
	if !duplicate {
		atts, htmlBody, err := in.storeParts(msg, ticketID == "")
		if err != nil {
			return Outcome{}, err
		}
		var res commands.Result
		if ticketID == "" {
			out.Action = "created"
			res, err = in.Handler.CreateTicket(ctx, in.newTicket(msg, id, sender, account, atts), meta)
		} else {
			out.Action = "appended"
			res, err = in.Handler.Execute(ctx, ticketID, domain.ReceiveCustomerMessage{
				MessageID: id, Channel: domain.ChannelEmail, From: sender, Subject: truncateRunes(msg.Subject, domain.MaxSubjectLen),
				Body: truncateBytes(StripQuoted(msg.Text), domain.MaxBodyLen), HTMLBody: htmlBody, Attachments: atts,
			}, meta)
		}
		if errors.Is(err, domain.ErrConflict) && ticketID != "" && in.threadHas(ctx, ticketID, id) {
			out.Action, err = "duplicate", nil // the thread already has this message ID
		}
		if err != nil {
			return Outcome{}, ingestError(err)
		}
		if res.TicketID != "" {
			ticketID = res.TicketID
		}
		if err := in.wait(ctx, res.Position); err != nil {
			return Outcome{}, err
		}
	}
	info, _ := in.Index.Ticket(ticketID)
	out.TicketID, out.Number, out.ThreadedBy = ticketID, info.Number, threadedBy
	opened := !info.Split && len(info.Thread) > 0 && info.Thread[0].ID == id
	if opened {
		out.ThreadedBy = domain.ThreadedNew
		out.AutoReply = in.autoReplyVerdict(msg, env, account, sender)
	}

	received := domain.RecordEmailReceived{
		MessageID: id, Account: account.Address, From: sender,
		To: addrList(msg.To), CC: addrList(msg.CC), InReplyTo: capList(msg.InReplyTo, 20), References: capList(msg.References, 50),
		ThreadedBy: out.ThreadedBy, Via: env.Via, Size: msg.Size,
	}
	if opened && out.AutoReply != "" {
		received.NoAutoReply = out.AutoReply
	}
	res, err := in.Handler.Execute(ctx, ticketID, received, commands.Meta{CommandID: commands.DeriveID("email-received", id), Actor: actorEmail})
	if err != nil {
		return Outcome{}, ingestError(err)
	}
	if opened && out.AutoReply == "" {
		res, err = in.Handler.Execute(ctx, ticketID, in.acknowledgement(msg, id, sender, account, info), commands.Meta{
			CommandID: commands.DeriveID("auto-ack", ticketID), Actor: actorEmail,
		})
		if err != nil {
			return Outcome{}, ingestError(err)
		}
		out.AutoReply = "queued"
	}
	if err := in.wait(ctx, res.Position); err != nil {
		return Outcome{}, err
	}
	in.log().Info("email ingested", "message_id", id, "ticket", out.Number, "action", out.Action, "threaded_by", out.ThreadedBy,
		"from", sender, "auto_reply", out.AutoReply, "via", env.Via)
	return out, nil
}

// threadHas reports whether a ticket's thread holds a message ID.
func (in *Ingester) threadHas(ctx context.Context, ticketID, id string) bool {
	t, err := in.Handler.LoadTicket(ctx, ticketID)
	return err == nil && slices.ContainsFunc(t.Messages, func(m domain.MessageRef) bool { return m.ID == id })
}

// account is the support address the message was delivered to.
func (in *Ingester) account(env Envelope) (domain.EmailAccount, bool) {
	for _, addr := range append([]string{env.Account}, env.Rcpts...) {
		if addr == "" {
			continue
		}
		if a, ok := in.Accounts.EmailAccount(addr); ok {
			return a, true
		}
	}
	return domain.EmailAccount{}, false
}

// thread finds the ticket a message continues: In-Reply-To, then References (newest
// first), against every Message-ID we sent or received; then a [TKT-...] token in the
// subject, only when the sender takes part in that ticket. "" is a new ticket.
func (in *Ingester) thread(msg *Inbound, sender string) (string, string) {
	for _, ref := range msg.InReplyTo {
		if t, ok := in.Index.TicketByMessage(ref); ok {
			return t, domain.ThreadedInReplyTo
		}
	}
	for i := len(msg.References) - 1; i >= 0; i-- {
		if t, ok := in.Index.TicketByMessage(msg.References[i]); ok {
			return t, domain.ThreadedReferences
		}
	}
	for _, m := range TicketToken.FindAllStringSubmatch(msg.Subject, 5) {
		if t, ok := in.Index.TicketByNumber(m[1]); ok && in.Index.IsParticipant(t, sender) {
			return t, domain.ThreadedSubjectToken
		}
	}
	return "", domain.ThreadedNew
}

// storeParts writes the attachments (and, for a new ticket, the HTML body, which
// ticket.created has no field for) to the content store. The HTML of a message on an
// existing ticket goes in its html_body, quoted history cut off, unless it is larger
// than a body may be: then it is stored as an attachment too.
func (in *Ingester) storeParts(msg *Inbound, newTicket bool) ([]domain.Attachment, string, error) {
	var atts []domain.Attachment
	put := func(name, ct string, data []byte) error {
		a, err := in.Attachments.Put(name, ct, data)
		if err != nil {
			return err
		}
		atts = append(atts, a)
		return nil
	}
	htmlBody := ""
	if msg.HTML != "" {
		h := msg.HTML
		if !newTicket {
			h = StripQuotedHTML(h)
		}
		if newTicket || len(h) > domain.MaxBodyLen {
			if err := put("message.html", "text/html; charset=utf-8", []byte(msg.HTML)); err != nil {
				return nil, "", err
			}
		} else {
			htmlBody = h
		}
	}
	for _, p := range msg.Attachments {
		if err := put(p.Name, p.ContentType, p.Data); err != nil {
			return nil, "", err
		}
	}
	return atts, htmlBody, nil
}

func (in *Ingester) newTicket(msg *Inbound, id, sender string, account domain.EmailAccount, atts []domain.Attachment) domain.CreateTicket {
	subject := truncateRunes(strings.TrimSpace(TicketToken.ReplaceAllString(msg.Subject, "")), domain.MaxSubjectLen)
	if subject == "" {
		subject = "(no subject)"
	}
	ref := in.Handler.Catalogues().Reference()
	f := domain.TicketFieldsData{
		Subject: subject, Description: truncateBytes(msg.Text, domain.MaxBodyLen), RaisedBy: sender,
		EmailAccount: account.Address, Channel: domain.ChannelEmail,
	}
	if ref.PriorityExists(account.DefaultPriority) {
		f.Priority = account.DefaultPriority
	}
	if ref.TicketTypeExists(account.DefaultTicketType) {
		f.TicketType = account.DefaultTicketType
	}
	return domain.CreateTicket{TicketFieldsData: f, OpeningMessageID: id, Attachments: atts}
}

// autoReplyVerdict says why a new ticket gets no acknowledgement, or "".
func (in *Ingester) autoReplyVerdict(msg *Inbound, env Envelope, account domain.EmailAccount, sender string) string {
	if account.NoAutoReply {
		return "automatic replies are off for " + account.Address
	}
	if reason := automaticReason(msg, env, in.isOurs, in.isOurDomain); reason != "" {
		return "automatic message: " + reason
	}
	limit := in.AutoReplyLimit
	if limit == 0 {
		limit = autoReplyLimit
	}
	if limit < 0 {
		return "automatic replies are disabled"
	}
	if n := in.Index.AutoRepliesSince(sender, in.now().Add(-time.Hour)); n >= limit {
		return fmt.Sprintf("rate limit: %d automatic replies to %s in the last hour", n, sender)
	}
	return ""
}

func (in *Ingester) isOurs(addr string) bool {
	_, ok := in.Accounts.EmailAccount(addr)
	return ok
}

func (in *Ingester) isOurDomain(d string) bool {
	for _, a := range in.Accounts.EmailAccounts() {
		if strings.EqualFold(a.Domain(), d) {
			return true
		}
	}
	return false
}

// acknowledgement is the automatic reply to a new ticket (RFC 3834): the ticket
// number in the subject, Auto-Submitted: auto-replied (set when sending), threaded to
// the customer's message.
func (in *Ingester) acknowledgement(msg *Inbound, id, sender string, account domain.EmailAccount, info TicketInfo) domain.QueueEmail {
	ackID := commands.DeriveID("auto-ack", info.ID)
	subject := info.Subject
	if subject == "" {
		subject = msg.Subject
	}
	body := fmt.Sprintf("Hello,\n\nWe have received your message and opened ticket %s:\n\n    %s\n\n"+
		"To add anything, reply to this email and keep [%s] in the subject.\n\n-- \n%s\n(This is an automatic reply.)\n",
		info.Number, NormalizeSubject(subject), info.Number, or(account.Name, account.Address))
	return domain.QueueEmail{
		MessageID: ackID, Kind: domain.EmailKindAutoReply, RFCMessageID: ackID + "@" + account.Domain(),
		From: account.Address, FromName: account.Name, To: []string{sender},
		Subject:   truncateRunes(ReplySubject(subject, info.Number), domain.MaxSubjectLen),
		InReplyTo: id, References: append(capList(msg.References, 10), id),
		Account: account.Address, Relay: account.Relay, Body: body,
	}
}

// bounce records a delivery status notification on the ticket of the message it is
// about, once per failed recipient. It never reopens the ticket.
func (in *Ingester) bounce(ctx context.Context, msg *Inbound, id string) (Outcome, error) {
	out := Outcome{Action: "bounce-unmatched", Problems: msg.Problems}
	ticketID, ok := "", false
	if msg.DSN.OriginalMessageID != "" {
		ticketID, ok = in.Index.TicketByMessage(msg.DSN.OriginalMessageID)
	}
	for _, ref := range slices.Concat(msg.InReplyTo, msg.References) {
		if !ok {
			ticketID, ok = in.Index.TicketByMessage(ref)
		}
	}
	if !ok {
		in.log().Warn("bounce for no known message; dropped", "dsn", id, "original", msg.DSN.OriginalMessageID)
		return out, nil
	}
	info, _ := in.Index.Ticket(ticketID)
	out.TicketID, out.Number, out.Action = ticketID, info.Number, "bounce-ignored"
	var last uint64
	for _, r := range msg.DSN.Recipients {
		if r.Action != "failed" && !strings.HasPrefix(r.Status, "5.") {
			continue // delayed, delivered, relayed: not a failure
		}
		res, err := in.Handler.Execute(ctx, ticketID, domain.RecordBounce{
			MessageID: or(msg.DSN.OriginalMessageID, id), Recipient: truncateBytes(r.Recipient, 254), Status: truncateBytes(r.Status, 20),
			Action: truncateBytes(r.Action, 20), Diagnostic: r.Diagnostic, ReportingMTA: truncateBytes(msg.DSN.ReportingMTA, 255), DSNMessageID: id,
		}, commands.Meta{CommandID: commands.DeriveID("bounce", id, r.Recipient), Actor: actorEmail})
		if err != nil {
			return Outcome{}, ingestError(err)
		}
		out.Action, last = "bounce", res.Position
	}
	if err := in.wait(ctx, last); err != nil {
		return Outcome{}, err
	}
	in.log().Info("bounce recorded", "ticket", out.Number, "original", msg.DSN.OriginalMessageID, "action", out.Action)
	return out, nil
}

func (in *Ingester) wait(ctx context.Context, pos uint64) error {
	if in.WaitFor == nil || pos == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return in.WaitFor(ctx, pos)
}

// ingestError keeps a domain refusal permanent (the message cannot be stored as it
// is) and everything else temporary.
func ingestError(err error) error {
	if errors.Is(err, domain.ErrValidation) {
		return &RejectError{554, [3]int{5, 6, 0}, err.Error()}
	}
	return err
}

func addrList(as []Address) []string {
	var out []string
	for _, a := range as {
		if domain.ValidEmail(a.Address) && len(out) < 100 {
			out = append(out, a.Address)
		}
	}
	return out
}

// capList keeps the last n IDs of a list, each bounded.
func capList(ids []string, n int) []string {
	if len(ids) > n {
		ids = ids[len(ids)-n:]
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, boundedID(id))
	}
	return out
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func or(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
