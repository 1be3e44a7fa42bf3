package natsapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill"
	wmjs "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/ticketcore/ticketcore/domain"
)

// Command is a durable ticket command as a Go service sends it with the Watermill
// command bus (NewCommandBus).
type Command struct {
	// TicketID names the ticket (its ID or number); for create, an optional ID of the
	// new ticket.
	TicketID string
	Command  domain.TicketCommand
	// CommandID makes the command idempotent; a random one is used when empty. Its
	// outcome is published on tickets.cmdq.results.<CommandID>.
	CommandID       string
	Actor           string
	CorrelationID   string
	CausationID     string
	ExpectedVersion *uint64
	// Token is the API token the command is sent with (the Authorization header: a
	// service's token, POST /v1/tokens). It is not read back by Unmarshal: a consumer
	// has no use for another's credentials.
	Token string
}

// Marshaler is the Watermill CQRS marshaler of Command: the body is the command's JSON
// with "ticket_id", the metadata become the NATS headers ticketd reads (Command-Id and
// Nats-Msg-Id are the command ID, so JetStream drops a republished command).
type Marshaler struct{}

var _ cqrs.CommandEventMarshaler = Marshaler{}

func asCommand(v any) (Command, error) {
	switch c := v.(type) {
	case Command:
		return c, nil
	case *Command:
		return *c, nil
	}
	return Command{}, fmt.Errorf("natsapi: cannot send %T; send a natsapi.Command", v)
}

// Marshal makes the message of a Command.
func (Marshaler) Marshal(v any) (*message.Message, error) {
	c, err := asCommand(v)
	if err != nil {
		return nil, err
	}
	if c.Command == nil {
		return nil, errors.New("natsapi: Command.Command is nil")
	}
	if _, ok := ticketCommands[c.Command.CommandName()]; !ok {
		return nil, fmt.Errorf("natsapi: %s cannot be sent over NATS", c.Command.CommandName())
	}
	raw, err := json.Marshal(c.Command)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	delete(fields, "ticket_id")
	if c.TicketID != "" {
		fields["ticket_id"], _ = json.Marshal(c.TicketID)
	}
	body, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	id := c.CommandID
	if id == "" {
		id = uuid.NewString()
	}
	if !validCommandID(id) {
		return nil, fmt.Errorf("natsapi: command ID %q: 1 to 200 characters among A-Z a-z 0-9 - _ : + = @", id)
	}
	msg := message.NewMessage(id, body)
	msg.Metadata.Set(HeaderCommandID, id)
	msg.Metadata.Set(headerMsgID, id)
	msg.Metadata.Set(HeaderCommand, c.Command.CommandName())
	for k, v := range map[string]string{HeaderActor: c.Actor, HeaderCorrelationID: c.CorrelationID, HeaderCausationID: c.CausationID} {
		if v != "" {
			msg.Metadata.Set(k, v)
		}
	}
	if c.ExpectedVersion != nil {
		msg.Metadata.Set(HeaderExpectedVersion, strconv.FormatUint(*c.ExpectedVersion, 10))
	}
	if c.Token != "" {
		msg.Metadata.Set(HeaderAuthorization, "Bearer "+c.Token)
	}
	return msg, nil
}

// Unmarshal reads a message made by Marshal back into a *Command.
func (m Marshaler) Unmarshal(msg *message.Message, v any) error {
	c, ok := v.(*Command)
	if !ok {
		return fmt.Errorf("natsapi: cannot unmarshal into %T; use *natsapi.Command", v)
	}
	req, err := decodeRequest(m.NameFromMessage(msg), metadataHeader(msg.Metadata), msg.Payload, "")
	if err != nil {
		return err
	}
	*c = Command{TicketID: req.ticketID, Command: req.cmd, CommandID: req.meta.CommandID, Actor: req.meta.Actor,
		CorrelationID: req.meta.CorrelationID, CausationID: req.meta.CausationID, ExpectedVersion: req.meta.ExpectedVersion}
	return nil
}

// Name is the command's name, the last token of its subject.
func (Marshaler) Name(v any) string {
	c, err := asCommand(v)
	if err != nil || c.Command == nil {
		return ""
	}
	return c.Command.CommandName()
}

// NameFromMessage is the command name a message carries.
func (Marshaler) NameFromMessage(msg *message.Message) string { return msg.Metadata.Get(HeaderCommand) }

// NewCommandBus is a Watermill CQRS command bus that publishes Commands to
// tickets.cmdq.<command> through JetStream (watermill-nats), for Go services built on
// Watermill. Send returns once JetStream has stored the command; the outcome follows
// on tickets.cmdq.results.<command ID>. Services without Watermill publish the same
// messages with nats.go (docs/commands.md).
func NewCommandBus(nc *nats.Conn, logger watermill.LoggerAdapter) (*cqrs.CommandBus, error) {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	pub, err := wmjs.NewPublisher(wmjs.PublisherConfig{Conn: nc, Logger: logger})
	if err != nil {
		return nil, err
	}
	return cqrs.NewCommandBusWithConfig(pub, cqrs.CommandBusConfig{
		GeneratePublishTopic: func(p cqrs.CommandBusGeneratePublishTopicParams) (string, error) {
			return DurableSubjectPrefix + "." + p.CommandName, nil
		},
		Marshaler: Marshaler{},
		Logger:    logger,
	})
}
