package natsapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/commands/natsapi"
	"github.com/ticketcore/ticketcore/domain"
	natsstore "github.com/ticketcore/ticketcore/eventstore/jetstream"
)

// publishDurable sends a durable command with js.Publish from the client's connection
// and returns JetStream's acknowledgement.
func publishDurable(t *testing.T, js jetstream.JetStream, command string, headers map[string]string, body string) *jetstream.PubAck {
	t.Helper()
	msg := nats.NewMsg(natsapi.DurableSubjectPrefix + "." + command)
	for k, v := range headers {
		msg.Header.Set(k, v)
	}
	msg.Data = []byte(body)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatalf("publish %s: %v", command, err)
	}
	if ack.Stream != natsapi.CommandStream {
		t.Fatalf("stored in %s", ack.Stream)
	}
	return ack
}

// nextResult waits for the next outcome on a subscription to the result subjects: at
// most longer than the consumer's ack wait (30 s), after which JetStream delivers
// again a command whose delivery was lost (to a ticketd stopping at that moment, say).
// These tests promise that every command is processed once, not how fast.
func nextResult(t *testing.T, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	msg, err := sub.NextMsg(45 * time.Second)
	if err != nil {
		t.Fatalf("no result: %v", err)
	}
	return msg
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// waitEmpty waits until the work queue has no command left (each is removed when
// acknowledged, just after its outcome is published).
func waitEmpty(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for streamMsgs(t, js, natsapi.CommandStream) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d commands left in %s", streamMsgs(t, js, natsapi.CommandStream), natsapi.CommandStream)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Durable commands published while ticketd is down are stored by JetStream, and all
// processed, once each, when it starts again.
func TestDurableCommandsWhileServiceIsDown(t *testing.T) {
	s := newStack(t, natsstore.Config{})
	ctx := context.Background()
	js, err := jetstream.New(s.client)
	if err != nil {
		t.Fatal(err)
	}
	results, err := s.client.SubscribeSync(natsapi.ResultSubjectPrefix + ".>")
	if err != nil {
		t.Fatal(err)
	}
	stop := s.serve(t, natsapi.Config{})

	// A Go service on Watermill sends with the CQRS command bus.
	bus, err := natsapi.NewCommandBus(s.client, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Send(ctx, natsapi.Command{CommandID: "bus-1", Actor: "crm", Command: domain.CreateTicket{
		TicketFieldsData: domain.TicketFieldsData{Subject: "From the bus", RaisedBy: "dan@example.com"}}}); err != nil {
		t.Fatal(err)
	}
	r := nextResult(t, results)
	if r.Subject != natsapi.ResultSubjectPrefix+".bus-1" || r.Header.Get(natsapi.HeaderCommand) != "create" {
		t.Fatalf("result on %s, headers %v", r.Subject, r.Header)
	}
	busTicket := accepted(t, r)

	stop() // ticketd is down from here on
	const n = 50
	for i := range n {
		ack := publishDurable(t, js, "create", map[string]string{"Nats-Msg-Id": fmt.Sprintf("down-%d", i), "Actor": "importer"},
			fmt.Sprintf(`{"subject": "Imported %d", "raised_by": "bulk@example.com"}`, i))
		if ack.Duplicate {
			t.Fatalf("command %d is a duplicate", i)
		}
	}
	if ack := publishDurable(t, js, "create", map[string]string{"Nats-Msg-Id": "down-7"}, `{"subject": "Imported 7", "raised_by": "bulk@example.com"}`); !ack.Duplicate {
		t.Fatal("JetStream took the same Nats-Msg-Id twice")
	}
	// A comment on the bus's ticket, addressed by the Ticket-Id header.
	publishDurable(t, js, "comment", map[string]string{"Nats-Msg-Id": "down-comment", "Ticket-Id": busTicket.ID}, `{"body": "queued"}`)
	if got := streamMsgs(t, js, natsapi.CommandStream); got != n+1 {
		t.Fatalf("%d commands waiting, want %d", got, n+1)
	}
	if r, err := results.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("a result while ticketd is down: %s", r.Subject)
	}

	s.serve(t, natsapi.Config{})
	tickets := map[string]bool{}
	for range n + 1 {
		r := nextResult(t, results)
		a := accepted(t, r)
		id := strings.TrimPrefix(r.Subject, natsapi.ResultSubjectPrefix+".")
		if r.Header.Get(natsapi.HeaderCommandID) != id || a.Duplicate {
			t.Fatalf("result %s: %v %+v", r.Subject, r.Header, a)
		}
		if id == "down-comment" {
			if a.ID != busTicket.ID || a.Version != 2 {
				t.Fatalf("comment result %+v", a)
			}
			continue
		}
		if tickets[a.ID] {
			t.Fatalf("ticket %s reported twice", a.ID)
		}
		tickets[a.ID] = true
	}
	if len(tickets) != n {
		t.Fatalf("%d tickets, want %d", len(tickets), n)
	}
	waitEmpty(t, js)
	if r, err := results.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("an extra result: %s %s", r.Subject, r.Data)
	}

	// Exactly 50 tickets were created by the queued commands: none lost, none doubled.
	all, err := s.store.ReadAll(ctx, 1, 100000)
	if err != nil {
		t.Fatal(err)
	}
	created := map[string]int{}
	for _, rec := range all {
		e, err := domain.DecodeEvent(rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		if e.Type == "ticket.created" && strings.HasPrefix(e.CommandID, "down-") {
			created[e.CommandID]++
			if e.Actor != "importer" {
				t.Fatalf("actor %q", e.Actor)
			}
		}
	}
	if len(created) != n {
		t.Fatalf("%d creations stored, want %d", len(created), n)
	}
	for id, c := range created {
		if c != 1 {
			t.Fatalf("command %s stored %d times", id, c)
		}
	}

	// Sent again later under the same command ID (past JetStream's duplicate check: a
	// new Nats-Msg-Id), the command is recognised by the handler and stores nothing.
	publishDurable(t, js, "create", map[string]string{"Command-Id": "down-3", "Nats-Msg-Id": "down-3-again"}, `{"subject": "Imported 3", "raised_by": "bulk@example.com"}`)
	r = nextResult(t, results)
	if a := accepted(t, r); !a.Duplicate || r.Subject != natsapi.ResultSubjectPrefix+".down-3" {
		t.Fatalf("retry: %s %+v", r.Subject, a)
	}
	// The last outcome of each command stays readable in the result stream.
	stream, err := js.Stream(ctx, natsapi.ResultStream)
	if err != nil {
		t.Fatal(err)
	}
	last, err := stream.GetLastMsgForSubject(ctx, natsapi.ResultSubjectPrefix+".down-42")
	if err != nil || last.Header.Get(natsapi.HeaderStatus) != natsapi.StatusOK {
		t.Fatalf("stored result: %v %v", last, err)
	}
}

// A command that cannot be decoded goes to the dead-letter stream at once; a refused
// command is answered and not dead-lettered; a command that keeps failing is
// dead-lettered after the last allowed delivery.
func TestDurablePoisonMessages(t *testing.T) {
	s := newStack(t, natsstore.Config{})
	js, err := jetstream.New(s.client)
	if err != nil {
		t.Fatal(err)
	}
	results, err := s.client.SubscribeSync(natsapi.ResultSubjectPrefix + ".>")
	if err != nil {
		t.Fatal(err)
	}
	dead, err := s.client.SubscribeSync(natsapi.DeadLetterSubject)
	if err != nil {
		t.Fatal(err)
	}
	stop := s.serve(t, natsapi.Config{})

	publishDurable(t, js, "hold", map[string]string{"Nats-Msg-Id": "poison-1", "Correlation-Id": "c-9", natsapi.HeaderAuthorization: "Bearer tkc_secret_secret"}, `{not json`)
	r := nextResult(t, results)
	refused(t, r, commands.KindMalformed, 400)
	if r.Subject != natsapi.ResultSubjectPrefix+".poison-1" || r.Header.Get(natsapi.HeaderDeadLettered) != "true" {
		t.Fatalf("result %s %v", r.Subject, r.Header)
	}
	d, err := dead.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(d.Data) != `{not json` || d.Header.Get("Ticketd-Subject") != "tickets.cmdq.hold" || d.Header.Get("reason_poisoned") == "" ||
		d.Header.Get("Correlation-Id") != "c-9" || d.Header.Get("Ticketd-Command-Id") != "poison-1" {
		t.Fatalf("dead letter %s %v", d.Data, d.Header)
	}
	if d.Header.Get(natsapi.HeaderAuthorization) != "" {
		t.Fatal("the dead letter keeps the sender's token")
	}

	// A refusal is an outcome, not a poison message.
	publishDurable(t, js, "hold", map[string]string{"Nats-Msg-Id": "refused-1", "Ticket-Id": "8f8e0f7c-4a44-4a8f-9bb6-0f6f6f6f6f6f"}, `{}`)
	r = nextResult(t, results)
	refused(t, r, commands.KindNotFound, 404)
	if r.Header.Get(natsapi.HeaderDeadLettered) != "" {
		t.Fatalf("a refused command was dead-lettered: %v", r.Header)
	}
	waitEmpty(t, js)
	stop()

	// A command that keeps failing (here: no time to run at all) is delivered again
	// with back-off, then dead-lettered after MaxDeliveries.
	s.serve(t, natsapi.Config{CommandTimeout: time.Nanosecond, MaxDeliveries: 2, RedeliveryDelay: 50 * time.Millisecond})
	publishDurable(t, js, "create", map[string]string{"Nats-Msg-Id": "doomed-1"}, `{"subject": "x", "raised_by": "e@example.com"}`)
	r = nextResult(t, results)
	if r.Subject != natsapi.ResultSubjectPrefix+".doomed-1" || r.Header.Get(natsapi.HeaderDeadLettered) != "true" || r.Header.Get(natsapi.HeaderError) == "" {
		t.Fatalf("result %s %v %s", r.Subject, r.Header, r.Data)
	}
	d, err = dead.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if d.Header.Get("Ticketd-Deliveries") != "2" || d.Header.Get("Ticketd-Command-Id") != "doomed-1" {
		t.Fatalf("dead letter %v", d.Header)
	}
	waitEmpty(t, js)
	if got := streamMsgs(t, js, natsapi.DeadLetterStream); got != 2 {
		t.Fatalf("%d dead letters, want 2", got)
	}
	var p natsapi.Problem
	if err := json.Unmarshal(r.Data, &p); err != nil || p.Type == "" {
		t.Fatalf("problem %s: %v", r.Data, err)
	}
}
