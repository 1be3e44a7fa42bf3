package natsapi_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/commands/natsapi"
	"github.com/ticketcore/ticketcore/domain"
	natsstore "github.com/ticketcore/ticketcore/eventstore/jetstream"
)

// stack is the real thing: an embedded JetStream store in a temporary folder, the
// command handler, and a client on its own connection, as another service would be.
type stack struct {
	store  *natsstore.Store
	h      *commands.Handler
	client *nats.Conn
}

func newStack(t *testing.T, cfg natsstore.Config, clientOpts ...nats.Option) *stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg.DataDir = t.TempDir()
	store, err := natsstore.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	h, err := commands.NewHandler(ctx, store, commands.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SeedDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	s := &stack{store: store, h: h}
	if clientOpts != nil || cfg.ConfigureServer == nil {
		s.client = s.connect(t, clientOpts...)
	}
	return s
}

func (s *stack) connect(t *testing.T, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.store.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// serve runs the NATS command server until the returned stop is called (or the test
// ends), and waits until it answers requests.
func (s *stack) serve(t *testing.T, cfg natsapi.Config) (stop func()) {
	t.Helper()
	cfg.Handler, cfg.Conn = s.h, s.store.Conn()
	srv, err := natsapi.NewServer(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server stopped with %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("server did not stop")
		}
	}
	t.Cleanup(stop)
	// Ready when an unknown command gets its answer.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := s.store.Conn().Request("tickets.cmd.ping", nil, 200*time.Millisecond); err == nil {
			return stop
		}
		if time.Now().After(deadline) {
			t.Fatal("the command server does not answer")
		}
	}
}

// send makes a request/reply command from the client's connection.
func send(t *testing.T, nc *nats.Conn, command string, headers map[string]string, body string) *nats.Msg {
	t.Helper()
	msg := nats.NewMsg(natsapi.RequestSubjectPrefix + "." + command)
	for k, v := range headers {
		msg.Header.Set(k, v)
	}
	msg.Data = []byte(body)
	reply, err := nc.RequestMsg(msg, 10*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", command, err)
	}
	return reply
}

// accepted checks a successful answer and decodes it.
func accepted(t *testing.T, reply *nats.Msg) natsapi.Answer {
	t.Helper()
	if reply.Header.Get(natsapi.HeaderStatus) != natsapi.StatusOK {
		t.Fatalf("want %s: ok, got headers %v body %s", natsapi.HeaderStatus, reply.Header, reply.Data)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(reply.Data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "number", "version", "position", "duplicate"} {
		if _, ok := raw[k]; !ok {
			t.Fatalf("answer %s lacks %q", reply.Data, k)
		}
	}
	var a natsapi.Answer
	if err := json.Unmarshal(reply.Data, &a); err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(a.ID); err != nil || a.Number == "" || a.Version == 0 || a.Position == 0 {
		t.Fatalf("incomplete answer %+v", a)
	}
	if reply.Header.Get(natsapi.HeaderTicketID) != a.ID || reply.Header.Get(natsapi.HeaderVersion) != strconv.FormatUint(a.Version, 10) {
		t.Fatalf("headers %v do not match the answer %+v", reply.Header, a)
	}
	return a
}

// refused checks an error answer: its headers and problem document.
func refused(t *testing.T, reply *nats.Msg, kind string, status int) natsapi.Problem {
	t.Helper()
	if got := reply.Header.Get(natsapi.HeaderError); got != kind {
		t.Fatalf("want %s: %s, got headers %v body %s", natsapi.HeaderError, kind, reply.Header, reply.Data)
	}
	if got := reply.Header.Get(natsapi.HeaderErrorStatus); got != strconv.Itoa(status) {
		t.Fatalf("want %s: %d, got %q", natsapi.HeaderErrorStatus, status, got)
	}
	if reply.Header.Get(natsapi.HeaderStatus) != "" {
		t.Fatalf("an error answer says %s: %s", natsapi.HeaderStatus, reply.Header.Get(natsapi.HeaderStatus))
	}
	var p natsapi.Problem
	if err := json.Unmarshal(reply.Data, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != commands.ProblemType(kind) || p.Status != status || p.Title == "" || p.Detail == "" {
		t.Fatalf("problem %+v for %s", p, kind)
	}
	return p
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Every command goes over request/reply and gets a typed answer; refusals carry the
// HTTP API's problem types; a retry under the same command ID stores nothing.
func TestRequestReplyCommands(t *testing.T) {
	s := newStack(t, natsstore.Config{})
	ctx := context.Background()
	if _, err := s.h.ChangeCatalogue(ctx, false, domain.CatalogueCommand{Op: "create", Name: "Incident"}, nil, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.h.ChangeSettings(ctx, domain.SupportSettings{AutoCloseDays: 7, AllowSLAReset: true}, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	s.serve(t, natsapi.Config{})
	nc := s.client

	created := accepted(t, send(t, nc, "create", map[string]string{"Actor": "crm@example.com", "Correlation-Id": "corr-1", "Command-Id": "crm-create-1"},
		`{"subject": "Printer on fire", "raised_by": "alice@example.com", "description": "Smoke", "priority": "High"}`))
	if created.Version != 1 || created.Duplicate {
		t.Fatalf("create: %+v", created)
	}
	id := created.ID
	second := uuid.NewString()
	steps := []struct {
		command string
		header  bool // ticket ID in the Ticket-Id header rather than the body
		body    map[string]any
	}{
		{"comment", true, map[string]any{"body": "internal note"}},
		{"reply", false, map[string]any{"body": "A technician is on the way."}},
		{"customer_message", false, map[string]any{"body": "Still smoking", "message_id": second}},
		{"assign", true, map[string]any{"assignee": "bob@example.com"}},
		{"unassign", false, map[string]any{"assignee": "bob@example.com"}},
		{"set_priority", false, map[string]any{"priority": "Low"}},
		{"set_type", false, map[string]any{"ticket_type": "Incident"}},
		{"reset_sla", false, map[string]any{"reason": "customer changed the scope"}},
		{"hold", false, map[string]any{"reason": "waiting for parts"}},
		{"resolve", false, map[string]any{"resolution_details": "Replaced fuser"}},
		{"reopen", false, map[string]any{"reason": "again"}},
		{"close", true, map[string]any{"reason": "done"}},
	}
	version := created.Version
	for _, st := range steps {
		headers := map[string]string{"Actor": "agent@example.com"}
		if st.header {
			headers["Ticket-Id"] = id
		} else {
			st.body["ticket_id"] = id
		}
		a := accepted(t, send(t, nc, st.command, headers, mustJSON(st.body)))
		if a.ID != id || a.Version != version+1 || a.Number != created.Number {
			t.Fatalf("%s: answer %+v after version %d", st.command, a, version)
		}
		version = a.Version
	}
	// Split needs an open ticket with a second message: the ticket number works as an
	// ID when the server can resolve numbers, which this one cannot, so use a new one.
	other := accepted(t, send(t, nc, "create", nil, `{"subject": "Two problems", "raised_by": "carol@example.com", "description": "one"}`))
	msgID := uuid.NewString()
	accepted(t, send(t, nc, "customer_message", map[string]string{"Ticket-Id": other.ID}, mustJSON(map[string]any{"body": "and two", "message_id": msgID})))
	split := accepted(t, send(t, nc, "split", nil, mustJSON(map[string]any{"ticket_id": other.ID, "from_message": msgID, "subject": "The second problem"})))
	if split.ID == other.ID || split.Version != 1 {
		t.Fatalf("split answers the new ticket: %+v", split)
	}

	// The events carry what the headers said.
	events, err := s.h.TicketEvents(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != int(version) || events[0].Actor != "crm@example.com" || events[0].CorrelationID != "corr-1" || events[0].CommandID != "crm-create-1" {
		t.Fatalf("%d events, first %+v", len(events), events[0])
	}

	// Idempotent retry: the same Command-Id is the same command, stored once.
	again := send(t, nc, "create", map[string]string{"Command-Id": "crm-create-1"}, `{"subject": "Printer on fire", "raised_by": "alice@example.com"}`)
	if a := accepted(t, again); a.ID != id || a.Version != 1 || !a.Duplicate || again.Header.Get(natsapi.HeaderReplayed) != "true" {
		t.Fatalf("retried create: %+v %v", a, again.Header)
	}
	h1 := map[string]string{"Command-Id": "note-1", "Ticket-Id": other.ID}
	n1 := accepted(t, send(t, nc, "comment", h1, `{"body": "once"}`))
	n2 := accepted(t, send(t, nc, "comment", h1, `{"body": "once"}`))
	if n2.Version != n1.Version || !n2.Duplicate || n1.Duplicate {
		t.Fatalf("retried comment: %+v then %+v", n1, n2)
	}
	// Nats-Msg-Id is the command ID when Command-Id is absent.
	h2 := map[string]string{"Nats-Msg-Id": "note-2", "Ticket-Id": other.ID}
	m1 := accepted(t, send(t, nc, "comment", h2, `{"body": "twice?"}`))
	if m2 := accepted(t, send(t, nc, "comment", h2, `{"body": "twice?"}`)); !m2.Duplicate || m2.Version != m1.Version {
		t.Fatalf("retried under Nats-Msg-Id: %+v then %+v", m1, m2)
	}
	otherEvents, _ := s.h.TicketEvents(ctx, other.ID)
	if len(otherEvents) != int(m1.Version) {
		t.Fatalf("%d events at version %d", len(otherEvents), m1.Version)
	}

	// Refusals.
	p := refused(t, send(t, nc, "create", nil, `{"raised_by": "not-an-email"}`), commands.KindValidation, 422)
	if len(p.Errors) < 2 {
		t.Fatalf("validation lists the fields: %+v", p)
	}
	refused(t, send(t, nc, "hold", map[string]string{"Ticket-Id": uuid.NewString()}, `{}`), commands.KindNotFound, 404)
	refused(t, send(t, nc, "hold", nil, `{}`), commands.KindValidation, 422) // no ticket named
	refused(t, send(t, nc, "reply", map[string]string{"Ticket-Id": id}, `{"body": "hello"}`), commands.KindInvalidTransition, 409)
	refused(t, send(t, nc, "hold", map[string]string{"Ticket-Id": other.ID, "Expected-Version": "1"}, `{}`), commands.KindVersionMismatch, 412)
	accepted(t, send(t, nc, "assign", map[string]string{"Ticket-Id": other.ID}, `{"assignee": "x@example.com"}`))
	refused(t, send(t, nc, "assign", map[string]string{"Ticket-Id": other.ID}, `{"assignee": "x@example.com"}`), commands.KindConflict, 409)
	refused(t, send(t, nc, "fly", nil, `{}`), commands.KindNotFound, 404)
	for name, c := range map[string]struct {
		command string
		headers map[string]string
		body    string
	}{
		"unknown field":          {"comment", map[string]string{"Ticket-Id": other.ID}, `{"body": "x", "automatic": true}`},
		"a field set by ticketd": {"split", map[string]string{"Ticket-Id": other.ID}, `{"from_message": "x", "new_ticket_id": "y"}`},
		"not JSON":               {"comment", map[string]string{"Ticket-Id": other.ID}, `{"body": `},
		"two values":             {"comment", map[string]string{"Ticket-Id": other.ID}, `{"body": "a"} {"body": "b"}`},
		"not an object":          {"comment", map[string]string{"Ticket-Id": other.ID}, `["body"]`},
		"ticket_id not a string": {"comment", nil, `{"ticket_id": 7, "body": "x"}`},
		"two ticket IDs":         {"comment", map[string]string{"Ticket-Id": other.ID}, mustJSON(map[string]string{"ticket_id": id, "body": "x"})},
		"bad Expected-Version":   {"comment", map[string]string{"Ticket-Id": other.ID, "Expected-Version": "three"}, `{"body": "x"}`},
		"bad Command-Id":         {"comment", map[string]string{"Ticket-Id": other.ID, "Command-Id": "a b.c"}, `{"body": "x"}`},
	} {
		t.Run(name, func(t *testing.T) {
			refused(t, send(t, nc, c.command, c.headers, c.body), commands.KindMalformed, 400)
		})
	}
	if after, _ := s.h.TicketEvents(ctx, other.ID); len(after) != len(otherEvents)+1 {
		t.Fatalf("refusals stored events: %d then %d", len(otherEvents), len(after))
	}
}
