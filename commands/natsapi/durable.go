package natsapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmjs "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketcore/ticketcore/commands"
)

// Durable command defaults.
const (
	// commandDedupWindow: JetStream drops a command published again with the same
	// Nats-Msg-Id within this window (the handler's own idempotency covers any later
	// retry).
	commandDedupWindow = 10 * time.Minute
	// resultRetention: how long outcomes stay readable in ResultStream.
	resultRetention = 24 * time.Hour
	// deadLetterRetention: how long dead letters are kept for an operator to look at.
	deadLetterRetention = 30 * 24 * time.Hour
	// ackWait: a delivered command not acknowledged within this time (nor reported in
	// progress) is delivered again: ticketd crashed while handling it.
	ackWait = 30 * time.Second
	// prefetch: commands pulled ahead of the one in hand. A stop hands them back (a NAK,
	// which counts as a delivery towards MaxDeliveries), so it is kept at one; the
	// pull round trip is small next to an append.
	prefetch = 1
)

// Metadata keys the processor adds to every durable command; they travel as headers
// on a dead letter.
const (
	metaSubject    = "Ticketd-Subject"    // the subject the command was published to
	metaDeliveries = "Ticketd-Deliveries" // how often JetStream has delivered it
	metaSequence   = "Ticketd-Sequence"   // its sequence in CommandStream
	metaCommandID  = "Ticketd-Command-Id" // the command ID outcomes are published under
)

// DurableSubjects are the subjects of CommandStream, one per command.
func DurableSubjects() []string {
	names := CommandNames()
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = DurableSubjectPrefix + "." + n
	}
	return out
}

// EnsureStreams creates (or updates) the streams of durable commands, their results
// and dead letters, and the durable consumer ticketd processes them with. ticketd calls
// it at start; a deployment can call it earlier so that services can publish durable
// commands before ticketd first runs.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, opts ...StreamOption) error {
	st := applyStreamOptions(opts)
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        CommandStream,
		Description: "durable ticket commands waiting for ticketd (work queue)",
		Subjects:    DurableSubjects(),
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  commandDedupWindow,
		Replicas:    st.replicas,
	})
	if err != nil {
		return fmt.Errorf("command stream: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              ResultStream,
		Description:       "outcomes of durable ticket commands, by command ID",
		Subjects:          []string{ResultSubjectPrefix + ".>"},
		Storage:           jetstream.FileStorage,
		MaxAge:            resultRetention,
		MaxMsgsPerSubject: 1,
		AllowDirect:       true,
		Replicas:          st.replicas,
	}); err != nil {
		return fmt.Errorf("command result stream: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        DeadLetterStream,
		Description: "durable ticket commands ticketd could not process",
		Subjects:    []string{DeadLetterSubject},
		Storage:     jetstream.FileStorage,
		MaxAge:      deadLetterRetention,
		Duplicates:  commandDedupWindow,
		AllowDirect: true,
		Replicas:    st.replicas,
	}); err != nil {
		return fmt.Errorf("dead letter stream: %w", err)
	}
	if _, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       CommandConsumer,
		Description:   "every ticketd pulls durable commands from here",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1, // the processor dead-letters after Config.MaxDeliveries itself
		MaxAckPending: 1000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}); err != nil {
		return fmt.Errorf("command consumer: %w", err)
	}
	return nil
}

// poisonError marks a command that goes to the dead-letter stream: undecodable, or
// still failing at its last delivery.
type poisonError struct{ cause error }

func (e *poisonError) Error() string { return "dead-lettered: " + e.cause.Error() }
func (e *poisonError) Unwrap() error { return e.cause }

func isPoison(err error) bool {
	var p *poisonError
	return errors.As(err, &p)
}

// processor handles durable commands: Watermill's router, fed from the durable
// consumer, with middlewares for correlation IDs, the poison queue and retries; results
// and dead letters leave through the watermill-nats JetStream publisher.
type processor struct {
	s *Server
}

// toMessage makes a Watermill message of a JetStream message: the headers as metadata
// (without JetStream's own, which must not be published again with a dead letter) and
// where the message stands in the stream. It never fails: a message that cannot be read
// as a command is dead-lettered by the handler.
func toMessage(m jetstream.Msg) *message.Message {
	md := message.Metadata{}
	for k, v := range m.Headers() {
		if len(v) == 0 || k == wmnats.WatermillUUIDHdr || (strings.HasPrefix(k, "Nats-") && k != headerMsgID) {
			continue
		}
		md.Set(k, v[0])
	}
	md.Set(metaSubject, m.Subject())
	derived := ""
	if info, err := m.Metadata(); err == nil {
		md.Set(metaDeliveries, strconv.FormatUint(info.NumDelivered, 10))
		md.Set(metaSequence, strconv.FormatUint(info.Sequence.Stream, 10))
		// A command sent with no ID gets one from its place in the stream (and its time,
		// in case the stream is ever recreated), the same at every delivery.
		derived = fmt.Sprintf("cmdq-%d-%d", info.Sequence.Stream, info.Timestamp.UnixNano())
	}
	h := natsHeader(m.Headers())
	id := h(HeaderCommandID)
	if id == "" {
		id = h(headerMsgID)
	}
	if !validCommandID(id) {
		id = derived
	}
	md.Set(metaCommandID, id)
	msg := message.NewMessage(id, m.Data())
	msg.Metadata = md
	corr := h(HeaderCorrelationID)
	if corr == "" {
		corr = id
	}
	middleware.SetCorrelationID(corr, msg)
	return msg
}

func metadataHeader(md message.Metadata) header {
	return func(name string) string {
		if v := md.Get(name); v != "" {
			return v
		}
		for k, v := range md {
			if strings.EqualFold(k, name) {
				return v
			}
		}
		return ""
	}
}

// handle processes one durable command. Its outcome (success or final refusal) is the
// message it returns, which the router publishes on the result subject before it
// acknowledges the command. A transient failure is returned as an error: retried here
// (middleware.Retry), then given back to JetStream for a later delivery.
func (p processor) handle(msg *message.Message) ([]*message.Message, error) {
	name := strings.TrimPrefix(msg.Metadata.Get(metaSubject), DurableSubjectPrefix+".")
	id := msg.Metadata.Get(metaCommandID)
	if deliveries(msg) > p.s.cfg.MaxDeliveries {
		// Delivered again after its last allowed delivery (ticketd stopped while handling
		// it, or the dead-letter publish failed): do not run it again.
		return p.deadLetter(msg, name, id, &requestError{kind: commands.KindUnavailable, status: 503,
			detail: fmt.Sprintf("not processed after %d deliveries", p.s.cfg.MaxDeliveries)})
	}
	req, err := decodeRequest(name, metadataHeader(msg.Metadata), msg.Payload, id)
	if err != nil {
		return p.deadLetter(msg, name, id, err)
	}
	ctx, cancel := context.WithTimeout(msg.Context(), p.s.cfg.CommandTimeout)
	defer cancel()
	res, err := p.s.x.execute(ctx, req)
	switch {
	case err == nil:
		return []*message.Message{p.result(name, id, success(res, id))}, nil
	case commands.Transient(err):
		return nil, err
	}
	p.s.log.Info("durable command refused", "command", name, "command_id", id, "err", err)
	return []*message.Message{p.result(name, id, failure(err, id))}, nil
}

// giveUp dead-letters a command that still fails at its last allowed delivery.
func (p processor) giveUp(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err == nil || isPoison(err) {
			return out, err
		}
		// Not when ticketd is stopping: the command was interrupted, not refused.
		if deliveries(msg) >= p.s.cfg.MaxDeliveries && msg.Context().Err() == nil {
			name := strings.TrimPrefix(msg.Metadata.Get(metaSubject), DurableSubjectPrefix+".")
			return p.deadLetter(msg, name, msg.Metadata.Get(metaCommandID), err)
		}
		p.s.log.Warn("durable command failed; it will be delivered again", "command_id", msg.Metadata.Get(metaCommandID),
			"delivery", deliveries(msg), "err", err)
		return out, err
	}
}

// deadLetter answers with the failure (marked as dead-lettered) and a poisonError, on
// which middleware.PoisonQueue publishes the command itself to DeadLetterSubject.
func (p processor) deadLetter(msg *message.Message, name, id string, cause error) ([]*message.Message, error) {
	p.s.log.Warn("durable command dead-lettered", "command", name, "command_id", id, "subject", msg.Metadata.Get(metaSubject),
		"delivery", deliveries(msg), "err", cause)
	o := failure(cause, id)
	o.headers[HeaderDeadLettered] = "true"
	msg.Metadata.Set(headerMsgID, "dead-"+id) // at most one dead letter per command within the window
	// The dead letter is kept for an operator to read: never with the sender's token.
	delete(msg.Metadata, HeaderAuthorization)
	return []*message.Message{p.result(name, id, o)}, &poisonError{cause: cause}
}

// result is the outcome message of a durable command, for ResultStream.
func (p processor) result(name, id string, o outcome) *message.Message {
	m := message.NewMessage(id, o.body)
	for k, v := range o.headers {
		m.Metadata.Set(k, v)
	}
	m.Metadata.Set(HeaderCommand, name)
	m.Metadata.Set(HeaderCommandID, id)
	// No message ID: a command sent again after it was processed gets its (duplicate)
	// outcome again, and the stream keeps the last outcome of each command.
	return m
}

func deliveries(msg *message.Message) int {
	n, _ := strconv.Atoi(msg.Metadata.Get(metaDeliveries))
	return n
}

// resultPublisher publishes each outcome on the result subject of its command.
type resultPublisher struct{ pub message.Publisher }

func (r resultPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if err := r.pub.Publish(topic+"."+m.Metadata.Get(HeaderCommandID), m); err != nil {
			return err
		}
	}
	return nil
}

// Close leaves the shared connection open (watermill-nats closes the connection of a
// publisher it closes).
func (resultPublisher) Close() error { return nil }

// subscriber feeds the router from the durable consumer, one command at a time, in
// stream order. watermill-nats has a JetStream subscriber, but (v2.1.3) it gives up an
// acknowledgement in flight when its context ends, so that every graceful stop would
// leave the command being handled to be delivered again after the ack wait, and its
// Close drains the connection it was given (the store's). This one, when the router
// stops, lets the command in hand finish and be acknowledged, hands the commands
// pulled ahead back to JetStream at once (NAK), then closes.
type subscriber struct {
	consumer jetstream.Consumer
	delay    redelivery
	limit    time.Duration // longest wait for a command's outcome
	log      *slog.Logger
}

func (s subscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	cc, err := s.consumer.Consume(func(m jetstream.Msg) {
		msg := toMessage(m)
		// The command runs to its end even when the router stops (CommandTimeout bounds it).
		msg.SetContext(context.WithoutCancel(ctx))
		select {
		case <-ctx.Done():
			_ = m.Nak() // pulled ahead, not started: another ticketd (or the next start) takes it
			return
		case out <- msg:
		}
		// While the command runs, tell JetStream so (it would deliver it again after
		// ackWait), up to a limit past which the handler is deemed stuck.
		progress := time.NewTicker(ackWait / 3)
		defer progress.Stop()
		limit := time.NewTimer(s.limit)
		defer limit.Stop()
		for {
			select {
			case <-msg.Acked():
				ackCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := m.DoubleAck(ackCtx); err != nil {
					s.log.Warn("durable command: acknowledgement failed; it will be delivered again", "subject", m.Subject(), "err", err)
				}
				return
			case <-msg.Nacked():
				delay := s.delay.base
				if info, err := m.Metadata(); err == nil {
					delay = s.delay.WaitTime(info.NumDelivered)
				}
				_ = m.NakWithDelay(delay)
				return
			case <-progress.C:
				_ = m.InProgress()
			case <-limit.C:
				s.log.Error("durable command: no outcome in time; it will be delivered again", "subject", m.Subject(), "limit", s.limit)
				return
			}
		}
	}, jetstream.PullMaxMessages(prefetch))
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", CommandConsumer, err)
	}
	go func() {
		<-ctx.Done()
		cc.Drain()
		<-cc.Closed()
		close(out)
	}()
	return out, nil
}

// Close does nothing: the subscription ends with the router's context.
func (subscriber) Close() error { return nil }

// redelivery is the back-off of a command given back to JetStream: base, 2*base,
// 4*base... at most max.
type redelivery struct{ base, max time.Duration }

func (r redelivery) WaitTime(delivered uint64) time.Duration {
	d := r.base
	for i := uint64(1); i < delivered && d < r.max; i++ {
		d *= 2
	}
	return min(d, r.max)
}

// run processes durable commands until ctx ends.
func (p processor) run(ctx context.Context) error {
	s := p.s
	// Again at every start: the streams may have been lost with an external server.
	js, err := jetstream.New(s.cfg.Conn)
	if err != nil {
		return err
	}
	if err := EnsureStreams(ctx, js, Replicas(s.cfg.Replicas)); err != nil {
		return err
	}
	wlog := watermill.NewSlogLoggerWithLevelMapping(s.log.With("component", "durable-commands"),
		map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	consumer, err := js.Consumer(ctx, CommandStream, CommandConsumer)
	if err != nil {
		return err
	}
	sub := subscriber{consumer: consumer, delay: redelivery{base: s.cfg.RedeliveryDelay, max: 30 * time.Second},
		limit: 4*s.cfg.CommandTimeout + time.Minute, log: s.log}
	pub, err := wmjs.NewPublisher(wmjs.PublisherConfig{Conn: s.cfg.Conn, Logger: wlog})
	if err != nil {
		return err
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, wlog)
	if err != nil {
		return err
	}
	poison, err := middleware.PoisonQueueWithFilter(pub, DeadLetterSubject, isPoison)
	if err != nil {
		return err
	}
	router.AddMiddleware(
		middleware.CorrelationID, // results carry the command's correlation_id
		poison,                   // dead letters: undecodable, or failing at the last delivery
		p.giveUp,
		middleware.Retry{ // transient failures, a few times in process before a redelivery
			MaxRetries:      2,
			InitialInterval: 50 * time.Millisecond,
			MaxInterval:     500 * time.Millisecond,
			Multiplier:      2,
			ShouldRetry:     func(r middleware.RetryParams) bool { return !isPoison(r.Err) && commands.Transient(r.Err) },
		}.Middleware,
		middleware.Recoverer,
	)
	router.AddHandler("durable-ticket-commands", DurableSubjectPrefix+".>", sub,
		ResultSubjectPrefix, resultPublisher{pub}, p.handle)
	if err := router.Run(ctx); err != nil {
		return err
	}
	if ctx.Err() == nil {
		return errors.New("durable command processor stopped")
	}
	return nil
}
