package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/domain"
)

func TestEmailAccountDecisions(t *testing.T) {
	var s domain.EmailAccountsState
	ref := newRef()
	payloads, err := domain.DecideSaveEmailAccount(&s, domain.EmailAccount{Address: " Support@Example.COM ", Name: "Support", DefaultPriority: "High"}, ref)
	if err != nil {
		t.Fatal(err)
	}
	saved := payloads[0].(domain.EmailAccountSaved)
	if saved.Address != "support@example.com" {
		t.Fatalf("address %q, want it lower-cased", saved.Address)
	}
	for _, e := range stream(domain.EmailAccountsStream, saved) {
		domain.EvolveEmailAccounts(&s, e)
	}
	if a, ok := s.Lookup("SUPPORT@example.com"); !ok || a.Name != "Support" || a.Domain() != "example.com" {
		t.Fatalf("lookup %+v %v", a, ok)
	}
	// Saving the same settings again decides nothing.
	if p, err := domain.DecideSaveEmailAccount(&s, domain.EmailAccount(saved), ref); err != nil || len(p) != 0 {
		t.Fatalf("unchanged save: %v %v", p, err)
	}
	for _, bad := range []domain.EmailAccount{
		{Address: "not an address"},
		{Address: "a@example.com", DefaultPriority: "Urgent"},
		{Address: "a@example.com", DefaultTicketType: "Nope"},
		{Address: "a@example.com", Relay: "bad relay!"},
		{Address: "a@example.com", Name: "two\nlines"},
		{Address: "a@example.com", IMAP: &domain.EmailIMAP{Server: "no-port", Username: "u"}},
		{Address: "a@example.com", IMAP: &domain.EmailIMAP{Server: "h:993", Username: "u", Security: "ssl"}},
		{Address: "a@example.com", IMAP: &domain.EmailIMAP{Server: "h:993", Username: "u", PasswordEnv: "not a name"}},
	} {
		if _, err := domain.DecideSaveEmailAccount(&s, bad, ref); !errors.Is(err, domain.ErrValidation) {
			t.Errorf("%+v: err = %v, want a validation error", bad, err)
		}
	}
	if _, err := domain.DecideRemoveEmailAccount(&s, "other@example.com"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("remove unknown: %v", err)
	}
	p, err := domain.DecideRemoveEmailAccount(&s, "Support@example.com")
	if err != nil || p[0].(domain.EmailAccountRemoved).Address != "support@example.com" {
		t.Fatalf("remove: %v %v", p, err)
	}
}

// TestEmailCommandsKeepStatus: the email facts never change a ticket's status (a
// bounce on a resolved ticket leaves it resolved).
func TestEmailCommandsKeepStatus(t *testing.T) {
	ref := newRef()
	tk := &domain.Ticket{}
	apply := func(cmd domain.TicketCommand) {
		t.Helper()
		payloads, err := domain.DecideTicket(tk, cmd, domain.Decision{Now: t0, Ref: ref})
		if err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
		events, err := domain.NewEvents(domain.TicketStream(ticketID), tk.Version, tk.LastHash, domain.Metadata{At: t0}, func(int) string { return "e" }, payloads)
		if err != nil {
			t.Fatal(err)
		}
		domain.EvolveTicket(tk, events[0])
	}
	apply(domain.CreateTicket{TicketID: ticketID, Number: number, OpeningMessageID: "m1@customer.example",
		TicketFieldsData: domain.TicketFieldsData{Subject: subject, RaisedBy: raisedBy, Channel: domain.ChannelEmail}})
	apply(domain.ResolveTicket{})
	for _, cmd := range []domain.TicketCommand{
		domain.RecordEmailReceived{MessageID: "m1@customer.example", Account: "support@example.com", From: raisedBy, ThreadedBy: domain.ThreadedNew, Via: "smtp"},
		domain.QueueEmail{MessageID: "ack", Kind: domain.EmailKindAutoReply, RFCMessageID: "ack@example.com", From: "support@example.com", To: []string{raisedBy}, Subject: "Re: x"},
		domain.RecordEmailFailed{MessageID: "ack", Attempt: 1, Reason: "451", RetryAt: t0.Add(time.Minute)},
		domain.RecordEmailSent{MessageID: "ack", RFCMessageID: "ack@example.com", Attempt: 2, Response: "ok"},
		domain.RecordBounce{MessageID: "ack@example.com", Recipient: raisedBy, Status: "5.1.1", Action: "failed"},
	} {
		apply(cmd)
		if tk.Status != domain.StatusResolved {
			t.Fatalf("%T moved the ticket to %s", cmd, tk.Status)
		}
	}
	if len(tk.Messages) != 1 {
		t.Fatalf("thread %v: email facts are not thread messages", tk.Messages)
	}
	for _, bad := range []domain.TicketCommand{
		domain.RecordEmailReceived{MessageID: "", Account: "a@example.com", ThreadedBy: domain.ThreadedNew},
		domain.RecordEmailReceived{MessageID: "x", Account: "a@example.com", ThreadedBy: "guess"},
		domain.QueueEmail{MessageID: "x", Kind: "spam", RFCMessageID: "x@y", From: "a@example.com", To: []string{"b@example.com"}},
		domain.QueueEmail{MessageID: "x", Kind: domain.EmailKindReply, RFCMessageID: "x@y", From: "a@example.com"},
		domain.QueueEmail{MessageID: "x", Kind: domain.EmailKindReply, RFCMessageID: "x@y", From: "a@example.com", To: []string{"b@example.com"}, Subject: "a\r\nBcc: evil@example.com"},
		domain.RecordEmailFailed{MessageID: "x", Attempt: 1, Reason: "temporary without retry_at"},
		domain.RecordEmailSent{MessageID: "x", Attempt: 0},
		domain.RecordBounce{MessageID: "x"},
	} {
		if _, err := domain.DecideTicket(tk, bad, domain.Decision{Now: t0, Ref: ref}); !errors.Is(err, domain.ErrValidation) {
			t.Errorf("%+v: err = %v, want a validation error", bad, err)
		}
	}
}
