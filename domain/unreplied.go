package domain

import (
	"fmt"
	"time"
)

// The unreplied alert tells other services (through the integration events) that a
// customer has waited longer than the support settings' unreplied_alert_minutes for an
// answer. It is recorded on the ticket, once per wait: the wait is named by its first
// unanswered customer message, and the command ID derives from the ticket and that
// message (commands.Automation), so however many processes notice it, and however
// often after restarts, one alert is stored and published.

// MaxUnrepliedAlertMinutes bounds unreplied_alert_minutes (30 days).
const MaxUnrepliedAlertMinutes = 30 * 24 * 60

// UnrepliedAlert records that the customer message MessageID has waited longer than
// ThresholdMinutes without an agent reply, counted from WaitingSince.
type UnrepliedAlert struct {
	// MessageID is the first customer message since the last agent reply.
	MessageID string `json:"message_id"`
	// WaitingSince is when the wait began: that message, or the instant the ticket
	// became Open again if that is later (a split ticket, a reopen).
	WaitingSince time.Time `json:"waiting_since"`
	// ThresholdMinutes is the setting the wait exceeded.
	ThresholdMinutes int `json:"threshold_minutes"`
}

func (UnrepliedAlert) EventType() string { return "ticket.unreplied_alert" }

// RecordUnrepliedAlert records the alert for the waiting message MessageID. The
// automation reactor sends it; the decision checks the wait on the ticket itself.
type RecordUnrepliedAlert struct {
	MessageID string
}

func (RecordUnrepliedAlert) CommandName() string { return "record_unreplied_alert" }

// DueUnrepliedAlert is an alert a ticket owes (from the read model).
type DueUnrepliedAlert struct {
	TicketID     string
	MessageID    string
	WaitingSince time.Time
}

// WaitingMessage is the customer message a ticket's thread is waiting to have
// answered: the first incoming message after the last agent reply, if any.
func (t *Ticket) WaitingMessage() (MessageRef, bool) {
	var waiting MessageRef
	found := false
	for _, m := range t.Messages {
		switch {
		case m.Direction == Outgoing:
			found = false
		case !found:
			waiting, found = m, true
		}
	}
	return waiting, found
}

// UnrepliedWaitStart is the instant a wait counts from: the message, or the instant the
// ticket became Open, whichever is later.
func UnrepliedWaitStart(messageAt, openSince time.Time) time.Time {
	if openSince.After(messageAt) {
		return openSince.UTC()
	}
	return messageAt.UTC()
}

func (c RecordUnrepliedAlert) decideTicket(t *Ticket, d Decision) ([]Payload, error) {
	minutes := d.Ref.Settings().UnrepliedAlertMinutes
	if minutes <= 0 {
		return nil, fmt.Errorf("unreplied alerts are disabled (unreplied_alert_minutes is %d): %w", minutes, ErrInvalidTransition)
	}
	if t.Status != StatusOpen {
		return nil, &TransitionError{Action: "record an unreplied alert on", From: t.Status}
	}
	waiting, ok := t.WaitingMessage()
	if !ok || waiting.ID != c.MessageID {
		return nil, fmt.Errorf("message %s is not waiting for a reply: %w", c.MessageID, ErrInvalidTransition)
	}
	since := UnrepliedWaitStart(waiting.At, t.StatusSince)
	threshold := time.Duration(minutes) * time.Minute
	if d.Now.Before(since.Add(threshold)) {
		return nil, fmt.Errorf("the message has waited less than %d minutes: %w", minutes, ErrInvalidTransition)
	}
	return []Payload{UnrepliedAlert{MessageID: c.MessageID, WaitingSince: since, ThresholdMinutes: minutes}}, nil
}
