// Package httpapi is the HTTP/JSON transport: it decodes requests into commands for
// the handlers and serves the read models. Errors leave as application/problem+json.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
	"github.com/ticketcore/ticketcore/projections"
)

// MaxBodyBytes bounds a request body: the largest message body the domain accepts
// (1 MiB) plus room for the other fields.
const MaxBodyBytes = 2 << 20

// readWaitTimeout bounds how long a request waits for the projections to show a write.
const readWaitTimeout = 5 * time.Second

// Server serves the API.
type Server struct {
	Handler *commands.Handler
	Tickets *projections.Tickets
	Runner  *projections.Runner
	Clock   func() time.Time
	Log     *slog.Logger
	// Auth checks API tokens and roles. ticketd always sets it; nil serves every
	// request unauthenticated, for tests and embedding only.
	Auth Authenticator
	// Reports computes GET /v1/reports/{name} (the SQL read model); nil answers 503.
	Reports ReportSource
	// ReportsRunner feeds Reports when Runner does not: ticketd runs its SQL read model
	// on a runner of its own, so that command answers need not wait for SQL commits.
	// A report then waits until it has applied what Runner had applied when the
	// report was asked (so it counts a command whose answer came before), and
	// min_position. Nil: Reports follows Runner.
	ReportsRunner *projections.Runner

	histories histories // for the answers of commands (histories.go)
}

// Routes returns the HTTP handler of the API.
func (s *Server) Routes() http.Handler {
	if s.Clock == nil {
		s.Clock = time.Now
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		health := map[string]any{"status": "ok", "position": s.Runner.Position()}
		if s.ReportsRunner != nil {
			health["sql_position"] = s.ReportsRunner.Position()
		}
		writeJSON(w, http.StatusOK, health)
	})
	mux.HandleFunc("POST /v1/tickets", s.handle(s.createTicket))
	mux.HandleFunc("GET /v1/tickets", s.handle(s.listTickets))
	mux.HandleFunc("GET /v1/tickets/{id}", s.handle(s.getTicket))
	mux.HandleFunc("GET /v1/tickets/{id}/events", s.handle(s.ticketEvents))
	mux.HandleFunc("GET /v1/tickets/{id}/history", s.handle(s.ticketHistory))
	for path, decode := range ticketCommands {
		mux.HandleFunc("POST /v1/tickets/{id}/"+path, s.handle(s.ticketCommand(decode)))
	}
	mux.HandleFunc("GET /v1/ticket-types", s.handle(s.listCatalogue(false)))
	mux.HandleFunc("POST /v1/ticket-types", s.handle(s.changeCatalogue(false, "create")))
	mux.HandleFunc("PATCH /v1/ticket-types/{name}", s.handle(s.changeCatalogue(false, "update")))
	mux.HandleFunc("DELETE /v1/ticket-types/{name}", s.handle(s.changeCatalogue(false, "remove")))
	mux.HandleFunc("GET /v1/ticket-priorities", s.handle(s.listCatalogue(true)))
	mux.HandleFunc("POST /v1/ticket-priorities", s.handle(s.changeCatalogue(true, "create")))
	mux.HandleFunc("PATCH /v1/ticket-priorities/{name}", s.handle(s.changeCatalogue(true, "update")))
	mux.HandleFunc("DELETE /v1/ticket-priorities/{name}", s.handle(s.changeCatalogue(true, "remove")))
	mux.HandleFunc("GET /v1/settings", s.handle(s.getSettings))
	mux.HandleFunc("PUT /v1/settings", s.handle(s.putSettings))
	mux.HandleFunc("GET /v1/holiday-lists", s.handle(s.listHolidayLists))
	mux.HandleFunc("PUT /v1/holiday-lists/{name}", s.handle(s.saveHolidayList))
	mux.HandleFunc("DELETE /v1/holiday-lists/{name}", s.handle(s.removeHolidayList))
	mux.HandleFunc("GET /v1/slas", s.handle(s.listSLAs))
	mux.HandleFunc("POST /v1/slas", s.handle(s.saveSLA))
	mux.HandleFunc("DELETE /v1/slas/{name}", s.handle(s.removeSLA))
	mux.HandleFunc("POST /v1/what-if", s.handle(s.whatIf))
	s.registerPortal(mux)
	s.registerTokens(mux)
	s.registerEmailAccounts(mux) // email_accounts.go
	s.registerAssignmentRules(mux)
	s.registerReports(mux)
	if s.Auth == nil {
		return problemForUnrouted(mux)
	}
	return s.authenticate(problemForUnrouted(mux))
}

// problemForUnrouted answers the mux's own 404 (no such path) and 405 (a known path with
// another method, with its Allow header) as problem documents like every other error.
func problemForUnrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{header: http.Header{}}
		mux.ServeHTTP(rec, r)
		if allow := rec.header.Get("Allow"); rec.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", allow)
			writeProblem(w, r, Problem{Type: ProblemMethodNotAllowed, Title: "Method not allowed", Status: http.StatusMethodNotAllowed,
				Detail: r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + allow})
			return
		}
		writeProblem(w, r, Problem{Type: ProblemNotFound, Title: "Not found", Status: http.StatusNotFound, Detail: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
}

// statusRecorder captures what the mux would answer for an unrouted request.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(status int)      { s.status = status }

// handle adapts an endpoint that returns an error to net/http, mapping the error once.
func (s *Server) handle(fn func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			p := problemFor(err)
			if p.Type == ProblemInternal {
				s.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeProblem(w, r, p)
		}
	}
}

// decodeBody reads a JSON body strictly: JSON content type, size limit, no unknown
// fields, exactly one value.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &requestError{http.StatusUnsupportedMediaType, ProblemMediaType, "the body must be application/json"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return &requestError{http.StatusRequestEntityTooLarge, ProblemTooLarge, fmt.Sprintf("the body is larger than %d bytes", MaxBodyBytes)}
		}
		return &requestError{http.StatusBadRequest, ProblemMalformed, "cannot read the body: " + err.Error()}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &requestError{http.StatusBadRequest, ProblemMalformed, "malformed JSON body: " + err.Error()}
	}
	if dec.More() {
		return &requestError{http.StatusBadRequest, ProblemMalformed, "malformed JSON body: more than one value"}
	}
	return nil
}

// meta builds command metadata from the request headers. The actor is the
// authenticated principal; a service may say on whose behalf it acts (X-Actor).
func meta(r *http.Request) (commands.Meta, error) {
	m := commands.Meta{
		Actor:         r.Header.Get("X-Actor"),
		CorrelationID: r.Header.Get("X-Correlation-ID"),
		CausationID:   r.Header.Get("X-Causation-ID"),
	}
	if p, ok := principalFrom(r.Context()); ok {
		switch {
		case m.Actor != "" && p.Role == domain.RoleService:
			m.Actor = p.Actor() + " for " + m.Actor
		default:
			m.Actor = p.Actor()
		}
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if len(key) > 255 {
			return m, &requestError{http.StatusBadRequest, ProblemMalformed, "Idempotency-Key is longer than 255 characters"}
		}
		// Scoped by path so that one key reused on two different endpoints is two commands.
		m.CommandID = commands.DeriveID("http-idempotency-key", r.URL.Path, key)
	}
	if im := r.Header.Get("If-Match"); im != "" {
		v, err := strconv.ParseUint(strings.Trim(strings.TrimPrefix(im, "W/"), `"`), 10, 64)
		if err != nil {
			return m, &requestError{http.StatusBadRequest, ProblemMalformed, "If-Match must be a ticket version, e.g. \"3\""}
		}
		m.ExpectedVersion = &v
	}
	return m, nil
}

// waitFor lets a read see the caller's own writes.
func (s *Server) waitFor(ctx context.Context, pos uint64) error {
	return waitOn(ctx, s.Runner, pos)
}

// waitOn waits, at most readWaitTimeout, until runner has applied pos.
func waitOn(ctx context.Context, runner *projections.Runner, pos uint64) error {
	ctx, cancel := context.WithTimeout(ctx, readWaitTimeout)
	defer cancel()
	if err := runner.WaitFor(ctx, pos); err != nil {
		return &requestError{http.StatusServiceUnavailable, ProblemUnavailable, fmt.Sprintf("the read model has not reached position %d yet", pos)}
	}
	return nil
}

// respondTicket answers a command with the ticket as the command left it, once the
// read model has applied the command too, so that lists read next show it as well.
func (s *Server) respondTicket(w http.ResponseWriter, r *http.Request, status int, res commands.Result) error {
	if err := s.waitFor(r.Context(), res.Position); err != nil {
		return err
	}
	s.histories.put(res.TicketID, res.History)
	events, ok := s.histories.extend(res.TicketID, res.Events)
	if !ok {
		var err error
		if events, err = s.readHistory(r.Context(), res.TicketID); err != nil {
			return err
		}
	}
	view, err := s.foldView(res.TicketID, events, time.Time{})
	if err != nil {
		return err
	}
	setVersionHeaders(w, view.Version, res.Position)
	if res.Duplicate {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, status, view)
	return nil
}

// ticketView folds a ticket's stream up to an instant (zero: all of it) into the
// detail view: the ticket with its thread exactly as it stood then, its agreement
// status evaluated at that instant (now, for the current ticket).
func (s *Server) ticketView(ctx context.Context, id string, asOf time.Time) (projections.TicketView, error) {
	events, err := s.readHistory(ctx, id)
	if err != nil {
		return projections.TicketView{}, err
	}
	return s.foldView(id, events, asOf)
}

// readHistory reads a ticket's history from the store and remembers it for the
// answers of the next commands. Where the read model knows the positions of the
// ticket's events, it reads them there (readKnownHistory); otherwise, or when the
// store has more, it reads the ticket's stream.
func (s *Server) readHistory(ctx context.Context, id string) ([]domain.Event, error) {
	events, ok := s.readKnownHistory(ctx, id)
	if !ok {
		var err error
		if events, err = s.Handler.TicketEvents(ctx, id); err != nil {
			return nil, err
		}
	}
	s.histories.put(id, events)
	return events, nil
}

// readKnownHistory reads a ticket's events at the positions the read model knows, and
// reports whether they are the whole history the store has now: the store's newest
// event of the ticket must be the last of them (the read model may be behind). Reading
// a stream makes the store search its file blocks for the ticket's events, 3 ms for a
// ticket of 8 events on a store of 110 000 tickets; reading them where they are, and
// the stream's newest event, takes a look-up each. Errors are left to the stream read.
func (s *Server) readKnownHistory(ctx context.Context, id string) ([]domain.Event, bool) {
	positions := s.Tickets.EventPositions(id)
	if positions == nil {
		return nil, false
	}
	last, err := s.Handler.TicketLastEventID(ctx, id)
	if err != nil {
		return nil, false
	}
	events, err := s.Handler.TicketEventsAt(ctx, id, positions)
	if err != nil || events[len(events)-1].ID != last {
		return nil, false
	}
	return events, true
}

// foldView folds a ticket's history up to asOf (zero: all of it) into the detail view.
func (s *Server) foldView(id string, events []domain.Event, asOf time.Time) (projections.TicketView, error) {
	t, ok := projections.FoldTicket(events, asOf, s.Tickets.LookupSLA)
	if !ok {
		if asOf.IsZero() {
			return projections.TicketView{}, fmt.Errorf("ticket %s: %w", id, domain.ErrNotFound)
		}
		return projections.TicketView{}, fmt.Errorf("ticket %s did not exist at %s: %w", id, asOf.Format(time.RFC3339), domain.ErrNotFound)
	}
	at := asOf
	if at.IsZero() {
		at = s.Clock()
	}
	return t.View(at, true), nil
}

func setVersionHeaders(w http.ResponseWriter, version, position uint64) {
	w.Header().Set("ETag", fmt.Sprintf("%q", strconv.FormatUint(version, 10)))
	if position > 0 {
		w.Header().Set("X-Event-Position", strconv.FormatUint(position, 10))
	}
}

// createRequest is the body of POST /v1/tickets.
type createRequest struct {
	domain.TicketFieldsData
	Attachments []domain.Attachment `json:"attachments,omitempty"`
}

func (s *Server) createTicket(w http.ResponseWriter, r *http.Request) error {
	var req createRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	m, err := meta(r)
	if err != nil {
		return err
	}
	if req.Channel == "" {
		req.Channel = domain.ChannelAPI
	}
	res, err := s.Handler.CreateTicket(r.Context(), domain.CreateTicket{TicketFieldsData: req.TicketFieldsData, Attachments: req.Attachments}, m)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/tickets/"+res.TicketID)
	status := http.StatusCreated
	if res.Duplicate {
		status = http.StatusOK
	}
	return s.respondTicket(w, r, status, res)
}

// ticketCommands maps each command endpoint to the decoding of its body.
var ticketCommands = map[string]func(w http.ResponseWriter, r *http.Request) (domain.TicketCommand, error){
	"replies":   decodeAs[domain.SendReply],
	"messages":  decodeAs[domain.ReceiveCustomerMessage],
	"comments":  decodeAs[domain.AddComment],
	"hold":      decodeAs[domain.HoldTicket],
	"resolve":   decodeAs[domain.ResolveTicket],
	"close":     decodeAs[domain.CloseTicket],
	"reopen":    decodeAs[domain.ReopenTicket],
	"split":     decodeAs[domain.SplitTicket],
	"priority":  decodeAs[domain.ChangePriority],
	"type":      decodeAs[domain.ChangeType],
	"assign":    decodeAs[domain.AssignTicket],
	"unassign":  decodeAs[domain.UnassignTicket],
	"reset-sla": decodeAs[domain.ResetSLA],
}

func decodeAs[C domain.TicketCommand](w http.ResponseWriter, r *http.Request) (domain.TicketCommand, error) {
	var c C
	if err := decodeBody(w, r, &c); err != nil {
		return nil, err
	}
	if m, ok := any(c).(domain.ReceiveCustomerMessage); ok && m.Channel == "" {
		m.Channel = domain.ChannelPortal
		return m, nil
	}
	return c, nil
}

func (s *Server) ticketCommand(decode func(http.ResponseWriter, *http.Request) (domain.TicketCommand, error)) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		cmd, err := decode(w, r)
		if err != nil {
			return err
		}
		m, err := meta(r)
		if err != nil {
			return err
		}
		id, err := s.resolveID(r.PathValue("id"))
		if err != nil {
			return err
		}
		res, err := s.Handler.Execute(r.Context(), id, cmd, m)
		if err != nil {
			return err
		}
		status := http.StatusOK
		if _, ok := cmd.(domain.SplitTicket); ok {
			status = http.StatusCreated
			w.Header().Set("Location", "/v1/tickets/"+res.TicketID)
		}
		return s.respondTicket(w, r, status, res)
	}
}

// resolveID accepts a ticket id or number.
func (s *Server) resolveID(idOrNumber string) (string, error) {
	if strings.HasPrefix(idOrNumber, "TKT-") {
		v, ok := s.Tickets.Get(idOrNumber, s.Clock())
		if !ok {
			return "", fmt.Errorf("ticket %s: %w", idOrNumber, domain.ErrNotFound)
		}
		return v.ID, nil
	}
	return idOrNumber, nil
}

// minPosition honours ?min_position= / X-Min-Position: wait until the read model has
// applied that position (the X-Event-Position a write returned).
func (s *Server) minPosition(r *http.Request) error {
	pos, err := minPositionOf(r)
	if err != nil || pos == 0 {
		return err
	}
	return s.waitFor(r.Context(), pos)
}

// minPositionOf is the request's min_position (or X-Min-Position), 0 when absent.
func minPositionOf(r *http.Request) (uint64, error) {
	raw := r.URL.Query().Get("min_position")
	if raw == "" {
		raw = r.Header.Get("X-Min-Position")
	}
	if raw == "" {
		return 0, nil
	}
	pos, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		return 0, &requestError{http.StatusBadRequest, ProblemMalformed, "min_position must be a non-negative integer"}
	}
	return pos, nil
}

func parseTime(name, raw string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return time.Time{}, domain.Invalid(name, "must be an RFC 3339 instant, e.g. 2026-01-05T12:00:00Z")
	}
	return t, nil
}

func (s *Server) getTicket(w http.ResponseWriter, r *http.Request) error {
	if err := s.minPosition(r); err != nil {
		return err
	}
	q := r.URL.Query()
	if raw := q.Get("as_of"); raw != "" {
		asOf, err := parseTime("as_of", raw)
		if err != nil {
			return err
		}
		return s.getTicketAsOf(w, r, asOf)
	}
	return s.getTicketAsOf(w, r, time.Time{})
}

func (s *Server) getTicketAsOf(w http.ResponseWriter, r *http.Request, asOf time.Time) error {
	id, err := s.resolveID(r.PathValue("id"))
	if err != nil {
		return err
	}
	view, err := s.ticketView(r.Context(), id, asOf)
	if err != nil {
		return err
	}
	if asOf.IsZero() {
		setVersionHeaders(w, view.Version, 0)
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}

func (s *Server) ticketEvents(w http.ResponseWriter, r *http.Request) error {
	id, err := s.resolveID(r.PathValue("id"))
	if err != nil {
		return err
	}
	events, err := s.Handler.TicketEvents(r.Context(), id)
	if err != nil {
		return err
	}
	if len(events) == 0 {
		return fmt.Errorf("ticket %s: %w", id, domain.ErrNotFound)
	}
	writeJSON(w, http.StatusOK, map[string]any{"ticket_id": id, "events": events})
	return nil
}

func (s *Server) listTickets(w http.ResponseWriter, r *http.Request) error {
	if err := s.minPosition(r); err != nil {
		return err
	}
	q := r.URL.Query()
	known := map[string]bool{"min_position": true, "limit": true, "offset": true, "order": true, "breached": true, "due_before": true, "as_of": true}
	f := projections.Filter{
		Status: q.Get("status"), Priority: q.Get("priority"), TicketType: q.Get("ticket_type"),
		Customer: q.Get("customer"), Contact: q.Get("contact"), Lead: q.Get("lead"), Company: q.Get("company"),
		Project: q.Get("project"), EmailAccount: q.Get("email_account"), Assignee: q.Get("assignee"),
		RaisedBy: q.Get("raised_by"), Channel: q.Get("channel"), SLA: q.Get("sla"), AgreementStatus: q.Get("agreement_status"),
		NewestFirst: q.Get("order") == "newest",
	}
	if o := q.Get("order"); o != "" && o != "newest" && o != "oldest" {
		return domain.Invalid("order", "must be newest or oldest")
	}
	for _, k := range []string{"status", "priority", "ticket_type", "customer", "contact", "lead", "company", "project", "email_account", "assignee", "raised_by", "channel", "sla", "agreement_status"} {
		known[k] = true
	}
	var v domain.ValidationError
	for k := range q {
		if !known[k] {
			v.Add(k, "unknown query parameter")
		}
	}
	if f.Status != "" && !domain.Status(f.Status).Valid() {
		v.Add("status", "unknown status %q", f.Status)
	}
	intParam := func(name string, dst *int, max int) {
		if raw := q.Get(name); raw != "" {
			n, err := strconv.Atoi(raw)
			if err != nil || n < 0 || n > max {
				v.Add(name, "must be an integer from 0 to %d", max)
			}
			*dst = n
		}
	}
	intParam("limit", &f.Limit, 1000)
	intParam("offset", &f.Offset, 1<<30)
	if raw := q.Get("breached"); raw != "" {
		b, err := strconv.ParseBool(raw)
		if err != nil {
			v.Add("breached", "must be true or false")
		}
		f.Breached = &b
	}
	if raw := q.Get("due_before"); raw != "" {
		t, err := parseTime("due_before", raw)
		if err != nil {
			v.Add("due_before", "must be an RFC 3339 instant")
		}
		f.DueBefore = t
	}
	at := s.Clock()
	if raw := q.Get("as_of"); raw != "" {
		t, err := parseTime("as_of", raw)
		if err != nil {
			v.Add("as_of", "must be an RFC 3339 instant")
		}
		at = t
	}
	if err := v.Err(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.Tickets.List(f, at))
	return nil
}

func (s *Server) listCatalogue(priorities bool) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		entries := s.Handler.Catalogues().TicketTypes()
		if priorities {
			entries = s.Handler.Catalogues().TicketPriorities()
		}
		if entries == nil {
			entries = []domain.NamedEntry{}
		}
		writeJSON(w, http.StatusOK, entries)
		return nil
	}
}

func (s *Server) changeCatalogue(priorities bool, op string) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var body struct {
			Name        string  `json:"name"`
			NewName     string  `json:"new_name,omitempty"`
			Description *string `json:"description,omitempty"` // PATCH: absent keeps it
		}
		if op != "remove" {
			if err := decodeBody(w, r, &body); err != nil {
				return err
			}
		}
		if name := r.PathValue("name"); name != "" {
			body.Name = name
		}
		m, err := meta(r)
		if err != nil {
			return err
		}
		cmd := domain.CatalogueCommand{Op: op, Name: body.Name, NewName: body.NewName}
		if body.Description != nil {
			cmd.Description = *body.Description
		} else if op == "update" {
			cmd.Description = s.currentDescription(priorities, body.Name)
		}
		if _, err := s.Handler.ChangeCatalogue(r.Context(), priorities, cmd, s.Tickets, m); err != nil {
			return err
		}
		status := http.StatusOK
		switch op {
		case "create":
			status = http.StatusCreated
		case "remove":
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		writeJSON(w, status, domain.NamedEntry{Name: or(body.NewName, body.Name), Description: cmd.Description})
		return nil
	}
}

func (s *Server) currentDescription(priorities bool, name string) string {
	entries := s.Handler.Catalogues().TicketTypes()
	if priorities {
		entries = s.Handler.Catalogues().TicketPriorities()
	}
	for _, e := range entries {
		if e.Name == name {
			return e.Description
		}
	}
	return ""
}

func (s *Server) listHolidayLists(w http.ResponseWriter, r *http.Request) error {
	lists := s.Handler.Catalogues().HolidayLists()
	out := make([]domain.HolidayList, 0, len(lists))
	for _, l := range lists {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b domain.HolidayList) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, out)
	return nil
}

// saveHolidayList creates or replaces a list; every SLA naming it gets a new version.
func (s *Server) saveHolidayList(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Description string   `json:"description,omitempty"`
		Holidays    []string `json:"holidays"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	m, err := meta(r)
	if err != nil {
		return err
	}
	list := domain.HolidayList{Name: r.PathValue("name"), Description: body.Description, Holidays: body.Holidays}
	events, err := s.Handler.SaveHolidayList(r.Context(), list, m)
	if err != nil {
		return err
	}
	resaved := []slaView{}
	for _, e := range events {
		if saved, ok := e.Payload.(domain.SLASaved); ok {
			resaved = append(resaved, slaView{Version: saved.Version, SLADefinition: saved.Definition})
		}
	}
	saved := s.Handler.Catalogues().HolidayLists()[list.Name]
	writeJSON(w, http.StatusOK, map[string]any{"holiday_list": saved, "slas_saved": resaved})
	return nil
}

func (s *Server) removeHolidayList(w http.ResponseWriter, r *http.Request) error {
	m, err := meta(r)
	if err != nil {
		return err
	}
	if _, err := s.Handler.RemoveHolidayList(r.Context(), r.PathValue("name"), m); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func or(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.Handler.Catalogues().Settings())
	return nil
}

func (s *Server) putSettings(w http.ResponseWriter, r *http.Request) error {
	var next domain.SupportSettings
	if err := decodeBody(w, r, &next); err != nil {
		return err
	}
	m, err := meta(r)
	if err != nil {
		return err
	}
	if _, err := s.Handler.ChangeSettings(r.Context(), next, m); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.Handler.Catalogues().Settings())
	return nil
}

// slaView is an SLA as listed: its definition and the version tickets record.
type slaView struct {
	Version int `json:"version"`
	domain.SLADefinition
}

func (s *Server) listSLAs(w http.ResponseWriter, r *http.Request) error {
	out := []slaView{}
	for _, v := range s.Handler.Catalogues().SLAs() {
		def, _ := s.Handler.Catalogues().WrittenSLA(v.SLA.Name()) // holiday lists by name, as written
		out = append(out, slaView{Version: v.Version, SLADefinition: def})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) saveSLA(w http.ResponseWriter, r *http.Request) error {
	var def domain.SLADefinition
	if err := decodeBody(w, r, &def); err != nil {
		return err
	}
	m, err := meta(r)
	if err != nil {
		return err
	}
	events, err := s.Handler.SaveSLA(r.Context(), def, m)
	if err != nil {
		return err
	}
	version := 0
	for _, e := range events {
		if saved, ok := e.Payload.(domain.SLASaved); ok {
			version = saved.Version
		}
	}
	writeJSON(w, http.StatusCreated, slaView{Version: version, SLADefinition: def})
	return nil
}

func (s *Server) removeSLA(w http.ResponseWriter, r *http.Request) error {
	m, err := meta(r)
	if err != nil {
		return err
	}
	if _, err := s.Handler.RemoveSLA(r.Context(), r.PathValue("name"), m); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// whatIfRequest is the body of POST /v1/what-if.
type whatIfRequest struct {
	SLA    domain.SLADefinition `json:"sla"`
	Filter struct {
		Status          string `json:"status"`
		Priority        string `json:"priority"`
		TicketType      string `json:"ticket_type"`
		Customer        string `json:"customer"`
		Company         string `json:"company"`
		Project         string `json:"project"`
		SLA             string `json:"sla"`
		AgreementStatus string `json:"agreement_status"`
	} `json:"filter"`
	AsOf *time.Time `json:"as_of,omitempty"`
}

// whatIf replays the recorded history of the selected tickets under another SLA
// definition and reports how deadlines, breaches and compliance would change. It
// writes nothing.
func (s *Server) whatIf(w http.ResponseWriter, r *http.Request) error {
	var req whatIfRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	sla, err := domain.CompileSLAWith(req.SLA, s.Handler.Catalogues().HolidayListDates)
	if err != nil {
		return err
	}
	at := s.Clock()
	if req.AsOf != nil {
		at = *req.AsOf
	}
	f := projections.Filter{Status: req.Filter.Status, Priority: req.Filter.Priority, TicketType: req.Filter.TicketType,
		Customer: req.Filter.Customer, Company: req.Filter.Company, Project: req.Filter.Project, SLA: req.Filter.SLA,
		AgreementStatus: req.Filter.AgreementStatus}
	var include func(string) bool
	if f != (projections.Filter{}) {
		ids := map[string]bool{}
		for _, id := range s.Tickets.MatchingIDs(f, at) {
			ids[id] = true
		}
		include = func(id string) bool { return ids[id] }
	}
	run := projections.NewWhatIf(sla, at, s.Tickets.LookupSLA, include)
	if _, err := projections.Replay(r.Context(), s.Handler.Store(), func(e domain.Event, _ uint64) error {
		run.Apply(e)
		return nil
	}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run.Report())
	return nil
}
