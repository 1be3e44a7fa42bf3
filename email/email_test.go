package email

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	netsmtp "net/smtp"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
)

var numberToken = regexp.MustCompile(`\[(TKT-\d{4}-\d{6})\]`)

// TestEmailRoundTrip is the channel end to end: a real email to the listener opens a
// ticket and the acknowledgement reaches the relay with the ticket number; a reply to
// the acknowledgement threads into the same ticket; an agent reply reaches the relay
// with the threading headers; a reply to that threads too.
func TestEmailRoundTrip(t *testing.T) {
	hs := newHarness(t, harnessOptions{})

	// 1. A new mail opens a ticket, acknowledged automatically.
	hs.mustSend(alice, []string{support}, newMail("Alice Martin <"+alice+">", "m1@customer.example", "Printer on fire", "Smoke everywhere.\n"))
	ack := hs.relay.waitFor(1)[0]
	ticketID := hs.ticketOf("m1@customer.example")
	info, _ := hs.index.Ticket(ticketID)
	if m := numberToken.FindStringSubmatch(ack.Header.Get("Subject")); m == nil || m[1] != info.Number {
		t.Fatalf("ack subject %q has no ticket number %s", ack.Header.Get("Subject"), info.Number)
	}
	if got := ack.Header.Get("Auto-Submitted"); got != "auto-replied" {
		t.Errorf("ack Auto-Submitted = %q", got)
	}
	if got := ack.Header.Get("In-Reply-To"); got != "<m1@customer.example>" {
		t.Errorf("ack In-Reply-To = %q", got)
	}
	if !strings.Contains(ack.Header.Get("References"), "<m1@customer.example>") {
		t.Errorf("ack References = %q", ack.Header.Get("References"))
	}
	ackID, _ := ack.Header.MessageID()
	if !strings.HasSuffix(ackID, "@example.com") || !slices.Equal(ack.Rcpts, []string{alice}) || ack.From != support {
		t.Errorf("ack Message-ID %q, envelope %s -> %v", ackID, ack.From, ack.Rcpts)
	}
	if !strings.Contains(ack.Text, info.Number) {
		t.Errorf("ack text %q", ack.Text)
	}
	events := hs.events(ticketID)
	created := payloadOf[domain.TicketCreated](t, events)[0]
	if created.Channel != domain.ChannelEmail || created.RaisedBy != alice || created.Subject != "Printer on fire" ||
		created.Description != "Smoke everywhere.\n" || created.EmailAccount != support || created.Priority != "Medium" ||
		created.OpeningMessageID != "m1@customer.example" {
		t.Fatalf("created %+v", created)
	}
	eventually(t, "email.sent of the ack", func() bool { return countType(hs.events(ticketID), "email.sent") == 1 })

	// 2. Replying to the acknowledgement continues the ticket.
	hs.mustSend(alice, []string{support}, newMail(alice, "m2@customer.example", "Re: "+ack.Header.Get("Subject"),
		"It is still smoking.\n\nOn Mon, 2 Mar 2026 at 10:00, Example Support <support@example.com> wrote:\n> We have received your message\n",
		[2]string{"In-Reply-To", "<" + ackID + ">"}, [2]string{"References", "<m1@customer.example> <" + ackID + ">"}))
	if got := hs.ticketOf("m2@customer.example"); got != ticketID {
		t.Fatalf("the reply to the ack opened ticket %s, want %s", got, ticketID)
	}
	msgs := payloadOf[domain.CustomerMessageReceived](t, hs.events(ticketID))
	if len(msgs) != 1 || msgs[0].MessageID != "m2@customer.example" || msgs[0].Body != "It is still smoking." || msgs[0].Channel != domain.ChannelEmail {
		t.Fatalf("customer messages %+v", msgs)
	}
	received := payloadOf[domain.EmailReceived](t, hs.events(ticketID))
	if len(received) != 2 || received[1].ThreadedBy != domain.ThreadedInReplyTo || received[0].ThreadedBy != domain.ThreadedNew {
		t.Fatalf("email.received %+v", received)
	}

	// 3. An agent reply reaches the relay, threaded.
	res, err := hs.h.Execute(hs.ctx, ticketID, domain.SendReply{Body: "A technician is on the way.", HTMLBody: "<p>A technician is <b>on the way</b>.</p>", CC: []string{"carol@customer.example"}},
		commands.Meta{CommandID: "agent-reply-1", Actor: "agent@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	reply := payloadOf[domain.ReplySent](t, res.Events)[0]
	got := hs.relay.waitFor(2)[1]
	replyMsgID, _ := got.Header.MessageID()
	if replyMsgID != reply.MessageID+"@example.com" {
		t.Errorf("reply Message-ID %q, want %s@example.com", replyMsgID, reply.MessageID)
	}
	if irt := got.Header.Get("In-Reply-To"); irt != "<m2@customer.example>" {
		t.Errorf("reply In-Reply-To %q", irt)
	}
	if refs := got.Header.Get("References"); refs != "<m1@customer.example> <m2@customer.example>" {
		t.Errorf("reply References %q", refs)
	}
	if subj := got.Header.Get("Subject"); subj != "Re: Printer on fire ["+info.Number+"]" {
		t.Errorf("reply subject %q", subj)
	}
	if ct, _, _ := got.Header.ContentType(); ct != "multipart/alternative" {
		t.Errorf("reply content type %q", ct)
	}
	if !slices.Equal(got.Rcpts, []string{alice, "carol@customer.example"}) || got.Header.Get("Auto-Submitted") != "" {
		t.Errorf("reply recipients %v, Auto-Submitted %q", got.Rcpts, got.Header.Get("Auto-Submitted"))
	}
	if got.Text != "A technician is on the way." {
		t.Errorf("reply text %q", got.Text)
	}
	eventually(t, "email.sent of the reply", func() bool {
		for _, s := range payloadOf[domain.EmailSent](t, hs.events(ticketID)) {
			if s.MessageID == reply.MessageID && s.Attempt == 1 && strings.Contains(s.Response, "OK") {
				return true
			}
		}
		return false
	})

	// 4. The customer answers the agent's reply: same ticket, and Carol, copied, is a
	// participant now.
	hs.mustSend(alice, []string{support}, newMail(alice, "m3@customer.example", "Re: Printer on fire ["+info.Number+"]", "Thanks!",
		[2]string{"In-Reply-To", "<" + replyMsgID + ">"}))
	if hs.ticketOf("m3@customer.example") != ticketID {
		t.Fatal("the answer to the agent reply opened another ticket")
	}
	if !hs.index.IsParticipant(ticketID, "carol@customer.example") {
		t.Error("carol, copied on the reply, is not a participant")
	}
	if n := len(hs.relay.received()); n != 2 {
		t.Errorf("the relay got %d messages; replies to a ticket must not be acknowledged", n)
	}
}

// TestEmailAttachmentsAndCharsets: a message with an inline image, an attachment and
// HTML stores the content on disk by SHA-256 and only references in the events.
func TestEmailAttachmentsAndCharsets(t *testing.T) {
	hs := newHarness(t, harnessOptions{})
	hs.mustSend("bob@customer.example", []string{support}, string(readFixture(t, "inline-image.eml")))
	hs.mustSend("danielle@client.example", []string{support}, string(readFixture(t, "windows1252.eml")))
	hs.mustSend("juergen@kunde.example", []string{support}, string(readFixture(t, "encoded-subject.eml")))

	created := payloadOf[domain.TicketCreated](t, hs.events(hs.ticketOf("inline-0001@customer.example")))[0]
	if len(created.Attachments) != 3 {
		t.Fatalf("attachments %+v", created.Attachments)
	}
	names := []string{}
	for _, a := range created.Attachments {
		names = append(names, a.Name)
		path, err := hs.in.Attachments.Path(a.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil || int64(len(data)) != a.Size {
			t.Fatalf("%s: stored %d bytes (%v), want %d", a.Name, len(data), err, a.Size)
		}
	}
	if !slices.Equal(names, []string{"message.html", "error-shot@customer.example", "invoice 2026-03.pdf"}) {
		t.Fatalf("attachment names %q", names)
	}
	temps, _ := filepath.Glob(filepath.Join(hs.dir, "attachments", "sha256", "*", ".tmp-*"))
	if len(temps) != 0 {
		t.Fatalf("temporary files left: %v", temps)
	}
	if !strings.Contains(created.Description, "See the screenshot below.") {
		t.Fatalf("description %q", created.Description)
	}
	cp := payloadOf[domain.TicketCreated](t, hs.events(hs.ticketOf("cp1252-0001@client.example")))[0]
	if !strings.Contains(cp.Description, "€ 1 250") || !strings.Contains(cp.Description, "Daniëlle") {
		t.Fatalf("Windows-1252 description %q", cp.Description)
	}
	enc := payloadOf[domain.TicketCreated](t, hs.events(hs.ticketOf("encoded-0001@kunde.example")))[0]
	if enc.Subject != "Grüße 😀 aus München über den Dienst" {
		t.Fatalf("encoded-word subject %q", enc.Subject)
	}
}

// TestEmailLoopProtection: automatic mail gets no acknowledgement, and the rate
// limit stops a helpdesk that does not say its mail is automatic.
func TestEmailLoopProtection(t *testing.T) {
	hs := newHarness(t, harnessOptions{})
	cases := []struct {
		name, from string
		extra      [][2]string
		nullSender bool
	}{
		{"auto-submitted", "a1@other.example", [][2]string{{"Auto-Submitted", "auto-replied"}}, false},
		{"auto-generated", "a2@other.example", [][2]string{{"Auto-Submitted", "auto-generated"}}, false},
		{"precedence-bulk", "a3@other.example", [][2]string{{"Precedence", "bulk"}}, false},
		{"precedence-list", "a4@other.example", [][2]string{{"Precedence", "list"}}, false},
		{"x-auto-response-suppress", "a5@other.example", [][2]string{{"X-Auto-Response-Suppress", "All"}}, false},
		{"list-unsubscribe", "a6@other.example", [][2]string{{"List-Unsubscribe", "<mailto:u@other.example>"}}, false},
		{"list-id", "a7@other.example", [][2]string{{"List-Id", "<news.other.example>"}}, false},
		{"mailer-daemon", "MAILER-DAEMON@other.example", nil, false},
		{"noreply", "noreply@other.example", nil, false},
		{"postmaster", "postmaster@other.example", nil, false},
		{"our-own-address", support, nil, false},
		{"null-sender", "a8@other.example", nil, true},
	}
	for i, c := range cases {
		id := fmt.Sprintf("loop-%d@other.example", i)
		from := c.from
		if c.nullSender {
			from = ""
		}
		hs.mustSend(from, []string{support}, newMail(c.from, id, "Automatic "+c.name, "body", c.extra...))
		events := hs.events(hs.ticketOf(id))
		if n := countType(events, "email.queued"); n != 0 {
			t.Errorf("%s: %d acknowledgement(s) queued", c.name, n)
		}
		rec := payloadOf[domain.EmailReceived](t, events)
		if len(rec) != 1 || !strings.HasPrefix(rec[0].NoAutoReply, "automatic message") {
			t.Errorf("%s: email.received %+v", c.name, rec)
		}
	}
	// Our own Message-ID coming back (e.g. a forwarding rule) is not even a new
	// ticket: it is a message we already have.
	if n := hs.relay.quietFor(100 * time.Millisecond); n != 0 {
		t.Fatalf("the relay got %d messages", n)
	}

	// The rate limit: at most 3 automatic replies per hour to one address.
	for i := range 5 {
		hs.mustSend("eve@customer.example", []string{support}, newMail("eve@customer.example", fmt.Sprintf("eve-%d@customer.example", i), fmt.Sprintf("Question %d", i), "?"))
	}
	hs.relay.waitFor(3)
	if n := hs.relay.quietFor(150 * time.Millisecond); n != 3 {
		t.Fatalf("%d acknowledgements to one sender, want 3", n)
	}
	last := payloadOf[domain.EmailReceived](t, hs.events(hs.ticketOf("eve-4@customer.example")))[0]
	if !strings.HasPrefix(last.NoAutoReply, "rate limit: 3 automatic replies") {
		t.Fatalf("no_auto_reply %q", last.NoAutoReply)
	}
}

// TestEmailNoPingPong: two helpdesks acknowledging each other. One that marks its
// acknowledgements Auto-Submitted gets one acknowledgement and the exchange ends; one
// that does not (a new ticket for every mail, no threading headers) is stopped by the
// rate limit.
func TestEmailNoPingPong(t *testing.T) {
	for _, tc := range []struct {
		name      string
		marks     bool
		maxToThem int
	}{{"well-behaved", true, 1}, {"badly-behaved", false, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			other := "helpdesk@other.example"
			var current atomic.Pointer[harness]
			var sent atomic.Int32
			relay := newTestRelay(t, relayOptions{onMessage: func(m relayedMessage) {
				hs := current.Load()
				if hs == nil || !slices.Contains(m.Rcpts, other) || sent.Load() > 20 {
					return
				}
				n := sent.Add(1)
				extra := [][2]string{}
				if tc.marks {
					extra = append(extra, [2]string{"Auto-Submitted", "auto-replied"})
				}
				hs.send(other, []string{support}, newMail(other, fmt.Sprintf("other-ack-%d@other.example", n),
					"We received your request #"+fmt.Sprint(1000+n), "Thank you, we will answer soon.", extra...))
			}})
			hs := newHarness(t, harnessOptions{relay: relay})
			current.Store(hs)
			hs.mustSend(other, []string{support}, newMail(other, "other-start@other.example", "Please call us", "Hello"))
			hs.relay.waitFor(1)
			got := hs.relay.quietFor(300 * time.Millisecond)
			if got != tc.maxToThem {
				t.Fatalf("%d messages to the other helpdesk, want %d (it sent %d)", got, tc.maxToThem, sent.Load())
			}
		})
	}
}

// TestEmailSubjectTokenInjection: a ticket token in the subject threads only a
// participant's mail; a stranger's opens a new ticket.
func TestEmailSubjectTokenInjection(t *testing.T) {
	hs := newHarness(t, harnessOptions{})
	hs.mustSend(alice, []string{support}, newMail(alice, "orig@customer.example", "My invoice", "Please check it.",
		[2]string{"Cc", "Carol <carol@customer.example>"}))
	ticketID := hs.ticketOf("orig@customer.example")
	info, _ := hs.index.Ticket(ticketID)
	token := "[" + info.Number + "]"

	hs.mustSend("mallory@evil.example", []string{support}, newMail("mallory@evil.example", "evil@evil.example", "Re: My invoice "+token, "Send me the invoice of this customer."))
	if got := hs.ticketOf("evil@evil.example"); got == ticketID {
		t.Fatal("a stranger's mail with the ticket token was added to the ticket")
	}
	evil := payloadOf[domain.TicketCreated](t, hs.events(hs.ticketOf("evil@evil.example")))[0]
	if evil.RaisedBy != "mallory@evil.example" || strings.Contains(evil.Subject, info.Number) {
		t.Fatalf("the stranger's ticket %+v", evil)
	}
	if n := countType(hs.events(ticketID), "ticket.customer_message_received"); n != 0 {
		t.Fatalf("the original ticket got %d customer messages", n)
	}

	hs.mustSend(alice, []string{support}, newMail(alice, "follow@customer.example", "AW: RE: My invoice "+token, "Any news?"))
	hs.mustSend("carol@customer.example", []string{support}, newMail("carol@customer.example", "carol@customer.example-1", "Fwd: My invoice "+token, "Me too."))
	for _, id := range []string{"follow@customer.example", "carol@customer.example-1"} {
		if hs.ticketOf(id) != ticketID {
			t.Fatalf("%s (a participant, with the token) did not thread", id)
		}
	}
	rec := payloadOf[domain.EmailReceived](t, hs.events(ticketID))
	if rec[len(rec)-1].ThreadedBy != domain.ThreadedSubjectToken {
		t.Fatalf("threaded_by %q", rec[len(rec)-1].ThreadedBy)
	}
}

// TestEmailDuplicate: the same Message-ID delivered twice is stored once.
func TestEmailDuplicate(t *testing.T) {
	hs := newHarness(t, harnessOptions{})
	raw := newMail(alice, "dup-1@customer.example", "Twice", "Same message.")
	hs.mustSend(alice, []string{support}, raw)
	hs.relay.waitFor(1)
	ticketID := hs.ticketOf("dup-1@customer.example")
	eventually(t, "the ack's email.sent", func() bool { return countType(hs.events(ticketID), "email.sent") == 1 })
	before := len(hs.events(ticketID))
	hs.mustSend(alice, []string{support}, raw)
	out, err := hs.in.Ingest(hs.ctx, Envelope{Rcpts: []string{support}, Via: "test"}, []byte(raw))
	if err != nil || out.Action != "duplicate" || out.TicketID != ticketID {
		t.Fatalf("third delivery: %+v %v", out, err)
	}
	if after := len(hs.events(ticketID)); after != before {
		t.Fatalf("events %d -> %d: %v", before, after, eventTypes(hs.events(ticketID)))
	}
	// A follow-up delivered twice: one customer message.
	follow := newMail(alice, "dup-2@customer.example", "Re: Twice", "Again.", [2]string{"In-Reply-To", "<dup-1@customer.example>"})
	hs.mustSend(alice, []string{support}, follow)
	hs.mustSend(alice, []string{support}, follow)
	if n := countType(hs.events(ticketID), "ticket.customer_message_received"); n != 1 {
		t.Fatalf("%d customer messages", n)
	}
	if hs.relay.quietFor(100*time.Millisecond) != 1 {
		t.Fatal("more than one acknowledgement")
	}
	// No Message-ID at all: the content names it, so a redelivery is recognised too.
	noID := rawMessage([][2]string{{"From", alice}, {"To", support}, {"Subject", "No id"}}, "body\n")
	hs.mustSend(alice, []string{support}, noID)
	tickets := len(hs.index.tickets)
	hs.mustSend(alice, []string{support}, noID)
	noIDTicket := hs.ticketOf(syntheticMessageID([]byte(noID)))
	if events := hs.events(noIDTicket); len(hs.index.tickets) != tickets || countType(events, "ticket.created") != 1 || countType(events, "email.received") != 1 {
		t.Fatalf("a message without Message-ID was stored twice: %v", eventTypes(events))
	}
}

// TestEmailOversize: a message over the limit is refused with 552 5.3.4 and nothing is
// stored.
func TestEmailOversize(t *testing.T) {
	hs := newHarness(t, harnessOptions{maxBytes: 64 << 10})
	pos := hs.lastPosition()
	big := newMail(alice, "big@customer.example", "Big", strings.Repeat("0123456789abcdef\n", 8000))
	err := hs.send(alice, []string{support}, big)
	if smtpCode(err) != 552 || !strings.Contains(err.Error(), "5.3.4") {
		t.Fatalf("send: %v, want 552 5.3.4", err)
	}
	if hs.lastPosition() != pos {
		t.Fatal("something was stored")
	}
	if entries, _ := os.ReadDir(filepath.Join(hs.dir, "attachments")); len(entries) != 0 {
		t.Fatal("attachments were written")
	}
	// A message under the limit still goes through on the same listener.
	hs.mustSend(alice, []string{support}, newMail(alice, "small@customer.example", "Small", "ok"))
	hs.ticketOf("small@customer.example")
}

// TestEmailMalformed: an unreadable header is refused (554 5.6.0, nothing stored); a
// broken MIME body is kept as plain text (the documented decision).
func TestEmailMalformed(t *testing.T) {
	hs := newHarness(t, harnessOptions{})
	pos := hs.lastPosition()
	err := hs.send(alice, []string{support}, string(readFixture(t, "malformed-header.eml")))
	if smtpCode(err) != 554 || !strings.Contains(err.Error(), "5.6.0") || !strings.Contains(err.Error(), "malformed message") {
		t.Fatalf("send: %v, want 554 5.6.0 malformed message", err)
	}
	if hs.lastPosition() != pos {
		t.Fatal("something was stored")
	}
	hs.mustSend(alice, []string{support}, string(readFixture(t, "malformed-multipart.eml")))
	created := payloadOf[domain.TicketCreated](t, hs.events(hs.ticketOf("broken-0001@customer.example")))[0]
	if created.Subject != "Broken attachment" || !strings.Contains(created.Description, "not base64 at all") {
		t.Fatalf("fallback ticket %+v", created)
	}
}

// TestEmailUnknownRecipient: RCPT for an address that is not an account is refused at
// RCPT time with 550 5.1.1.
func TestEmailUnknownRecipient(t *testing.T) {
	hs := newHarness(t, harnessOptions{})
	c, err := netsmtp.Dial(hs.smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail(alice); err != nil {
		t.Fatal(err)
	}
	err = c.Rcpt("nobody@example.com")
	if smtpCode(err) != 550 || !strings.Contains(err.Error(), "5.1.1") {
		t.Fatalf("RCPT nobody: %v, want 550 5.1.1", err)
	}
	if err := c.Rcpt("SUPPORT@example.com"); err != nil {
		t.Fatalf("RCPT support (other case): %v", err)
	}
}

// TestEmailBounce: a DSN about one of our messages is recorded on its ticket without
// reopening it or counting as a customer message.
func TestEmailBounce(t *testing.T) {
	hs := newHarness(t, harnessOptions{})
	hs.mustSend(alice, []string{support}, newMail(alice, "b1@customer.example", "Printer", "on fire"))
	ticketID := hs.ticketOf("b1@customer.example")
	res, err := hs.h.Execute(hs.ctx, ticketID, domain.SendReply{Body: "On our way."}, commands.Meta{CommandID: "bounce-reply"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hs.h.Execute(hs.ctx, ticketID, domain.ResolveTicket{}, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	reply := payloadOf[domain.ReplySent](t, res.Events)[0]
	hs.relay.waitFor(2)
	eventually(t, "email.sent of the ack and the reply", func() bool { return countType(hs.events(ticketID), "email.sent") == 2 })
	dsn := strings.ReplaceAll(string(readFixture(t, "dsn.eml")), "5b1c3c3e-2c2f-5d0e-9a55-0c3c6e1f0a11@example.com", reply.MessageID+"@example.com")
	if err := hs.send("", []string{support}, dsn); err != nil {
		t.Fatal(err)
	}
	events := hs.events(ticketID)
	bounces := payloadOf[domain.DeliveryBounced](t, events)
	if len(bounces) != 1 || bounces[0].Recipient != alice || bounces[0].Status != "5.1.1" || bounces[0].MessageID != reply.MessageID+"@example.com" ||
		!strings.Contains(bounces[0].Diagnostic, "User unknown") {
		t.Fatalf("bounces %+v", bounces)
	}
	if events[len(events)-1].Type != "ticket.delivery_bounced" || countType(events, "ticket.customer_message_received") != 0 {
		t.Fatalf("events %v", eventTypes(events))
	}
	var state domain.Ticket
	for _, e := range events {
		domain.EvolveTicket(&state, e)
	}
	if state.Status != domain.StatusResolved {
		t.Fatalf("status %s after a bounce, want Resolved", state.Status)
	}
	if info, _ := hs.index.Ticket(ticketID); info.Failing[alice] != "5.1.1" {
		t.Fatalf("failing recipients %v", info.Failing)
	}
	// The same DSN again is recorded once; one about nothing we know is dropped.
	hs.send("", []string{support}, dsn)
	if n := countType(hs.events(ticketID), "ticket.delivery_bounced"); n != 1 {
		t.Fatalf("%d bounce events", n)
	}
	pos := hs.lastPosition()
	unknown := strings.ReplaceAll(string(readFixture(t, "dsn.eml")), "5b1c3c3e", "00000000")
	if err := hs.send("", []string{support}, strings.ReplaceAll(unknown, "ABC123@mx", "XYZ@mx")); err != nil {
		t.Fatal(err)
	}
	if hs.lastPosition() != pos {
		t.Fatal("an unmatched bounce was stored")
	}
}

// TestOutboxRestart: a restart in the middle of outbound delivery neither drops nor
// duplicates. The first process queues replies, fails an attempt, sends some, and one
// is queued but not sent when it stops; another reply is recorded while no process
// runs; the second process (new handler, new Index rebuilt from the store) finishes.
// Each Message-ID reaches the relay exactly once, and each reply has exactly one
// email.queued and one email.sent.
func TestOutboxRestart(t *testing.T) {
	relay := newTestRelay(t, relayOptions{failData: 1})
	first := newHarness(t, harnessOptions{relay: relay, noOutbox: true, retryBase: 300 * time.Millisecond})
	created, err := first.h.CreateTicket(first.ctx, domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
		Subject: "Outbox", RaisedBy: alice, EmailAccount: support, Channel: domain.ChannelAPI}}, commands.Meta{CommandID: "outbox-ticket"})
	if err != nil {
		t.Fatal(err)
	}
	ticketID := created.TicketID
	reply := func(h *harness, n int) {
		t.Helper()
		res, err := h.h.Execute(h.ctx, ticketID, domain.SendReply{Body: fmt.Sprintf("Reply %d", n)}, commands.Meta{CommandID: fmt.Sprint("reply-", n)})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.runner.WaitFor(h.ctx, res.Position); err != nil {
			t.Fatal(err)
		}
	}
	for n := 1; n <= 3; n++ {
		reply(first, n)
	}
	first.outbox.Flush(first.ctx) // queues 1-3
	first.outbox.Flush(first.ctx) // attempt 1 of each: the first fails (451), 2 and 3 are sent
	if got := len(relay.received()); got != 2 {
		t.Fatalf("after the first attempts the relay has %d messages, want 2", got)
	}
	reply(first, 4)
	first.outbox.Flush(first.ctx) // queues 4; "crash" before sending it
	first.close()

	reply2h := newHarness(t, harnessOptions{store: first.store, dir: first.dir, relay: relay, noOutbox: true, retryBase: 50 * time.Millisecond})
	reply(reply2h, 5) // recorded while no outbox ran
	deadline := time.Now().Add(waitTime)
	for len(relay.received()) < 5 && time.Now().Before(deadline) {
		next := reply2h.outbox.Flush(reply2h.ctx)
		if !next.IsZero() {
			time.Sleep(time.Until(next))
		}
	}
	reply2h.outbox.Flush(reply2h.ctx)
	ids := map[string]int{}
	for _, m := range relay.received() {
		id, _ := m.Header.MessageID()
		ids[id]++
	}
	if len(ids) != 5 {
		t.Fatalf("the relay got %d distinct messages, want 5: %v", len(ids), ids)
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("%s was sent %d times", id, n)
		}
	}
	events := reply2h.events(ticketID)
	if q, s := countType(events, "email.queued"), countType(events, "email.sent"); q != 5 || s != 5 {
		t.Fatalf("%d queued, %d sent: %v", q, s, eventTypes(events))
	}
	failed := payloadOf[domain.EmailFailed](t, events)
	if len(failed) != 1 || failed[0].Attempt != 1 || failed[0].Permanent || failed[0].Code != 451 || failed[0].RetryAt.IsZero() {
		t.Fatalf("failures %+v", failed)
	}
	for _, s := range payloadOf[domain.EmailSent](t, events) {
		if s.MessageID == failed[0].MessageID && s.Attempt != 2 {
			t.Fatalf("the retried message was sent at attempt %d", s.Attempt)
		}
	}
	// Running the outbox again sends nothing.
	reply2h.outbox.Flush(reply2h.ctx)
	if len(relay.received()) != 5 {
		t.Fatal("a sent message was sent again")
	}
}

// TestOutboxStopMidConversation: stopping the outbox while the relay is answering
// slowly neither records a failure nor loses the message: the next process sends it
// once.
func TestOutboxStopMidConversation(t *testing.T) {
	slow := newSlowRelay(t, 400*time.Millisecond)
	hs := newHarness(t, harnessOptions{noOutbox: true})
	hs.outbox.Relays[""].Addr = slow.Addr().String()
	created, err := hs.h.CreateTicket(hs.ctx, domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
		Subject: "Slow", RaisedBy: alice, EmailAccount: support, Channel: domain.ChannelAPI}}, commands.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := hs.h.Execute(hs.ctx, created.TicketID, domain.SendReply{Body: "Hello"}, commands.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	hs.runner.WaitFor(hs.ctx, res.Position)
	hs.outbox.Flush(hs.ctx) // queue
	ctx, cancel := context.WithTimeout(hs.ctx, 150*time.Millisecond)
	hs.outbox.Flush(ctx) // the relay is still greeting when the context ends
	cancel()
	events := hs.events(created.TicketID)
	if countType(events, "email.failed") != 0 || countType(events, "email.sent") != 0 {
		t.Fatalf("events after the interrupted attempt: %v %+v", eventTypes(events), payloadOf[domain.EmailFailed](t, events))
	}
	hs.outbox.Relays[""].Addr = hs.relay.addr // the relay answers now
	hs.outbox.Flush(hs.ctx)
	if n := len(hs.relay.waitFor(1)); n != 1 {
		t.Fatalf("%d messages", n)
	}
}

// newSlowRelay accepts connections and greets only after delay.
func newSlowRelay(t *testing.T, delay time.Duration) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				time.Sleep(delay)
				c.Write([]byte("220 slow ESMTP\r\n"))
				buf := make([]byte, 512)
				c.SetReadDeadline(time.Now().Add(time.Second))
				c.Read(buf)
			}()
		}
	}()
	return ln
}

// TestOutboxPermanentFailure: a 5xx answer is recorded as permanent and not retried.
func TestOutboxPermanentFailure(t *testing.T) {
	relay := newTestRelay(t, relayOptions{rejectRcpt: []string{"gone@customer.example"}})
	hs := newHarness(t, harnessOptions{relay: relay})
	created, err := hs.h.CreateTicket(hs.ctx, domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{
		Subject: "Gone", RaisedBy: "gone@customer.example", EmailAccount: support, Channel: domain.ChannelAPI}}, commands.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hs.h.Execute(hs.ctx, created.TicketID, domain.SendReply{Body: "Hello"}, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a permanent failure", func() bool { return countType(hs.events(created.TicketID), "email.failed") == 1 })
	time.Sleep(100 * time.Millisecond)
	failed := payloadOf[domain.EmailFailed](t, hs.events(created.TicketID))
	if len(failed) != 1 || !failed[0].Permanent || failed[0].Code != 550 || failed[0].EnhancedCode != "5.1.1" {
		t.Fatalf("failures %+v", failed)
	}
	if len(hs.index.Pending()) != 0 {
		t.Fatal("a permanently failed message is still pending")
	}
}

// TestOutboxSTARTTLSAndAuth: the relay offers STARTTLS and requires AUTH: the outbox
// upgrades and authenticates.
func TestOutboxSTARTTLSAndAuth(t *testing.T) {
	relay := newTestRelay(t, relayOptions{tls: true})
	hs := newHarness(t, harnessOptions{relay: relay})
	hs.mustSend(alice, []string{support}, newMail(alice, "tls@customer.example", "Over TLS", "hello"))
	got := relay.waitFor(1)[0]
	if got.Header.Get("Auto-Submitted") != "auto-replied" {
		t.Fatalf("ack %v", got.Header)
	}
	// Without credentials the relay refuses: a failure is recorded, temporary (530
	// is 5xx: permanent).
	relay2 := newTestRelay(t, relayOptions{tls: true})
	r := &Relay{Addr: relay2.addr, TLSConfig: relay2.clientTLS, Timeout: 2 * time.Second}
	_, err := r.Send(hs.ctx, support, []string{alice}, []byte("Subject: x\r\n\r\nx\r\n"))
	se := classify(err)
	if se == nil || se.Code != 502 || !se.Permanent {
		t.Fatalf("send without auth: %v", err)
	}
	if !r.offersTLS {
		t.Fatal("the relay's STARTTLS was not noticed")
	}
}

// TestLMTP: the LMTP listener (what Postfix's lmtp transport speaks) stores mail the
// same way, with a status per recipient.
func TestLMTP(t *testing.T) {
	hs := newHarness(t, harnessOptions{lmtp: true})
	conn, err := net.Dial("tcp", hs.smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("mta.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(alice, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(support, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("other@example.com", nil); err == nil {
		t.Fatal("LMTP accepted an unknown recipient")
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(newMail(alice, "lmtp-1@customer.example", "Via LMTP", "hello")))
	statuses, err := w.CloseWithLMTPResponse()
	if err != nil || len(statuses) != 1 || statuses[support] == nil {
		t.Fatalf("LMTP statuses %v, %v", statuses, err)
	}
	rec := payloadOf[domain.EmailReceived](t, hs.events(hs.ticketOf("lmtp-1@customer.example")))
	if len(rec) != 1 || rec[0].Via != "lmtp" {
		t.Fatalf("email.received %+v", rec)
	}
}

// TestSMTPStartTLS: with a certificate the listener offers STARTTLS and stores mail
// received over it; with RequireTLS it refuses a transaction before STARTTLS (530) and
// stores nothing; without a certificate it offers no STARTTLS.
func TestSMTPStartTLS(t *testing.T) {
	serverTLS, clientTLS := selfSignedTLS(t)
	dial := func(hs *harness) *smtp.Client {
		t.Helper()
		c, err := smtp.Dial(hs.smtpAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Hello("mta.test"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	deliver := func(c *smtp.Client, id string) error {
		if err := c.Mail(alice, nil); err != nil {
			return err
		}
		if err := c.Rcpt(support, nil); err != nil {
			return err
		}
		w, err := c.Data()
		if err != nil {
			return err
		}
		if _, err := w.Write([]byte(newMail(alice, id, "Over TLS", "hello"))); err != nil {
			return err
		}
		return w.Close()
	}

	hs := newHarness(t, harnessOptions{serverTLS: serverTLS, requireTLS: true})
	c := dial(hs)
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered with a certificate")
	}
	var se *smtp.SMTPError
	if err := c.Mail(alice, nil); !errors.As(err, &se) || se.Code != 530 {
		t.Fatalf("MAIL before STARTTLS, TLS required: %v", err)
	}
	secure, err := smtp.DialStartTLS(hs.smtpAddr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer secure.Close()
	if err := deliver(secure, "tls-1@customer.example"); err != nil {
		t.Fatalf("delivery over TLS: %v", err)
	}
	if hs.ticketOf("tls-1@customer.example") == "" {
		t.Fatal("the message received over TLS opened no ticket")
	}

	plain := newHarness(t, harnessOptions{})
	if ok, _ := dial(plain).Extension("STARTTLS"); ok {
		t.Fatal("STARTTLS offered without a certificate")
	}
	if _, err := NewServer(plain.in, ServerConfig{RequireTLS: true}); err == nil {
		t.Fatal("a server requiring TLS without a certificate was made")
	}
}

// TestComposeAttachments: a reply with an attachment is multipart/mixed around
// multipart/alternative, the attachment read from the content store.
func TestComposeAttachments(t *testing.T) {
	store := &AttachmentStore{Dir: t.TempDir()}
	att, err := store.Put("report.pdf", "application/pdf", []byte("%PDF-1.4 report"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := Compose(Outgoing{Queued: domain.EmailQueued{
		Kind: domain.EmailKindReply, RFCMessageID: "x@example.com", From: support, FromName: "Support Ünicode", To: []string{alice},
		Subject: "Re: Grüße [TKT-2026-000001]", InReplyTo: "m1@customer.example", References: []string{"m1@customer.example"},
	}, Date: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), Text: "Voilà.", HTML: "<p>Voilà.</p>", Attachments: []domain.Attachment{att}}, store)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ParseInbound(raw)
	if err != nil {
		t.Fatal(err)
	}
	if in.Subject != "Re: Grüße [TKT-2026-000001]" || in.Text != "Voilà." || in.HTML != "<p>Voilà.</p>" || in.From.Name != "Support Ünicode" {
		t.Fatalf("round trip: %q %q %q %q", in.Subject, in.Text, in.HTML, in.From.Name)
	}
	if len(in.Attachments) != 1 || in.Attachments[0].Name != "report.pdf" || !bytes.Equal(in.Attachments[0].Data, []byte("%PDF-1.4 report")) {
		t.Fatalf("attachments %+v", in.Attachments)
	}
	if !bytes.Contains(raw, []byte("Content-Type: multipart/mixed")) || !bytes.Contains(raw, []byte("multipart/alternative")) {
		t.Fatalf("structure:\n%s", raw)
	}
	if bytes.Contains(raw, []byte("Grüße")) {
		t.Fatal("a header was not encoded")
	}
}
