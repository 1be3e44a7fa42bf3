package email

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
)

// Outbox delivers outbound mail. The reply itself is stored first (ticket.reply_sent,
// the agent's command); the outbox follows the Index and, for each reply of a ticket
// with an email account:
//
//  1. queues it: email.queued fixes the headers (Message-ID <message id@account
//     domain>, From, To, Cc, subject with the ticket number, In-Reply-To and
//     References to the thread), command ID derived from the message ID, so it is
//     queued once whoever does it;
//  2. hands it to the relay and records the outcome: email.sent with the relay's
//     answer, or email.failed (permanent for a 5xx answer or after MaxAttempts,
//     otherwise with the instant of the next attempt, exponential back-off), command
//     ID derived from the message ID and the attempt number.
//
// Its progress is nothing but those events, so a restart resumes exactly where the
// events say: a message with an email.sent is never sent again, a queued one without
// is sent (again, if the process died after the relay accepted it and before
// email.sent was stored: the one window where a duplicate is possible, and it carries
// the same Message-ID, so receivers can drop it). A graceful stop never abandons an
// accepted message unrecorded.
type Outbox struct {
	Handler     *commands.Handler
	Index       *Index
	Accounts    Accounts
	Attachments *AttachmentStore
	// Relays by name; "" is the default relay. An account names its relay.
	Relays  map[string]*Relay
	WaitFor func(ctx context.Context, pos uint64) error
	Clock   func() time.Time
	// RetryBase and RetryMax shape the back-off: RetryBase * 2^(attempt-1), at most
	// RetryMax (defaults 30 s and 1 h). MaxAttempts (default 12) makes the last
	// temporary failure permanent.
	RetryBase, RetryMax time.Duration
	MaxAttempts         int
	// MaxAge, when set, leaves replies older than that at first sight unsent (for a
	// first start on a store with history); 0 sends every reply.
	MaxAge time.Duration
	Log    *slog.Logger

	mu      sync.Mutex
	settled map[string]time.Time // message ID -> not before (recorded here, the Index may lag)
}

const actorOutbox = "system:email-outbox"

func (o *Outbox) now() time.Time {
	if o.Clock != nil {
		return o.Clock()
	}
	return time.Now()
}

func (o *Outbox) log() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.Default()
}

// Run delivers until ctx ends: a pass whenever the Index has news, or when the next
// retry is due, or every minute.
func (o *Outbox) Run(ctx context.Context) error {
	for {
		next := o.Flush(ctx)
		wait := time.Minute
		if !next.IsZero() {
			wait = max(min(time.Until(next), time.Minute), 10*time.Millisecond)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-o.Index.Changed():
		case <-timer.C:
		}
		timer.Stop()
	}
}

// Flush makes one pass over the outbox and returns when the next retry is due (zero
// when nothing waits).
func (o *Outbox) Flush(ctx context.Context) time.Time {
	var next time.Time
	later := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	pending := o.Index.Pending()
	o.forgetSettled(pending)
	for _, item := range pending {
		if ctx.Err() != nil {
			return next
		}
		if nb, ok := o.notBefore(item.MessageID); ok {
			if !nb.IsZero() {
				later(nb)
			}
			continue
		}
		if item.Queued == nil {
			if err := o.queue(ctx, item); err != nil && ctx.Err() == nil {
				o.log().Warn("email outbox: queue", "message", item.MessageID, "err", err)
				later(o.now().Add(o.retryBase()))
			}
			continue
		}
		if o.now().Before(item.RetryAt) {
			later(item.RetryAt)
			continue
		}
		if retry := o.deliver(ctx, item); !retry.IsZero() {
			later(retry)
		}
	}
	return next
}

func (o *Outbox) notBefore(id string) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.settled[id]
	if ok && !t.IsZero() && !o.now().Before(t) {
		delete(o.settled, id)
		return time.Time{}, false
	}
	return t, ok
}

// forgetSettled drops what the Index no longer lists (sent or failed for good).
func (o *Outbox) forgetSettled(pending []OutboxItem) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.settled) == 0 {
		return
	}
	listed := make(map[string]bool, len(pending))
	for _, item := range pending {
		listed[item.MessageID] = true
	}
	for id := range o.settled {
		if !listed[id] {
			delete(o.settled, id)
		}
	}
}

func (o *Outbox) settle(id string, until time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.settled == nil {
		o.settled = map[string]time.Time{}
	}
	o.settled[id] = until
}

func (o *Outbox) retryBase() time.Duration {
	if o.RetryBase > 0 {
		return o.RetryBase
	}
	return 30 * time.Second
}

// backoff is the pause after the n-th failed attempt.
func (o *Outbox) backoff(n int) time.Duration {
	ceiling := o.RetryMax
	if ceiling <= 0 {
		ceiling = time.Hour
	}
	d := o.retryBase()
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// queue records email.queued for a reply: its headers, decided once.
func (o *Outbox) queue(ctx context.Context, item OutboxItem) error {
	info, ok := o.Index.Ticket(item.TicketID)
	if !ok {
		return fmt.Errorf("ticket %s is not in the index", item.TicketID)
	}
	if o.MaxAge > 0 && o.now().Sub(item.ReplyAt) > o.MaxAge {
		o.log().Info("email outbox: reply older than the maximum age, not sent", "ticket", info.Number, "message", item.MessageID)
		o.settle(item.MessageID, time.Time{})
		return nil
	}
	account, ok := o.Accounts.EmailAccount(info.Account)
	if !ok {
		// Not an address of ours (any more): record why the reply is not mailed.
		return o.record(ctx, item, domain.RecordEmailFailed{
			MessageID: item.MessageID, Attempt: 1, Permanent: true,
			Reason: fmt.Sprintf("the ticket's email account %q is not configured", info.Account),
		}, commands.DeriveID("email-attempt", item.MessageID, "1"), time.Time{})
	}
	r := item.Reply
	subject := strings.TrimSpace(r.Subject)
	if subject == "" {
		subject = ReplySubject(info.Subject, info.Number)
	} else if !strings.Contains(subject, "["+info.Number+"]") {
		subject += " [" + info.Number + "]"
	}
	inReplyTo, refs := threadHeaders(info, item.MessageID, account.Domain())
	q := domain.QueueEmail{
		MessageID: item.MessageID, Kind: domain.EmailKindReply, RFCMessageID: item.MessageID + "@" + account.Domain(),
		From: account.Address, FromName: account.Name, To: r.To, CC: r.CC,
		Subject:   truncateRunes(subject, domain.MaxSubjectLen),
		InReplyTo: inReplyTo, References: refs, Account: account.Address, Relay: account.Relay,
	}
	res, err := o.Handler.Execute(ctx, item.TicketID, q, commands.Meta{CommandID: commands.DeriveID("email-queue", item.MessageID), Actor: actorOutbox})
	if err != nil {
		if errors.Is(err, domain.ErrValidation) {
			return o.record(ctx, item, domain.RecordEmailFailed{MessageID: item.MessageID, Attempt: 1, Permanent: true, Reason: err.Error()},
				commands.DeriveID("email-attempt", item.MessageID, "1"), time.Time{})
		}
		return err
	}
	return o.wait(ctx, res.Position)
}

// threadHeaders are In-Reply-To (the last customer message before the reply, else
// the message before it) and References (the thread before the reply, the last 20)
// of a reply. Our messages travel as <id@domain>; a customer email's ID is its
// Message-ID already.
func threadHeaders(info TicketInfo, messageID, domainName string) (string, []string) {
	var refs []string
	inReplyTo := ""
	for _, m := range info.Thread {
		if m.ID == messageID {
			break
		}
		rfc := m.RFCMessageID
		if rfc == "" {
			rfc = m.ID
			if !strings.Contains(rfc, "@") {
				rfc += "@" + domainName
			}
		}
		refs = append(refs, rfc)
		if m.Incoming || inReplyTo == "" {
			inReplyTo = rfc
		}
	}
	if len(refs) > 20 {
		refs = refs[len(refs)-20:]
	}
	return inReplyTo, refs
}

// deliver makes one attempt and records it; it returns when to retry (zero: done or
// nothing to do).
func (o *Outbox) deliver(ctx context.Context, item OutboxItem) time.Time {
	q := *item.Queued
	attempt := item.Attempts + 1
	info, _ := o.Index.Ticket(item.TicketID)
	out := Outgoing{Queued: q, Date: item.QueuedAt, Text: q.Body, TicketNumber: info.Number}
	if item.Reply != nil {
		out.Text, out.HTML, out.Attachments = item.Reply.Body, item.Reply.HTMLBody, item.Reply.Attachments
	}
	fail := func(se *SendError) time.Time {
		f := domain.RecordEmailFailed{MessageID: item.MessageID, Attempt: attempt, Permanent: se.Permanent,
			Code: se.Code, EnhancedCode: se.EnhancedCode, Reason: truncateBytes(se.Reason, 900)}
		if !f.Permanent && attempt >= o.maxAttempts() {
			f.Permanent, f.Reason = true, truncateBytes(fmt.Sprintf("gave up after %d attempts: %s", attempt, se.Reason), 900)
		}
		if !f.Permanent {
			f.RetryAt = o.now().Add(o.backoff(attempt)).UTC()
		}
		if err := o.record(ctx, item, f, commands.DeriveID("email-attempt", item.MessageID, fmt.Sprint(attempt)), f.RetryAt); err != nil {
			o.log().Warn("email outbox: record failure", "message", item.MessageID, "err", err)
			return o.now().Add(o.retryBase())
		}
		o.log().Warn("email delivery failed", "ticket", info.Number, "message", q.RFCMessageID, "attempt", attempt,
			"permanent", f.Permanent, "reason", f.Reason, "retry_at", f.RetryAt)
		return f.RetryAt
	}
	msg, err := Compose(out, o.Attachments)
	if err != nil {
		return fail(&SendError{Reason: "compose: " + err.Error(), Permanent: true})
	}
	relay := o.Relays[strings.ToLower(q.Relay)]
	if relay == nil {
		return fail(&SendError{Reason: fmt.Sprintf("relay %q is not configured", q.Relay)})
	}
	res, err := relay.Send(ctx, q.From, append(append([]string{}, q.To...), q.CC...), msg)
	if err != nil {
		if ctx.Err() != nil {
			return time.Time{} // stopping: the attempt did not happen as far as the relay is concerned
		}
		return fail(classify(err))
	}
	sent := domain.RecordEmailSent{MessageID: item.MessageID, RFCMessageID: q.RFCMessageID, Attempt: attempt, Relay: relay.Addr,
		Response: truncateBytes(res.Response, 900), Refused: res.Refused}
	if err := o.record(ctx, item, sent, commands.DeriveID("email-sent", item.MessageID), time.Time{}); err != nil {
		// The relay has it: never send it again from this process (a restarted one
		// would, with the same Message-ID).
		o.settle(item.MessageID, time.Time{})
		o.log().Error("email outbox: the relay accepted a message but recording it failed", "message", item.MessageID, "err", err)
		return time.Time{}
	}
	o.log().Info("email sent", "ticket", info.Number, "message", q.RFCMessageID, "attempt", attempt, "relay", relay.Addr, "response", res.Response)
	return time.Time{}
}

func (o *Outbox) maxAttempts() int {
	if o.MaxAttempts > 0 {
		return o.MaxAttempts
	}
	return 12
}

// record stores an outcome on the ticket even when ctx is ending (a stop must not
// lose what the relay was told), then waits for the Index to show it, unless ctx
// ends. Until the Index shows it the message is settled here (not before retryAt;
// zero: not at all), so this process never acts on it twice.
func (o *Outbox) record(ctx context.Context, item OutboxItem, cmd domain.TicketCommand, commandID string, retryAt time.Time) error {
	o.settle(item.MessageID, retryAt)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	res, err := o.Handler.Execute(rctx, item.TicketID, cmd, commands.Meta{CommandID: commandID, Actor: actorOutbox})
	if err != nil {
		o.mu.Lock()
		delete(o.settled, item.MessageID)
		o.mu.Unlock()
		return err
	}
	if err := o.wait(ctx, res.Position); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

func (o *Outbox) wait(ctx context.Context, pos uint64) error {
	if o.WaitFor == nil || pos == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return o.WaitFor(ctx, pos)
}
