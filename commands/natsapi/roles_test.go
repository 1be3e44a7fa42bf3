package natsapi_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/commands/natsapi"
	"github.com/ticketcore/ticketcore/domain"
	natsstore "github.com/ticketcore/ticketcore/eventstore/jetstream"
)

// Every role against NATS commands, request/reply and durable: allowed for the roles
// that may send ticket commands, 403 for the others, 401 without a valid token; a
// refused command stores nothing, and the event records the token's principal.
func TestRolesOverNATS(t *testing.T) {
	s := newStack(t, natsstore.Config{})
	s.serve(t, natsapi.Config{Auth: s.h.Catalogues()})
	ctx := context.Background()
	tokens := map[domain.Role]string{}
	for _, role := range domain.Roles {
		requester := ""
		if role == domain.RoleCustomer {
			requester = "ann@example.com"
		}
		issued, err := s.h.IssueToken(ctx, "u-"+string(role), role, requester, commands.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		tokens[role] = issued.Token
	}
	mayCommand := map[domain.Role]bool{domain.RoleAdmin: true, domain.RoleService: true, domain.RoleAgent: true}
	position := func() uint64 {
		p, err := s.store.LastPosition(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	body := `{"subject": "Over NATS", "raised_by": "ann@example.com"}`
	for i, role := range domain.Roles {
		before := position()
		reply := send(t, s.client, "create", map[string]string{
			natsapi.HeaderAuthorization: "Bearer " + tokens[role], natsapi.HeaderCommandID: fmt.Sprintf("role-%d", i),
			natsapi.HeaderActor: "claimed-name"}, body)
		if !mayCommand[role] {
			refused(t, reply, commands.KindForbidden, 403)
			if position() != before {
				t.Errorf("%s: a refused command stored events", role)
			}
			continue
		}
		a := accepted(t, reply)
		events, err := s.h.TicketEvents(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := string(role) + ":u-" + string(role)
		if role == domain.RoleService {
			want += " for claimed-name" // a service may say on whose behalf it acts
		}
		if events[0].Actor != want {
			t.Errorf("%s: actor %q, want %q", role, events[0].Actor, want)
		}
	}
	for i, header := range []string{"", "Bearer " + tokens[domain.RoleAdmin] + "x", tokens[domain.RoleAdmin]} {
		name := fmt.Sprintf("credentials %d", i)
		before := position()
		headers := map[string]string{natsapi.HeaderCommandID: fmt.Sprintf("anon-%d", i)}
		if header != "" {
			headers[natsapi.HeaderAuthorization] = header
		}
		refused(t, send(t, s.client, "create", headers, body), commands.KindUnauthenticated, 401)
		if position() != before {
			t.Errorf("%s: an unauthenticated command stored events", name)
		}
	}

	// The durable path checks the same way: the outcome says why, nothing is stored.
	results, err := s.client.SubscribeSync(natsapi.ResultSubjectPrefix + ".>")
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(s.client)
	if err != nil {
		t.Fatal(err)
	}
	before := position()
	publishDurable(t, js, "create", map[string]string{"Nats-Msg-Id": "durable-analyst", natsapi.HeaderAuthorization: "Bearer " + tokens[domain.RoleAnalyst]}, body)
	if r := nextResult(t, results); r.Header.Get(natsapi.HeaderError) != commands.KindForbidden {
		t.Fatalf("durable command of an analyst: %v %s", r.Header, r.Data)
	}
	if position() != before {
		t.Error("a forbidden durable command stored events")
	}
	publishDurable(t, js, "create", map[string]string{"Nats-Msg-Id": "durable-agent", natsapi.HeaderAuthorization: "Bearer " + tokens[domain.RoleAgent]}, body)
	if r := nextResult(t, results); r.Header.Get(natsapi.HeaderStatus) != natsapi.StatusOK {
		t.Fatalf("durable command of an agent: %v %s", r.Header, r.Data)
	}
}

// TestCommandBusCarriesToken: a Go service on Watermill sends through the CQRS command
// bus with its token, and ticketd (tokens required) runs the command as that service;
// without a token the outcome is unauthenticated and nothing is stored.
func TestCommandBusCarriesToken(t *testing.T) {
	s := newStack(t, natsstore.Config{})
	s.serve(t, natsapi.Config{Auth: s.h.Catalogues()})
	ctx := context.Background()
	issued, err := s.h.IssueToken(ctx, "crm", domain.RoleService, "", commands.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	results, err := s.client.SubscribeSync(natsapi.ResultSubjectPrefix + ".>")
	if err != nil {
		t.Fatal(err)
	}
	bus, err := natsapi.NewCommandBus(s.client, nil)
	if err != nil {
		t.Fatal(err)
	}
	create := domain.CreateTicket{TicketFieldsData: domain.TicketFieldsData{Subject: "From the bus", RaisedBy: "dan@example.com"}}
	if err := bus.Send(ctx, natsapi.Command{CommandID: "bus-token", Actor: "crm-sync", Token: issued.Token, Command: create}); err != nil {
		t.Fatal(err)
	}
	a := accepted(t, nextResult(t, results))
	events, err := s.h.TicketEvents(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := "service:crm for crm-sync"; events[0].Actor != want {
		t.Errorf("actor %q, want %q", events[0].Actor, want)
	}

	before, err := s.store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Send(ctx, natsapi.Command{CommandID: "bus-no-token", Command: create}); err != nil {
		t.Fatal(err)
	}
	refused(t, nextResult(t, results), commands.KindUnauthenticated, 401)
	if after, _ := s.store.LastPosition(ctx); after != before {
		t.Error("a command without a token stored events")
	}
}
