package natsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ticketcore/ticketcore/commands"
	"github.com/ticketcore/ticketcore/domain"
)

// Subjects, streams and the queue group of the NATS command transport
// (docs/commands.md).
const (
	// RequestSubjectPrefix: request/reply commands go to tickets.cmd.<command>.
	RequestSubjectPrefix = "tickets.cmd"
	// QueueGroup shares the request/reply subjects among ticketd processes.
	QueueGroup = "ticketd"
	// DurableSubjectPrefix: durable (fire-and-forget) commands go to tickets.cmdq.<command>.
	DurableSubjectPrefix = "tickets.cmdq"
	// ResultSubjectPrefix: the outcome of a durable command is published on
	// tickets.cmdq.results.<command id>.
	ResultSubjectPrefix = "tickets.cmdq.results"
	// DeadLetterSubject receives durable commands that cannot be processed.
	DeadLetterSubject = "tickets.cmdq.dead"

	// CommandStream holds durable commands until ticketd has processed them.
	CommandStream = "TICKETS_COMMANDS"
	// ResultStream keeps the outcomes of durable commands for a day.
	ResultStream = "TICKETS_COMMAND_RESULTS"
	// DeadLetterStream keeps the dead-lettered commands for 30 days.
	DeadLetterStream = "TICKETS_COMMANDS_DEAD"
	// CommandConsumer is the durable consumer every ticketd pulls commands from.
	CommandConsumer = "ticketd"
)

// Request headers.
const (
	HeaderCommandID       = "Command-Id"
	HeaderCorrelationID   = "Correlation-Id"
	HeaderCausationID     = "Causation-Id"
	HeaderActor           = "Actor"
	HeaderAuthorization   = "Authorization"
	HeaderExpectedVersion = "Expected-Version"
	HeaderTicketID        = "Ticket-Id"
	headerMsgID           = "Nats-Msg-Id"
)

// Reply (and result) headers.
const (
	HeaderStatus        = "Ticket-Status" // "ok" on success
	HeaderError         = "Ticket-Error"  // the error kind, e.g. "validation"
	HeaderErrorStatus   = "Ticket-Error-Status"
	HeaderVersion       = "Ticket-Version"
	HeaderPosition      = "Event-Position"
	HeaderReplayed      = "Idempotent-Replayed"
	HeaderCommand       = "Ticket-Command"     // on results: the command's name
	HeaderDeadLettered  = "Ticket-Dead-Letter" // on results: "true" when the command was dead-lettered
	StatusOK            = "ok"
	contentTypeJSON     = "application/json"
	contentTypeProblem  = "application/problem+json"
	maxHeaderValueBytes = 255
)

// MaxBodyBytes bounds a command body, as on HTTP: the largest message body the domain
// accepts (1 MiB) plus room for the other fields.
const MaxBodyBytes = 2 << 20

// Answer is the body of a successful reply or result.
type Answer struct {
	ID        string `json:"id"`
	Number    string `json:"number"`
	Version   uint64 `json:"version"`
	Position  uint64 `json:"position"`
	Duplicate bool   `json:"duplicate"`
}

// Problem is the body of an error reply or result: the same problem document (and
// types) as the HTTP API's.
type Problem struct {
	Type   string              `json:"type"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Detail string              `json:"detail,omitempty"`
	Errors []domain.FieldError `json:"errors,omitempty"`
}

// requestError is an error of the message itself (headers, body), found before any
// command runs.
type requestError struct {
	kind   string
	status int
	detail string
}

func (e *requestError) Error() string { return e.detail }

func malformed(format string, args ...any) error {
	return &requestError{kind: commands.KindMalformed, status: 400, detail: fmt.Sprintf(format, args...)}
}

// classify maps an error to its kind, HTTP-equivalent status and problem document.
func classify(err error) (kind string, p Problem) {
	var re *requestError
	status := 0
	if errors.As(err, &re) {
		kind, status = re.kind, re.status
	} else {
		kind, status = commands.Classify(err)
	}
	p = Problem{Type: commands.ProblemType(kind), Title: commands.ProblemTitle(kind), Status: status, Detail: err.Error()}
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		p.Errors = ve.Fields
	}
	if kind == commands.KindInternal {
		p.Detail = "an internal error occurred; it has been logged"
	}
	return kind, p
}

// header is the read side of message headers, whatever the transport (NATS headers,
// Watermill metadata). Lookups ignore case, as HTTP's do.
type header func(name string) string

func natsHeader(h map[string][]string) header {
	return func(name string) string {
		if v := h[name]; len(v) > 0 {
			return v[0]
		}
		for k, v := range h {
			if len(v) > 0 && strings.EqualFold(k, name) {
				return v[0]
			}
		}
		return ""
	}
}

// commandSpec decodes the body of one command.
type commandSpec func(body []byte) (ticketID string, cmd domain.TicketCommand, err error)

// ticketCommands is every command a NATS client may send, by subject token (the
// command's CommandName).
var ticketCommands = map[string]commandSpec{}

func init() {
	for _, spec := range []struct {
		name   string
		decode commandSpec
	}{
		{domain.CreateTicket{}.CommandName(), decodeAs[domain.CreateTicket]},
		{domain.SendReply{}.CommandName(), decodeAs[domain.SendReply]},
		{domain.ReceiveCustomerMessage{}.CommandName(), decodeAs[domain.ReceiveCustomerMessage]},
		{domain.AddComment{}.CommandName(), decodeAs[domain.AddComment]},
		{domain.HoldTicket{}.CommandName(), decodeAs[domain.HoldTicket]},
		{domain.ResolveTicket{}.CommandName(), decodeAs[domain.ResolveTicket]},
		{domain.CloseTicket{}.CommandName(), decodeAs[domain.CloseTicket]},
		{domain.ReopenTicket{}.CommandName(), decodeAs[domain.ReopenTicket]},
		{domain.SplitTicket{}.CommandName(), decodeAs[domain.SplitTicket]},
		{domain.ChangePriority{}.CommandName(), decodeAs[domain.ChangePriority]},
		{domain.ChangeType{}.CommandName(), decodeAs[domain.ChangeType]},
		{domain.AssignTicket{}.CommandName(), decodeAs[domain.AssignTicket]},
		{domain.UnassignTicket{}.CommandName(), decodeAs[domain.UnassignTicket]},
		{domain.ResetSLA{}.CommandName(), decodeAs[domain.ResetSLA]},
	} {
		ticketCommands[spec.name] = spec.decode
	}
}

// CommandNames lists the commands accepted over NATS, sorted.
func CommandNames() []string {
	names := make([]string, 0, len(ticketCommands))
	for n := range ticketCommands {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// decodeAs reads a command body strictly: one JSON object, no unknown field, at most
// MaxBodyBytes. "ticket_id" names the ticket and is not part of the command (except
// for create, where it chooses the new ticket's ID).
func decodeAs[C domain.TicketCommand](body []byte) (string, domain.TicketCommand, error) {
	if len(body) > MaxBodyBytes {
		return "", nil, &requestError{kind: commands.KindTooLarge, status: 413, detail: fmt.Sprintf("the body is larger than %d bytes", MaxBodyBytes)}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&fields); err != nil {
		return "", nil, malformed("malformed JSON body: %v", err)
	}
	if fields == nil {
		return "", nil, malformed("malformed JSON body: must be a JSON object")
	}
	if dec.More() {
		return "", nil, malformed("malformed JSON body: more than one value")
	}
	var ticketID string
	if raw, ok := fields["ticket_id"]; ok {
		if err := json.Unmarshal(raw, &ticketID); err != nil {
			return "", nil, malformed("malformed JSON body: ticket_id must be a string")
		}
		delete(fields, "ticket_id")
	}
	rest, err := json.Marshal(fields)
	if err != nil {
		return "", nil, malformed("malformed JSON body: %v", err)
	}
	var c C
	strict := json.NewDecoder(bytes.NewReader(rest))
	strict.DisallowUnknownFields()
	if err := strict.Decode(&c); err != nil {
		return "", nil, malformed("malformed JSON body: %v", err)
	}
	var cmd domain.TicketCommand = c
	switch v := cmd.(type) {
	case domain.CreateTicket:
		if v.Channel == "" {
			v.Channel = domain.ChannelAPI
		}
		cmd = v
	case domain.ReceiveCustomerMessage:
		if v.Channel == "" {
			v.Channel = domain.ChannelPortal
		}
		cmd = v
	}
	return ticketID, cmd, nil
}

// validCommandID: command IDs become a subject token of the result subject, so they
// are restricted to characters that are safe there.
func validCommandID(id string) bool {
	if id == "" || len(id) > 200 {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("-_:+=@", r):
		default:
			return false
		}
	}
	return true
}

// request is a decoded command with its metadata.
type request struct {
	name     string
	ticketID string
	cmd      domain.TicketCommand
	meta     commands.Meta
	token    string // the bearer token, checked before the command runs
}

// decodeRequest reads a command message: its subject token, headers and body.
// commandID is the ID to use when the headers name none ("" lets the handler generate
// one).
func decodeRequest(name string, h header, body []byte, commandID string) (request, error) {
	decode, ok := ticketCommands[name]
	if !ok {
		return request{name: name}, fmt.Errorf("no such command %q (known: %s): %w", name, strings.Join(CommandNames(), ", "), domain.ErrNotFound)
	}
	token, bearer := strings.CutPrefix(h(HeaderAuthorization), "Bearer ")
	if !bearer {
		token = "" // as over HTTP, only the Bearer scheme carries a token
	}
	req := request{name: name, token: strings.TrimSpace(token), meta: commands.Meta{
		Actor:         h(HeaderActor),
		CorrelationID: h(HeaderCorrelationID),
		CausationID:   h(HeaderCausationID),
	}}
	for _, v := range []struct{ name, value string }{{HeaderActor, req.meta.Actor}, {HeaderCorrelationID, req.meta.CorrelationID}, {HeaderCausationID, req.meta.CausationID}} {
		if len(v.value) > maxHeaderValueBytes {
			return req, malformed("%s is longer than %d bytes", v.name, maxHeaderValueBytes)
		}
	}
	switch {
	case h(HeaderCommandID) != "":
		req.meta.CommandID = h(HeaderCommandID)
	case h(headerMsgID) != "":
		req.meta.CommandID = h(headerMsgID)
	default:
		req.meta.CommandID = commandID
	}
	if req.meta.CommandID != "" && !validCommandID(req.meta.CommandID) {
		return req, malformed("%s (or Nats-Msg-Id) must be 1 to 200 characters among A-Z a-z 0-9 - _ : + = @", HeaderCommandID)
	}
	if raw := h(HeaderExpectedVersion); raw != "" {
		v, err := strconv.ParseUint(strings.TrimSpace(raw), 10, 64)
		if err != nil {
			return req, malformed("%s must be a ticket version, e.g. 3", HeaderExpectedVersion)
		}
		req.meta.ExpectedVersion = &v
	}
	ticketID, cmd, err := decode(body)
	if err != nil {
		return req, err
	}
	if hid := h(HeaderTicketID); hid != "" {
		if ticketID != "" && ticketID != hid {
			return req, malformed("the %s header (%s) and the body's ticket_id (%s) differ", HeaderTicketID, hid, ticketID)
		}
		ticketID = hid
	}
	req.ticketID, req.cmd = ticketID, cmd
	return req, nil
}

// Authenticator resolves API tokens (the handler's token catalogue).
type Authenticator interface {
	Authenticate(token string) (domain.Principal, bool)
}

// executor runs decoded commands through the handler.
type executor struct {
	handler *commands.Handler
	// resolve turns a ticket number (TKT-...) into its ID; nil accepts IDs only.
	resolve func(number string) (string, bool)
	auth    Authenticator
}

// authorize checks the request's token and role, as HTTP does, and names the actor.
func (x executor) authorize(req *request) error {
	if x.auth == nil {
		return nil
	}
	p, ok := x.auth.Authenticate(req.token)
	if !ok {
		return fmt.Errorf("send a valid API token in the %s header (Bearer tkc_...): %w", HeaderAuthorization, domain.ErrUnauthenticated)
	}
	if !p.Role.Allows(domain.PermTicketCommand) {
		return fmt.Errorf("the role %s does not have the permission %s: %w", p.Role, domain.PermTicketCommand, domain.ErrForbidden)
	}
	if req.meta.Actor != "" && p.Role == domain.RoleService {
		req.meta.Actor = p.Actor() + " for " + req.meta.Actor
	} else {
		req.meta.Actor = p.Actor()
	}
	return nil
}

func (x executor) execute(ctx context.Context, req request) (commands.Result, error) {
	if err := x.authorize(&req); err != nil {
		return commands.Result{}, err
	}
	if c, ok := req.cmd.(domain.CreateTicket); ok {
		c.TicketID = req.ticketID
		return x.handler.CreateTicket(ctx, c, req.meta)
	}
	id := req.ticketID
	if id == "" {
		return commands.Result{}, domain.Invalid("ticket_id", "is required: in the body or the %s header", HeaderTicketID)
	}
	if strings.HasPrefix(id, "TKT-") && x.resolve != nil {
		resolved, ok := x.resolve(id)
		if !ok {
			return commands.Result{}, fmt.Errorf("ticket %s: %w", id, domain.ErrNotFound)
		}
		id = resolved
	}
	return x.handler.Execute(ctx, id, req.cmd, req.meta)
}

// outcome is a reply or result: headers and a JSON body.
type outcome struct {
	headers map[string]string
	body    []byte
	kind    string // "" on success
}

func success(res commands.Result, commandID string) outcome {
	body, _ := json.Marshal(Answer{ID: res.TicketID, Number: res.Number, Version: res.Version, Position: res.Position, Duplicate: res.Duplicate})
	o := outcome{body: body, headers: map[string]string{
		HeaderStatus:   StatusOK,
		HeaderTicketID: res.TicketID,
		HeaderVersion:  strconv.FormatUint(res.Version, 10),
		HeaderPosition: strconv.FormatUint(res.Position, 10),
		"Content-Type": contentTypeJSON,
	}}
	if commandID != "" {
		o.headers[HeaderCommandID] = commandID
	}
	if res.Duplicate {
		o.headers[HeaderReplayed] = "true"
	}
	return o
}

func failure(err error, commandID string) outcome {
	kind, p := classify(err)
	body, _ := json.Marshal(p)
	o := outcome{kind: kind, body: body, headers: map[string]string{
		HeaderError:       kind,
		HeaderErrorStatus: strconv.Itoa(p.Status),
		"Content-Type":    contentTypeProblem,
	}}
	if commandID != "" {
		o.headers[HeaderCommandID] = commandID
	}
	return o
}
