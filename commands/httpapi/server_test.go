package httpapi_test

// End-to-end tests of the HTTP API: the real stack in this process (embedded JetStream
// store, command handler, ticket projection fed by the runner, HTTP routes) behind an
// httptest.Server. Every refused request is checked for its status, its problem type
// and for having stored nothing.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/commands/httpapi"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/eventstore"
	"github.com/ticketcore/ticketcore/eventstore/jetstream"
	"github.com/ticketcore/ticketcore/projections"
)

// clock is a settable clock shared by the handler and the server.
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// monday is 2026-03-02 09:00 UTC.
var monday = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// stack is the API running in-process on its own store.
type stack struct {
	url     string
	store   eventstore.Store
	clock   *clock
	handler *commands.Handler
}

func newStack(t *testing.T) *stack { return newStackWith(t, false) }

// newStackWith starts the stack, with access control when secured.
func newStackWith(t *testing.T, secured bool) *stack {
	t.Helper()
	ctx := context.Background()
	store, err := jetstream.Open(ctx, jetstream.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() }) // runs last
	return newStackOn(t, store, secured)
}

// newStackOn starts the stack on a store.
func newStackOn(t *testing.T, store eventstore.Store, secured bool) *stack {
	t.Helper()
	ctx := context.Background()
	clk := &clock{}
	clk.Set(monday)
	h, err := commands.NewHandler(ctx, store, commands.Options{Clock: clk.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SeedDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	tickets := projections.NewTickets()
	runner := projections.NewRunner(store, nil, tickets)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runner.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("runner: %v", err)
		}
	})
	api := &httpapi.Server{Handler: h, Tickets: tickets, Runner: runner, Clock: clk.Now, Log: quiet}
	if secured {
		api.Auth = h.Catalogues()
	}
	srv := httptest.NewServer(api.Routes())
	t.Cleanup(srv.Close) // runs first
	return &stack{url: srv.URL, store: store, clock: clk, handler: h}
}

// response is a read HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) ticket(t *testing.T) projections.TicketView {
	t.Helper()
	var v projections.TicketView
	r.decode(t, &v)
	return v
}

// do sends a request. body is sent as is when it is a string or []byte, as JSON
// otherwise; headers are name, value pairs ("Content-Type" defaults to JSON when a
// body is given).
func (s *stack) do(t *testing.T, method, path string, body any, headers ...string) response {
	t.Helper()
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(b)
	case []byte:
		reader = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.url+path, reader)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: data}
}

// ok checks a successful answer and returns it.
func (s *stack) ok(t *testing.T, want int, method, path string, body any, headers ...string) response {
	t.Helper()
	res := s.do(t, method, path, body, headers...)
	if res.status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.status, want, res.body)
	}
	return res
}

func (s *stack) position(t *testing.T) uint64 {
	t.Helper()
	pos, err := s.store.LastPosition(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// refused sends a request that must be refused with status and problem type typ and
// must store nothing; it returns the problem.
func (s *stack) refused(t *testing.T, status int, typ, method, path string, body any, headers ...string) httpapi.Problem {
	t.Helper()
	before := s.position(t)
	res := s.do(t, method, path, body, headers...)
	if res.status != status {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.status, status, res.body)
	}
	if ct := res.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s %s: content type %q, want application/problem+json", method, path, ct)
	}
	var p httpapi.Problem
	res.decode(t, &p)
	if p.Type != typ || p.Status != status || p.Title == "" {
		t.Fatalf("%s %s: problem %+v, want type %s status %d", method, path, p, typ, status)
	}
	if u, _ := url.Parse(path); p.Instance != u.Path {
		t.Fatalf("problem instance %q, want %q", p.Instance, u.Path)
	}
	if after := s.position(t); after != before {
		t.Fatalf("%s %s was refused but stored %d events", method, path, after-before)
	}
	return p
}

func hasField(p httpapi.Problem, field string) bool {
	return slices.ContainsFunc(p.Errors, func(f domain.FieldError) bool { return f.Field == field && f.Message != "" })
}

type createBody struct {
	Subject     string `json:"subject,omitempty"`
	Description string `json:"description,omitempty"`
	RaisedBy    string `json:"raised_by,omitempty"`
	Priority    string `json:"priority,omitempty"`
	TicketType  string `json:"ticket_type,omitempty"`
	Channel     string `json:"channel,omitempty"`
}

func validTicket() createBody {
	return createBody{Subject: "Printer on fire", Description: "It smokes.", RaisedBy: "ann@example.com", Priority: "Medium"}
}

func (s *stack) createTicket(t *testing.T, b createBody, headers ...string) projections.TicketView {
	t.Helper()
	return s.ok(t, http.StatusCreated, "POST", "/v1/tickets", b, headers...).ticket(t)
}

func etag(version uint64) string { return fmt.Sprintf(`"%d"`, version) }

func TestRefusedRequests(t *testing.T) {
	s := newStack(t)
	ticket := s.createTicket(t, validTicket())
	id := ticket.ID
	huge := `{"subject":"` + strings.Repeat("a", 10<<20) + `","raised_by":"ann@example.com"}`

	tests := []struct {
		name    string
		method  string
		path    string
		body    any
		headers []string
		status  int
		typ     string
		field   string // a field the problem must list
	}{
		{"malformed JSON", "POST", "/v1/tickets", `{"subject": "x",`, nil, 400, httpapi.ProblemMalformed, ""},
		{"malformed JSON on a command", "POST", "/v1/tickets/" + id + "/replies", `{"body": }`, nil, 400, httpapi.ProblemMalformed, ""},
		{"unknown field", "POST", "/v1/tickets", `{"subject":"x","raised_by":"ann@example.com","sujbect":"typo"}`, nil, 400, httpapi.ProblemMalformed, ""},
		{"unknown field on a command", "POST", "/v1/tickets/" + id + "/comments", `{"body":"x","automatic":true}`, nil, 400, httpapi.ProblemMalformed, ""},
		{"a field the client may not set", "POST", "/v1/tickets/" + id + "/split", `{"from_message":"x","new_ticket_id":"y"}`, nil, 400, httpapi.ProblemMalformed, ""},
		{"two JSON values", "POST", "/v1/tickets", `{} {}`, nil, 400, httpapi.ProblemMalformed, ""},
		{"a field of the wrong type", "POST", "/v1/tickets", `{"subject":42}`, nil, 400, httpapi.ProblemMalformed, ""},
		{"missing subject", "POST", "/v1/tickets", createBody{RaisedBy: "ann@example.com"}, nil, 422, httpapi.ProblemValidation, "subject"},
		{"invalid email", "POST", "/v1/tickets", createBody{Subject: "x", RaisedBy: "ann at example"}, nil, 422, httpapi.ProblemValidation, "raised_by"},
		{"unknown priority", "POST", "/v1/tickets", createBody{Subject: "x", RaisedBy: "ann@example.com", Priority: "Urgent"}, nil, 422, httpapi.ProblemValidation, "priority"},
		{"invalid channel", "POST", "/v1/tickets", createBody{Subject: "x", RaisedBy: "ann@example.com", Channel: "fax"}, nil, 422, httpapi.ProblemValidation, "channel"},
		{"empty body", "POST", "/v1/tickets", "", nil, 422, httpapi.ProblemValidation, "subject"},
		{"reply without body", "POST", "/v1/tickets/" + id + "/replies", `{"body":""}`, nil, 422, httpapi.ProblemValidation, "body"},
		{"10 MB body", "POST", "/v1/tickets", huge, nil, 413, httpapi.ProblemTooLarge, ""},
		{"10 MB body on a command", "POST", "/v1/tickets/" + id + "/comments", huge, nil, 413, httpapi.ProblemTooLarge, ""},
		{"wrong content type", "POST", "/v1/tickets", `{"subject":"x","raised_by":"ann@example.com"}`, []string{"Content-Type", "text/plain"}, 415, httpapi.ProblemMediaType, ""},
		{"form content type", "POST", "/v1/tickets/" + id + "/comments", `body=x`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, httpapi.ProblemMediaType, ""},
		{"unknown ticket", "POST", "/v1/tickets/7c8e6a52-1f3b-4f7e-9d0a-5b6c7d8e9f00/replies", `{"body":"hi"}`, nil, 404, httpapi.ProblemNotFound, ""},
		{"unknown ticket read", "GET", "/v1/tickets/7c8e6a52-1f3b-4f7e-9d0a-5b6c7d8e9f00", nil, nil, 404, httpapi.ProblemNotFound, ""},
		{"unknown ticket events", "GET", "/v1/tickets/7c8e6a52-1f3b-4f7e-9d0a-5b6c7d8e9f00/events", nil, nil, 404, httpapi.ProblemNotFound, ""},
		{"unknown ticket number", "POST", "/v1/tickets/TKT-2026-999999/hold", `{}`, nil, 404, httpapi.ProblemNotFound, ""},
		{"not a ticket id", "POST", "/v1/tickets/not-an-id/hold", `{}`, nil, 404, httpapi.ProblemNotFound, ""},
		{"unknown endpoint", "POST", "/v1/tickets/" + id + "/teleport", `{}`, nil, 404, httpapi.ProblemNotFound, ""},
		{"invalid transition", "POST", "/v1/tickets/" + id + "/reopen", `{}`, nil, 409, httpapi.ProblemTransition, ""},
		{"unassign nobody", "POST", "/v1/tickets/" + id + "/unassign", `{"assignee":"bob"}`, nil, 422, httpapi.ProblemValidation, "assignee"},
		{"If-Match mismatch", "POST", "/v1/tickets/" + id + "/comments", `{"body":"x"}`, []string{"If-Match", `"0"`}, 412, httpapi.ProblemVersionMismatch, ""},
		{"If-Match ahead", "POST", "/v1/tickets/" + id + "/hold", `{}`, []string{"If-Match", `"99"`}, 412, httpapi.ProblemVersionMismatch, ""},
		{"If-Match not a version", "POST", "/v1/tickets/" + id + "/comments", `{"body":"x"}`, []string{"If-Match", `"abc"`}, 400, httpapi.ProblemMalformed, ""},
		{"Idempotency-Key too long", "POST", "/v1/tickets", validTicket(), []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, httpapi.ProblemMalformed, ""},
		{"unknown list parameter", "GET", "/v1/tickets?colour=red", nil, nil, 422, httpapi.ProblemValidation, "colour"},
		{"unknown status filter", "GET", "/v1/tickets?status=Pending", nil, nil, 422, httpapi.ProblemValidation, "status"},
		{"limit too large", "GET", "/v1/tickets?limit=5000", nil, nil, 422, httpapi.ProblemValidation, "limit"},
		{"as_of not an instant", "GET", "/v1/tickets/" + id + "?as_of=yesterday", nil, nil, 422, httpapi.ProblemValidation, "as_of"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := s.refused(t, tc.status, tc.typ, tc.method, tc.path, tc.body, tc.headers...)
			if tc.field != "" && !hasField(p, tc.field) {
				t.Fatalf("problem errors %+v do not name %q", p.Errors, tc.field)
			}
		})
	}
	// The refusals left the ticket as it was.
	res := s.ok(t, 200, "GET", "/v1/tickets/"+id, nil)
	if v := res.ticket(t); v.Version != ticket.Version || v.Status != domain.StatusOpen || len(v.Comments) != 0 {
		t.Fatalf("after the refusals: version %d, status %s, %d comments", v.Version, v.Status, len(v.Comments))
	}
	// With the right If-Match the command goes through.
	res = s.ok(t, 200, "POST", "/v1/tickets/"+id+"/comments", `{"body":"x"}`, "If-Match", etag(ticket.Version))
	if res.header.Get("ETag") != etag(ticket.Version+1) {
		t.Fatalf("ETag after a matching If-Match = %s", res.header.Get("ETag"))
	}
}

func TestCreateTicket(t *testing.T) {
	s := newStack(t)
	before := s.position(t)
	res := s.ok(t, http.StatusCreated, "POST", "/v1/tickets", validTicket(), "X-Actor", "agent@example.com")
	v := res.ticket(t)
	if v.ID == "" || v.Number != "TKT-2026-000001" || v.Status != domain.StatusOpen || v.Subject != "Printer on fire" || v.Channel != domain.ChannelAPI {
		t.Fatalf("created = %+v", v)
	}
	if loc := res.header.Get("Location"); loc != "/v1/tickets/"+v.ID {
		t.Fatalf("Location = %q", loc)
	}
	if tag := res.header.Get("ETag"); tag != etag(v.Version) || v.Version != 1 {
		t.Fatalf("ETag = %q, version %d", tag, v.Version)
	}
	if pos := res.header.Get("X-Event-Position"); pos != fmt.Sprint(s.position(t)) || s.position(t) <= before {
		t.Fatalf("X-Event-Position = %s, store at %d", pos, s.position(t))
	}
	if len(v.Thread) != 1 || v.Thread[0].Body != "It smokes." || v.Thread[0].Direction != domain.Incoming || v.Thread[0].Actor != "agent@example.com" {
		t.Fatalf("thread = %+v", v.Thread)
	}
	// Readable by id and by number.
	for _, key := range []string{v.ID, v.Number} {
		got := s.ok(t, 200, "GET", "/v1/tickets/"+key, nil)
		if got.ticket(t).ID != v.ID || got.header.Get("ETag") != etag(v.Version) {
			t.Fatalf("GET %s = %s", key, got.body)
		}
	}
	if next := s.createTicket(t, validTicket()); next.Number != "TKT-2026-000002" || next.ID == v.ID {
		t.Fatalf("second ticket = %s %s", next.ID, next.Number)
	}
}

func TestIdempotencyKey(t *testing.T) {
	s := newStack(t)
	first := s.ok(t, http.StatusCreated, "POST", "/v1/tickets", validTicket(), "Idempotency-Key", "order-1")
	created := first.ticket(t)
	if first.header.Get("Idempotent-Replayed") != "" {
		t.Fatal("the first request is marked replayed")
	}
	pos := s.position(t)
	// The retry, even with another body, answers with the ticket created first.
	other := validTicket()
	other.Subject = "Something else"
	again := s.ok(t, http.StatusOK, "POST", "/v1/tickets", other, "Idempotency-Key", "order-1")
	replayed := again.ticket(t)
	if replayed.ID != created.ID || replayed.Number != created.Number || replayed.Subject != "Printer on fire" {
		t.Fatalf("replay = %s %s %q, want %s %s", replayed.ID, replayed.Number, replayed.Subject, created.ID, created.Number)
	}
	if again.header.Get("Idempotent-Replayed") != "true" || again.header.Get("Location") != "/v1/tickets/"+created.ID {
		t.Fatalf("replay headers = %v", again.header)
	}
	if s.position(t) != pos {
		t.Fatalf("the replay stored %d events", s.position(t)-pos)
	}

	// On a command too; If-Match of the version before the first attempt does not
	// turn the replay into a 412.
	path := "/v1/tickets/" + created.ID + "/comments"
	c1 := s.ok(t, 200, "POST", path, `{"body":"once"}`, "Idempotency-Key", "note-1", "If-Match", etag(created.Version)).ticket(t)
	pos = s.position(t)
	c2 := s.ok(t, 200, "POST", path, `{"body":"once"}`, "Idempotency-Key", "note-1", "If-Match", etag(created.Version))
	if c2.header.Get("Idempotent-Replayed") != "true" || c2.ticket(t).Version != c1.Version || len(c2.ticket(t).Comments) != 1 {
		t.Fatalf("command replay = %s", c2.body)
	}
	if s.position(t) != pos {
		t.Fatalf("the command replay stored %d events", s.position(t)-pos)
	}
	// The same key on another endpoint is another command.
	s.ok(t, 200, "POST", "/v1/tickets/"+created.ID+"/hold", `{}`, "Idempotency-Key", "note-1")
	if s.position(t) != pos+1 {
		t.Fatalf("a key reused on another endpoint stored %d events, want 1", s.position(t)-pos)
	}
	// Without a key, two identical requests are two tickets.
	a, b := s.createTicket(t, validTicket()), s.createTicket(t, validTicket())
	if a.ID == b.ID {
		t.Fatal("two requests without a key created one ticket")
	}
}

// TestCommandEndpoints runs every command endpoint once, through a ticket's life.
func TestCommandEndpoints(t *testing.T) {
	s := newStack(t)
	s.ok(t, http.StatusCreated, "POST", "/v1/ticket-types", `{"name":"Bug"}`)
	s.ok(t, 200, "PUT", "/v1/settings", `{"auto_close_days":7,"allow_sla_reset":true}`)
	ticket := s.createTicket(t, validTicket())
	base := "/v1/tickets/" + ticket.ID + "/"
	version := ticket.Version

	steps := []struct {
		path  string
		body  string
		check func(v projections.TicketView) bool
	}{
		{"replies", `{"body":"We are on it.","to":["ann@example.com"]}`, func(v projections.TicketView) bool {
			return v.Status == domain.StatusReplied && v.Replies == 1 && v.Thread[len(v.Thread)-1].Direction == domain.Outgoing
		}},
		{"messages", `{"body":"Still smoking.","message_id":"msg-c1"}`, func(v projections.TicketView) bool {
			last := v.Thread[len(v.Thread)-1]
			return v.Status == domain.StatusOpen && last.MessageID == "msg-c1" && last.Channel == domain.ChannelPortal && last.From == "ann@example.com"
		}},
		{"comments", `{"body":"internal note"}`, func(v projections.TicketView) bool {
			return v.Status == domain.StatusOpen && len(v.Comments) == 1 && v.Comments[0].Body == "internal note"
		}},
		{"hold", `{"reason":"waiting for parts"}`, func(v projections.TicketView) bool { return v.Status == domain.StatusOnHold }},
		{"resolve", `{"resolution_details":"replaced the fuser"}`, func(v projections.TicketView) bool {
			return v.Status == domain.StatusResolved && v.Resolution == "replaced the fuser"
		}},
		{"reopen", `{"reason":"not fixed"}`, func(v projections.TicketView) bool { return v.Status == domain.StatusOpen && v.Reopens == 1 }},
		{"close", `{"reason":"duplicate"}`, func(v projections.TicketView) bool { return v.Status == domain.StatusClosed && !v.ClosedAutomatically }},
		{"reopen", `{}`, func(v projections.TicketView) bool { return v.Status == domain.StatusOpen && v.Reopens == 2 }},
		{"priority", `{"priority":"High"}`, func(v projections.TicketView) bool { return v.Priority == "High" }},
		{"type", `{"ticket_type":"Bug"}`, func(v projections.TicketView) bool { return v.TicketType == "Bug" }},
		{"assign", `{"assignee":"bob"}`, func(v projections.TicketView) bool { return slices.Equal(v.Assignees, []string{"bob"}) }},
		{"assign", `{"assignee":"carol"}`, func(v projections.TicketView) bool { return slices.Equal(v.Assignees, []string{"bob", "carol"}) }},
		{"unassign", `{"assignee":"bob"}`, func(v projections.TicketView) bool { return slices.Equal(v.Assignees, []string{"carol"}) }},
		{"reset-sla", `{"reason":"customer asked"}`, func(v projections.TicketView) bool { return v.Status == domain.StatusOpen }},
		{"messages", `{"body":"A second printer is broken too.","message_id":"msg-c2","channel":"email"}`, func(v projections.TicketView) bool {
			return v.Thread[len(v.Thread)-1].Channel == domain.ChannelEmail
		}},
	}
	for i, step := range steps {
		before := s.position(t)
		res := s.ok(t, 200, "POST", base+step.path, step.body)
		v := res.ticket(t)
		if v.ID != ticket.ID || !step.check(v) {
			t.Fatalf("step %d %s: unexpected ticket %s", i, step.path, res.body)
		}
		if v.Version <= version || res.header.Get("ETag") != etag(v.Version) {
			t.Fatalf("step %d %s: version %d after %d, ETag %s", i, step.path, v.Version, version, res.header.Get("ETag"))
		}
		if stored := s.position(t) - before; stored != v.Version-version {
			t.Fatalf("step %d %s: %d events stored, version moved by %d", i, step.path, stored, v.Version-version)
		}
		version = v.Version
	}

	// Split from the first customer message: it and what follows move.
	res := s.ok(t, http.StatusCreated, "POST", base+"split", `{"from_message":"msg-c1","subject":"Second printer"}`)
	child := res.ticket(t)
	if res.header.Get("Location") != "/v1/tickets/"+child.ID || child.ID == ticket.ID {
		t.Fatalf("split Location = %q, child %s", res.header.Get("Location"), child.ID)
	}
	if child.SplitFrom == nil || child.SplitFrom.TicketID != ticket.ID || child.SplitFrom.FromMessage != "msg-c1" || child.Subject != "Second printer" {
		t.Fatalf("child = %s", res.body)
	}
	var moved []string
	for _, m := range child.Thread {
		moved = append(moved, m.MessageID)
	}
	if len(moved) != 2 || moved[0] != "msg-c1" || moved[1] != "msg-c2" {
		t.Fatalf("moved thread = %v", moved)
	}
	parent := s.ok(t, 200, "GET", "/v1/tickets/"+ticket.ID, nil).ticket(t)
	if len(parent.SplitInto) != 1 || parent.SplitInto[0].TicketID != child.ID || slices.ContainsFunc(parent.Thread, func(m projections.ThreadMessage) bool { return m.MessageID == "msg-c1" }) {
		t.Fatalf("parent after split = %s", s.do(t, "GET", "/v1/tickets/"+ticket.ID, nil).body)
	}
	// Commands also address a ticket by number.
	s.ok(t, 200, "POST", "/v1/tickets/"+child.Number+"/comments", `{"body":"by number"}`)
}

func TestTicketEvents(t *testing.T) {
	s := newStack(t)
	v := s.createTicket(t, validTicket())
	s.ok(t, 200, "POST", "/v1/tickets/"+v.ID+"/replies", `{"body":"hi"}`, "X-Actor", "bob", "X-Correlation-ID", "corr-1")
	s.ok(t, 200, "POST", "/v1/tickets/"+v.ID+"/resolve", `{}`)

	for _, key := range []string{v.ID, v.Number} {
		res := s.ok(t, 200, "GET", "/v1/tickets/"+key+"/events", nil)
		var body struct {
			TicketID string         `json:"ticket_id"`
			Events   []domain.Event `json:"events"`
		}
		res.decode(t, &body)
		if body.TicketID != v.ID {
			t.Fatalf("ticket_id = %s", body.TicketID)
		}
		var types []string
		for _, e := range body.Events {
			types = append(types, e.Type)
		}
		want := []string{"ticket.created", "ticket.reply_sent", "ticket.resolved"}
		if !slices.Equal(types, want) {
			t.Fatalf("types = %v, want %v", types, want)
		}
		if e := body.Events[1]; e.Actor != "bob" || e.CorrelationID != "corr-1" || e.Stream != domain.TicketStream(v.ID) {
			t.Fatalf("reply envelope = %+v", e)
		}
		// The raw events are the stored ones: their hash chain verifies.
		if i, why := domain.VerifyChain(body.Events); i >= 0 {
			t.Fatalf("served events break the chain at %d: %s", i, why)
		}
	}
}

func TestAsOf(t *testing.T) {
	s := newStack(t)
	v := s.createTicket(t, validTicket()) // Monday 09:00
	s.clock.Set(monday.Add(time.Hour))
	s.ok(t, 200, "POST", "/v1/tickets/"+v.ID+"/replies", `{"body":"hi"}`)
	s.clock.Set(monday.Add(2 * time.Hour))
	s.ok(t, 200, "POST", "/v1/tickets/"+v.ID+"/resolve", `{}`)
	s.clock.Set(monday.Add(3 * time.Hour))

	tests := []struct {
		asOf    time.Time
		status  domain.Status
		version uint64
		replies int
	}{
		{monday, domain.StatusOpen, 1, 0},
		{monday.Add(30 * time.Minute), domain.StatusOpen, 1, 0},
		{monday.Add(time.Hour), domain.StatusReplied, 2, 1},
		{monday.Add(90 * time.Minute), domain.StatusReplied, 2, 1},
		{monday.Add(5 * time.Hour), domain.StatusResolved, 3, 1},
	}
	for _, tc := range tests {
		for _, key := range []string{v.ID, v.Number} {
			got := s.ok(t, 200, "GET", "/v1/tickets/"+key+"?as_of="+url.QueryEscape(tc.asOf.Format(time.RFC3339)), nil).ticket(t)
			if got.Status != tc.status || got.Version != tc.version || got.Replies != tc.replies || !got.EvaluatedAt.Equal(tc.asOf) {
				t.Fatalf("as of %s: status %s version %d replies %d evaluated %s", tc.asOf, got.Status, got.Version, got.Replies, got.EvaluatedAt)
			}
		}
	}
	if now := s.ok(t, 200, "GET", "/v1/tickets/"+v.ID, nil).ticket(t); now.Status != domain.StatusResolved {
		t.Fatalf("now: %s", now.Status)
	}
	s.refused(t, 404, httpapi.ProblemNotFound, "GET", "/v1/tickets/"+v.ID+"?as_of="+url.QueryEscape(monday.Add(-time.Second).Format(time.RFC3339)), nil)
}

func TestListTickets(t *testing.T) {
	s := newStack(t)
	mk := func(raisedBy, priority string) projections.TicketView {
		b := validTicket()
		b.RaisedBy, b.Priority = raisedBy, priority
		return s.createTicket(t, b)
	}
	t1 := mk("ann@example.com", "Low")
	t2 := mk("bob@example.com", "High")
	t3 := mk("ann@example.com", "High")
	t4 := mk("Ann@Example.com", "Medium")
	t5 := mk("carl@example.com", "Medium")
	s.ok(t, 200, "POST", "/v1/tickets/"+t2.ID+"/assign", `{"assignee":"carol"}`)
	s.ok(t, 200, "POST", "/v1/tickets/"+t3.ID+"/resolve", `{}`)
	s.ok(t, 200, "POST", "/v1/tickets/"+t5.ID+"/assign", `{"assignee":"carol"}`)
	s.ok(t, 200, "POST", "/v1/tickets/"+t5.ID+"/hold", `{}`)

	ids := func(vs ...projections.TicketView) []string {
		out := []string{}
		for _, v := range vs {
			out = append(out, v.ID)
		}
		return out
	}
	tests := []struct {
		query  string
		want   []string
		total  int
		offset int
		limit  int
	}{
		{"", ids(t1, t2, t3, t4, t5), 5, 0, 50},
		{"status=Open", ids(t1, t2, t4), 3, 0, 50},
		{"status=Resolved", ids(t3), 1, 0, 50},
		{"status=On+Hold", ids(t5), 1, 0, 50},
		{"priority=High", ids(t2, t3), 2, 0, 50},
		{"priority=Medium", ids(t4, t5), 2, 0, 50},
		{"raised_by=ann@example.com", ids(t1, t3, t4), 3, 0, 50},
		{"raised_by=ANN@EXAMPLE.COM&priority=High", ids(t3), 1, 0, 50},
		{"assignee=carol", ids(t2, t5), 2, 0, 50},
		{"assignee=carol&status=Open", ids(t2), 1, 0, 50},
		{"assignee=nobody", ids(), 0, 0, 50},
		{"limit=2", ids(t1, t2), 5, 0, 2},
		{"limit=2&offset=2", ids(t3, t4), 5, 2, 2},
		{"limit=2&offset=4", ids(t5), 5, 4, 2},
		{"offset=10", ids(), 5, 10, 50},
		{"order=newest&limit=2", ids(t5, t4), 5, 0, 2},
		{"raised_by=ann@example.com&limit=1&offset=1", ids(t3), 3, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			var page projections.Page
			s.ok(t, 200, "GET", "/v1/tickets?"+tc.query, nil).decode(t, &page)
			if got := ids(page.Tickets...); !slices.Equal(got, tc.want) {
				t.Fatalf("tickets = %v, want %v", got, tc.want)
			}
			if page.Total != tc.total || page.Offset != tc.offset || page.Limit != tc.limit {
				t.Fatalf("page total %d offset %d limit %d, want %d %d %d", page.Total, page.Offset, page.Limit, tc.total, tc.offset, tc.limit)
			}
		})
	}
}

func TestCatalogueEndpoints(t *testing.T) {
	s := newStack(t)
	names := func(path string) []string {
		var entries []domain.NamedEntry
		s.ok(t, 200, "GET", path, nil).decode(t, &entries)
		out := []string{}
		for _, e := range entries {
			out = append(out, e.Name)
		}
		return out
	}
	if got := names("/v1/ticket-priorities"); !slices.Equal(got, []string{"Low", "Medium", "High"}) {
		t.Fatalf("seeded priorities = %v", got)
	}
	if got := names("/v1/ticket-types"); len(got) != 0 {
		t.Fatalf("types before any = %v", got)
	}

	var entry domain.NamedEntry
	s.ok(t, http.StatusCreated, "POST", "/v1/ticket-types", `{"name":"Bug","description":"software defect"}`).decode(t, &entry)
	if entry != (domain.NamedEntry{Name: "Bug", Description: "software defect"}) {
		t.Fatalf("created = %+v", entry)
	}
	s.ok(t, http.StatusCreated, "POST", "/v1/ticket-types", `{"name":"Question"}`)
	s.ok(t, http.StatusCreated, "POST", "/v1/ticket-priorities", `{"name":"Urgent"}`)
	if got := names("/v1/ticket-types"); !slices.Equal(got, []string{"Bug", "Question"}) {
		t.Fatalf("types = %v", got)
	}
	if got := names("/v1/ticket-priorities"); !slices.Equal(got, []string{"Low", "Medium", "High", "Urgent"}) {
		t.Fatalf("priorities = %v", got)
	}

	s.refused(t, 409, httpapi.ProblemConflict, "POST", "/v1/ticket-types", `{"name":"Bug"}`)
	s.refused(t, 409, httpapi.ProblemConflict, "POST", "/v1/ticket-types", `{"name":"bug"}`)
	s.refused(t, 409, httpapi.ProblemConflict, "POST", "/v1/ticket-priorities", `{"name":"high"}`)
	if p := s.refused(t, 422, httpapi.ProblemValidation, "POST", "/v1/ticket-types", `{"name":""}`); !hasField(p, "name") {
		t.Fatalf("problem = %+v", p)
	}
	s.refused(t, 400, httpapi.ProblemMalformed, "POST", "/v1/ticket-types", `{"name":"X","colour":"red"}`)

	// New entries are usable at once.
	b := validTicket()
	b.TicketType, b.Priority = "Bug", "Urgent"
	ticket := s.createTicket(t, b)
	if ticket.TicketType != "Bug" || ticket.Priority != "Urgent" {
		t.Fatalf("ticket = %+v", ticket)
	}
	// Entries in use are neither removed nor renamed; unused ones can be.
	s.refused(t, 409, httpapi.ProblemConflict, "DELETE", "/v1/ticket-types/Bug", nil)
	s.refused(t, 409, httpapi.ProblemConflict, "PATCH", "/v1/ticket-priorities/Urgent", `{"new_name":"P1"}`)
	s.refused(t, 404, httpapi.ProblemNotFound, "DELETE", "/v1/ticket-types/Nope", nil)
	s.ok(t, http.StatusNoContent, "DELETE", "/v1/ticket-types/Question", nil)
	if got := names("/v1/ticket-types"); !slices.Equal(got, []string{"Bug"}) {
		t.Fatalf("types after removal = %v", got)
	}
	// A removed type is refused on new tickets.
	b.TicketType = "Question"
	s.refused(t, 422, httpapi.ProblemValidation, "POST", "/v1/tickets", b)
}

// TestCommandAnswersFromHistory: the answer to a command is the ticket as GET shows it,
// whether it was folded from the history the server remembers and the command's own
// events or read again from the store because another writer came in between.
func TestCommandAnswersFromHistory(t *testing.T) {
	store, err := jetstream.Open(t.Context(), jetstream.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	counted := &httpapi.StreamReads{Store: store}
	s := newStackOn(t, counted, false)
	// send posts a command and checks how many times it read the ticket's stream, to
	// decide and to answer, and how many times its events where the read model knows
	// them.
	send := func(status int, path string, body any, wantReads, wantReadsAt int64) response {
		t.Helper()
		before, beforeAt := counted.Whole.Load(), counted.At.Load()
		res := s.ok(t, status, "POST", path, body)
		if got := counted.Whole.Load() - before; got != wantReads {
			t.Fatalf("POST %s read the ticket's stream %d times, want %d", path, got, wantReads)
		}
		if got := counted.At.Load() - beforeAt; got != wantReadsAt {
			t.Fatalf("POST %s read the ticket's events at known positions %d times, want %d", path, got, wantReadsAt)
		}
		return res
	}
	// The creation's one read is the handler's, to decide: is the stream new? The
	// answer folds what it read and the creation's event.
	created := send(http.StatusCreated, "/v1/tickets", validTicket(), 1, 0)
	id := created.ticket(t).ID
	sameAsGet := func(answer response, version uint64) {
		t.Helper()
		got := s.ok(t, 200, "GET", "/v1/tickets/"+id, nil)
		if !bytes.Equal(answer.body, got.body) {
			t.Fatalf("the answer differs from GET:\n answer %s\n get    %s", answer.body, got.body)
		}
		if v := answer.ticket(t).Version; v != version {
			t.Fatalf("answered version %d, want %d", v, version)
		}
	}
	sameAsGet(created, 1)
	sameAsGet(send(200, "/v1/tickets/"+id+"/replies", map[string]any{"body": "On our way."}, 0, 0), 2)
	sameAsGet(send(200, "/v1/tickets/"+id+"/comments", map[string]any{"body": "Bring a ladder."}, 0, 0), 3)

	// Another writer (here the handler itself, as another ticketd would) appends.
	if _, err := s.handler.Execute(t.Context(), id, domain.AddComment{Body: "Written elsewhere."}, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	// The history has a gap: the answer reads the ticket's events where the read model
	// (which has applied the command, and so the other writer's event) knows them.
	held := send(200, "/v1/tickets/"+id+"/hold", map[string]any{"reason": "parts"}, 0, 1)
	sameAsGet(held, 5)
	if !strings.Contains(string(held.body), "Written elsewhere.") {
		t.Fatalf("the answer misses the other writer's comment: %s", held.body)
	}
}
